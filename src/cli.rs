//! Command-line flags, spelled as nats-server spells them.
//!
//! The reference uses Go's `flag` package, so every flag may be written with
//! one or two dashes and with its value either as the next argument or after
//! `=`; boolean flags take no value (or `=true`/`=false`). Flags override the
//! config file, so each is kept as an `Option` and applied last.

use std::path::PathBuf;

/// What the command line asks for.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub host: Option<String>,
    pub port: Option<i32>,
    pub server_name: Option<String>,
    pub client_advertise: Option<String>,
    pub config: Option<PathBuf>,
    pub check_config: bool,
    pub http_port: Option<i32>,
    pub https_port: Option<i32>,
    pub http_base_path: Option<String>,
    pub debug: Option<bool>,
    pub trace: Option<bool>,
    pub max_traced_msg_len: Option<usize>,
    pub logtime: Option<bool>,
    pub log_file: Option<PathBuf>,
    pub log_size_limit: Option<u64>,
    pub pid_file: Option<PathBuf>,
    pub ports_file_dir: Option<PathBuf>,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub auth: Option<String>,
    pub shards: Option<usize>,
    pub tls: bool,
    pub tls_verify: bool,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    pub signal: Option<String>,
    pub show_version: bool,
    pub show_help: bool,
    /// Flags of the reference that natrix does not implement, kept to be
    /// refused with a clear message instead of silently ignored.
    pub unsupported: Vec<String>,
    /// Flags that are accepted but have no effect in natrix, each with the
    /// warning to log at start.
    pub warnings: Vec<String>,
}

pub const USAGE: &str = "\
Usage: natrix [options]
       natrix jwt <COMMAND> [OPTIONS]   (operator-mode JWTs; natrix jwt --help)
       natrix explain -c FILE (--user NAME | --nkey KEY) (--pub SUBJ | --sub SUBJ [--queue Q] | --connect [--password P])

Server Options:
    -a, --addr, --net <host>         Bind to host address (default: 0.0.0.0)
    -p, --port <port>                Use port for clients (default: 4222; -1 picks a free port)
    -n, --name
        --server_name <server_name>  Server name (default: auto)
    -P, --pid <file>                 File to store PID
        --client_advertise <string>  Client URL to advertise to other servers
        --ports_file_dir <dir>       Creates a ports file in the specified directory (<executable_name>_<pid>.ports).
    -c, --config <file>              Configuration file
    -t                               Test configuration and exit
    -sl, --signal <signal>[=<pid>]   Send signal to natrix process (ldm, stop, quit, term, reopen, reload)
        --shards <n>                 Number of shards (one pinned executor each; default: one per core)

Monitoring Options:
    -m, --http_port <port>           Use port for http monitoring (-1 picks a free port)
    -ms,--https_port <port>          Use port for https monitoring (needs TLS configured)
        --http_base_path <path>      Serve the monitoring endpoints under this path

Logging Options:
    -l, --log <file>                 File to redirect log output
        --log_size_limit <n>         Logfile size limit in bytes, past which it is rotated
    -T, --logtime                    Timestamp log entries (default: true)
    -D, --debug                      Enable debugging output
    -V, --trace                      Trace the raw protocol
    -DV                              Debug and trace
        --max_traced_msg_len <len>   Maximum printable length for traced messages (default: 0, unlimited)

TLS Options:
        --tls                        Enable TLS, do not verify clients (default: false)
        --tlscert <file>             Server certificate file
        --tlskey <file>              Private key for server certificate
        --tlsverify                  Enable TLS, verify client certificates
        --tlscacert <file>           Client certificate CA for verification

Authorization Options:
        --user <user>                User required for connections
        --pass <password>            Password required for connections
        --auth <token>               Authorization token required for connections

Common Options:
    -h, --help                       Show this message
    -v, --version                    Show version
";

fn parse_bool(flag: &str, v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid boolean value {v:?} for -{flag}")),
    }
}

fn parse_num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("invalid value {v:?} for flag -{flag}: parse error"))
}

/// Flags that take a value.
const VALUE_FLAGS: &[&str] = &[
    "a",
    "addr",
    "net",
    "p",
    "port",
    "n",
    "name",
    "server_name",
    "client_advertise",
    "c",
    "config",
    "m",
    "http_port",
    "ms",
    "https_port",
    "http_base_path",
    "l",
    "log",
    "P",
    "pid",
    "ports_file_dir",
    "user",
    "pass",
    "auth",
    "shards",
    "sl",
    "signal",
    "r",
    "remote_syslog",
    "routes",
    "cluster",
    "cluster_name",
    "cluster_advertise",
    "sd",
    "store_dir",
    "tlscert",
    "tlskey",
    "tlscacert",
    "log_size_limit",
    "max_traced_msg_len",
    "connect_retries",
    "gateway",
];

/// Parses arguments (without the program name).
pub fn parse(args: &[String]) -> Result<Flags, String> {
    let mut f = Flags::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            break;
        }
        let Some(stripped) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            return Err(format!("unexpected argument {arg:?}"));
        };
        let (name, inline) = match stripped.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (stripped, None),
        };
        // Boolean flags: present means true, `=value` sets it.
        let boolean = |inline: &Option<String>| -> Result<bool, String> {
            match inline {
                Some(v) => parse_bool(name, v),
                None => Ok(true),
            }
        };
        match name {
            "D" | "debug" => f.debug = Some(boolean(&inline)?),
            "V" | "trace" | "VV" => f.trace = Some(boolean(&inline)?),
            "DV" | "DVV" => {
                let b = boolean(&inline)?;
                f.debug = Some(b);
                f.trace = Some(b);
            }
            "T" | "logtime" => f.logtime = Some(boolean(&inline)?),
            "t" => f.check_config = boolean(&inline)?,
            "h" | "help" => f.show_help = boolean(&inline)?,
            "v" | "version" => f.show_version = boolean(&inline)?,
            "tls" => f.tls = boolean(&inline)?,
            "tlsverify" => f.tls_verify = boolean(&inline)?,
            "js" | "jetstream" | "s" | "syslog" | "no_advertise" => {
                if boolean(&inline)? {
                    f.unsupported.push(format!("-{name}"));
                }
            }
            _ => {
                if !VALUE_FLAGS.contains(&name) {
                    return Err(format!("flag provided but not defined: -{name}"));
                }
                let value = match inline {
                    Some(v) => v,
                    None => {
                        let v = args
                            .get(i)
                            .cloned()
                            .ok_or_else(|| format!("flag needs an argument: -{name}"))?;
                        i += 1;
                        v
                    }
                };
                match name {
                    "a" | "addr" | "net" => f.host = Some(value),
                    "p" | "port" => f.port = Some(parse_num(name, &value)?),
                    "n" | "name" | "server_name" => f.server_name = Some(value),
                    "client_advertise" => f.client_advertise = Some(value),
                    "c" | "config" => f.config = Some(PathBuf::from(value)),
                    "m" | "http_port" => f.http_port = Some(parse_num(name, &value)?),
                    "ms" | "https_port" => f.https_port = Some(parse_num(name, &value)?),
                    "http_base_path" => f.http_base_path = Some(value),
                    "l" | "log" => f.log_file = Some(PathBuf::from(value)),
                    "log_size_limit" => f.log_size_limit = Some(parse_num(name, &value)?),
                    "P" | "pid" => f.pid_file = Some(PathBuf::from(value)),
                    "ports_file_dir" => f.ports_file_dir = Some(PathBuf::from(value)),
                    "user" => f.user = Some(value),
                    "pass" => f.pass = Some(value),
                    "auth" => f.auth = Some(value),
                    "shards" => f.shards = Some(parse_num(name, &value)?),
                    "tlscert" => f.tls_cert = Some(PathBuf::from(value)),
                    "tlskey" => f.tls_key = Some(PathBuf::from(value)),
                    "tlscacert" => f.tls_ca = Some(PathBuf::from(value)),
                    "sl" | "signal" => f.signal = Some(value),
                    "r" | "remote_syslog" | "routes" | "cluster" | "cluster_name"
                    | "cluster_advertise" | "connect_retries" | "gateway" => {
                        f.unsupported.push(format!("-{name}"))
                    }
                    // As in a config file: without JetStream, which only the
                    // flag -js enables, the reference keeps the directory and
                    // never uses it.
                    "sd" | "store_dir" => f.warnings.push(format!(
                        "-{name} is only used by JetStream, which natrix does not support; ignored"
                    )),
                    "max_traced_msg_len" => {
                        // As the reference: 0 or less means no limit.
                        let n: i64 = parse_num(name, &value)?;
                        f.max_traced_msg_len = Some(usize::try_from(n).unwrap_or(0))
                    }
                    _ => unreachable!("every name in VALUE_FLAGS is handled"),
                }
            }
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<Flags, String> {
        parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn dash_styles() {
        let f = p(&[
            "-p",
            "-1",
            "--addr=127.0.0.1",
            "-DV",
            "--ports_file_dir",
            "/tmp",
        ])
        .unwrap();
        assert_eq!(f.port, Some(-1));
        assert_eq!(f.host.as_deref(), Some("127.0.0.1"));
        assert_eq!(f.debug, Some(true));
        assert_eq!(f.trace, Some(true));
        assert_eq!(f.ports_file_dir, Some(PathBuf::from("/tmp")));
    }

    #[test]
    fn booleans_take_inline_values() {
        let f = p(&["-T=false", "--debug=true"]).unwrap();
        assert_eq!(f.logtime, Some(false));
        assert_eq!(f.debug, Some(true));
        assert!(p(&["-D=maybe"]).is_err());
    }

    #[test]
    fn errors_name_the_flag() {
        assert_eq!(
            p(&["-bogus"]).unwrap_err(),
            "flag provided but not defined: -bogus"
        );
        assert_eq!(p(&["-p"]).unwrap_err(), "flag needs an argument: -p");
        assert!(p(&["-p", "x"]).unwrap_err().contains("-p"));
    }

    #[test]
    fn store_dir_is_accepted_with_a_warning() {
        let f = p(&["--store_dir", "/tmp/s", "-p", "-1"]).unwrap();
        assert!(f.unsupported.is_empty());
        assert_eq!(f.port, Some(-1));
        assert_eq!(f.warnings.len(), 1);
        assert!(f.warnings[0].starts_with("-store_dir is only used by JetStream"));
        let f = p(&["-sd=/tmp/s", "-js"]).unwrap();
        assert_eq!(f.unsupported, vec!["-js".to_string()]);
    }

    #[test]
    fn log_size_limit_flag_takes_bytes() {
        let f = p(&["-l", "/tmp/x.log", "--log_size_limit", "1000"]).unwrap();
        assert_eq!(f.log_size_limit, Some(1000));
        assert!(f.unsupported.is_empty());
        assert!(p(&["--log_size_limit", "big"]).is_err());
    }

    #[test]
    fn max_traced_msg_len_flag_takes_a_length() {
        let f = p(&["-V", "--max_traced_msg_len", "64"]).unwrap();
        assert_eq!((f.trace, f.max_traced_msg_len), (Some(true), Some(64)));
        assert!(f.unsupported.is_empty());
        let f = p(&["--max_traced_msg_len", "-1"]).unwrap();
        assert_eq!(f.max_traced_msg_len, Some(0));
        assert!(p(&["--max_traced_msg_len", "x"]).is_err());
    }

    #[test]
    fn unsupported_flags_are_kept() {
        let f = p(&["--routes", "nats://x:1", "-js"]).unwrap();
        assert_eq!(
            f.unsupported,
            vec!["-routes".to_string(), "-js".to_string()]
        );
    }
}
