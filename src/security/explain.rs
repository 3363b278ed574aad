//! `natrix explain`: answers offline, from a config file, whether a user may
//! publish, subscribe or connect, which rule decides, and what is likely
//! wrong when the answer is not the expected one.
//!
//! The answer comes from the same code the server runs ([`CompiledPerms`]
//! for permissions, [`AuthConfig`] for credentials), so explain and the
//! broker cannot disagree. Output: a first line `ALLOWED` or `DENIED`, the
//! user, account and deciding rule, then `hint:` lines. Exit status 0 when
//! allowed, 1 when denied, 2 on usage or config errors.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{self, Permissions, ServerConfig, Value, GLOBAL_ACCOUNT};
use crate::security::auth::{AuthConfig, Credentials};
use crate::security::authz::{CompiledPerms, Decision, Reason};
use crate::subject;

const USAGE: &str = "\
usage: natrix explain -c FILE [WHO] (--pub SUBJECT | --sub SUBJECT [--queue Q] | --connect)
  WHO: --user NAME [--password P] | --nkey PUBKEY [--seed SEED] | --token T
       | --creds FILE | --jwt USER_JWT [--seed SEED]   (operator mode)
       (none: a client that sends no credentials)";

/// The subject replies to requests travel on, by client convention.
const INBOX_ALL: &str = "_INBOX.>";

#[derive(Debug, PartialEq)]
enum Op {
    Pub(String),
    Sub {
        subject: String,
        queue: Option<String>,
    },
    Connect,
}

#[derive(Debug, PartialEq)]
struct Query {
    config: PathBuf,
    user: Option<String>,
    password: Option<String>,
    nkey: Option<String>,
    seed: Option<String>,
    token: Option<String>,
    /// Operator mode: the user JWT (from --jwt or a --creds file).
    jwt: Option<String>,
    op: Op,
}

#[derive(Debug, PartialEq)]
enum ArgError {
    Help,
    Usage(String),
}

fn usage(msg: impl Into<String>) -> ArgError {
    ArgError::Usage(msg.into())
}

fn parse_args(args: &[String]) -> Result<Query, ArgError> {
    let mut config = None;
    let (mut user, mut password, mut nkey, mut seed, mut token) = (None, None, None, None, None);
    let mut jwt: Option<String> = None;
    let (mut ops, mut queue) = (Vec::new(), None);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| usage(format!("{flag} needs a value")))
        };
        match flag {
            "-h" | "--help" => return Err(ArgError::Help),
            "-c" | "--config" => config = Some(PathBuf::from(value()?)),
            "--user" => user = Some(value()?),
            "--password" | "--pass" => password = Some(value()?),
            "--nkey" => nkey = Some(value()?),
            "--seed" => seed = Some(value()?),
            "--token" => token = Some(value()?),
            "--jwt" => jwt = Some(value()?),
            "--creds" => {
                let path = value()?;
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| usage(format!("--creds {path}: {e}")))?;
                let c = crate::security::jwt::parse_creds(&text)
                    .map_err(|e| usage(format!("--creds {path}: {e}")))?;
                jwt = Some(c.jwt);
                seed = Some(c.seed);
            }
            "--pub" => ops.push(Op::Pub(value()?)),
            "--sub" => ops.push(Op::Sub {
                subject: value()?,
                queue: None,
            }),
            "--queue" => queue = Some(value()?),
            "--connect" if inline.is_none() => ops.push(Op::Connect),
            _ => return Err(usage(format!("unknown argument {arg:?}"))),
        }
    }
    let config = config.ok_or_else(|| usage("a config file is required (-c FILE)"))?;
    if user.is_some() && (nkey.is_some() || seed.is_some()) {
        return Err(usage("give either --user or --nkey/--seed, not both"));
    }
    if jwt.is_some() && (user.is_some() || nkey.is_some() || token.is_some()) {
        return Err(usage("--creds/--jwt go alone (with --seed for --jwt)"));
    }
    let mut op = match ops.len() {
        1 => ops.pop().expect("one operation"),
        0 => return Err(usage("say what to explain: --pub, --sub or --connect")),
        _ => return Err(usage("explain one operation at a time")),
    };
    match &mut op {
        Op::Pub(s) if !subject::valid_literal(s.as_bytes()) => {
            return Err(usage(format!(
                "{s:?} cannot be published to (empty token or wildcard)"
            )))
        }
        Op::Sub { subject: s, .. } if !subject::valid_subscribe(s.as_bytes()) => {
            return Err(usage(format!("{s:?} is not a valid subscription subject")))
        }
        Op::Sub { queue: q, .. } => *q = queue.take(),
        _ => {}
    }
    if queue.is_some() {
        return Err(usage("--queue goes with --sub"));
    }
    if let Op::Sub { queue: Some(q), .. } = &op {
        if q.is_empty() || q.contains(char::is_whitespace) {
            return Err(usage(format!("{q:?} is not a valid queue group name")));
        }
    }
    Ok(Query {
        config,
        user,
        password,
        nkey,
        seed,
        token,
        jwt,
        op,
    })
}

/// Entry point for `natrix explain ARGS`.
pub fn run(args: &[String]) -> ExitCode {
    let q = match parse_args(args) {
        Ok(q) => q,
        Err(ArgError::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(ArgError::Usage(msg)) => {
            eprintln!("natrix explain: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let cfg = match load(&q.config) {
        Ok(cfg) => cfg,
        Err(text) => {
            eprint!("{text}");
            return ExitCode::from(2);
        }
    };
    let report = explain(&cfg, &q);
    print!("{}", report.text);
    ExitCode::from(report.code)
}

/// The config, or the error text with hints about account-name case.
fn load(path: &Path) -> Result<ServerConfig, String> {
    config::load(path).map_err(|e| {
        let mut text = format!("natrix explain: {e}\n");
        if let Ok(tree) = config::parse_value_file(path) {
            for h in undefined_account_case_hints(&tree.value) {
                let _ = writeln!(text, "hint: {h}");
            }
        }
        text
    })
}

struct Report {
    /// The exit status: 0 allowed, 1 denied, 2 unusable query.
    code: u8,
    text: String,
}

impl Report {
    fn new(allowed: bool, user: &str, account: &str, rule: &str) -> Report {
        let text = format!(
            "{}\n  user:    {user}\n  account: {account}\n  rule:    {rule}\n",
            if allowed { "ALLOWED" } else { "DENIED" }
        );
        Report {
            code: if allowed { 0 } else { 1 },
            text,
        }
    }

    fn error(msg: &str) -> Report {
        Report {
            code: 2,
            text: format!("natrix explain: {msg}\n"),
        }
    }

    fn hint(&mut self, h: impl AsRef<str>) {
        self.text.push_str("hint: ");
        self.text.push_str(h.as_ref());
        self.text.push('\n');
    }
}

/// Who the query's client would connect as, found without credentials.
struct Who<'a> {
    name: String,
    account: String,
    /// `None`: everything is allowed.
    perms: Option<std::borrow::Cow<'a, Permissions>>,
    /// Why this identity applies, when it is not simply a configured user.
    note: Option<String>,
}

/// Identifies the query's client from the config alone: the configured
/// user or nkey, the single user, or (without a name) `no_auth_user`. `Err`
/// is a report explaining why no identity applies.
fn identify<'a>(cfg: &'a ServerConfig, auth: &AuthConfig, q: &Query) -> Result<Who<'a>, Report> {
    let global = |name: &str, note: &str| Who {
        name: name.to_string(),
        account: GLOBAL_ACCOUNT.to_string(),
        perms: None,
        note: Some(note.to_string()),
    };
    let of_user = |u: &'a config::User, note: Option<String>| Who {
        name: u.identity().to_string(),
        account: u.account.clone(),
        perms: u.permissions.as_ref().map(std::borrow::Cow::Borrowed),
        note,
    };
    if !auth.required() {
        let name = q.user.as_deref().or(q.nkey.as_deref()).unwrap_or("(none)");
        return Ok(global(
            name,
            "authentication is not configured: every client connects to account $G without permissions",
        ));
    }
    let nkey = match (&q.nkey, &q.seed) {
        (Some(k), _) => Some(k.clone()),
        (None, Some(seed)) => match nkeys::KeyPair::from_seed(seed) {
            Ok(kp) => Some(kp.public_key()),
            Err(e) => return Err(Report::error(&format!("--seed: {e}"))),
        },
        (None, None) => None,
    };
    if let Some(k) = nkey {
        if let Some(u) = cfg
            .users
            .iter()
            .find(|u| u.nkey.as_deref() == Some(k.as_str()))
        {
            return Ok(of_user(u, None));
        }
        let mut r = Report::new(false, &k, "-", &format!("unknown nkey {k:?}"));
        similar_user_hints(cfg, &k, &mut r);
        return Err(r);
    }
    if let Some(name) = q.user.as_deref() {
        if let Some(u) = cfg
            .users
            .iter()
            .find(|u| u.username.as_deref() == Some(name))
        {
            return Ok(of_user(u, None));
        }
        if cfg.authorization.user.as_deref() == Some(name) {
            return Ok(global(
                name,
                "the authorization block's single user has no permissions",
            ));
        }
        let mut r = Report::new(false, name, "-", &format!("unknown user {name:?}"));
        similar_user_hints(cfg, name, &mut r);
        return Err(r);
    }
    if let Some(name) = &cfg.no_auth_user {
        if let Some(u) = cfg.users.iter().find(|u| u.username.as_ref() == Some(name)) {
            return Ok(of_user(
                u,
                Some(format!(
                    "no credentials given: the client connects as no_auth_user {name:?}"
                )),
            ));
        }
    }
    if cfg.users.is_empty() && (q.token.is_some() || cfg.authorization.token.is_some()) {
        return Ok(global(
            "(token)",
            "token clients connect to account $G without permissions",
        ));
    }
    let mut r = Report::new(
        false,
        "(none)",
        "-",
        "authentication is required and no user was given",
    );
    r.hint("name the client with --user NAME or --nkey PUBKEY");
    Err(r)
}

fn explain(cfg: &ServerConfig, q: &Query) -> Report {
    if !cfg.operators.is_empty() || !cfg.trusted_keys.is_empty() || q.jwt.is_some() {
        return explain_jwt(cfg, q);
    }
    let auth = AuthConfig::from_config(cfg);
    let mut report = match &q.op {
        Op::Connect => explain_connect(cfg, &auth, q),
        Op::Pub(s) => match identify(cfg, &auth, q) {
            Ok(who) => with_password_check(&auth, q, explain_pub(&who, s)),
            Err(r) => r,
        },
        Op::Sub { subject, queue } => match identify(cfg, &auth, q) {
            Ok(who) => with_password_check(&auth, q, explain_sub(&who, subject, queue.as_deref())),
            Err(r) => r,
        },
    };
    for h in account_case_hints(cfg) {
        report.hint(h);
    }
    report
}

/// Operator mode: the server's own chain for a user JWT, with a nonce
/// signed by the seed when one is known, then the permissions it grants.
fn explain_jwt(cfg: &ServerConfig, q: &Query) -> Report {
    use crate::security::operator::{self, JwtFailure, OperatorAuth, Presented};
    let op = match OperatorAuth::from_config(cfg) {
        Ok(Some(op)) => op,
        Ok(None) => {
            return Report::error(
                "--creds/--jwt need a config in operator mode (operator or trusted_keys)",
            )
        }
        Err(e) => return Report::error(&e),
    };
    let Some(token) = q.jwt.as_deref() else {
        let mut r = Report::new(
            false,
            "(none)",
            "-",
            "operator mode: clients need a user JWT",
        );
        r.hint("name the client with --creds FILE (or --jwt JWT --seed SEED)");
        return r;
    };
    const NONCE: &[u8] = b"natrix-explain";
    let sig = match q.seed.as_deref().map(nkeys::KeyPair::from_seed) {
        Some(Ok(kp)) => match kp.sign(NONCE) {
            Ok(s) => Some(crate::security::auth::base64_url_encode(&s)),
            Err(e) => return Report::error(&format!("seed: {e}")),
        },
        Some(Err(e)) => return Report::error(&format!("seed: {e}")),
        None => None,
    };
    let p = Presented {
        jwt: Some(token),
        sig: sig.as_deref(),
        nonce: NONCE,
        ip: None,
    };
    let user_key = crate::security::jwt::decode(token)
        .map(|c| c.sub)
        .unwrap_or_else(|_| "(undecodable JWT)".into());
    let now = operator::now();
    let mut steps = super::explain_chain::walk(&op, token, q.seed.as_deref(), now);
    let mut r = match op.authenticate(&p, now) {
        Err(JwtFailure::MissingSignature { .. }) if sig.is_none() => {
            let mut r = Report::new(
                false,
                &user_key,
                "-",
                "the JWT checks out, but no seed was given to sign the nonce",
            );
            r.hint("pass --seed SEED, or use --creds FILE, to check the signature too");
            r
        }
        Err(f) => {
            let mut r = Report::new(false, &user_key, "-", &f.to_string());
            jwt_hints(&op, &f, &mut r);
            r
        }
        Ok(id) => {
            let who = Who {
                name: id.name.clone(),
                account: id.account.clone(),
                perms: id.permissions.clone().map(std::borrow::Cow::Owned),
                note: None,
            };
            let mut r = match &q.op {
                Op::Connect => Report::new(
                    true,
                    &who.name,
                    &who.account,
                    "the user JWT, its account and operator check out",
                ),
                Op::Pub(s) => explain_pub(&who, s),
                Op::Sub { subject, queue } => explain_sub(&who, subject, queue.as_deref()),
            };
            if let Some(t) = id.user_expires {
                r.hint(format!(
                    "the authorization ends at {} (JWT expiry or the end of its allowed time window)",
                    crate::security::jwt::unix_text(t)
                ));
            }
            if steps.iter().all(|s| s.pass) {
                let rule = r
                    .text
                    .lines()
                    .find_map(|l| l.strip_prefix("  rule:    "))
                    .unwrap_or("")
                    .to_string();
                let what = match &q.op {
                    Op::Connect => "connect".to_string(),
                    Op::Pub(s) => format!("publish to {s:?}"),
                    Op::Sub { subject, .. } => format!("subscribe to {subject:?}"),
                };
                steps.push(super::explain_chain::Step {
                    name: "permission",
                    pass: r.code == 0,
                    detail: format!("{what}: {rule}"),
                    fix: (r.code != 0).then(|| {
                        "change the user's permissions: natrix jwt edit user --account ACC --name USER --allow-pub/--allow-sub SUBJECT (or the account's default permissions)".to_string()
                    }),
                });
            }
            r
        }
    };
    r.text.push_str(&super::explain_chain::render(&steps));
    r
}

/// The fix for each refusal cause.
fn jwt_hints(
    op: &crate::security::operator::OperatorAuth,
    f: &crate::security::operator::JwtFailure,
    r: &mut Report,
) {
    use crate::security::operator::{AccountFailure, JwtFailure};
    match f {
        JwtFailure::Expired { .. } | JwtFailure::NotYetValid { .. } => {
            r.hint("issue a new user JWT with a valid time range (and check the clocks)")
        }
        JwtFailure::Account(AccountFailure::NotFound { account, .. }) => r.hint(format!(
            "add the account JWT of {account} to resolver_preload (or push it to the resolver)"
        )),
        JwtFailure::Account(AccountFailure::Untrusted { .. }) => r.hint(format!(
            "sign the account with a trusted operator key, or trust its operator; the server trusts: {}",
            op.trust.describe()
        )),
        JwtFailure::UnknownIssuer { issuer, account } => r.hint(format!(
            "add {issuer} to the signing keys of account {account}, or issue the user with the account key"
        )),
        JwtFailure::Revoked { .. } => {
            r.hint("issue a new user JWT (its iat must be after the revocation), or remove the revocation")
        }
        JwtFailure::SignatureMismatch { .. } => {
            r.hint("the seed does not belong to the user JWT's subject: use the creds file made with it")
        }
        JwtFailure::BearerNotAllowed { .. } => {
            r.hint("issue the user without bearer_token, or allow bearer tokens in the account")
        }
        _ => {}
    }
}

/// Permissions do not need the password; when one is given anyway, say
/// whether it would be accepted.
fn with_password_check(auth: &AuthConfig, q: &Query, mut r: Report) -> Report {
    if q.password.is_some() {
        if let Err(f) = auth.authenticate(&credentials(q, None), None) {
            r.hint(format!("connecting with these credentials would fail: {f}"));
        }
    }
    r
}

fn credentials<'a>(q: &'a Query, nkey: Option<(&'a str, &'a str)>) -> Credentials<'a> {
    Credentials {
        user: q.user.as_deref(),
        pass: q.password.as_deref(),
        token: q.token.as_deref(),
        nkey: nkey.map(|(k, _)| k),
        sig: nkey.map(|(_, s)| s),
        cert: None,
        jwt: None,
        ip: None,
        cert_dn: None,
    }
}

/// The rule line: a reason, with "no rules" made specific to the user.
fn rule_text(who: &Who<'_>, op: &str, d: &Decision) -> String {
    match (&d.reason, &who.perms) {
        (Reason::NoRules, None) => {
            "no permissions apply to this user: everything is allowed".into()
        }
        (Reason::NoRules, Some(_)) => format!("no {op} rules for this user: everything is allowed"),
        (r, _) => r.to_string(),
    }
}

fn compile(who: &Who<'_>) -> CompiledPerms {
    CompiledPerms::compile(who.perms.as_deref().unwrap_or(&Permissions::default()))
}

fn new_report(who: &Who<'_>, op: &str, d: &Decision) -> Report {
    let mut r = Report::new(d.allowed, &who.name, &who.account, &rule_text(who, op, d));
    if let Some(note) = &who.note {
        r.hint(note);
    }
    if let Reason::DeniedOver { deny, allow } = &d.reason {
        r.hint(format!(
            "deny rule {deny:?} shadows allow rule {allow:?}: deny always wins, so narrow the deny rule if {allow:?} should apply here"
        ));
    }
    r
}

fn is_reply_like(s: &str) -> bool {
    s.starts_with("_INBOX.") || s.starts_with("_R_.")
}

fn explain_pub(who: &Who<'_>, s: &str) -> Report {
    let perms = compile(who);
    let d = perms.explain_publish(s.as_bytes());
    let mut r = new_report(who, "publish", &d);
    if d.reason == Reason::RepliesOnly {
        r.hint("allow_responses without publish rules lets the user publish replies only; add publish allow rules for the subjects it must publish to");
    }
    if !d.allowed && is_reply_like(s) {
        match perms.responses() {
            None => r.hint(format!(
                "{s:?} looks like a reply subject: for a user that answers requests, set allow_responses: true in its permissions (it may then publish to the reply subject of each request it receives)"
            )),
            Some((max, expires)) => r.hint(format!(
                "with allow_responses ({}, {}) the user may still publish to the reply subject of a request it received",
                match max {
                    0 => "unlimited responses".to_string(),
                    n => format!("max {n}"),
                },
                if expires.is_zero() {
                    "no expiry".to_string()
                } else {
                    format!("expires {expires:?}")
                }
            )),
        }
    }
    if d.allowed && !is_reply_like(s) {
        let inbox = perms.explain_subscribe(INBOX_ALL.as_bytes(), None);
        if !inbox.allowed {
            r.hint(format!(
                "this user may not subscribe to {INBOX_ALL:?} ({}), so requests it makes get no replies; allow {INBOX_ALL:?} under subscribe (responders need allow_responses or publish rights on it)",
                inbox.reason
            ));
        }
    }
    r
}

fn explain_sub(who: &Who<'_>, s: &str, queue: Option<&str>) -> Report {
    let perms = compile(who);
    let d = perms.explain_subscribe(s.as_bytes(), queue.map(str::as_bytes));
    let mut r = new_report(who, "subscribe", &d);
    match &d.reason {
        Reason::QueueRequired { rules } | Reason::QueueNotAllowed { rules, .. } => {
            let queues: Vec<String> = rules
                .iter()
                .filter_map(|rule| rule.split_whitespace().nth(1))
                .map(|q| format!("{q:?}"))
                .collect();
            r.hint(format!(
                "subscribe in one of the queue groups these rules allow: {} (--queue)",
                queues.join(", ")
            ));
        }
        Reason::DenyQueueExempt { queue, .. } => r.hint(format!(
            "as in nats-server, queue deny rules for this subject replace the plain deny rule for queue subscriptions: a plain SUB would be denied, queue {queue:?} is not"
        )),
        _ => {}
    }
    if !d.allowed && s.starts_with("_INBOX") {
        r.hint(format!(
            "requests need a reply subscription on {INBOX_ALL:?}: allow {INBOX_ALL:?} under this user's subscribe rules"
        ));
    }
    if d.allowed {
        let filters = perms.delivery_filters(s.as_bytes());
        if !filters.is_empty() {
            let list: Vec<String> = filters.iter().map(|f| format!("{f:?}")).collect();
            r.hint(format!(
                "the subscription contains deny rule {}: as in nats-server, from this SUB on the client gets no message on a denied subject, on any of its subscriptions",
                list.join(", ")
            ));
        }
    }
    r
}

fn explain_connect(cfg: &ServerConfig, auth: &AuthConfig, q: &Query) -> Report {
    // nkey clients sign the server's nonce; with the seed we can do the same.
    const NONCE: &[u8] = b"natrix-explain";
    let mut signed = None;
    if let Some(seed) = &q.seed {
        let kp = match nkeys::KeyPair::from_seed(seed) {
            Ok(kp) => kp,
            Err(e) => return Report::error(&format!("--seed: {e}")),
        };
        let public = kp.public_key();
        if q.nkey.as_ref().is_some_and(|k| *k != public) {
            return Report::error(&format!(
                "--seed belongs to {public}, not to the --nkey given"
            ));
        }
        let sig = match kp.sign(NONCE) {
            Ok(sig) => crate::security::auth::base64_url_encode(&sig),
            Err(e) => return Report::error(&format!("--seed: {e}")),
        };
        signed = Some((public, sig));
    } else if let Some(k) = q.nkey.as_ref().filter(|_| auth.required()) {
        // Without the seed there is no signature to check: say whether the
        // key is known, which is what a typo would break.
        return match identify(cfg, auth, q) {
            Ok(who) => {
                let mut r = Report::new(
                    true,
                    &who.name,
                    &who.account,
                    &format!("nkey {k:?} is configured (signature not checked)"),
                );
                r.hint("pass --seed SEED to check a signature too");
                r
            }
            Err(r) => r,
        };
    }
    let creds = credentials(q, signed.as_ref().map(|(k, s)| (k.as_str(), s.as_str())));
    let given_name = creds.user.or(creds.nkey).unwrap_or("(none)");
    match auth.authenticate(&creds, Some(NONCE)) {
        Ok(id) => {
            let how = if !auth.required() {
                "authentication is not required".to_string()
            } else if q.user.is_none() && q.token.is_none() && signed.is_none() {
                format!(
                    "no credentials given: connects as no_auth_user {:?}",
                    id.name
                )
            } else {
                "credentials accepted".to_string()
            };
            let name = if id.name.is_empty() {
                given_name
            } else {
                &id.name
            };
            Report::new(true, name, &id.account, &how)
        }
        Err(f) => {
            let account = cfg
                .users
                .iter()
                .find(|u| u.identity() == given_name)
                .map_or("-", |u| u.account.as_str());
            let mut r = Report::new(false, given_name, account, &f.to_string());
            if let Some(name) = creds.user {
                let known = cfg
                    .users
                    .iter()
                    .any(|u| u.username.as_deref() == Some(name))
                    || cfg.authorization.user.as_deref() == Some(name);
                if known {
                    password_hints(cfg, name, q.password.as_deref(), &mut r);
                } else {
                    similar_user_hints(cfg, name, &mut r);
                }
            } else if let Some(k) = creds.nkey {
                if !cfg.users.iter().any(|u| u.nkey.as_deref() == Some(k)) {
                    similar_user_hints(cfg, k, &mut r);
                }
            } else {
                r.hint("give credentials: --user NAME --password P, --nkey PUBKEY --seed SEED, or --token T");
            }
            r
        }
    }
}

fn password_hints(cfg: &ServerConfig, name: &str, given: Option<&str>, r: &mut Report) {
    let configured = cfg
        .users
        .iter()
        .find(|u| u.username.as_deref() == Some(name))
        .and_then(|u| u.password.as_deref())
        .or(cfg
            .authorization
            .password
            .as_deref()
            .filter(|_| cfg.authorization.user.as_deref() == Some(name)));
    let Some(configured) = configured else {
        return;
    };
    if !crate::security::auth::is_bcrypt(configured) {
        return;
    }
    if given == Some(configured) {
        r.hint(
            "the config holds a bcrypt hash of the password; give the plain password, not the hash",
        );
    } else {
        r.hint(
            "the configured password is a bcrypt hash: give the plain password it was made from",
        );
    }
}

/// Users whose name (or nkey) is `name` up to case, or within edit
/// distance 2, closest first.
fn similar_user_hints(cfg: &ServerConfig, name: &str, r: &mut Report) {
    let single = cfg
        .authorization
        .user
        .iter()
        .map(|u| (u.as_str(), GLOBAL_ACCOUNT));
    let users = cfg.users.iter().map(|u| (u.identity(), u.account.as_str()));
    let mut near: Vec<(usize, &str, &str)> = users
        .chain(single)
        .filter(|(cand, _)| *cand != name)
        .filter_map(|(cand, acc)| {
            if cand.to_lowercase() == name.to_lowercase() {
                Some((0, cand, acc))
            } else {
                let d = edit_distance(cand, name);
                (d <= 2).then_some((d, cand, acc))
            }
        })
        .collect();
    near.sort();
    if near.is_empty() {
        r.hint(format!(
            "no configured user is named like {name:?} ({} users in the config)",
            cfg.users.len() + cfg.authorization.user.iter().count()
        ));
    }
    for (d, cand, acc) in near.into_iter().take(5) {
        let how = if d == 0 {
            " (names are case-sensitive)"
        } else {
            ""
        };
        r.hint(format!("did you mean {cand:?} in account {acc}?{how}"));
    }
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Imports and exports of a loaded config that name an account whose name
/// another account repeats up to case: likely a mix-up between the two.
fn account_case_hints(cfg: &ServerConfig) -> Vec<String> {
    let mut hints = Vec::new();
    let mut check = |acc: &str, what: &str, named: &str| {
        for other in &cfg.accounts {
            if other.name != named && other.name.to_lowercase() == named.to_lowercase() {
                hints.push(format!(
                    "account {acc}: {what} names account {named:?}, and account {:?} differs from it only by case; account names are case-sensitive",
                    other.name
                ));
            }
        }
    };
    for acc in &cfg.accounts {
        for imp in &acc.imports {
            check(
                &acc.name,
                &format!("import of {:?}", imp.subject),
                &imp.account,
            );
        }
        for exp in &acc.exports {
            for named in exp.accounts.iter().flatten() {
                check(&acc.name, &format!("export of {:?}", exp.subject), named);
            }
        }
    }
    hints
}

/// For a config that failed to load: imports or exports naming an account
/// that is not defined but matches a defined one up to case.
fn undefined_account_case_hints(root: &Value) -> Vec<String> {
    let Value::Map(top) = root else {
        return Vec::new();
    };
    let mut accounts: Vec<(&str, Option<&Value>)> = Vec::new();
    for e in top
        .iter()
        .filter(|e| e.key.eq_ignore_ascii_case("accounts"))
    {
        match &e.value.value {
            Value::Map(entries) => accounts.extend(
                entries
                    .iter()
                    .map(|a| (a.key.as_str(), Some(&a.value.value))),
            ),
            Value::Array(items) => accounts.extend(items.iter().filter_map(|i| match &i.value {
                Value::String(s) => Some((s.as_str(), None)),
                _ => None,
            })),
            _ => {}
        }
    }
    let mut hints = Vec::new();
    for (name, body) in &accounts {
        let mut refs = Vec::new();
        if let Some(body) = body {
            account_refs(body, &mut refs);
        }
        for named in refs {
            if accounts.iter().any(|(n, _)| *n == named) {
                continue;
            }
            if let Some((existing, _)) = accounts
                .iter()
                .find(|(n, _)| n.to_lowercase() == named.to_lowercase())
            {
                hints.push(format!(
                    "account {name}: {named:?} is not an account, but {existing:?} is; account names are case-sensitive"
                ));
            }
        }
    }
    hints
}

/// Account names referenced inside an account's definition: `account` in
/// imports and `accounts` lists in exports.
fn account_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Map(entries) => {
            for e in entries {
                match (&e.value.value, e.key.to_ascii_lowercase().as_str()) {
                    (Value::String(s), "account") => out.push(s),
                    (Value::Array(items), "accounts") => {
                        out.extend(items.iter().filter_map(|i| match &i.value {
                            Value::String(s) => Some(s.as_str()),
                            _ => None,
                        }))
                    }
                    (v, _) => account_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| account_refs(&i.value, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = r#"
        accounts {
          ORDERS {
            users: [
              {user: alice, password: secret, permissions: {publish: "orders.>", subscribe: "_INBOX.>"}}
              {user: Bob, password: b, permissions: {
                publish: {allow: ">", deny: "billing.>"}
                subscribe: {allow: ["jobs.* workers", "events.>"], deny: "events.secret"}
              }}
              {user: responder, password: r, permissions: {subscribe: "svc.>", allow_responses: true}}
              {user: requester, password: q, permissions: {publish: "svc.>", subscribe: "events.>"}}
              {nkey: UBRYMDSRTC6AVJL6USKKS3FIOE466GMEU67PZDGOWYSYHWA7GSKO42VW}
            ]
          }
          BILLING {
            users: [
              {user: carol, password: $2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG}
            ]
          }
        }
    "#;

    fn args(a: &[&str]) -> Vec<String> {
        ["-c", "test.conf"]
            .iter()
            .chain(a)
            .map(|s| s.to_string())
            .collect()
    }

    fn report_on(cfg: &str, a: &[&str]) -> (u8, String) {
        let cfg = config::parse_str(cfg).expect("fixture parses");
        let q = parse_args(&args(a)).expect("arguments parse");
        let r = explain(&cfg, &q);
        (r.code, r.text)
    }

    /// An operator config with one account, and a user JWT of it.
    fn operator_fixture(user_nats: serde_json::Value) -> (String, String, nkeys::KeyPair) {
        use crate::security::jwt::{encode, Claims};
        let op = nkeys::KeyPair::new_operator();
        let acc = nkeys::KeyPair::new_account();
        let user = nkeys::KeyPair::new_user();
        let claims = |iss: &nkeys::KeyPair, sub: String, nats: serde_json::Value| Claims {
            jti: "J".into(),
            iat: 1_700_000_000,
            iss: iss.public_key(),
            sub,
            name: "n".into(),
            aud: None,
            exp: None,
            nbf: None,
            nats,
        };
        let op_jwt = encode(
            &claims(
                &op,
                op.public_key(),
                serde_json::json!({"type": "operator", "version": 2}),
            ),
            &op,
        )
        .unwrap();
        let acc_jwt = encode(
            &claims(
                &op,
                acc.public_key(),
                serde_json::json!({"type": "account", "version": 2,
                    "limits": {"conn": -1, "subs": -1, "payload": -1}}),
            ),
            &op,
        )
        .unwrap();
        let user_jwt = encode(&claims(&acc, user.public_key(), user_nats), &acc).unwrap();
        let cfg = format!(
            "operator: {op_jwt}\nresolver: MEMORY\nresolver_preload: {{ {}: {acc_jwt} }}\n",
            acc.public_key()
        );
        (cfg, user_jwt, user)
    }

    #[test]
    fn operator_mode_users_by_jwt() {
        let (cfg, jwt, user) = operator_fixture(serde_json::json!({
            "type": "user", "version": 2, "pub": {"allow": ["orders.>"]},
            "subs": -1, "payload": -1, "data": -1
        }));
        let seed = user.seed().unwrap();
        let (code, text) = report_on(
            &cfg,
            &["--jwt", &jwt, "--seed", &seed, "--pub", "orders.new"],
        );
        assert_eq!(code, 0, "{text}");
        assert!(
            text.contains(&format!("user:    {}", user.public_key())),
            "{text}"
        );
        assert!(
            text.contains("allowed by allow rule \"orders.>\""),
            "{text}"
        );
        let (code, text) = report_on(&cfg, &["--jwt", &jwt, "--seed", &seed, "--pub", "billing"]);
        assert_eq!(code, 1, "{text}");
        let (code, text) = report_on(&cfg, &["--jwt", &jwt, "--connect"]);
        assert_eq!(code, 1, "{text}");
        assert!(text.contains("no seed was given"), "{text}");
        // Another key's seed does not match the JWT.
        let other = nkeys::KeyPair::new_user().seed().unwrap();
        let (code, text) = report_on(&cfg, &["--jwt", &jwt, "--seed", &other, "--connect"]);
        assert_eq!(code, 1, "{text}");
        assert!(
            text.contains("signature does not match the nonce"),
            "{text}"
        );
        // A user of an account the resolver does not know.
        let (cfg2, _, _) = operator_fixture(serde_json::json!({}));
        let (code, text) = report_on(&cfg2, &["--jwt", &jwt, "--seed", &seed, "--connect"]);
        assert_eq!(code, 1, "{text}");
        assert!(text.contains("not found"), "{text}");
        assert!(text.contains("hint: add the account JWT"), "{text}");
    }

    #[test]
    fn operator_mode_steps_pass_or_fail_with_cause_and_fix() {
        let (cfg, jwt, user) = operator_fixture(serde_json::json!({
            "type": "user", "version": 2, "pub": {"allow": ["orders.>"]},
            "subs": -1, "payload": -1, "data": -1
        }));
        let seed = user.seed().unwrap();
        let (_, text) = report_on(
            &cfg,
            &["--jwt", &jwt, "--seed", &seed, "--pub", "orders.new"],
        );
        for step in [
            "PASS user JWT:",
            "PASS user validity: no expiry",
            "PASS account:",
            "PASS operator:",
            "PASS account validity:",
            "PASS issuer: the account key",
            "PASS revocation: not revoked",
            "PASS signature:",
            "PASS permission: publish to \"orders.new\": allowed by allow rule",
        ] {
            assert!(text.contains(step), "{step} missing:\n{text}");
        }
        let (_, text) = report_on(&cfg, &["--jwt", &jwt, "--seed", &seed, "--pub", "billing"]);
        assert!(
            text.contains("  FAIL permission\n       cause: publish to \"billing\""),
            "{text}"
        );
        assert!(
            text.contains("fix:   change the user's permissions"),
            "{text}"
        );
        // Unknown account: the chain stops there, naming the fix.
        let (cfg2, _, _) = operator_fixture(serde_json::json!({}));
        let (_, text) = report_on(&cfg2, &["--jwt", &jwt, "--seed", &seed, "--connect"]);
        assert!(
            text.contains("  FAIL account\n       cause: account A"),
            "{text}"
        );
        assert!(text.contains("fix:   make the resolver know A"), "{text}");
        assert!(!text.contains("PASS issuer"), "{text}");
        // Another seed: the signature step fails.
        let other = nkeys::KeyPair::new_user().seed().unwrap();
        let (_, text) = report_on(&cfg, &["--jwt", &jwt, "--seed", &other, "--connect"]);
        assert!(
            text.contains("  FAIL signature\n       cause: the seed belongs to U"),
            "{text}"
        );
    }

    fn report(a: &[&str]) -> (u8, String) {
        report_on(FIXTURE, a)
    }

    #[test]
    fn publish_allowed_by_rule() {
        let (code, text) = report(&["--user", "alice", "--pub", "orders.created"]);
        assert_eq!(code, 0);
        assert_eq!(
            text,
            "ALLOWED\n  user:    alice\n  account: ORDERS\n  rule:    allowed by allow rule \"orders.>\"\n"
        );
    }

    #[test]
    fn publish_denied_without_allow_rule() {
        let (code, text) = report(&["--user", "alice", "--pub", "billing.invoice"]);
        assert_eq!(code, 1);
        assert_eq!(
            text,
            "DENIED\n  user:    alice\n  account: ORDERS\n  rule:    no allow rule matches (allow: \"orders.>\")\n"
        );
    }

    #[test]
    fn deny_shadowing_an_allow_rule() {
        let (code, text) = report(&["--user", "Bob", "--pub", "billing.invoice"]);
        assert_eq!(code, 1);
        assert!(text.starts_with(
            "DENIED\n  user:    Bob\n  account: ORDERS\n  rule:    denied by deny rule \"billing.>\" (it overrides allow rule \">\")\n"
        ), "{text}");
        assert!(
            text.contains("hint: deny rule \"billing.>\" shadows allow rule \">\""),
            "{text}"
        );
    }

    #[test]
    fn queue_rules() {
        let (code, text) = report(&["--user", "Bob", "--sub", "jobs.eu"]);
        assert_eq!(code, 1);
        assert!(
            text.contains(
                "rule:    only queue subscriptions are allowed here (allow: \"jobs.* workers\")"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "hint: subscribe in one of the queue groups these rules allow: \"workers\""
            ),
            "{text}"
        );
        let (code, text) = report(&["--user", "Bob", "--sub", "jobs.eu", "--queue", "workers"]);
        assert_eq!(code, 0, "{text}");
        assert!(text.contains("rule:    allowed by allow rule \"jobs.* workers\""));
        let (code, text) = report(&["--user", "Bob", "--sub", "jobs.eu", "--queue", "batch"]);
        assert_eq!(code, 1);
        assert!(
            text.contains("queue \"batch\" is not allowed here"),
            "{text}"
        );
    }

    #[test]
    fn wildcard_sub_overlapping_a_deny_rule() {
        let (code, text) = report(&["--user", "Bob", "--sub", "events.*"]);
        assert_eq!(code, 0);
        assert!(
            text.contains("rule:    allowed by allow rule \"events.>\""),
            "{text}"
        );
        assert!(
            text.contains("hint: the subscription contains deny rule \"events.secret\""),
            "{text}"
        );
        let (code, _) = report(&["--user", "Bob", "--sub", "events.secret"]);
        assert_eq!(code, 1);
    }

    #[test]
    fn unknown_user_with_a_near_match() {
        let (code, text) = report(&["--user", "bob", "--pub", "orders.x"]);
        assert_eq!(code, 1);
        assert_eq!(
            text,
            "DENIED\n  user:    bob\n  account: -\n  rule:    unknown user \"bob\"\nhint: did you mean \"Bob\" in account ORDERS? (names are case-sensitive)\n"
        );
        let (_, text) = report(&["--user", "caorl", "--pub", "x"]);
        assert!(
            text.contains("hint: did you mean \"carol\" in account BILLING?\n"),
            "{text}"
        );
        let (_, text) = report(&["--user", "zzzzzzzz", "--pub", "x"]);
        assert!(
            text.contains("hint: no configured user is named like \"zzzzzzzz\""),
            "{text}"
        );
    }

    #[test]
    fn requests_need_an_inbox_subscription() {
        let (code, text) = report(&["--user", "requester", "--pub", "svc.lookup"]);
        assert_eq!(code, 0);
        assert!(
            text.contains(
                "hint: this user may not subscribe to \"_INBOX.>\" (no allow rule matches (allow: \"events.>\")), so requests it makes get no replies"
            ),
            "{text}"
        );
        // alice may subscribe to her inbox: no hint.
        let (_, text) = report(&["--user", "alice", "--pub", "orders.x"]);
        assert!(!text.contains("hint:"), "{text}");
        let (code, text) = report(&["--user", "Bob", "--sub", "_INBOX.abc.*"]);
        assert_eq!(code, 1);
        assert!(
            text.contains("hint: requests need a reply subscription on \"_INBOX.>\""),
            "{text}"
        );
    }

    #[test]
    fn reply_subjects_and_allow_responses() {
        let (code, text) = report(&["--user", "alice", "--pub", "_INBOX.abc"]);
        assert_eq!(code, 1);
        assert!(text.contains("set allow_responses: true"), "{text}");
        let (code, text) = report(&["--user", "responder", "--pub", "_INBOX.abc"]);
        assert_eq!(code, 1);
        assert!(
            text.contains("rule:    only replies may be published"),
            "{text}"
        );
        assert!(
            text.contains("with allow_responses (max 1, expires 120s)"),
            "{text}"
        );
        assert!(!text.contains("set allow_responses: true"), "{text}");
    }

    #[test]
    fn users_without_permissions_and_without_auth() {
        let (code, text) = report(&["--user", "carol", "--sub", ">"]);
        assert_eq!(code, 0);
        assert!(text.contains("account: BILLING\n  rule:    no permissions apply to this user: everything is allowed"), "{text}");
        let (code, text) = report_on("port: 4222", &["--user", "anyone", "--pub", "x"]);
        assert_eq!(code, 0);
        assert!(text.contains("account: $G"), "{text}");
        assert!(
            text.contains("hint: authentication is not configured"),
            "{text}"
        );
        let (code, text) = report(&["--pub", "x"]);
        assert_eq!(code, 1);
        assert!(
            text.contains("authentication is required and no user was given"),
            "{text}"
        );
    }

    #[test]
    fn no_auth_user_is_used_without_a_name() {
        let cfg = format!("{FIXTURE}\nno_auth_user: alice\n");
        let (code, text) = report_on(&cfg, &["--pub", "orders.x"]);
        assert_eq!(code, 0);
        assert!(text.contains("user:    alice"), "{text}");
        assert!(
            text.contains(
                "hint: no credentials given: the client connects as no_auth_user \"alice\""
            ),
            "{text}"
        );
    }

    #[test]
    fn nkey_users() {
        let k = "UBRYMDSRTC6AVJL6USKKS3FIOE466GMEU67PZDGOWYSYHWA7GSKO42VW";
        let (code, text) = report(&["--nkey", k, "--pub", "anything"]);
        assert_eq!(code, 0);
        assert!(
            text.contains(&format!("user:    {k}\n  account: ORDERS")),
            "{text}"
        );
        let typo = k.replace("UBRY", "UBRX");
        let (code, text) = report(&["--nkey", &typo, "--connect"]);
        assert_eq!(code, 1);
        assert!(
            text.contains(&format!("hint: did you mean \"{k}\" in account ORDERS?")),
            "{text}"
        );
        let (code, text) = report(&["--nkey", k, "--connect"]);
        assert_eq!(code, 0);
        assert!(text.contains("signature not checked"), "{text}");

        // With the seed, the signature is checked like the server does.
        let kp = nkeys::KeyPair::new_user();
        let cfg = format!(
            "authorization {{ users: [ {{nkey: {}}} ] }}",
            kp.public_key()
        );
        let seed = kp.seed().unwrap();
        let (code, text) = report_on(&cfg, &["--seed", &seed, "--connect"]);
        assert_eq!(code, 0, "{text}");
        assert!(text.contains("rule:    credentials accepted"), "{text}");
        let other = nkeys::KeyPair::new_user().seed().unwrap();
        let (code, text) = report_on(&cfg, &["--seed", &other, "--connect"]);
        assert_eq!(code, 1, "{text}");
        assert!(text.contains("unknown nkey"), "{text}");
    }

    #[test]
    fn connect_checks_credentials() {
        let (code, text) = report(&["--user", "alice", "--password", "secret", "--connect"]);
        assert_eq!(code, 0);
        assert_eq!(
            text,
            "ALLOWED\n  user:    alice\n  account: ORDERS\n  rule:    credentials accepted\n"
        );
        let (code, text) = report(&["--user", "alice", "--password", "nope", "--connect"]);
        assert_eq!(code, 1);
        assert!(
            text.contains("rule:    wrong password for user \"alice\""),
            "{text}"
        );
        let hash = "$2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG";
        let (code, text) = report(&["--user", "carol", "--password", hash, "--connect"]);
        assert_eq!(code, 1);
        assert!(text.contains("account: BILLING"), "{text}");
        assert!(
            text.contains("give the plain password, not the hash"),
            "{text}"
        );
        let (code, text) = report(&["--user", "Alice", "--password", "secret", "--connect"]);
        assert_eq!(code, 1);
        assert!(
            text.contains("did you mean \"alice\" in account ORDERS?"),
            "{text}"
        );
        let (code, text) = report(&["--connect"]);
        assert_eq!(code, 1);
        assert!(text.contains("hint: give credentials"), "{text}");
        // A wrong password also shows up when explaining a publish.
        let (code, text) = report(&["--user", "alice", "--password", "nope", "--pub", "orders.x"]);
        assert_eq!(code, 0);
        assert!(
            text.contains("hint: connecting with these credentials would fail: wrong password"),
            "{text}"
        );
    }

    #[test]
    fn account_names_differing_by_case() {
        let cfg = r#"
            accounts {
              ORDERS { exports: [ {stream: "orders.>"} ] }
              orders { exports: [ {stream: "legacy.>"} ] }
              SHOP { users: [ {user: s, password: s} ], imports: [ {stream: {account: orders, subject: "legacy.>"}} ] }
            }
        "#;
        let (_, text) = report_on(cfg, &["--user", "s", "--pub", "x"]);
        assert!(text.contains("hint: account SHOP: import of \"legacy.>\" names account \"orders\", and account \"ORDERS\" differs from it only by case"), "{text}");

        // A config that fails to load because of the case gets the hint too.
        let bad = r#"
            accounts {
              ORDERS { exports: [ {stream: "orders.>", accounts: [shop]} ] }
              SHOP { imports: [ {stream: {account: orders, subject: "orders.>"}} ] }
            }
        "#;
        assert!(config::parse_str(bad).is_err());
        let tree = config::parse_value_str(bad).unwrap();
        assert_eq!(
            undefined_account_case_hints(&tree.value),
            vec![
                "account ORDERS: \"shop\" is not an account, but \"SHOP\" is; account names are case-sensitive",
                "account SHOP: \"orders\" is not an account, but \"ORDERS\" is; account names are case-sensitive",
            ]
        );
    }

    #[test]
    fn argument_errors() {
        let err = |a: &[&str]| parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(matches!(err(&["--pub", "x"]), Err(ArgError::Usage(m)) if m.contains("-c FILE")));
        assert!(matches!(err(&["-c", "f"]), Err(ArgError::Usage(_))));
        assert!(
            matches!(err(&["-c", "f", "--pub", "a.*"]), Err(ArgError::Usage(m)) if m.contains("cannot be published"))
        );
        assert!(matches!(
            err(&["-c", "f", "--sub", "a..b"]),
            Err(ArgError::Usage(_))
        ));
        assert!(matches!(
            err(&["-c", "f", "--pub", "a", "--queue", "q"]),
            Err(ArgError::Usage(_))
        ));
        assert!(matches!(
            err(&["-c", "f", "--pub", "a", "--connect"]),
            Err(ArgError::Usage(_))
        ));
        assert!(matches!(
            err(&["-c", "f", "--user", "u", "--nkey", "k", "--connect"]),
            Err(ArgError::Usage(_))
        ));
        assert!(
            matches!(err(&["-c", "f", "--pub"]), Err(ArgError::Usage(m)) if m.contains("needs a value"))
        );
        assert!(matches!(
            err(&["-c", "f", "--bogus"]),
            Err(ArgError::Usage(_))
        ));
        assert_eq!(err(&["--help"]), Err(ArgError::Help));
        let q = err(&["--config=f", "--user=u", "--sub", "a.*", "--queue", "q"]).unwrap();
        assert_eq!(
            q.op,
            Op::Sub {
                subject: "a.*".into(),
                queue: Some("q".into())
            }
        );
        assert_eq!(q.user.as_deref(), Some("u"));
    }

    #[test]
    fn run_reports_config_errors_with_status_2() {
        let code = run(&[
            "-c".to_string(),
            "/nonexistent/natrix.conf".to_string(),
            "--connect".to_string(),
        ]);
        assert_eq!(code, ExitCode::from(2));
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("alice", "alice"), 0);
        assert_eq!(edit_distance("alice", "alcie"), 2);
        assert_eq!(edit_distance("bob", "bobby"), 2);
        assert_eq!(edit_distance("", "ab"), 2);
    }
}
