//! Operator mode: decentralized authentication with JWTs.
//!
//! The server trusts operator keys (from operator JWTs or `trusted_keys`).
//! Accounts are JWTs issued by a trusted operator key, found through an
//! [`AccountResolver`]; users present a JWT issued by their account (or one
//! of its signing keys) plus, unless it is a bearer token, their signature
//! of the INFO nonce.
//!
//! An [`OperatorAuth`] is built once per configuration (start or reload):
//! operator JWTs are read and verified, and every account the resolver holds
//! up front (the MEMORY resolver's preloads) is verified and compiled into a
//! [`JwtAccount`]. It is then shared read-only by the shards and consulted
//! once per CONNECT, on the shard that owns the connection: ed25519
//! verification of the user JWT and of the nonce signature happens there,
//! never per message. The result is the same [`Identity`] config-mode users
//! get (account, compiled-once permissions, limits), plus the moments the
//! connection must end (user JWT expiry, end of its allowed time window,
//! account expiry).
//!
//! Every refusal carries its cause ([`JwtFailure`]) for the log, in the
//! order the reference checks; the client only sees
//! `Authorization Violation`, as with the reference.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::auth::{ConnLimits, Identity};
use super::jwt::{
    self, unix_text, AccountClaims, Claims, JwtError, OperatorClaims, SigningKey, StringList,
    UserClaims, NO_LIMIT,
};
use super::resolver::lock;
use crate::config::{
    Account, Export, ExportKind, Import, ImportKind, OperatorSource, Permissions,
    ResponsePermission, ResponseType, ServerConfig, SubjectPermission,
};
use crate::subject;

/// Where account JWTs come from. A backend is one type implementing this:
/// MEMORY ([`MemoryResolver`]), and in [`super::resolver`] the URL and
/// directory resolvers and the cache in front of them.
pub trait AccountResolver: Send + Sync + fmt::Debug {
    /// How the resolver is named in log lines ("MEMORY resolver",
    /// "URL resolver http://...").
    fn describe(&self) -> String;
    /// The account JWT stored for `account` (a public account key). May
    /// block (network, disk): the server calls it off the shards.
    fn fetch(&self, account: &str) -> Result<String, ResolveError>;
    /// Every account JWT known up front, to verify and compile at load.
    fn preloaded(&self) -> Vec<(String, String)>;
    /// The answer for `account` when it is at hand without blocking (in
    /// memory); `None`: ask [`AccountResolver::fetch`] off the shard.
    fn at_hand(&self, _account: &str) -> Option<Result<String, ResolveError>> {
        None
    }
    /// Keeps `jwt` as the account's (writable resolvers only).
    fn store(&self, _account: &str, _jwt: &str) -> Result<(), String> {
        Err(format!("the {} is read-only", self.describe()))
    }
    /// Forgets the account (resolvers that allow deletes only).
    fn delete(&self, _account: &str) -> Result<(), String> {
        Err(format!("the {} does not delete accounts", self.describe()))
    }
    /// Whether [`AccountResolver::delete`] may succeed.
    fn can_delete(&self) -> bool {
        false
    }
    /// The kind of directory resolver this is (or wraps), if any.
    fn directory(&self) -> Option<crate::config::DirResolverKind> {
        None
    }
    /// Every account JWT stored (directory resolvers): (key, JWT).
    fn stored(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// Why a resolver gave no JWT; each says what was asked and what it
/// answered (the file looked for, the HTTP status, the timeout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// The resolver has nothing for that key.
    NotFound(String),
    /// The resolver could not answer (I/O, timeout, HTTP status ...).
    Failed(String),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::NotFound(e) | ResolveError::Failed(e) => f.write_str(e),
        }
    }
}

/// `resolver: MEMORY`: the JWTs of `resolver_preload`, nothing else.
#[derive(Debug, Default)]
pub struct MemoryResolver {
    jwts: BTreeMap<String, String>,
}

impl MemoryResolver {
    pub fn new(preload: impl IntoIterator<Item = (String, String)>) -> MemoryResolver {
        MemoryResolver {
            jwts: preload.into_iter().collect(),
        }
    }
}

impl AccountResolver for MemoryResolver {
    fn describe(&self) -> String {
        format!("MEMORY resolver ({} preloaded accounts)", self.jwts.len())
    }

    fn fetch(&self, account: &str) -> Result<String, ResolveError> {
        self.jwts
            .get(account)
            .cloned()
            .ok_or_else(|| ResolveError::NotFound("no JWT preloaded for it".into()))
    }

    fn at_hand(&self, account: &str) -> Option<Result<String, ResolveError>> {
        Some(self.fetch(account))
    }

    fn store(&self, _account: &str, _jwt: &str) -> Result<(), String> {
        Err("the MEMORY resolver only holds resolver_preload (reload to change it)".into())
    }

    fn preloaded(&self) -> Vec<(String, String)> {
        self.jwts
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// One trusted operator.
#[derive(Clone, Debug)]
pub struct TrustedOperator {
    pub key: String,
    pub name: String,
    pub signing_keys: Vec<String>,
    pub strict: bool,
    pub system_account: String,
}

/// The keys accounts may be issued by.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    pub operators: Vec<TrustedOperator>,
    /// Operator keys (unless strict) and operator signing keys; or the
    /// `trusted_keys` of the configuration.
    pub keys: Vec<String>,
}

impl Trust {
    pub fn is_trusted(&self, issuer: &str) -> bool {
        self.keys.iter().any(|k| k == issuer)
    }

    /// The operator behind a trusted key, for messages.
    fn operator_of(&self, key: &str) -> Option<&TrustedOperator> {
        self.operators
            .iter()
            .find(|o| o.key == key || o.signing_keys.iter().any(|s| s == key))
    }

    /// Whether accounts issued through `issuer` may not issue users with
    /// their own key (the operator asks for strict signing key usage).
    fn strict(&self, issuer: &str) -> bool {
        self.operator_of(issuer).is_some_and(|o| o.strict)
    }

    /// "O... (name) with signing keys O..., ..." for each operator.
    pub fn describe(&self) -> String {
        if self.operators.is_empty() {
            return format!("trusted keys {}", self.keys.join(", "));
        }
        let ops: Vec<String> = self
            .operators
            .iter()
            .map(|o| {
                let mut s = o.key.clone();
                if !o.name.is_empty() {
                    s.push_str(&format!(" ({:?})", o.name));
                }
                if !o.signing_keys.is_empty() {
                    s.push_str(&format!(" with signing keys {}", o.signing_keys.join(", ")));
                }
                if o.strict {
                    s.push_str(", strict signing key usage");
                }
                s
            })
            .collect();
        format!("trusted operators {}", ops.join("; "))
    }
}

/// The template of a scoped signing key: it replaces the permissions and
/// limits of every user the key issues.
#[derive(Clone, Debug, PartialEq)]
pub struct Scope {
    pub role: String,
    pub template: UserClaims,
}

/// An account JWT, verified and compiled once.
#[derive(Clone, Debug)]
pub struct JwtAccount {
    pub key: String,
    /// The claims' `name` (the account is known to the server by key).
    pub name: String,
    pub issuer: String,
    pub iat: i64,
    pub exp: Option<i64>,
    pub jwt: String,
    pub claims: AccountClaims,
    /// Keys that may issue users: the account key itself (unless the
    /// operator is strict) and its signing keys, scoped ones with their
    /// template.
    signers: HashMap<String, Option<Scope>>,
    default_permissions: Option<Permissions>,
}

impl JwtAccount {
    /// Verifies an account JWT found under `key`: signature, kind, subject,
    /// issuer trust and time validity, as the reference's account lookup.
    pub fn verify(
        key: &str,
        token: &str,
        trust: &Trust,
        now: i64,
    ) -> Result<JwtAccount, AccountFailure> {
        let invalid = |reason: String| AccountFailure::Invalid {
            account: key.to_string(),
            reason,
        };
        let c = jwt::decode(token).map_err(|e| invalid(e.to_string()))?;
        let claims: AccountClaims = c.typed().map_err(|e| invalid(e.to_string()))?;
        if c.sub != key {
            return Err(invalid(format!(
                "the JWT stored for it is about account {}",
                c.sub
            )));
        }
        if !trust.is_trusted(&c.iss) {
            return Err(AccountFailure::Untrusted {
                account: key.to_string(),
                issuer: c.iss.clone(),
                trusted: trust.describe(),
                from: String::new(),
            });
        }
        match c.check_time(now) {
            Err(JwtError::Expired { at }) => {
                return Err(AccountFailure::Expired {
                    account: key.to_string(),
                    at,
                })
            }
            Err(e) => return Err(invalid(e.to_string())),
            Ok(()) => {}
        }
        validate_account(&claims).map_err(invalid)?;
        let mut signers = HashMap::new();
        for sk in &claims.signing_keys {
            let scope = match sk {
                SigningKey::Plain(_) => None,
                SigningKey::Scoped(s) => {
                    let template: UserClaims = serde_json::from_value(s.template.clone())
                        .map_err(|e| invalid(format!("scoped signing key {}: {e}", s.key)))?;
                    Some(Scope {
                        role: s.role.clone(),
                        template,
                    })
                }
            };
            signers.insert(sk.key().to_string(), scope);
        }
        if !trust.strict(&c.iss) {
            signers.insert(key.to_string(), None);
        }
        let default_permissions = permissions_from_jwt(&claims.default_permissions);
        Ok(JwtAccount {
            key: key.to_string(),
            name: c.name.clone(),
            issuer: c.iss.clone(),
            iat: c.iat,
            exp: c.exp.filter(|&e| e > 0),
            jwt: token.trim().to_string(),
            claims,
            signers,
            default_permissions,
        })
    }

    /// Whether `user` issued at `iat` is revoked, and since when.
    pub fn revoked(&self, user: &str, iat: i64) -> Option<i64> {
        self.claims.revoked_at(user, iat)
    }

    pub fn signer(&self, key: &str) -> Option<&Option<Scope>> {
        self.signers.get(key)
    }

    /// Per-connection limits the account imposes (-1: none).
    pub fn limits(&self) -> ConnLimits {
        ConnLimits {
            subs: self.claims.limits.subs,
            payload: self.claims.limits.payload,
            account_conns: self.claims.limits.conn,
        }
    }
}

/// The checks of the Go library's account validation that make a token
/// unusable.
fn validate_account(a: &AccountClaims) -> Result<(), String> {
    for (i, e) in a.exports.iter().enumerate() {
        let subj = e.get("subject").and_then(Value::as_str).unwrap_or("");
        if subj.is_empty() || !subject::valid_subscribe(subj.as_bytes()) {
            return Err(format!("export {i} has an invalid subject {subj:?}"));
        }
        if a.limits.exports != NO_LIMIT
            && !a.limits.wildcards
            && !subject::valid_literal(subj.as_bytes())
        {
            return Err(format!(
                "the account contains wildcard exports that are not allowed by the operator ({subj:?})"
            ));
        }
    }
    if a.limits.imports >= 0 && a.imports.len() as i64 > a.limits.imports {
        return Err(format!(
            "the account contains more imports than allowed by the operator ({} > {})",
            a.imports.len(),
            a.limits.imports
        ));
    }
    if a.limits.exports >= 0 && a.exports.len() as i64 > a.limits.exports {
        return Err(format!(
            "the account contains more exports than allowed by the operator ({} > {})",
            a.exports.len(),
            a.limits.exports
        ));
    }
    Ok(())
}

/// Why an account could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountFailure {
    NotFound {
        account: String,
        resolver: String,
        answer: String,
    },
    Invalid {
        account: String,
        reason: String,
    },
    Untrusted {
        account: String,
        issuer: String,
        trusted: String,
        /// Where the JWT came from ("the URL resolver ..."), when known.
        from: String,
    },
    Expired {
        account: String,
        at: i64,
    },
    /// Removed by an operator's claims delete request.
    Deleted {
        account: String,
    },
}

impl fmt::Display for AccountFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountFailure::NotFound {
                account,
                resolver,
                answer,
            } => write!(
                f,
                "account {account} not found: asked the {resolver}, which answered: {answer}"
            ),
            AccountFailure::Invalid { account, reason } => {
                write!(f, "account {account} has an invalid JWT: {reason}")
            }
            AccountFailure::Untrusted {
                account,
                issuer,
                trusted,
                from,
            } => {
                let by = match issuer.chars().next() {
                    Some('O') => "operator key ",
                    Some('A') => "account key ",
                    _ => "",
                };
                let from = if from.is_empty() {
                    String::new()
                } else {
                    format!(" (JWT from the {from})")
                };
                write!(
                    f,
                    "account {account} not issued by a trusted operator{from}: signed by {by}{issuer}, {trusted}"
                )
            }
            AccountFailure::Expired { account, at } => {
                write!(f, "account {account} expired at {}", unix_text(*at))
            }
            AccountFailure::Deleted { account } => {
                write!(f, "account {account} was deleted by the operator")
            }
        }
    }
}

/// Why a user JWT was refused; logged, never sent to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwtFailure {
    NoJwt,
    Invalid(String),
    Expired { user: String, at: i64 },
    NotYetValid { user: String, from: i64 },
    ConnectionType { user: String, allowed: Vec<String> },
    NotPinned { account: String },
    Account(AccountFailure),
    UnknownIssuer { issuer: String, account: String },
    Scope { issuer: String, reason: String },
    BearerNotAllowed { account: String },
    MissingSignature { user: String },
    SignatureMismatch { user: String },
    Revoked { user: String, at: i64, iat: i64 },
    Source { ip: String, allowed: Vec<String> },
    OutsideTimes { user: String, times: String },
}

impl fmt::Display for JwtFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtFailure::NoJwt => f.write_str("no user JWT in CONNECT (operator mode needs one)"),
            JwtFailure::Invalid(e) => write!(f, "user JWT not valid: {e}"),
            JwtFailure::Expired { user, at } => {
                write!(f, "user JWT {user} expired at {}", unix_text(*at))
            }
            JwtFailure::NotYetValid { user, from } => {
                write!(f, "user JWT {user} not valid before {}", unix_text(*from))
            }
            JwtFailure::ConnectionType { user, allowed } => write!(
                f,
                "connection type STANDARD not allowed for user {user} (allowed: {})",
                allowed.join(", ")
            ),
            JwtFailure::NotPinned { account } => {
                write!(f, "account {account} is not in resolver_pinned_accounts")
            }
            JwtFailure::Account(a) => a.fmt(f),
            JwtFailure::UnknownIssuer { issuer, account } => write!(
                f,
                "user JWT issuer {issuer} is not account {account} nor one of its signing keys"
            ),
            JwtFailure::Scope { issuer, reason } => {
                write!(
                    f,
                    "user JWT issued by scoped signing key {issuer}: {reason}"
                )
            }
            JwtFailure::BearerNotAllowed { account } => {
                write!(
                    f,
                    "bearer token not allowed: account {account} disallows bearer tokens"
                )
            }
            JwtFailure::MissingSignature { user } => {
                write!(
                    f,
                    "no signature of the nonce for user {user} (and not a bearer token)"
                )
            }
            JwtFailure::SignatureMismatch { user } => {
                write!(f, "signature does not match the nonce for user {user}")
            }
            JwtFailure::Revoked { user, at, iat } => write!(
                f,
                "user {user} revoked at {} (the JWT was issued at {})",
                unix_text(*at),
                unix_text(*iat)
            ),
            JwtFailure::Source { ip, allowed } => write!(
                f,
                "source address {ip} not allowed (src: {})",
                allowed.join(", ")
            ),
            JwtFailure::OutsideTimes { user, times } => {
                write!(f, "outside the allowed times for user {user} ({times})")
            }
        }
    }
}

/// What a CONNECT presented, for operator-mode authentication.
#[derive(Clone, Copy, Debug)]
pub struct Presented<'a> {
    pub jwt: Option<&'a str>,
    pub sig: Option<&'a str>,
    pub nonce: &'a [u8],
    pub ip: Option<IpAddr>,
}

/// The operator-mode authenticator of one configuration.
#[derive(Debug)]
pub struct OperatorAuth {
    pub trust: Trust,
    pub resolver: Arc<dyn AccountResolver>,
    pub system_account: Option<String>,
    /// `resolver_pinned_accounts`: when non-empty, only these accounts
    /// (and the system account) may connect.
    pub pinned: Vec<String>,
    /// Accounts verified at load, by key; failures kept to be named when a
    /// user of the account connects.
    accounts: BTreeMap<String, Result<Arc<JwtAccount>, AccountFailure>>,
    /// Accounts the resolver gave after load, verified once per JWT: a
    /// CONNECT whose account JWT is unchanged reuses the compiled one.
    fetched: Mutex<HashMap<String, Arc<JwtAccount>>>,
}

/// A CONNECT's user JWT, checked up to the point where its account is
/// needed ([`OperatorAuth::begin`]).
#[derive(Clone, Debug)]
pub struct Pending {
    c: Claims,
    uc: UserClaims,
    account: String,
}

impl Pending {
    /// The account the user belongs to.
    pub fn account(&self) -> &str {
        &self.account
    }
}

impl OperatorAuth {
    /// Builds operator mode from a configuration, or says why it cannot
    /// (naming the operator file and the reason). `None` when the
    /// configuration is not in operator mode.
    pub fn from_config(cfg: &ServerConfig) -> Result<Option<OperatorAuth>, String> {
        if cfg.operators.is_empty() && cfg.trusted_keys.is_empty() {
            return Ok(None);
        }
        let mut trust = Trust::default();
        for src in &cfg.operators {
            let (what, text) = match src {
                OperatorSource::File(p) => (
                    format!("operator JWT file {}", p.display()),
                    std::fs::read_to_string(p)
                        .map_err(|e| format!("operator JWT file {}: {e}", p.display()))?,
                ),
                OperatorSource::Inline(t) => ("inline operator JWT".to_string(), t.clone()),
            };
            let token = jwt::parse_decorated_jwt(&text);
            let c = jwt::decode(&token).map_err(|e| format!("{what}: {e}"))?;
            let oc: OperatorClaims = c.typed().map_err(|e| format!("{what}: {e}"))?;
            if !oc.signed_by(&c.sub, &c.iss) {
                return Err(format!(
                    "{what}: issued by {}, which is neither the operator nor one of its signing keys",
                    c.iss
                ));
            }
            for k in &oc.signing_keys.0 {
                if !is_public_key(k, 'O') {
                    return Err(format!(
                        "{what}: signing key {k:?} is not a valid public operator nkey"
                    ));
                }
            }
            if !oc.strict_signing_key_usage {
                trust.keys.push(c.sub.clone());
            }
            trust.keys.extend(oc.signing_keys.0.iter().cloned());
            trust.operators.push(TrustedOperator {
                key: c.sub.clone(),
                name: c.name.clone(),
                signing_keys: oc.signing_keys.0.clone(),
                strict: oc.strict_signing_key_usage,
                system_account: oc.system_account.clone(),
            });
        }
        for k in &cfg.trusted_keys {
            trust.keys.push(k.clone());
        }
        // As the reference: the system account of the configuration must
        // be the operator's when the operator names one.
        let mut system_account = cfg.system_account.clone();
        match &system_account {
            Some(sa) => {
                let named: Vec<&str> = trust
                    .operators
                    .iter()
                    .map(|o| o.system_account.as_str())
                    .filter(|s| !s.is_empty())
                    .collect();
                if !named.is_empty() && !named.contains(&sa.as_str()) {
                    return Err(format!(
                        "system_account {sa} differs from the operator JWT's system account {}",
                        named.join(", ")
                    ));
                }
            }
            None => {
                system_account = trust
                    .operators
                    .iter()
                    .map(|o| o.system_account.clone())
                    .find(|s| !s.is_empty());
            }
        }
        // As the reference: a preload that does not decode stops the
        // server.
        for (key, token) in &cfg.resolver_preload {
            if let Err(e) = jwt::decode(token).and_then(|c| c.typed::<AccountClaims>()) {
                return Err(format!("resolver_preload: account {key}: {e}"));
            }
        }
        if matches!(cfg.resolver, Some(crate::config::Resolver::Dir { .. }))
            && !trust.operators.is_empty()
            && system_account.is_none()
        {
            // As the reference (the directory resolvers synchronize through
            // the system account).
            return Err("using nats based account resolver - the system account needs to be specified in configuration or the operator jwt".into());
        }
        let resolver = build_resolver(cfg, &trust)?;
        let mut pinned = cfg.resolver_pinned_accounts.clone();
        if !pinned.is_empty() {
            if let Some(sa) = &system_account {
                pinned.push(sa.clone());
            }
        }
        let mut op = OperatorAuth {
            trust,
            resolver,
            system_account,
            pinned,
            accounts: BTreeMap::new(),
            fetched: Mutex::new(HashMap::new()),
        };
        op.load_accounts(now())?;
        Ok(Some(op))
    }

    /// Verifies every account the resolver holds up front (preloads, the
    /// files of a full directory resolver). One that cannot be used
    /// (untrusted, expired, not a JWT) is kept as a failure and logged, so
    /// its users are refused with that cause.
    fn load_accounts(&mut self, now: i64) -> Result<(), String> {
        let from = self.resolver.describe();
        for (key, token) in self.resolver.preloaded() {
            let res = JwtAccount::verify(&key, &token, &self.trust, now)
                .map(Arc::new)
                .map_err(|e| from_source(e, &from));
            if let Err(e) = &res {
                crate::warn!("account known at start is unusable: {e}");
            }
            self.accounts.insert(key, res);
        }
        Ok(())
    }

    /// The verified accounts, for import/export edges and monitoring.
    pub fn accounts(&self) -> impl Iterator<Item = &Arc<JwtAccount>> {
        self.accounts.values().filter_map(|r| r.as_ref().ok())
    }

    /// A copy whose account `key` is `acc`: a verified account JWT pushed
    /// as a claim update, or a failure (a deleted account) that refuses
    /// its users. Used from then on at CONNECT and when connections are
    /// re-checked.
    pub fn with_account(
        &self,
        key: &str,
        acc: Result<Arc<JwtAccount>, AccountFailure>,
    ) -> OperatorAuth {
        let mut accounts = self.accounts.clone();
        accounts.insert(key.to_string(), acc);
        let mut fetched = lock(&self.fetched).clone();
        fetched.remove(key);
        OperatorAuth {
            trust: self.trust.clone(),
            resolver: self.resolver.clone(),
            system_account: self.system_account.clone(),
            pinned: self.pinned.clone(),
            accounts,
            fetched: Mutex::new(fetched),
        }
    }

    /// Whether account `key` is in use here: known since start, fetched
    /// for a connection, or bound by one.
    pub fn in_use(&self, key: &str) -> bool {
        self.accounts.contains_key(key)
            || lock(&self.fetched).contains_key(key)
            || crate::security::account::account_names()
                .iter()
                .any(|n| n == key)
    }

    /// The account behind `key` when it is at hand without blocking:
    /// verified at load, or in the resolver's memory. `None`: the resolver
    /// must be asked ([`OperatorAuth::account`], off the shard).
    pub fn account_at_hand(
        &self,
        key: &str,
        now: i64,
    ) -> Option<Result<Arc<JwtAccount>, AccountFailure>> {
        if let Some(r) = self.accounts.get(key) {
            return Some(match r {
                Ok(a) => match a.exp {
                    Some(at) if now >= at => Err(AccountFailure::Expired {
                        account: key.to_string(),
                        at,
                    }),
                    _ => Ok(a.clone()),
                },
                Err(e) => Err(e.clone()),
            });
        }
        if !is_public_key(key, 'A') {
            // As the reference: only account keys are looked up.
            return Some(Err(AccountFailure::NotFound {
                account: key.to_string(),
                resolver: self.resolver.describe(),
                answer: "nothing: it is not a public account key, so it was not asked".into(),
            }));
        }
        let answer = self.resolver.at_hand(key)?;
        Some(self.verify_answer(key, answer, now))
    }

    /// The account behind `key`, asking the resolver when it is not at
    /// hand. May block: call it off the shards.
    pub fn account(&self, key: &str, now: i64) -> Result<Arc<JwtAccount>, AccountFailure> {
        if let Some(r) = self.account_at_hand(key, now) {
            return r;
        }
        self.verify_answer(key, self.resolver.fetch(key), now)
    }

    /// What the resolver answered for `key`, as an account (verified once
    /// per JWT), or the failure naming the resolver and its answer.
    pub fn verify_answer(
        &self,
        key: &str,
        answer: Result<String, ResolveError>,
        now: i64,
    ) -> Result<Arc<JwtAccount>, AccountFailure> {
        let from = || self.resolver.describe();
        let token = answer.map_err(|e| AccountFailure::NotFound {
            account: key.to_string(),
            resolver: from(),
            answer: e.to_string(),
        })?;
        let token = token.trim();
        let cached = lock(&self.fetched).get(key).cloned();
        if let Some(a) = cached.filter(|a| a.jwt == token) {
            return match a.exp {
                Some(at) if now >= at => Err(AccountFailure::Expired {
                    account: key.to_string(),
                    at,
                }),
                _ => Ok(a),
            };
        }
        let a = JwtAccount::verify(key, token, &self.trust, now)
            .map(Arc::new)
            .map_err(|e| from_source(e, &from()))?;
        let mut fetched = lock(&self.fetched);
        if fetched.len() >= 100_000 {
            fetched.clear();
        }
        fetched.insert(key.to_string(), a.clone());
        Ok(a)
    }

    /// Walks the reference's chain for a CONNECT: user JWT, its account,
    /// issuer, bearer, nonce signature, revocation, source and times. May
    /// block on the resolver (see [`OperatorAuth::begin`] for the shard's
    /// way).
    pub fn authenticate(&self, p: &Presented<'_>, now: i64) -> Result<Identity, JwtFailure> {
        let pending = self.begin(p, now)?;
        let acc = self.account(&pending.account, now);
        self.finish(pending, acc, p, now)
    }

    /// The chain up to the account: the user JWT itself, its connection
    /// types and the pinned accounts.
    pub fn begin(&self, p: &Presented<'_>, now: i64) -> Result<Pending, JwtFailure> {
        let token = p.jwt.filter(|t| !t.is_empty()).ok_or(JwtFailure::NoJwt)?;
        let c = jwt::decode(token).map_err(|e| JwtFailure::Invalid(e.to_string()))?;
        let uc: UserClaims = c.typed().map_err(|e| JwtFailure::Invalid(e.to_string()))?;
        let user = c.sub.clone();
        match c.check_time(now) {
            Err(JwtError::Expired { at }) => return Err(JwtFailure::Expired { user, at }),
            Err(JwtError::NotYetValid { from }) => {
                return Err(JwtFailure::NotYetValid { user, from })
            }
            Err(e) => return Err(JwtFailure::Invalid(e.to_string())),
            Ok(()) => {}
        }
        validate_user(&uc).map_err(JwtFailure::Invalid)?;
        if !connection_type_allowed(&uc.allowed_connection_types) {
            return Err(JwtFailure::ConnectionType {
                user,
                allowed: uc.allowed_connection_types.0.clone(),
            });
        }
        let account_key = if uc.issuer_account.is_empty() {
            c.iss.clone()
        } else {
            uc.issuer_account.clone()
        };
        if !self.pinned.is_empty() && !self.pinned.contains(&account_key) {
            return Err(JwtFailure::NotPinned {
                account: account_key,
            });
        }
        Ok(Pending {
            c,
            uc,
            account: account_key,
        })
    }

    /// The rest of the chain, once the account is known (or known not to
    /// be usable).
    pub fn finish(
        &self,
        pending: Pending,
        acc: Result<Arc<JwtAccount>, AccountFailure>,
        p: &Presented<'_>,
        now: i64,
    ) -> Result<Identity, JwtFailure> {
        let Pending {
            c,
            uc,
            account: account_key,
        } = pending;
        let user = c.sub.clone();
        let acc = acc.map_err(JwtFailure::Account)?;
        let scope = match acc.signer(&c.iss) {
            None => {
                return Err(JwtFailure::UnknownIssuer {
                    issuer: c.iss.clone(),
                    account: account_key,
                })
            }
            Some(s) => s.clone(),
        };
        // A scoped key's template replaces what the JWT says; the JWT
        // itself must say nothing.
        let mut grant = uc.clone();
        if let Some(scope) = &scope {
            if !has_empty_permissions(&uc) {
                return Err(JwtFailure::Scope {
                    issuer: c.iss.clone(),
                    reason: "scoped users require no permissions or limits set".into(),
                });
            }
            grant = apply_template(&scope.template, &c, &uc, &acc).map_err(|reason| {
                JwtFailure::Scope {
                    issuer: c.iss.clone(),
                    reason,
                }
            })?;
            grant.issuer_account = uc.issuer_account.clone();
        }
        if grant.bearer_token && acc.claims.limits.disallow_bearer {
            return Err(JwtFailure::BearerNotAllowed {
                account: account_key,
            });
        }
        if !grant.bearer_token {
            let sig = p
                .sig
                .filter(|s| !s.is_empty())
                .ok_or_else(|| JwtFailure::MissingSignature { user: user.clone() })?;
            if !super::auth::verify_nkey(&user, sig, p.nonce) {
                return Err(JwtFailure::SignatureMismatch { user });
            }
        }
        if let Some(at) = acc.revoked(&user, c.iat) {
            return Err(JwtFailure::Revoked {
                user,
                at,
                iat: c.iat,
            });
        }
        if !grant.src.0.is_empty() {
            let ok =
                p.ip.is_some_and(|ip| grant.src.0.iter().any(|cidr| cidr_contains(cidr, ip)));
            if !ok {
                return Err(JwtFailure::Source {
                    ip: p.ip.map(|i| i.to_string()).unwrap_or_default(),
                    allowed: grant.src.0.clone(),
                });
            }
        }
        let window_end = match times_window(&grant, now) {
            Some(w) => w,
            None => {
                return Err(JwtFailure::OutsideTimes {
                    user,
                    times: grant
                        .times
                        .iter()
                        .map(|t| format!("{}-{}", t.start, t.end))
                        .collect::<Vec<_>>()
                        .join(", ")
                        + &if grant.locale.is_empty() {
                            " local time".to_string()
                        } else {
                            format!(" {}", grant.locale)
                        },
                })
            }
        };
        let mut permissions = permissions_from_jwt(&grant.permissions);
        if permissions.is_none() {
            permissions = acc.default_permissions.clone();
        }
        let mut limits = acc.limits();
        limits.subs = min_limit(grant.subs, limits.subs);
        limits.payload = min_limit(grant.payload, limits.payload);
        let user_expires = match (c.exp.filter(|&e| e > 0), window_end) {
            (Some(e), Some(w)) => Some(e.min(w)),
            (e, w) => e.or(w),
        };
        Ok(Identity {
            name: user.clone(),
            account: account_key,
            permissions,
            limits,
            user_expires,
            account_expires: acc.exp,
            jwt_user: Some(super::auth::JwtUser {
                key: user,
                name: c.name.clone(),
                iat: c.iat,
                bearer: grant.bearer_token,
                issuer: c.iss.clone(),
                tags: uc.tags.0.clone(),
            }),
        })
    }

    /// The JWT accounts as config accounts, so their exports and imports
    /// become the same routing edges config-mode accounts get. Imports of
    /// an export that requires a token keep only a valid activation.
    pub fn config_accounts(&self, now: i64) -> Vec<Account> {
        let accs: Vec<&Arc<JwtAccount>> = self.accounts().collect();
        let by_key: HashMap<&str, &Arc<JwtAccount>> =
            accs.iter().map(|a| (a.key.as_str(), *a)).collect();
        let mut out: Vec<Account> = Vec::new();
        // Importers authorized by activation, per (exporter, export index).
        let mut activated: HashMap<(String, usize), Vec<String>> = HashMap::new();
        let mut imports_of: HashMap<String, Vec<Import>> = HashMap::new();
        for a in &accs {
            let mut list = Vec::new();
            for imp in &a.claims.imports {
                match import_from_jwt(a, imp, &by_key, now) {
                    Ok((i, export_index)) => {
                        if let Some(ix) = export_index {
                            activated
                                .entry((i.account.clone(), ix))
                                .or_default()
                                .push(a.key.clone());
                        }
                        list.push(i);
                    }
                    Err(e) => crate::warn!("account {}: import skipped: {e}", a.key),
                }
            }
            imports_of.insert(a.key.clone(), list);
        }
        for a in &accs {
            let mut exports = Vec::new();
            for (ix, e) in a.claims.exports.iter().enumerate() {
                if let Some(mut x) = export_from_jwt(e) {
                    if e.get("token_req").and_then(Value::as_bool) == Some(true) {
                        x.accounts = Some(
                            activated
                                .get(&(a.key.clone(), ix))
                                .cloned()
                                .unwrap_or_default(),
                        );
                    }
                    exports.push(x);
                }
            }
            out.push(Account {
                name: a.key.clone(),
                nkey: Some(a.key.clone()),
                exports,
                imports: imports_of.remove(&a.key).unwrap_or_default(),
                default_permissions: a.default_permissions.clone(),
                limits: crate::config::AccountLimits {
                    max_connections: clamp_i32(a.claims.limits.conn),
                    max_subscriptions: clamp_i32(a.claims.limits.subs),
                    max_payload: clamp_i32(a.claims.limits.payload),
                    max_leafnodes: clamp_i32(a.claims.limits.leaf),
                },
            });
        }
        out
    }
}

/// Says where an unusable account JWT came from.
fn from_source(e: AccountFailure, source: &str) -> AccountFailure {
    match e {
        AccountFailure::Untrusted {
            account,
            issuer,
            trusted,
            ..
        } => AccountFailure::Untrusted {
            account,
            issuer,
            trusted,
            from: source.to_string(),
        },
        AccountFailure::Invalid { account, reason } => AccountFailure::Invalid {
            account,
            reason: format!("{reason} (JWT from the {source})"),
        },
        other => other,
    }
}

/// The resolver of a configuration, with the cache in front of the ones
/// that ask something outside the process; checks what the reference
/// checks before it starts (the URL answers, a directory resolver has an
/// operator, preloads go to a writable resolver).
fn build_resolver(cfg: &ServerConfig, trust: &Trust) -> Result<Arc<dyn AccountResolver>, String> {
    use super::resolver::{CachedResolver, DirResolver, UrlResolver, FETCH_TIMEOUT};
    use crate::config::Resolver;
    let cache = cfg.resolver_cache.unwrap_or_default();
    let cached = |r: Arc<dyn AccountResolver>| -> Arc<dyn AccountResolver> {
        if cache.ttl.is_zero() && cache.negative_ttl.is_zero() {
            r
        } else {
            Arc::new(CachedResolver::new(r, cache))
        }
    };
    match &cfg.resolver {
        Some(Resolver::Memory) => Ok(Arc::new(MemoryResolver::new(
            cfg.resolver_preload.iter().cloned(),
        ))),
        Some(Resolver::Url(u)) => {
            if !cfg.resolver_preload.is_empty() {
                return Err(
                    "resolver preloads only available for writeable resolver types MEM/DIR/CACHE_DIR"
                        .into(),
                );
            }
            let r = UrlResolver::new(u, FETCH_TIMEOUT, cfg.resolver_tls.as_ref())?;
            // As the reference: someone must be home at start.
            r.check()?;
            Ok(cached(Arc::new(r)))
        }
        Some(Resolver::Dir {
            kind,
            dir,
            allow_delete,
            limit,
            ttl,
            ..
        }) => {
            if trust.operators.is_empty() {
                return Err("Could not start resolver: no operator key found (a directory resolver needs an operator JWT)".into());
            }
            let r = DirResolver::open(dir, *kind, *allow_delete, *limit, *ttl)?;
            // As the reference: preloads are stored into the directory.
            for (key, token) in &cfg.resolver_preload {
                r.store(key, token)
                    .map_err(|e| format!("resolver_preload: account {key}: {e}"))?;
            }
            Ok(cached(Arc::new(r)))
        }
        None => Err("operator mode needs a resolver (for example resolver: MEMORY)".into()),
    }
}

fn clamp_i32(v: i64) -> i32 {
    v.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// The stricter of two limits, -1 meaning none (the reference's minLimit).
pub fn min_limit(a: i64, b: i64) -> i64 {
    match (a, b) {
        (NO_LIMIT, b) => b,
        (a, NO_LIMIT) => a,
        (a, b) => a.min(b),
    }
}

fn export_from_jwt(e: &Value) -> Option<Export> {
    let subject = e.get("subject")?.as_str()?.to_string();
    let kind = match e.get("type").and_then(Value::as_str).unwrap_or("stream") {
        "service" => ExportKind::Service {
            response_type: match e.get("response_type").and_then(Value::as_str) {
                Some("Stream") => ResponseType::Stream,
                Some("Chunked") => ResponseType::Chunked,
                _ => ResponseType::Singleton,
            },
            response_threshold: e
                .get("response_threshold")
                .and_then(Value::as_i64)
                .filter(|&n| n > 0)
                .map(|n| std::time::Duration::from_nanos(n as u64)),
            latency: None,
        },
        _ => ExportKind::Stream,
    };
    Some(Export {
        subject,
        kind,
        accounts: None,
        account_token_position: e
            .get("account_token_position")
            .and_then(Value::as_u64)
            .unwrap_or(0) as u32,
    })
}

/// One JWT import as a config import, checked against the exporter: the
/// export must exist (and cover the subject), and a token-required export
/// needs a valid activation. Returns the export's index when an activation
/// authorized it.
fn import_from_jwt(
    importer: &JwtAccount,
    imp: &Value,
    by_key: &HashMap<&str, &Arc<JwtAccount>>,
    now: i64,
) -> Result<(Import, Option<usize>), String> {
    let s = |k: &str| imp.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let exporter_key = s("account");
    let subject = s("subject");
    let to = s("to");
    let local = s("local_subject");
    let is_service = s("type") == "service";
    let exporter = by_key
        .get(exporter_key.as_str())
        .ok_or_else(|| format!("exporting account {exporter_key} is not known"))?;
    // The subject as the exporter knows it, and the local one.
    let (remote, kind) = if is_service {
        let (remote, local_subj) = if !local.is_empty() {
            (subject.clone(), local.clone())
        } else if !to.is_empty() {
            (to.clone(), subject.clone())
        } else {
            (subject.clone(), subject.clone())
        };
        (
            remote,
            ImportKind::Service {
                to: local_subj,
                share: imp.get("share").and_then(Value::as_bool).unwrap_or(false),
            },
        )
    } else {
        (
            subject.clone(),
            ImportKind::Stream {
                prefix: (!to.is_empty() && local.is_empty()).then(|| to.clone()),
                to: (!local.is_empty()).then(|| local.clone()),
            },
        )
    };
    let want_type = if is_service { "service" } else { "stream" };
    let (ix, export) = exporter
        .claims
        .exports
        .iter()
        .enumerate()
        .find(|(_, e)| {
            let t = e.get("type").and_then(Value::as_str).unwrap_or("stream");
            let es = e.get("subject").and_then(Value::as_str).unwrap_or("");
            t == want_type && subject::subset(remote.as_bytes(), es.as_bytes())
        })
        .ok_or_else(|| {
            format!("account {exporter_key} exports no {want_type} covering {remote:?}")
        })?;
    let mut authorized_by = None;
    if export.get("token_req").and_then(Value::as_bool) == Some(true) {
        let token = s("token");
        if token.is_empty() {
            return Err(format!(
                "the {want_type} export {remote:?} of {exporter_key} requires an activation token"
            ));
        }
        check_activation(&token, exporter, &importer.key, &remote, now)?;
        if let Some(revs) = export.get("revocations").and_then(Value::as_object) {
            let iat = jwt::decode(&token).map(|c| c.iat).unwrap_or(0);
            for k in [importer.key.as_str(), "*"] {
                if let Some(t) = revs.get(k).and_then(Value::as_i64) {
                    if iat <= t {
                        return Err(format!("activation revoked at {}", unix_text(t)));
                    }
                }
            }
        }
        authorized_by = Some(ix);
    }
    Ok((
        Import {
            account: exporter_key,
            subject: remote,
            kind,
        },
        authorized_by,
    ))
}

/// An activation token: issued by the exporter (or one of its signing keys,
/// then naming it in `issuer_account`), about the importer, for a subject
/// covering the import, valid now.
fn check_activation(
    token: &str,
    exporter: &JwtAccount,
    importer: &str,
    subject: &str,
    now: i64,
) -> Result<(), String> {
    let c = jwt::decode(token).map_err(|e| format!("activation token: {e}"))?;
    if c.kind() != jwt::Kind::Activation {
        return Err("activation token: not activation claims".into());
    }
    c.check_time(now)
        .map_err(|e| format!("activation token: {e}"))?;
    let issuer_account = c
        .nats
        .get("issuer_account")
        .and_then(Value::as_str)
        .unwrap_or("");
    let by_exporter = c.iss == exporter.key
        || (issuer_account == exporter.key && exporter.signer(&c.iss).is_some());
    if !by_exporter {
        return Err(format!(
            "activation token issued by {}, not by exporter {} or its signing keys",
            c.iss, exporter.key
        ));
    }
    if c.sub != importer && c.sub != "*" {
        return Err(format!(
            "activation token is for account {}, not {importer}",
            c.sub
        ));
    }
    let act_subject = c.nats.get("subject").and_then(Value::as_str).unwrap_or("");
    if !subject::subset(subject.as_bytes(), act_subject.as_bytes()) {
        return Err(format!(
            "activation token is for subject {act_subject:?}, not {subject:?}"
        ));
    }
    Ok(())
}

/// The Go library's user validation that blocks a connection.
fn validate_user(u: &UserClaims) -> Result<(), String> {
    for cidr in &u.src.0 {
        if parse_cidr(cidr).is_none() {
            return Err(format!("invalid cidr {cidr:?} in user src limits"));
        }
    }
    for t in &u.times {
        if parse_hms(&t.start).is_none() || parse_hms(&t.end).is_none() {
            return Err(format!(
                "invalid time range {}-{} (expected HH:MM:SS)",
                t.start, t.end
            ));
        }
    }
    if !u.locale.is_empty() && tz::load(&u.locale).is_none() {
        return Err(format!(
            "could not parse iana time zone by name: {:?}",
            u.locale
        ));
    }
    if !u.issuer_account.is_empty() && !is_public_key(&u.issuer_account, 'A') {
        return Err("issuer_account is not an account public key".into());
    }
    Ok(())
}

/// natrix serves plain and TLS client connections: both are STANDARD. An
/// empty list allows every type; a list naming only types the server does
/// not know allows nothing.
fn connection_type_allowed(types: &StringList) -> bool {
    types.0.is_empty() || types.0.iter().any(|t| t.eq_ignore_ascii_case("STANDARD"))
}

fn is_public_key(k: &str, prefix: char) -> bool {
    k.starts_with(prefix) && nkeys::KeyPair::from_public_key(k).is_ok()
}

/// The Go library's `HasEmptyPermissions`: no permissions, no limits (0,
/// not -1), no bearer, no connection types.
fn has_empty_permissions(u: &UserClaims) -> bool {
    let p = &u.permissions;
    p.publish.allow.0.is_empty()
        && p.publish.deny.0.is_empty()
        && p.subscribe.allow.0.is_empty()
        && p.subscribe.deny.0.is_empty()
        && p.resp.is_none()
        && u.src.0.is_empty()
        && u.times.is_empty()
        && u.locale.is_empty()
        && u.subs == 0
        && u.data == 0
        && u.payload == 0
        && !u.bearer_token
        && u.allowed_connection_types.0.is_empty()
}

/// A scoped key's template with its `{{...}}` tokens filled in from the
/// user and account, as the reference expands them.
fn apply_template(
    template: &UserClaims,
    c: &Claims,
    u: &UserClaims,
    acc: &JwtAccount,
) -> Result<UserClaims, String> {
    let mut g = template.clone();
    let fill = |list: &StringList, strict: bool| -> Result<StringList, String> {
        let mut out = Vec::new();
        for entry in &list.0 {
            if !entry
                .split('.')
                .any(|t| t.starts_with("{{") && t.ends_with("}}"))
            {
                out.push(entry.clone());
                continue;
            }
            // Each token becomes one or more values; the subjects are the
            // cartesian product.
            let mut alternatives: Vec<Vec<String>> = Vec::new();
            for tk in entry.split('.') {
                if !(tk.starts_with("{{") && tk.ends_with("}}")) {
                    alternatives.push(vec![tk.to_string()]);
                    continue;
                }
                let op = tk[2..tk.len() - 2].trim().to_ascii_lowercase();
                let values = match op.as_str() {
                    "name()" => vec![c.name.clone()],
                    "subject()" => vec![c.sub.clone()],
                    "account-name()" => vec![acc.name.clone()],
                    "account-subject()" => vec![u.issuer_account.clone()],
                    _ if (op.starts_with("tag(") || op.starts_with("account-tag("))
                        && op.ends_with(')') =>
                    {
                        let (tags, inner) = if let Some(r) = op.strip_prefix("account-tag(") {
                            (&acc.claims.tags, r)
                        } else {
                            (&u.tags, &op[4..])
                        };
                        let prefix = format!("{}:", inner.trim_end_matches(')'));
                        let v: Vec<String> = tags
                            .0
                            .iter()
                            .filter_map(|t| t.strip_prefix(&prefix).map(str::to_string))
                            .collect();
                        if v.is_empty() {
                            vec![String::new()]
                        } else {
                            v
                        }
                    }
                    _ => vec![" ".to_string()],
                };
                alternatives.push(values);
            }
            let mut subjects = vec![String::new()];
            for (i, alts) in alternatives.iter().enumerate() {
                let mut next = Vec::new();
                for s in &subjects {
                    for a in alts {
                        let mut t = s.clone();
                        if i > 0 {
                            t.push('.');
                        }
                        t.push_str(a);
                        next.push(t);
                    }
                }
                subjects = next;
            }
            for s in subjects {
                if subject::valid_subscribe(s.as_bytes()) && !s.contains(' ') {
                    out.push(s);
                } else if strict {
                    return Err("generated invalid subject".into());
                }
            }
        }
        Ok(StringList(out))
    };
    let p = &mut g.permissions;
    let sub_allow_set = !p.subscribe.allow.0.is_empty();
    let pub_allow_set = !p.publish.allow.0.is_empty();
    p.subscribe.allow = fill(&p.subscribe.allow, false)?;
    p.subscribe.deny = fill(&p.subscribe.deny, true)?;
    p.publish.allow = fill(&p.publish.allow, false)?;
    p.publish.deny = fill(&p.publish.deny, true)?;
    // An allow list that expanded to nothing allows nothing.
    if sub_allow_set && p.subscribe.allow.0.is_empty() {
        p.subscribe.deny.0.push(">".into());
    }
    if pub_allow_set && p.publish.allow.0.is_empty() {
        p.publish.deny.0.push(">".into());
    }
    Ok(g)
}

/// JWT permissions as config permissions (the reference's
/// buildPermissionsFromJwt): `None` when the JWT sets none.
pub fn permissions_from_jwt(p: &jwt::Permissions) -> Option<Permissions> {
    let side = |s: &jwt::Permission| {
        (!s.allow.0.is_empty() || !s.deny.0.is_empty()).then(|| SubjectPermission {
            allow: (!s.allow.0.is_empty()).then(|| s.allow.0.clone()),
            deny: s.deny.0.clone(),
        })
    };
    let mut out = Permissions {
        publish: side(&p.publish),
        subscribe: side(&p.subscribe),
        allow_responses: None,
    };
    if let Some(r) = &p.resp {
        let mut rp = ResponsePermission::default();
        if r.max < 0 {
            rp.max_msgs = None;
        } else if r.max > 0 {
            rp.max_msgs = Some(r.max.min(u32::MAX as i64) as u32);
        }
        if r.ttl < 0 {
            rp.expires = None;
        } else if r.ttl > 0 {
            rp.expires = Some(std::time::Duration::from_nanos(r.ttl as u64));
        }
        out.allow_responses = Some(rp);
        // Responses only: publishing is closed unless allowed.
        let publish = out.publish.get_or_insert_with(SubjectPermission::default);
        if publish.allow.is_none() {
            publish.allow = Some(Vec::new());
        }
    }
    if out.publish.is_none() && out.subscribe.is_none() && out.allow_responses.is_none() {
        None
    } else {
        Some(out)
    }
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = s.trim().split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let Some((net, bits)) = parse_cidr(cidr) else {
        return false;
    };
    // An IPv4 client on a dual-stack socket arrives mapped.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// "HH:MM:SS" as seconds of the day.
fn parse_hms(s: &str) -> Option<i64> {
    let mut it = s.split(':');
    let (h, m, sec) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || h.len() != 2 || m.len() != 2 || sec.len() != 2 {
        return None;
    }
    let (h, m, sec): (i64, i64, i64) = (h.parse().ok()?, m.parse().ok()?, sec.parse().ok()?);
    (h < 24 && m < 60 && sec < 60).then_some(h * 3600 + m * 60 + sec)
}

/// Whether now falls in one of the user's `times` windows, read in its
/// `locale` (the server's local zone when empty), as the reference reads
/// them (a window whose start is after its end runs into the next day).
/// `Some(None)`: no windows; `Some(Some(end))`: allowed until `end`;
/// `None`: outside every window.
fn times_window(u: &UserClaims, now: i64) -> Option<Option<i64>> {
    if u.times.is_empty() {
        return Some(None);
    }
    let zone = if u.locale.is_empty() {
        tz::local()
    } else {
        tz::load(&u.locale)?
    };
    let offset = zone.offset_at(now);
    let local = now + offset;
    let day_start = local - local.rem_euclid(86_400) - offset;
    for t in &u.times {
        let (Some(s), Some(e)) = (parse_hms(&t.start), parse_hms(&t.end)) else {
            return None;
        };
        let start = day_start + s;
        let end = if s > e {
            day_start + 86_400 + e
        } else {
            day_start + e
        };
        if start < now && end > now {
            return Some(Some(end));
        }
    }
    None
}

/// Time zones from the system's zoneinfo files (TZif), enough to find the
/// UTC offset at a moment.
pub mod tz {
    use std::path::Path;

    #[derive(Debug, Clone, Default)]
    pub struct Zone {
        /// (transition time, offset after it), ascending.
        transitions: Vec<(i64, i64)>,
        /// Offset before the first transition (or always, without any).
        initial: i64,
    }

    impl Zone {
        pub fn offset_at(&self, t: i64) -> i64 {
            match self.transitions.partition_point(|&(at, _)| at <= t) {
                0 => self.initial,
                i => self.transitions[i - 1].1,
            }
        }
    }

    /// The zone `name` ("America/New_York", "UTC").
    pub fn load(name: &str) -> Option<Zone> {
        match name {
            "" | "UTC" => return Some(Zone::default()),
            "Local" => return Some(local()),
            _ => {}
        }
        if name.contains("..") || name.starts_with('/') {
            return None;
        }
        let dir = std::env::var("ZONEINFO").unwrap_or_else(|_| "/usr/share/zoneinfo".into());
        parse(&std::fs::read(Path::new(&dir).join(name)).ok()?)
    }

    /// The server's local zone (`TZ`, else /etc/localtime, else UTC).
    pub fn local() -> Zone {
        if let Ok(tz) = std::env::var("TZ") {
            let name = tz.trim_start_matches(':');
            if name != "Local" {
                if let Some(z) = load(name) {
                    return z;
                }
            }
        }
        std::fs::read("/etc/localtime")
            .ok()
            .and_then(|b| parse(&b))
            .unwrap_or_default()
    }

    fn be32(b: &[u8], at: usize) -> Option<i64> {
        Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?) as i64)
    }

    fn be64(b: &[u8], at: usize) -> Option<i64> {
        Some(i64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
    }

    /// Parses a TZif file, preferring its 64-bit part.
    pub fn parse(b: &[u8]) -> Option<Zone> {
        if b.get(..4)? != b"TZif" {
            return None;
        }
        let version = *b.get(4)?;
        let counts = |at: usize| -> Option<[usize; 6]> {
            let mut c = [0usize; 6];
            for (i, v) in c.iter_mut().enumerate() {
                *v = be32(b, at + 20 + 4 * i)? as usize;
            }
            Some(c)
        };
        let [isut, isstd, leap, timecnt, typecnt, charcnt] = counts(0)?;
        let (base, width, [_, _, leap2, timecnt2, typecnt2, _]) = if version >= b'2' {
            let v1 = 44 + timecnt * 5 + typecnt * 6 + charcnt + leap * 8 + isstd + isut;
            (v1, 8, counts(v1)?)
        } else {
            (0, 4, [isut, isstd, leap, timecnt, typecnt, charcnt])
        };
        let _ = leap2;
        let times_at = base + 44;
        let idx_at = times_at + timecnt2 * width;
        let types_at = idx_at + timecnt2;
        let offset_of = |ty: usize| be32(b, types_at + ty * 6);
        if typecnt2 == 0 {
            return None;
        }
        let mut transitions = Vec::with_capacity(timecnt2);
        for i in 0..timecnt2 {
            let t = if width == 8 {
                be64(b, times_at + i * 8)?
            } else {
                be32(b, times_at + i * 4)?
            };
            let ty = *b.get(idx_at + i)? as usize;
            if ty >= typecnt2 {
                return None;
            }
            transitions.push((t, offset_of(ty)?));
        }
        Some(Zone {
            transitions,
            initial: offset_of(0)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_and_times() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(cidr_contains("127.0.0.0/8", ip));
        assert!(!cidr_contains("10.0.0.0/8", ip));
        assert!(cidr_contains("0.0.0.0/0", ip));
        assert!(cidr_contains(
            "127.0.0.1/32",
            "::ffff:127.0.0.1".parse().unwrap()
        ));
        assert!(parse_cidr("127.0.0.1").is_none());
        assert_eq!(parse_hms("01:02:03"), Some(3723));
        assert!(parse_hms("1:02:03").is_none());

        let mut u: UserClaims = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(times_window(&u, 1_000_000), Some(None));
        u.locale = "UTC".into();
        // 1_000_000 is 13:46:40 UTC.
        u.times = vec![jwt::TimeRange {
            start: "13:00:00".into(),
            end: "14:00:00".into(),
        }];
        assert_eq!(times_window(&u, 1_000_000), Some(Some(1_000_000 + 800)));
        u.times[0].start = "14:00:00".into();
        u.times[0].end = "15:00:00".into();
        assert_eq!(times_window(&u, 1_000_000), None);
        // A window across midnight starts today and ends tomorrow.
        u.times[0].start = "13:00:00".into();
        u.times[0].end = "01:00:00".into();
        assert_eq!(
            times_window(&u, 1_000_000),
            Some(Some(1_000_000 - 49_600 + 86_400 + 3600))
        );
    }

    #[test]
    fn zoneinfo_offsets() {
        if let Some(z) = tz::load("America/New_York") {
            // 2026-01-15 is EST, 2026-07-15 EDT.
            assert_eq!(z.offset_at(1_768_435_200), -5 * 3600);
            assert_eq!(z.offset_at(1_784_073_600), -4 * 3600);
        }
        assert!(tz::load("No/Such_Zone").is_none());
        assert_eq!(tz::load("UTC").unwrap().offset_at(0), 0);
    }

    #[test]
    fn jwt_permissions_as_config_permissions() {
        let p: jwt::Permissions = serde_json::from_value(serde_json::json!({
            "pub": {"deny": ["secret.>"]},
            "sub": {"allow": ["a.>"]},
        }))
        .unwrap();
        let c = permissions_from_jwt(&p).unwrap();
        assert_eq!(c.publish.as_ref().unwrap().allow, None);
        assert_eq!(c.publish.as_ref().unwrap().deny, vec!["secret.>"]);
        assert_eq!(
            c.subscribe.as_ref().unwrap().allow,
            Some(vec!["a.>".to_string()])
        );
        let p: jwt::Permissions =
            serde_json::from_value(serde_json::json!({"resp": {"max": 0, "ttl": 0}})).unwrap();
        let c = permissions_from_jwt(&p).unwrap();
        assert_eq!(c.publish.as_ref().unwrap().allow, Some(vec![]));
        assert_eq!(c.allow_responses, Some(ResponsePermission::default()));
        assert!(permissions_from_jwt(&jwt::Permissions::default()).is_none());
        assert_eq!(min_limit(-1, 5), 5);
        assert_eq!(min_limit(3, 5), 3);
        assert_eq!(min_limit(3, -1), 3);
        assert_eq!(min_limit(0, -1), 0);
    }
}
