//! Changing things: `edit operator|account|user|signing-key`, `add
//! export|import` and `generate activation`. Every edit re-signs the JWT
//! with the key that may issue it and writes it back to the store.

use std::path::Path;

use nkeys::KeyPair;
use serde_json::{json, Map, Value};

use super::args::{concat, many, opt, switch, CliError, Command, Flag, Parsed};
use super::claims::{
    apply_account_limits, apply_user_flags, apply_validity, new_claims, parse_when,
    ACCOUNT_LIMIT_FLAGS, USER_FLAGS, VALIDITY_FLAGS,
};
use super::make::write_creds;
use super::store::{write_private, Entity};
use super::Ctx;
use crate::security::jwt::{self, AccountClaims, OperatorClaims, UserClaims};
use crate::subject;

pub const EDIT_OPERATOR: Command = Command {
    path: "jwt edit operator",
    about: "Change an operator: signing keys, system account, service URLs, expiry. Re-signed with the operator key.",
    positional: None,
    flags: &[
        opt("name", "NAME", "the operator (default: the only one in the store)"),
        many("sk", "KEY|generate", "add an operator signing key (generate: make one)"),
        many("rm-sk", "KEY", "remove a signing key"),
        opt("system-account", "NAME|KEY", "the system account"),
        many("service-url", "URL", "an operator service URL (nats://...)"),
        opt("account-jwt-server-url", "URL", "the account server URL"),
        switch("require-signing-keys", "accounts must be signed by a signing key (--require-signing-keys=false clears)"),
        opt("exp", "WHEN", "expiry"),
        opt("start", "WHEN", "not valid before"),
    ],
};

const EDIT_ACCOUNT_FLAGS: [Flag; 25] = concat([
    &[
        opt("name", "NAME|KEY", "the account (required)"),
        opt(
            "operator",
            "NAME",
            "the operator (default: the only one in the store)",
        ),
        opt("issuer", "KEY", "sign with this operator signing key"),
        many(
            "sk",
            "KEY|generate",
            "add an account signing key (generate: make one)",
        ),
        many("rm-sk", "KEY", "remove a signing key"),
        many(
            "revoke",
            "USER|*",
            "revoke a user (public key or name; * for all) issued at or before --revoke-at",
        ),
        opt("revoke-at", "WHEN", "the revocation time (default: now)"),
        many("rm-revoke", "USER|*", "remove a revocation"),
        many("tag", "TAG", "add a tag"),
    ],
    ACCOUNT_LIMIT_FLAGS,
    VALIDITY_FLAGS,
]);

pub const EDIT_ACCOUNT: Command = Command {
    path: "jwt edit account",
    about: "Change an account: limits, default permissions, signing keys, revocations, expiry. Re-signed by the operator.",
    positional: None,
    flags: &EDIT_ACCOUNT_FLAGS,
};

const EDIT_USER_FLAGS: [Flag; 25] = concat([
    &[
        opt("account", "NAME|KEY", "the user's account (required)"),
        opt("name", "NAME|KEY", "the user (required)"),
        opt(
            "operator",
            "NAME",
            "the operator (default: the only one in the store)",
        ),
        opt(
            "issuer",
            "KEY",
            "sign with this account signing key (default: the user's issuer, else the account key)",
        ),
    ],
    USER_FLAGS,
    VALIDITY_FLAGS,
]);

pub const EDIT_USER: Command = Command {
    path: "jwt edit user",
    about: "Change a user: permissions, limits, bearer, src, times, expiry. Re-signed, and its creds file in the key store rewritten.",
    positional: None,
    flags: &EDIT_USER_FLAGS,
};

const EDIT_SK_FLAGS: [Flag; 23] = concat([
    &[
        opt("account", "NAME|KEY", "the account (required)"),
        opt(
            "sk",
            "KEY|generate",
            "the signing key to scope (required; generate: make one)",
        ),
        opt("role", "ROLE", "the role name of the scope (required)"),
        opt(
            "operator",
            "NAME",
            "the operator (default: the only one in the store)",
        ),
    ],
    USER_FLAGS,
    &[],
]);

pub const EDIT_SIGNING_KEY: Command = Command {
    path: "jwt edit signing-key",
    about: "Make an account signing key scoped: the users it issues get the permissions and limits of its template (the user flags given here), and may carry none of their own.",
    positional: None,
    flags: &EDIT_SK_FLAGS,
};

pub const ADD_EXPORT: Command = Command {
    path: "jwt add export",
    about: "Export a stream (default) or a service from an account. --private exports need an activation token per importer.",
    positional: None,
    flags: &[
        opt("account", "NAME|KEY", "the exporting account (required)"),
        opt("subject", "SUBJECT", "the exported subject (required)"),
        opt("name", "NAME", "the export's name (default: the subject)"),
        switch("service", "a service (request/reply) export"),
        switch("private", "importers need an activation token"),
        opt("response-type", "TYPE", "services: Singleton (default), Stream or Chunked"),
        opt("operator", "NAME", "the operator (default: the only one in the store)"),
    ],
};

pub const ADD_IMPORT: Command = Command {
    path: "jwt add import",
    about: "Import another account's export into an account.",
    positional: None,
    flags: &[
        opt("account", "NAME|KEY", "the importing account (required)"),
        opt(
            "src-account",
            "NAME|KEY",
            "the exporting account (required)",
        ),
        opt(
            "remote-subject",
            "SUBJECT",
            "the exported subject (required)",
        ),
        opt(
            "local-subject",
            "SUBJECT",
            "where it appears in the importing account (default: the same)",
        ),
        opt("name", "NAME", "the import's name"),
        switch("service", "import a service (default: a stream)"),
        opt(
            "token",
            "FILE|JWT",
            "the activation token of a private export",
        ),
        opt(
            "operator",
            "NAME",
            "the operator (default: the only one in the store)",
        ),
    ],
};

pub const GENERATE_ACTIVATION: Command = Command {
    path: "jwt generate activation",
    about: "Make an activation token that lets one account import a private export.",
    positional: None,
    flags: &[
        opt("account", "NAME|KEY", "the exporting account (required)"),
        opt(
            "subject",
            "SUBJECT",
            "the export's subject (or a narrower one) (required)",
        ),
        opt(
            "target-account",
            "NAME|KEY",
            "the importing account (required)",
        ),
        opt("issuer", "KEY", "sign with this account signing key"),
        opt("exp", "WHEN", "expiry"),
        opt("out", "FILE", "write the token here (default: stdout)"),
        opt(
            "operator",
            "NAME",
            "the operator (default: the only one in the store)",
        ),
    ],
};

fn obj(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut().expect("made an object")
}

/// Adds and removes signing keys (plain ones, or the key of a scoped one).
fn edit_signing_keys(
    ctx: &Ctx,
    nats: &mut Value,
    p: &Parsed,
    prefix: char,
) -> Result<(), CliError> {
    let m = obj(nats);
    let mut keys: Vec<Value> = m
        .get("signing_keys")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let key_of = |v: &Value| -> String {
        v.as_str()
            .map(String::from)
            .or_else(|| v.get("key").and_then(Value::as_str).map(String::from))
            .unwrap_or_default()
    };
    for sk in p.all("sk") {
        let public = if sk == "generate" {
            let kp = if prefix == 'O' {
                KeyPair::new_operator()
            } else {
                KeyPair::new_account()
            };
            ctx.store.store_key(&kp)?;
            eprintln!("new signing key {}", kp.public_key());
            kp.public_key()
        } else if sk.starts_with(prefix) && KeyPair::from_public_key(sk).is_ok() {
            sk.clone()
        } else {
            return Err(p.usage(format!(
                "--sk {sk:?}: not a public {prefix} key, nor \"generate\""
            )));
        };
        if !keys.iter().any(|k| key_of(k) == public) {
            keys.push(json!(public));
        }
    }
    keys.retain(|k| !p.all("rm-sk").contains(&key_of(k)));
    if keys.is_empty() {
        m.remove("signing_keys");
    } else {
        m.insert("signing_keys".into(), Value::Array(keys));
    }
    Ok(())
}

pub fn edit_operator(ctx: &Ctx, p: &Parsed) -> Result<(), CliError> {
    let op_name = ctx.store.pick_operator(p.get("name"))?;
    let op = ctx.store.operator(&op_name)?;
    let kp = ctx.store.load_key(&op.claims.sub)?;
    let mut c = op.claims.clone();
    edit_signing_keys(ctx, &mut c.nats, p, 'O')?;
    if let Some(sa) = p.get("system-account") {
        let key = ctx
            .store
            .account(&op_name, sa)
            .map(|a| a.claims.sub)
            .or_else(|e| {
                if sa.starts_with('A') && KeyPair::from_public_key(sa).is_ok() {
                    Ok(sa.to_string())
                } else {
                    Err(format!("--system-account: {e}"))
                }
            })?;
        c.nats["system_account"] = json!(key);
    }
    for u in p.all("service-url") {
        if !(u.starts_with("nats://") || u.starts_with("tls://")) {
            return Err(p.usage(format!(
                "--service-url {u:?}: expected nats://host:port or tls://host:port"
            )));
        }
    }
    if p.has("service-url") {
        c.nats["operator_service_urls"] = json!(p.all("service-url"));
    }
    if let Some(u) = p.get("account-jwt-server-url") {
        c.nats["account_server_url"] = json!(u);
    }
    if let Some(b) = p.get("require-signing-keys") {
        if b == "true" {
            c.nats["strict_signing_key_usage"] = json!(true);
        } else {
            obj(&mut c.nats).remove("strict_signing_key_usage");
        }
    }
    apply_validity(&mut c, p, ctx.now)?;
    c.typed::<OperatorClaims>().map_err(|e| e.to_string())?;
    let token = ctx.sign(&mut c, &kp)?;
    let path = ctx.store.write_operator(&op_name, &token)?;
    println!("{}", path.display());
    Ok(())
}

/// The user key a `--revoke` value names: a key, `*`, or a user's name.
fn revoked_key(ctx: &Ctx, op: &str, acc: &Entity, v: &str) -> Result<String, CliError> {
    if v == "*" || (v.starts_with('U') && KeyPair::from_public_key(v).is_ok()) {
        return Ok(v.to_string());
    }
    Ok(ctx
        .store
        .user(op, &acc.name, v)
        .map_err(|e| format!("--revoke: {e}"))?
        .claims
        .sub)
}

pub fn edit_account(ctx: &Ctx, p: &Parsed) -> Result<(), CliError> {
    let op_name = ctx.store.pick_operator(p.get("operator"))?;
    let acc = ctx.store.account(&op_name, p.need("name")?)?;
    let op = ctx.store.operator(&op_name)?;
    let signer = ctx.operator_signer(&op, p.get("issuer"))?;
    let mut c = acc.claims.clone();
    c.iss = signer.public_key();
    apply_account_limits(&mut c.nats, p)?;
    edit_signing_keys(ctx, &mut c.nats, p, 'A')?;
    let at = match p.get("revoke-at") {
        Some(w) => parse_when(w, ctx.now)
            .map_err(|e| p.usage(format!("--revoke-at: {e}")))?
            .unwrap_or(ctx.now),
        None => ctx.now,
    };
    let mut revs = c
        .nats
        .get("revocations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for v in p.all("revoke") {
        revs.insert(revoked_key(ctx, &op_name, &acc, v)?, json!(at));
    }
    for v in p.all("rm-revoke") {
        let k = revoked_key(ctx, &op_name, &acc, v)?;
        if revs.remove(&k).is_none() {
            return Err(CliError::Failed(format!(
                "--rm-revoke {v}: account {} has no revocation for {k}",
                acc.name
            )));
        }
    }
    if revs.is_empty() {
        obj(&mut c.nats).remove("revocations");
    } else {
        c.nats["revocations"] = Value::Object(revs);
    }
    if p.has("tag") {
        let mut tags: Vec<String> = c
            .nats
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(String::from))
            .collect();
        tags.extend(p.all("tag").iter().cloned());
        c.nats["tags"] = json!(tags);
    }
    apply_validity(&mut c, p, ctx.now)?;
    c.typed::<AccountClaims>().map_err(|e| e.to_string())?;
    let token = ctx.sign(&mut c, &signer)?;
    let path = ctx.store.write_account(&op_name, &acc.name, &token)?;
    println!("{}", path.display());
    Ok(())
}

pub fn edit_signing_key(ctx: &Ctx, p: &Parsed) -> Result<(), CliError> {
    let op_name = ctx.store.pick_operator(p.get("operator"))?;
    let acc = ctx.store.account(&op_name, p.need("account")?)?;
    let sk = p.need("sk")?;
    let role = p.need("role")?;
    let op = ctx.store.operator(&op_name)?;
    let signer = ctx.operator_signer(&op, None)?;
    let mut c = acc.claims.clone();
    c.iss = signer.public_key();
    let public = if sk == "generate" {
        let kp = KeyPair::new_account();
        ctx.store.store_key(&kp)?;
        eprintln!("new signing key {}", kp.public_key());
        kp.public_key()
    } else if sk.starts_with('A') && KeyPair::from_public_key(sk).is_ok() {
        sk.to_string()
    } else {
        return Err(p.usage(format!(
            "--sk {sk:?}: not a public account key, nor \"generate\""
        )));
    };
    let mut template = json!({"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1});
    apply_user_flags(&mut template, p)?;
    let scoped = json!({"kind": "user_scope", "key": public, "role": role, "template": template});
    let keys = obj(&mut c.nats)
        .entry("signing_keys")
        .or_insert_with(|| json!([]));
    let list = keys
        .as_array_mut()
        .ok_or_else(|| "signing_keys is not a list".to_string())?;
    list.retain(|k| {
        k.as_str() != Some(&public) && k.get("key").and_then(Value::as_str) != Some(&public)
    });
    list.push(scoped);
    c.typed::<AccountClaims>().map_err(|e| e.to_string())?;
    let token = ctx.sign(&mut c, &signer)?;
    let path = ctx.store.write_account(&op_name, &acc.name, &token)?;
    eprintln!(
        "scoped signing key {public} (role {role}) -> {}",
        path.display()
    );
    println!("{public}");
    Ok(())
}

pub fn edit_user(ctx: &Ctx, p: &Parsed) -> Result<(), CliError> {
    let op_name = ctx.store.pick_operator(p.get("operator"))?;
    let acc = ctx.store.account(&op_name, p.need("account")?)?;
    let user = ctx.store.user(&op_name, &acc.name, p.need("name")?)?;
    let issuer = p.get("issuer").map(String::from).or_else(|| {
        Some(user.claims.iss.clone()).filter(|k| k != &acc.claims.sub && ctx.store.has_key(k))
    });
    let signer = ctx.account_signer(&acc, issuer.as_deref())?;
    let mut c = user.claims.clone();
    c.iss = signer.public_key();
    let m = obj(&mut c.nats);
    if signer.public_key() == acc.claims.sub {
        m.remove("issuer_account");
    } else {
        m.insert("issuer_account".into(), json!(acc.claims.sub));
    }
    apply_user_flags(&mut c.nats, p)?;
    apply_validity(&mut c, p, ctx.now)?;
    c.typed::<UserClaims>().map_err(|e| e.to_string())?;
    let token = ctx.sign(&mut c, &signer)?;
    let path = ctx
        .store
        .write_user(&op_name, &acc.name, &user.name, &token)?;
    println!("{}", path.display());
    let creds = ctx.store.creds_path(&op_name, &acc.name, &user.name);
    if creds.is_file() {
        let kp = ctx.store.load_key(&user.claims.sub)?;
        write_creds(&creds, &token, &kp)?;
        eprintln!("creds -> {}", creds.display());
    }
    Ok(())
}

fn check_subject(p: &Parsed, flag: &str, s: &str) -> Result<(), CliError> {
    if s.is_empty() || !subject::valid_subscribe(s.as_bytes()) {
        return Err(p.usage(format!("--{flag} {s:?} is not a valid subject")));
    }
    Ok(())
}

fn resign_account(
    ctx: &Ctx,
    op_name: &str,
    acc: &Entity,
    mut c: jwt::Claims,
) -> Result<(), CliError> {
    let op = ctx.store.operator(op_name)?;
    let signer = ctx.operator_signer(&op, None)?;
    c.iss = signer.public_key();
    c.typed::<AccountClaims>().map_err(|e| e.to_string())?;
    let token = ctx.sign(&mut c, &signer)?;
    let path = ctx.store.write_account(op_name, &acc.name, &token)?;
    println!("{}", path.display());
    Ok(())
}

pub fn add_export(ctx: &Ctx, p: &Parsed) -> Result<(), CliError> {
    let op_name = ctx.store.pick_operator(p.get("operator"))?;
    let acc = ctx.store.account(&op_name, p.need("account")?)?;
    let subj = p.need("subject")?;
    check_subject(p, "subject", subj)?;
    let mut e = json!({"name": p.get("name").unwrap_or(subj), "subject": subj,
                       "type": if p.switch("service") { "service" } else { "stream" }});
    if p.switch("private") {
        e["token_req"] = json!(true);
    }
    if let Some(rt) = p.get("response-type") {
        if !p.switch("service") {
            return Err(p.usage("--response-type goes with --service"));
        }
        if !matches!(rt, "Singleton" | "Stream" | "Chunked") {
            return Err(p.usage(format!(
                "--response-type {rt:?}: expected Singleton, Stream or Chunked"
            )));
        }
        e["response_type"] = json!(rt);
    }
    let mut c = acc.claims.clone();
    let exports = obj(&mut c.nats)
        .entry("exports")
        .or_insert_with(|| json!([]));
    let list = exports
        .as_array_mut()
        .ok_or_else(|| "exports is not a list".to_string())?;
    if list
        .iter()
        .any(|x| x.get("subject").and_then(Value::as_str) == Some(subj))
    {
        return Err(CliError::Failed(format!(
            "account {} already exports {subj:?}",
            acc.name
        )));
    }
    list.push(e);
    resign_account(ctx, &op_name, &acc, c)
}

/// An account by name or key, from the store; a bare public key is
/// accepted as is (an account of another operator).
fn account_key(
    ctx: &Ctx,
    op: &str,
    flag: &str,
    v: &str,
) -> Result<(String, Option<Entity>), CliError> {
    match ctx.store.account(op, v) {
        Ok(a) => Ok((a.claims.sub.clone(), Some(a))),
        Err(_) if v.starts_with('A') && KeyPair::from_public_key(v).is_ok() => {
            Ok((v.to_string(), None))
        }
        Err(e) => Err(CliError::Failed(format!("--{flag}: {e}"))),
    }
}

pub fn add_import(ctx: &Ctx, p: &Parsed) -> Result<(), CliError> {
    let op_name = ctx.store.pick_operator(p.get("operator"))?;
    let acc = ctx.store.account(&op_name, p.need("account")?)?;
    let (src_key, src) = account_key(ctx, &op_name, "src-account", p.need("src-account")?)?;
    let remote = p.need("remote-subject")?;
    check_subject(p, "remote-subject", remote)?;
    let kind = if p.switch("service") {
        "service"
    } else {
        "stream"
    };
    let token = match p.get("token") {
        Some(t) if Path::new(t).is_file() => Some(jwt::parse_decorated_jwt(
            &std::fs::read_to_string(t).map_err(|e| format!("--token {t}: {e}"))?,
        )),
        Some(t) => Some(t.to_string()),
        None => None,
    };
    if let Some(t) = &token {
        let c = jwt::decode(t).map_err(|e| format!("--token: {e}"))?;
        if c.kind() != jwt::Kind::Activation || c.sub != acc.claims.sub {
            return Err(CliError::Failed(format!(
                "--token: not an activation for account {} (it is {:?} claims about {})",
                acc.claims.sub,
                c.kind(),
                c.sub
            )));
        }
    }
    if let Some(src) = &src {
        let ac: AccountClaims = src.claims.typed().map_err(|e| e.to_string())?;
        let export = ac.exports.iter().find(|e| {
            let es = e.get("subject").and_then(Value::as_str).unwrap_or("");
            subject::subset(remote.as_bytes(), es.as_bytes())
                && e.get("type").and_then(Value::as_str).unwrap_or("stream") == kind
        });
        match export {
            None => {
                return Err(CliError::Failed(format!(
                    "--remote-subject {remote:?}: account {} has no {kind} export covering it (add one with natrix jwt add export)",
                    src.name
                )))
            }
            Some(e) if e.get("token_req").and_then(Value::as_bool) == Some(true) && token.is_none() => {
                return Err(CliError::Failed(format!(
                    "the export {remote:?} of {} is private: pass --token (make one with natrix jwt generate activation --account {} --subject {remote} --target-account {})",
                    src.name, src.name, acc.name
                )))
            }
            _ => {}
        }
    }
    let local = p.get("local-subject").unwrap_or(remote);
    check_subject(p, "local-subject", local)?;
    let mut imp = json!({"name": p.get("name").unwrap_or(remote), "subject": remote,
                         "account": src_key, "type": kind});
    if local != remote {
        imp["local_subject"] = json!(local);
    }
    if let Some(t) = token {
        imp["token"] = json!(t);
    }
    let mut c = acc.claims.clone();
    obj(&mut c.nats)
        .entry("imports")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or_else(|| "imports is not a list".to_string())?
        .push(imp);
    resign_account(ctx, &op_name, &acc, c)
}

pub fn generate_activation(ctx: &Ctx, p: &Parsed) -> Result<(), CliError> {
    let op_name = ctx.store.pick_operator(p.get("operator"))?;
    let acc = ctx.store.account(&op_name, p.need("account")?)?;
    let subj = p.need("subject")?;
    check_subject(p, "subject", subj)?;
    let (target, _) = account_key(ctx, &op_name, "target-account", p.need("target-account")?)?;
    let ac: AccountClaims = acc.claims.typed().map_err(|e| e.to_string())?;
    let export = ac
        .exports
        .iter()
        .find(|e| {
            let es = e.get("subject").and_then(Value::as_str).unwrap_or("");
            subject::subset(subj.as_bytes(), es.as_bytes())
        })
        .ok_or_else(|| {
            format!(
                "--subject {subj:?}: account {} exports nothing covering it",
                acc.name
            )
        })?;
    let kind = export
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("stream");
    let signer = ctx.account_signer(&acc, p.get("issuer"))?;
    let mut nats = json!({"subject": subj, "kind": kind, "type": "activation", "version": 2});
    if signer.public_key() != acc.claims.sub {
        nats["issuer_account"] = json!(acc.claims.sub);
    }
    let mut c = new_claims(&signer.public_key(), &target, subj, nats);
    apply_validity(&mut c, p, ctx.now)?;
    let token = ctx.sign(&mut c, &signer)?;
    match p.get("out") {
        Some(f) => {
            write_private(
                Path::new(f),
                jwt::decorate_jwt("activation", &token).as_bytes(),
            )?;
            println!("{f}");
        }
        None => println!("{token}"),
    }
    Ok(())
}
