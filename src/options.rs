//! The options a running server uses, after defaults, config file and flags
//! have been merged (flags win, as in the reference).

use std::path::PathBuf;
use std::time::Duration;

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
    pub ping_interval: Duration,
    pub ping_max: u32,
    pub write_deadline: Duration,
    pub auth_timeout: Duration,
    pub lame_duck_duration: Duration,
    pub debug: bool,
    pub trace: bool,
    pub logtime: bool,
    pub log_file: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub ports_file_dir: Option<PathBuf>,
    /// Number of shards; 0 means one per available core.
    pub shards: usize,
    /// CPUs to pin shards to, in order; empty pins shard i to the i-th
    /// available core.
    pub shard_cpus: Vec<usize>,
    pub io_memory: usize,
    pub config_file: Option<PathBuf>,
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
            debug: false,
            trace: false,
            logtime: true,
            log_file: None,
            pid_file: None,
            ports_file_dir: None,
            shards: 0,
            shard_cpus: Vec::new(),
            io_memory: IO_MEMORY,
            config_file: None,
        }
    }
}
