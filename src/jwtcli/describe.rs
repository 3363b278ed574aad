//! `natrix jwt describe`: any JWT, creds file or nkey in readable form:
//! the claims, validity in local time, which key signed it, whether the
//! signature checks and, with `--operator`, whether the issuer is trusted.
//!
//! Invariant: a seed is never printed unless `--show-seed` asks for it;
//! only its public key is shown.

use std::fmt::Write as _;
use std::path::Path;

use nkeys::KeyPair;
use serde_json::Value;

use super::args::{opt, switch, CliError, Command, Parsed};
use super::claims::local_text;
use super::store::{read_entity, read_secret, Entity};
use super::Ctx;
use crate::security::jwt::{self, AccountClaims, Claims, Kind, OperatorClaims};

pub const DESCRIBE: Command = Command {
    path: "jwt describe",
    about: "Show a JWT, creds file or nkey (a file, or the text itself): claims, validity in local time, the signing key, whether the signature checks and, with --operator, whether the issuer is trusted.",
    positional: Some(("<FILE|JWT|KEY>", 1)),
    flags: &[
        opt("operator", "NAME|FILE", "check trust against this operator (a store name or an operator JWT file)"),
        switch("json", "print the claims as JSON"),
        switch("show-seed", "print the seed of a creds file or seed (never shown otherwise)"),
    ],
};

/// The kind of key an nkey prefix names.
fn key_kind(k: &str) -> &'static str {
    match k.as_bytes().first() {
        Some(b'O') => "operator",
        Some(b'A') => "account",
        Some(b'U') => "user",
        Some(b'N') => "server",
        Some(b'C') => "cluster",
        Some(b'X') => "curve",
        _ => "unknown",
    }
}

fn is_seed_text(t: &str) -> bool {
    t.starts_with('S') && t.len() == 58 && !t.contains('.')
}

pub fn describe(ctx: &Ctx, p: &Parsed) -> Result<(), CliError> {
    let Some(arg) = p.positional.first() else {
        return Err(p.usage("give a file, a JWT or a key to describe"));
    };
    let path = Path::new(arg);
    let text = if path.is_file() {
        let raw = std::fs::read_to_string(path).map_err(|e| format!("{arg}: {e}"))?;
        if raw.contains("NKEY SEED") || is_seed_text(raw.trim()) {
            // Read again through the check that warns about wide modes.
            read_secret(path)?
        } else {
            raw
        }
    } else {
        arg.clone()
    };
    let trimmed = text.trim();
    let mut out = String::new();
    if let Ok(creds) = jwt::parse_creds(&text) {
        let _ = writeln!(out, "file:        creds (user JWT and seed)");
        describe_jwt(ctx, p, &creds.jwt, &mut out)?;
        seed_lines(
            p,
            &creds.seed,
            Some(&jwt::peek(&creds.jwt).map(|c| c.sub).unwrap_or_default()),
            &mut out,
        )?;
    } else if trimmed.contains('.') || text.contains("-----BEGIN") {
        describe_jwt(ctx, p, &jwt::parse_decorated_jwt(&text), &mut out)?;
    } else if is_seed_text(trimmed) {
        seed_lines(p, trimmed, None, &mut out)?;
    } else if KeyPair::from_public_key(trimmed).is_ok() {
        let _ = writeln!(
            out,
            "key:         {} public key\npublic:      {trimmed}",
            key_kind(trimmed)
        );
    } else {
        return Err(CliError::Failed(format!(
            "{arg:?}: not a file, nor a JWT, creds, seed or public key"
        )));
    }
    print!("{out}");
    Ok(())
}

fn seed_lines(
    p: &Parsed,
    seed: &str,
    subject: Option<&str>,
    out: &mut String,
) -> Result<(), CliError> {
    let kp = KeyPair::from_seed(seed).map_err(|e| format!("the seed does not decode: {e}"))?;
    let public = kp.public_key();
    let _ = writeln!(out, "seed of:     {} key {public}", key_kind(&public));
    if let Some(sub) = subject {
        let _ = writeln!(
            out,
            "seed match:  {}",
            if sub == public {
                "yes, the seed belongs to the JWT's subject".to_string()
            } else {
                format!("NO: the JWT is about {sub}, the seed belongs to {public}")
            }
        );
    }
    if p.switch("show-seed") {
        let _ = writeln!(out, "seed:        {}", seed.trim());
    } else {
        let _ = writeln!(out, "seed:        (hidden; --show-seed prints it)");
    }
    Ok(())
}

fn when(t: i64, now: i64) -> String {
    let d = (t - now).abs();
    let span = if d >= 2 * 86_400 {
        format!("{}d", d / 86_400)
    } else if d >= 3600 {
        format!("{}h{}m", d / 3600, d / 60 % 60)
    } else {
        format!("{}m{}s", d / 60, d % 60)
    };
    let rel = if t >= now {
        format!("in {span}")
    } else {
        format!("{span} ago")
    };
    format!("{} ({rel})", local_text(t))
}

/// The readable lines of a `nats` object: `key.sub: value`.
fn flatten(prefix: &str, v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "type" || k == "version" {
                    continue;
                }
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            let items: Vec<String> = a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| x.to_string())
                })
                .collect();
            let _ = writeln!(out, "  {prefix}: {}", items.join(", "));
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        Value::String(s) if prefix.ends_with("token") && s.len() > 60 => {
            let _ = writeln!(out, "  {prefix}: {}... (a JWT)", &s[..40]);
        }
        Value::String(s) => {
            let _ = writeln!(out, "  {prefix}: {s}");
        }
        other => {
            let _ = writeln!(out, "  {prefix}: {other}");
        }
    }
}

/// The operator `--operator` names: a store operator or a JWT file.
fn operator_arg(ctx: &Ctx, v: &str) -> Result<(Entity, bool), String> {
    if Path::new(v).is_file() {
        return read_entity(v, Path::new(v)).map(|e| (e, false));
    }
    ctx.store.operator(v).map(|e| (e, true))
}

fn describe_jwt(ctx: &Ctx, p: &Parsed, token: &str, out: &mut String) -> Result<(), CliError> {
    let c = jwt::peek(token).map_err(|e| format!("not a JWT: {e}"))?;
    let verified = jwt::decode(token);
    if p.switch("json") {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&c).map_err(|e| e.to_string())?
        );
    }
    let kind = c.kind();
    let _ = writeln!(
        out,
        "kind:        {} JWT (version {})",
        format!("{kind:?}").to_lowercase(),
        c.version()
    );
    if !c.name.is_empty() {
        let _ = writeln!(out, "name:        {}", c.name);
    }
    let _ = writeln!(out, "subject:     {} ({} key)", c.sub, key_kind(&c.sub));
    let issuer_account = c
        .nats
        .get("issuer_account")
        .and_then(Value::as_str)
        .unwrap_or("");
    let how = if c.iss == c.sub {
        "self-signed".to_string()
    } else if !issuer_account.is_empty() && issuer_account != c.iss {
        format!("a signing key of account {issuer_account}")
    } else {
        format!("{} key", key_kind(&c.iss))
    };
    let _ = writeln!(out, "issuer:      {} ({how})", c.iss);
    let _ = writeln!(
        out,
        "signature:   {}",
        match &verified {
            Ok(_) => format!("valid, signed by {}", c.iss),
            Err(e) => format!("INVALID: {e}"),
        }
    );
    if c.iat > 0 {
        let _ = writeln!(out, "issued:      {}", when(c.iat, ctx.now));
    }
    if let Some(n) = c.nbf.filter(|&n| n > 0) {
        let _ = writeln!(out, "not before:  {}", when(n, ctx.now));
    }
    let _ = writeln!(
        out,
        "expires:     {}",
        match c.exp.filter(|&e| e > 0) {
            None => "never".to_string(),
            Some(e) => when(e, ctx.now),
        }
    );
    let _ = writeln!(
        out,
        "valid now:   {}",
        match c.check_time(ctx.now) {
            Ok(()) => "yes".to_string(),
            Err(e) => format!("NO: {e}"),
        }
    );
    if !c.jti.is_empty() {
        let _ = writeln!(out, "id:          {}", c.jti);
    }
    if let Some(v) = p.get("operator") {
        let (op, in_store) = operator_arg(ctx, v)?;
        let _ = writeln!(out, "trusted:     {}", trust(ctx, &op, in_store, &c));
    }
    let _ = writeln!(out, "claims:");
    flatten("", &c.nats, out);
    Ok(())
}

/// Whether `c` chains up to `op`.
fn trust(ctx: &Ctx, op: &Entity, in_store: bool, c: &Claims) -> String {
    let oc: OperatorClaims = match op.claims.typed() {
        Ok(o) => o,
        Err(e) => return format!("NO: the operator JWT is not usable: {e}"),
    };
    let okey = &op.claims.sub;
    let op_signs = |k: &str| {
        (k == okey && !oc.strict_signing_key_usage) || oc.signing_keys.0.iter().any(|s| s == k)
    };
    match c.kind() {
        Kind::Operator if &c.sub == okey => format!("yes, this is operator {okey}"),
        Kind::Operator => format!("NO: another operator than {okey}"),
        Kind::Account if op_signs(&c.iss) => format!(
            "yes, issued by operator {okey} ({})",
            if &c.iss == okey {
                "its own key"
            } else {
                "a signing key"
            }
        ),
        Kind::Account => format!(
            "NO: issuer {} is not operator {okey} nor one of its signing keys",
            c.iss
        ),
        Kind::User | Kind::Activation => {
            let acc_key = c
                .nats
                .get("issuer_account")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or(&c.iss);
            if !in_store {
                return format!("unknown: the account {acc_key} is needed; give --operator as a store name to look it up");
            }
            let Some(acc) = ctx
                .store
                .accounts(&op.name)
                .into_iter()
                .find(|a| a.claims.sub == acc_key)
            else {
                return format!(
                    "NO: account {acc_key} is not in operator {}'s store",
                    op.name
                );
            };
            let ac: AccountClaims = match acc.claims.typed() {
                Ok(a) => a,
                Err(e) => return format!("NO: account {}: {e}", acc.name),
            };
            if !op_signs(&acc.claims.iss) {
                return format!(
                    "NO: account {} is issued by {}, not by operator {okey}",
                    acc.name, acc.claims.iss
                );
            }
            if !ac.signed_by(acc_key, &c.iss) {
                return format!(
                    "NO: issuer {} is not account {} nor one of its signing keys",
                    c.iss, acc.name
                );
            }
            if let Some(at) = ac.revoked_at(&c.sub, c.iat) {
                return format!("NO: revoked by account {} at {}", acc.name, local_text(at));
            }
            format!(
                "yes, account {} ({acc_key}) of operator {}",
                acc.name, op.name
            )
        }
        Kind::Other => "unknown: not operator, account, user or activation claims".into(),
    }
}
