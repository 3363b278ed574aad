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

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::check::{
    index_path, is_subset_match, is_valid_public_nkey, is_valid_subject, join_key, parse_duration,
    parse_go_duration, show_duration, NkeyKind,
};
use super::lex::{Scalar, Scanner};
use super::{ConfigError, MapEntry, Pos, Spanned, Value};

/// Name of the account users belong to when no `accounts` block claims them.
pub const GLOBAL_ACCOUNT: &str = "$G";

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

/// Everything a configuration file can say to natrix.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// Client listener address (`host`, `net` or the host of `listen`).
    pub host: String,
    /// Client listener port; -1 asks for a random free port.
    pub port: i32,
    pub server_name: Option<String>,
    pub client_advertise: Option<String>,

    pub max_connections: i32,
    pub max_payload: i32,
    pub max_pending: i64,
    pub max_control_line: i32,
    /// 0 means unlimited.
    pub max_subscriptions: i32,
    /// Maximum tokens in a subject; 0 means unlimited.
    pub max_sub_tokens: u8,
    /// 0 means unlimited.
    pub max_traced_msg_len: i32,
    pub ping_interval: Duration,
    pub ping_max: i32,
    pub write_deadline: Duration,
    pub lame_duck_duration: Duration,
    pub lame_duck_grace_period: Duration,
    pub no_header_support: bool,
    pub disable_sublist_cache: bool,

    pub debug: bool,
    pub trace: bool,
    /// Implies `trace`.
    pub trace_verbose: bool,
    pub logtime: bool,
    pub log_file: Option<PathBuf>,
    /// Rotate the log file at this many bytes; 0 means never.
    pub log_size_limit: i64,
    pub syslog: bool,
    pub remote_syslog: Option<String>,
    pub pid_file: Option<PathBuf>,
    pub ports_file_dir: Option<PathBuf>,
    /// 0 means no profiling listener.
    pub prof_port: i32,

    /// Monitoring listener address; defaults to `host`.
    pub http_host: String,
    /// 0 means no HTTP monitoring listener, -1 a random port.
    pub http_port: i32,
    /// 0 means no HTTPS monitoring listener, -1 a random port.
    pub https_port: i32,
    pub http_base_path: String,

    /// The `authorization` block (global account credentials and defaults).
    pub authorization: Authorization,
    /// Every configured user: those of `authorization.users` (account
    /// [`GLOBAL_ACCOUNT`]) and those of each account, with effective
    /// permissions (the block's `default_permissions` already applied).
    pub users: Vec<User>,
    pub accounts: Vec<Account>,
    pub no_auth_user: Option<String>,
    /// Account name (config mode) or account public key (operator mode).
    pub system_account: Option<String>,
    pub no_system_account: bool,

    pub tls: Option<TlsConfig>,
    pub allow_non_tls: bool,

    /// Trusted operator JWTs (operator mode when non-empty).
    pub operators: Vec<OperatorSource>,
    /// Trusted operator public keys.
    pub trusted_keys: Vec<String>,
    pub resolver: Option<Resolver>,
    pub resolver_tls: Option<TlsConfig>,
    /// Account public key and account JWT, in file order.
    pub resolver_preload: Vec<(String, String)>,
    pub resolver_pinned_accounts: Vec<String>,

    pub server_tags: Vec<String>,
    pub connect_error_reports: i32,
    pub reconnect_error_reports: i32,

    /// natrix's per-core tuning.
    pub shards: ShardsConfig,

    /// Things the reference would log as configuration warnings,
    /// formatted `file:line:col: key: message`.
    pub warnings: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: DEFAULT_HOST.to_string(),
            port: DEFAULT_PORT,
            server_name: None,
            client_advertise: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_pending: DEFAULT_MAX_PENDING,
            max_control_line: DEFAULT_MAX_CONTROL_LINE,
            max_subscriptions: 0,
            max_sub_tokens: 0,
            max_traced_msg_len: 0,
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_max: DEFAULT_PING_MAX,
            write_deadline: DEFAULT_WRITE_DEADLINE,
            lame_duck_duration: DEFAULT_LAME_DUCK_DURATION,
            lame_duck_grace_period: DEFAULT_LAME_DUCK_GRACE_PERIOD,
            no_header_support: false,
            disable_sublist_cache: false,
            debug: false,
            trace: false,
            trace_verbose: false,
            logtime: true,
            log_file: None,
            log_size_limit: 0,
            syslog: false,
            remote_syslog: None,
            pid_file: None,
            ports_file_dir: None,
            prof_port: 0,
            http_host: DEFAULT_HOST.to_string(),
            http_port: 0,
            https_port: 0,
            http_base_path: String::new(),
            authorization: Authorization::default(),
            users: Vec::new(),
            accounts: Vec::new(),
            no_auth_user: None,
            system_account: None,
            no_system_account: false,
            tls: None,
            allow_non_tls: false,
            operators: Vec::new(),
            trusted_keys: Vec::new(),
            resolver: None,
            resolver_tls: None,
            resolver_preload: Vec::new(),
            resolver_pinned_accounts: Vec::new(),
            server_tags: Vec::new(),
            connect_error_reports: DEFAULT_CONNECT_ERROR_REPORTS,
            reconnect_error_reports: DEFAULT_RECONNECT_ERROR_REPORTS,
            shards: ShardsConfig::default(),
            warnings: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// The users that belong to `account`.
    pub fn users_of<'a>(&'a self, account: &'a str) -> impl Iterator<Item = &'a User> + 'a {
        self.users.iter().filter(move |u| u.account == account)
    }

    /// The account definition named `name`.
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }
}

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

/// An account of the `accounts` block. Its users are in
/// [`ServerConfig::users`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Account {
    pub name: String,
    /// Public account nkey (`A...`).
    pub nkey: Option<String>,
    pub exports: Vec<Export>,
    pub imports: Vec<Import>,
    pub default_permissions: Option<Permissions>,
    pub limits: AccountLimits,
}

/// Per-account limits; -1 means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountLimits {
    pub max_connections: i32,
    pub max_subscriptions: i32,
    pub max_payload: i32,
    pub max_leafnodes: i32,
}

impl Default for AccountLimits {
    fn default() -> Self {
        AccountLimits {
            max_connections: -1,
            max_subscriptions: -1,
            max_payload: -1,
            max_leafnodes: -1,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Export {
    pub subject: String,
    pub kind: ExportKind,
    /// Accounts allowed to import; `None` means public.
    pub accounts: Option<Vec<String>>,
    /// When non-zero, an importer is authorized if the subject token at
    /// this 1-based position equals its account name.
    pub account_token_position: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExportKind {
    Stream,
    Service {
        response_type: ResponseType,
        /// Time after which a pending response is considered lost.
        response_threshold: Option<Duration>,
        latency: Option<ServiceLatency>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ResponseType {
    #[default]
    Singleton,
    Stream,
    Chunked,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceLatency {
    /// Subject latency reports are published on.
    pub subject: String,
    /// Percentage of requests sampled (1-100); 0 means only requests that
    /// carry tracing headers.
    pub sampling: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    /// The exporting account.
    pub account: String,
    /// The subject as exported by `account`.
    pub subject: String,
    pub kind: ImportKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportKind {
    Stream {
        /// Prepended (with a dot) to imported subjects.
        prefix: Option<String>,
        /// Local subject the stream is mapped to.
        to: Option<String>,
    },
    Service {
        /// Local subject requests are published on (defaults to `subject`).
        to: String,
        /// Share the requester's connection information with the exporter.
        share: bool,
    },
}

/// Where a trusted operator JWT comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperatorSource {
    /// A file holding the JWT (possibly decorated), as written in the
    /// configuration (relative paths are relative to the working directory,
    /// as in the reference).
    File(PathBuf),
    /// The JWT itself, written inline.
    Inline(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolver {
    Memory,
    /// Base URL; the account public key is appended.
    Url(String),
    Dir {
        kind: DirResolverKind,
        dir: PathBuf,
        allow_delete: bool,
        /// Sync interval (full resolver).
        interval: Option<Duration>,
        /// Maximum number of JWTs kept; 0 means the reference's default.
        limit: i64,
        /// Cache entry lifetime (cache resolver).
        ttl: Option<Duration>,
        /// Fetch timeout.
        timeout: Option<Duration>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirResolverKind {
    Full,
    Cache,
}

/// A `tls` block.
#[derive(Clone, Debug, PartialEq)]
pub struct TlsConfig {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    /// Require and verify client certificates (`verify_and_map` sets it too).
    pub verify: bool,
    /// Map the client certificate identity to a configured user.
    pub verify_and_map: bool,
    pub verify_cert_and_check_known_urls: bool,
    pub insecure: bool,
    pub timeout: Duration,
    /// Go cipher suite names; empty means the reference's defaults.
    pub cipher_suites: Vec<String>,
    /// Curve names (`X25519`, `CurveP256`, ...); empty means the defaults.
    pub curve_preferences: Vec<String>,
    /// `"1.2"` or `"1.3"`; `None` means TLS 1.2.
    pub min_version: Option<String>,
    /// Lower-case hex SHA-256 of certificates' SubjectPublicKeyInfo.
    pub pinned_certs: Vec<String>,
    /// TLS before INFO (nats-server 2.10 `handshake_first`).
    pub handshake_first: bool,
    /// With `handshake_first: "auto"` or a duration: how long to wait for
    /// a TLS ClientHello before falling back to INFO first.
    pub handshake_first_fallback: Option<Duration>,
    /// New TLS connections per second; 0 means unlimited.
    pub connection_rate_limit: i64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_file: None,
            key_file: None,
            ca_file: None,
            verify: false,
            verify_and_map: false,
            verify_cert_and_check_known_urls: false,
            insecure: false,
            timeout: DEFAULT_TLS_TIMEOUT,
            cipher_suites: Vec::new(),
            curve_preferences: Vec::new(),
            min_version: None,
            pinned_certs: Vec::new(),
            handshake_first: false,
            handshake_first_fallback: None,
            connection_rate_limit: 0,
        }
    }
}

/// natrix-only `shards { count, cpus, io_memory }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShardsConfig {
    /// Number of shards (one per core); `None` means one per available CPU
    /// (or one per entry of `cpus`).
    pub count: Option<usize>,
    /// CPUs to pin shards to, in shard order; empty means no pinning.
    pub cpus: Vec<usize>,
    /// Bytes of I/O buffer memory per shard; `None` means the default.
    pub io_memory: Option<u64>,
}

const CIPHER_SUITES: &[&str] = &[
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

const CURVES: &[&str] = &["X25519", "CurveP256", "CurveP384", "CurveP521"];

const TOP_KEYS: &[&str] = &[
    "listen",
    "client_advertise",
    "port",
    "server_name",
    "host",
    "net",
    "debug",
    "trace",
    "trace_verbose",
    "logtime",
    "mappings",
    "maps",
    "disable_sublist_cache",
    "no_sublist_cache",
    "accounts",
    "authorization",
    "http",
    "https",
    "http_port",
    "monitor_port",
    "https_port",
    "http_base_path",
    "cluster",
    "gateway",
    "leaf",
    "leafnodes",
    "store_dir",
    "storedir",
    "jetstream",
    "logfile",
    "log_file",
    "logfile_size_limit",
    "log_size_limit",
    "syslog",
    "remote_syslog",
    "pidfile",
    "pid_file",
    "ports_file_dir",
    "prof_port",
    "max_control_line",
    "max_payload",
    "max_pending",
    "max_connections",
    "max_conn",
    "max_traced_msg_len",
    "max_subscriptions",
    "max_subs",
    "max_sub_tokens",
    "max_subscription_tokens",
    "ping_interval",
    "ping_max",
    "tls",
    "ocsp",
    "allow_non_tls",
    "write_deadline",
    "lame_duck_duration",
    "lame_duck_grace_period",
    "operator",
    "operators",
    "roots",
    "root",
    "root_operators",
    "root_operator",
    "resolver",
    "account_resolver",
    "accounts_resolver",
    "resolver_tls",
    "resolver_preload",
    "resolver_pinned_accounts",
    "no_auth_user",
    "system_account",
    "system",
    "no_system_account",
    "no_system",
    "no_sys_acc",
    "no_header_support",
    "trusted",
    "trusted_keys",
    "connect_error_reports",
    "reconnect_error_reports",
    "websocket",
    "ws",
    "mqtt",
    "server_tags",
    "default_js_domain",
    "shards",
];

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

    fn top_entry(&mut self, cfg: &mut ServerConfig, f: &Field<'_>) -> Result<(), ConfigError> {
        let n = &f.node;
        match f.name.as_str() {
            "listen" => {
                let (host, port) = listen(n)?;
                if let Some(h) = host {
                    cfg.host = h;
                }
                cfg.port = port;
            }
            "client_advertise" => cfg.client_advertise = Some(n.string()?),
            "port" => cfg.port = port(n)?,
            "server_name" => cfg.server_name = Some(n.string()?),
            "host" | "net" => cfg.host = n.string()?,
            "debug" => cfg.debug = n.bool()?,
            "trace" => cfg.trace = n.bool()?,
            "trace_verbose" => {
                cfg.trace_verbose = n.bool()?;
                cfg.trace = cfg.trace_verbose;
            }
            "logtime" => cfg.logtime = n.bool()?,
            "mappings" | "maps" => refuse_mappings(n)?,
            "disable_sublist_cache" | "no_sublist_cache" => cfg.disable_sublist_cache = n.bool()?,
            "accounts" => self.accounts(cfg, f)?,
            "authorization" => self.authorization(cfg, f)?,
            "http" => {
                let (host, port) = listen(n)?;
                if let Some(h) = host {
                    self.remember("http_host", f);
                    cfg.http_host = h;
                }
                cfg.http_port = port;
            }
            "https" => {
                let (host, port) = listen(n)?;
                if let Some(h) = host {
                    self.remember("http_host", f);
                    cfg.http_host = h;
                }
                cfg.https_port = port;
            }
            "http_port" | "monitor_port" => cfg.http_port = port(n)?,
            "https_port" => cfg.https_port = port(n)?,
            "http_base_path" => cfg.http_base_path = n.string()?,
            "cluster" => cluster(n)?,
            "gateway" => gateway(n)?,
            "leaf" | "leafnodes" => leafnodes(n)?,
            "store_dir" | "storedir" => {
                n.string()?;
                self.store_dir = Some(Spot::key_of(f));
                self.warn(
                    f.key_pos(),
                    &n.path,
                    "store_dir is only used by JetStream, which natrix does not support; ignored",
                );
            }
            "jetstream" => {
                if let Some(spot) = jetstream(n)? {
                    self.jetstream_store_dir = Some(spot);
                }
            }
            "logfile" | "log_file" => cfg.log_file = Some(n.string()?.into()),
            "logfile_size_limit" | "log_size_limit" => cfg.log_size_limit = n.int()?,
            "syslog" => cfg.syslog = n.bool()?,
            "remote_syslog" => cfg.remote_syslog = Some(n.string()?),
            "pidfile" | "pid_file" => cfg.pid_file = Some(n.string()?.into()),
            "ports_file_dir" => cfg.ports_file_dir = Some(n.string()?.into()),
            "prof_port" => cfg.prof_port = port(n)?,
            "max_control_line" => {
                cfg.max_control_line = n.int_as::<i32>("max_control_line (at most 2147483647)")?
            }
            "max_payload" => {
                self.remember("max_payload", f);
                cfg.max_payload = n.int_as::<i32>("max_payload (at most 2147483647)")?;
            }
            "max_pending" => {
                self.remember("max_pending", f);
                cfg.max_pending = n.int()?;
            }
            "max_connections" | "max_conn" => {
                cfg.max_connections = n.int_as::<i32>("max_connections")?
            }
            "max_traced_msg_len" => {
                cfg.max_traced_msg_len = n.int_as::<i32>("max_traced_msg_len")?
            }
            "max_subscriptions" | "max_subs" => {
                cfg.max_subscriptions = n.int_as::<i32>("max_subscriptions")?
            }
            "max_sub_tokens" | "max_subscription_tokens" => {
                let v = n.int()?;
                if v <= 0 {
                    return Err(n.err(format!("{} must be positive, found {v}", f.entry.key)));
                }
                cfg.max_sub_tokens = u8::try_from(v).map_err(|_| {
                    n.err(format!(
                        "{} is too big: at most 255, found {v}",
                        f.entry.key
                    ))
                })?;
            }
            "ping_interval" => {
                cfg.ping_interval = self.duration_or_secs(f, "ping_interval")?;
            }
            "ping_max" => cfg.ping_max = n.int_as::<i32>("ping_max")?,
            "tls" => {
                self.remember("tls", f);
                cfg.tls = Some(tls(n, true)?);
            }
            "ocsp" => refuse_ocsp(n)?,
            "allow_non_tls" => cfg.allow_non_tls = n.bool()?,
            "write_deadline" => {
                cfg.write_deadline = self.duration_or_secs(f, "write_deadline")?;
            }
            "lame_duck_duration" => {
                let d = duration_str(n)?;
                if d < MIN_LAME_DUCK_DURATION {
                    return Err(n.err(format!(
                        "invalid lame_duck_duration of {}: the minimum is 30s",
                        show_duration(d)
                    )));
                }
                self.remember("lame_duck_duration", f);
                cfg.lame_duck_duration = d;
            }
            "lame_duck_grace_period" => {
                let text = n.str()?;
                let ns = parse_go_duration(text).map_err(|e| n.err(e))?;
                if ns < 0 {
                    return Err(n.err("invalid lame_duck_grace_period: it must not be negative"));
                }
                self.remember("lame_duck_grace_period", f);
                cfg.lame_duck_grace_period = duration_from_ns(ns);
            }
            "operator" | "operators" | "roots" | "root" | "root_operators" | "root_operator" => {
                self.remember("operator", f);
                cfg.operators = operators(n)?;
            }
            "resolver" | "account_resolver" | "accounts_resolver" => {
                self.remember("resolver", f);
                cfg.resolver = Some(self.resolver(n)?);
            }
            "resolver_tls" => cfg.resolver_tls = Some(tls(n, true)?),
            "resolver_preload" => cfg.resolver_preload = resolver_preload(n)?,
            "resolver_pinned_accounts" => cfg.resolver_pinned_accounts = n.strings()?,
            "no_auth_user" => {
                self.remember("no_auth_user", f);
                cfg.no_auth_user = Some(n.string()?);
            }
            "system_account" | "system" => {
                self.remember("system_account", f);
                cfg.system_account = Some(
                    n.str()
                        .map_err(|_| n.expected("the system account name (a string)"))?
                        .to_string(),
                );
            }
            "no_system_account" | "no_system" | "no_sys_acc" => cfg.no_system_account = n.bool()?,
            "no_header_support" => cfg.no_header_support = n.bool()?,
            "trusted" | "trusted_keys" => {
                self.remember("trusted_keys", f);
                let keys = n.strings()?;
                for k in &keys {
                    if !is_valid_public_nkey(k, NkeyKind::Operator) {
                        return Err(n.err(format!(
                            "trusted key {k:?} is not a valid public operator nkey (O...)"
                        )));
                    }
                }
                cfg.trusted_keys = keys;
            }
            "connect_error_reports" => {
                cfg.connect_error_reports = n.int_as::<i32>("connect_error_reports")?
            }
            "reconnect_error_reports" => {
                cfg.reconnect_error_reports = n.int_as::<i32>("reconnect_error_reports")?
            }
            "websocket" | "ws" => websocket(n)?,
            "mqtt" => mqtt(n)?,
            "server_tags" => cfg.server_tags = n.strings()?,
            "default_js_domain" => {
                for field in n.entries()? {
                    field.node.str()?;
                }
                self.warn(
                    f.key_pos(),
                    &n.path,
                    "default_js_domain is only used by JetStream, which natrix does not support; ignored",
                );
            }
            "shards" => cfg.shards = shards(n)?,
            _ => f.unknown(TOP_KEYS)?,
        }
        Ok(())
    }

    /// `ping_interval`/`write_deadline`: a duration string, or (deprecated,
    /// with the reference's warning) an integer number of seconds.
    fn duration_or_secs(&mut self, f: &Field<'_>, name: &str) -> Result<Duration, ConfigError> {
        let n = &f.node;
        match n.value() {
            Value::String(_) => duration_str(n),
            Value::Integer(secs) => {
                let secs = u64::try_from(*secs)
                    .map_err(|_| n.err(format!("{name} must not be negative")))?;
                self.warn(
                    f.key_pos(),
                    &n.path,
                    &format!(
                        "invalid use of field {name:?}: {name} should be converted to a duration"
                    ),
                );
                Ok(Duration::from_secs(secs))
            }
            _ => Err(n.expected("a duration string such as \"2m\" or \"30s\"")),
        }
    }

    fn authorization(&mut self, cfg: &mut ServerConfig, f: &Field<'_>) -> Result<(), ConfigError> {
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

    fn accounts(&mut self, cfg: &mut ServerConfig, f: &Field<'_>) -> Result<(), ConfigError> {
        const KEYS: &[&str] = &[
            "nkey",
            "imports",
            "exports",
            "jetstream",
            "users",
            "default_permissions",
            "mappings",
            "maps",
            "limits",
        ];
        let n = &f.node;
        self.spots.insert("accounts", Spot::key_of(f));
        // A repeated `accounts` block (keys differing in case) adds to the
        // earlier one, as in the reference.
        let mut accounts = std::mem::take(&mut cfg.accounts);
        match n.value() {
            Value::Array(_) => {
                for item in n.items()? {
                    let name = item.nonempty("an account name")?;
                    if name == GLOBAL_ACCOUNT {
                        return Err(item.err(format!("{name:?} is a reserved account name")));
                    }
                    if accounts.iter().any(|a| a.name == name) {
                        return Err(item.err(format!("duplicate account {name:?}")));
                    }
                    self.account_spots.insert(name.clone(), Spot::of(&item));
                    self.export_spots.push(Vec::new());
                    self.import_spots.push(Vec::new());
                    accounts.push(Account {
                        name,
                        ..Account::default()
                    });
                }
            }
            Value::Map(_) => {
                for af in n.entries()? {
                    if af.entry.used_as_variable {
                        continue;
                    }
                    let name = af.entry.key.clone();
                    let an = &af.node;
                    if !matches!(an.value(), Value::Map(_)) {
                        return Err(an.expected(&format!("a map defining account {name:?}")));
                    }
                    if name == GLOBAL_ACCOUNT {
                        return Err(af.key_err(format!("{name:?} is a reserved account name")));
                    }
                    if accounts.iter().any(|a| a.name == name) {
                        return Err(af.key_err(format!("duplicate account {name:?}")));
                    }
                    let mut acc = Account {
                        name: name.clone(),
                        ..Account::default()
                    };
                    let mut users = Vec::new();
                    let mut users_spot = None;
                    let mut export_spots = Vec::new();
                    let mut import_spots = Vec::new();
                    for field in an.entries()? {
                        let v = &field.node;
                        match field.name.as_str() {
                            "nkey" => {
                                let key = v.string()?;
                                if !is_valid_public_nkey(&key, NkeyKind::Account) {
                                    return Err(v.err(format!(
                                        "{key:?} is not a valid public account nkey (A...)"
                                    )));
                                }
                                acc.nkey = Some(key);
                            }
                            "imports" => {
                                let (imports, spots) = parse_imports(v)?;
                                acc.imports = imports;
                                import_spots = spots;
                            }
                            "exports" => {
                                let (exports, spots, latency) = parse_exports(v)?;
                                acc.exports = exports;
                                export_spots = spots;
                                if latency.is_some() {
                                    self.has_latency = latency;
                                }
                            }
                            "jetstream" => account_jetstream(v, &name)?,
                            "users" => {
                                users_spot = Some(Spot::key_of(&field));
                                users = parse_users(v)?;
                            }
                            "default_permissions" => {
                                acc.default_permissions = Some(permissions(v)?)
                            }
                            "mappings" | "maps" => refuse_mappings(v)?,
                            "limits" => acc.limits = account_limits(v)?,
                            _ => field.unknown(KEYS)?,
                        }
                    }
                    if !users.is_empty() && self.account_users_spot.is_none() {
                        self.account_users_spot = users_spot;
                    }
                    for (mut user, spot) in users {
                        if user.permissions.is_none() {
                            user.permissions.clone_from(&acc.default_permissions);
                        }
                        user.account = name.clone();
                        self.users.push((user, spot));
                    }
                    self.account_spots.insert(name, Spot::key_of(&af));
                    self.export_spots.push(export_spots);
                    self.import_spots.push(import_spots);
                    accounts.push(acc);
                }
            }
            _ => return Err(n.expected("a map of accounts or an array of account names")),
        }
        cfg.accounts = accounts;
        Ok(())
    }

    fn resolver(&mut self, n: &Node<'_>) -> Result<Resolver, ConfigError> {
        const EXPECTED: &str =
            "expected MEMORY, URL(\"http://...\") or a map with dir and type (full or cache)";
        match n.value() {
            Value::String(s) => {
                let t = s.trim();
                if t.eq_ignore_ascii_case("mem") || t.eq_ignore_ascii_case("memory") {
                    return Ok(Resolver::Memory);
                }
                let inner = t
                    .get(..4)
                    .filter(|p| p.eq_ignore_ascii_case("url("))
                    .and_then(|_| t[4..].strip_suffix(')'))
                    .map(|u| u.trim().trim_matches('"').trim());
                match inner {
                    Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                        Ok(Resolver::Url(url.to_string()))
                    }
                    Some(url) => Err(n.err(format!(
                        "resolver URL {url:?} must start with http:// or https://"
                    ))),
                    None => Err(n.err(format!("invalid resolver {s:?}: {EXPECTED}"))),
                }
            }
            Value::Map(_) => {
                const KEYS: &[&str] = &[
                    "dir",
                    "type",
                    "allow_delete",
                    "limit",
                    "ttl",
                    "interval",
                    "timeout",
                ];
                let (mut dir, mut kind) = (None, None);
                let (mut allow_delete, mut limit) = (false, 0);
                let (mut ttl, mut interval, mut timeout) = (None, None, None);
                let mut kind_node = None;
                for field in n.entries()? {
                    let v = &field.node;
                    // The reference looks these keys up case-sensitively and
                    // ignores anything else.
                    match field.entry.key.as_str() {
                        "dir" => dir = Some(v.nonempty("a directory")?),
                        "type" => {
                            kind = Some(match v.str()?.to_ascii_lowercase().as_str() {
                                "full" => DirResolverKind::Full,
                                "cache" => DirResolverKind::Cache,
                                other => {
                                    return Err(v.err(format!(
                                        "unknown resolver type {other:?}: expected full or cache"
                                    )))
                                }
                            });
                            kind_node = Some(Spot::of(v));
                        }
                        "allow_delete" => allow_delete = v.bool()?,
                        "limit" => limit = v.int()?,
                        "ttl" => ttl = Some(duration_str(v)?),
                        "interval" => interval = Some(duration_str(v)?),
                        "timeout" => timeout = Some(duration_str(v)?),
                        _ if field.entry.used_as_variable => {}
                        _ => {
                            let hint = suggest(&field.entry.key, KEYS)
                                .map(|s| format!(" (did you mean {s:?}?)"))
                                .unwrap_or_default();
                            self.warn(
                                field.key_pos(),
                                &v.path,
                                &format!(
                                    "unknown resolver field {:?} ignored{hint}",
                                    field.entry.key
                                ),
                            );
                        }
                    }
                }
                let Some(dir) = dir else {
                    return Err(n.err("resolver needs a dir pointing to a directory"));
                };
                let Some(kind) = kind else {
                    return Err(n.err(format!("resolver needs a type: {EXPECTED}")));
                };
                let kind_spot = kind_node.unwrap_or_else(|| Spot::of(n));
                match kind {
                    DirResolverKind::Cache if interval.is_some() => {
                        return Err(kind_spot.err("a cache resolver does not accept interval"))
                    }
                    DirResolverKind::Cache if allow_delete => {
                        return Err(kind_spot.err("a cache resolver does not accept allow_delete"))
                    }
                    DirResolverKind::Full if ttl.is_some() => {
                        return Err(kind_spot.err("a full resolver does not accept ttl"))
                    }
                    _ => {}
                }
                Ok(Resolver::Dir {
                    kind,
                    dir: dir.into(),
                    allow_delete,
                    interval,
                    limit,
                    ttl,
                    timeout,
                })
            }
            _ => Err(n.err(format!("invalid resolver: {EXPECTED}"))),
        }
    }

    /// Checks that involve several keys, then derived defaults.
    fn finish(&mut self, cfg: &mut ServerConfig) -> Result<(), ConfigError> {
        self.check_auth_conflicts(cfg)?;
        cfg.users = std::mem::take(&mut self.users)
            .into_iter()
            .map(|(u, _)| u)
            .collect();
        self.check_exports_imports(cfg)?;
        self.check_operator_mode(cfg)?;

        if let Some(name) = &cfg.no_auth_user {
            let spot = self.spot("no_auth_user");
            if !cfg.operators.is_empty() {
                return Err(spot.err("no_auth_user is not compatible with operator mode"));
            }
            if !cfg
                .users
                .iter()
                .any(|u| u.username.as_deref() == Some(name))
            {
                return Err(if cfg.users.iter().all(|u| u.username.is_none()) {
                    spot.err(format!(
                        "no_auth_user {name:?} is set, but no users are defined"
                    ))
                } else {
                    spot.err(format!(
                        "no_auth_user {name:?} is not a user of the authorization block or of any account"
                    ))
                });
            }
        }

        if let Some(sys) = &cfg.system_account {
            if cfg.operators.is_empty() && !cfg.accounts.iter().any(|a| &a.name == sys) {
                return Err(self.spot("system_account").err(format!(
                    "system account {sys:?} is not defined in the accounts block"
                )));
            }
        }
        if let (Some(spot), true) = (&self.has_latency, cfg.no_system_account) {
            return Err(spot.err(
                "service latency tracking needs the system account, but no_system_account is set",
            ));
        }

        if let (Some(_), Some(js)) = (&self.store_dir, &self.jetstream_store_dir) {
            return Err(js.err("duplicate store_dir: it is set both at top level and in jetstream"));
        }

        // Zero means "default" for these, as in the reference.
        if cfg.port == 0 {
            cfg.port = DEFAULT_PORT;
        }
        if cfg.max_connections == 0 {
            cfg.max_connections = DEFAULT_MAX_CONNECTIONS;
        }
        if cfg.max_payload == 0 {
            cfg.max_payload = DEFAULT_MAX_PAYLOAD;
        }
        if cfg.max_pending == 0 {
            cfg.max_pending = DEFAULT_MAX_PENDING;
        }
        if cfg.max_control_line == 0 {
            cfg.max_control_line = DEFAULT_MAX_CONTROL_LINE;
        }
        if cfg.ping_interval.is_zero() {
            cfg.ping_interval = DEFAULT_PING_INTERVAL;
        }
        if cfg.ping_max == 0 {
            cfg.ping_max = DEFAULT_PING_MAX;
        }
        if cfg.write_deadline.is_zero() {
            cfg.write_deadline = DEFAULT_WRITE_DEADLINE;
        }
        if cfg.lame_duck_grace_period.is_zero() {
            cfg.lame_duck_grace_period = DEFAULT_LAME_DUCK_GRACE_PERIOD;
        }
        if cfg.connect_error_reports == 0 {
            cfg.connect_error_reports = DEFAULT_CONNECT_ERROR_REPORTS;
        }
        if cfg.reconnect_error_reports == 0 {
            cfg.reconnect_error_reports = DEFAULT_RECONNECT_ERROR_REPORTS;
        }
        if !self.spots.contains_key("http_host") {
            cfg.http_host.clone_from(&cfg.host);
        }
        cfg.authorization.timeout = match (self.auth_timeout, &cfg.tls) {
            (Some(t), _) if !t.is_zero() => t,
            (_, Some(tls)) => tls.timeout.saturating_add(Duration::from_secs(1)),
            _ => DEFAULT_AUTH_TIMEOUT,
        };

        if i64::from(cfg.max_payload) > cfg.max_pending {
            let spot = self
                .spots
                .get("max_payload")
                .or_else(|| self.spots.get("max_pending"))
                .cloned()
                .unwrap_or_else(|| self.spot("max_payload"));
            return Err(spot.err(format!(
                "max_payload ({}) cannot be higher than max_pending ({})",
                cfg.max_payload, cfg.max_pending
            )));
        }
        if cfg.lame_duck_grace_period >= cfg.lame_duck_duration {
            let spot = self
                .spots
                .get("lame_duck_grace_period")
                .or_else(|| self.spots.get("lame_duck_duration"))
                .cloned()
                .unwrap_or_else(|| self.spot("lame_duck_grace_period"));
            return Err(spot.err(format!(
                "lame_duck_grace_period ({}) must be shorter than lame_duck_duration ({})",
                show_duration(cfg.lame_duck_grace_period),
                show_duration(cfg.lame_duck_duration)
            )));
        }
        Ok(())
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

    fn check_auth_conflicts(&self, cfg: &ServerConfig) -> Result<(), ConfigError> {
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

    fn check_exports_imports(&self, cfg: &ServerConfig) -> Result<(), ConfigError> {
        let names: BTreeSet<&str> = cfg.accounts.iter().map(|a| a.name.as_str()).collect();
        for (ai, acc) in cfg.accounts.iter().enumerate() {
            for (ei, export) in acc.exports.iter().enumerate() {
                for other in export.accounts.iter().flatten() {
                    if !names.contains(other.as_str()) {
                        let kind = match export.kind {
                            ExportKind::Stream => "stream",
                            ExportKind::Service { .. } => "service",
                        };
                        let spot = self.export_spot(ai, ei, acc);
                        return Err(spot.err(format!(
                            "account {other:?} is not defined (named by the {kind} export {:?})",
                            export.subject
                        )));
                    }
                }
            }
        }
        for (ai, acc) in cfg.accounts.iter().enumerate() {
            for (ii, import) in acc.imports.iter().enumerate() {
                let spot = self
                    .import_spots
                    .get(ai)
                    .and_then(|s| s.get(ii))
                    .cloned()
                    .unwrap_or_else(|| self.spot("accounts"));
                let (kind, is_stream) = match import.kind {
                    ImportKind::Stream { .. } => ("stream", true),
                    ImportKind::Service { .. } => ("service", false),
                };
                let Some(exporter) = cfg.account(&import.account) else {
                    return Err(spot.err(format!(
                        "account {:?} is not defined (named by this {kind} import)",
                        import.account
                    )));
                };
                let tokens: Vec<&str> = import.subject.split('.').collect();
                let matching: Vec<&Export> = exporter
                    .exports
                    .iter()
                    .filter(|e| matches!(e.kind, ExportKind::Stream) == is_stream)
                    .filter(|e| {
                        e.subject == import.subject || is_subset_match(&import.subject, &e.subject)
                    })
                    .collect();
                if matching.is_empty() {
                    return Err(spot.err(format!(
                        "{kind} import not authorized: account {:?} has no {kind} export covering {:?}",
                        import.account, import.subject
                    )));
                }
                let authorized =
                    matching
                        .iter()
                        .any(|e| match (&e.accounts, e.account_token_position) {
                            (_, pos) if pos > 0 => usize::try_from(pos)
                                .ok()
                                .and_then(|p| tokens.get(p - 1))
                                .is_some_and(|t| *t == acc.name),
                            (None, _) => true,
                            (Some(list), _) => list.iter().any(|a| a == &acc.name),
                        });
                if !authorized {
                    return Err(spot.err(format!(
                        "{kind} import not authorized: account {:?} exports {:?} but not to account {:?}",
                        import.account, import.subject, acc.name
                    )));
                }
            }
        }
        Ok(())
    }

    fn export_spot(&self, ai: usize, ei: usize, acc: &Account) -> Spot {
        self.export_spots
            .get(ai)
            .and_then(|s| s.get(ei))
            .cloned()
            .or_else(|| self.account_spots.get(&acc.name).cloned())
            .unwrap_or_else(|| self.spot("accounts"))
    }

    fn check_operator_mode(&self, cfg: &ServerConfig) -> Result<(), ConfigError> {
        if cfg.operators.is_empty() {
            return Ok(());
        }
        let spot = self.spot("operator");
        if !cfg.accounts.is_empty() {
            return Err(self.spot("accounts").err(
                "accounts cannot be configured directly in operator mode (they come from JWTs)",
            ));
        }
        if !cfg.users.is_empty() {
            return Err(self.auth_spot.clone().unwrap_or(spot).err(
                "users cannot be configured directly in operator mode (they come from JWTs)",
            ));
        }
        if !cfg.trusted_keys.is_empty() {
            return Err(self
                .spot("trusted_keys")
                .err("trusted_keys conflicts with operator: configure one or the other"));
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

fn parse_users(n: &Node<'_>) -> Result<Vec<(User, Spot)>, ConfigError> {
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

fn permissions(n: &Node<'_>) -> Result<Permissions, ConfigError> {
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

fn account_limits(n: &Node<'_>) -> Result<AccountLimits, ConfigError> {
    const KEYS: &[&str] = &[
        "max_connections",
        "max_conn",
        "max_subscriptions",
        "max_subs",
        "max_payload",
        "max_pay",
        "max_leafnodes",
        "max_leafs",
    ];
    let mut l = AccountLimits::default();
    for field in n.entries()? {
        let v = &field.node;
        match field.name.as_str() {
            "max_connections" | "max_conn" => l.max_connections = v.int_as("max_connections")?,
            "max_subscriptions" | "max_subs" => {
                l.max_subscriptions = v.int_as("max_subscriptions")?
            }
            "max_payload" | "max_pay" => l.max_payload = v.int_as("max_payload")?,
            "max_leafnodes" | "max_leafs" => l.max_leafnodes = v.int_as("max_leafnodes")?,
            _ => field.unknown(KEYS)?,
        }
    }
    Ok(l)
}

/// Exports, the position of each one's `accounts` list, and the position
/// of a latency directive if any export has one.
type ParsedExports = (Vec<Export>, Vec<Spot>, Option<Spot>);

fn parse_exports(n: &Node<'_>) -> Result<ParsedExports, ConfigError> {
    const KEYS: &[&str] = &[
        "stream",
        "service",
        "response",
        "response_type",
        "threshold",
        "response_threshold",
        "response_max_time",
        "response_time",
        "accounts",
        "latency",
        "account_token_position",
    ];
    if !matches!(n.value(), Value::Array(_)) {
        return Err(n.expected("an array of exports"));
    }
    let mut exports = Vec::new();
    let mut spots = Vec::new();
    let mut latency_spot = None;
    for item in n.items()? {
        if !matches!(item.value(), Value::Map(_)) {
            return Err(item.expected("an export map such as {stream: \"foo.>\"}"));
        }
        let mut stream: Option<(String, Spot)> = None;
        let mut service: Option<(String, Spot)> = None;
        let mut response_type: Option<(ResponseType, Spot)> = None;
        let mut threshold: Option<(Duration, Spot)> = None;
        let mut latency: Option<(ServiceLatency, Spot)> = None;
        let mut accounts = None;
        let mut accounts_spot = Spot::of(&item);
        let mut token_pos = 0u32;
        for field in item.entries()? {
            let v = &field.node;
            match field.name.as_str() {
                "stream" => {
                    let s = v
                        .str()
                        .map_err(|_| v.expected("the exported stream subject (a string)"))?;
                    stream = Some((s.to_string(), Spot::of(v)));
                }
                "service" => {
                    let s = v
                        .str()
                        .map_err(|_| v.expected("the exported service subject (a string)"))?;
                    service = Some((s.to_string(), Spot::of(v)));
                }
                "response" | "response_type" => {
                    if response_type.is_some() {
                        return Err(v.err("duplicate response type"));
                    }
                    let s = v.str()?;
                    let rt = match s.to_ascii_lowercase().as_str() {
                        "single" | "singleton" => ResponseType::Singleton,
                        "stream" => ResponseType::Stream,
                        "chunk" | "chunked" => ResponseType::Chunked,
                        _ => {
                            return Err(v.err(format!(
                                "unknown response type {s:?}: expected singleton, stream or chunked"
                            )))
                        }
                    };
                    response_type = Some((rt, Spot::of(v)));
                }
                "threshold" | "response_threshold" | "response_max_time" | "response_time" => {
                    if threshold.is_some() {
                        return Err(v.err("duplicate response threshold"));
                    }
                    threshold = Some((duration_str(v)?, Spot::of(v)));
                }
                "accounts" => {
                    let list: Vec<String> = v
                        .items()?
                        .iter()
                        .map(|a| a.nonempty("an account name"))
                        .collect::<Result<_, _>>()?;
                    accounts_spot = Spot::of(v);
                    // An empty list is public, as in the reference.
                    accounts = (!list.is_empty()).then_some(list);
                }
                "latency" => latency = Some((service_latency(v)?, Spot::of(v))),
                "account_token_position" => token_pos = v.int_as("account_token_position")?,
                _ => field.unknown(KEYS)?,
            }
        }
        let (subject, subject_spot, kind) = match (stream, service) {
            (Some(_), Some((s, spot))) => {
                return Err(spot.err(format!(
                    "export {s:?} cannot be both a stream and a service"
                )))
            }
            (Some((s, spot)), None) => {
                if let Some((_, rt)) = response_type {
                    return Err(rt.err("response type is only valid on a service export"));
                }
                if let Some((_, t)) = threshold {
                    return Err(t.err("response threshold is only valid on a service export"));
                }
                if let Some((_, l)) = latency {
                    return Err(l.err("latency is only valid on a service export"));
                }
                (s, spot, ExportKind::Stream)
            }
            (None, Some((s, spot))) => {
                if let Some((_, l)) = &latency {
                    latency_spot = Some(l.clone());
                }
                (
                    s,
                    spot,
                    ExportKind::Service {
                        response_type: response_type.map(|(rt, _)| rt).unwrap_or_default(),
                        response_threshold: threshold.map(|(t, _)| t),
                        latency: latency.map(|(l, _)| l),
                    },
                )
            }
            (None, None) => {
                return Err(item.err("export entry needs a stream or a service subject"))
            }
        };
        if !is_valid_subject(&subject) {
            return Err(subject_spot.err(format!("{subject:?} is not a valid subject")));
        }
        exports.push(Export {
            subject,
            kind,
            accounts,
            account_token_position: token_pos,
        });
        spots.push(accounts_spot);
    }
    Ok((exports, spots, latency_spot))
}

fn service_latency(n: &Node<'_>) -> Result<ServiceLatency, ConfigError> {
    match n.value() {
        Value::String(s) => Ok(ServiceLatency {
            subject: s.clone(),
            sampling: DEFAULT_LATENCY_SAMPLING,
        }),
        Value::Map(_) => {
            let mut sampling = DEFAULT_LATENCY_SAMPLING;
            let mut subject = None;
            for field in n.entries()? {
                let v = &field.node;
                match field.name.as_str() {
                    "sampling" => {
                        let pct = match v.value() {
                            Value::Integer(i) => *i,
                            Value::String(s) if s.trim().eq_ignore_ascii_case("headers") => 0,
                            Value::String(s) => s.trim_end_matches('%').parse().map_err(|_| {
                                v.err(format!("invalid latency sampling {s:?}: expected a percentage such as \"50%\" or \"headers\""))
                            })?,
                            _ => return Err(v.expected("a percentage or \"headers\"")),
                        };
                        let header_only = matches!(v.value(), Value::String(_)) && pct == 0;
                        if !header_only && !(1..=100).contains(&pct) {
                            return Err(v.err(format!(
                                "latency sampling {pct} is out of range: expected 1-100"
                            )));
                        }
                        sampling = pct as u8;
                    }
                    "subject" => subject = Some(v.nonempty("a latency subject")?),
                    _ => field.unknown(&["sampling", "subject"])?,
                }
            }
            let subject =
                subject.ok_or_else(|| n.err("latency needs a subject to publish reports on"))?;
            Ok(ServiceLatency { subject, sampling })
        }
        _ => Err(n.expected("a latency subject or a map {sampling, subject}")),
    }
}

fn parse_imports(n: &Node<'_>) -> Result<(Vec<Import>, Vec<Spot>), ConfigError> {
    const KEYS: &[&str] = &["stream", "service", "prefix", "to", "share"];
    if !matches!(n.value(), Value::Array(_)) {
        return Err(n.expected("an array of imports"));
    }
    let mut imports: Vec<Import> = Vec::new();
    let mut spots = Vec::new();
    for item in n.items()? {
        if !matches!(item.value(), Value::Map(_)) {
            return Err(
                item.expected("an import map such as {stream: {account: A, subject: \"foo.>\"}}")
            );
        }
        let mut stream: Option<(String, String, Spot)> = None;
        let mut service: Option<(String, String, Spot)> = None;
        let mut prefix: Option<(String, Spot)> = None;
        let mut to = None;
        let mut share = false;
        for field in item.entries()? {
            let v = &field.node;
            match field.name.as_str() {
                "stream" => {
                    let (a, s) = import_source(v)?;
                    stream = Some((a, s, Spot::of(v)));
                }
                "service" => {
                    let (a, s) = import_source(v)?;
                    service = Some((a, s, Spot::of(v)));
                }
                "prefix" => prefix = Some((v.string()?, Spot::of(v))),
                "to" => to = Some(v.string()?),
                "share" => share = v.bool()?,
                _ => field.unknown(KEYS)?,
            }
        }
        let import = match (stream, service) {
            (Some(_), Some((_, _, spot))) => {
                return Err(spot.err("import cannot be both a stream and a service"))
            }
            (Some((account, subject, _)), None) => {
                if let (Some((_, spot)), Some(_)) = (&prefix, &to) {
                    return Err(spot.err("a stream import cannot have both prefix and to"));
                }
                Import {
                    account,
                    subject,
                    kind: ImportKind::Stream {
                        prefix: prefix.map(|(p, _)| p),
                        to,
                    },
                }
            }
            (None, Some((account, subject, spot))) => {
                if let Some((_, p)) = prefix {
                    return Err(p.err("prefix is only valid on a stream import (use to)"));
                }
                let to = to.unwrap_or_else(|| subject.clone());
                if !is_valid_subject(&to) {
                    return Err(spot.err(format!("{to:?} is not a valid subject")));
                }
                if let Some(dup) = imports
                    .iter()
                    .find(|i| matches!(&i.kind, ImportKind::Service { to: t, .. } if *t == to))
                {
                    return Err(item.err(format!(
                        "duplicate service import subject {to:?}, already imported from account {:?} subject {:?}",
                        dup.account, dup.subject
                    )));
                }
                Import {
                    account,
                    subject,
                    kind: ImportKind::Service { to, share },
                }
            }
            (None, None) => return Err(item.err("import entry needs a stream or a service")),
        };
        imports.push(import);
        spots.push(Spot::of(&item));
    }
    Ok((imports, spots))
}

/// `{account: A, subject: s}` of an import.
fn import_source(n: &Node<'_>) -> Result<(String, String), ConfigError> {
    if !matches!(n.value(), Value::Map(_)) {
        return Err(n.expected("a map {account: NAME, subject: SUBJECT}"));
    }
    let (mut account, mut subject) = (None, None);
    for field in n.entries()? {
        match field.name.as_str() {
            "account" => account = Some(field.node.string()?),
            "subject" => subject = Some((field.node.string()?, field.node.clone())),
            _ => field.unknown(&["account", "subject"])?,
        }
    }
    match (account, subject) {
        (Some(a), Some((s, sn))) if !a.is_empty() && !s.is_empty() => {
            if !is_valid_subject(&s) {
                return Err(sn.err(format!("{s:?} is not a valid subject")));
            }
            Ok((a, s))
        }
        _ => Err(n.err("expected an account name and a subject")),
    }
}

fn tls(n: &Node<'_>, client_ctx: bool) -> Result<TlsConfig, ConfigError> {
    const KEYS: &[&str] = &[
        "cert_file",
        "key_file",
        "ca_file",
        "insecure",
        "verify",
        "verify_and_map",
        "verify_cert_and_check_known_urls",
        "cipher_suites",
        "curve_preferences",
        "timeout",
        "connection_rate_limit",
        "pinned_certs",
        "min_version",
        "handshake_first",
    ];
    if !matches!(n.value(), Value::Map(_)) {
        return Err(n.expected("a tls map {cert_file, key_file, ...}"));
    }
    let mut t = TlsConfig::default();
    let mut file_nodes = Vec::new();
    for field in n.entries()? {
        let v = &field.node;
        let flag = || {
            v.bool()
                .map_err(|_| v.expected(&format!("{} to be a boolean", field.name)))
        };
        match field.name.as_str() {
            "cert_file" | "key_file" | "ca_file" => {
                let path: PathBuf = v
                    .str()
                    .map_err(|_| v.expected(&format!("{} to be a file name", field.name)))?
                    .into();
                file_nodes.push((field.name.clone(), path.clone(), v.clone()));
                match field.name.as_str() {
                    "cert_file" => t.cert_file = Some(path),
                    "key_file" => t.key_file = Some(path),
                    _ => t.ca_file = Some(path),
                }
            }
            "insecure" => t.insecure = flag()?,
            "verify" => t.verify = flag()?,
            "verify_and_map" => {
                t.verify_and_map = flag()?;
                t.verify |= t.verify_and_map;
            }
            "verify_cert_and_check_known_urls" => {
                let on = flag()?;
                if on && client_ctx {
                    return Err(v.err(
                        "verify_cert_and_check_known_urls is only valid for cluster and gateway TLS",
                    ));
                }
                t.verify_cert_and_check_known_urls = on;
                t.verify |= on;
            }
            "cipher_suites" => {
                let names = named_list(v, "cipher_suites", CIPHER_SUITES)?;
                t.cipher_suites = names;
            }
            "curve_preferences" => {
                t.curve_preferences = named_list(v, "curve_preferences", CURVES)?;
            }
            "timeout" => t.timeout = seconds(v, "tls timeout")?,
            "connection_rate_limit" => t.connection_rate_limit = v.int()?,
            "pinned_certs" => {
                for item in v.items()? {
                    let s = item.str()?.to_ascii_lowercase();
                    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(item.err(format!(
                            "pinned cert {s:?} is not a hex-encoded SHA-256 (64 hex digits) of a SubjectPublicKeyInfo"
                        )));
                    }
                    t.pinned_certs.push(s);
                }
            }
            "min_version" => {
                let version = match v.value() {
                    Value::String(s) => s.trim().to_string(),
                    Value::Float(f) => format!("{f}"),
                    _ => return Err(v.expected("a TLS version: \"1.2\" or \"1.3\"")),
                };
                if version != "1.2" && version != "1.3" {
                    return Err(v.err(format!(
                        "unsupported TLS min_version {version:?}: expected \"1.2\" or \"1.3\""
                    )));
                }
                t.min_version = Some(version);
            }
            "handshake_first" => match v.value() {
                Value::Bool(b) => t.handshake_first = *b,
                Value::String(s) if s.eq_ignore_ascii_case("auto") => {
                    t.handshake_first = true;
                    t.handshake_first_fallback = Some(Duration::from_millis(50));
                }
                Value::String(_) => {
                    t.handshake_first = true;
                    t.handshake_first_fallback = Some(duration_str(v)?);
                }
                _ => return Err(v.expected("true, false, \"auto\" or a fallback duration")),
            },
            _ => field.unknown(KEYS)?,
        }
    }
    match (&t.cert_file, &t.key_file) {
        (Some(_), None) => {
            return Err(n.err("missing key_file in TLS configuration (cert_file is set)"))
        }
        (None, Some(_)) => {
            return Err(n.err("missing cert_file in TLS configuration (key_file is set)"))
        }
        _ => {}
    }
    for (name, path, node) in file_nodes {
        if let Err(e) = std::fs::File::open(&path) {
            return Err(node.err(format!("cannot read {name} {}: {e}", path.display())));
        }
    }
    Ok(t)
}

fn named_list(n: &Node<'_>, what: &str, known: &[&str]) -> Result<Vec<String>, ConfigError> {
    let items = n.items()?;
    if items.is_empty() {
        return Err(n.err(format!("{what} cannot be empty")));
    }
    items
        .iter()
        .map(|item| {
            let s = item.str()?;
            if known.contains(&s) {
                Ok(s.to_string())
            } else {
                Err(item.err(format!(
                    "unrecognized {what} entry {s:?}; expected one of: {}",
                    known.join(", ")
                )))
            }
        })
        .collect()
}

fn operators(n: &Node<'_>) -> Result<Vec<OperatorSource>, ConfigError> {
    let nodes = match n.value() {
        Value::String(_) => vec![n.clone()],
        Value::Array(_) => n.items()?,
        _ => {
            return Err(n.expected("an operator JWT file name, an inline JWT, or an array of them"))
        }
    };
    let mut out = Vec::new();
    for node in nodes {
        let s = node.str()?;
        let path = PathBuf::from(s);
        if std::fs::File::open(&path).is_ok() {
            out.push(OperatorSource::File(path));
        } else if s.starts_with("eyJ") {
            out.push(OperatorSource::Inline(s.to_string()));
        } else {
            let e = std::fs::File::open(&path)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            return Err(node.err(format!(
                "cannot read operator JWT file {s:?}: {e} (an inline JWT starts with eyJ)"
            )));
        }
    }
    Ok(out)
}

fn resolver_preload(n: &Node<'_>) -> Result<Vec<(String, String)>, ConfigError> {
    if !matches!(n.value(), Value::Map(_)) {
        return Err(n.expected("a map of account public key to account JWT"));
    }
    let mut out = Vec::new();
    for field in n.entries()? {
        let v = &field.node;
        let jwt = v
            .str()
            .map_err(|_| v.expected("an account JWT (a string)"))?;
        let parts: Vec<&str> = jwt.split('.').collect();
        let looks_like_jwt = parts.len() == 3
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'='))
            });
        if !looks_like_jwt {
            return Err(v.err("invalid account JWT: expected header.claims.signature in base64url"));
        }
        out.push((field.entry.key.clone(), jwt.to_string()));
    }
    Ok(out)
}

fn shards(n: &Node<'_>) -> Result<ShardsConfig, ConfigError> {
    const KEYS: &[&str] = &["count", "cpus", "io_memory"];
    let mut s = ShardsConfig::default();
    let mut count_node = None;
    for field in n.entries()? {
        let v = &field.node;
        match field.name.as_str() {
            "count" => {
                let c: usize = v.int_as("shards count")?;
                if c == 0 {
                    return Err(v.err("shards count must be at least 1"));
                }
                s.count = Some(c);
                count_node = Some(v.clone());
            }
            "cpus" => {
                s.cpus.clear();
                for item in v.items()? {
                    let cpu: usize = item.int_as("a CPU number")?;
                    if s.cpus.contains(&cpu) {
                        return Err(item.err(format!("CPU {cpu} is listed twice")));
                    }
                    s.cpus.push(cpu);
                }
            }
            "io_memory" => {
                let bytes = size(v)?;
                if bytes == 0 {
                    return Err(v.err("io_memory must be positive"));
                }
                s.io_memory = Some(bytes);
            }
            _ => field.unknown(KEYS)?,
        }
    }
    if let (Some(count), Some(node)) = (s.count, count_node) {
        if !s.cpus.is_empty() && s.cpus.len() != count {
            return Err(node.err(format!(
                "shards count ({count}) does not match the number of cpus listed ({})",
                s.cpus.len()
            )));
        }
    }
    Ok(s)
}

/// A byte size: an integer (`64MB` is already one) or a quoted size.
fn size(n: &Node<'_>) -> Result<u64, ConfigError> {
    let bytes = match n.value() {
        Value::Integer(i) => *i,
        Value::String(s) => {
            let mut sc = Scanner::new(s.trim(), Arc::clone(&n.pos().file));
            match sc.scan_scalar() {
                Ok(Scalar::Integer(i)) if sc.peek().is_none() => i,
                _ => {
                    return Err(n.err(format!(
                        "invalid size {s:?}: expected a number with an optional suffix such as 64MB"
                    )))
                }
            }
        }
        _ => return Err(n.expected("a size such as 64MB")),
    };
    u64::try_from(bytes).map_err(|_| n.err("a size must not be negative"))
}

// ---------------------------------------------------------------------------
// Subsystems natrix does not implement: validated, then refused if enabled.

fn unsupported(n: &Node<'_>, feature: &str, how_to_disable: &str) -> ConfigError {
    n.err(format!(
        "{feature} is not supported by natrix ({how_to_disable})"
    ))
}

fn refuse_mappings(n: &Node<'_>) -> Result<(), ConfigError> {
    match n.value() {
        Value::Map(entries) if entries.is_empty() => Ok(()),
        Value::Map(_) => Err(unsupported(n, "subject mappings", "remove the mappings")),
        _ => Err(n.expected("a map of subject mappings")),
    }
}

fn refuse_ocsp(n: &Node<'_>) -> Result<(), ConfigError> {
    match n.value() {
        Value::Bool(false) => Ok(()),
        Value::Bool(true) => Err(unsupported(n, "ocsp stapling", "set ocsp: false")),
        Value::Map(_) => {
            let mut mode = "auto".to_string();
            for field in n.entries()? {
                match field.name.as_str() {
                    "mode" => {
                        mode = field.node.string()?.to_ascii_lowercase();
                        if !matches!(mode.as_str(), "always" | "must" | "never" | "auto") {
                            return Err(field.node.err(format!(
                                "unknown ocsp mode {mode:?}: expected always, must, never or auto"
                            )));
                        }
                    }
                    "url" => {
                        field.node.str()?;
                    }
                    "urls" => {
                        field.node.strings()?;
                    }
                    _ => field.unknown(&["mode", "url", "urls"])?,
                }
            }
            if mode == "never" {
                Ok(())
            } else {
                Err(unsupported(n, "ocsp stapling", "set mode: never"))
            }
        }
        _ => Err(n.expected("a boolean or an ocsp map")),
    }
}

/// Checks a subsystem block's keys and listener, returning whether it
/// listens on a port.
fn subsystem(n: &Node<'_>, what: &str, keys: &[&str]) -> Result<bool, ConfigError> {
    if !matches!(n.value(), Value::Map(_)) {
        return Err(n.expected(&format!("a map defining {what}")));
    }
    let mut listening = false;
    for field in n.entries()? {
        let v = &field.node;
        match field.name.as_str() {
            "listen" => listening = listen(v)?.1 != 0,
            "port" => listening = port(v)? != 0,
            "host" | "net" | "name" | "advertise" => {
                v.str()?;
            }
            "tls" => {
                tls(v, false)?;
            }
            name if keys.contains(&name) => {}
            _ => field.unknown(keys)?,
        }
    }
    Ok(listening)
}

fn non_empty_array(n: &Node<'_>, key: &str) -> Result<bool, ConfigError> {
    for field in n.entries()? {
        if field.name == key {
            return Ok(!field.node.items()?.is_empty());
        }
    }
    Ok(false)
}

fn cluster(n: &Node<'_>) -> Result<(), ConfigError> {
    const KEYS: &[&str] = &[
        "name",
        "listen",
        "port",
        "host",
        "net",
        "authorization",
        "routes",
        "tls",
        "cluster_advertise",
        "advertise",
        "no_advertise",
        "connect_retries",
        "permissions",
    ];
    let listening = subsystem(n, "a cluster", KEYS)?;
    if listening || non_empty_array(n, "routes")? {
        return Err(unsupported(
            n,
            "clustering (cluster)",
            "remove the cluster block, or leave it without a port and routes",
        ));
    }
    Ok(())
}

fn gateway(n: &Node<'_>) -> Result<(), ConfigError> {
    const KEYS: &[&str] = &[
        "name",
        "listen",
        "port",
        "host",
        "net",
        "authorization",
        "tls",
        "advertise",
        "connect_retries",
        "gateways",
        "reject_unknown",
        "reject_unknown_cluster",
    ];
    let listening = subsystem(n, "a gateway", KEYS)?;
    if listening || non_empty_array(n, "gateways")? {
        return Err(unsupported(
            n,
            "gateway",
            "remove the gateway block, or leave it without a port and gateways",
        ));
    }
    Ok(())
}

fn leafnodes(n: &Node<'_>) -> Result<(), ConfigError> {
    const KEYS: &[&str] = &[
        "listen",
        "port",
        "host",
        "net",
        "authorization",
        "remotes",
        "reconnect",
        "reconnect_delay",
        "reconnect_interval",
        "tls",
        "leafnode_advertise",
        "advertise",
        "no_advertise",
        "min_version",
        "minimum_version",
    ];
    let listening = subsystem(n, "leafnodes", KEYS)?;
    if listening || non_empty_array(n, "remotes")? {
        return Err(unsupported(
            n,
            "leafnodes",
            "remove the leafnodes block, or leave it without a port and remotes",
        ));
    }
    Ok(())
}

fn websocket(n: &Node<'_>) -> Result<(), ConfigError> {
    const KEYS: &[&str] = &[
        "listen",
        "port",
        "host",
        "net",
        "advertise",
        "no_tls",
        "tls",
        "same_origin",
        "allowed_origins",
        "allowed_origin",
        "allow_origins",
        "allow_origin",
        "origins",
        "origin",
        "handshake_timeout",
        "compress",
        "compression",
        "authorization",
        "authentication",
        "jwt_cookie",
        "no_auth_user",
    ];
    if subsystem(n, "websocket", KEYS)? {
        return Err(unsupported(
            n,
            "websocket",
            "remove the websocket block, or leave it without a port",
        ));
    }
    Ok(())
}

fn mqtt(n: &Node<'_>) -> Result<(), ConfigError> {
    const KEYS: &[&str] = &[
        "listen",
        "port",
        "host",
        "net",
        "tls",
        "authorization",
        "authentication",
        "no_auth_user",
        "ack_wait",
        "ackwait",
        "max_ack_pending",
        "max_pending",
        "max_inflight",
        "js_domain",
        "stream_replicas",
        "consumer_replicas",
        "consumer_memory_storage",
        "consumer_inactive_threshold",
        "consumer_auto_cleanup",
    ];
    if subsystem(n, "mqtt", KEYS)? {
        return Err(unsupported(
            n,
            "mqtt",
            "remove the mqtt block, or leave it without a port",
        ));
    }
    Ok(())
}

/// Top-level `jetstream`. Returns the position of its store_dir, if any.
fn jetstream(n: &Node<'_>) -> Result<Option<Spot>, ConfigError> {
    const KEYS: &[&str] = &[
        "store",
        "store_dir",
        "storedir",
        "max_memory_store",
        "max_mem_store",
        "max_mem",
        "max_file_store",
        "max_file",
        "domain",
        "enable",
        "enabled",
        "key",
        "ek",
        "encryption_key",
        "cipher",
        "extension_hint",
        "limits",
        "unique_tag",
        "max_outstanding_catchup",
    ];
    const HOW: &str = "set jetstream: false or enabled: false";
    let enabled = match n.value() {
        Value::Bool(b) => *b,
        Value::String(s) => enabled_word(n, s)?,
        Value::Map(_) => {
            let mut enabled = true;
            let mut store = None;
            for field in n.entries()? {
                let v = &field.node;
                match field.name.as_str() {
                    "enable" | "enabled" => enabled = v.bool()?,
                    "store" | "store_dir" | "storedir" => {
                        v.str()?;
                        store = Some(Spot::key_of(&field));
                    }
                    "cipher" => {
                        let c = v.str()?.to_ascii_lowercase();
                        if !matches!(c.as_str(), "chacha" | "chachapoly" | "aes") {
                            return Err(
                                v.err(format!("unknown cipher {c:?}: expected chachapoly or aes"))
                            );
                        }
                    }
                    "domain" | "key" | "ek" | "encryption_key" | "extension_hint"
                    | "unique_tag" => {
                        v.str()?;
                    }
                    "limits" => {
                        v.entries()?;
                    }
                    name if KEYS.contains(&name) => {}
                    _ => field.unknown(KEYS)?,
                }
            }
            if enabled {
                return Err(unsupported(n, "jetstream", HOW));
            }
            return Ok(store);
        }
        _ => return Err(n.expected("a boolean, \"enabled\"/\"disabled\" or a jetstream map")),
    };
    if enabled {
        return Err(unsupported(n, "jetstream", HOW));
    }
    Ok(None)
}

fn enabled_word(n: &Node<'_>, s: &str) -> Result<bool, ConfigError> {
    match s.to_ascii_lowercase().as_str() {
        "enabled" | "enable" => Ok(true),
        "disabled" | "disable" => Ok(false),
        _ => Err(n.err(format!("expected \"enabled\" or \"disabled\", found {s:?}"))),
    }
}

fn account_jetstream(n: &Node<'_>, account: &str) -> Result<(), ConfigError> {
    const KEYS: &[&str] = &[
        "max_memory",
        "max_mem",
        "mem",
        "memory",
        "max_store",
        "max_file",
        "max_disk",
        "store",
        "disk",
        "max_streams",
        "streams",
        "max_consumers",
        "consumers",
        "max_bytes_required",
        "max_stream_bytes",
        "max_bytes",
        "mem_max_stream_bytes",
        "memory_max_stream_bytes",
        "disk_max_stream_bytes",
        "store_max_stream_bytes",
        "max_ack_pending",
    ];
    let enabled = match n.value() {
        Value::Bool(b) => *b,
        Value::String(s) => enabled_word(n, s)?,
        Value::Map(_) => {
            for field in n.entries()? {
                match field.name.as_str() {
                    "max_bytes_required" | "max_stream_bytes" | "max_bytes" => {
                        field.node.bool()?;
                    }
                    name if KEYS.contains(&name) => {
                        field.node.int()?;
                    }
                    _ => field.unknown(KEYS)?,
                }
            }
            true
        }
        _ => {
            return Err(n.expected("a boolean, \"enabled\"/\"disabled\" or a jetstream limits map"))
        }
    };
    if enabled {
        return Err(unsupported(
            n,
            &format!("jetstream (account {account:?})"),
            "set jetstream: false or remove it",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use crate::config::test_util::TempDir;

    fn ok(text: &str) -> ServerConfig {
        match parse_str(text) {
            Ok(c) => c,
            Err(e) => panic!("unexpected error for {text:?}: {e}"),
        }
    }

    fn err(text: &str) -> String {
        match parse_str(text) {
            Ok(_) => panic!("expected an error for {text:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn allow(list: &[&str]) -> Option<SubjectPermission> {
        Some(SubjectPermission {
            allow: Some(list.iter().map(|s| s.to_string()).collect()),
            deny: Vec::new(),
        })
    }

    #[test]
    fn defaults() {
        let c = ok("");
        assert_eq!(c, ServerConfig::default());
        assert_eq!(c.host, "0.0.0.0");
        assert_eq!(c.port, 4222);
        assert_eq!(c.max_payload, 1 << 20);
        assert_eq!(c.max_pending, 64 << 20);
        assert_eq!(c.max_control_line, 4096);
        assert_eq!(c.max_connections, 65536);
        assert_eq!(c.ping_interval, secs(120));
        assert_eq!(c.ping_max, 2);
        assert_eq!(c.write_deadline, secs(10));
        assert_eq!(c.lame_duck_duration, secs(120));
        assert_eq!(c.lame_duck_grace_period, secs(10));
        assert_eq!(c.authorization.timeout, secs(2));
        assert!(c.logtime);
        assert!(c.users.is_empty() && c.accounts.is_empty() && c.warnings.is_empty());
    }

    /// A typical single-server config in the style of the nats-server docs.
    #[test]
    fn realistic_server() {
        let c = ok(r#"
            # Client port of 4222 on all interfaces
            listen: 127.0.0.1:4333
            server_name: "natrix-1"
            client_advertise: "nats.example.com:4222"

            # HTTP monitoring port
            http: localhost:8222
            http_base_path: /nats

            max_connections: 1000
            max_payload: 2MB
            max_pending: 32MB
            max_control_line: 1KB
            max_subscriptions: 100
            ping_interval: "30s"
            ping_max: 3
            write_deadline: "1.5s"
            lame_duck_duration: "1h30m"
            lame_duck_grace_period: "30s"

            debug: false
            trace: true
            logtime: off
            log_file: "/var/log/natrix.log"
            log_size_limit: 100MB
            pid_file: /var/run/natrix.pid
            ports_file_dir: /tmp
            syslog: no
        "#);
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 4333));
        assert_eq!(c.server_name.as_deref(), Some("natrix-1"));
        assert_eq!(c.client_advertise.as_deref(), Some("nats.example.com:4222"));
        assert_eq!((c.http_host.as_str(), c.http_port), ("localhost", 8222));
        assert_eq!(c.http_base_path, "/nats");
        assert_eq!(c.max_connections, 1000);
        assert_eq!(c.max_payload, 2 << 20);
        assert_eq!(c.max_pending, 32 << 20);
        assert_eq!(c.max_control_line, 1024);
        assert_eq!(c.max_subscriptions, 100);
        assert_eq!(c.ping_interval, secs(30));
        assert_eq!(c.ping_max, 3);
        assert_eq!(c.write_deadline, Duration::from_millis(1500));
        assert_eq!(c.lame_duck_duration, secs(5400));
        assert_eq!(c.lame_duck_grace_period, secs(30));
        assert!(!c.debug && c.trace && !c.logtime && !c.syslog);
        assert_eq!(c.log_file, Some(PathBuf::from("/var/log/natrix.log")));
        assert_eq!(c.log_size_limit, 100 << 20);
        assert_eq!(c.pid_file, Some(PathBuf::from("/var/run/natrix.pid")));
        assert_eq!(c.ports_file_dir, Some(PathBuf::from("/tmp")));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn listen_forms() {
        let c = ok("listen: 5222");
        assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", 5222));
        let c = ok("listen: \"[::1]:5222\"");
        assert_eq!((c.host.as_str(), c.port), ("::1", 5222));
        let c = ok("listen: localhost:5222");
        assert_eq!((c.host.as_str(), c.port), ("localhost", 5222));
        let c = ok("host: 10.0.0.1\nport: -1");
        assert_eq!(
            (c.host.as_str(), c.port, c.http_host.as_str()),
            ("10.0.0.1", -1, "10.0.0.1")
        );
        let c = ok("net: 10.0.0.2\nhttp_port: 8222\nhttps_port: 8443");
        assert_eq!(
            (c.http_host.as_str(), c.http_port, c.https_port),
            ("10.0.0.2", 8222, 8443)
        );
        let c = ok("https: 0.0.0.0:8443");
        assert_eq!(c.https_port, 8443);
        assert_eq!(
            err("listen: localhost"),
            "<string>:1:9: listen: could not parse address \"localhost\": expected host:port (IPv6 as [addr]:port)"
        );
        assert_eq!(
            err("port: 70000"),
            "<string>:1:7: port: port 70000 is out of range: expected 0-65535, or -1 for a random port"
        );
        assert_eq!(
            err("port: \"4222\""),
            "<string>:1:7: port: expected an integer, found a string"
        );
    }

    #[test]
    fn durations() {
        let c = ok("ping_interval: \"2m\"\nwrite_deadline: \"500ms\"");
        assert_eq!(
            (c.ping_interval, c.write_deadline),
            (secs(120), Duration::from_millis(500))
        );
        // Integer seconds are accepted with the reference's warning.
        let c = ok("ping_interval: 5\nwrite_deadline: 3");
        assert_eq!((c.ping_interval, c.write_deadline), (secs(5), secs(3)));
        assert_eq!(
            c.warnings,
            vec![
                "<string>:1:1: ping_interval: invalid use of field \"ping_interval\": ping_interval should be converted to a duration",
                "<string>:2:1: write_deadline: invalid use of field \"write_deadline\": write_deadline should be converted to a duration",
            ]
        );
        // A bare 2m is the integer 2,000,000: two million seconds.
        assert_eq!(ok("ping_interval: 2m").ping_interval, secs(2_000_000));
        // Unquoted words that start with digits are strings, so these work.
        assert_eq!(ok("ping_interval: 1h30m").ping_interval, secs(5400));
        assert_eq!(
            ok("write_deadline: 250ms").write_deadline,
            Duration::from_millis(250)
        );
        assert_eq!(
            err("lame_duck_duration: 60"),
            "<string>:1:21: lame_duck_duration: expected a duration string such as \"2m\", \"500ms\" or \"1h30m\", found an integer"
        );
        assert_eq!(
            err("lame_duck_duration: \"10s\""),
            "<string>:1:21: lame_duck_duration: invalid lame_duck_duration of 10s: the minimum is 30s"
        );
        assert_eq!(
            err("ping_interval: \"5\""),
            "<string>:1:16: ping_interval: invalid duration \"5\": missing unit (ns, us, ms, s, m, h)"
        );
        assert_eq!(
            err("write_deadline: \"2 days\""),
            "<string>:1:17: write_deadline: invalid duration \"2 days\": unknown unit \" days\" (expected ns, us, ms, s, m or h)"
        );
        assert_eq!(
            err("lame_duck_duration: \"1m\"\nlame_duck_grace_period: \"2m\""),
            "<string>:2:1: lame_duck_grace_period: lame_duck_grace_period (2m0s) must be shorter than lame_duck_duration (1m0s)"
        );
        assert!(err("lame_duck_grace_period: \"-1s\"").contains("must not be negative"));
    }

    #[test]
    fn sizes_and_limits() {
        assert_eq!(ok("max_payload: 512KB").max_payload, 512 * 1024);
        assert_eq!(ok("max_payload: 1k").max_payload, 1000);
        assert_eq!(ok("max_pending: 1GiB").max_pending, 1 << 30);
        assert_eq!(ok("max_payload: 0").max_payload, 1 << 20);
        assert_eq!(
            err("max_payload: 100MB"),
            "<string>:1:1: max_payload: max_payload (104857600) cannot be higher than max_pending (67108864)"
        );
        assert_eq!(
            err("max_control_line: 3GB"),
            "<string>:1:19: max_control_line: 3221225472 is out of range for max_control_line (at most 2147483647)"
        );
        assert_eq!(ok("max_sub_tokens: 16").max_sub_tokens, 16);
        assert!(err("max_sub_tokens: 300").contains("at most 255"));
        assert!(err("max_sub_tokens: 0").contains("must be positive"));
    }

    #[test]
    fn booleans() {
        let c = ok("debug: yes\ntrace: ON\nlogtime: False\nsyslog: true\nno_header_support: on");
        assert!(c.debug && c.trace && !c.logtime && c.syslog && c.no_header_support);
        assert_eq!(
            err("debug: 1"),
            "<string>:1:8: debug: expected a boolean (true/false, yes/no, on/off), found an integer"
        );
        assert_eq!(
            err("debug: \"true\""),
            "<string>:1:8: debug: expected a boolean (true/false, yes/no, on/off), found a string"
        );
        let c = ok("trace_verbose: true");
        assert!(c.trace && c.trace_verbose);
    }

    #[test]
    fn keys_are_case_insensitive_and_aliases_work() {
        let c = ok("PORT: 5000\nDebug: true\nmax_conn: 7\nmax_subs: 9\npidfile: p\nlogfile: l\nmonitor_port: 8000");
        assert_eq!(c.port, 5000);
        assert!(c.debug);
        assert_eq!(
            (c.max_connections, c.max_subscriptions, c.http_port),
            (7, 9, 8000)
        );
        assert_eq!(c.pid_file, Some(PathBuf::from("p")));
        assert_eq!(c.log_file, Some(PathBuf::from("l")));
    }

    #[test]
    fn unknown_keys() {
        assert_eq!(
            err("port: 4222\nfoo: bar"),
            "<string>:2:1: foo: unknown field \"foo\""
        );
        assert_eq!(
            err("max_payloads: 1"),
            "<string>:1:1: max_payloads: unknown field \"max_payloads\" (did you mean \"max_payload\"?)"
        );
        assert_eq!(
            err("authorization {\n  user: a\n  pasword: b\n}"),
            "<string>:3:3: authorization.pasword: unknown field \"pasword\" (did you mean \"password\"?)"
        );
        assert_eq!(
            err("tls { ceert_file: x }"),
            "<string>:1:7: tls.ceert_file: unknown field \"ceert_file\" (did you mean \"cert_file\"?)"
        );
        // Variable definitions are not unknown fields once used...
        let c =
            ok("my_port = 4333\nport: $my_port\nauthorization { pw = x, user: u, password: $pw }");
        assert_eq!(c.port, 4333);
        assert_eq!(c.authorization.password.as_deref(), Some("x"));
        // ...but an unused one is, as in the reference.
        assert_eq!(
            err("my_port = 4333"),
            "<string>:1:1: my_port: unknown field \"my_port\""
        );
    }

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

    /// Multi-tenancy in the style of the nats-server accounts docs.
    #[test]
    fn accounts_exports_imports() {
        let c = ok(r#"
            accounts: {
              ORDERS: {
                users: [ {user: orders, password: o} ]
                default_permissions: { subscribe: "orders.>" }
                exports: [
                  {stream: "orders.events.>"}
                  {stream: "orders.audit", accounts: [AUDIT]}
                  {service: "orders.get", response_type: singleton}
                  {service: "orders.report.*", response_type: chunked, threshold: "5s", accounts: [AUDIT, BILLING]}
                  {service: "orders.lat", latency: { sampling: "25%", subject: "lat.orders" }}
                ]
              }
              BILLING: {
                users: [ {user: billing, password: b, permissions: { publish: ">" }} ]
                imports: [
                  {stream: {account: ORDERS, subject: "orders.events.>"}, prefix: "from_orders"}
                  {service: {account: ORDERS, subject: "orders.get"}, to: "get.order"}
                  {service: {account: ORDERS, subject: "orders.report.monthly"}}
                ]
              }
              AUDIT: {
                nkey: AB5UKNPVHDWBP5WODG742274I3OGY5FM3CBIFCYI4OFEH7Y23GNZPXFE
                limits: { max_connections: 10, max_payload: 1KB }
                imports: [
                  {stream: {account: ORDERS, subject: "orders.audit"}, to: "audit.orders"}
                  {service: {account: ORDERS, subject: "orders.report.daily"}, share: true}
                ]
              }
              SYS: {}
            }
            system_account: SYS
            no_auth_user: billing
        "#);
        let names: Vec<&str> = c.accounts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["ORDERS", "BILLING", "AUDIT", "SYS"]);
        assert_eq!(c.system_account.as_deref(), Some("SYS"));
        assert_eq!(c.no_auth_user.as_deref(), Some("billing"));

        let orders = c.account("ORDERS").unwrap();
        assert_eq!(orders.exports.len(), 5);
        assert_eq!(orders.exports[0].kind, ExportKind::Stream);
        assert_eq!(orders.exports[0].accounts, None);
        assert_eq!(orders.exports[1].accounts, Some(vec!["AUDIT".to_string()]));
        assert_eq!(
            orders.exports[3].kind,
            ExportKind::Service {
                response_type: ResponseType::Chunked,
                response_threshold: Some(secs(5)),
                latency: None,
            }
        );
        assert_eq!(
            orders.exports[4].kind,
            ExportKind::Service {
                response_type: ResponseType::Singleton,
                response_threshold: None,
                latency: Some(ServiceLatency {
                    subject: "lat.orders".into(),
                    sampling: 25
                }),
            }
        );
        let users: Vec<&str> = c.users_of("ORDERS").map(User::identity).collect();
        assert_eq!(users, ["orders"]);
        // Account default_permissions apply to its users.
        assert_eq!(
            c.users[0].permissions.as_ref().unwrap().subscribe,
            allow(&["orders.>"])
        );

        let billing = c.account("BILLING").unwrap();
        assert_eq!(
            billing.imports,
            vec![
                Import {
                    account: "ORDERS".into(),
                    subject: "orders.events.>".into(),
                    kind: ImportKind::Stream {
                        prefix: Some("from_orders".into()),
                        to: None
                    },
                },
                Import {
                    account: "ORDERS".into(),
                    subject: "orders.get".into(),
                    kind: ImportKind::Service {
                        to: "get.order".into(),
                        share: false
                    },
                },
                Import {
                    account: "ORDERS".into(),
                    subject: "orders.report.monthly".into(),
                    kind: ImportKind::Service {
                        to: "orders.report.monthly".into(),
                        share: false
                    },
                },
            ]
        );
        let audit = c.account("AUDIT").unwrap();
        assert_eq!(
            audit.nkey.as_deref(),
            Some("AB5UKNPVHDWBP5WODG742274I3OGY5FM3CBIFCYI4OFEH7Y23GNZPXFE")
        );
        assert_eq!(audit.limits.max_connections, 10);
        assert_eq!(audit.limits.max_payload, 1024);
        assert_eq!(audit.limits.max_subscriptions, -1);
        assert_eq!(
            audit.imports[1].kind,
            ImportKind::Service {
                to: "orders.report.daily".into(),
                share: true
            }
        );
    }

    #[test]
    fn accounts_array_form() {
        let c = ok("accounts: [A, B, \"C\"]\nsystem_account: A");
        let names: Vec<&str> = c.accounts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["A", "B", "C"]);
        assert_eq!(
            err("accounts: [A, A]"),
            "<string>:1:15: accounts[1]: duplicate account \"A\""
        );
        assert_eq!(
            err("accounts: [\"$G\"]"),
            "<string>:1:12: accounts[0]: \"$G\" is a reserved account name"
        );
    }

    #[test]
    fn account_semantic_errors() {
        assert_eq!(
            err("accounts {\n  A { users [ {user: a, password: x} ] }\n  B { users [ {user: a, password: y} ] }\n}"),
            "<string>:3:15: accounts.B.users[0]: duplicate user \"a\": already defined at <string>:2:15 (in account \"A\")"
        );
        assert_eq!(
            err("accounts { A { users [ {user: a} ] } }\nauthorization { users [ {user: a} ] }"),
            "<string>:2:25: authorization.users[0]: duplicate user \"a\": already defined at <string>:1:24 (in account \"A\")"
        );
        assert_eq!(
            err("authorization { user: x, password: y }\naccounts { A { users [ {user: a} ] } }"),
            "<string>:2:16: accounts.A.users: cannot have both a single user/password in authorization and users in accounts"
        );
        assert_eq!(
            err("accounts {\n  A { exports [ {stream: \"foo.>\", accounts: [C]} ] }\n  B { imports [ {stream: {account: A, subject: \"foo.bar\"}} ] }\n  C {}\n}"),
            "<string>:3:17: accounts.B.imports[0]: stream import not authorized: account \"A\" exports \"foo.bar\" but not to account \"B\""
        );
        assert_eq!(
            err("accounts {\n  A { exports [ {service: \"svc.>\"} ] }\n  B { imports [ {service: {account: A, subject: \"other\"}} ] }\n}"),
            "<string>:3:17: accounts.B.imports[0]: service import not authorized: account \"A\" has no service export covering \"other\""
        );
        assert_eq!(
            err("accounts {\n  A { exports [ {stream: \"s\"} ] }\n  B { imports [ {service: {account: A, subject: \"s\"}} ] }\n}"),
            "<string>:3:17: accounts.B.imports[0]: service import not authorized: account \"A\" has no service export covering \"s\""
        );
        assert_eq!(
            err("accounts {\n  B { imports [ {stream: {account: Z, subject: \"s\"}} ] }\n}"),
            "<string>:2:17: accounts.B.imports[0]: account \"Z\" is not defined (named by this stream import)"
        );
        assert_eq!(
            err("accounts {\n  A { exports [ {stream: \"s\", accounts: [Q]} ] }\n}"),
            "<string>:2:41: accounts.A.exports[0].accounts: account \"Q\" is not defined (named by the stream export \"s\")"
        );
        assert_eq!(
            err("accounts { A { exports [ {stream: \"s\", response_type: stream} ] } }"),
            "<string>:1:55: accounts.A.exports[0].response_type: response type is only valid on a service export"
        );
        assert_eq!(
            err("accounts { A { exports [ {service: \"s\", response_type: bogus} ] } }"),
            "<string>:1:56: accounts.A.exports[0].response_type: unknown response type \"bogus\": expected singleton, stream or chunked"
        );
        assert_eq!(
            err("accounts { A { imports [ {stream: {account: B}} ] }, B {} }"),
            "<string>:1:35: accounts.A.imports[0].stream: expected an account name and a subject"
        );
        assert_eq!(
            err("accounts { A: 5 }"),
            "<string>:1:15: accounts.A: expected a map defining account \"A\", found an integer"
        );
        assert_eq!(
            err("accounts { A { bogus: 1 } }"),
            "<string>:1:16: accounts.A.bogus: unknown field \"bogus\"; expected one of: nkey, imports, exports, jetstream, users, default_permissions, mappings, maps, limits"
        );
        assert_eq!(
            err("accounts { A { nkey: ABC } }"),
            "<string>:1:22: accounts.A.nkey: \"ABC\" is not a valid public account nkey (A...)"
        );
        // Wildcard imports are authorized by wider exports, and a token
        // position can authorize by account name.
        ok("accounts {\n  A { exports [ {stream: \">\"} ] }\n  B { imports [ {stream: {account: A, subject: \"x.*\"}} ] }\n}");
        ok("accounts {\n  A { exports [ {service: \"req.*\", account_token_position: 2} ] }\n  B { imports [ {service: {account: A, subject: \"req.B\"}} ] }\n}");
        assert!(err("accounts {\n  A { exports [ {service: \"req.*\", account_token_position: 2} ] }\n  B { imports [ {service: {account: A, subject: \"req.C\"}} ] }\n}")
            .contains("not authorized"));
    }

    #[test]
    fn no_auth_user_and_system_account() {
        assert_eq!(
            err("no_auth_user: bob\nauthorization { users [ {user: alice, password: x} ] }"),
            "<string>:1:1: no_auth_user: no_auth_user \"bob\" is not a user of the authorization block or of any account"
        );
        assert_eq!(
            err("no_auth_user: bob"),
            "<string>:1:1: no_auth_user: no_auth_user \"bob\" is set, but no users are defined"
        );
        assert_eq!(
            err("accounts { A {} }\nsystem_account: SYS"),
            "<string>:2:1: system_account: system account \"SYS\" is not defined in the accounts block"
        );
        let c = ok("accounts { A { users [ {user: a} ] } }\nno_auth_user: a");
        assert_eq!(c.users[0].account, "A");
    }

    #[test]
    fn tls_blocks() {
        let dir = TempDir::new("tls");
        let cert = dir.write("server.pem", "cert");
        let key = dir.write("server-key.pem", "key");
        let ca = dir.write("ca.pem", "ca");
        let c = ok(&format!(
            r#"
            tls {{
              cert_file: "{}"
              key_file: "{}"
              ca_file: "{}"
              verify_and_map: true
              timeout: 3
              cipher_suites: ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"]
              curve_preferences: ["X25519", "CurveP256"]
              min_version: "1.3"
              pinned_certs: ["{}"]
              handshake_first: true
            }}
            "#,
            cert.display(),
            key.display(),
            ca.display(),
            "AB".repeat(32)
        ));
        let t = c.tls.as_ref().unwrap();
        assert_eq!(t.cert_file.as_deref(), Some(cert.as_path()));
        assert_eq!(t.key_file.as_deref(), Some(key.as_path()));
        assert_eq!(t.ca_file.as_deref(), Some(ca.as_path()));
        assert!(t.verify && t.verify_and_map && t.handshake_first && !t.insecure);
        assert_eq!(t.timeout, secs(3));
        assert_eq!(t.cipher_suites.len(), 2);
        assert_eq!(t.curve_preferences, ["X25519", "CurveP256"]);
        assert_eq!(t.min_version.as_deref(), Some("1.3"));
        assert_eq!(t.pinned_certs, ["ab".repeat(32)]);
        // With TLS and no explicit auth timeout: TLS timeout plus a second.
        assert_eq!(c.authorization.timeout, secs(4));

        let t = ok("tls { timeout: \"500ms\", handshake_first: \"auto\" }")
            .tls
            .unwrap();
        assert_eq!(t.timeout, Duration::from_millis(500));
        assert_eq!(t.handshake_first_fallback, Some(Duration::from_millis(50)));

        assert_eq!(
            err("tls { cert_file: \"/nonexistent/cert.pem\", key_file: \"/nonexistent/key.pem\" }"),
            "<string>:1:18: tls.cert_file: cannot read cert_file /nonexistent/cert.pem: No such file or directory (os error 2)"
        );
        assert_eq!(
            err(&format!("tls {{ cert_file: \"{}\" }}", cert.display())),
            "<string>:1:5: tls: missing key_file in TLS configuration (cert_file is set)"
        );
        assert_eq!(
            err("tls { verify: 1 }"),
            "<string>:1:15: tls.verify: expected verify to be a boolean, found an integer"
        );
        assert_eq!(
            err("tls { cipher_suites: [] }"),
            "<string>:1:22: tls.cipher_suites: cipher_suites cannot be empty"
        );
        assert!(err("tls { cipher_suites: [\"BOGUS\"] }")
            .starts_with("<string>:1:23: tls.cipher_suites[0]: unrecognized cipher_suites entry \"BOGUS\"; expected one of: TLS_RSA_WITH_RC4_128_SHA,"));
        assert!(err("tls { pinned_certs: [\"abc\"] }").contains("is not a hex-encoded SHA-256"));
        assert!(err("tls { min_version: \"1.1\" }").contains("expected \"1.2\" or \"1.3\""));
        assert!(err("tls { verify_cert_and_check_known_urls: true }")
            .contains("only valid for cluster and gateway TLS"));
    }

    #[test]
    fn unsupported_subsystems_are_refused_unless_disabled() {
        assert_eq!(
            err("jetstream: enabled"),
            "<string>:1:12: jetstream: jetstream is not supported by natrix (set jetstream: false or enabled: false)"
        );
        assert_eq!(
            err("jetstream {\n  store_dir: /data\n  max_mem: 1G\n}"),
            "<string>:1:11: jetstream: jetstream is not supported by natrix (set jetstream: false or enabled: false)"
        );
        assert_eq!(
            err("jetstream { store_dir: /data, bogus: 1 }"),
            "<string>:1:31: jetstream.bogus: unknown field \"bogus\""
        );
        ok("jetstream: false");
        ok("jetstream: disabled");
        ok("jetstream { enabled: false, store_dir: \"/data\", max_file_store: 10G }");
        assert!(err("jetstream: maybe").contains("expected \"enabled\" or \"disabled\""));
        assert_eq!(
            err("accounts { A { jetstream: enabled } }"),
            "<string>:1:27: accounts.A.jetstream: jetstream (account \"A\") is not supported by natrix (set jetstream: false or remove it)"
        );
        ok("accounts { A { jetstream: disabled } }");

        assert_eq!(
            err("cluster {\n  name: c1\n  listen: 0.0.0.0:6222\n  routes: [nats://a:6222]\n}"),
            "<string>:1:9: cluster: clustering (cluster) is not supported by natrix (remove the cluster block, or leave it without a port and routes)"
        );
        ok("cluster { name: c1 }");
        assert_eq!(
            err("cluster { name: c1, bogus: 1 }"),
            "<string>:1:21: cluster.bogus: unknown field \"bogus\"; expected one of: name, listen, port, host, net, authorization, routes, tls, cluster_advertise, advertise, no_advertise, connect_retries, permissions"
        );
        assert!(
            err("gateway { name: g, port: 7222 }").contains("gateway is not supported by natrix")
        );
        assert!(err("leafnodes { remotes: [ {url: \"nats://h:7422\"} ] }")
            .contains("leafnodes is not supported by natrix"));
        assert!(err("leaf { port: 7422 }").contains("leafnodes is not supported by natrix"));
        assert!(err("websocket { port: 8080, no_tls: true }")
            .contains("websocket is not supported by natrix"));
        assert!(
            err("mqtt { listen: \"0.0.0.0:1883\" }").contains("mqtt is not supported by natrix")
        );
        ok("websocket { no_tls: true }");
        assert!(err("mappings { \"foo\": \"bar\" }")
            .contains("subject mappings is not supported by natrix"));
        assert!(err("ocsp: true").contains("ocsp stapling is not supported by natrix"));
        ok("ocsp: false\nocsp { mode: never }");

        let c = ok("store_dir: /data\njetstream: false");
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].contains("store_dir is only used by JetStream"));
        assert!(
            err("store_dir: /a\njetstream { enabled: false, store_dir: /b }")
                .contains("duplicate store_dir")
        );
    }

    #[test]
    fn operator_mode_and_resolvers() {
        let dir = TempDir::new("operator");
        let op = dir.write(
            "op.jwt",
            "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.sig",
        );
        let jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJzdWIiOiJBIn0.c2ln";
        let c = ok(&format!(
            "operator: \"{}\"\nsystem_account: AB5UKNPVHDWBP5WODG742274I3OGY5FM3CBIFCYI4OFEH7Y23GNZPXFE\nresolver: MEMORY\nresolver_preload: {{\n  AB5UKNPVHDWBP5WODG742274I3OGY5FM3CBIFCYI4OFEH7Y23GNZPXFE: \"{jwt}\"\n}}",
            op.display()
        ));
        assert_eq!(c.operators, vec![OperatorSource::File(op.clone())]);
        assert_eq!(c.resolver, Some(Resolver::Memory));
        assert_eq!(c.resolver_preload.len(), 1);
        assert_eq!(c.resolver_preload[0].1, jwt);

        let c = ok(&format!(
            "operator: {jwt}\nresolver: URL(http://localhost:9090/jwt/v1/accounts/)"
        ));
        assert_eq!(c.operators, vec![OperatorSource::Inline(jwt.to_string())]);
        assert_eq!(
            c.resolver,
            Some(Resolver::Url(
                "http://localhost:9090/jwt/v1/accounts/".into()
            ))
        );

        let c = ok("resolver: {\n  type: full\n  dir: \"./jwt\"\n  allow_delete: true\n  interval: \"2m\"\n  limit: 1000\n}");
        assert_eq!(
            c.resolver,
            Some(Resolver::Dir {
                kind: DirResolverKind::Full,
                dir: "./jwt".into(),
                allow_delete: true,
                interval: Some(secs(120)),
                limit: 1000,
                ttl: None,
                timeout: None,
            })
        );
        let c = ok("resolver: { type: cache, dir: /tmp/jwt, ttl: \"1h\", colour: blue }");
        assert!(matches!(
            c.resolver,
            Some(Resolver::Dir {
                kind: DirResolverKind::Cache,
                ..
            })
        ));
        assert_eq!(
            c.warnings,
            vec!["<string>:1:52: resolver.colour: unknown resolver field \"colour\" ignored"]
        );
        assert_eq!(
            err("resolver: { type: full, dir: /tmp/jwt, ttl: \"1h\" }"),
            "<string>:1:19: resolver.type: a full resolver does not accept ttl"
        );
        assert_eq!(
            err("resolver: { dir: /tmp/jwt }"),
            "<string>:1:11: resolver: resolver needs a type: expected MEMORY, URL(\"http://...\") or a map with dir and type (full or cache)"
        );
        assert!(err("resolver: bogus").contains("invalid resolver \"bogus\""));
        assert!(err("resolver_preload: { A: \"not a jwt\" }").contains("invalid account JWT"));
        assert!(err("operator: /nonexistent/op.jwt").contains("cannot read operator JWT file"));
        assert!(err(&format!("operator: {jwt}\naccounts {{ A {{}} }}")).contains("operator mode"));
        assert!(err(&format!(
            "operator: {jwt}\nauthorization {{ users [ {{user: a}} ] }}"
        ))
        .contains("operator mode"));
        assert!(err(&format!(
            "operator: {jwt}\nauthorization {{ users [ {{user: a}} ] }}\nno_auth_user: a"
        ))
        .contains("operator mode"));

        let c = ok("trusted: [\"OBYEOZQ46VZMFMNETBAW2H6VGDSOBLP67VUEZJ5LPR3PIZBWWRIY4UI4\"]");
        assert_eq!(c.trusted_keys.len(), 1);
        assert!(err("trusted_keys: bogus").contains("not a valid public operator nkey"));
    }

    #[test]
    fn shards_block() {
        let c = ok("shards {\n  count: 4\n  cpus: [0, 2, 4, 6]\n  io_memory: 64MB\n}");
        assert_eq!(
            c.shards,
            ShardsConfig {
                count: Some(4),
                cpus: vec![0, 2, 4, 6],
                io_memory: Some(64 << 20)
            }
        );
        assert_eq!(
            ok("shards { io_memory: \"1GiB\" }").shards.io_memory,
            Some(1 << 30)
        );
        assert_eq!(
            err("shards { count: 2, cpus: [0, 1, 2] }"),
            "<string>:1:17: shards.count: shards count (2) does not match the number of cpus listed (3)"
        );
        assert_eq!(
            err("shards { count: 0 }"),
            "<string>:1:17: shards.count: shards count must be at least 1"
        );
        assert_eq!(
            err("shards { cpus: [1, 1] }"),
            "<string>:1:20: shards.cpus[1]: CPU 1 is listed twice"
        );
        assert!(err("shards { io_memory: \"lots\" }").contains("invalid size \"lots\""));
        assert!(err("shards { cores: 2 }").contains("unknown field \"cores\""));
    }

    #[test]
    fn misc_top_level_keys() {
        let c = ok("server_tags: [\"az:1\", \"ssd\"]\nno_system_account: true\nallow_non_tls: true\nprof_port: 6060\nmax_traced_msg_len: 100\ndisable_sublist_cache: true\nremote_syslog: \"udp://localhost:514\"\nresolver_pinned_accounts: [A]\nconnect_error_reports: 10");
        assert_eq!(c.server_tags, ["az:1", "ssd"]);
        assert!(c.no_system_account && c.allow_non_tls && c.disable_sublist_cache);
        assert_eq!(
            (c.prof_port, c.max_traced_msg_len, c.connect_error_reports),
            (6060, 100, 10)
        );
        assert_eq!(c.remote_syslog.as_deref(), Some("udp://localhost:514"));
        assert_eq!(c.resolver_pinned_accounts, ["A"]);
        let c = ok("default_js_domain: { A: hub }");
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn load_with_includes_and_env() {
        let dir = TempDir::new("load");
        dir.write(
            "auth.conf",
            "authorization {\n  users = [ {user: $NATRIX_CFG_MODEL_USER, password: secret} ]\n}\n",
        );
        let main = dir.write(
            "natrix.conf",
            "port: 4333\ninclude ./auth.conf\nno_auth_user: app\n",
        );
        std::env::set_var("NATRIX_CFG_MODEL_USER", "app");
        let c = crate::config::load(&main).unwrap();
        assert_eq!(c.port, 4333);
        assert_eq!(c.users[0].username.as_deref(), Some("app"));
        let bad = dir.write("bad.conf", "include auth.conf\nno_auth_user: nobody\n");
        let e = crate::config::load(&bad).unwrap_err();
        assert!(e.file.ends_with("bad.conf"));
        assert_eq!((e.line, e.col), (2, 1));
    }
}
