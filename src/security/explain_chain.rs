//! The operator-mode chain of `natrix explain --creds/--jwt`, one step per
//! check the server makes at CONNECT, each PASS or FAIL with the cause and
//! the fix. The checks are the server's own ([`OperatorAuth`],
//! [`JwtAccount`], [`Claims::check_time`]); this module only walks them in
//! order and names them, stopping at the first failure as the server does.

use std::fmt::Write as _;

use super::jwt::{self, Claims, JwtError, UserClaims};
use super::operator::{AccountFailure, JwtAccount, OperatorAuth};

/// One check and its outcome.
pub struct Step {
    pub name: &'static str,
    pub pass: bool,
    pub detail: String,
    pub fix: Option<String>,
}

fn pass(name: &'static str, detail: impl Into<String>) -> Step {
    Step {
        name,
        pass: true,
        detail: detail.into(),
        fix: None,
    }
}

fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Step {
    Step {
        name,
        pass: false,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

/// The steps for a user JWT (and the seed that signs the nonce, when
/// known), up to the first failure.
pub fn walk(op: &OperatorAuth, token: &str, seed: Option<&str>, now: i64) -> Vec<Step> {
    let mut steps = Vec::new();
    let c: Claims = match jwt::decode(token) {
        Ok(c) => c,
        Err(e) => {
            steps.push(fail(
                "user JWT",
                e.to_string(),
                "use the creds file the tool wrote (natrix jwt creds), or reissue the user (natrix jwt issue)",
            ));
            return steps;
        }
    };
    let uc: UserClaims = match c.typed() {
        Ok(u) => u,
        Err(e) => {
            steps.push(fail(
                "user JWT",
                e.to_string(),
                "give a user JWT (natrix jwt describe shows what this one is)",
            ));
            return steps;
        }
    };
    steps.push(pass(
        "user JWT",
        format!(
            "user {} {:?}, signature by {} verifies",
            c.sub, c.name, c.iss
        ),
    ));
    match c.check_time(now) {
        Ok(()) => steps.push(pass(
            "user validity",
            match c.exp.filter(|&e| e > 0) {
                Some(e) => format!("valid until {}", jwt::unix_text(e)),
                None => "no expiry".into(),
            },
        )),
        Err(e) => {
            let fix = match e {
                JwtError::NotYetValid { .. } => "wait, or reissue it without --start (and check the clocks)",
                _ => "reissue it with a later expiry: natrix jwt edit user --account ACC --name USER --exp 30d",
            };
            steps.push(fail("user validity", e.to_string(), fix));
            return steps;
        }
    }
    let account = if uc.issuer_account.is_empty() {
        c.iss.clone()
    } else {
        uc.issuer_account.clone()
    };
    let acc: std::sync::Arc<JwtAccount> = match op.account(&account, now) {
        Ok(a) => a,
        Err(f) => {
            let (name, fix) = match &f {
                AccountFailure::NotFound { .. } => (
                    "account",
                    format!("make the resolver know {account}: natrix jwt generate config (MEMORY preloads), or natrix jwt push (full resolver)"),
                ),
                AccountFailure::Untrusted { .. } => (
                    "operator",
                    format!("sign the account with a trusted operator key (natrix jwt edit account), or trust its operator; the server trusts {}", op.trust.describe()),
                ),
                AccountFailure::Expired { .. } => (
                    "account validity",
                    "extend it: natrix jwt edit account --name ACC --exp 1y, then reload or push".to_string(),
                ),
                AccountFailure::Invalid { .. } => (
                    "account",
                    "reissue the account JWT (natrix jwt describe shows what is wrong)".to_string(),
                ),
                AccountFailure::Deleted { .. } => (
                    "account",
                    "the operator deleted it: push the account JWT again (natrix jwt push) if it should come back".to_string(),
                ),
            };
            if name != "account" {
                steps.push(pass(
                    "account",
                    format!("{account} known to the {}", op.resolver.describe()),
                ));
            }
            steps.push(fail(name, f.to_string(), fix));
            return steps;
        }
    };
    steps.push(pass(
        "account",
        format!(
            "{account} {:?} known to the {}",
            acc.name,
            op.resolver.describe()
        ),
    ));
    steps.push(pass(
        "operator",
        format!(
            "the account is issued by {}, which the server trusts",
            acc.issuer
        ),
    ));
    steps.push(pass(
        "account validity",
        match acc.exp {
            Some(e) => format!("valid until {}", jwt::unix_text(e)),
            None => "no expiry".into(),
        },
    ));
    match acc.signer(&c.iss) {
        None => {
            steps.push(fail(
                "issuer",
                format!("{} is not account {account} nor one of its signing keys", c.iss),
                format!("natrix jwt edit account --name ACC --sk {} (or reissue the user with the account key)", c.iss),
            ));
            return steps;
        }
        Some(scope) => steps.push(pass(
            "issuer",
            match scope {
                _ if c.iss == account => "the account key".to_string(),
                Some(s) => format!(
                    "scoped signing key {} (role {:?}): its template sets the permissions",
                    c.iss, s.role
                ),
                None => format!("signing key {} of the account", c.iss),
            },
        )),
    }
    if let Some(at) = acc.revoked(&c.sub, c.iat) {
        steps.push(fail(
            "revocation",
            format!("revoked at {} (the JWT was issued at {})", jwt::unix_text(at), jwt::unix_text(c.iat)),
            format!("reissue the user (a new iat after the revocation), or natrix jwt edit account --name ACC --rm-revoke {}", c.sub),
        ));
        return steps;
    }
    steps.push(pass("revocation", "not revoked"));
    if uc.bearer_token {
        if acc.claims.limits.disallow_bearer {
            steps.push(fail(
                "signature",
                "bearer token, and the account disallows bearer tokens",
                "natrix jwt edit user --bearer=false (then the client signs the nonce), or edit account --disallow-bearer=false",
            ));
        } else {
            steps.push(pass("signature", "bearer token: no nonce signature needed"));
        }
        return steps;
    }
    match seed.map(nkeys::KeyPair::from_seed) {
        None => steps.push(fail(
            "signature",
            "no seed given to sign the nonce",
            "use --creds FILE (or --seed SEED with --jwt)",
        )),
        Some(Err(e)) => steps.push(fail(
            "signature",
            format!("the seed does not decode: {e}"),
            "use the creds file made with the JWT",
        )),
        Some(Ok(kp)) if kp.public_key() != c.sub => steps.push(fail(
            "signature",
            format!(
                "the seed belongs to {}, the JWT to {}",
                kp.public_key(),
                c.sub
            ),
            "use the creds file made with this JWT (natrix jwt creds)",
        )),
        Some(Ok(_)) => steps.push(pass(
            "signature",
            "the seed signs the nonce for the JWT's subject",
        )),
    }
    steps
}

/// The steps as text: `  PASS name: detail`, and for a failure the cause
/// and the fix on their own lines.
pub fn render(steps: &[Step]) -> String {
    let mut out = String::from("steps the server walks:\n");
    for s in steps {
        if s.pass {
            let _ = writeln!(out, "  PASS {}: {}", s.name, s.detail);
        } else {
            let _ = writeln!(out, "  FAIL {}", s.name);
            let _ = writeln!(out, "       cause: {}", s.detail);
            if let Some(f) = &s.fix {
                let _ = writeln!(out, "       fix:   {f}");
            }
        }
    }
    out
}
