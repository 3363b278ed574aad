//! `/varz`: the server's configuration, resources and totals, with the
//! reference's keys in its order, and a `natrix` object with per-shard
//! detail.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::snapshot::ShardSnapshot;
use super::{go_float, Monitor};
use crate::timefmt::{rfc3339, uptime};

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
    /// Recent CPU use in tenths of a core, as placement sees it.
    pub busy_tenths: usize,
    /// The CPUs the shard's thread may run on: one when it is pinned.
    pub cpus: Vec<usize>,
}

impl From<&ShardSnapshot> for ShardJson {
    fn from(s: &ShardSnapshot) -> Self {
        ShardJson {
            id: s.id,
            connections: s.num_conns,
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
            busy_tenths: s.busy_tenths,
            cpus: s.cpus.clone(),
        }
    }
}

/// Process memory (resident bytes) and CPU (percent of one core over the
/// process's life, as `ps` reports it for the reference).
pub(crate) fn process_usage(uptime: Duration) -> (u64, f64) {
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
    pub(super) fn varz(&self) -> Ordered {
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
        put("config_load_time", rfc3339(self.config_load_time()).into());
        if !opts.server_tags.is_empty() {
            put("tags", opts.server_tags.clone().into());
        }
        if let Some(sys) = opts.system_account() {
            put("system_account", sys.into());
        }
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
        Ordered(v, VARZ_ORDER)
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
    "tags",
    "system_account",
];

/// A JSON object written with its keys in a given order.
pub struct Ordered(serde_json::Map<String, Value>, &'static [&'static str]);

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
