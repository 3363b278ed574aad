//! Account claims over `$SYS`: pushes (`…CLAIMS.UPDATE`), and for a full
//! directory resolver lookups, lists, packs and deletes, answered as the
//! reference answers them.
//!
//! One thing is done better than the reference: a pushed account JWT is
//! verified against the trusted operators before anything is stored, and
//! one that would not be usable (untrusted, expired, invalid) is refused
//! with an error reply, never written to the resolver.
//!
//! An accepted update takes effect at once: the operator mode's accounts
//! are replaced through the control plane, so every shard re-checks its
//! connections of that account (revocations, limits, permissions) and the
//! account's exports and imports become routing edges. An update to an
//! account not in use is stored (full resolver) and read at the next
//! CONNECT.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{ClaimsMode, System};
use crate::plane::Plane;
use crate::security::jwt::{self, AccountClaims};
use crate::security::operator::{self, AccountFailure, JwtAccount, OperatorAuth};

/// The reference's answer to a claims request: `data` with the account,
/// code 200 and the message, or `error` with code 500 and the message
/// joined to the cause. Go writes this one from a map, so its keys are
/// sorted ("data"/"error" before "server").
pub fn respond(sys: &System, account: Option<&str>, message: &str, err: Option<&str>) -> Vec<u8> {
    let mut m = serde_json::Map::new();
    if let Some(a) = account.filter(|a| !a.is_empty()) {
        m.insert("account".into(), json!(a));
    }
    let key = match err {
        None => {
            m.insert("code".into(), json!(200));
            m.insert("message".into(), json!(message));
            crate::debug!("{message} - {}", account.unwrap_or_default());
            "data"
        }
        Some(e) => {
            m.insert("code".into(), json!(500));
            m.insert("description".into(), json!(format!("{message} - {e}")));
            crate::error!("{message} - {} - {e}", account.unwrap_or("n/a"));
            "error"
        }
    };
    let server = serde_json::to_string(&sys.server()).unwrap_or_default();
    format!(
        "{{{}:{},\"server\":{server}}}",
        json!(key),
        Value::Object(m)
    )
    .into_bytes()
}

/// The texts of one kind of claim push.
struct Texts {
    updated: &'static str,
    failed: &'static str,
    invalid: &'static str,
    skipped: &'static str,
}

fn texts(mode: ClaimsMode) -> Texts {
    match mode {
        ClaimsMode::Cache => Texts {
            updated: "jwt updated cache",
            failed: "jwt update cache resulted in error",
            invalid: "jwt update cache validation failed",
            skipped: "jwt update cache skipped",
        },
        _ => Texts {
            updated: "jwt updated",
            failed: "jwt update resulted in error",
            invalid: "jwt validation failed",
            skipped: "jwt update skipped",
        },
    }
}

/// A pushed account JWT. `subject_key`: the account named in the subject
/// (`$SYS.REQ.ACCOUNT.<key>.CLAIMS.UPDATE`), if any. Returns the reply.
pub fn update(
    plane: &Plane,
    sys: &System,
    subject_key: Option<&str>,
    body: &[u8],
    mode: ClaimsMode,
) -> Vec<u8> {
    let t = texts(mode);
    let token = String::from_utf8_lossy(body).trim().to_string();
    if token.is_empty() && mode == ClaimsMode::InUse {
        return respond(
            sys,
            subject_key,
            "jwt update error",
            Some("request body is empty"),
        );
    }
    let claims = match jwt::decode(&token).and_then(|c| c.typed::<AccountClaims>().map(|_| c)) {
        Ok(c) => c,
        Err(e) => {
            return respond(
                sys,
                Some(subject_key.unwrap_or("n/a")),
                t.failed,
                Some(&e.to_string()),
            )
        }
    };
    let key = claims.sub.clone();
    if subject_key.is_some_and(|k| k != key) {
        return respond(
            sys,
            subject_key,
            t.failed,
            Some("subject does not match jwt content"),
        );
    }
    let current = plane.current();
    let Some(op) = current.security.auth.operator().cloned() else {
        // Config mode has no JWT accounts to update.
        return respond(sys, Some(&key), t.skipped, None);
    };
    if mode != ClaimsMode::Full && !op.in_use(&key) {
        return respond(sys, Some(&key), t.skipped, None);
    }
    let now = operator::now();
    if let Err(e) = JwtAccount::verify(&key, &token, &op.trust, now) {
        return respond(sys, Some(&key), t.invalid, Some(&e.to_string()));
    }
    let mut effective = token;
    if mode != ClaimsMode::InUse {
        if let Err(e) = op.resolver.store(&key, &effective) {
            return respond(sys, Some(&key), t.failed, Some(&e));
        }
        // The store keeps the newer of the stored and the pushed JWT.
        if let Ok(stored) = op.resolver.fetch(&key) {
            effective = stored.trim().to_string();
        }
    }
    let applied = plane.apply(|cur| {
        let Some(op) = cur.security.auth.operator() else {
            return Err("operator mode ended".to_string());
        };
        let acc =
            JwtAccount::verify(&key, &effective, &op.trust, now).map_err(|e| e.to_string())?;
        let mut new = cur.clone();
        new.security = Arc::new(
            cur.security
                .with_operator(op.with_account(&key, Ok(Arc::new(acc)))),
        );
        Ok(new)
    });
    match applied {
        Ok(_) => {
            crate::info!("Account {key} updated by a claims push");
            respond(sys, Some(&key), t.updated, None)
        }
        Err(e) => respond(sys, Some(&key), t.failed, Some(&e)),
    }
}

/// Whether an account exports or imports anything: only then does a
/// fetched one need [`adopt`].
pub fn has_edges(claims: &crate::security::jwt::AccountClaims) -> bool {
    !claims.imports.is_empty() || !claims.exports.is_empty()
}

/// An account a CONNECT fetched from the resolver: when it exports or
/// imports, it joins the operator mode's accounts, so its edges (and those
/// of importers waiting for its exports) route, as the reference registers
/// a fetched account's imports and exports. Others stay a cached answer.
pub fn adopt(plane: &Plane, key: &str) {
    let res = plane.apply(|cur| {
        let op = cur.security.auth.operator().ok_or("not operator mode")?;
        if op.accounts().any(|a| a.key == key) {
            return Err("known");
        }
        let acc = op.account(key, operator::now()).map_err(|_| "unusable")?;
        if !has_edges(&acc.claims) {
            return Err("no edges");
        }
        let mut new = cur.clone();
        new.security = Arc::new(cur.security.with_operator(op.with_account(key, Ok(acc))));
        Ok(new)
    });
    if res.is_ok() {
        crate::debug!("Account {key} fetched: its exports and imports now route");
    }
}

/// `$SYS.REQ.ACCOUNT.<key>.CLAIMS.LOOKUP`: the stored JWT itself, or no
/// answer (the reference logs and lets the requester time out).
pub fn lookup(plane: &Plane, key: &str) -> Option<Vec<u8>> {
    let op = plane.current().security.auth.operator().cloned()?;
    match op.resolver.fetch(key) {
        Ok(jwt) => Some(jwt.trim().as_bytes().to_vec()),
        Err(e) => {
            crate::error!("Claims lookup of account {key} failed: {e}");
            None
        }
    }
}

/// Stored account JWTs that have not expired.
fn live_accounts(op: &OperatorAuth) -> Vec<(String, String)> {
    let now = operator::now();
    op.resolver
        .stored()
        .into_iter()
        .filter(|(_, jwt)| {
            jwt::decode(jwt.trim()).map_or(true, |c| c.exp.is_none_or(|e| e <= 0 || e > now))
        })
        .collect()
}

/// `$SYS.REQ.CLAIMS.LIST`: every stored account key.
pub fn list(plane: &Plane, sys: &System) -> Option<Vec<u8>> {
    let op = plane.current().security.auth.operator().cloned()?;
    let keys: Vec<String> = op.resolver.stored().into_iter().map(|(k, _)| k).collect();
    crate::debug!("list request responded with {} account ids", keys.len());
    let server = serde_json::to_string(&sys.server()).unwrap_or_default();
    Some(format!("{{\"data\":{},\"server\":{server}}}", json!(keys)).into_bytes())
}

/// The store's hash, as the reference computes it: the XOR of the SHA-256
/// of every stored JWT.
pub fn store_hash(accounts: &[(String, String)]) -> [u8; 32] {
    let mut h = [0u8; 32];
    for (_, jwt) in accounts {
        let d = ring::digest::digest(&ring::digest::SHA256, jwt.as_bytes());
        for (a, b) in h.iter_mut().zip(d.as_ref()) {
            *a ^= b;
        }
    }
    h
}

/// `$SYS.REQ.CLAIMS.PACK` with the asker's store hash: nothing but the
/// closing empty message when the stores match, else one `key|jwt`
/// message per account, then the empty one.
pub fn pack(plane: &Plane, their_hash: &[u8]) -> Vec<Vec<u8>> {
    let Some(op) = plane.current().security.auth.operator().cloned() else {
        return Vec::new();
    };
    let accounts = live_accounts(&op);
    let ours = store_hash(&accounts);
    let mut out = Vec::new();
    if their_hash != ours {
        for (k, jwt) in &accounts {
            out.push(format!("{k}|{}", jwt.trim()).into_bytes());
        }
    }
    out.push(Vec::new());
    out
}

/// `$SYS.REQ.CLAIMS.DELETE`: a generic JWT, self-signed by a trusted
/// operator key, listing `accounts` to delete. Their clients are closed
/// as expired, and their users refused from then on.
pub fn delete(plane: &Plane, sys: &System, body: &[u8]) -> Vec<u8> {
    let token = String::from_utf8_lossy(body).trim().to_string();
    let current = plane.current();
    let op = current.security.auth.operator().cloned();
    let mut subject = String::new();
    let checked = (|| -> Result<Vec<String>, String> {
        let c = jwt::decode(&token).map_err(|e| e.to_string())?;
        subject.clone_from(&c.sub);
        let op = op.as_ref().ok_or("no operator key found")?;
        if !op.resolver.can_delete() {
            return Err("delete must be enabled in server config".into());
        }
        if c.sub != c.iss {
            return Err("not self signed".into());
        }
        if !op.trust.is_trusted(&c.iss) {
            return Err("not trusted".into());
        }
        let list = c
            .nats
            .get("accounts")
            .and_then(Value::as_array)
            .ok_or("malformed request")?;
        let mut keys = Vec::new();
        for e in list {
            let k = e
                .as_str()
                .filter(|k| nkeys::KeyPair::from_public_key(k).is_ok() && k.starts_with('A'))
                .ok_or("malformed request")?;
            if Some(k) == current.security.system_account.as_deref() {
                return Err("not allowed to delete system account".into());
            }
            keys.push(k.to_string());
        }
        Ok(keys)
    })();
    let keys = match checked {
        Ok(k) => k,
        Err(e) => {
            return respond(
                sys,
                None,
                &format!("delete accounts request by {subject} failed"),
                Some(&e),
            )
        }
    };
    let Some(op) = op else {
        return respond(
            sys,
            None,
            "delete accounts request failed",
            Some("no operator"),
        );
    };
    let mut errs = Vec::new();
    let mut deleted = Vec::new();
    for k in &keys {
        match op.resolver.delete(k) {
            Ok(()) => deleted.push(k.clone()),
            Err(e) => errs.push(e),
        }
    }
    if !deleted.is_empty() {
        let res = plane.apply(|cur| {
            let Some(op) = cur.security.auth.operator() else {
                return Err("operator mode ended".to_string());
            };
            let mut next: Option<OperatorAuth> = None;
            for k in &deleted {
                let base = next.as_ref().unwrap_or(op);
                let failure = AccountFailure::Deleted { account: k.clone() };
                next = Some(base.with_account(k, Err(failure)));
            }
            let mut new = cur.clone();
            if let Some(n) = next {
                new.security = Arc::new(cur.security.with_operator(n));
            }
            Ok(new)
        });
        if let Err(e) = res {
            errs.push(e);
        }
        crate::info!("Accounts deleted by {subject}: {}", deleted.join(", "));
    }
    if errs.is_empty() {
        respond(
            sys,
            None,
            &format!("deleted {} accounts", deleted.len()),
            None,
        )
    } else {
        respond(
            sys,
            None,
            &format!(
                "deleted {} accounts, failed for {}",
                deleted.len(),
                errs.len()
            ),
            Some(&errs.join("\n")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_hash_is_order_free_and_empty_is_zero() {
        let a = ("A".to_string(), "x".to_string());
        let b = ("B".to_string(), "y".to_string());
        assert_eq!(store_hash(&[]), [0u8; 32]);
        assert_eq!(
            store_hash(&[a.clone(), b.clone()]),
            store_hash(&[b.clone(), a.clone()])
        );
        assert_ne!(store_hash(std::slice::from_ref(&a)), store_hash(&[a, b]));
    }

    #[test]
    fn responses_sort_their_keys_as_go_maps_do() {
        let (tx, _rx) = std::sync::mpsc::channel();
        let sys = System::new("SYS", "NSRV", "n", "h", tx);
        let ok = String::from_utf8(respond(&sys, Some("AKEY"), "jwt updated", None)).unwrap();
        assert!(
            ok.starts_with(r#"{"data":{"account":"AKEY","code":200,"message":"jwt updated"},"server":{"name":"n""#),
            "{ok}"
        );
        let err =
            String::from_utf8(respond(&sys, None, "delete failed", Some("not trusted"))).unwrap();
        assert!(
            err.starts_with(
                r#"{"error":{"code":500,"description":"delete failed - not trusted"},"server":"#
            ),
            "{err}"
        );
    }
}
