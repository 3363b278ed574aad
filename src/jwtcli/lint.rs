//! `natrix jwt lint`: mistakes in a store that the server would not
//! report, or would report only when a client fails:
//!
//! - users without permissions of their own in an account whose
//!   `default_permissions` deny (they get the account's defaults);
//! - deny rules that shadow allow rules (deny wins, the allow is dead);
//! - users that may publish requests but not subscribe to `_INBOX.>` for
//!   the replies;
//! - JWTs expired or expiring within `--expiring-days` days;
//! - users issued by a signing key the account does not list;
//! - accounts the resolver does not hold, or holds in another version
//!   (`--resolver-dir`: a full resolver's directory; `--server`: asked
//!   over `$SYS.REQ.ACCOUNT.<key>.CLAIMS.LOOKUP`).
//!
//! Each finding is one line naming the JWT and the fix. Exit status 1
//! when there is any.

use std::path::Path;

use super::args::{opt, CliError, Command, Parsed};
use super::claims::local_text;
use super::push::{system_creds, timeout, Client};
use super::store::Entity;
use super::Ctx;
use crate::security::jwt::{AccountClaims, Permission, Permissions, UserClaims};
use crate::subject::subset;

pub const LINT: Command = Command {
    path: "jwt lint",
    about: "Find mistakes in a store: shadowed or missing permissions, requests without an inbox, expiring JWTs, unknown signing keys, accounts missing from the resolver.",
    positional: None,
    flags: &[
        opt("operator", "NAME", "the operator (default: the only one in the store)"),
        opt("expiring-days", "N", "flag JWTs that expire within N days (default: 30)"),
        opt("resolver-dir", "DIR", "a full resolver's directory: flag accounts not in it, or older there"),
        opt("server", "URL", "a running server: flag accounts its resolver does not hold (needs the SYS creds)"),
        opt("creds", "FILE", "the system user's creds for --server (default: the store's SYS/sys)"),
        opt("timeout", "DUR", "for --server: how long to wait for each answer (default: 5s)"),
    ],
};

const INBOX: &str = "_INBOX.>";

fn is_empty(p: &Permission) -> bool {
    p.allow.0.is_empty() && p.deny.0.is_empty()
}

/// `deny X shadows allow Y` for every allow rule a deny rule covers.
fn shadows(what: &str, p: &Permission, out: &mut Vec<String>) {
    for a in &p.allow.0 {
        let a_subj = a.split_whitespace().next().unwrap_or("");
        for d in &p.deny.0 {
            let d_subj = d.split_whitespace().next().unwrap_or("");
            if subset(a_subj.as_bytes(), d_subj.as_bytes()) {
                out.push(format!(
                    "{what} deny {d:?} shadows allow {a:?}: deny wins, so the allow never applies (narrow the deny or drop the allow)"
                ));
            }
        }
    }
}

fn covers(rules: &[String], subj: &str) -> bool {
    rules.iter().any(|r| {
        subset(
            subj.as_bytes(),
            r.split_whitespace().next().unwrap_or("").as_bytes(),
        )
    })
}

/// Findings about one set of permissions.
fn check_permissions(perms: &Permissions, out: &mut Vec<String>) {
    shadows("publish", &perms.publish, out);
    shadows("subscribe", &perms.subscribe, out);
    let pub_restricted = !perms.publish.allow.0.is_empty();
    let sub_restricted = !perms.subscribe.allow.0.is_empty();
    if pub_restricted
        && sub_restricted
        && !covers(&perms.subscribe.allow.0, INBOX)
        && perms.resp.is_none()
    {
        out.push(format!(
            "may publish to {} but not subscribe to {INBOX:?}: its requests get no replies (add --allow-sub \"{INBOX}\")",
            perms.publish.allow.0.join(", ")
        ));
    }
    if covers(&perms.subscribe.deny.0, INBOX) {
        out.push(format!(
            "subscribe deny covers {INBOX:?}: its requests get no replies"
        ));
    }
}

fn expiry(who: &str, e: &Entity, now: i64, days: i64, out: &mut Vec<String>) {
    if let Some(exp) = e.claims.exp.filter(|&x| x > 0) {
        if exp <= now {
            out.push(format!(
                "{who}: expired at {} (reissue it with a later --exp)",
                local_text(exp)
            ));
        } else if exp - now <= days * 86_400 {
            out.push(format!(
                "{who}: expires at {}, within {days} days (reissue it with a later --exp)",
                local_text(exp)
            ));
        }
    }
}

pub fn lint(ctx: &Ctx, p: &Parsed) -> Result<(), CliError> {
    let op_name = ctx.store.pick_operator(p.get("operator"))?;
    let days = p.int("expiring-days")?.unwrap_or(30);
    let op = ctx.store.operator(&op_name)?;
    let mut findings: Vec<String> = Vec::new();
    expiry(
        &format!("operator {op_name}"),
        &op,
        ctx.now,
        days,
        &mut findings,
    );
    let accounts = ctx.store.accounts(&op_name);
    for acc in &accounts {
        expiry(
            &format!("account {}", acc.name),
            acc,
            ctx.now,
            days,
            &mut findings,
        );
        let ac: AccountClaims = match acc.claims.typed() {
            Ok(a) => a,
            Err(e) => {
                findings.push(format!("account {}: {e}", acc.name));
                continue;
            }
        };
        let mut own = Vec::new();
        check_permissions(&ac.default_permissions, &mut own);
        findings.extend(
            own.into_iter()
                .map(|f| format!("account {} default permissions: {f}", acc.name)),
        );
        let defaults_deny = !ac.default_permissions.publish.deny.0.is_empty()
            || !ac.default_permissions.subscribe.deny.0.is_empty();
        for user in ctx.store.users(&op_name, &acc.name) {
            let who = format!("user {} of account {}", user.name, acc.name);
            expiry(&who, &user, ctx.now, days, &mut findings);
            let uc: UserClaims = match user.claims.typed() {
                Ok(u) => u,
                Err(e) => {
                    findings.push(format!("{who}: {e}"));
                    continue;
                }
            };
            if !ac.signed_by(&acc.claims.sub, &user.claims.iss) {
                findings.push(format!(
                    "{who}: issued by {}, which is not a signing key of the account: the server refuses it (add it with natrix jwt edit account --name {} --sk {}, or reissue the user)",
                    user.claims.iss, acc.name, user.claims.iss
                ));
            }
            if let Some(at) = ac.revoked_at(&user.claims.sub, user.claims.iat) {
                findings.push(format!(
                    "{who}: revoked at {} (reissue it, or remove the revocation)",
                    local_text(at)
                ));
            }
            let perms = &uc.permissions;
            let scoped = user.claims.iss != acc.claims.sub
                && ac.signing_keys.iter().any(|k| {
                    k.key() == user.claims.iss
                        && matches!(k, crate::security::jwt::SigningKey::Scoped(_))
                });
            if is_empty(&perms.publish) && is_empty(&perms.subscribe) && !scoped && defaults_deny {
                findings.push(format!(
                    "{who}: has no permissions of its own, so the account's default_permissions apply, and they deny (publish deny: [{}], subscribe deny: [{}]); give the user permissions if that is not meant",
                    ac.default_permissions.publish.deny.0.join(", "),
                    ac.default_permissions.subscribe.deny.0.join(", ")
                ));
            }
            let mut own = Vec::new();
            check_permissions(perms, &mut own);
            findings.extend(own.into_iter().map(|f| format!("{who}: {f}")));
        }
    }
    if let Some(dir) = p.get("resolver-dir") {
        if !Path::new(dir).is_dir() {
            return Err(CliError::Failed(format!(
                "--resolver-dir {dir}: not a directory"
            )));
        }
        for acc in &accounts {
            let file = Path::new(dir).join(format!("{}.jwt", acc.claims.sub));
            match std::fs::read_to_string(&file) {
                Err(_) => findings.push(format!(
                    "account {}: not pushed to the resolver ({} does not exist; run natrix jwt push)",
                    acc.name,
                    file.display()
                )),
                Ok(t) if t.trim() != acc.token => findings.push(format!(
                    "account {}: the resolver holds another version ({}; run natrix jwt push)",
                    acc.name,
                    file.display()
                )),
                Ok(_) => {}
            }
        }
    }
    if let Some(url) = p.get("server") {
        let creds = system_creds(ctx, p, Some(&op_name))?;
        let mut client = Client::connect(url, &creds, timeout(p)?)?;
        for acc in &accounts {
            let subj = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.LOOKUP", acc.claims.sub);
            match client.request(&subj, b"") {
                Ok(body) if String::from_utf8_lossy(&body).trim() == acc.token => {}
                Ok(body) if body.is_empty() => findings.push(format!(
                    "account {}: the server's resolver does not hold it (run natrix jwt push)",
                    acc.name
                )),
                Ok(_) => findings.push(format!(
                    "account {}: the server's resolver holds another version (run natrix jwt push)",
                    acc.name
                )),
                Err(e) => findings.push(format!("account {}: lookup failed: {e}", acc.name)),
            }
        }
    }
    for f in &findings {
        println!("{f}");
    }
    if findings.is_empty() {
        println!("no findings in operator {op_name}");
        Ok(())
    } else {
        Err(CliError::Failed(format!("{} findings", findings.len())))
    }
}
