//! Shared black-box test harness: start a server binary, talk to it over raw TCP.
//!
//! The binary is `$NATRIX_TEST_BIN` when set (e.g. `/usr/sbin/nats-server`), else the
//! `natrix` binary built by cargo. Everything here is bounded in time.
#![allow(dead_code)]

pub mod http;
pub mod jwt;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Default wait for a single expected line / byte run.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Path of the server binary under test.
pub fn server_bin() -> String {
    std::env::var("NATRIX_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_natrix").to_string())
}

/// True when the binary under test is natrix: anything whose file name does not
/// contain `nats-server` (the reference).
pub fn is_natrix() -> bool {
    let bin = server_bin();
    let name = Path::new(&bin)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or(bin);
    !name.contains("nats-server")
}

/// `["--shards", "N"]` for natrix; nothing for the reference, which has no such flag.
/// On a fresh natrix with N shards, connection k (in accept order) lands on shard
/// k mod N (least connections, ties round-robin), which tests use to force cross-shard
/// traffic.
pub fn shard_flags(n: usize) -> Vec<String> {
    if is_natrix() {
        vec!["--shards".to_string(), n.to_string()]
    } else {
        Vec::new()
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique, self-removing temporary directory (no extra crates).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!(
            "natrix-itest-{}-{}-{}-{}",
            tag,
            std::process::id(),
            n,
            nanos
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A running server process. Killed and reaped on drop.
pub struct Server {
    child: Child,
    port: u16,
    dir: TempDir,
    log_path: PathBuf,
    conf_path: Option<PathBuf>,
}

/// Options for `Server::start_with`; `Launch { conf: Some(..), ..Launch::default() }`.
#[derive(Default, Clone, Copy)]
pub struct Launch<'a> {
    /// Config text, written to `server.conf` in the server's temp dir and passed as `-c`.
    pub conf: Option<&'a str>,
    /// Extra files `(relative name, text)` written into the same dir (sub dirs allowed).
    pub files: &'a [(&'a str, &'a str)],
    /// Environment variables set on the child.
    pub env: &'a [(&'a str, &'a str)],
    /// Flags after the harness's `-a 127.0.0.1 -p -1 --ports_file_dir DIR`.
    pub args: &'a [&'a str],
}

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("create dir for extra file");
    }
    std::fs::write(&p, text).expect("write extra file");
    p
}

/// Outcome of running the server binary to completion (`-t`, or a start that must fail).
#[derive(Debug)]
pub struct Exit {
    /// `Some(code)`; `None` if killed by a signal.
    pub code: Option<i32>,
    /// stdout and stderr together.
    pub output: String,
    /// Path the main config file had (removed by the time the caller sees it).
    pub conf_path: PathBuf,
}

impl Exit {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Write `conf_text` as `conf_name` (and `files`) into a fresh temp dir and run the server
/// binary with `-c DIR/conf_name` followed by `args`, expecting it to exit by itself within `limit` (e.g. `-t`,
/// or a config that must be refused at start). Panics if it is still running by then.
/// The harness listen flags (`-a 127.0.0.1 -p -1`) are passed too, so a start that
/// unexpectedly succeeds never touches a fixed port.
pub fn run_to_exit(
    conf_name: &str,
    conf_text: &str,
    files: &[(&str, &str)],
    args: &[&str],
    limit: Duration,
) -> Exit {
    let dir = TempDir::new("exit");
    for (name, text) in files {
        write_file(dir.path(), name, text);
    }
    let conf_path = write_file(dir.path(), conf_name, conf_text);
    let out_path = dir.path().join("output.txt");
    let out = std::fs::File::create(&out_path).expect("create output file");
    let err = out.try_clone().expect("clone output file");
    let mut child = Command::new(server_bin())
        .arg("-c")
        .arg(&conf_path)
        .args(["-a", "127.0.0.1", "-p", "-1"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn server {}: {e}", server_bin()));
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "server did not exit within {limit:?} (args {args:?}); output:\n{}",
                    std::fs::read_to_string(&out_path).unwrap_or_default()
                );
            }
        }
    };
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    // The temp dir (and so conf_path) is removed on return; the path is for messages.
    Exit {
        code: status.code(),
        output,
        conf_path,
    }
}

/// Poll `cond` every 20 ms until it is true or `limit` passes; returns the last result.
pub fn wait_until<F: FnMut() -> bool>(limit: Duration, mut cond: F) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Server {
    /// Start with only the harness flags plus `extra_args`.
    pub fn start(extra_args: &[&str]) -> Server {
        Self::launch(None, extra_args)
    }

    /// Write `conf_text` to a config file in a fresh temp dir and start with `-c FILE`.
    pub fn with_config(conf_text: &str, extra_args: &[&str]) -> Server {
        Self::launch(Some(conf_text), extra_args)
    }

    fn launch(conf: Option<&str>, extra_args: &[&str]) -> Server {
        Self::start_with(&Launch {
            conf,
            args: extra_args,
            ..Launch::default()
        })
    }

    /// General form of `start`/`with_config`: extra files beside the config (for
    /// `include`), environment variables for the child, extra flags.
    pub fn start_with(l: &Launch) -> Server {
        let dir = TempDir::new("srv");
        let log_path = dir.path().join("server.log");
        let log_file = std::fs::File::create(&log_path).expect("create log file");
        let mut cmd = Command::new(server_bin());
        for (name, text) in l.files {
            write_file(dir.path(), name, text);
        }
        let mut conf_path = None;
        if let Some(text) = l.conf {
            let p = dir.path().join("server.conf");
            std::fs::write(&p, text).expect("write config");
            cmd.arg("-c").arg(&p);
            conf_path = Some(p);
        }
        cmd.args(["-a", "127.0.0.1", "-p", "-1", "--ports_file_dir"])
            .arg(dir.path())
            .args(l.args)
            .envs(l.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn server {}: {e}", server_bin()));
        let mut srv = Server {
            child,
            port: 0,
            dir,
            log_path,
            conf_path,
        };
        srv.port = srv.wait_for_port();
        srv
    }

    fn wait_for_port(&mut self) -> u16 {
        let suffix = format!("_{}.ports", self.child.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("server exited early with {status}; log:\n{}", self.log());
            }
            if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().to_string();
                    if !name.ends_with(&suffix) {
                        continue;
                    }
                    if let Some(port) = std::fs::read_to_string(e.path())
                        .ok()
                        .and_then(|t| parse_ports_file(&t))
                    {
                        return port;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no ports file *{suffix} within 10s; log:\n{}", self.log());
    }

    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    /// The `-c` file (panics if the server was started without one).
    pub fn config_path(&self) -> &Path {
        self.conf_path
            .as_deref()
            .expect("server was started without a config file")
    }
    /// Replace the config file's contents (no signal sent).
    pub fn rewrite_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).expect("rewrite config");
    }
    /// Write a file beside the config (e.g. one that the config includes).
    pub fn write_file(&self, name: &str, text: &str) -> PathBuf {
        write_file(self.dir.path(), name, text)
    }
    /// Ask the server to reload its configuration (SIGHUP). Returns at once: the reload
    /// is asynchronous, so callers poll for its observable effect.
    pub fn reload(&self) {
        self.signal("HUP");
    }
    /// `rewrite_config(text)` then `reload()`.
    pub fn reload_with(&self, text: &str) {
        self.rewrite_config(text);
        self.reload();
    }
    /// Wait until the log contains `pattern` (plain substring); false after `limit`.
    pub fn wait_for_log(&self, pattern: &str, limit: Duration) -> bool {
        wait_until(limit, || self.log().contains(pattern))
    }
    /// Send a signal by name, e.g. `"HUP"`, using the `kill` command.
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -{sig} {} failed", self.pid());
    }
    /// Whatever the server has written to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
    /// True while the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Extract the client port from a ports file: `{"nats":["nats://127.0.0.1:PORT"],...}`.
/// The monitoring ports (`http://` and `https://` URLs) a ports file lists.
fn parse_monitor_ports(text: &str) -> Vec<(String, u16)> {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    v.get("monitoring")
        .and_then(|m| m.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|u| u.as_str())
                .filter_map(|u| {
                    let (scheme, rest) = u.split_once("://")?;
                    let port = rest
                        .rsplit(':')
                        .next()?
                        .trim_end_matches('/')
                        .parse()
                        .ok()?;
                    Some((scheme.to_string(), port))
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Server {
    /// The monitoring port for `scheme` ("http" or "https") from the ports
    /// file (start the server with `-m -1` / `-ms -1`).
    pub fn monitor_port_for(&self, scheme: &str) -> u16 {
        let suffix = format!("_{}.ports", self.child.id());
        for e in std::fs::read_dir(self.dir.path())
            .expect("server dir")
            .flatten()
        {
            let name = e.file_name().to_string_lossy().to_string();
            if name.ends_with(&suffix) {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                if let Some((_, p)) = parse_monitor_ports(&text)
                    .into_iter()
                    .find(|(s, _)| s == scheme)
                {
                    return p;
                }
                panic!("ports file has no {scheme} monitoring URL: {text}");
            }
        }
        panic!("no ports file");
    }

    /// The HTTP monitoring port.
    pub fn monitor_port(&self) -> u16 {
        self.monitor_port_for("http")
    }
}

fn parse_ports_file(text: &str) -> Option<u16> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let url = v.get("nats")?.as_array()?.first()?.as_str()?;
    url.rsplit(':').next()?.trim_end_matches('/').parse().ok()
}

/// Run a synchronous test body on its own thread with an overall deadline.
pub fn with_timeout<F: FnOnce() + Send + 'static>(limit: Duration, f: F) {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(limit) {
        Ok(()) => {
            let _ = h.join();
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            // The body panicked: re-raise its panic here.
            if let Err(p) = h.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("test body did not finish within {limit:?}");
        }
    }
}

/// Printable rendering of protocol bytes for assertion messages.
pub fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .replace('\r', "\\r")
        .replace('\n', "\\n")
}

/// A raw protocol connection (blocking std TcpStream with short read timeouts).
pub struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The INFO line's JSON.
    pub info: serde_json::Value,
    /// The raw INFO line including `INFO ` and CRLF.
    pub info_line: Vec<u8>,
}

/// The CONNECT that most raw tests use: quiet, headers and no_responders on.
pub const CONNECT_QUIET: &[u8] =
    b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true}\r\n";

impl Raw {
    /// Connect and read the INFO line.
    pub fn connect(port: u16) -> Raw {
        let mut r = Self::connect_no_info(port);
        r.read_info();
        r
    }

    /// Read and parse the INFO line (normally done by `connect`).
    pub fn read_info(&mut self) {
        let r = self;
        let line = r.expect_line_raw();
        assert!(
            line.starts_with(b"INFO ") && line.ends_with(b"\r\n"),
            "first line is not INFO: {}",
            show(&line)
        );
        let json = std::str::from_utf8(&line[5..line.len() - 2]).expect("INFO is utf-8");
        r.info = serde_json::from_str(json.trim())
            .unwrap_or_else(|e| panic!("INFO JSON does not parse ({e}): {json}"));
        r.info_line = line;
    }

    /// Connect without consuming anything.
    pub fn connect_no_info(port: u16) -> Raw {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("tcp connect");
        Self::from_stream(stream)
    }

    /// Connect with a small kernel receive buffer (SO_RCVBUF = `rcvbuf`), read INFO.
    /// Useful for a subscriber that should fall behind quickly.
    pub fn connect_small_rcvbuf(port: u16, rcvbuf: u32) -> Raw {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .expect("runtime");
        let stream = rt.block_on(async {
            let sock = tokio::net::TcpSocket::new_v4().expect("socket");
            sock.set_recv_buffer_size(rcvbuf).expect("SO_RCVBUF");
            let s = tokio::time::timeout(IO_TIMEOUT, sock.connect(addr))
                .await
                .expect("connect timed out")
                .expect("tcp connect");
            let s = s.into_std().expect("into_std");
            s.set_nonblocking(false).expect("blocking");
            s
        });
        let mut r = Self::from_stream(stream);
        r.read_info();
        r
    }

    fn from_stream(stream: TcpStream) -> Raw {
        stream.set_nodelay(true).ok();
        Raw {
            stream,
            buf: Vec::new(),
            info: serde_json::Value::Null,
            info_line: Vec::new(),
        }
    }

    /// Connect, send the quiet CONNECT and wait for PONG.
    pub fn connect_ok(port: u16) -> Raw {
        let mut r = Self::connect(port);
        r.send(CONNECT_QUIET);
        r.sync();
        r
    }

    pub fn send(&mut self, data: &[u8]) {
        self.stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .expect("set write timeout");
        self.stream.write_all(data).expect("send to server");
    }

    /// Try to send; returns false if the connection is broken.
    pub fn try_send(&mut self, data: &[u8]) -> bool {
        self.stream.set_write_timeout(Some(IO_TIMEOUT)).ok();
        self.stream.write_all(data).is_ok()
    }

    /// PING and expect the next line to be PONG. Server PINGs that arrive first are
    /// answered and skipped (the reference pings every client ~2 s after CONNECT, even
    /// with the default 2 m ping_interval); any other line is a failure.
    pub fn sync(&mut self) {
        self.send(b"PING\r\n");
        for _ in 0..100 {
            let line = self.expect_line_raw();
            match &line[..] {
                b"PONG\r\n" => return,
                b"PING\r\n" => self.send(b"PONG\r\n"),
                _ => panic!("expected PONG, got: {}", show(&line)),
            }
        }
        panic!("no PONG after 100 server PINGs");
    }

    /// Read more bytes into the buffer. Ok(0) on EOF, Err on timeout/error.
    fn fill(&mut self, deadline: Instant) -> std::io::Result<usize> {
        let now = Instant::now();
        if now >= deadline {
            return Err(std::io::Error::new(ErrorKind::TimedOut, "deadline"));
        }
        let wait = (deadline - now).max(Duration::from_millis(1));
        self.stream.set_read_timeout(Some(wait))?;
        let mut tmp = [0u8; 65536];
        let n = self.stream.read(&mut tmp)?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    fn expect_line_raw(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let rest = self.buf.split_off(pos + 2);
                return std::mem::replace(&mut self.buf, rest);
            }
            match self.fill(deadline) {
                Ok(0) => panic!(
                    "connection closed while waiting for a line; have: {}",
                    show(&self.buf)
                ),
                Ok(_) => {}
                Err(e) => panic!(
                    "no complete line within {IO_TIMEOUT:?} ({e}); have: {}",
                    show(&self.buf)
                ),
            }
        }
    }

    /// Like `expect_line`, but server PINGs are answered with PONG and skipped.
    pub fn next_line(&mut self) -> String {
        for _ in 0..100 {
            let l = self.expect_line();
            if l == "PING" {
                self.send(b"PONG\r\n");
            } else {
                return l;
            }
        }
        panic!("100 server PINGs in a row");
    }

    /// Read one CRLF-terminated line; returned without the CRLF.
    pub fn expect_line(&mut self) -> String {
        let mut l = self.expect_line_raw();
        l.truncate(l.len() - 2);
        String::from_utf8(l).expect("line is utf-8")
    }

    /// Read exactly `n` bytes.
    pub fn read_exact_bytes(&mut self, n: usize) -> Vec<u8> {
        let deadline = Instant::now() + IO_TIMEOUT;
        while self.buf.len() < n {
            match self.fill(deadline) {
                Ok(0) => panic!(
                    "closed after {} of {n} bytes: {}",
                    self.buf.len(),
                    show(&self.buf)
                ),
                Ok(_) => {}
                Err(e) => panic!(
                    "only {} of {n} bytes ({e}): {}",
                    self.buf.len(),
                    show(&self.buf)
                ),
            }
        }
        let rest = self.buf.split_off(n);
        std::mem::replace(&mut self.buf, rest)
    }

    /// Read exactly `want.len()` bytes and assert they equal `want`.
    pub fn expect(&mut self, want: &[u8]) {
        let got = self.read_exact_bytes(want.len());
        assert_eq!(show(&got), show(want), "unexpected bytes from server");
    }

    /// Read until the server closes the connection (EOF or reset); return every byte
    /// received before that. Panics if it stays open past `limit`.
    pub fn read_until_closed(&mut self, limit: Duration) -> Vec<u8> {
        let deadline = Instant::now() + limit;
        loop {
            match self.fill(deadline) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                    panic!(
                        "connection still open after {limit:?}; received: {}",
                        show(&self.buf)
                    )
                }
                Err(_) => break, // reset etc.: closed
            }
        }
        std::mem::take(&mut self.buf)
    }

    /// Assert the server closes the connection (within 5 s) without sending anything more.
    pub fn expect_closed(&mut self) {
        let rest = self.read_until_closed(IO_TIMEOUT);
        assert!(
            rest.is_empty(),
            "unexpected bytes before close: {}",
            show(&rest)
        );
    }

    /// Assert that nothing arrives (and the connection is not closed) for `ms` milliseconds.
    pub fn expect_nothing(&mut self, ms: u64) {
        let deadline = Instant::now() + Duration::from_millis(ms);
        loop {
            if !self.buf.is_empty() {
                panic!("expected silence, got: {}", show(&self.buf));
            }
            match self.fill(deadline) {
                Ok(0) => panic!("expected silence, but the connection was closed"),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                    return
                }
                Err(e) => panic!("expected silence, got error {e}"),
            }
        }
    }

    /// The next line (without CRLF) if one completes within `limit`;
    /// server PINGs are answered and skipped. `None` on timeout or close.
    pub fn line_within(&mut self, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let rest = self.buf.split_off(pos + 2);
                let mut l = std::mem::replace(&mut self.buf, rest);
                l.truncate(l.len() - 2);
                let l = String::from_utf8(l).expect("line is utf-8");
                if l == "PING" {
                    self.send(b"PONG\r\n");
                    continue;
                }
                return Some(l);
            }
            match self.fill(deadline) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Return as soon as some bytes are available (waiting at most `ms` milliseconds);
    /// empty on timeout or close.
    pub fn read_some(&mut self, ms: u64) -> Vec<u8> {
        if self.buf.is_empty() {
            let _ = self.fill(Instant::now() + Duration::from_millis(ms));
        }
        std::mem::take(&mut self.buf)
    }

    /// Read whatever arrives within `ms` milliseconds (stops early on close).
    pub fn read_for(&mut self, ms: u64) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_millis(ms);
        loop {
            match self.fill(deadline) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        std::mem::take(&mut self.buf)
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

/// Printable rendering of `b` with every whole `PING\r\n` line removed (server keepalive
/// PINGs may arrive at any time; the reference sends one ~2 s after CONNECT).
pub fn strip_pings(b: &[u8]) -> String {
    let mut out = Vec::new();
    let mut rest = b;
    while !rest.is_empty() {
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|p| p + 2)
            .unwrap_or(rest.len());
        let (line, tail) = rest.split_at(end);
        if line != b"PING\r\n" {
            out.extend_from_slice(line);
        }
        rest = tail;
    }
    show(&out)
}
