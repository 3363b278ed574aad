//! Operator mode in tests: operator, account and user JWTs minted at test
//! time (nkeys and natrix's claims encoder), and clients that connect with
//! them by signing the INFO nonce.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{is_natrix, Raw, Server};
use natrix::security::auth::base64_url_encode;
use natrix::security::jwt::{encode, Claims};
use nkeys::KeyPair;
use serde_json::{json, Value};

/// Makes every minted token's `jti` unique (stores keep the newest by it).
static SERIAL: AtomicU64 = AtomicU64::new(1);

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Merges `extra` into `base` (objects key by key, recursively).
pub fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}

pub fn mint(
    issuer: &KeyPair,
    subject: &str,
    name: &str,
    nats: Value,
    edit: impl FnOnce(&mut Claims),
) -> String {
    let mut c = Claims {
        jti: format!(
            "J{}{}",
            SERIAL.fetch_add(1, Ordering::Relaxed),
            subject.get(..12).unwrap_or(subject)
        ),
        iat: now() - 5,
        iss: issuer.public_key(),
        sub: subject.to_string(),
        name: name.to_string(),
        aud: None,
        exp: None,
        nbf: None,
        nats,
    };
    edit(&mut c);
    encode(&c, issuer).expect("encode")
}

pub fn operator_jwt(op: &KeyPair, extra: Value) -> String {
    let mut nats = json!({"type": "operator", "version": 2});
    merge(&mut nats, extra);
    mint(op, &op.public_key(), "OP", nats, |_| {})
}

/// Sets the claims' `name` (for the `edit` of the `*_with` minters).
pub fn named(name: &str) -> impl FnOnce(&mut Claims) + '_ {
    move |c| c.name = name.to_string()
}

/// An account JWT with every limit unlimited, as nsc writes it, plus
/// `extra`.
pub fn account_jwt(issuer: &KeyPair, acc: &KeyPair, extra: Value) -> String {
    account_jwt_with(issuer, acc, extra, |_| {})
}

pub fn account_jwt_with(
    issuer: &KeyPair,
    acc: &KeyPair,
    extra: Value,
    edit: impl FnOnce(&mut Claims),
) -> String {
    let mut nats = json!({
        "type": "account", "version": 2,
        "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                   "wildcards": true, "conn": -1, "leaf": -1},
        "default_permissions": {"pub": {}, "sub": {}},
    });
    merge(&mut nats, extra);
    mint(issuer, &acc.public_key(), "ACC", nats, edit)
}

/// A user JWT with no permissions and unlimited limits, plus `extra`.
pub fn user_jwt(issuer: &KeyPair, user: &KeyPair, extra: Value) -> String {
    user_jwt_with(issuer, user, extra, |_| {})
}

pub fn user_jwt_with(
    issuer: &KeyPair,
    user: &KeyPair,
    extra: Value,
    edit: impl FnOnce(&mut Claims),
) -> String {
    let mut nats = json!({
        "type": "user", "version": 2,
        "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
    });
    merge(&mut nats, extra);
    mint(issuer, &user.public_key(), "alice", nats, edit)
}

/// An operator with its JWT and a server config trusting it, with these
/// accounts preloaded into the MEMORY resolver.
pub struct Setup {
    pub op: KeyPair,
    pub op_jwt: String,
}

impl Setup {
    pub fn new() -> Setup {
        let op = KeyPair::new_operator();
        let op_jwt = operator_jwt(&op, json!({}));
        Setup { op, op_jwt }
    }

    pub fn config(&self, accounts: &[(&KeyPair, &str)], extra: &str) -> String {
        let mut c = format!(
            "operator: {}\nresolver: MEMORY\nresolver_preload: {{\n",
            self.op_jwt
        );
        for (k, jwt) in accounts {
            c.push_str(&format!("  {}: {}\n", k.public_key(), jwt));
        }
        c.push_str("}\n");
        c.push_str(extra);
        c
    }

    /// A server with one account (unlimited, plus `acc_extra`).
    pub fn one_account(&self, acc_extra: Value) -> (Server, KeyPair) {
        let acc = KeyPair::new_account();
        let jwt = account_jwt(&self.op, &acc, acc_extra);
        let srv = Server::with_config(&self.config(&[(&acc, &jwt)], ""), &[]);
        (srv, acc)
    }
}

/// Connects, signs the INFO nonce with `signer` (none: no signature) and
/// sends CONNECT with `jwt` and a PING; returns the client and the first
/// line the server answered with.
pub fn connect_jwt(port: u16, jwt: &str, signer: Option<&KeyPair>) -> (Raw, String) {
    connect_jwt_with(port, jwt, signer, json!({}))
}

pub fn connect_jwt_with(
    port: u16,
    jwt: &str,
    signer: Option<&KeyPair>,
    extra: Value,
) -> (Raw, String) {
    let mut r = Raw::connect(port);
    let nonce = r.info["nonce"]
        .as_str()
        .expect("INFO has a nonce")
        .to_string();
    let mut co = json!({
        "verbose": false, "pedantic": false, "headers": true, "no_responders": true,
        "protocol": 1, "jwt": jwt,
    });
    if let Some(kp) = signer {
        co["sig"] = json!(base64_url_encode(&kp.sign(nonce.as_bytes()).unwrap()));
    }
    merge(&mut co, extra);
    r.send(format!("CONNECT {co}\r\nPING\r\n").as_bytes());
    let line = r.next_line();
    (r, line)
}

/// Connects as a user that must be accepted.
pub fn login(port: u16, issuer: &KeyPair, user: &KeyPair, extra: Value) -> Raw {
    let jwt = user_jwt(issuer, user, extra);
    let (r, line) = connect_jwt(port, &jwt, Some(user));
    assert_eq!(line, "PONG", "login refused");
    r
}

/// The client is refused with `Authorization Violation` and closed; natrix
/// also logs `cause`.
pub fn assert_refused(srv: &Server, mut r: Raw, line: String, cause: &str) {
    assert_eq!(
        line, "-ERR 'Authorization Violation'",
        "expected a refusal ({cause})"
    );
    r.read_until_closed(Duration::from_secs(5));
    if is_natrix() {
        assert!(
            srv.wait_for_log(cause, Duration::from_secs(5)),
            "natrix log does not name the cause {cause:?}:\n{}",
            srv.log()
        );
    }
}
