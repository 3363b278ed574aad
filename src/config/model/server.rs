//! Top-level server options: listeners, limits, logging, monitoring and
//! lame-duck timing, and the checks and defaults applied once the whole tree
//! has been read.
//!
//! Invariants: `TOP_KEYS` lists exactly the keys `Builder::top_entry`
//! handles (or refuses); anything else is an unknown field, with suggestions
//! drawn from that list, so the two must stay in step. `Builder::finish`
//! runs the checks that span keys and sections first, then replaces the
//! zeros the reference treats as "use the default", then checks
//! `max_payload` against `max_pending` and the lame-duck grace period
//! against the duration on the final values, so the `ServerConfig` it leaves
//! is ready to use.

use std::path::PathBuf;
use std::time::Duration;

use super::operator::{operators, resolver_cache, resolver_preload, ResolverCache};
use super::refused::{
    cluster, gateway, jetstream, leafnodes, mqtt, refuse_mappings, refuse_ocsp, websocket,
};
use super::shards::shards;
use super::tls::tls;
use super::{
    duration_from_ns, duration_str, listen, port, Account, Authorization, Builder, Field,
    OperatorSource, Resolver, ShardsConfig, Spot, TlsConfig, User, DEFAULT_AUTH_TIMEOUT,
    DEFAULT_CONNECT_ERROR_REPORTS, DEFAULT_HOST, DEFAULT_LAME_DUCK_DURATION,
    DEFAULT_LAME_DUCK_GRACE_PERIOD, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONTROL_LINE,
    DEFAULT_MAX_PAYLOAD, DEFAULT_MAX_PENDING, DEFAULT_PING_INTERVAL, DEFAULT_PING_MAX,
    DEFAULT_PORT, DEFAULT_RECONNECT_ERROR_REPORTS, DEFAULT_WRITE_DEADLINE, MIN_LAME_DUCK_DURATION,
};
use crate::config::check::{is_valid_public_nkey, parse_go_duration, show_duration, NkeyKind};
use crate::config::{ConfigError, Value};
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
    /// Set when `https`/`https_port` is given without a `tls` block: the
    /// error, naming file, line and key, for when no `--tls` flag supplies
    /// TLS either (flags are applied after the file).
    pub https_without_tls: Option<String>,

    /// The `authorization` block (global account credentials and defaults).
    pub authorization: Authorization,
    /// Every configured user: those of `authorization.users` (account
    /// [`GLOBAL_ACCOUNT`](super::GLOBAL_ACCOUNT)) and those of each
    /// account, with effective permissions (the block's
    /// `default_permissions` already applied).
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
    /// natrix-only: the in-memory cache in front of a URL or directory
    /// resolver (`None`: the defaults).
    pub resolver_cache: Option<ResolverCache>,

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
            https_without_tls: None,
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
            resolver_cache: None,
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
    "resolver_cache",
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

impl Builder {
    pub(super) fn top_entry(
        &mut self,
        cfg: &mut ServerConfig,
        f: &Field<'_>,
    ) -> Result<(), ConfigError> {
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
                self.remember("https_port", f);
                let (host, port) = listen(n)?;
                if let Some(h) = host {
                    self.remember("http_host", f);
                    cfg.http_host = h;
                }
                cfg.https_port = port;
            }
            "http_port" | "monitor_port" => cfg.http_port = port(n)?,
            "https_port" => {
                self.remember("https_port", f);
                cfg.https_port = port(n)?;
            }
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
            "resolver_cache" => cfg.resolver_cache = Some(resolver_cache(n)?),
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

    /// Checks that involve several keys, then derived defaults.
    pub(super) fn finish(&mut self, cfg: &mut ServerConfig) -> Result<(), ConfigError> {
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
        if cfg.https_port != 0 && cfg.tls.is_none() {
            let e = self
                .spot("https_port")
                .err("HTTPS monitoring needs TLS: add a tls block with cert_file and key_file");
            cfg.https_without_tls = Some(e.to_string());
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::test_support::{err, ok, secs};
    use crate::config::test_util::TempDir;

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
