//! Authorization: the top-level `authorization` block, the users of that
//! block and of accounts, and their publish/subscribe permissions.
//!
//! Invariants: a `User` has exactly one of `username` and `nkey` (a valid
//! public user nkey), and an nkey user has no password; its `permissions`
//! are the effective ones (the block's `default_permissions` already
//! applied). Credentials are kept as written (plain text or bcrypt). An
//! empty allow list restricts nothing, except that `allow_responses` turns a
//! missing publish allow list into an empty one (replies only), as in the
//! reference. The block's single user, token and users array exclude one
//! another, and a username or nkey is defined once across the block and all
//! accounts (`Builder::check_auth_conflicts`, run once the tree is read).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use super::{
    duration_from_ns, seconds, Builder, Field, Node, ServerConfig, Spot, DEFAULT_AUTH_TIMEOUT,
    DEFAULT_RESPONSE_EXPIRES, DEFAULT_RESPONSE_MAX_MSGS, GLOBAL_ACCOUNT,
};
use crate::config::check::{is_valid_public_nkey, is_valid_subject, parse_go_duration, NkeyKind};
use crate::config::{ConfigError, Value};
/// The top-level `authorization` block.
#[derive(Clone, Debug, PartialEq)]
pub struct Authorization {
    pub user: Option<String>,
    /// As written: plain text or a bcrypt hash (`$2a$...`).
    pub password: Option<String>,
    /// As written: plain text or a bcrypt hash.
    pub token: Option<String>,
    /// Time a client has to send CONNECT: as configured, else the TLS
    /// timeout plus one second when TLS is on, else 2 seconds.
    pub timeout: Duration,
    /// Applied to `authorization.users` entries without their own.
    pub default_permissions: Option<Permissions>,
}

impl Default for Authorization {
    fn default() -> Self {
        Authorization {
            user: None,
            password: None,
            token: None,
            timeout: DEFAULT_AUTH_TIMEOUT,
            default_permissions: None,
        }
    }
}

/// A configured user. Exactly one of `username` and `nkey` is set.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub username: Option<String>,
    /// As written: plain text or a bcrypt hash (`$2a$...`).
    pub password: Option<String>,
    /// Public user nkey (`U...`).
    pub nkey: Option<String>,
    /// Effective permissions; `None` means everything is allowed.
    pub permissions: Option<Permissions>,
    /// Empty means every connection type is allowed.
    pub allowed_connection_types: BTreeSet<ConnectionType>,
    /// Account name; [`GLOBAL_ACCOUNT`] for `authorization.users`.
    pub account: String,
}

impl User {
    /// The username, or the nkey for nkey users.
    pub fn identity(&self) -> &str {
        self.username
            .as_deref()
            .or(self.nkey.as_deref())
            .unwrap_or_default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConnectionType {
    Standard,
    Websocket,
    Leafnode,
    LeafnodeWs,
    Mqtt,
    MqttWs,
}

impl ConnectionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionType::Standard => "STANDARD",
            ConnectionType::Websocket => "WEBSOCKET",
            ConnectionType::Leafnode => "LEAFNODE",
            ConnectionType::LeafnodeWs => "LEAFNODE_WS",
            ConnectionType::Mqtt => "MQTT",
            ConnectionType::MqttWs => "MQTT_WS",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "STANDARD" => ConnectionType::Standard,
            "WEBSOCKET" => ConnectionType::Websocket,
            "LEAFNODE" => ConnectionType::Leafnode,
            "LEAFNODE_WS" => ConnectionType::LeafnodeWs,
            "MQTT" => ConnectionType::Mqtt,
            "MQTT_WS" => ConnectionType::MqttWs,
            _ => return None,
        })
    }
}

impl fmt::Display for ConnectionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Publish/subscribe rules of a user.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Permissions {
    /// `None`: publishing is not restricted.
    pub publish: Option<SubjectPermission>,
    /// `None`: subscribing is not restricted.
    pub subscribe: Option<SubjectPermission>,
    /// Publishing to the reply subject of received requests. When set and
    /// no publish allow list was given, `publish.allow` is `Some(vec![])`:
    /// only replies may be published (the reference's rule).
    pub allow_responses: Option<ResponsePermission>,
}

/// Allow and deny lists. Entries are subjects (wildcards allowed); a
/// subscribe entry may be `"subject queue"` to allow only that queue group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubjectPermission {
    /// `None`: everything not denied is allowed. `Some(empty)`: nothing is.
    pub allow: Option<Vec<String>>,
    pub deny: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponsePermission {
    /// Responses allowed per request; `None` means unlimited.
    pub max_msgs: Option<u32>,
    /// How long after the request responses are allowed; `None` means forever.
    pub expires: Option<Duration>,
}

impl Default for ResponsePermission {
    fn default() -> Self {
        ResponsePermission {
            max_msgs: Some(DEFAULT_RESPONSE_MAX_MSGS),
            expires: Some(DEFAULT_RESPONSE_EXPIRES),
        }
    }
}

impl Builder {
    pub(super) fn authorization(
        &mut self,
        cfg: &mut ServerConfig,
        f: &Field<'_>,
    ) -> Result<(), ConfigError> {
        const KEYS: &[&str] = &[
            "user",
            "username",
            "pass",
            "password",
            "token",
            "timeout",
            "users",
            "default_permission",
            "default_permissions",
            "permissions",
        ];
        let n = &f.node;
        self.auth_spot = Some(Spot::key_of(f));
        let mut auth = Authorization::default();
        let mut users = Vec::new();
        self.auth_has_users = false;
        for field in n.entries()? {
            let v = &field.node;
            match field.name.as_str() {
                "user" | "username" => auth.user = Some(v.string()?),
                "pass" | "password" => auth.password = Some(v.string()?),
                "token" => auth.token = Some(v.string()?),
                "timeout" => self.auth_timeout = Some(seconds(v, "authorization timeout")?),
                "users" => {
                    self.auth_has_users = true;
                    users = parse_users(v)?;
                }
                "default_permission" | "default_permissions" | "permissions" => {
                    auth.default_permissions = Some(permissions(v)?)
                }
                _ => field.unknown(KEYS)?,
            }
        }
        let spot = Spot::key_of(f);
        if (auth.user.is_some() || auth.password.is_some()) && auth.token.is_some() {
            return Err(spot.err("cannot have both a user/password and a token"));
        }
        if self.auth_has_users && auth.user.is_some() {
            return Err(spot.err("cannot have both a single user/password and a users array"));
        }
        if self.auth_has_users && auth.token.is_some() {
            return Err(spot.err("cannot have both a token and a users array"));
        }
        // Users of a repeated `authorization` block (keys differing in case)
        // add to the earlier ones, as in the reference.
        for (mut user, spot) in users {
            if user.permissions.is_none() {
                user.permissions.clone_from(&auth.default_permissions);
            }
            user.account = GLOBAL_ACCOUNT.to_string();
            self.users.push((user, spot));
        }
        cfg.authorization = auth;
        Ok(())
    }

    pub(super) fn check_auth_conflicts(&self, cfg: &ServerConfig) -> Result<(), ConfigError> {
        if let Some(spot) = &self.account_users_spot {
            if cfg.authorization.user.is_some() {
                return Err(spot.err(
                    "cannot have both a single user/password in authorization and users in accounts",
                ));
            }
            if cfg.authorization.token.is_some() {
                return Err(
                    spot.err("cannot have both a token in authorization and users in accounts")
                );
            }
        }
        let mut seen: HashMap<&str, &(User, Spot)> = HashMap::new();
        for entry @ (user, here) in &self.users {
            let id = user.identity();
            if let Some((first, earlier)) = seen.get(id) {
                let what = if user.nkey.is_some() { "nkey" } else { "user" };
                return Err(here.err(format!(
                    "duplicate {what} {id:?}: already defined at {} ({})",
                    earlier.pos,
                    account_label(&first.account)
                )));
            }
            seen.insert(id, entry);
        }
        Ok(())
    }
}

fn account_label(account: &str) -> String {
    if account == GLOBAL_ACCOUNT {
        "in authorization".to_string()
    } else {
        format!("in account {account:?}")
    }
}

pub(super) fn parse_users(n: &Node<'_>) -> Result<Vec<(User, Spot)>, ConfigError> {
    const KEYS: &[&str] = &[
        "nkey",
        "user",
        "username",
        "pass",
        "password",
        "permission",
        "permissions",
        "authorization",
        "allowed_connection_types",
        "connection_types",
        "clients",
    ];
    if !matches!(n.value(), Value::Array(_)) {
        return Err(n.expected("an array of users"));
    }
    let mut out = Vec::new();
    for item in n.items()? {
        if !matches!(item.value(), Value::Map(_)) {
            return Err(item.expected("a user map such as {user: name, password: secret}"));
        }
        let mut user = User {
            username: None,
            password: None,
            nkey: None,
            permissions: None,
            allowed_connection_types: BTreeSet::new(),
            account: String::new(),
        };
        for field in item.entries()? {
            let v = &field.node;
            match field.name.as_str() {
                "nkey" => user.nkey = Some(v.string()?),
                "user" | "username" => user.username = Some(v.string()?),
                "pass" | "password" => user.password = Some(v.string()?),
                "permission" | "permissions" | "authorization" => {
                    user.permissions = Some(permissions(v)?)
                }
                "allowed_connection_types" | "connection_types" | "clients" => {
                    for t in v.strings()? {
                        let ct = ConnectionType::parse(&t).ok_or_else(|| {
                            v.err(format!(
                                "unknown connection type {t:?}: expected STANDARD, WEBSOCKET, \
                                 LEAFNODE, LEAFNODE_WS, MQTT or MQTT_WS"
                            ))
                        })?;
                        user.allowed_connection_types.insert(ct);
                    }
                }
                _ => field.unknown(KEYS)?,
            }
        }
        match (&user.nkey, &user.username) {
            (None, None) => return Err(item.err("user entry requires a user (or an nkey)")),
            (Some(nkey), _) => {
                if !is_valid_public_nkey(nkey, NkeyKind::User) {
                    return Err(
                        item.err(format!("{nkey:?} is not a valid public user nkey (U...)"))
                    );
                }
                if user.username.is_some() || user.password.is_some() {
                    return Err(item.err("nkey users do not take a user or password"));
                }
            }
            (None, Some(_)) => {}
        }
        out.push((user, Spot::of(&item)));
    }
    Ok(out)
}

pub(super) fn permissions(n: &Node<'_>) -> Result<Permissions, ConfigError> {
    const KEYS: &[&str] = &[
        "publish",
        "pub",
        "import",
        "subscribe",
        "sub",
        "export",
        "allow_responses",
        "publish_allow_responses",
    ];
    if !matches!(n.value(), Value::Map(_)) {
        return Err(n.expected("a permissions map {publish: ..., subscribe: ...}"));
    }
    let mut p = Permissions::default();
    for field in n.entries()? {
        let v = &field.node;
        match field.name.as_str() {
            "pub" | "publish" | "import" => p.publish = subject_permission(v)?,
            "sub" | "subscribe" | "export" => p.subscribe = subject_permission(v)?,
            "publish_allow_responses" | "allow_responses" => {
                p.allow_responses = match v.value() {
                    Value::Bool(true) => Some(ResponsePermission::default()),
                    Value::Bool(false) => None,
                    Value::Map(_) => Some(response_permission(v)?),
                    _ => return Err(v.expected("true, false or a map {max: N, expires: \"1m\"}")),
                }
            }
            _ => field.unknown(KEYS)?,
        }
    }
    // An empty allow list restricts nothing in the reference (`publish: []`
    // leaves publishing open), except that allow_responses below closes
    // publishing to everything but replies.
    for side in [&mut p.publish, &mut p.subscribe] {
        if let Some(sp) = side {
            if sp.allow.as_ref().is_some_and(Vec::is_empty) {
                sp.allow = None;
            }
            if sp.allow.is_none() && sp.deny.is_empty() {
                *side = None;
            }
        }
    }
    if p.allow_responses.is_some() {
        let publish = p.publish.get_or_insert_with(SubjectPermission::default);
        if publish.allow.is_none() {
            publish.allow = Some(Vec::new());
        }
    }
    Ok(p)
}

/// A subject, a list of subjects (both meaning allow), or `{allow, deny}`.
/// An empty map means no restriction, as in the reference.
fn subject_permission(n: &Node<'_>) -> Result<Option<SubjectPermission>, ConfigError> {
    match n.value() {
        Value::Map(entries) => {
            if entries.is_empty() {
                return Ok(None);
            }
            let mut sp = SubjectPermission::default();
            for field in n.entries()? {
                match field.name.as_str() {
                    "allow" => sp.allow = Some(perm_subjects(&field.node)?),
                    "deny" => sp.deny = perm_subjects(&field.node)?,
                    _ if field.entry.used_as_variable => {}
                    _ => {
                        return Err(field.key_err(format!(
                            "unknown field {:?} in subject permissions: only allow and deny are permitted",
                            field.entry.key
                        )))
                    }
                }
            }
            Ok(Some(sp))
        }
        Value::String(_) | Value::Array(_) => Ok(Some(SubjectPermission {
            allow: Some(perm_subjects(n)?),
            deny: Vec::new(),
        })),
        _ => {
            Err(n.expected("a subject, an array of subjects, or a map {allow: [...], deny: [...]}"))
        }
    }
}

fn perm_subjects(n: &Node<'_>) -> Result<Vec<String>, ConfigError> {
    let subjects = match n.value() {
        Value::String(s) => vec![(s.clone(), n.clone())],
        Value::Array(_) => n
            .items()?
            .into_iter()
            .map(|item| {
                let s = item
                    .str()
                    .map_err(|_| item.expected("a subject (a string)"))?
                    .to_string();
                Ok((s, item))
            })
            .collect::<Result<Vec<_>, ConfigError>>()?,
        _ => return Err(n.expected("a subject or an array of subjects")),
    };
    let mut out = Vec::with_capacity(subjects.len());
    for (s, node) in subjects {
        if !is_valid_subject(&s) {
            // A subscribe rule may name a queue group: "subject queue".
            let parts: Vec<&str> = s.split_whitespace().collect();
            if parts.len() != 2 || !is_valid_subject(parts[0]) {
                return Err(node.err(format!(
                    "{s:?} is not a valid subject (or \"subject queue\" pair)"
                )));
            }
        }
        out.push(s);
    }
    Ok(out)
}

fn response_permission(n: &Node<'_>) -> Result<ResponsePermission, ConfigError> {
    const KEYS: &[&str] = &[
        "max",
        "max_msgs",
        "max_messages",
        "max_responses",
        "expires",
        "expiration",
        "ttl",
    ];
    let mut rp = ResponsePermission::default();
    for field in n.entries()? {
        let v = &field.node;
        match field.name.as_str() {
            "max" | "max_msgs" | "max_messages" | "max_responses" => {
                let max = v.int()?;
                // Negative means unlimited; zero keeps the default.
                if max < 0 {
                    rp.max_msgs = None;
                } else if max > 0 {
                    rp.max_msgs = Some(v.int_as::<u32>("max responses")?);
                }
            }
            "expires" | "expiration" | "ttl" => {
                let text = v
                    .str()
                    .map_err(|_| v.expected("a duration string such as \"1m\""))?;
                let ns = parse_go_duration(text).map_err(|e| v.err(e))?;
                if ns < 0 {
                    rp.expires = None;
                } else if ns > 0 {
                    rp.expires = Some(duration_from_ns(ns));
                }
            }
            _ => field.unknown(KEYS)?,
        }
    }
    Ok(rp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::test_support::{allow, err, ok, secs};

    #[test]
    fn authorization_single_user_token_and_bcrypt() {
        let c = ok("authorization {\n  user: derek\n  password: T0pS3cr3t\n  timeout: 1\n}");
        let a = &c.authorization;
        assert_eq!(a.user.as_deref(), Some("derek"));
        assert_eq!(a.password.as_deref(), Some("T0pS3cr3t"));
        assert_eq!(a.timeout, secs(1));
        let c = ok(
            "authorization { token: $2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG }",
        );
        assert_eq!(
            c.authorization.token.as_deref(),
            Some("$2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG")
        );
        let c = ok("authorization { user: u, password: \"$2b$10$abc\", timeout: 0.5 }");
        assert_eq!(c.authorization.password.as_deref(), Some("$2b$10$abc"));
        assert_eq!(c.authorization.timeout, Duration::from_millis(500));
        assert_eq!(
            ok("authorization { timeout: \"3s\" }")
                .authorization
                .timeout,
            secs(3)
        );
        assert_eq!(
            err("authorization { user: a, token: b }"),
            "<string>:1:1: authorization: cannot have both a user/password and a token"
        );
        assert_eq!(
            err("authorization { user: a, users: [] }"),
            "<string>:1:1: authorization: cannot have both a single user/password and a users array"
        );
        assert_eq!(
            err("authorization { token: t, users: [] }"),
            "<string>:1:1: authorization: cannot have both a token and a users array"
        );
        assert_eq!(
            err("authorization { timeout: true }"),
            "<string>:1:26: authorization.timeout: expected authorization timeout in seconds (a number) or a duration string such as \"2s\", found a boolean"
        );
    }

    #[test]
    fn users_and_permissions() {
        let c = ok(r#"
            authorization {
              default_permissions = {
                publish: "SANDBOX.*"
                subscribe: ["PUBLIC.>", "_INBOX.>"]
              }
              ADMIN = { publish: ">", subscribe: ">" }
              REQUESTOR = {
                publish: { allow: ["req.a", "req.b"], deny: "req.b.secret" }
                subscribe: "_INBOX.>"
              }
              RESPONDER = {
                subscribe: ["req.a", "req.b workers"]
                allow_responses: true
              }
              users = [
                {user: admin, password: $2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG, permissions: $ADMIN}
                {user: client, password: c, permissions: $REQUESTOR}
                {user: service, password: s, permissions: $RESPONDER}
                {user: limited, password: l, permissions: { allow_responses: { max: 5, expires: "1m" } }}
                {user: other, password: o}
                {nkey: UBRYMDSRTC6AVJL6USKKS3FIOE466GMEU67PZDGOWYSYHWA7GSKO42VW, allowed_connection_types: ["STANDARD", "websocket"]}
              ]
            }
        "#);
        assert_eq!(c.users.len(), 6);
        assert!(c.users.iter().all(|u| u.account == GLOBAL_ACCOUNT));
        let admin = &c.users[0];
        assert_eq!(admin.username.as_deref(), Some("admin"));
        assert!(admin
            .password
            .as_deref()
            .is_some_and(|p| p.starts_with("$2a$11$")));
        let p = admin.permissions.as_ref().unwrap();
        assert_eq!(
            (p.publish.clone(), p.subscribe.clone()),
            (allow(&[">"]), allow(&[">"]))
        );

        let p = c.users[1].permissions.as_ref().unwrap();
        assert_eq!(
            p.publish,
            Some(SubjectPermission {
                allow: Some(vec!["req.a".into(), "req.b".into()]),
                deny: vec!["req.b.secret".into()],
            })
        );
        assert_eq!(p.subscribe, allow(&["_INBOX.>"]));

        // allow_responses without a publish allow list closes publishing
        // to everything but replies.
        let p = c.users[2].permissions.as_ref().unwrap();
        assert_eq!(p.subscribe, allow(&["req.a", "req.b workers"]));
        assert_eq!(p.allow_responses, Some(ResponsePermission::default()));
        assert_eq!(p.publish, allow(&[]));
        let p = c.users[3].permissions.as_ref().unwrap();
        assert_eq!(
            p.allow_responses,
            Some(ResponsePermission {
                max_msgs: Some(5),
                expires: Some(secs(60))
            })
        );

        // default_permissions apply to users without their own.
        let p = c.users[4].permissions.as_ref().unwrap();
        assert_eq!(p.publish, allow(&["SANDBOX.*"]));
        assert_eq!(p.subscribe, allow(&["PUBLIC.>", "_INBOX.>"]));

        let nk = &c.users[5];
        assert_eq!(nk.username, None);
        assert_eq!(
            nk.identity(),
            "UBRYMDSRTC6AVJL6USKKS3FIOE466GMEU67PZDGOWYSYHWA7GSKO42VW"
        );
        assert_eq!(
            nk.allowed_connection_types,
            [ConnectionType::Standard, ConnectionType::Websocket]
                .into_iter()
                .collect()
        );
        assert!(c.authorization.default_permissions.is_some());
    }

    #[test]
    fn permission_errors() {
        let user = |perm: &str| {
            format!("authorization {{ users: [ {{user: a, password: b, permissions: {perm}}} ] }}")
        };
        assert_eq!(
            err(&user("{ publish: 5 }")),
            "<string>:1:73: authorization.users[0].permissions.publish: expected a subject, an array of subjects, or a map {allow: [...], deny: [...]}, found an integer"
        );
        assert_eq!(
            err(&user("\"foo\"")),
            "<string>:1:62: authorization.users[0].permissions: expected a permissions map {publish: ..., subscribe: ...}, found a string"
        );
        assert_eq!(
            err(&user("{ publish: { allow: \"a\", dney: \"b\" } }")),
            "<string>:1:87: authorization.users[0].permissions.publish.dney: unknown field \"dney\" in subject permissions: only allow and deny are permitted"
        );
        assert_eq!(
            err(&user("{ subscribe: [\"a..b\"] }")),
            "<string>:1:76: authorization.users[0].permissions.subscribe[0]: \"a..b\" is not a valid subject (or \"subject queue\" pair)"
        );
        assert_eq!(
            err(&user("{ subscribe: [\"a\", 1] }")),
            "<string>:1:81: authorization.users[0].permissions.subscribe[1]: expected a subject (a string), found an integer"
        );
        assert_eq!(
            err(&user("{ allow_responses: 5 }")),
            "<string>:1:81: authorization.users[0].permissions.allow_responses: expected true, false or a map {max: N, expires: \"1m\"}, found an integer"
        );
        assert_eq!(
            err(&user("{ publsh: \"x\" }")),
            "<string>:1:64: authorization.users[0].permissions.publsh: unknown field \"publsh\" (did you mean \"publish\"?)"
        );
        assert!(err(&user("{ subscribe: \"a b c\" }")).contains("is not a valid subject"));
        // Unlimited responses.
        let c = ok(&user("{ allow_responses: { max: -1, ttl: \"-1s\" } }"));
        let p = c.users[0].permissions.as_ref().unwrap();
        assert_eq!(
            p.allow_responses,
            Some(ResponsePermission {
                max_msgs: None,
                expires: None
            })
        );
        // An empty allow/deny map means no restriction.
        let c = ok(&user("{ publish: {} }"));
        assert_eq!(c.users[0].permissions.as_ref().unwrap().publish, None);
    }

    #[test]
    fn user_entry_errors() {
        assert_eq!(
            err("authorization { users: [ {password: c} ] }"),
            "<string>:1:26: authorization.users[0]: user entry requires a user (or an nkey)"
        );
        assert_eq!(
            err("authorization { users: [ {nkey: UBADKEY} ] }"),
            "<string>:1:26: authorization.users[0]: \"UBADKEY\" is not a valid public user nkey (U...)"
        );
        assert!(err("authorization { users: [ {nkey: UBRYMDSRTC6AVJL6USKKS3FIOE466GMEU67PZDGOWYSYHWA7GSKO42VW, password: x} ] }")
            .ends_with("nkey users do not take a user or password"));
        assert_eq!(
            err("authorization { users: [ {user: a, allowed_connection_types: [\"bogus\"]} ] }"),
            "<string>:1:62: authorization.users[0].allowed_connection_types: unknown connection type \"bogus\": expected STANDARD, WEBSOCKET, LEAFNODE, LEAFNODE_WS, MQTT or MQTT_WS"
        );
        // The reference does not accept `account` in authorization users.
        assert!(
            err("authorization { users: [ {user: a, account: A} ] }").starts_with(
                "<string>:1:36: authorization.users[0].account: unknown field \"account\""
            )
        );
        assert_eq!(
            err("authorization { users: {user: a} }"),
            "<string>:1:24: authorization.users: expected an array of users, found a map"
        );
        assert_eq!(
            err("authorization { users: [ a ] }"),
            "<string>:1:26: authorization.users[0]: expected a user map such as {user: name, password: secret}, found a string"
        );
    }
}
