//! Server processes under test: configuration files, launch, readiness,
//! memory sampling and shutdown.

use std::fs::{self, File};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{bail, Context, Result};
use crate::jwt::{OperatorConfig, Resolver};
use crate::tls::{conf_string, ServerCerts};

pub const BENCH_USER: &str = "bench";
pub const BENCH_PASS: &str = "bench";

/// How to launch one of the two servers being compared.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    /// "natrix" or "reference": the column the results land in.
    pub label: &'static str,
    pub path: PathBuf,
    /// Flags only this server understands (e.g. `--shards`).
    pub extra_args: Vec<String>,
    /// `taskset -c` CPU list, if servers are pinned.
    pub cpus: Option<String>,
    /// Extra environment (e.g. `GOMAXPROCS` for the reference).
    pub env: Vec<(String, String)>,
    /// The binary accepts natrix's `--shards` (a nats-server does not, and
    /// refuses to start with it).
    pub takes_shards: bool,
}

impl ServerSpec {
    /// This spec with `--shards n` (replacing any given), if the binary
    /// takes it; otherwise unchanged.
    pub fn with_shards(&self, n: usize) -> ServerSpec {
        let mut spec = self.clone();
        if !spec.takes_shards {
            return spec;
        }
        let mut args = Vec::with_capacity(spec.extra_args.len() + 2);
        let mut it = spec.extra_args.iter();
        while let Some(a) = it.next() {
            if a == "--shards" {
                it.next();
            } else if !a.starts_with("--shards=") {
                args.push(a.clone());
            }
        }
        args.extend(["--shards".to_string(), n.to_string()]);
        spec.extra_args = args;
        spec
    }
}

/// The per-scenario configuration file, written fresh for every scenario.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerConfig {
    pub auth: Option<Permissions>,
    /// Require TLS on client connections with this certificate and key.
    pub tls: Option<ServerCerts>,
    /// Operator mode: trust this operator and look accounts up in its
    /// resolver.
    pub operator: Option<OperatorConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

impl Permissions {
    /// Twenty publish and twenty subscribe rules in the shapes real
    /// deployments use (literals, `*`, `>`), with the benchmark's own
    /// subjects last so a linear matcher would have to walk the whole list.
    pub fn bench_set(bench_subjects: &[&str]) -> Permissions {
        const OTHERS: [&str; 19] = [
            "orders.*.created",
            "orders.*.updated",
            "orders.*.cancelled",
            "payments.>",
            "inventory.*.reserved",
            "inventory.*.released",
            "users.*.profile.changed",
            "audit.>",
            "metrics.host.*.cpu",
            "metrics.host.*.mem",
            "logs.app.*.error",
            "logs.app.*.warn",
            "svc.billing.*",
            "svc.search.query",
            "svc.search.index.*",
            "events.*.*.v1",
            "tenant.acme.>",
            "tenant.globex.>",
            "_INBOX.>",
        ];
        let rules = |n: usize| -> Vec<String> {
            let mut r: Vec<String> = OTHERS.iter().take(20 - n).map(|s| s.to_string()).collect();
            r.extend(bench_subjects.iter().map(|s| s.to_string()));
            r
        };
        Permissions {
            publish: rules(bench_subjects.len()),
            subscribe: rules(bench_subjects.len()),
        }
    }
}

impl ServerConfig {
    /// NATS configuration syntax, accepted by nats-server and natrix alike
    /// except where `natrix` is set: natrix's copy may then carry
    /// natrix-only settings (`resolver_cache`). Address and port are passed
    /// on the command line, not here.
    pub fn render(&self, title: &str, natrix: bool) -> String {
        let mut out = format!("# natrix-bench: {title}\n");
        if let Some(p) = &self.auth {
            let list = |v: &[String]| {
                v.iter()
                    .map(|s| format!("\"{s}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.push_str(&format!(
                concat!(
                    "authorization {{\n",
                    "  users = [\n",
                    "    {{user: {user}, password: {pass}, permissions: {{\n",
                    "      publish: {{ allow: [{publish}] }}\n",
                    "      subscribe: {{ allow: [{subscribe}] }}\n",
                    "    }}}}\n",
                    "  ]\n",
                    "}}\n"
                ),
                user = BENCH_USER,
                pass = BENCH_PASS,
                publish = list(&p.publish),
                subscribe = list(&p.subscribe),
            ));
        }
        if let Some(op) = &self.operator {
            // The JWTs go in inline (both servers take a JWT where a file
            // name may stand); base64url and dots are safe in quotes.
            out.push_str(&format!("operator: \"{}\"\n", op.operator_jwt));
            if let Some(sys) = &op.system_account {
                out.push_str(&format!("system_account: {sys}\n"));
            }
            match &op.resolver {
                Resolver::Memory(preload) => {
                    out.push_str("resolver: MEMORY\nresolver_preload: {\n");
                    for (account, jwt) in preload {
                        out.push_str(&format!("  {account}: \"{jwt}\"\n"));
                    }
                    out.push_str("}\n");
                }
                Resolver::Url { base, natrix_cache } => {
                    out.push_str(&format!("resolver: URL({base})\n"));
                    if natrix && !natrix_cache {
                        out.push_str("resolver_cache: false\n");
                    }
                }
            }
        }
        if let Some(t) = &self.tls {
            out.push_str(&format!(
                "tls {{\n  cert_file: {}\n  key_file: {}\n}}\n",
                conf_string(&t.cert_file),
                conf_string(&t.key_file)
            ));
        }
        out
    }
}

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// The HTTP monitoring port, when the scenario asked for one.
    pub monitor_port: Option<u16>,
    log: PathBuf,
}

impl Server {
    /// Launches the server on a free loopback port (and with `monitor`,
    /// HTTP monitoring on another) and waits until it greets a client with
    /// `INFO`.
    pub fn start(spec: &ServerSpec, config: &Path, log: &Path, monitor: bool) -> Result<Server> {
        let port = free_port()?;
        let monitor_port = if monitor { Some(free_port()?) } else { None };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut cmd = match &spec.cpus {
            // taskset execs the server, so the child pid is the server's.
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpus).arg(&spec.path);
                c
            }
            None => Command::new(&spec.path),
        };
        cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-c"])
            .arg(config)
            .args(
                monitor_port
                    .iter()
                    .flat_map(|p| ["-m".to_string(), p.to_string()]),
            )
            .args(&spec.extra_args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)));
        let log_file = File::create(log).context(format_args!("create {}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        let child = cmd
            .spawn()
            .context(format_args!("spawn {}", spec.path.display()))?;
        let mut server = Server {
            child,
            addr,
            monitor_port,
            log: log.to_path_buf(),
        };
        server.wait_ready(Instant::now() + Duration::from_secs(10))?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self, deadline: Instant) -> Result<()> {
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "server exited during startup ({status}); log tail:\n{}",
                    self.log_tail()
                );
            }
            if let Ok(mut s) = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)) {
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                let mut hello = [0u8; 5];
                if s.read_exact(&mut hello).is_ok() && hello.eq_ignore_ascii_case(b"INFO ") {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "server not ready on {} after 10 s; log tail:\n{}",
                    self.addr,
                    self.log_tail()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident set size from /proc/PID/status (VmRSS), in bytes.
    pub fn rss_bytes(&self) -> Result<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        parse_vmrss(&status).ok_or_else(|| "no VmRSS in /proc status".into())
    }

    /// Returns an error if the server died during a scenario, so a crash is
    /// reported as such rather than as a client-side timeout.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            Some(status) => bail!("server exited ({status}); log tail:\n{}", self.log_tail()),
            None => Ok(()),
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within two seconds.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

#[cfg(test)]
impl Server {
    /// A stand-in process (`sleep`) for tests whose protocol server runs
    /// in-process at `addr`: liveness and RSS checks then read the
    /// stand-in.
    pub fn stand_in(addr: SocketAddr) -> Server {
        let child = Command::new("sleep")
            .arg("300")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        Server {
            child,
            addr,
            monitor_port: None,
            log: PathBuf::from("/dev/null"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.terminate();
    }
}

pub fn parse_vmrss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line.split_whitespace().skip(1);
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(value * 1024),
        _ => None,
    }
}

/// Asks the kernel for an unused port. Another process could take it
/// before the server binds; startup then fails loudly rather than silently.
fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Whether `path --help` mentions `--shards`, i.e. the binary is natrix
/// rather than a nats-server standing in for it.
pub fn takes_shards(path: &Path) -> bool {
    probe_output(path, "--help").contains("--shards")
}

/// Runs `path --version` with a time bound. Servers that do not know the
/// flag may start serving instead of exiting, so the probe is killed after a
/// second either way.
pub fn probe_version(path: &Path) -> String {
    let text = probe_output(path, "--version");
    if text.starts_with("unknown") {
        return text;
    }
    match text.lines().next().map(str::trim) {
        Some(line) if !line.is_empty() && line.len() < 120 => line.to_string(),
        _ => "unknown".into(),
    }
}

/// Output of `path flag` (stdout, or stderr if stdout is empty), killed
/// after a second either way.
fn probe_output(path: &Path, flag: &str) -> String {
    let Ok(mut child) = Command::new(path)
        .arg(flag)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        return "unknown (not runnable)".into();
    };
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let Ok(out) = child.wait_with_output() else {
        return "unknown".into();
    };
    String::from_utf8_lossy(if out.stdout.is_empty() {
        &out.stderr
    } else {
        &out.stdout
    })
    .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_set_has_twenty_rules_ending_with_bench_subjects() {
        let p = Permissions::bench_set(&["bench.data"]);
        assert_eq!(p.publish.len(), 20);
        assert_eq!(p.subscribe.len(), 20);
        assert_eq!(p.publish.last().unwrap(), "bench.data");
        let p = Permissions::bench_set(&["bench.req", "bench.reply"]);
        assert_eq!(p.publish.len(), 20);
        assert_eq!(&p.publish[18..], ["bench.req", "bench.reply"]);
    }

    #[test]
    fn renders_auth_config() {
        let cfg = ServerConfig {
            auth: Some(Permissions::bench_set(&["bench.data"])),
            tls: None,
            operator: None,
        };
        let text = cfg.render("pub_16b_auth", false);
        assert!(text.starts_with("# natrix-bench: pub_16b_auth\n"));
        assert!(text.contains("authorization {"));
        assert!(text.contains("{user: bench, password: bench, permissions: {"));
        assert!(text.contains("publish: { allow: [\"orders.*.created\", "));
        assert!(text.contains("\"bench.data\"] }"));
        assert_eq!(text.matches('{').count(), text.matches('}').count());
        assert_eq!(
            ServerConfig::default().render("x", true),
            "# natrix-bench: x\n"
        );
        assert_eq!(cfg.render("y", true), cfg.render("y", false));
    }

    #[test]
    fn renders_tls_config() {
        let cfg = ServerConfig {
            auth: None,
            tls: Some(ServerCerts {
                cert_file: "/out/tls/server-cert.pem".into(),
                key_file: "/out/tls/server-key.pem".into(),
            }),
            operator: None,
        };
        assert_eq!(
            cfg.render("pub_256b_tls", true),
            "# natrix-bench: pub_256b_tls\n\
             tls {\n  cert_file: \"/out/tls/server-cert.pem\"\n  \
             key_file: \"/out/tls/server-key.pem\"\n}\n"
        );
    }

    #[test]
    fn renders_operator_config() {
        let cfg = ServerConfig {
            operator: Some(OperatorConfig {
                operator_jwt: "eyJop.eyJc.sig".into(),
                system_account: None,
                resolver: Resolver::Memory(vec![("ACCPUB".into(), "eyJacc.eyJc.sig".into())]),
            }),
            ..ServerConfig::default()
        };
        assert_eq!(
            cfg.render("conn_storm_jwt", false),
            "# natrix-bench: conn_storm_jwt\n\
             operator: \"eyJop.eyJc.sig\"\n\
             resolver: MEMORY\n\
             resolver_preload: {\n  ACCPUB: \"eyJacc.eyJc.sig\"\n}\n"
        );
        let mut cfg = cfg;
        cfg.operator.as_mut().unwrap().system_account = Some("ASYS".into());
        assert!(cfg
            .render("x", false)
            .contains("\nsystem_account: ASYS\nresolver: MEMORY\n"));
    }

    #[test]
    fn url_resolver_cache_is_turned_off_only_in_natrix_config() {
        let op = |natrix_cache| OperatorConfig {
            operator_jwt: "eyJop.eyJc.sig".into(),
            system_account: None,
            resolver: Resolver::Url {
                base: "http://127.0.0.1:4567/jwt/v1/accounts/".into(),
                natrix_cache,
            },
        };
        let cfg = |natrix_cache| ServerConfig {
            operator: Some(op(natrix_cache)),
            ..ServerConfig::default()
        };
        let shared = "# natrix-bench: u\n\
                      operator: \"eyJop.eyJc.sig\"\n\
                      resolver: URL(http://127.0.0.1:4567/jwt/v1/accounts/)\n";
        assert_eq!(cfg(true).render("u", true), shared);
        assert_eq!(cfg(true).render("u", false), shared);
        assert_eq!(cfg(false).render("u", false), shared);
        assert_eq!(
            cfg(false).render("u", true),
            format!("{shared}resolver_cache: false\n")
        );
    }

    #[test]
    fn shards_flag_only_for_binaries_that_take_it() {
        let natrix = ServerSpec {
            label: "natrix",
            path: "/x/natrix".into(),
            extra_args: vec!["--shards".into(), "4".into(), "-D".into()],
            cpus: None,
            env: Vec::new(),
            takes_shards: true,
        };
        assert_eq!(natrix.with_shards(1).extra_args, ["-D", "--shards", "1"]);
        let stand_in = ServerSpec {
            takes_shards: false,
            extra_args: Vec::new(),
            ..natrix
        };
        assert!(stand_in.with_shards(1).extra_args.is_empty());
    }

    #[test]
    fn parses_vmrss() {
        let status = "Name:\tnats-server\nVmPeak:\t  100 kB\nVmRSS:\t   12345 kB\nThreads: 9\n";
        assert_eq!(parse_vmrss(status), Some(12345 * 1024));
        assert_eq!(parse_vmrss("Name: x\n"), None);
    }
}
