//! Making things: `init`, `add operator|account|user`, `issue`, `creds`.

use std::path::{Path, PathBuf};

use nkeys::KeyPair;
use serde_json::json;

use super::args::{concat, many, opt, switch, CliError, Command, Flag, Parsed};
use super::claims::{
    account_nats, apply_account_limits, apply_user_flags, apply_validity, new_claims,
    operator_nats, user_nats, ACCOUNT_LIMIT_FLAGS, USER_FLAGS, VALIDITY_FLAGS,
};
use super::store::{write_private, Entity};
use super::Ctx;
use crate::security::jwt::{self, AccountClaims, SigningKey, UserClaims};

/// The system account and its user, as nsc names them.
pub const SYS_ACCOUNT: &str = "SYS";
pub const SYS_USER: &str = "sys";

pub const INIT: Command = Command {
    path: "jwt init",
    about: "Make an operator with a system account (SYS) and its user (sys, with creds), and print a server config for the chosen resolver.",
    positional: None,
    flags: &[
        opt("name", "OPERATOR", "the operator's name (default: natrix)"),
        opt("resolver", "KIND", "memory (default), full, cache or url"),
        opt("dir", "DIR", "the JWT directory of a full or cache resolver (default: ./jwt)"),
        opt("url", "URL", "the account server of a url resolver"),
        opt("config-out", "FILE", "also write the config to FILE"),
    ],
};

pub const GENERATE_CONFIG: Command = Command {
    path: "jwt generate config",
    about: "Print a server config for the store's operator: with --resolver memory every account is preloaded; full and cache preload the system account (push the others).",
    positional: None,
    flags: &[
        opt("operator", "NAME", "the operator (default: the only one in the store)"),
        opt("resolver", "KIND", "memory (default), full, cache or url"),
        opt("dir", "DIR", "the JWT directory of a full or cache resolver (default: ./jwt)"),
        opt("url", "URL", "the account server of a url resolver"),
        opt("config-out", "FILE", "also write the config to FILE"),
    ],
};

pub const ADD_OPERATOR: Command = Command {
    path: "jwt add operator",
    about: "Add an operator to the store.",
    positional: None,
    flags: &[
        opt("name", "NAME", "the operator's name (required)"),
        switch("sys", "also make the system account SYS and its user sys"),
        switch("signing-key", "also make an operator signing key"),
        opt("exp", "WHEN", "expiry (24h, 2027-01-31, 0 for never)"),
    ],
};

const ADD_ACCOUNT_FLAGS: [Flag; 20] = concat([
    &[
        opt("name", "NAME", "the account's name (required)"),
        opt(
            "operator",
            "NAME",
            "the operator (default: the only one in the store)",
        ),
        opt(
            "issuer",
            "KEY",
            "sign with this operator signing key (public key, seed or seed file)",
        ),
        switch("signing-key", "also make an account signing key"),
    ],
    ACCOUNT_LIMIT_FLAGS,
    VALIDITY_FLAGS,
]);

pub const ADD_ACCOUNT: Command = Command {
    path: "jwt add account",
    about: "Add an account, signed by the operator (or one of its signing keys).",
    positional: None,
    flags: &ADD_ACCOUNT_FLAGS,
};

const ISSUE_FLAGS: [Flag; 27] = concat([
    &[
        opt("account", "NAME|KEY", "the user's account (required)"),
        opt(
            "issuer",
            "NAME|KEY",
            "the account key or one of its signing keys (default: the account key)",
        ),
        opt("name", "NAME", "the user's name"),
        opt(
            "operator",
            "NAME",
            "the operator (default: the only one in the store)",
        ),
        opt(
            "out",
            "FILE",
            "write the creds here (mode 0600); - for stdout",
        ),
        many("tag", "TAG", "a tag"),
    ],
    USER_FLAGS,
    VALIDITY_FLAGS,
]);

pub const ISSUE: Command = Command {
    path: "jwt issue",
    about: "Mint a user JWT and its creds in one line. With --name the user is also kept in the store; the creds go to --out, else to the store's creds file of a named user, else to stdout.",
    positional: None,
    flags: &ISSUE_FLAGS,
};

pub const ADD_USER: Command = Command {
    path: "jwt add user",
    about:
        "Add a user to an account: its JWT in the store, its seed in the key store, its creds file.",
    positional: None,
    flags: &ISSUE_FLAGS,
};

pub const CREDS: Command = Command {
    path: "jwt creds",
    about: "Write a user's .creds file (mode 0600) from the store: the user JWT and the seed, framed as nsc frames them.",
    positional: None,
    flags: &[
        opt("account", "NAME|KEY", "the user's account (required)"),
        opt("name", "NAME|KEY", "the user (required)"),
        opt("operator", "NAME", "the operator (default: the only one in the store)"),
        opt("out", "FILE", "where to write (default: the key store's creds path); - for stdout"),
    ],
};

/// Makes an operator (and with `sys`, SYS and its user): returns the
/// operator entity.
fn make_operator(
    ctx: &Ctx,
    name: &str,
    sys: bool,
    signing_key: bool,
    p: &Parsed,
) -> Result<Entity, CliError> {
    if ctx.store.operator_path(name).exists() {
        return Err(CliError::Failed(format!(
            "operator {name:?} already exists in {}",
            ctx.store.stores_dir.display()
        )));
    }
    let op = KeyPair::new_operator();
    ctx.store.store_key(&op)?;
    let mut nats = operator_nats();
    if signing_key {
        let sk = KeyPair::new_operator();
        ctx.store.store_key(&sk)?;
        nats["signing_keys"] = json!([sk.public_key()]);
        eprintln!("operator signing key {}", sk.public_key());
    }
    let sys_kp = KeyPair::new_account();
    if sys {
        nats["system_account"] = json!(sys_kp.public_key());
    }
    let mut c = new_claims(&op.public_key(), &op.public_key(), name, nats);
    apply_validity(&mut c, p, ctx.now)?;
    let token = ctx.sign(&mut c, &op)?;
    let path = ctx.store.create_operator(name, &token)?;
    eprintln!("operator {name} {} -> {}", op.public_key(), path.display());
    if sys {
        ctx.store.store_key(&sys_kp)?;
        let mut ac = new_claims(
            &op.public_key(),
            &sys_kp.public_key(),
            SYS_ACCOUNT,
            account_nats(),
        );
        let at = ctx.sign(&mut ac, &op)?;
        let path = ctx.store.write_account(name, SYS_ACCOUNT, &at)?;
        eprintln!(
            "system account {SYS_ACCOUNT} {} -> {}",
            sys_kp.public_key(),
            path.display()
        );
        let acc = ctx.store.account(name, SYS_ACCOUNT)?;
        let (user, ut) = mint_user(ctx, &acc, &sys_kp, SYS_USER, None)?;
        let creds = ctx.store.creds_path(name, SYS_ACCOUNT, SYS_USER);
        keep_user(ctx, name, &acc, SYS_USER, &user, &ut, &creds)?;
    }
    Ok(ctx.store.operator(name)?)
}

/// Keeps a user in the store: JWT, seed and creds.
fn keep_user(
    ctx: &Ctx,
    op: &str,
    acc: &Entity,
    name: &str,
    user: &KeyPair,
    token: &str,
    creds: &Path,
) -> Result<(), CliError> {
    let path = ctx.store.write_user(op, &acc.name, name, token)?;
    ctx.store.store_key(user)?;
    write_creds(creds, token, user)?;
    eprintln!(
        "user {name} {} of account {} -> {}\ncreds -> {}",
        user.public_key(),
        acc.name,
        path.display(),
        creds.display()
    );
    Ok(())
}

pub fn write_creds(path: &Path, token: &str, user: &KeyPair) -> Result<(), String> {
    let seed = user.seed().map_err(|e| e.to_string())?;
    write_private(path, jwt::format_creds(token, &seed).as_bytes())
}

/// Signs a new user of `acc` with `signer`; `p` (when given) carries the
/// permission, limit and validity flags.
fn mint_user(
    ctx: &Ctx,
    acc: &Entity,
    signer: &KeyPair,
    name: &str,
    p: Option<&Parsed>,
) -> Result<(KeyPair, String), CliError> {
    let user = KeyPair::new_user();
    let account_key = acc.claims.sub.as_str();
    let by_signing_key = signer.public_key() != account_key;
    let mut nats = user_nats(by_signing_key.then_some(account_key));
    let scoped = acc.claims.typed::<AccountClaims>().ok().and_then(|a| {
        a.signing_keys.into_iter().find_map(|k| match k {
            SigningKey::Scoped(s) if s.key == signer.public_key() => Some(s.role),
            _ => None,
        })
    });
    let mut c = new_claims(&signer.public_key(), &user.public_key(), name, json!({}));
    if let Some(p) = p {
        let before = nats.clone();
        apply_user_flags(&mut nats, p)?;
        if let Some(role) = &scoped {
            if nats != before {
                return Err(p.usage(format!(
                    "--issuer {} is a scoped signing key (role {role:?}): its template sets the permissions and limits, so give none",
                    signer.public_key()
                )));
            }
            // As nsc: a scoped user carries no permissions or limits.
            nats = json!({"type": "user", "version": 2, "issuer_account": account_key});
        }
        let tags = p.all("tag");
        if !tags.is_empty() {
            nats["tags"] = json!(tags);
        }
        apply_validity(&mut c, p, ctx.now)?;
    }
    c.nats = nats;
    c.typed::<UserClaims>().map_err(|e| e.to_string())?;
    let token = ctx.sign(&mut c, signer)?;
    Ok((user, token))
}

/// The config snippet for an operator and its system account.
pub fn resolver_config(
    ctx: &Ctx,
    op: &Entity,
    kind: &str,
    dir: &str,
    url: Option<&str>,
) -> Result<String, String> {
    let sys = ctx.store.account(&op.name, SYS_ACCOUNT)?;
    // MEMORY knows only what is preloaded: every account. The directory
    // resolvers get the system account up front, the others by push.
    let preloaded = if kind == "memory" {
        ctx.store.accounts(&op.name)
    } else {
        vec![sys.clone()]
    };
    let mut preload = String::from("resolver_preload: {\n");
    for a in &preloaded {
        preload.push_str(&format!(
            "  # {}\n  {}: {}\n",
            a.name, a.claims.sub, a.token
        ));
    }
    preload.push_str("}\n");
    let quoted = serde_json::to_string(dir).map_err(|e| e.to_string())?;
    let resolver = match kind {
        "memory" => format!("resolver: MEMORY\n{preload}"),
        "full" => format!(
            "resolver: {{\n  type: full\n  dir: {quoted}\n  allow_delete: false\n  interval: \"2m\"\n  timeout: \"1.9s\"\n}}\n{preload}"
        ),
        "cache" => format!(
            "resolver: {{\n  type: cache\n  dir: {quoted}\n  ttl: \"1h\"\n  timeout: \"1.9s\"\n}}\n{preload}"
        ),
        "url" => {
            let url = url.ok_or("--resolver url needs --url URL (the account server)")?;
            format!("resolver: URL({url})\n")
        }
        other => {
            return Err(format!(
                "--resolver {other:?}: expected memory, full, cache or url"
            ))
        }
    };
    Ok(format!(
        "# Operator {:?}, made by natrix jwt\noperator: {}\nsystem_account: {}\n{resolver}",
        op.name, op.token, sys.claims.sub
    ))
}

pub fn init(ctx: &Ctx, p: &Parsed) -> Result<(), CliError> {
    let name = p.get("name").unwrap_or("natrix");
    resolver_kind(p)?;
    let op = make_operator(ctx, name, true, false, p)?;
    print_config(ctx, p, &op)
}

fn resolver_kind(p: &Parsed) -> Result<String, CliError> {
    let kind = p.get("resolver").unwrap_or("memory").to_ascii_lowercase();
    if !matches!(kind.as_str(), "memory" | "full" | "cache" | "url") {
        return Err(p.usage(format!(
            "--resolver {kind:?}: expected memory, full, cache or url"
        )));
    }
    if kind == "url" && !p.has("url") {
        return Err(p.usage("--resolver url needs --url URL (the account server)"));
    }
    Ok(kind)
}

fn print_config(ctx: &Ctx, p: &Parsed, op: &Entity) -> Result<(), CliError> {
    let kind = resolver_kind(p)?;
    let text = resolver_config(
        ctx,
        op,
        &kind,
        p.get("dir").unwrap_or("./jwt"),
        p.get("url"),
    )?;
    if let Some(out) = p.get("config-out") {
        write_private(Path::new(out), text.as_bytes())?;
        eprintln!("config -> {out}");
    }
    print!("{text}");
    Ok(())
}

pub fn generate_config(ctx: &Ctx, p: &Parsed) -> Result<(), CliError> {
    let op_name = ctx.store.pick_operator(p.get("operator"))?;
    let op = ctx.store.operator(&op_name)?;
    print_config(ctx, p, &op)
}

pub fn add_operator(ctx: &Ctx, p: &Parsed) -> Result<(), CliError> {
    let name = p.need("name")?;
    let op = make_operator(ctx, name, p.switch("sys"), p.switch("signing-key"), p)?;
    println!("{}", op.claims.sub);
    Ok(())
}

pub fn add_account(ctx: &Ctx, p: &Parsed) -> Result<(), CliError> {
    let name = p.need("name")?;
    let op_name = ctx.store.pick_operator(p.get("operator"))?;
    if ctx.store.account_path(&op_name, name).exists() {
        return Err(CliError::Failed(format!(
            "account {name:?} already exists in operator {op_name}"
        )));
    }
    let op = ctx.store.operator(&op_name)?;
    let signer = ctx.operator_signer(&op, p.get("issuer"))?;
    let acc = KeyPair::new_account();
    let mut nats = account_nats();
    apply_account_limits(&mut nats, p)?;
    if p.switch("signing-key") {
        let sk = KeyPair::new_account();
        ctx.store.store_key(&sk)?;
        nats["signing_keys"] = json!([sk.public_key()]);
        eprintln!("account signing key {}", sk.public_key());
    }
    let mut c = new_claims(&signer.public_key(), &acc.public_key(), name, nats);
    apply_validity(&mut c, p, ctx.now)?;
    c.typed::<AccountClaims>().map_err(|e| e.to_string())?;
    let token = ctx.sign(&mut c, &signer)?;
    ctx.store.store_key(&acc)?;
    let path = ctx.store.write_account(&op_name, name, &token)?;
    eprintln!("account {name} {} -> {}", acc.public_key(), path.display());
    println!("{}", acc.public_key());
    Ok(())
}

/// The account named by `--account` and the key that signs its users.
fn account_and_signer(ctx: &Ctx, p: &Parsed) -> Result<(String, Entity, KeyPair), CliError> {
    let op_name = ctx.store.pick_operator(p.get("operator"))?;
    let acc = ctx.store.account(&op_name, p.need("account")?)?;
    let signer = ctx.account_signer(&acc, p.get("issuer"))?;
    Ok((op_name, acc, signer))
}

fn out_path(p: &Parsed) -> Option<PathBuf> {
    p.get("out").filter(|o| *o != "-").map(PathBuf::from)
}

pub fn add_user(ctx: &Ctx, p: &Parsed) -> Result<(), CliError> {
    let name = p.need("name")?;
    let (op_name, acc, signer) = account_and_signer(ctx, p)?;
    if ctx.store.user_path(&op_name, &acc.name, name).exists() {
        return Err(CliError::Failed(format!(
            "user {name:?} already exists in account {}",
            acc.name
        )));
    }
    let (user, token) = mint_user(ctx, &acc, &signer, name, Some(p))?;
    let creds = out_path(p).unwrap_or_else(|| ctx.store.creds_path(&op_name, &acc.name, name));
    keep_user(ctx, &op_name, &acc, name, &user, &token, &creds)?;
    println!("{}", user.public_key());
    Ok(())
}

pub fn issue(ctx: &Ctx, p: &Parsed) -> Result<(), CliError> {
    let (op_name, acc, signer) = account_and_signer(ctx, p)?;
    let name = p.get("name");
    let (user, token) = mint_user(ctx, &acc, &signer, name.unwrap_or(""), Some(p))?;
    match (name, p.get("out")) {
        (Some(n), out) if out != Some("-") => {
            if ctx.store.user_path(&op_name, &acc.name, n).exists() {
                return Err(CliError::Failed(format!(
                    "user {n:?} already exists in account {} (pick another --name)",
                    acc.name
                )));
            }
            let creds = out_path(p).unwrap_or_else(|| ctx.store.creds_path(&op_name, &acc.name, n));
            keep_user(ctx, &op_name, &acc, n, &user, &token, &creds)?;
            println!("{}", creds.display());
        }
        (_, Some(out)) if out != "-" => {
            write_creds(Path::new(out), &token, &user)?;
            eprintln!(
                "user {} of account {} -> {out}",
                user.public_key(),
                acc.name
            );
            println!("{out}");
        }
        _ => print!(
            "{}",
            jwt::format_creds(&token, &user.seed().map_err(|e| e.to_string())?)
        ),
    }
    Ok(())
}

pub fn creds(ctx: &Ctx, p: &Parsed) -> Result<(), CliError> {
    let op_name = ctx.store.pick_operator(p.get("operator"))?;
    let acc = ctx.store.account(&op_name, p.need("account")?)?;
    let user = ctx.store.user(&op_name, &acc.name, p.need("name")?)?;
    let kp = ctx.store.load_key(&user.claims.sub)?;
    let text = jwt::format_creds(&user.token, &kp.seed().map_err(|e| e.to_string())?);
    if p.get("out") == Some("-") {
        print!("{text}");
        return Ok(());
    }
    let path = out_path(p).unwrap_or_else(|| ctx.store.creds_path(&op_name, &acc.name, &user.name));
    write_private(&path, text.as_bytes())?;
    println!("{}", path.display());
    Ok(())
}
