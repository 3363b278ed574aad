//! The typed server configuration and its construction from the tree.
//!
//! Keys are matched case-insensitively and accept the reference's aliases
//! (`max_conn` for `max_connections`, `pass` for `password`, ...), except
//! where keys are names (account names, `resolver_preload` keys). Map
//! entries are applied in file order, so a later key overrides an earlier
//! one. Defaults are those of nats-server 2.9.10 and are applied here, so a
//! `ServerConfig` is ready to use; a zero in a field the reference treats as
//! "use the default" is replaced by that default.
//!
//! Checks the reference makes at start-up (not only its `-t` syntax check)
//! are errors: auth conflicts, duplicate users, imports not authorized by an
//! export, `no_auth_user` naming nobody, `max_payload` above `max_pending`,
//! a grace period not shorter than the lame-duck duration, unreadable TLS
//! files. Unknown keys are errors at every level where the reference
//! reports them, except for entries referenced as `$variables`.
//!
//! The model is split by section: `server` (top-level options, limits,
//! logging, monitoring, and the checks and defaults applied once the whole
//! tree is read), `auth` (the `authorization` block, users, permissions),
//! `accounts` (accounts, limits, exports, imports), `operator` (trusted
//! operators and the account resolver), `tls`, `shards` (natrix-only) and
//! `refused` (subsystems natrix does not implement). This module holds what
//! they share: the defaults table, tree access (`Node`, `Field`), error
//! positions (`Spot`), the `Builder` that carries facts between sections,
//! and readers for scalar values (durations, seconds, ports, addresses).

mod accounts;
mod auth;
mod operator;
mod refused;
mod server;
mod shards;
mod tls;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::check::{index_path, join_key, parse_duration};
use super::{ConfigError, MapEntry, Pos, Spanned, Value};

pub use accounts::{
    Account, AccountLimits, Export, ExportKind, Import, ImportKind, ResponseType, ServiceLatency,
};
pub use auth::{
    Authorization, ConnectionType, Permissions, ResponsePermission, SubjectPermission, User,
};
pub use operator::{DirResolverKind, OperatorSource, Resolver, ResolverCache};
pub use server::ServerConfig;
pub use shards::ShardsConfig;
pub use tls::TlsConfig;

/// Name of the account users belong to when no `accounts` block claims them.
pub const GLOBAL_ACCOUNT: &str = "$G";
/// The default system account's name.
pub const SYSTEM_ACCOUNT: &str = "$SYS";

// Defaults of nats-server 2.9.10, shared by the sections.
const DEFAULT_PORT: i32 = 4222;
const DEFAULT_HOST: &str = "0.0.0.0";
const DEFAULT_MAX_CONNECTIONS: i32 = 64 * 1024;
const DEFAULT_MAX_PAYLOAD: i32 = 1024 * 1024;
const DEFAULT_MAX_PENDING: i64 = 64 * 1024 * 1024;
const DEFAULT_MAX_CONTROL_LINE: i32 = 4096;
const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(120);
const DEFAULT_PING_MAX: i32 = 2;
const DEFAULT_WRITE_DEADLINE: Duration = Duration::from_secs(10);
const DEFAULT_LAME_DUCK_DURATION: Duration = Duration::from_secs(120);
const DEFAULT_LAME_DUCK_GRACE_PERIOD: Duration = Duration::from_secs(10);
const MIN_LAME_DUCK_DURATION: Duration = Duration::from_secs(30);
const DEFAULT_TLS_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_RESPONSE_MAX_MSGS: u32 = 1;
const DEFAULT_RESPONSE_EXPIRES: Duration = Duration::from_secs(120);
const DEFAULT_LATENCY_SAMPLING: u8 = 100;
const DEFAULT_CONNECT_ERROR_REPORTS: i32 = 3600;
const DEFAULT_RECONNECT_ERROR_REPORTS: i32 = 1;

/// Builds the typed configuration from a parsed tree.
pub(crate) fn build(root: &Spanned<Value>) -> Result<ServerConfig, ConfigError> {
    let mut b = Builder::default();
    let mut cfg = ServerConfig::default();
    let root = Node::root(root);
    for field in root.entries()? {
        b.top_entry(&mut cfg, &field)?;
    }
    b.finish(&mut cfg)?;
    cfg.warnings = b.warnings;
    Ok(cfg)
}

// ---------------------------------------------------------------------------
// Tree access

/// A tree node together with its key path.
#[derive(Clone)]
struct Node<'t> {
    v: &'t Spanned<Value>,
    path: String,
}

/// A map entry seen through the model: lower-cased name plus node.
struct Field<'t> {
    entry: &'t MapEntry,
    name: String,
    node: Node<'t>,
}

impl<'t> Node<'t> {
    fn root(v: &'t Spanned<Value>) -> Self {
        Node {
            v,
            path: String::new(),
        }
    }

    fn pos(&self) -> &'t Pos {
        &self.v.pos
    }

    fn value(&self) -> &'t Value {
        &self.v.value
    }

    fn err(&self, msg: impl Into<String>) -> ConfigError {
        ConfigError::at(&self.v.pos, self.path.clone(), msg)
    }

    fn expected(&self, what: &str) -> ConfigError {
        self.err(format!("expected {what}, found {}", self.v.value.kind()))
    }

    fn str(&self) -> Result<&'t str, ConfigError> {
        match self.value() {
            Value::String(s) => Ok(s),
            _ => Err(self.expected("a string")),
        }
    }

    fn string(&self) -> Result<String, ConfigError> {
        self.str().map(str::to_string)
    }

    fn int(&self) -> Result<i64, ConfigError> {
        match self.value() {
            Value::Integer(n) => Ok(*n),
            _ => Err(self.expected("an integer")),
        }
    }

    fn bool(&self) -> Result<bool, ConfigError> {
        match self.value() {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.expected("a boolean (true/false, yes/no, on/off)")),
        }
    }

    /// An integer converted to `T`, with a range error naming `what`.
    fn int_as<T: TryFrom<i64>>(&self, what: &str) -> Result<T, ConfigError> {
        let n = self.int()?;
        T::try_from(n).map_err(|_| self.err(format!("{n} is out of range for {what}")))
    }

    fn entries(&self) -> Result<Vec<Field<'t>>, ConfigError> {
        match self.value() {
            Value::Map(entries) => Ok(entries
                .iter()
                .map(|entry| Field {
                    entry,
                    name: entry.key.to_ascii_lowercase(),
                    node: Node {
                        v: &entry.value,
                        path: join_key(&self.path, &entry.key),
                    },
                })
                .collect()),
            _ => Err(self.expected("a map")),
        }
    }

    fn items(&self) -> Result<Vec<Node<'t>>, ConfigError> {
        match self.value() {
            Value::Array(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, v)| Node {
                    v,
                    path: index_path(&self.path, i),
                })
                .collect()),
            _ => Err(self.expected("an array")),
        }
    }

    /// A string or an array of strings.
    fn strings(&self) -> Result<Vec<String>, ConfigError> {
        match self.value() {
            Value::String(s) => Ok(vec![s.clone()]),
            Value::Array(_) => self.items()?.iter().map(Node::string).collect(),
            _ => Err(self.expected("a string or an array of strings")),
        }
    }

    /// A string entry that must not be empty.
    fn nonempty(&self, what: &str) -> Result<String, ConfigError> {
        let s = self.string()?;
        if s.is_empty() {
            return Err(self.err(format!("expected {what}, found an empty string")));
        }
        Ok(s)
    }
}

impl Field<'_> {
    fn key_pos(&self) -> &Pos {
        &self.entry.key_pos
    }

    fn key_err(&self, msg: impl Into<String>) -> ConfigError {
        ConfigError::at(&self.entry.key_pos, self.node.path.clone(), msg)
    }

    /// Reports the field as unknown unless it is a variable definition.
    fn unknown(&self, known: &[&str]) -> Result<(), ConfigError> {
        if self.entry.used_as_variable {
            return Ok(());
        }
        let mut msg = format!("unknown field {:?}", self.entry.key);
        if let Some(s) = suggest(&self.name, known) {
            msg.push_str(&format!(" (did you mean {s:?}?)"));
        } else if known.len() <= 16 {
            msg.push_str(&format!("; expected one of: {}", known.join(", ")));
        }
        Err(self.key_err(msg))
    }
}

/// The known key closest to `name`, if it is plausibly a typo.
fn suggest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn warning(pos: &Pos, path: &str, msg: &str) -> String {
    if path.is_empty() {
        format!("{pos}: {msg}")
    } else {
        format!("{pos}: {path}: {msg}")
    }
}

fn located(pos: &Pos, path: &str, msg: impl Into<String>) -> ConfigError {
    ConfigError::at(pos, path, msg)
}

// ---------------------------------------------------------------------------
// Building

/// Where something was written, for errors found after parsing.
#[derive(Clone)]
struct Spot {
    pos: Pos,
    path: String,
}

impl Spot {
    fn of(node: &Node<'_>) -> Self {
        Spot {
            pos: node.pos().clone(),
            path: node.path.clone(),
        }
    }

    fn key_of(field: &Field<'_>) -> Self {
        Spot {
            pos: field.key_pos().clone(),
            path: field.node.path.clone(),
        }
    }

    fn err(&self, msg: impl Into<String>) -> ConfigError {
        located(&self.pos, &self.path, msg)
    }
}

/// Facts remembered while reading the tree, for checks that involve more
/// than one key.
#[derive(Default)]
struct Builder {
    warnings: Vec<String>,
    /// `authorization` entry, if any.
    auth_spot: Option<Spot>,
    /// `authorization.users` was present (even if empty).
    auth_has_users: bool,
    auth_timeout: Option<Duration>,
    /// Users with the position of their entry; become `cfg.users`.
    users: Vec<(User, Spot)>,
    /// Position of the first account `users` key that defines users.
    account_users_spot: Option<Spot>,
    account_spots: HashMap<String, Spot>,
    /// Per account index: position of each export's `accounts` list.
    export_spots: Vec<Vec<Spot>>,
    /// Per account index: position of each import.
    import_spots: Vec<Vec<Spot>>,
    spots: HashMap<&'static str, Spot>,
    store_dir: Option<Spot>,
    jetstream_store_dir: Option<Spot>,
    has_latency: Option<Spot>,
}

impl Builder {
    fn warn(&mut self, pos: &Pos, path: &str, msg: &str) {
        self.warnings.push(warning(pos, path, msg));
    }

    fn remember(&mut self, key: &'static str, field: &Field<'_>) {
        self.spots.insert(key, Spot::key_of(field));
    }

    /// Position of a remembered top-level key, or the file start.
    fn spot(&self, key: &str) -> Spot {
        self.spots.get(key).cloned().unwrap_or_else(|| Spot {
            pos: Pos {
                file: Arc::from(std::path::Path::new("<unknown>")),
                line: 0,
                col: 0,
            },
            path: key.to_string(),
        })
    }
}

// ---------------------------------------------------------------------------
// Scalar values shared by the sections

fn duration_from_ns(ns: i128) -> Duration {
    Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

/// A duration string such as `"2m"`, `"500ms"`, `"1h30m"`.
fn duration_str(n: &Node<'_>) -> Result<Duration, ConfigError> {
    let s = n
        .str()
        .map_err(|_| n.expected("a duration string such as \"2m\", \"500ms\" or \"1h30m\""))?;
    parse_duration(s).map_err(|e| n.err(e))
}

/// Seconds as an integer or float, or a duration string.
fn seconds(n: &Node<'_>, what: &str) -> Result<Duration, ConfigError> {
    let secs = match n.value() {
        Value::Integer(i) => *i as f64,
        Value::Float(f) => *f,
        Value::String(_) => return duration_str(n),
        _ => {
            return Err(n.expected(&format!(
                "{what} in seconds (a number) or a duration string such as \"2s\""
            )))
        }
    };
    Duration::try_from_secs_f64(secs)
        .map_err(|_| n.err(format!("{what} must be a non-negative number of seconds")))
}

fn port(n: &Node<'_>) -> Result<i32, ConfigError> {
    let p = n.int()?;
    if !(-1..=65535).contains(&p) {
        return Err(n.err(format!(
            "port {p} is out of range: expected 0-65535, or -1 for a random port"
        )));
    }
    Ok(p as i32)
}

/// `listen`-style values: a port number or `"host:port"`.
fn listen(n: &Node<'_>) -> Result<(Option<String>, i32), ConfigError> {
    match n.value() {
        Value::Integer(_) => Ok((None, port(n)?)),
        Value::String(s) => {
            let (host, p) = split_host_port(s).ok_or_else(|| {
                n.err(format!(
                    "could not parse address {s:?}: expected host:port (IPv6 as [addr]:port)"
                ))
            })?;
            let p: i32 = p
                .parse()
                .map_err(|_| n.err(format!("could not parse port {p:?} in {s:?}")))?;
            if !(-1..=65535).contains(&p) {
                return Err(n.err(format!("port {p} in {s:?} is out of range")));
            }
            Ok((Some(host.to_string()), p))
        }
        _ => Err(n.expected("a port or \"host:port\"")),
    }
}

/// Splits like Go's `net.SplitHostPort`.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return Some((host, port));
    }
    let (host, port) = s.rsplit_once(':')?;
    if host.contains(':') || host.contains('[') || host.contains(']') {
        return None;
    }
    Some((host, port))
}

/// Helpers shared by the section tests.
#[cfg(test)]
mod test_support {
    use std::time::Duration;

    use super::{ServerConfig, SubjectPermission};
    use crate::config::parse_str;

    pub(super) fn ok(text: &str) -> ServerConfig {
        match parse_str(text) {
            Ok(c) => c,
            Err(e) => panic!("unexpected error for {text:?}: {e}"),
        }
    }

    pub(super) fn err(text: &str) -> String {
        match parse_str(text) {
            Ok(_) => panic!("expected an error for {text:?}"),
            Err(e) => e.to_string(),
        }
    }

    pub(super) fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    pub(super) fn allow(list: &[&str]) -> Option<SubjectPermission> {
        Some(SubjectPermission {
            allow: Some(list.iter().map(|s| s.to_string()).collect()),
            deny: Vec::new(),
        })
    }
}
