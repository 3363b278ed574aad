//! Account resolvers beyond MEMORY: an account server over HTTP
//! ([`UrlResolver`]), a directory of JWTs in the reference's layout
//! ([`DirResolver`], `full` or `cache`), and an in-memory cache with a
//! time to live in front of either ([`CachedResolver`]).
//!
//! Every `fetch` here may block (network, disk): the server calls it off
//! the shards (glommio's blocking pool), and only [`AccountResolver::at_hand`]
//! answers are used on a shard directly.
//!
//! The directory layout is the reference's (`server/dirstore.go`, not
//! sharded): one file per account, `<dir>/<account public key>.jwt`,
//! holding the JWT as is (no newline), mode 0640 in a 0750 directory;
//! a deleted account of a `full` resolver with `allow_delete` is renamed
//! to `<key>.jwt.deleted`, a `cache` resolver removes the file. So a
//! directory written by nats-server serves natrix and the other way round.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::jwt;
use super::operator::{AccountResolver, ResolveError};
use crate::config::check::show_duration;
use crate::config::{DirResolverKind, ResolverCache};

/// The reference's account fetch timeout (`DEFAULT_ACCOUNT_FETCH_TIMEOUT`).
pub const FETCH_TIMEOUT: Duration = Duration::from_millis(1900);
/// The most a resolver answer may hold (an account JWT is a few KiB).
const MAX_ANSWER: usize = 1 << 20;
/// A `cache` directory resolver keeps this many accounts unless told.
const DEFAULT_CACHE_LIMIT: usize = 1000;

/// A mutex's guard, poisoned or not: the data stays usable after a panic
/// elsewhere.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keys in least-recently-used order, each with a value.
#[derive(Debug)]
pub struct Lru<V> {
    entries: HashMap<String, (u64, V)>,
    order: BTreeMap<u64, String>,
    tick: u64,
}

impl<V> Default for Lru<V> {
    fn default() -> Self {
        Lru {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
        }
    }
}

impl<V> Lru<V> {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// The value of `key`, now the most recently used.
    pub fn get(&mut self, key: &str) -> Option<&mut V> {
        self.tick += 1;
        let tick = self.tick;
        let (t, v) = self.entries.get_mut(key)?;
        self.order.remove(t);
        self.order.insert(tick, key.to_string());
        *t = tick;
        Some(v)
    }

    /// Sets `key`, now the most recently used.
    pub fn insert(&mut self, key: String, v: V) {
        self.tick += 1;
        if let Some((t, _)) = self.entries.get(&key) {
            self.order.remove(t);
        }
        self.order.insert(self.tick, key.clone());
        self.entries.insert(key, (self.tick, v));
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        let (t, v) = self.entries.remove(key)?;
        self.order.remove(&t);
        Some(v)
    }

    /// Takes out the least recently used entry.
    pub fn pop_oldest(&mut self) -> Option<(String, V)> {
        let (_, key) = self.order.pop_first()?;
        let (_, v) = self.entries.remove(&key)?;
        Some((key, v))
    }

    /// Keys, least recently used first.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.order.values()
    }
}

fn valid_account_key(key: &str) -> bool {
    key.starts_with('A') && nkeys::KeyPair::from_public_key(key).is_ok()
}

// ---------------------------------------------------------------------
// URL resolver

/// `resolver: URL(http://host:port/path/)`: GET the base URL plus the
/// account public key; status 200 carries the JWT. HTTP/1.1, one
/// connection per request; over TLS for an `https://` URL, as
/// `resolver_tls` says (see [`crate::security::tls::resolver_client_config`]).
pub struct UrlResolver {
    /// The base URL, ending in `/`.
    url: String,
    host: String,
    port: u16,
    /// Path part of the base URL, ending in `/`.
    path: String,
    timeout: Duration,
    /// For an https URL: the TLS client side.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for UrlResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlResolver")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// The connection to the account server: plain, or TLS over it.
enum HttpStream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl HttpStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            HttpStream::Plain(s) => s,
            HttpStream::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for HttpStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            HttpStream::Plain(s) => s.read(buf),
            // A server that closes without TLS's close_notify ends the
            // answer as a plain close would.
            HttpStream::Tls(s) => match s.read(buf) {
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(0),
                r => r,
            },
        }
    }
}

impl Write for HttpStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            HttpStream::Plain(s) => s.write(buf),
            HttpStream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            HttpStream::Plain(s) => s.flush(),
            HttpStream::Tls(s) => s.flush(),
        }
    }
}

/// How an HTTP exchange failed.
#[derive(Debug, PartialEq, Eq)]
enum HttpError {
    /// Nothing usable within the timeout.
    Timeout(String),
    /// Could not connect, or the connection broke before an answer: worth
    /// one more try.
    Connection(String),
    /// An answer that is not HTTP as expected.
    Protocol(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Timeout(s) | HttpError::Connection(s) | HttpError::Protocol(s) => {
                f.write_str(s)
            }
        }
    }
}

/// A complete HTTP answer.
#[derive(Debug, PartialEq, Eq)]
struct HttpAnswer {
    status: u16,
    reason: String,
    body: Vec<u8>,
}

impl UrlResolver {
    /// Parses the base URL (the reference appends `/` when missing); an
    /// https URL gets its TLS client from `tls` (`resolver_tls`).
    pub fn new(
        url: &str,
        timeout: Duration,
        tls: Option<&crate::config::TlsConfig>,
    ) -> Result<UrlResolver, String> {
        let (rest, tls, default_port) = if let Some(r) = url.strip_prefix("http://") {
            (r, None, 80)
        } else if let Some(r) = url.strip_prefix("https://") {
            let config = crate::security::tls::resolver_client_config(tls)
                .map_err(|e| format!("resolver URL({url}): {e}"))?;
            (r, Some(config), 443)
        } else {
            return Err(format!(
                "resolver URL({url}): expected an http:// or https:// URL"
            ));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(format!(
                "resolver URL({url}): credentials in the URL are not supported by natrix"
            ));
        }
        let (host, port) = if let Some(h) = authority.strip_prefix('[') {
            // [v6]:port
            let (h, after) = h
                .split_once(']')
                .ok_or_else(|| format!("resolver URL({url}): unterminated IPv6 address"))?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        let port = match port {
            None | Some("") => default_port,
            Some(p) => p
                .parse()
                .map_err(|_| format!("resolver URL({url}): invalid port {p:?}"))?,
        };
        if host.is_empty() {
            return Err(format!("resolver URL({url}): no host"));
        }
        let mut path = path.to_string();
        if !path.ends_with('/') {
            path.push('/');
        }
        let mut base = url.to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        if tls.is_some() {
            rustls::pki_types::ServerName::try_from(host.as_str())
                .map_err(|e| format!("resolver URL({url}): host {host:?}: {e}"))?;
        }
        Ok(UrlResolver {
            url: base,
            host,
            port,
            path,
            timeout,
            tls,
        })
    }

    /// The reference's check at start that someone is home: a GET of the
    /// base URL must answer 200.
    pub fn check(&self) -> Result<(), String> {
        match self.get("") {
            Ok(a) if a.status == 200 => Ok(()),
            Ok(a) => Err(format!(
                "could not fetch <{}>: {} {}",
                self.url, a.status, a.reason
            )),
            Err(e) => Err(format!("could not fetch <{}>: {e}", self.url)),
        }
    }

    /// GET base + `suffix`, retried once when the connection failed before
    /// any answer and time is left; never after a timeout or an answer.
    fn get(&self, suffix: &str) -> Result<HttpAnswer, HttpError> {
        let deadline = Instant::now() + self.timeout;
        match self.get_once(suffix, deadline) {
            Err(HttpError::Connection(e)) => {
                if deadline.saturating_duration_since(Instant::now()) < self.timeout / 4 {
                    return Err(HttpError::Connection(e));
                }
                std::thread::sleep(Duration::from_millis(20));
                self.get_once(suffix, deadline).map_err(|e2| match e2 {
                    HttpError::Connection(e2) => {
                        HttpError::Connection(format!("{e2} (and before a retry: {e})"))
                    }
                    other => other,
                })
            }
            r => r,
        }
    }

    fn get_once(&self, suffix: &str, deadline: Instant) -> Result<HttpAnswer, HttpError> {
        let left = || {
            let l = deadline.saturating_duration_since(Instant::now());
            if l.is_zero() {
                Err(HttpError::Timeout(format!(
                    "no answer within {}",
                    show_duration(self.timeout)
                )))
            } else {
                Ok(l)
            }
        };
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| HttpError::Connection(format!("cannot resolve {}: {e}", self.host)))?
            .collect();
        let mut stream = None;
        let mut last = format!("no address for {}", self.host);
        for a in addrs {
            match TcpStream::connect_timeout(&a, left()?) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) if e.kind() == ErrorKind::TimedOut => {
                    return Err(HttpError::Timeout(format!(
                        "no connection to {a} within {}",
                        show_duration(self.timeout)
                    )))
                }
                Err(e) => last = format!("cannot connect to {a}: {e}"),
            }
        }
        let tcp = stream.ok_or(HttpError::Connection(last))?;
        let _ = tcp.set_nodelay(true);
        let mut s = match &self.tls {
            None => HttpStream::Plain(tcp),
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| HttpError::Protocol(format!("TLS: host {}: {e}", self.host)))?;
                let conn = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(|e| HttpError::Protocol(format!("TLS: {e}")))?;
                HttpStream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
            }
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let req = format!(
            "GET {}{} HTTP/1.1\r\nHost: {host}:{}\r\nUser-Agent: natrix\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            self.path, suffix, self.port
        );
        let io = |e: std::io::Error, what: &str| match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                HttpError::Timeout(format!("no answer within {}", show_duration(self.timeout)))
            }
            // rustls: the handshake failed (an untrusted certificate, a
            // name that does not match); no retry helps.
            ErrorKind::InvalidData => HttpError::Protocol(format!("TLS: {e}")),
            _ => HttpError::Connection(format!("{what}: {e}")),
        };
        s.tcp()
            .set_write_timeout(Some(left()?))
            .map_err(|e| io(e, "socket"))?;
        s.write_all(req.as_bytes())
            .map_err(|e| io(e, "sending the request"))?;
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(a) = parse_answer(&buf, false)? {
                return Ok(a);
            }
            if buf.len() > MAX_ANSWER {
                return Err(HttpError::Protocol(format!(
                    "answer larger than {MAX_ANSWER} bytes"
                )));
            }
            s.tcp()
                .set_read_timeout(Some(left()?))
                .map_err(|e| io(e, "socket"))?;
            match s.read(&mut chunk) {
                Ok(0) => {
                    if buf.is_empty() {
                        return Err(HttpError::Connection(
                            "connection closed without an answer".into(),
                        ));
                    }
                    return parse_answer(&buf, true)?.ok_or_else(|| {
                        HttpError::Protocol("connection closed in the middle of the answer".into())
                    });
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if buf.is_empty() => return Err(io(e, "reading the answer")),
                Err(e) => {
                    return Err(match io(e, "reading the answer") {
                        HttpError::Connection(m) => HttpError::Protocol(m),
                        other => other,
                    })
                }
            }
        }
    }
}

/// A complete answer in `buf`, `None` while more is needed; `eof`: the
/// peer closed, so a body without a length ends here.
fn parse_answer(buf: &[u8], eof: bool) -> Result<Option<HttpAnswer>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut headers);
    let head = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HttpError::Protocol(format!("not an HTTP answer: {e}"))),
    };
    let status = r.code.unwrap_or(0);
    let reason = r.reason.unwrap_or("").to_string();
    let mut length = None;
    let mut chunked = false;
    for h in r.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value).unwrap_or("").trim();
            length = Some(
                v.parse::<usize>()
                    .map_err(|_| HttpError::Protocol(format!("bad Content-Length {v:?}")))?,
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = String::from_utf8_lossy(h.value)
                .to_ascii_lowercase()
                .contains("chunked");
        }
    }
    let body = &buf[head..];
    let body = if chunked {
        match dechunk(body)? {
            Some(b) => b,
            None => return Ok(None),
        }
    } else if let Some(n) = length {
        if body.len() < n {
            return Ok(None);
        }
        body[..n].to_vec()
    } else if status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if eof {
        body.to_vec()
    } else {
        return Ok(None);
    };
    Ok(Some(HttpAnswer {
        status,
        reason,
        body,
    }))
}

/// Decodes a chunked body; `None` while incomplete.
fn dechunk(mut b: &[u8]) -> Result<Option<Vec<u8>>, HttpError> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&b[..eol]).unwrap_or("");
        let size = line.split(';').next().unwrap_or("").trim();
        let n = usize::from_str_radix(size, 16)
            .map_err(|_| HttpError::Protocol(format!("bad chunk size {size:?}")))?;
        b = &b[eol + 2..];
        if n == 0 {
            // Trailers (ignored) end with an empty line.
            return Ok(b.windows(2).position(|w| w == b"\r\n").map(|_| out));
        }
        if b.len() < n + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&b[..n]);
        b = &b[n + 2..];
    }
}

impl AccountResolver for UrlResolver {
    fn describe(&self) -> String {
        format!("URL resolver {}", self.url)
    }

    fn fetch(&self, account: &str) -> Result<String, ResolveError> {
        let url = format!("{}{account}", self.url);
        match self.get(account) {
            Ok(a) if a.status == 200 => String::from_utf8(a.body)
                .map_err(|_| ResolveError::Failed(format!("GET {url}: the answer is not text"))),
            Ok(a) if a.status == 404 || a.status == 410 => Err(ResolveError::NotFound(format!(
                "GET {url}: HTTP status {} {}",
                a.status, a.reason
            ))),
            Ok(a) => Err(ResolveError::Failed(format!(
                "GET {url}: HTTP status {} {}",
                a.status, a.reason
            ))),
            Err(e) => Err(ResolveError::Failed(format!("GET {url}: {e}"))),
        }
    }

    fn preloaded(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

// ---------------------------------------------------------------------
// Directory resolver

/// What the directory resolver knows of a stored account.
#[derive(Clone, Copy, Debug)]
struct Tracked {
    /// `cache` with a `ttl`: when the file goes, unless read before.
    expires: Option<Instant>,
}

/// `resolver { type: full | cache, dir: ... }`: account JWTs in a
/// directory, one file per account, in the reference's layout.
#[derive(Debug)]
pub struct DirResolver {
    dir: PathBuf,
    kind: DirResolverKind,
    allow_delete: bool,
    /// Most files kept: beyond it `cache` evicts the least recently used
    /// account, `full` refuses to store a new one.
    limit: usize,
    /// `cache`: a file not read for this long goes.
    ttl: Option<Duration>,
    index: Mutex<Lru<Tracked>>,
}

impl DirResolver {
    /// Opens (creating it if needed) the directory and indexes the JWT
    /// files in it, as the reference does at start.
    pub fn open(
        dir: &Path,
        kind: DirResolverKind,
        allow_delete: bool,
        limit: i64,
        ttl: Option<Duration>,
    ) -> Result<DirResolver, String> {
        if let Ok(md) = std::fs::metadata(dir) {
            use std::os::unix::fs::PermissionsExt;
            if !md.is_dir() || md.permissions().mode() & 0o100 == 0 {
                return Err(format!(
                    "resolver dir {}: dir needs to point to an accessible directory",
                    dir.display()
                ));
            }
        } else {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(dir)
                .map_err(|e| format!("resolver dir {}: cannot create it: {e}", dir.display()))?;
        }
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let limit = match (kind, limit) {
            (DirResolverKind::Cache, l) if l <= 0 => DEFAULT_CACHE_LIMIT,
            (_, l) if l <= 0 => usize::MAX,
            (_, l) => usize::try_from(l).unwrap_or(usize::MAX),
        };
        let ttl = ttl
            .filter(|t| !t.is_zero())
            .filter(|_| kind == DirResolverKind::Cache);
        let r = DirResolver {
            dir,
            kind,
            allow_delete,
            limit,
            ttl,
            index: Mutex::new(Lru::default()),
        };
        let now = Instant::now();
        let mut found = Vec::new();
        walk(&r.dir, &mut found, 0);
        let mut index = lock(&r.index);
        for key in found {
            index.insert(
                key,
                Tracked {
                    expires: r.ttl.map(|t| now + t),
                },
            );
        }
        drop(index);
        Ok(r)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the JWT of `key` lives (the reference: any valid public key).
    pub fn path_for(&self, key: &str) -> Option<PathBuf> {
        nkeys::KeyPair::from_public_key(key)
            .ok()
            .map(|_| self.dir.join(format!("{key}.jwt")))
    }

    fn kind_name(&self) -> &'static str {
        match self.kind {
            DirResolverKind::Full => "full",
            DirResolverKind::Cache => "cache",
        }
    }

    /// The JWT stored for `key`, as of `now`.
    pub fn load_at(&self, key: &str, now: Instant) -> Result<String, ResolveError> {
        let path = self.path_for(key).ok_or_else(|| {
            ResolveError::NotFound(format!("{key:?} is not a public key, no file for it"))
        })?;
        let mut index = lock(&self.index);
        if let Some(Tracked {
            expires: Some(at), ..
        }) = index.get(key).copied()
        {
            if now >= at {
                index.remove(key);
                let _ = std::fs::remove_file(&path);
                return Err(ResolveError::NotFound(format!(
                    "no file {} (it expired from the cache after {} unused)",
                    path.display(),
                    show_duration(self.ttl.unwrap_or_default())
                )));
            }
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                index.insert(
                    key.to_string(),
                    Tracked {
                        expires: self.ttl.map(|t| now + t),
                    },
                );
                Ok(text)
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                index.remove(key);
                Err(ResolveError::NotFound(format!(
                    "no file {}",
                    path.display()
                )))
            }
            Err(e) => Err(ResolveError::Failed(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// Stores `token` for `key` unless the stored one is the same or newer
    /// (the reference's save-if-newer), evicting the least recently used
    /// account of a full `cache`.
    pub fn store_at(&self, key: &str, token: &str, now: Instant) -> Result<(), String> {
        let path = self
            .path_for(key)
            .ok_or_else(|| format!("{key:?} is not a valid public key"))?;
        let new = jwt::decode(token).map_err(|e| format!("account {key}: {e}"))?;
        let mut index = lock(&self.index);
        if let Ok(old_text) = std::fs::read_to_string(&path) {
            if let Ok(old) = jwt::decode(&old_text) {
                if old.jti == new.jti || old.iat > new.iat {
                    return Ok(());
                }
                if new.sub != key {
                    return Err(format!(
                        "the JWT is about {}, not the key {key} it is stored under",
                        new.sub
                    ));
                }
                if old.sub != new.sub {
                    return Err(format!(
                        "subject of the stored JWT ({}) and the new one ({}) differ",
                        old.sub, new.sub
                    ));
                }
            }
        }
        if !index.contains(key) {
            while index.len() >= self.limit {
                if self.kind == DirResolverKind::Full {
                    return Err(format!(
                        "jwt store is full ({} accounts, the limit)",
                        self.limit
                    ));
                }
                let Some((old, _)) = index.pop_oldest() else {
                    break;
                };
                if let Some(p) = self.path_for(&old) {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
        write_file(&path, token.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        index.insert(
            key.to_string(),
            Tracked {
                expires: self.ttl.map(|t| now + t),
            },
        );
        Ok(())
    }
}

/// Collects the account keys of the `*.jwt` files under `dir` (the
/// reference walks the tree and keys files by name).
fn walk(dir: &Path, out: &mut Vec<String>, depth: usize) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() && depth < 4 {
            walk(&p, out, depth + 1);
        } else if ft.is_file() {
            if let Some(key) = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".jwt"))
            {
                out.push(key.to_string());
            }
        }
    }
}

/// Writes a file whole: to a temporary name, then renamed over, so a
/// reader never sees half a JWT.
fn write_file(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("jwt.{}.tmp", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

impl AccountResolver for DirResolver {
    fn describe(&self) -> String {
        format!(
            "{} directory resolver {}",
            self.kind_name(),
            self.dir.display()
        )
    }

    fn fetch(&self, account: &str) -> Result<String, ResolveError> {
        self.load_at(account, Instant::now())
    }

    /// A `full` resolver holds every account: they are all verified at
    /// start; a `cache` one is read on demand.
    fn preloaded(&self) -> Vec<(String, String)> {
        if self.kind != DirResolverKind::Full {
            return Vec::new();
        }
        self.stored()
    }

    fn directory(&self) -> Option<DirResolverKind> {
        Some(self.kind)
    }

    fn can_delete(&self) -> bool {
        self.kind == DirResolverKind::Cache || self.allow_delete
    }

    fn stored(&self) -> Vec<(String, String)> {
        let mut keys: Vec<String> = lock(&self.index).keys().cloned().collect();
        keys.sort();
        keys.into_iter()
            .filter(|k| valid_account_key(k))
            .filter_map(|k| {
                let text = std::fs::read_to_string(self.path_for(&k)?).ok()?;
                Some((k, text))
            })
            .collect()
    }

    fn store(&self, account: &str, jwt: &str) -> Result<(), String> {
        self.store_at(account, jwt, Instant::now())
    }

    fn delete(&self, account: &str) -> Result<(), String> {
        if self.kind == DirResolverKind::Full && !self.allow_delete {
            return Err("the resolver does not allow deletes (allow_delete: false)".into());
        }
        let path = self
            .path_for(account)
            .ok_or_else(|| format!("{account:?} is not a valid public key"))?;
        let mut index = lock(&self.index);
        let res = if self.kind == DirResolverKind::Full {
            let mut to = path.clone().into_os_string();
            to.push(".deleted");
            std::fs::rename(&path, to)
        } else {
            std::fs::remove_file(&path)
        };
        match res {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot delete {}: {e}", path.display())),
        }
        index.remove(account);
        Ok(())
    }
}

// ---------------------------------------------------------------------
// Cache in front of a resolver

#[derive(Clone, Debug)]
struct Cached {
    answer: Result<String, ResolveError>,
    at: Instant,
}

/// Remembers what a resolver answered: a JWT for `ttl`, "not found" or a
/// failure for `negative_ttl`, at most `max_entries` accounts (least
/// recently used ones go first).
#[derive(Debug)]
pub struct CachedResolver {
    inner: Arc<dyn AccountResolver>,
    cfg: ResolverCache,
    entries: Mutex<Lru<Cached>>,
}

impl CachedResolver {
    pub fn new(inner: Arc<dyn AccountResolver>, cfg: ResolverCache) -> CachedResolver {
        CachedResolver {
            inner,
            cfg,
            entries: Mutex::new(Lru::default()),
        }
    }

    /// The remembered answer for `key`, if still fresh at `now`.
    pub fn lookup(&self, key: &str, now: Instant) -> Option<Result<String, ResolveError>> {
        let mut entries = lock(&self.entries);
        let c = entries.get(key)?;
        let age = now.saturating_duration_since(c.at);
        let keep = if c.answer.is_ok() {
            self.cfg.ttl
        } else {
            self.cfg.negative_ttl
        };
        if age >= keep {
            entries.remove(key);
            return None;
        }
        Some(match &c.answer {
            Ok(j) => Ok(j.clone()),
            Err(e) => {
                let note = |s: &str| {
                    format!(
                        "{s} (answered {} ago, remembered for {} by resolver_cache)",
                        show_duration(Duration::from_millis(age.as_millis() as u64)),
                        show_duration(keep)
                    )
                };
                Err(match e {
                    ResolveError::NotFound(s) => ResolveError::NotFound(note(s)),
                    ResolveError::Failed(s) => ResolveError::Failed(note(s)),
                })
            }
        })
    }

    /// Remembers `answer` for `key` as of `now`.
    pub fn remember(&self, key: &str, answer: &Result<String, ResolveError>, now: Instant) {
        let keep = if answer.is_ok() {
            self.cfg.ttl
        } else {
            self.cfg.negative_ttl
        };
        let mut entries = lock(&self.entries);
        if keep.is_zero() {
            entries.remove(key);
            return;
        }
        entries.insert(
            key.to_string(),
            Cached {
                answer: answer.clone(),
                at: now,
            },
        );
        while entries.len() > self.cfg.max_entries.max(1) {
            entries.pop_oldest();
        }
    }

    /// Fetches through the cache as of `now`.
    pub fn fetch_at(&self, key: &str, now: Instant) -> Result<String, ResolveError> {
        if let Some(a) = self.lookup(key, now) {
            return a;
        }
        let a = self.inner.fetch(key);
        self.remember(key, &a, now);
        a
    }
}

impl AccountResolver for CachedResolver {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn fetch(&self, account: &str) -> Result<String, ResolveError> {
        self.fetch_at(account, Instant::now())
    }

    fn at_hand(&self, account: &str) -> Option<Result<String, ResolveError>> {
        self.lookup(account, Instant::now())
            .or_else(|| self.inner.at_hand(account))
    }

    fn preloaded(&self) -> Vec<(String, String)> {
        self.inner.preloaded()
    }

    fn store(&self, account: &str, jwt: &str) -> Result<(), String> {
        self.inner.store(account, jwt)?;
        lock(&self.entries).remove(account);
        Ok(())
    }

    fn delete(&self, account: &str) -> Result<(), String> {
        self.inner.delete(account)?;
        lock(&self.entries).remove(account);
        Ok(())
    }

    fn directory(&self) -> Option<DirResolverKind> {
        self.inner.directory()
    }

    fn can_delete(&self) -> bool {
        self.inner.can_delete()
    }

    fn stored(&self) -> Vec<(String, String)> {
        self.inner.stored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn lru_order_and_eviction() {
        let mut l: Lru<u32> = Lru::default();
        l.insert("a".into(), 1);
        l.insert("b".into(), 2);
        l.insert("c".into(), 3);
        assert_eq!(l.keys().cloned().collect::<Vec<_>>(), ["a", "b", "c"]);
        // Reading a makes it the most recent.
        assert_eq!(l.get("a").copied(), Some(1));
        assert_eq!(l.keys().cloned().collect::<Vec<_>>(), ["b", "c", "a"]);
        // Re-inserting b too.
        l.insert("b".into(), 20);
        assert_eq!(l.pop_oldest(), Some(("c".to_string(), 3)));
        assert_eq!(l.pop_oldest(), Some(("a".to_string(), 1)));
        assert_eq!(l.remove("b"), Some(20));
        assert!(l.is_empty());
        assert_eq!(l.pop_oldest(), None);
        assert!(l.get("zz").is_none());
    }

    /// A resolver that counts fetches and knows one account.
    #[derive(Debug, Default)]
    struct Counting {
        calls: AtomicUsize,
    }

    impl AccountResolver for Counting {
        fn describe(&self) -> String {
            "counting resolver".into()
        }
        fn fetch(&self, account: &str) -> Result<String, ResolveError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if account == "known" {
                Ok("jwt".into())
            } else {
                Err(ResolveError::NotFound("nothing".into()))
            }
        }
        fn preloaded(&self) -> Vec<(String, String)> {
            Vec::new()
        }
    }

    #[test]
    fn cache_keeps_answers_for_their_ttl() {
        let inner = Arc::new(Counting::default());
        let c = CachedResolver::new(
            inner.clone(),
            ResolverCache {
                ttl: Duration::from_secs(60),
                negative_ttl: Duration::from_secs(5),
                max_entries: 2,
            },
        );
        let t0 = Instant::now();
        let calls = || inner.calls.load(Ordering::SeqCst);
        assert_eq!(c.fetch_at("known", t0), Ok("jwt".into()));
        assert_eq!(
            c.fetch_at("known", t0 + Duration::from_secs(59)),
            Ok("jwt".into())
        );
        assert_eq!(calls(), 1);
        // Past the ttl: asked again.
        assert_eq!(
            c.fetch_at("known", t0 + Duration::from_secs(61)),
            Ok("jwt".into())
        );
        assert_eq!(calls(), 2);
        // Negative answers are kept for the shorter time, and say so.
        assert!(c.fetch_at("nope", t0).is_err());
        match c.fetch_at("nope", t0 + Duration::from_secs(4)) {
            Err(ResolveError::NotFound(s)) => {
                assert!(s.starts_with("nothing (answered 4s ago"), "{s}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(calls(), 3);
        assert!(c.fetch_at("nope", t0 + Duration::from_secs(6)).is_err());
        assert_eq!(calls(), 4);
        // At most two accounts: the least recently used one goes.
        c.fetch_at("third", t0 + Duration::from_secs(62))
            .unwrap_err();
        assert_eq!(calls(), 5);
        assert!(c.lookup("known", t0 + Duration::from_secs(62)).is_none());
        assert!(c.lookup("third", t0 + Duration::from_secs(62)).is_some());
        // at_hand answers only from memory.
        let fresh = CachedResolver::new(inner.clone(), ResolverCache::default());
        assert!(fresh.at_hand("known").is_none());
        fresh.fetch("known").unwrap();
        assert_eq!(fresh.at_hand("known"), Some(Ok("jwt".into())));
        // Turned off: nothing kept.
        let off = CachedResolver::new(
            inner.clone(),
            ResolverCache {
                ttl: Duration::ZERO,
                negative_ttl: Duration::ZERO,
                max_entries: 10,
            },
        );
        let before = calls();
        off.fetch("known").unwrap();
        off.fetch("known").unwrap();
        assert_eq!(calls(), before + 2);
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "natrix-resolver-{tag}-{}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        let _ = std::fs::remove_dir_all(&p);
        p
    }

    fn account_token(acc: &nkeys::KeyPair, iat: i64, jti: &str) -> String {
        let op = nkeys::KeyPair::new_operator();
        let c = jwt::Claims {
            jti: jti.into(),
            iat,
            iss: op.public_key(),
            sub: acc.public_key(),
            name: "A".into(),
            aud: None,
            exp: None,
            nbf: None,
            nats: serde_json::json!({"type": "account", "version": 2}),
        };
        jwt::encode(&c, &op).unwrap()
    }

    #[test]
    fn dir_store_layout_lru_and_delete() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("cache");
        let r = DirResolver::open(&dir, DirResolverKind::Cache, false, 2, None).unwrap();
        let (a, b, c) = (
            nkeys::KeyPair::new_account(),
            nkeys::KeyPair::new_account(),
            nkeys::KeyPair::new_account(),
        );
        let t0 = Instant::now();
        let ja = account_token(&a, 100, "J1");
        r.store_at(&a.public_key(), &ja, t0).unwrap();
        // The reference's layout: <dir>/<key>.jwt holding the JWT as is.
        let pa = dir.join(format!("{}.jwt", a.public_key()));
        assert_eq!(std::fs::read_to_string(&pa).unwrap(), ja);
        assert_eq!(
            std::fs::metadata(&pa).unwrap().permissions().mode() & 0o777,
            0o640
        );
        // An older JWT does not replace a newer one; a newer one does.
        r.store_at(&a.public_key(), &account_token(&a, 50, "J0"), t0)
            .unwrap();
        assert_eq!(std::fs::read_to_string(&pa).unwrap(), ja);
        let ja2 = account_token(&a, 200, "J2");
        r.store_at(&a.public_key(), &ja2, t0).unwrap();
        assert_eq!(r.load_at(&a.public_key(), t0), Ok(ja2.clone()));
        r.store_at(&b.public_key(), &account_token(&b, 1, "J3"), t0)
            .unwrap();
        // a was read after b was stored... read a again so b is the oldest.
        r.load_at(&a.public_key(), t0).unwrap();
        r.store_at(&c.public_key(), &account_token(&c, 1, "J4"), t0)
            .unwrap();
        assert!(!dir.join(format!("{}.jwt", b.public_key())).exists());
        assert!(matches!(
            r.load_at(&b.public_key(), t0),
            Err(ResolveError::NotFound(s)) if s.contains("no file")
        ));
        assert!(pa.exists());
        // A cache resolver deletes for good.
        r.delete(&a.public_key()).unwrap();
        assert!(!pa.exists());
        drop(r);

        // Reopened, the index is rebuilt from the files.
        let r = DirResolver::open(&dir, DirResolverKind::Cache, false, 2, None).unwrap();
        assert!(r.load_at(&c.public_key(), t0).is_ok());

        // ttl: a file not read for that long goes.
        let r = DirResolver::open(
            &dir,
            DirResolverKind::Cache,
            false,
            0,
            Some(Duration::from_secs(10)),
        )
        .unwrap();
        let later = Instant::now() + Duration::from_secs(11);
        match r.load_at(&c.public_key(), later) {
            Err(ResolveError::NotFound(s)) => assert!(s.contains("expired"), "{s}"),
            other => panic!("{other:?}"),
        }
        assert!(!dir.join(format!("{}.jwt", c.public_key())).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn full_dir_limit_delete_and_preload() {
        let dir = temp_dir("full");
        let (a, b) = (nkeys::KeyPair::new_account(), nkeys::KeyPair::new_account());
        let r = DirResolver::open(&dir, DirResolverKind::Full, false, 1, None).unwrap();
        let t0 = Instant::now();
        r.store_at(&a.public_key(), &account_token(&a, 1, "J1"), t0)
            .unwrap();
        let e = r
            .store_at(&b.public_key(), &account_token(&b, 1, "J2"), t0)
            .unwrap_err();
        assert!(e.contains("jwt store is full"), "{e}");
        assert!(r
            .delete(&a.public_key())
            .unwrap_err()
            .contains("allow_delete"));
        assert_eq!(r.preloaded().len(), 1);
        // A JWT about another account is refused over an existing one.
        let e = r
            .store_at(&a.public_key(), &account_token(&b, 5, "J9"), t0)
            .unwrap_err();
        assert!(e.contains("not the key"), "{e}");
        drop(r);
        let r = DirResolver::open(&dir, DirResolverKind::Full, true, 0, None).unwrap();
        r.delete(&a.public_key()).unwrap();
        let pa = dir.join(format!("{}.jwt", a.public_key()));
        assert!(!pa.exists());
        assert!(dir.join(format!("{}.jwt.deleted", a.public_key())).exists());
        assert!(r.preloaded().is_empty());
        // Not a directory: refused, as the reference does.
        let file = dir.join("plain");
        std::fs::write(&file, "x").unwrap();
        let e = DirResolver::open(&file, DirResolverKind::Full, false, 0, None).unwrap_err();
        assert!(e.contains("accessible directory"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn url_parsing_and_http_answers() {
        let r =
            UrlResolver::new("http://127.0.0.1:9090/jwt/v1/accounts", FETCH_TIMEOUT, None).unwrap();
        assert_eq!(r.url, "http://127.0.0.1:9090/jwt/v1/accounts/");
        assert_eq!(
            (r.host.as_str(), r.port, r.path.as_str()),
            ("127.0.0.1", 9090, "/jwt/v1/accounts/")
        );
        let r = UrlResolver::new("http://[::1]/", FETCH_TIMEOUT, None).unwrap();
        assert_eq!((r.host.as_str(), r.port), ("::1", 80));
        let insecure = crate::config::TlsConfig {
            insecure: true,
            ..Default::default()
        };
        let r = UrlResolver::new(
            "https://accounts.example/jwt",
            FETCH_TIMEOUT,
            Some(&insecure),
        )
        .unwrap();
        assert_eq!((r.port, r.tls.is_some()), (443, true));
        let old_tls = crate::config::TlsConfig {
            min_version: Some("1.0".into()),
            ..insecure.clone()
        };
        let e = UrlResolver::new("https://x/", FETCH_TIMEOUT, Some(&old_tls)).unwrap_err();
        assert!(e.contains("resolver_tls: min_version \"1.0\""), "{e}");
        assert!(UrlResolver::new("ftp://x/", FETCH_TIMEOUT, None).is_err());
        assert!(UrlResolver::new("http://u:p@x/", FETCH_TIMEOUT, None).is_err());

        let a = parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef", false)
            .unwrap()
            .unwrap();
        assert_eq!((a.status, a.body.as_slice()), (200, &b"abc"[..]));
        assert_eq!(
            parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab", false).unwrap(),
            None
        );
        let a = parse_answer(b"HTTP/1.0 404 Not Found\r\n\r\nnope", true)
            .unwrap()
            .unwrap();
        assert_eq!((a.status, a.reason.as_str()), (404, "Not Found"));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let a = parse_answer(chunked, false).unwrap().unwrap();
        assert_eq!(a.body, b"abcde");
        assert_eq!(
            parse_answer(&chunked[..chunked.len() - 2], false).unwrap(),
            None
        );
        assert!(parse_answer(b"SSH-2.0-x\r\n\r\n", false).is_err());
    }
}
