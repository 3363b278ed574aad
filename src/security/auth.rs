//! Authentication in config mode: token, user/password (plain or bcrypt),
//! nkey users (signature over the connection's nonce) and `no_auth_user`.
//!
//! An [`AuthConfig`] is built once per config (start or reload) and shared
//! read-only by every shard; it is consulted once per CONNECT, never per
//! message. A successful check yields an [`Identity`] (user, account,
//! permissions) to which the connection is then bound. A failure yields an
//! [`AuthFailure`] naming the cause for the server log, while the client
//! only ever sees `Authorization Violation`, as with the reference.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::config::{Permissions, ServerConfig, GLOBAL_ACCOUNT};
use crate::security::dn::Dn;
use crate::security::operator::{self, JwtFailure, OperatorAuth, Presented};

/// Who a connection authenticated as.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Identity {
    /// User name, or the public nkey for nkey and JWT users; empty without
    /// auth.
    pub name: String,
    pub account: String,
    /// `None` means everything is allowed.
    pub permissions: Option<Permissions>,
    /// Limits from the user and its account, before the server's own.
    pub limits: ConnLimits,
    /// Unix time the user's authorization ends (JWT `exp`, or the end of
    /// its allowed time window): `User Authentication Expired`.
    pub user_expires: Option<i64>,
    /// Unix time the account JWT expires: `Account Authentication Expired`.
    pub account_expires: Option<i64>,
    /// Operator mode: the user JWT behind this identity.
    pub jwt_user: Option<JwtUser>,
}

impl Identity {
    fn user(name: &str, account: &str, permissions: Option<Permissions>) -> Identity {
        Identity {
            name: name.to_string(),
            account: account.to_string(),
            permissions,
            ..Identity::default()
        }
    }
}

/// A user authenticated by JWT.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct JwtUser {
    pub key: String,
    pub name: String,
    pub iat: i64,
    pub bearer: bool,
    pub issuer: String,
    /// The user JWT's `tags`, as written.
    pub tags: Vec<String>,
}

/// Per-connection limits (-1: none), as the reference applies them to a
/// client: subscriptions and payload are the stricter of the user's and
/// the account's; connections count across the account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnLimits {
    pub subs: i64,
    pub payload: i64,
    pub account_conns: i64,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            subs: -1,
            payload: -1,
            account_conns: -1,
        }
    }
}

/// The credentials a client presented in CONNECT.
#[derive(Clone, Copy, Debug, Default)]
pub struct Credentials<'a> {
    pub user: Option<&'a str>,
    pub pass: Option<&'a str>,
    pub token: Option<&'a str>,
    pub nkey: Option<&'a str>,
    pub sig: Option<&'a str>,
    /// Identities of a verified client certificate, in the order they are
    /// tried for `verify_and_map`.
    pub cert: Option<&'a [String]>,
    /// Operator mode: the user JWT.
    pub jwt: Option<&'a str>,
    /// The client's address, for a JWT's `src` limits.
    pub ip: Option<IpAddr>,
    /// The certificate's subject DN, when the reference could read it.
    pub cert_dn: Option<&'a Dn>,
}

impl Credentials<'_> {
    fn none_given(&self) -> bool {
        is_empty(self.user) && is_empty(self.pass) && is_empty(self.token) && is_empty(self.nkey)
    }
}

fn is_empty(s: Option<&str>) -> bool {
    s.is_none_or(str::is_empty)
}

fn presented<'a>(c: &Credentials<'a>, nonce: Option<&'a [u8]>) -> Presented<'a> {
    Presented {
        jwt: c.jwt,
        sig: c.sig,
        nonce: nonce.unwrap_or_default(),
        ip: c.ip,
    }
}

/// Where [`AuthConfig::authenticate_start`] got to. Lives on the stack
/// once per CONNECT, so its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum AuthStep {
    Done(Result<Identity, AuthFailure>),
    /// The user's account must be asked of the resolver first.
    Fetch(PendingAuth),
}

/// A CONNECT waiting for its account from the resolver.
#[derive(Debug)]
pub struct PendingAuth {
    op: Arc<OperatorAuth>,
    pending: operator::Pending,
}

impl PendingAuth {
    /// The account asked for.
    pub fn account(&self) -> &str {
        self.pending.account()
    }

    /// The resolver question, to run where blocking is allowed.
    pub fn fetcher(
        &self,
    ) -> impl FnOnce() -> Result<String, operator::ResolveError> + Send + 'static {
        let resolver = self.op.resolver.clone();
        let key = self.pending.account().to_string();
        move || resolver.fetch(&key)
    }

    /// The rest of the chain with the resolver's answer.
    pub fn finish(
        self,
        answer: Result<String, operator::ResolveError>,
        c: &Credentials<'_>,
        nonce: Option<&[u8]>,
    ) -> Result<Identity, AuthFailure> {
        let now = operator::now();
        let acc = self.op.verify_answer(self.pending.account(), answer, now);
        self.op
            .finish(self.pending, acc, &presented(c, nonce), now)
            .map_err(AuthFailure::Jwt)
    }
}

/// Why authentication failed; logged, never sent to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    NoCredentials,
    UnknownUser(String),
    WrongPassword(String),
    WrongToken,
    UnknownNkey(String),
    MissingSignature(String),
    BadSignature(String),
    WrongUserForSingleUser(String),
    /// verify_and_map: no configured user matches the certificate.
    UnmappedCertificate(Vec<String>),
    /// Operator mode: the JWT chain failed.
    Jwt(JwtFailure),
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthFailure::NoCredentials => f.write_str("no credentials sent"),
            AuthFailure::UnknownUser(u) => write!(f, "unknown user {u:?}"),
            AuthFailure::WrongPassword(u) => write!(f, "wrong password for user {u:?}"),
            AuthFailure::WrongToken => f.write_str("wrong token"),
            AuthFailure::UnknownNkey(k) => write!(f, "unknown nkey {k:?}"),
            AuthFailure::MissingSignature(k) => {
                write!(f, "no signature of the nonce for nkey {k:?}")
            }
            AuthFailure::BadSignature(k) => write!(f, "signature does not verify for nkey {k:?}"),
            AuthFailure::WrongUserForSingleUser(u) => write!(f, "unknown user {u:?}"),
            AuthFailure::UnmappedCertificate(ids) => {
                write!(f, "no user matches the client certificate (tried {ids:?})")
            }
            AuthFailure::Jwt(e) => e.fmt(f),
        }
    }
}

#[derive(Clone, Debug)]
struct UserEntry {
    password: Option<String>,
    account: String,
    permissions: Option<Permissions>,
}

/// The authentication settings of one configuration.
#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    token: Option<String>,
    single_user: Option<(String, String)>,
    users: HashMap<String, UserEntry>,
    nkeys: HashMap<String, UserEntry>,
    no_auth_user: Option<String>,
    /// `tls { verify_and_map }`: the client certificate names the user.
    tls_map: bool,
    /// Config accounts' limits, by account name.
    account_limits: HashMap<String, ConnLimits>,
    /// Operator mode: users are JWTs, accounts come from the resolver.
    operator: Option<Arc<OperatorAuth>>,
    /// Users whose names read as DNs, in config order, for verify_and_map.
    dn_users: Vec<(Dn, String)>,
}

impl AuthConfig {
    pub fn from_config(cfg: &ServerConfig) -> AuthConfig {
        let mut a = AuthConfig {
            token: cfg.authorization.token.clone(),
            single_user: cfg
                .authorization
                .user
                .clone()
                .map(|u| (u, cfg.authorization.password.clone().unwrap_or_default())),
            no_auth_user: cfg.no_auth_user.clone(),
            tls_map: cfg.tls.as_ref().is_some_and(|t| t.verify_and_map),
            ..AuthConfig::default()
        };
        for u in &cfg.users {
            let e = UserEntry {
                password: u.password.clone(),
                account: u.account.clone(),
                permissions: u.permissions.clone(),
            };
            if let Some(k) = &u.nkey {
                a.nkeys.insert(k.clone(), e);
            } else if let Some(n) = &u.username {
                if let Some(dn) = Dn::parse(n).filter(|d| !d.rdns.is_empty()) {
                    a.dn_users.push((dn, n.clone()));
                }
                a.users.insert(n.clone(), e);
            }
        }
        for acc in &cfg.accounts {
            a.account_limits
                .insert(acc.name.clone(), conn_limits(&acc.limits));
        }
        a
    }

    /// Puts the configuration in operator mode; the accounts' limits come
    /// from their JWTs.
    pub fn set_operator(&mut self, op: Arc<OperatorAuth>, accounts: &[crate::config::Account]) {
        for acc in accounts {
            self.account_limits
                .insert(acc.name.clone(), conn_limits(&acc.limits));
        }
        self.operator = Some(op);
    }

    pub fn operator(&self) -> Option<&Arc<OperatorAuth>> {
        self.operator.as_ref()
    }

    /// Applies `--user/--pass/--auth`, which replace the file's single
    /// user and token as in the reference.
    pub fn apply_flags(&mut self, user: Option<&str>, pass: Option<&str>, token: Option<&str>) {
        if let Some(u) = user {
            self.single_user = Some((u.to_string(), pass.unwrap_or_default().to_string()));
        }
        if let Some(t) = token {
            self.token = Some(t.to_string());
        }
    }

    /// Whether clients must authenticate.
    pub fn required(&self) -> bool {
        self.operator.is_some()
            || self.token.is_some()
            || self.single_user.is_some()
            || !self.users.is_empty()
            || !self.nkeys.is_empty()
    }

    /// Whether INFO must carry a nonce (nkey users exist).
    pub fn needs_nonce(&self) -> bool {
        !self.nkeys.is_empty() || self.operator.is_some()
    }

    pub fn no_auth_user(&self) -> Option<&str> {
        self.no_auth_user.as_deref()
    }

    /// The identity of the `no_auth_user`, for a client that starts without
    /// CONNECT (the reference lets such a client in as that user).
    pub fn no_auth_identity(&self) -> Option<Identity> {
        let name = self.no_auth_user.as_deref()?;
        let u = self.users.get(name)?;
        let mut id = Identity::user(name, &u.account, u.permissions.clone());
        id.limits = self.limits_of(&u.account);
        Some(id)
    }

    /// The limits config account `account` imposes on each connection.
    fn limits_of(&self, account: &str) -> ConnLimits {
        self.account_limits
            .get(account)
            .copied()
            .unwrap_or_default()
    }

    /// Checks a CONNECT's credentials. `nonce` is the INFO nonce as sent.
    /// In operator mode this may ask the account resolver and block: a
    /// shard uses [`AuthConfig::authenticate_start`] instead.
    pub fn authenticate(
        &self,
        c: &Credentials<'_>,
        nonce: Option<&[u8]>,
    ) -> Result<Identity, AuthFailure> {
        match self.authenticate_start(c, nonce) {
            AuthStep::Done(r) => r,
            AuthStep::Fetch(p) => {
                let answer = p.fetcher()();
                p.finish(answer, c, nonce)
            }
        }
    }

    /// Like [`AuthConfig::authenticate`] but never blocks: an operator-mode
    /// account that is not at hand is reported as not found (not asked).
    pub fn authenticate_now(
        &self,
        c: &Credentials<'_>,
        nonce: Option<&[u8]>,
    ) -> Result<Identity, AuthFailure> {
        match self.authenticate_start(c, nonce) {
            AuthStep::Done(r) => r,
            AuthStep::Fetch(p) => {
                let answer = Err(operator::ResolveError::NotFound(
                    "nothing: not asked now (the account is not in memory)".into(),
                ));
                p.finish(answer, c, nonce)
            }
        }
    }

    /// Checks a CONNECT's credentials as far as possible without blocking:
    /// either the answer, or an account the resolver must be asked for
    /// (off the shard) before [`PendingAuth::finish`].
    pub fn authenticate_start(&self, c: &Credentials<'_>, nonce: Option<&[u8]>) -> AuthStep {
        if let Some(op) = &self.operator {
            let p = presented(c, nonce);
            let now = operator::now();
            let pending = match op.begin(&p, now) {
                Ok(pd) => pd,
                Err(e) => return AuthStep::Done(Err(AuthFailure::Jwt(e))),
            };
            return match op.account_at_hand(pending.account(), now) {
                Some(acc) => {
                    AuthStep::Done(op.finish(pending, acc, &p, now).map_err(AuthFailure::Jwt))
                }
                None => AuthStep::Fetch(PendingAuth {
                    op: op.clone(),
                    pending,
                }),
            };
        }
        AuthStep::Done(self.authenticate_config(c, nonce).map(|mut id| {
            id.limits = self.limits_of(&id.account);
            id
        }))
    }

    fn authenticate_config(
        &self,
        c: &Credentials<'_>,
        nonce: Option<&[u8]>,
    ) -> Result<Identity, AuthFailure> {
        if !self.required() {
            return Ok(Identity::user("", GLOBAL_ACCOUNT, None));
        }
        if self.tls_map {
            // The certificate decides: its identities are tried in order
            // against the configured users (then nkeys).
            let ids = c.cert.unwrap_or_default();
            let found = |id: &str| {
                let u = self.users.get(id).or_else(|| self.nkeys.get(id))?;
                Some(Identity::user(id, &u.account, u.permissions.clone()))
            };
            // SANs first (all but the last identity), then the subject DN:
            // a user whose DN equals it, else one with the same RDNs in
            // another order, else its string form.
            let (sans, subject) = ids.split_at(ids.len().saturating_sub(1));
            if let Some(id) = sans.iter().find_map(|id| found(id)) {
                return Ok(id);
            }
            if let Some(cert) = c.cert_dn {
                let by_dn = self
                    .dn_users
                    .iter()
                    .find(|(d, _)| d.equal(cert))
                    .or_else(|| self.dn_users.iter().find(|(d, _)| d.rdns_match(cert)));
                if let Some(id) = by_dn.and_then(|(_, name)| found(name)) {
                    return Ok(id);
                }
            }
            if let Some(id) = subject.iter().find_map(|id| found(id)) {
                return Ok(id);
            }
            return Err(AuthFailure::UnmappedCertificate(ids.to_vec()));
        }
        if !self.nkeys.is_empty() {
            if let Some(k) = c.nkey.filter(|k| !k.is_empty()) {
                let u = self
                    .nkeys
                    .get(k)
                    .ok_or_else(|| AuthFailure::UnknownNkey(k.to_string()))?;
                let sig = c
                    .sig
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| AuthFailure::MissingSignature(k.to_string()))?;
                if !verify_nkey(k, sig, nonce.unwrap_or_default()) {
                    return Err(AuthFailure::BadSignature(k.to_string()));
                }
                return Ok(Identity::user(k, &u.account, u.permissions.clone()));
            }
        }
        if !self.users.is_empty() || !self.nkeys.is_empty() {
            // A client that sends no credentials at all becomes the
            // no_auth_user; wrong credentials are still refused.
            if c.none_given() {
                if let Some(id) = self.no_auth_identity() {
                    return Ok(id);
                }
            }
            let user = c.user.filter(|u| !u.is_empty());
            let pass = c.pass.unwrap_or_default();
            if let Some(name) = user {
                let u = self
                    .users
                    .get(name)
                    .ok_or_else(|| AuthFailure::UnknownUser(name.to_string()))?;
                if !compare_passwords(u.password.as_deref().unwrap_or_default(), pass) {
                    return Err(AuthFailure::WrongPassword(name.to_string()));
                }
                return Ok(Identity::user(name, &u.account, u.permissions.clone()));
            }
        }
        if let Some(t) = &self.token {
            if c.token.is_none_or(str::is_empty) && c.none_given() {
                return Err(AuthFailure::NoCredentials);
            }
            return if compare_passwords(t, c.token.unwrap_or_default()) {
                Ok(Identity::user("", GLOBAL_ACCOUNT, None))
            } else {
                Err(AuthFailure::WrongToken)
            };
        }
        if let Some((u, p)) = &self.single_user {
            let given = c.user.unwrap_or_default();
            if given.is_empty() && c.none_given() {
                return Err(AuthFailure::NoCredentials);
            }
            if given != u {
                return Err(AuthFailure::WrongUserForSingleUser(given.to_string()));
            }
            return if compare_passwords(p, c.pass.unwrap_or_default()) {
                Ok(Identity::user(u, GLOBAL_ACCOUNT, None))
            } else {
                Err(AuthFailure::WrongPassword(u.clone()))
            };
        }
        if c.none_given() {
            Err(AuthFailure::NoCredentials)
        } else if let Some(u) = c.user.filter(|u| !u.is_empty()) {
            Err(AuthFailure::UnknownUser(u.to_string()))
        } else {
            Err(AuthFailure::NoCredentials)
        }
    }
}

fn conn_limits(l: &crate::config::AccountLimits) -> ConnLimits {
    ConnLimits {
        subs: l.max_subscriptions.into(),
        payload: l.max_payload.into(),
        account_conns: l.max_connections.into(),
    }
}

/// The reference's bcrypt detection: `$2a$`, `$2b$`, `$2x$`, `$2y$` plus a
/// two-digit cost.
pub fn is_bcrypt(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 7
        && b[0] == b'$'
        && b[1] == b'2'
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
}

/// Compares a configured secret with a presented one: bcrypt when the
/// configured one is a hash (so the hash itself is not a valid password),
/// otherwise in constant time.
pub fn compare_passwords(configured: &str, given: &str) -> bool {
    if is_bcrypt(configured) {
        return bcrypt::verify(given, configured).unwrap_or(false);
    }
    constant_time_eq(configured.as_bytes(), given.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// Verifies an nkey signature of `nonce`; the signature is base64 (URL-safe
/// without padding, or standard), as clients send it.
pub(crate) fn verify_nkey(public: &str, sig: &str, nonce: &[u8]) -> bool {
    let Some(sig) = base64_decode(sig) else {
        return false;
    };
    match nkeys::KeyPair::from_public_key(public) {
        Ok(kp) => kp.verify(nonce, &sig).is_ok(),
        Err(_) => false,
    }
}

/// Decodes base64 in either the URL-safe or the standard alphabet, with or
/// without padding.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// URL-safe base64 without padding (the nonce's encoding).
pub fn base64_url_encode(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A fresh nonce for INFO: 11 random bytes, URL-safe base64 (15 chars),
/// the reference's size.
pub fn new_nonce() -> String {
    let mut b = [0u8; 11];
    // SAFETY: getrandom writes at most `b.len()` bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        // The kernel's generator does not fail for small requests once
        // seeded; fall back to time-derived bytes rather than panic.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        for (i, x) in b.iter_mut().enumerate() {
            *x = (t.as_nanos() >> (i * 5)) as u8;
        }
    }
    base64_url_encode(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> AuthConfig {
        AuthConfig::from_config(&crate::config::parse_str(text).expect("config parses"))
    }

    fn creds<'a>(
        user: Option<&'a str>,
        pass: Option<&'a str>,
        token: Option<&'a str>,
    ) -> Credentials<'a> {
        Credentials {
            user,
            pass,
            token,
            nkey: None,
            sig: None,
            cert: None,
            jwt: None,
            ip: None,
            cert_dn: None,
        }
    }

    #[test]
    fn base64_round_trip() {
        for data in [
            &b""[..],
            b"a",
            b"ab",
            b"abc",
            b"abcd",
            &[0xff, 0xfe, 0x00, 0x10],
        ] {
            assert_eq!(base64_decode(&base64_url_encode(data)).unwrap(), data);
        }
        assert_eq!(base64_url_encode(b"\xfb\xff"), "-_8");
        assert_eq!(base64_decode("+/8=").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(new_nonce().len(), 15);
    }

    #[test]
    fn bcrypt_detection_and_compare() {
        let h = bcrypt::hash("secret", 4).unwrap();
        assert!(is_bcrypt(&h));
        assert!(compare_passwords(&h, "secret"));
        assert!(!compare_passwords(&h, &h));
        assert!(!is_bcrypt("$2a$x"));
        assert!(compare_passwords("plain", "plain"));
        assert!(!compare_passwords("plain", "plai"));
    }

    #[test]
    fn users_and_causes() {
        let a = cfg(
            "authorization { users: [ {user: alice, password: pw}, {user: bob, password: b} ] }",
        );
        assert!(a.required());
        assert_eq!(
            a.authenticate(&creds(Some("alice"), Some("pw"), None), None)
                .unwrap()
                .name,
            "alice"
        );
        assert_eq!(
            a.authenticate(&creds(Some("alice"), Some("x"), None), None),
            Err(AuthFailure::WrongPassword("alice".into()))
        );
        assert_eq!(
            a.authenticate(&creds(Some("carol"), Some("x"), None), None),
            Err(AuthFailure::UnknownUser("carol".into()))
        );
        assert_eq!(
            a.authenticate(&creds(None, None, None), None),
            Err(AuthFailure::NoCredentials)
        );
    }

    #[test]
    fn token_and_single_user() {
        let a = cfg("authorization { token: s3cr3t }");
        assert!(a
            .authenticate(&creds(None, None, Some("s3cr3t")), None)
            .is_ok());
        assert_eq!(
            a.authenticate(&creds(None, None, Some("nope")), None),
            Err(AuthFailure::WrongToken)
        );
        let b = cfg("authorization { user: u, password: p }");
        assert!(b
            .authenticate(&creds(Some("u"), Some("p"), None), None)
            .is_ok());
        assert!(b
            .authenticate(&creds(Some("u"), Some("q"), None), None)
            .is_err());
    }

    #[test]
    fn no_auth_user_only_without_credentials() {
        let a = cfg("accounts { A { users: [ {user: anon, password: x} ] } }\nno_auth_user: anon");
        let id = a.authenticate(&creds(None, None, None), None).unwrap();
        assert_eq!((id.name.as_str(), id.account.as_str()), ("anon", "A"));
        assert!(a
            .authenticate(&creds(Some("anon"), Some("bad"), None), None)
            .is_err());
    }

    #[test]
    fn nkey_signature_over_nonce() {
        let kp = nkeys::KeyPair::new_user();
        let pk = kp.public_key();
        let a = cfg(&format!("authorization {{ users: [ {{nkey: {pk}}} ] }}"));
        assert!(a.needs_nonce());
        let nonce = new_nonce();
        let sig = base64_url_encode(&kp.sign(nonce.as_bytes()).unwrap());
        let c = Credentials {
            nkey: Some(&pk),
            sig: Some(&sig),
            ..Default::default()
        };
        assert_eq!(a.authenticate(&c, Some(nonce.as_bytes())).unwrap().name, pk);
        let other = new_nonce();
        assert_eq!(
            a.authenticate(&c, Some(other.as_bytes())),
            Err(AuthFailure::BadSignature(pk.clone()))
        );
        let c = Credentials {
            nkey: Some(&pk),
            ..Default::default()
        };
        assert_eq!(
            a.authenticate(&c, Some(nonce.as_bytes())),
            Err(AuthFailure::MissingSignature(pk))
        );
    }
}
