//! The options a running server uses, after defaults, config file and flags
//! have been merged (flags win, as in the reference).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::proto::encode::ServerInfo;
use crate::security::account::Security;
use crate::security::tls::TlsSettings;

/// Defaults from the reference (server/const.go).
pub const DEFAULT_PORT: i32 = 4222;
pub const DEFAULT_HOST: &str = "0.0.0.0";
pub const MAX_PAYLOAD: usize = 1024 * 1024;
pub const MAX_CONTROL_LINE: usize = 4096;
pub const MAX_PENDING: usize = 64 * 1024 * 1024;
pub const MAX_CONNECTIONS: usize = 64 * 1024;
pub const PING_INTERVAL: Duration = Duration::from_secs(120);
pub const PING_MAX: u32 = 2;
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(2);
pub const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// The protocol feature level natrix implements, advertised in INFO so
/// clients enable the same features they would with the reference.
pub const SERVER_VERSION: &str = "2.9.10";
/// Per-shard glommio I/O memory: small enough for an 8 MiB memlock limit
/// with several shards, since natrix does no file I/O through it.
pub const IO_MEMORY: usize = 512 * 1024;

#[derive(Clone, Debug)]
pub struct Options {
    pub host: String,
    /// -1 or 0 asks the OS for a free port.
    pub port: i32,
    pub server_name: Option<String>,
    pub client_advertise: Option<String>,
    pub max_connections: usize,
    pub max_payload: usize,
    pub max_pending: usize,
    pub max_control_line: usize,
    /// 0 means unlimited.
    pub max_subscriptions: usize,
    /// `max_sub_tokens`: the most tokens a subscription's subject may
    /// have (0: no limit).
    pub max_sub_tokens: u8,
    /// `no_header_support`: INFO says `headers: false` and clients cannot
    /// turn headers on.
    pub no_header_support: bool,
    /// `allow_non_tls`: with TLS configured, clients may also stay plain
    /// (INFO says `tls_available`; the first byte decides).
    pub allow_non_tls: bool,
    pub ping_interval: Duration,
    pub ping_max: u32,
    pub write_deadline: Duration,
    pub auth_timeout: Duration,
    pub lame_duck_duration: Duration,
    pub lame_duck_grace_period: Duration,
    pub debug: bool,
    pub trace: bool,
    /// `max_traced_msg_len`: traced message bodies are cut past this many
    /// bytes (0: never).
    pub max_traced_msg_len: usize,
    pub logtime: bool,
    pub log_file: Option<PathBuf>,
    /// `log_size_limit`: rotate the log file past this many bytes (0: never).
    pub log_size_limit: u64,
    pub pid_file: Option<PathBuf>,
    pub ports_file_dir: Option<PathBuf>,
    /// Number of shards; 0 means one per available core.
    pub shards: usize,
    /// CPUs to pin shards to, in order; empty pins shard i to the i-th
    /// available core.
    pub shard_cpus: Vec<usize>,
    /// `shards.pin`: false leaves every shard unpinned, true pins each;
    /// `None` decides by the CPUs to spare (see [`crate::config::ShardsConfig`]).
    pub shard_pin: Option<bool>,
    pub io_memory: usize,
    /// How long an idle shard polls before it sleeps (`shards.spin`).
    pub shard_spin: std::time::Duration,
    pub config_file: Option<PathBuf>,
    /// Authentication and account routing; shared read-only by the shards,
    /// replaced as a whole on reload.
    pub security: Arc<Security>,
    /// TLS for client connections; certificate files are read when the
    /// options are built (start and reload).
    pub tls: Option<Arc<TlsSettings>>,
    /// Monitoring listener address; None follows `host`.
    pub http_host: Option<String>,
    /// Monitoring ports; 0 is off, -1 picks a free port.
    pub http_port: i32,
    pub https_port: i32,
    pub http_base_path: String,
    /// The config file's error for `https_port` without TLS, reported if
    /// the flags do not supply TLS either.
    pub https_config_error: Option<String>,
    /// `server_tags`, as the reference keeps them: trimmed, lower case.
    pub server_tags: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            host: DEFAULT_HOST.to_string(),
            port: DEFAULT_PORT,
            server_name: None,
            client_advertise: None,
            max_connections: MAX_CONNECTIONS,
            max_payload: MAX_PAYLOAD,
            max_pending: MAX_PENDING,
            max_control_line: MAX_CONTROL_LINE,
            max_subscriptions: 0,
            ping_interval: PING_INTERVAL,
            ping_max: PING_MAX,
            write_deadline: WRITE_DEADLINE,
            auth_timeout: AUTH_TIMEOUT,
            lame_duck_duration: Duration::from_secs(120),
            lame_duck_grace_period: Duration::from_secs(10),
            debug: false,
            trace: false,
            max_traced_msg_len: 0,
            logtime: true,
            log_file: None,
            log_size_limit: 0,
            pid_file: None,
            ports_file_dir: None,
            shards: 0,
            shard_cpus: Vec::new(),
            shard_pin: None,
            io_memory: IO_MEMORY,
            shard_spin: std::time::Duration::ZERO,
            max_sub_tokens: 0,
            no_header_support: false,
            allow_non_tls: false,
            config_file: None,
            // As the reference: a default system account unless opted out.
            security: Arc::new(Security {
                system_account: Some(crate::config::SYSTEM_ACCOUNT.to_string()),
                ..Security::default()
            }),
            tls: None,
            http_host: None,
            http_port: 0,
            https_port: 0,
            http_base_path: String::new(),
            https_config_error: None,
            server_tags: Vec::new(),
        }
    }
}

impl Options {
    /// Options from a parsed config file, before flags are applied.
    /// Refuses settings natrix cannot honour, naming them, rather than
    /// running with part of the file's meaning silently dropped.
    pub fn from_config(
        c: &crate::config::ServerConfig,
        path: &std::path::Path,
    ) -> Result<Options, String> {
        let unsupported = |what: &str| {
            Err(format!(
                "{}: {what} is not supported by natrix yet",
                path.display()
            ))
        };
        if c.syslog || c.remote_syslog.is_some() {
            return unsupported("syslog");
        }
        let nonneg = |v: i64, default: usize| if v > 0 { v as usize } else { default };
        Ok(Options {
            host: c.host.clone(),
            port: c.port,
            server_name: c.server_name.clone(),
            client_advertise: c.client_advertise.clone(),
            max_connections: nonneg(c.max_connections.into(), MAX_CONNECTIONS),
            max_payload: nonneg(c.max_payload.into(), MAX_PAYLOAD),
            max_pending: nonneg(c.max_pending, MAX_PENDING),
            max_control_line: nonneg(c.max_control_line.into(), MAX_CONTROL_LINE),
            max_subscriptions: c.max_subscriptions.max(0) as usize,
            ping_interval: c.ping_interval,
            ping_max: c.ping_max.max(0) as u32,
            write_deadline: c.write_deadline,
            auth_timeout: c.authorization.timeout,
            lame_duck_duration: c.lame_duck_duration,
            lame_duck_grace_period: c.lame_duck_grace_period,
            debug: c.debug,
            trace: c.trace || c.trace_verbose,
            max_traced_msg_len: usize::try_from(c.max_traced_msg_len).unwrap_or(0),
            logtime: c.logtime,
            log_file: c.log_file.clone(),
            log_size_limit: c.log_size_limit.max(0) as u64,
            pid_file: c.pid_file.clone(),
            ports_file_dir: c.ports_file_dir.clone(),
            shards: c.shards.count.unwrap_or(if c.shards.cpus.is_empty() {
                0
            } else {
                c.shards.cpus.len()
            }),
            shard_cpus: c.shards.cpus.clone(),
            shard_pin: c.shards.pin,
            io_memory: c.shards.io_memory.map_or(IO_MEMORY, |m| m as usize),
            shard_spin: c.shards.spin,
            max_sub_tokens: c.max_sub_tokens,
            no_header_support: c.no_header_support,
            allow_non_tls: c.allow_non_tls,
            config_file: Some(path.to_path_buf()),
            security: Arc::new(
                Security::from_config(c).map_err(|e| format!("{}: {e}", path.display()))?,
            ),
            tls: match &c.tls {
                Some(t) => Some(Arc::new(TlsSettings::from_config(t)?)),
                None => None,
            },
            http_host: (c.http_host != c.host).then(|| c.http_host.clone()),
            http_port: c.http_port,
            https_port: c.https_port,
            http_base_path: c.http_base_path.clone(),
            https_config_error: c.https_without_tls.clone(),
            server_tags: c
                .server_tags
                .iter()
                .map(|t| t.trim().to_lowercase())
                .collect(),
        })
    }

    /// `max_subscriptions` as a per-connection limit: -1 for none (the
    /// option's 0).
    pub fn subs_limit(&self) -> i64 {
        match self.max_subscriptions {
            0 => -1,
            n => n as i64,
        }
    }

    /// The system account: configured, the operator's, or the default
    /// `$SYS` (none with `no_system_account`).
    pub fn system_account(&self) -> Option<String> {
        self.security.system_account.clone()
    }

    /// The monitoring listener's host.
    pub fn monitor_host(&self) -> String {
        self.http_host.clone().unwrap_or_else(|| self.host.clone())
    }

    /// The INFO fields these options decide, for a new server and again
    /// on reload.
    pub fn apply_to_info(&self, i: &mut ServerInfo) {
        i.headers = !self.no_header_support;
        i.auth_required = self.security.auth.required();
        i.tls_required = self.tls.is_some() && !self.allow_non_tls;
        i.tls_verify = self.tls.as_ref().is_some_and(|t| t.verify);
        i.tls_available = self.tls.is_some() && self.allow_non_tls;
        i.max_payload = self.max_payload as i64;
    }

    /// Settings that cannot work together, found once flags are applied.
    pub fn validate(&self) -> Result<(), String> {
        if self.https_port != 0 && self.tls.is_none() {
            if let Some(e) = &self.https_config_error {
                return Err(e.clone());
            }
            return Err(
                "https_port: HTTPS monitoring needs TLS configured (a tls block or --tls flags)"
                    .into(),
            );
        }
        Ok(())
    }

    /// Why `new` cannot replace `self` by a reload, if it cannot: the
    /// listener and the shard layout are fixed for the life of the process.
    pub fn reload_refusal(&self, new: &Options) -> Option<String> {
        let fixed: [(&str, bool); 11] = [
            ("host", self.host != new.host),
            ("port", self.port != new.port),
            ("http_host", self.http_host != new.http_host),
            ("http_port", self.http_port != new.http_port),
            ("https_port", self.https_port != new.https_port),
            ("http_base_path", self.http_base_path != new.http_base_path),
            ("shards.count", self.shards != new.shards),
            ("shards.cpus", self.shard_cpus != new.shard_cpus),
            ("shards.pin", self.shard_pin != new.shard_pin),
            ("shards.io_memory", self.io_memory != new.io_memory),
            ("shards.spin", self.shard_spin != new.shard_spin),
        ];
        fixed
            .iter()
            .find(|(_, changed)| *changed)
            .map(|(k, _)| format!("config reload not supported for {k}"))
    }
}
