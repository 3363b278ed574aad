//! HTTP monitoring: the reference's endpoints (`/varz`, `/connz`,
//! `/subsz`, `/accountz`, `/accstatz`, `/routez`, `/gatewayz`, `/leafz`,
//! `/healthz`, and an index at the base path) with its field names, types,
//! units and query parameters, plus `/metrics` in the Prometheus text
//! format and a `natrix` object in `/varz` with per-shard detail.
//!
//! Nothing is shared with the message path. The HTTP server runs on plain
//! std threads ([`http`]); for each request it asks every shard for a
//! [`snapshot::ShardSnapshot`] over the shard's control channel, waits for
//! the answers (bounded), and merges them. Shards keep their own counters
//! in `Cell`s, and closed connections in a bounded ring each; all of it is
//! merged and sorted here, at query time.

pub mod http;
pub mod metrics;
pub mod snapshot;

use std::collections::BTreeMap;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::Sender;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde_json::Value;

use crate::options::Options;
use crate::proto::encode::ServerInfo;
use crate::shard::{Control, MAX_CLOSED_CLIENTS};
use crate::timefmt::{go_duration, rfc3339, uptime};
use http::{Request, Response};
use snapshot::{AccountCounters, ConnInfo, ShardSnapshot, SubInfo, SublistStats};

/// The reference's default page size for `/connz`.
pub const DEFAULT_CONN_LIST: usize = 1024;
/// The reference's default page size for `/subsz`.
pub const DEFAULT_SUB_LIST: usize = 1024;
/// How long a request waits for the shards' snapshots.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(2);

/// A way to one shard's control channel.
pub struct ShardLink {
    pub tx: Sender<Control>,
    pub wake: UnixStream,
}

impl ShardLink {
    fn send(&self, msg: Control) -> bool {
        use std::io::Write;
        self.tx.send(msg).is_ok() && (&self.wake).write(&[1]).is_ok()
    }
}

/// The monitoring server's state: how to reach the shards, and what the
/// process-wide answers need.
pub struct Monitor {
    shards: Vec<ShardLink>,
    info: ServerInfo,
    opts: Mutex<Options>,
    start: SystemTime,
    start_instant: Instant,
    config_load_time: Mutex<SystemTime>,
    req_stats: Mutex<BTreeMap<String, u64>>,
    /// Normalized base path: "/" or "/prefix".
    base: String,
    /// Bound monitoring ports (0: not listening).
    pub http_port: u16,
    pub https_port: u16,
}

/// `http_base_path` as the reference normalizes it: a leading slash, no
/// trailing one, "/" when empty.
pub fn normalize_base_path(p: &str) -> String {
    let p = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    };
    // path.Clean: collapse repeated slashes, drop "." segments and a
    // trailing slash.
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn go_quote(v: &str) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Reads query parameter `key` with `parse`; empty or absent gives the
/// type's zero value. A bad value gets the reference's error text, naming
/// the Go type and parse function it uses for that parameter.
fn decode<T: Default>(
    r: &Request,
    key: &str,
    (go_type, go_func): (&str, &str),
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, Response> {
    let v = r.get(key);
    if v.is_empty() {
        return Ok(T::default());
    }
    parse(v).ok_or_else(|| {
        Response::bad_request(format!(
            "Error decoding {go_type} for '{key}': strconv.{go_func}: parsing {}: invalid syntax",
            go_quote(v)
        ))
    })
}

fn decode_bool(r: &Request, key: &str) -> Result<bool, Response> {
    decode(r, key, ("boolean", "ParseBool"), parse_bool)
}

fn decode_int(r: &Request, key: &str) -> Result<i64, Response> {
    decode(r, key, ("int", "Atoi"), |v| v.parse().ok())
}

fn decode_u64(r: &Request, key: &str) -> Result<u64, Response> {
    decode(r, key, ("uint64", "ParseUint"), |v| v.parse().ok())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Closed,
    All,
}

/// Pretty JSON (as Go's `MarshalIndent` with two spaces), or JSONP when
/// the request names a `callback`.
fn respond_json<T: Serialize>(r: &Request, v: &T, pretty: bool) -> Response {
    let body = if pretty {
        serde_json::to_vec_pretty(v)
    } else {
        serde_json::to_vec(v)
    }
    .unwrap_or_default();
    let cb = r.get("callback");
    if cb.is_empty() {
        Response::new(200, "application/json", body)
    } else {
        let mut out = Vec::with_capacity(body.len() + cb.len() + 2);
        out.extend_from_slice(cb.as_bytes());
        out.push(b'(');
        out.extend_from_slice(&body);
        out.push(b')');
        Response::new(200, "application/javascript", out)
    }
}

// ------------------------------------------------------------ JSON shapes

#[derive(Serialize)]
struct SubDetailJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<&'a str>,
    subject: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    qgroup: Option<&'a str>,
    sid: &'a str,
    msgs: u64,
    #[serde(skip_serializing_if = "is_zero")]
    max: u64,
    cid: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl<'a> SubDetailJson<'a> {
    fn of(s: &'a SubInfo, with_account: bool) -> Self {
        SubDetailJson {
            account: with_account.then_some(s.account.as_str()),
            subject: &s.subject,
            qgroup: s.queue.as_deref(),
            sid: &s.sid,
            msgs: s.msgs,
            max: s.max,
            cid: s.cid,
        }
    }
}

#[derive(Serialize)]
struct ConnJson<'a> {
    cid: u64,
    kind: &'static str,
    #[serde(rename = "type")]
    typ: &'static str,
    ip: &'a str,
    port: u16,
    start: String,
    last_activity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    rtt: String,
    uptime: String,
    idle: String,
    pending_bytes: usize,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    subscriptions: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lang: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cipher_suite: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorized_user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscriptions_list: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscriptions_list_detail: Option<Vec<SubDetailJson<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwt: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name_tag: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    tags: &'a [String],
}

/// A float as Go's `encoding/json` writes it: whole values without a
/// fraction.
fn go_float(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        Value::from(v as i64)
    } else {
        Value::from(v)
    }
}

fn since(later: SystemTime, earlier: SystemTime) -> Duration {
    later.duration_since(earlier).unwrap_or_default()
}

impl<'a> ConnJson<'a> {
    fn of(c: &'a ConnInfo, now: SystemTime, auth: bool, subs: bool, detail: bool) -> Self {
        let end = c.stop.unwrap_or(now);
        let has_subs = !c.subs.is_empty();
        // As the reference: an open connection shows its user (the nkey
        // for a JWT user) and JWT details only with auth; a closed one
        // keeps its JWT details always, and as user only CONNECT's name.
        let closed = c.stop.is_some();
        let jwt_details = auth || closed;
        let user = if closed { &c.connect_user } else { &c.user };
        ConnJson {
            cid: c.cid,
            kind: "Client",
            typ: "nats",
            ip: &c.ip,
            port: c.port,
            start: rfc3339(c.start),
            last_activity: rfc3339(c.last_activity),
            stop: c.stop.map(rfc3339),
            reason: c.reason,
            rtt: go_duration(c.rtt),
            uptime: uptime(since(end, c.start)),
            idle: uptime(since(end, c.last_activity)),
            pending_bytes: c.pending,
            in_msgs: c.in_msgs,
            out_msgs: c.out_msgs,
            in_bytes: c.in_bytes,
            out_bytes: c.out_bytes,
            subscriptions: c.subs.len(),
            name: c.name.as_deref(),
            lang: c.lang.as_deref(),
            version: c.version.as_deref(),
            tls_version: c.tls_version.as_deref(),
            tls_cipher_suite: c.tls_cipher.as_deref(),
            authorized_user: (auth && !user.is_empty()).then_some(user.as_str()),
            account: (auth && c.account != crate::config::GLOBAL_ACCOUNT)
                .then_some(c.account.as_str()),
            subscriptions_list: (subs && !detail && has_subs)
                .then(|| c.subs.iter().map(|s| s.subject.as_str()).collect()),
            subscriptions_list_detail: (detail && has_subs)
                .then(|| c.subs.iter().map(|s| SubDetailJson::of(s, false)).collect()),
            jwt: c.jwt.as_deref().filter(|_| jwt_details),
            issuer_key: c.issuer_key.as_deref().filter(|_| jwt_details),
            name_tag: c.name_tag.as_deref().filter(|_| jwt_details),
            tags: if jwt_details { &c.tags } else { &[] },
        }
    }
}

/// An export as the reference's `/accountz` writes it.
#[derive(Serialize)]
struct ExportJson<'a> {
    subject: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    token_req: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_type: Option<&'static str>,
    #[serde(skip_serializing_if = "is_zero")]
    account_token_position: u64,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    approved_accounts: &'a [String],
}

impl<'a> ExportJson<'a> {
    fn of(e: &'a crate::config::Export) -> Self {
        use crate::config::{ExportKind, ResponseType};
        let (kind, response_type) = match &e.kind {
            ExportKind::Stream => ("stream", None),
            ExportKind::Service { response_type, .. } => (
                "service",
                Some(match response_type {
                    ResponseType::Singleton => "Singleton",
                    ResponseType::Stream => "Streamed",
                    ResponseType::Chunked => "Chunked",
                }),
            ),
        };
        ExportJson {
            subject: &e.subject,
            kind,
            // An empty approval list is what a token-required JWT export
            // without activations becomes.
            token_req: e.accounts.as_ref().is_some_and(|a| a.is_empty()),
            response_type,
            account_token_position: e.account_token_position.into(),
            approved_accounts: e.accounts.as_deref().unwrap_or(&[]),
        }
    }
}

/// An import as the reference's `/accountz` writes it: a service import's
/// `subject` is the local subject and `to` the exported one.
#[derive(Serialize)]
struct ImportJson<'a> {
    subject: String,
    account: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    local_subject: Option<String>,
    #[serde(rename = "type")]
    kind: &'static str,
    invalid: bool,
    share: bool,
    tracking: bool,
}

impl<'a> ImportJson<'a> {
    fn of(i: &'a crate::config::Import) -> Self {
        use crate::config::ImportKind;
        match &i.kind {
            ImportKind::Stream { prefix, to } => ImportJson {
                subject: i.subject.clone(),
                account: &i.account,
                to: None,
                local_subject: Some(crate::security::account::stream_import_local(
                    &i.subject,
                    prefix.as_deref(),
                    to.as_deref(),
                )),
                kind: "stream",
                invalid: false,
                share: false,
                tracking: false,
            },
            ImportKind::Service { to, share } => ImportJson {
                subject: to.clone(),
                account: &i.account,
                to: Some(&i.subject),
                local_subject: None,
                kind: "service",
                invalid: false,
                share: *share,
                tracking: false,
            },
        }
    }
}

/// The claims of a JWT (its middle part), as JSON.
fn decode_claims(jwt: &str) -> Option<Value> {
    let part = jwt.split('.').nth(1)?;
    let bytes = crate::security::auth::base64_decode(part)?;
    serde_json::from_slice(&bytes).ok()
}

#[derive(Serialize)]
struct SublistJson {
    num_subscriptions: u64,
    num_cache: u64,
    num_inserts: u64,
    num_removes: u64,
    num_matches: u64,
    cache_hit_rate: f64,
    max_fanout: u64,
    avg_fanout: f64,
}

impl From<&SublistStats> for SublistJson {
    fn from(s: &SublistStats) -> Self {
        SublistJson {
            num_subscriptions: s.subscriptions,
            num_cache: s.cache,
            num_inserts: s.inserts,
            num_removes: s.removes,
            num_matches: s.matches,
            cache_hit_rate: if s.matches > 0 {
                s.cache_hits as f64 / s.matches as f64
            } else {
                0.0
            },
            max_fanout: s.max_fanout,
            avg_fanout: if s.cache > 0 {
                s.total_fanout as f64 / s.cache as f64
            } else {
                0.0
            },
        }
    }
}

/// The per-shard detail in `/varz`'s `natrix` object.
#[derive(Serialize)]
pub struct ShardJson {
    pub id: usize,
    pub connections: usize,
    pub total_connections: u64,
    pub subscriptions: u64,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub slow_consumers: u64,
    /// Messages sent to / received from other shards over the mesh.
    pub mesh_sent: u64,
    pub mesh_received: u64,
    /// Time producers on this shard waited for back-pressure, ns.
    pub stalled_ns: u64,
    /// CPU time of the shard's thread, ns.
    pub cpu_ns: u64,
}

impl From<&ShardSnapshot> for ShardJson {
    fn from(s: &ShardSnapshot) -> Self {
        ShardJson {
            id: s.id,
            connections: s.conns.len(),
            total_connections: s.total_connections,
            subscriptions: s.subscriptions,
            in_msgs: s.in_msgs,
            out_msgs: s.out_msgs,
            in_bytes: s.in_bytes,
            out_bytes: s.out_bytes,
            slow_consumers: s.slow_consumers,
            mesh_sent: s.mesh_out,
            mesh_received: s.mesh_in,
            stalled_ns: s.stalled_ns,
            cpu_ns: s.cpu_ns,
        }
    }
}

/// Shard snapshots merged: server totals, accounts and closed connections.
pub struct Merged {
    pub shards: Vec<ShardSnapshot>,
    pub accounts: BTreeMap<String, AccountCounters>,
}

impl Merged {
    fn sum(&self, f: impl Fn(&ShardSnapshot) -> u64) -> u64 {
        self.shards.iter().map(f).sum()
    }

    pub fn connections(&self) -> usize {
        self.shards.iter().map(|s| s.conns.len()).sum()
    }

    pub fn open(&self) -> impl Iterator<Item = &ConnInfo> {
        self.shards.iter().flat_map(|s| s.conns.iter())
    }

    /// Closed connections of all shards, oldest first, the newest
    /// `MAX_CLOSED_CLIENTS` of them.
    pub fn closed(&self) -> Vec<&ConnInfo> {
        let mut v: Vec<&ConnInfo> = self.shards.iter().flat_map(|s| s.closed.iter()).collect();
        v.sort_by_key(|c| (c.stop, c.cid));
        let skip = v.len().saturating_sub(MAX_CLOSED_CLIENTS);
        v.drain(..skip);
        v
    }
}

/// Totals over shards, as `/varz` and `/metrics` report them.
pub struct Totals {
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub slow_consumers: u64,
    pub connections: usize,
    pub total_connections: u64,
    pub subscriptions: u64,
}

impl Merged {
    pub fn totals(&self) -> Totals {
        Totals {
            in_msgs: self.sum(|s| s.in_msgs),
            out_msgs: self.sum(|s| s.out_msgs),
            in_bytes: self.sum(|s| s.in_bytes),
            out_bytes: self.sum(|s| s.out_bytes),
            slow_consumers: self.sum(|s| s.slow_consumers),
            connections: self.connections(),
            total_connections: self.sum(|s| s.total_connections),
            subscriptions: self.sum(|s| s.subscriptions),
        }
    }
}

/// Process memory (resident bytes) and CPU (percent of one core over the
/// process's life, as `ps` reports it for the reference).
fn process_usage(uptime: Duration) -> (u64, f64) {
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mem = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |p| p * page);
    let cpu_secs = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the parenthesized command name.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ut: f64 = f.get(11)?.parse().ok()?;
            let st: f64 = f.get(12)?.parse().ok()?;
            Some((ut + st) / ticks)
        })
        .unwrap_or(0.0);
    let up = uptime.as_secs_f64();
    let cpu = if up > 0.0 {
        (cpu_secs / up * 1000.0).round() / 10.0
    } else {
        0.0
    };
    (mem, cpu)
}

impl Monitor {
    pub fn new(shards: Vec<ShardLink>, info: ServerInfo, opts: Options) -> Monitor {
        let base = normalize_base_path(&opts.http_base_path);
        Monitor {
            shards,
            info,
            opts: Mutex::new(opts),
            start: SystemTime::now(),
            start_instant: Instant::now(),
            config_load_time: Mutex::new(SystemTime::now()),
            req_stats: Mutex::new(BTreeMap::new()),
            base,
            http_port: 0,
            https_port: 0,
        }
    }

    /// New options after a reload.
    pub fn reloaded(&self, opts: Options) {
        *self.opts.lock().unwrap_or_else(|e| e.into_inner()) = opts;
        *self
            .config_load_time
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = SystemTime::now();
    }

    fn options(&self) -> Options {
        self.opts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Asks every shard for its snapshot and merges what comes back
    /// within the wait.
    pub fn gather(&self) -> Merged {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut asked = 0;
        for s in &self.shards {
            if s.send(Control::Snapshot(tx.clone())) {
                asked += 1;
            }
        }
        drop(tx);
        let deadline = Instant::now() + SNAPSHOT_WAIT;
        let mut shards = Vec::with_capacity(asked);
        while shards.len() < asked {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(s) => shards.push(s),
                Err(_) => {
                    crate::warn!(
                        "monitoring: {} of {asked} shards answered in time",
                        shards.len()
                    );
                    break;
                }
            }
        }
        shards.sort_by_key(|s| s.id);
        let mut accounts: BTreeMap<String, AccountCounters> = BTreeMap::new();
        for s in &shards {
            for a in &s.accounts {
                let e = accounts
                    .entry(a.name.clone())
                    .or_insert_with(|| AccountCounters {
                        name: a.name.clone(),
                        ..AccountCounters::default()
                    });
                e.conns += a.conns;
                e.total_conns += a.total_conns;
                e.in_msgs += a.in_msgs;
                e.in_bytes += a.in_bytes;
                e.out_msgs += a.out_msgs;
                e.out_bytes += a.out_bytes;
                e.slow_consumers += a.slow_consumers;
                e.subscriptions += a.subscriptions;
                e.sublist.add(&a.sublist);
            }
        }
        Merged { shards, accounts }
    }

    /// Routes one request.
    pub fn handle(&self, r: &Request) -> Response {
        let Some(rest) = self.route(&r.path) else {
            return Response::not_found();
        };
        let key = match rest.as_str() {
            "/" => "/",
            "/varz" => "/varz",
            "/connz" => "/connz",
            "/subsz" | "/subscriptionsz" => "/subsz",
            "/accountz" => "/accountz",
            "/accstatz" => "/accstatz",
            "/routez" => "/routez",
            "/gatewayz" => "/gatewayz",
            "/leafz" => "/leafz",
            "/healthz" => "/healthz",
            "/metrics" => "/metrics",
            _ => return Response::not_found(),
        };
        *self
            .req_stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_string())
            .or_insert(0) += 1;
        let res = match key {
            "/" => Ok(self.index()),
            "/varz" => Ok(self.varz(r)),
            "/connz" => self.connz(r),
            "/subsz" => self.subsz(r),
            "/accountz" => self.accountz(r),
            "/accstatz" => self.accstatz(r),
            "/routez" => Ok(self.routez(r)),
            "/gatewayz" => Ok(self.gatewayz(r)),
            "/leafz" => Ok(self.leafz(r)),
            "/healthz" => Ok(respond_json(r, &serde_json::json!({"status": "ok"}), false)),
            "/metrics" => Ok(metrics::render(self, &self.gather())),
            _ => unreachable!("every key above is handled"),
        };
        res.unwrap_or_else(|e| e)
    }

    /// The endpoint path under the base path ("/" for the index), or None
    /// outside it.
    fn route(&self, path: &str) -> Option<String> {
        if path == self.base {
            return Some("/".into());
        }
        let rest = if self.base == "/" {
            path
        } else {
            path.strip_prefix(self.base.as_str())?
        };
        (rest.starts_with('/') && rest != "/").then(|| rest.to_string())
    }

    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn index(&self) -> Response {
        let links = [
            ("varz", "General"),
            ("connz", "Connections"),
            ("accountz", "Accounts"),
            ("accstatz", "Account Stats"),
            ("subsz", "Subscriptions"),
            ("routez", "Routes"),
            ("leafz", "Leaf Nodes"),
            ("gatewayz", "Gateways"),
            ("healthz", "Health Probe"),
            ("metrics", "Prometheus Metrics"),
        ];
        let mut body = format!(
            "<html lang=\"en\">\n<head><title>natrix monitoring</title></head>\n<body>\n<h1>natrix</h1>\n<p>NATS protocol {} (natrix {})</p>\n",
            crate::options::SERVER_VERSION,
            env!("CARGO_PKG_VERSION")
        );
        for (path, title) in links {
            body.push_str(&format!("<a href=./{path}>{title}</a><br/>\n"));
        }
        body.push_str("</body>\n</html>\n");
        Response::new(200, "text/html; charset=utf-8", body)
    }

    fn varz(&self, r: &Request) -> Response {
        let opts = self.options();
        let m = self.gather();
        let t = m.totals();
        let now = self.now();
        let up = self.start_instant.elapsed();
        let (mem, cpu) = process_usage(up);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let tls_timeout = opts.tls.as_ref().map_or(2.0, |t| t.timeout.as_secs_f64());
        let mut v = serde_json::Map::new();
        let mut put = |k: &str, val: Value| {
            v.insert(k.to_string(), val);
        };
        let info = &self.info;
        put("server_id", info.server_id.clone().into());
        put(
            "server_name",
            opts.server_name
                .clone()
                .unwrap_or_else(|| info.server_id.clone())
                .into(),
        );
        put("version", info.version.clone().into());
        put("proto", info.proto.into());
        put("go", info.go.clone().into());
        put("host", opts.host.clone().into());
        put("port", info.port.into());
        if opts.security.auth.required() {
            put("auth_required", true.into());
        }
        if opts.tls.is_some() {
            put("tls_required", true.into());
        }
        if opts.tls.as_ref().is_some_and(|t| t.verify) {
            put("tls_verify", true.into());
        }
        put("max_connections", opts.max_connections.into());
        if opts.max_subscriptions > 0 {
            put("max_subscriptions", opts.max_subscriptions.into());
        }
        put(
            "ping_interval",
            (opts.ping_interval.as_nanos() as u64).into(),
        );
        put("ping_max", opts.ping_max.into());
        put("http_host", opts.monitor_host().into());
        // As the reference: the configured ports (-1 for a random one).
        put("http_port", opts.http_port.into());
        put("http_base_path", opts.http_base_path.clone().into());
        put("https_port", opts.https_port.into());
        put("auth_timeout", go_float(opts.auth_timeout.as_secs_f64()));
        put("max_control_line", opts.max_control_line.into());
        put("max_payload", opts.max_payload.into());
        put("max_pending", opts.max_pending.into());
        for k in [
            "cluster",
            "gateway",
            "leaf",
            "mqtt",
            "websocket",
            "jetstream",
        ] {
            put(k, Value::Object(Default::default()));
        }
        put("tls_timeout", go_float(tls_timeout));
        put(
            "write_deadline",
            (opts.write_deadline.as_nanos() as u64).into(),
        );
        put("start", rfc3339(self.start).into());
        put("now", rfc3339(now).into());
        put("uptime", uptime(up).into());
        put("mem", mem.into());
        put("cores", cores.into());
        put("gomaxprocs", self.shards.len().into());
        put("cpu", go_float(cpu));
        put("connections", t.connections.into());
        put("total_connections", t.total_connections.into());
        put("routes", 0.into());
        put("remotes", 0.into());
        put("leafnodes", 0.into());
        put("in_msgs", t.in_msgs.into());
        put("out_msgs", t.out_msgs.into());
        put("in_bytes", t.in_bytes.into());
        put("out_bytes", t.out_bytes.into());
        put("slow_consumers", t.slow_consumers.into());
        put("subscriptions", t.subscriptions.into());
        let stats = self
            .req_stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        put(
            "http_req_stats",
            serde_json::to_value(stats).unwrap_or_default(),
        );
        put(
            "config_load_time",
            rfc3339(
                *self
                    .config_load_time
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()),
            )
            .into(),
        );
        let shards: Vec<ShardJson> = m.shards.iter().map(ShardJson::from).collect();
        put(
            "natrix",
            serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "shards": shards,
            }),
        );
        // serde_json's map keeps keys sorted; write them in the
        // reference's order instead.
        respond_json(r, &Ordered(v, VARZ_ORDER), true)
    }

    fn connz(&self, r: &Request) -> Result<Response, Response> {
        let sort = r.get("sort").to_string();
        let auth = decode_bool(r, "auth")?;
        let subs_v = r.get("subs").to_ascii_lowercase();
        let detail = subs_v == "detail";
        let subs = if detail {
            false
        } else {
            decode_bool(r, "subs")?
        };
        let offset = decode_int(r, "offset")?.max(0) as usize;
        let mut limit = match decode_int(r, "limit")? {
            l if l <= 0 => DEFAULT_CONN_LIST,
            l => l as usize,
        };
        let cid = decode_u64(r, "cid")?;
        let state = match r.get("state").to_ascii_lowercase().as_str() {
            "" | "open" => State::Open,
            "closed" => State::Closed,
            "any" | "all" => State::All,
            other => {
                return Err(Response::bad_request(format!(
                    "Error decoding state for {other}"
                )))
            }
        };
        let user = r.get("user");
        let acc = r.get("acc");
        const SORTS: &[&str] = &[
            "",
            "cid",
            "start",
            "subs",
            "pending",
            "msgs_to",
            "msgs_from",
            "bytes_to",
            "bytes_from",
            "last",
            "idle",
            "uptime",
            "stop",
            "reason",
        ];
        if !SORTS.contains(&sort.as_str()) {
            return Err(Response::bad_request(format!(
                "invalid sorting option: {sort}"
            )));
        }
        if (sort == "stop" || sort == "reason") && state != State::Closed {
            return Err(Response::bad_request(format!(
                "sort by {sort} only valid on closed connections"
            )));
        }
        if cid > 0 {
            limit = 1;
        }
        // The reference answers an unknown account early: no server id,
        // no total, and a null list.
        let unknown_acc = !acc.is_empty()
            && !crate::security::account::account_names()
                .iter()
                .any(|a| a == acc);
        let m = self.gather();
        let now = self.now();
        let in_acc = |c: &ConnInfo| acc.is_empty() || c.account == acc;
        let open: Vec<&ConnInfo> = if state == State::Closed {
            Vec::new()
        } else {
            m.open().filter(|c| in_acc(c)).collect()
        };
        let closed: Vec<&ConnInfo> = if state == State::Open {
            Vec::new()
        } else {
            m.closed().into_iter().filter(|c| in_acc(c)).collect()
        };
        let total = open.len() + closed.len();
        let mut list: Vec<&ConnInfo> = if cid > 0 {
            // As the reference: with a cid, closed states search the
            // closed connections only.
            match state {
                State::Open => open.into_iter().filter(|c| c.cid == cid).collect(),
                _ => closed
                    .into_iter()
                    .filter(|c| c.cid == cid)
                    .take(1)
                    .collect(),
            }
        } else {
            open.into_iter()
                .chain(closed)
                .filter(|c| user.is_empty() || c.connect_user == user)
                .collect()
        };
        let end = |c: &ConnInfo| c.stop.unwrap_or(now);
        match sort.as_str() {
            "subs" => list.sort_by(|a, b| b.subs.len().cmp(&a.subs.len()).then(a.cid.cmp(&b.cid))),
            "pending" => list.sort_by(|a, b| b.pending.cmp(&a.pending).then(a.cid.cmp(&b.cid))),
            "msgs_to" => list.sort_by(|a, b| b.out_msgs.cmp(&a.out_msgs).then(a.cid.cmp(&b.cid))),
            "msgs_from" => list.sort_by(|a, b| b.in_msgs.cmp(&a.in_msgs).then(a.cid.cmp(&b.cid))),
            "bytes_to" => {
                list.sort_by(|a, b| b.out_bytes.cmp(&a.out_bytes).then(a.cid.cmp(&b.cid)))
            }
            "bytes_from" => {
                list.sort_by(|a, b| b.in_bytes.cmp(&a.in_bytes).then(a.cid.cmp(&b.cid)))
            }
            "last" => list.sort_by(|a, b| {
                b.last_activity
                    .cmp(&a.last_activity)
                    .then(a.cid.cmp(&b.cid))
            }),
            // The reference sorts "idle" by the time between start and
            // last activity, longest first.
            "idle" => list.sort_by(|a, b| {
                since(b.last_activity, b.start)
                    .cmp(&since(a.last_activity, a.start))
                    .then(a.cid.cmp(&b.cid))
            }),
            "uptime" => list.sort_by(|a, b| {
                since(end(a), a.start)
                    .cmp(&since(end(b), b.start))
                    .then(a.cid.cmp(&b.cid))
            }),
            "stop" => list.sort_by(|a, b| b.stop.cmp(&a.stop).then(a.cid.cmp(&b.cid))),
            "reason" => list.sort_by(|a, b| a.reason.cmp(&b.reason).then(a.cid.cmp(&b.cid))),
            _ => list.sort_by_key(|c| c.cid),
        }
        let lo = offset.min(list.len());
        let hi = offset.saturating_add(limit).min(list.len());
        let page: Vec<ConnJson> = list[lo..hi]
            .iter()
            .map(|c| ConnJson::of(c, now, auth, subs, detail))
            .collect();
        #[derive(Serialize)]
        struct Connz<'a> {
            server_id: &'a str,
            now: String,
            num_connections: usize,
            total: usize,
            offset: usize,
            limit: usize,
            connections: Option<Vec<ConnJson<'a>>>,
        }
        if unknown_acc {
            return Ok(respond_json(
                r,
                &Connz {
                    server_id: "",
                    now: rfc3339(now),
                    num_connections: 0,
                    total: 0,
                    offset,
                    limit,
                    connections: None,
                },
                true,
            ));
        }
        Ok(respond_json(
            r,
            &Connz {
                server_id: &self.info.server_id,
                now: rfc3339(now),
                num_connections: page.len(),
                total,
                offset,
                limit,
                connections: Some(page),
            },
            true,
        ))
    }

    fn subsz(&self, r: &Request) -> Result<Response, Response> {
        let subs = decode_bool(r, "subs")?;
        let offset = decode_int(r, "offset")?.max(0) as usize;
        let limit = match decode_int(r, "limit")? {
            l if l <= 0 => DEFAULT_SUB_LIST,
            l => l as usize,
        };
        let test = r.get("test");
        let acc = r.get("acc");
        if !test.is_empty() && !crate::subject::valid_literal(test.as_bytes()) {
            return Err(Response::bad_request(format!(
                "invalid test subject, must be valid publish subject: {test}"
            )));
        }
        let m = self.gather();
        let mut stats = SublistStats::default();
        for a in m.accounts.values() {
            if acc.is_empty() || a.name == acc {
                stats.add(&a.sublist);
            }
        }
        let stats_json = SublistJson::from(&stats);
        if !subs {
            return Ok(respond_json(r, &stats_json, true));
        }
        let mut all: Vec<&SubInfo> = m
            .open()
            .flat_map(|c| c.subs.iter())
            .filter(|s| acc.is_empty() || s.account == acc)
            .filter(|s| {
                test.is_empty() || crate::subject::matches(s.subject.as_bytes(), test.as_bytes())
            })
            .collect();
        all.sort_by(|a, b| (a.cid, a.sid.len(), &a.sid).cmp(&(b.cid, b.sid.len(), &b.sid)));
        let lo = offset.min(all.len());
        let hi = offset.saturating_add(limit).min(all.len());
        let page: Vec<SubDetailJson> = all[lo..hi]
            .iter()
            .map(|s| SubDetailJson::of(s, true))
            .collect();
        if page.is_empty() {
            return Ok(respond_json(r, &stats_json, true));
        }
        #[derive(Serialize)]
        struct Subsz<'a> {
            server_id: &'a str,
            now: String,
            #[serde(flatten)]
            stats: SublistJson,
            total: usize,
            offset: usize,
            limit: usize,
            subscriptions_list: Vec<SubDetailJson<'a>>,
        }
        Ok(respond_json(
            r,
            &Subsz {
                server_id: &self.info.server_id,
                now: rfc3339(self.now()),
                stats: stats_json,
                total: page.len(),
                offset,
                limit,
                subscriptions_list: page,
            },
            true,
        ))
    }

    fn accountz(&self, r: &Request) -> Result<Response, Response> {
        let acc = r.get("acc");
        let now = rfc3339(self.now());
        if acc.is_empty() {
            #[derive(Serialize)]
            struct Accountz<'a> {
                server_id: &'a str,
                now: String,
                accounts: Vec<String>,
            }
            let mut accounts = crate::security::account::account_names();
            accounts.sort();
            return Ok(respond_json(
                r,
                &Accountz {
                    server_id: &self.info.server_id,
                    now,
                    accounts,
                },
                true,
            ));
        }
        if !crate::security::account::account_names()
            .iter()
            .any(|a| a == acc)
        {
            return Err(Response::bad_request(format!(
                "Account {acc} does not exist"
            )));
        }
        let m = self.gather();
        let a = m.accounts.get(acc).cloned().unwrap_or_default();
        let conns = m.open().filter(|c| c.account == acc).count();
        let opts = self.options();
        let cfg = opts.security.accounts.iter().find(|a| a.name == acc);
        let exports: Vec<ExportJson> = cfg
            .map(|a| a.exports.iter().map(ExportJson::of).collect())
            .unwrap_or_default();
        let imports: Vec<ImportJson> = cfg
            .map(|a| a.imports.iter().map(ImportJson::of).collect())
            .unwrap_or_default();
        let now_unix = crate::security::operator::now();
        let jwt_acc = opts.security.auth.operator().and_then(|op| {
            // Loaded at start, else as the resolver last answered
            // (without asking it again).
            op.accounts()
                .find(|a| a.key == acc)
                .cloned()
                .or_else(|| op.account_at_hand(acc, now_unix).and_then(Result::ok))
        });
        let jwt_acc = jwt_acc.as_deref();
        #[derive(Serialize)]
        struct Detail<'a> {
            account_name: &'a str,
            update_time: String,
            expired: bool,
            complete: bool,
            jetstream_enabled: bool,
            leafnode_connections: u64,
            client_connections: usize,
            subscriptions: u64,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            exports: Vec<ExportJson<'a>>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            imports: Vec<ImportJson<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            jwt: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            issuer_key: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            name_tag: Option<&'a str>,
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            tags: &'a [String],
            #[serde(skip_serializing_if = "Option::is_none")]
            decoded_jwt: Option<Value>,
            sublist_stats: SublistJson,
        }
        #[derive(Serialize)]
        struct Accountz<'a> {
            server_id: &'a str,
            now: String,
            account_detail: Detail<'a>,
        }
        let update = *self
            .config_load_time
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Ok(respond_json(
            r,
            &Accountz {
                server_id: &self.info.server_id,
                now,
                account_detail: Detail {
                    account_name: acc,
                    update_time: rfc3339(update),
                    expired: jwt_acc.and_then(|j| j.exp).is_some_and(|e| now_unix >= e),
                    complete: true,
                    jetstream_enabled: false,
                    leafnode_connections: 0,
                    client_connections: conns,
                    subscriptions: a.subscriptions,
                    exports,
                    imports,
                    jwt: jwt_acc.map(|j| j.jwt.as_str()),
                    issuer_key: jwt_acc.map(|j| j.issuer.as_str()),
                    name_tag: jwt_acc.map(|j| j.name.as_str()).filter(|n| !n.is_empty()),
                    tags: jwt_acc.map_or(&[], |j| &j.claims.tags.0),
                    decoded_jwt: jwt_acc.and_then(|j| decode_claims(&j.jwt)),
                    sublist_stats: SublistJson::from(&a.sublist),
                },
            },
            true,
        ))
    }

    fn accstatz(&self, r: &Request) -> Result<Response, Response> {
        let unused = decode_bool(r, "unused")?;
        let m = self.gather();
        let mut names = crate::security::account::account_names();
        names.sort();
        #[derive(Serialize)]
        struct Data {
            msgs: u64,
            bytes: u64,
        }
        #[derive(Serialize)]
        struct Stat {
            acc: String,
            conns: u64,
            leafnodes: u64,
            total_conns: u64,
            sent: Data,
            received: Data,
            slow_consumers: u64,
        }
        let mut out = Vec::new();
        for name in names {
            let a = m.accounts.get(&name).cloned().unwrap_or_default();
            if a.conns == 0 && !unused {
                continue;
            }
            out.push(Stat {
                acc: name,
                conns: a.conns,
                leafnodes: 0,
                total_conns: a.total_conns,
                sent: Data {
                    msgs: a.out_msgs,
                    bytes: a.out_bytes,
                },
                received: Data {
                    msgs: a.in_msgs,
                    bytes: a.in_bytes,
                },
                slow_consumers: a.slow_consumers,
            });
        }
        #[derive(Serialize)]
        struct Accstatz<'a> {
            server_id: &'a str,
            now: String,
            account_statz: Vec<Stat>,
        }
        Ok(respond_json(
            r,
            &Accstatz {
                server_id: &self.info.server_id,
                now: rfc3339(self.now()),
                account_statz: out,
            },
            true,
        ))
    }

    fn routez(&self, r: &Request) -> Response {
        #[derive(Serialize)]
        struct Routez<'a> {
            server_id: &'a str,
            now: String,
            num_routes: u64,
            routes: [u8; 0],
        }
        respond_json(
            r,
            &Routez {
                server_id: &self.info.server_id,
                now: rfc3339(self.now()),
                num_routes: 0,
                routes: [],
            },
            true,
        )
    }

    fn gatewayz(&self, r: &Request) -> Response {
        #[derive(Serialize)]
        struct Gatewayz<'a> {
            server_id: &'a str,
            now: String,
            outbound_gateways: BTreeMap<String, u8>,
            inbound_gateways: BTreeMap<String, u8>,
        }
        respond_json(
            r,
            &Gatewayz {
                server_id: &self.info.server_id,
                now: rfc3339(self.now()),
                outbound_gateways: BTreeMap::new(),
                inbound_gateways: BTreeMap::new(),
            },
            true,
        )
    }

    fn leafz(&self, r: &Request) -> Response {
        #[derive(Serialize)]
        struct Leafz<'a> {
            server_id: &'a str,
            now: String,
            leafnodes: u64,
            leafs: Option<[u8; 0]>,
        }
        respond_json(
            r,
            &Leafz {
                server_id: &self.info.server_id,
                now: rfc3339(self.now()),
                leafnodes: 0,
                leafs: None,
            },
            true,
        )
    }
}

/// `/varz` keys in the reference's order; anything else follows.
const VARZ_ORDER: &[&str] = &[
    "server_id",
    "server_name",
    "version",
    "proto",
    "go",
    "host",
    "port",
    "auth_required",
    "tls_required",
    "tls_verify",
    "max_connections",
    "max_subscriptions",
    "ping_interval",
    "ping_max",
    "http_host",
    "http_port",
    "http_base_path",
    "https_port",
    "auth_timeout",
    "max_control_line",
    "max_payload",
    "max_pending",
    "cluster",
    "gateway",
    "leaf",
    "mqtt",
    "websocket",
    "jetstream",
    "tls_timeout",
    "write_deadline",
    "start",
    "now",
    "uptime",
    "mem",
    "cores",
    "gomaxprocs",
    "cpu",
    "connections",
    "total_connections",
    "routes",
    "remotes",
    "leafnodes",
    "in_msgs",
    "out_msgs",
    "in_bytes",
    "out_bytes",
    "slow_consumers",
    "subscriptions",
    "http_req_stats",
    "config_load_time",
];

/// A JSON object written with its keys in a given order.
struct Ordered(serde_json::Map<String, Value>, &'static [&'static str]);

impl Serialize for Ordered {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for k in self.1 {
            if let Some(v) = self.0.get(*k) {
                m.serialize_entry(k, v)?;
            }
        }
        for (k, v) in &self.0 {
            if !self.1.contains(&k.as_str()) {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_path_is_normalized_like_the_reference() {
        assert_eq!(normalize_base_path(""), "/");
        assert_eq!(normalize_base_path("nats"), "/nats");
        assert_eq!(normalize_base_path("/nats/"), "/nats");
        assert_eq!(normalize_base_path("//a/./b/"), "/a/b");
    }
}
