//! HTTP monitoring: the reference's endpoints (`/varz`, `/connz`,
//! `/subsz`, `/accountz`, `/accstatz`, `/routez`, `/gatewayz`, `/leafz`,
//! `/jsz`, `/healthz`, `/stacksz`, `/ipqueuesz`, and an index at the base
//! path) with its field names, types, units and query parameters, plus
//! `/metrics` in the Prometheus text format and a `natrix` object in
//! `/varz` with per-shard detail.
//!
//! Each endpoint lives in its own file as one builder: an options struct
//! in, a serializable answer out. The options come from HTTP query
//! parameters ([`query`]) or from the JSON body of a `$SYS` request
//! ([`gojson`], [`Monitor::api_data`]); both paths call the same builder.
//!
//! Nothing is shared with the message path. The HTTP server runs on plain
//! std threads ([`http`]); for each request it asks every shard for a
//! [`snapshot::ShardSnapshot`] of what the request needs
//! ([`snapshot::Query`]) over the shard's control channel, waits for the
//! answers (bounded), and merges them. Shards keep their own counters in
//! `Cell`s, and closed connections in a bounded ring each.

mod accountz;
mod api;
mod cluster;
mod connz;
mod debug;
pub mod gojson;
pub mod http;
mod jsz;
pub mod metrics;
mod query;
pub mod snapshot;
mod subsz;
pub(crate) mod varz;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::options::Options;
use crate::proto::encode::ServerInfo;
use crate::shard::{Control, MAX_CLOSED_CLIENTS};
use http::{Request, Response};
use query::reply;
use snapshot::{AccountCounters, ConnInfo, Query, ShardSnapshot, SubInfo};

pub use varz::ShardJson;

/// The reference's default page size for `/connz`.
pub const DEFAULT_CONN_LIST: usize = 1024;
/// The reference's default page size for `/subsz`.
pub const DEFAULT_SUB_LIST: usize = 1024;
/// How long a request waits for the shards' snapshots.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(2);

pub use crate::plane::ShardLink;

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

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// A float as Go's `encoding/json` writes it: whole values without a
/// fraction.
pub(crate) fn go_float(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        Value::from(v as i64)
    } else {
        Value::from(v)
    }
}

fn since(later: SystemTime, earlier: SystemTime) -> Duration {
    later.duration_since(earlier).unwrap_or_default()
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
        self.shards.iter().map(|s| s.num_conns).sum()
    }

    /// The open connections the query selected.
    pub fn open(&self) -> impl Iterator<Item = &ConnInfo> {
        self.shards.iter().flat_map(|s| s.conns.iter())
    }

    /// The server's own subscriptions (gathered with every open
    /// connection).
    pub fn internal_subs(&self) -> impl Iterator<Item = &SubInfo> {
        self.shards.iter().flat_map(|s| s.internal_subs.iter())
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

    fn config_load_time(&self) -> SystemTime {
        *self
            .config_load_time
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Counters and accounts of every shard, no connections.
    pub fn gather(&self) -> Merged {
        self.gather_for(Query::default())
    }

    /// Asks every shard for what `q` needs and merges what comes back
    /// within the wait.
    pub fn gather_for(&self, q: Query) -> Merged {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut asked = 0;
        for s in &self.shards {
            if s.send(Control::Snapshot(q.clone(), tx.clone())) {
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
            "/jsz" => "/jsz",
            "/healthz" => "/healthz",
            "/stacksz" => "/stacksz",
            "/ipqueuesz" => "/ipqueuesz",
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
            "/varz" => Ok(reply(r, Ok(self.varz()))),
            "/connz" => connz::ConnzOptions::from_query(r).map(|o| reply(r, self.connz(&o))),
            "/subsz" => subsz::SubszOptions::from_query(r)
                .map(|o| reply(r, self.subsz(&o).map(subsz::Subsz::for_http))),
            "/accountz" => Ok(reply(
                r,
                self.accountz(&accountz::AccountzOptions::from_query(r)),
            )),
            "/accstatz" => {
                accountz::AccstatzOptions::from_query(r).map(|o| reply(r, Ok(self.accstatz(&o))))
            }
            "/routez" => {
                cluster::RoutezOptions::from_query(r).map(|o| reply(r, Ok(self.routez(&o))))
            }
            "/gatewayz" => {
                cluster::GatewayzOptions::from_query(r).map(|o| reply(r, Ok(self.gatewayz(&o))))
            }
            "/leafz" => cluster::LeafzOptions::from_query(r).map(|o| reply(r, Ok(self.leafz(&o)))),
            "/jsz" => jsz::JszOptions::from_query(r)
                .map(|o| reply(r, self.jsz(&o).ok_or_else(|| jsz::NOT_LEADER.to_string()))),
            "/healthz" => jsz::HealthzOptions::from_query(r).map(|o| self.healthz_http(r, &o)),
            "/stacksz" => Ok(debug::stacksz()),
            "/ipqueuesz" => debug::IpqueueszOptions::from_query(r).map(|o| self.ipqueuesz(r, &o)),
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

    /// The index: the reference's links in its order (it does not list
    /// `/stacksz` and `/ipqueuesz`), then `/metrics`, natrix's own.
    fn index(&self) -> Response {
        let links = [
            ("varz", "General"),
            ("jsz", "JetStream"),
            ("connz", "Connections"),
            ("accountz", "Accounts"),
            ("accstatz", "Account Stats"),
            ("subsz", "Subscriptions"),
            ("routez", "Routes"),
            ("leafz", "LeafNodes"),
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
