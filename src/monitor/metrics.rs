//! `/metrics`: the same counters as `/varz` and `/accstatz`, per server,
//! per shard and per account, in the Prometheus text exposition format
//! (version 0.0.4).

use std::fmt::Write;

use super::http::Response;
use super::{Merged, Monitor};

/// A label value with `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(val));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {v}");
    }
}

/// Renders every series.
pub fn render(mon: &Monitor, m: &Merged) -> Response {
    let mut o = Out(String::with_capacity(8192));
    let t = m.totals();
    let server: [(&str, &str, &str, f64); 8] = [
        (
            "natrix_connections",
            "gauge",
            "Client connections open.",
            t.connections as f64,
        ),
        (
            "natrix_connections_total",
            "counter",
            "Client connections accepted since start.",
            t.total_connections as f64,
        ),
        (
            "natrix_subscriptions",
            "gauge",
            "Client subscriptions.",
            t.subscriptions as f64,
        ),
        (
            "natrix_in_msgs_total",
            "counter",
            "Messages received from clients.",
            t.in_msgs as f64,
        ),
        (
            "natrix_out_msgs_total",
            "counter",
            "Messages delivered to clients.",
            t.out_msgs as f64,
        ),
        (
            "natrix_in_bytes_total",
            "counter",
            "Message bytes received from clients.",
            t.in_bytes as f64,
        ),
        (
            "natrix_out_bytes_total",
            "counter",
            "Message bytes delivered to clients.",
            t.out_bytes as f64,
        ),
        (
            "natrix_slow_consumers_total",
            "counter",
            "Clients closed as slow consumers.",
            t.slow_consumers as f64,
        ),
    ];
    for (name, kind, help, v) in server {
        o.family(name, kind, help);
        o.sample(name, &[], v);
    }
    o.family(
        "natrix_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
    );
    o.sample(
        "natrix_uptime_seconds",
        &[],
        mon.start_instant.elapsed().as_secs_f64(),
    );
    o.family(
        "natrix_shards",
        "gauge",
        "Shards (pinned executors) running.",
    );
    o.sample("natrix_shards", &[], m.shards.len() as f64);

    type ShardField = fn(&super::snapshot::ShardSnapshot) -> f64;
    let shard: [(&str, &str, &str, ShardField); 11] = [
        (
            "natrix_shard_connections",
            "gauge",
            "Client connections open on the shard.",
            |s| s.num_conns as f64,
        ),
        (
            "natrix_shard_connections_total",
            "counter",
            "Client connections the shard served since start.",
            |s| s.total_connections as f64,
        ),
        (
            "natrix_shard_subscriptions",
            "gauge",
            "Client subscriptions on the shard.",
            |s| s.subscriptions as f64,
        ),
        (
            "natrix_shard_in_msgs_total",
            "counter",
            "Messages received from the shard's clients.",
            |s| s.in_msgs as f64,
        ),
        (
            "natrix_shard_out_msgs_total",
            "counter",
            "Messages delivered to the shard's clients.",
            |s| s.out_msgs as f64,
        ),
        (
            "natrix_shard_in_bytes_total",
            "counter",
            "Message bytes received from the shard's clients.",
            |s| s.in_bytes as f64,
        ),
        (
            "natrix_shard_out_bytes_total",
            "counter",
            "Message bytes delivered to the shard's clients.",
            |s| s.out_bytes as f64,
        ),
        (
            "natrix_shard_mesh_sent_total",
            "counter",
            "Messages the shard sent to other shards.",
            |s| s.mesh_out as f64,
        ),
        (
            "natrix_shard_mesh_received_total",
            "counter",
            "Messages the shard received from other shards.",
            |s| s.mesh_in as f64,
        ),
        (
            "natrix_shard_stalled_seconds_total",
            "counter",
            "Time the shard's producers waited for back-pressure.",
            |s| s.stalled_ns as f64 / 1e9,
        ),
        (
            "natrix_shard_cpu_seconds_total",
            "counter",
            "CPU time of the shard's thread.",
            |s| s.cpu_ns as f64 / 1e9,
        ),
    ];
    for (name, kind, help, f) in shard {
        o.family(name, kind, help);
        for s in &m.shards {
            o.sample(name, &[("shard", &s.id.to_string())], f(s));
        }
    }

    type AccField = fn(&super::snapshot::AccountCounters) -> f64;
    let account: [(&str, &str, &str, AccField); 8] = [
        (
            "natrix_account_connections",
            "gauge",
            "Client connections open in the account.",
            |a| a.conns as f64,
        ),
        (
            "natrix_account_connections_total",
            "counter",
            "Client connections bound to the account since start.",
            |a| a.total_conns as f64,
        ),
        (
            "natrix_account_subscriptions",
            "gauge",
            "Subscriptions in the account.",
            |a| a.subscriptions as f64,
        ),
        (
            "natrix_account_in_msgs_total",
            "counter",
            "Messages the account's clients published.",
            |a| a.in_msgs as f64,
        ),
        (
            "natrix_account_out_msgs_total",
            "counter",
            "Messages delivered to the account's clients.",
            |a| a.out_msgs as f64,
        ),
        (
            "natrix_account_in_bytes_total",
            "counter",
            "Message bytes the account's clients published.",
            |a| a.in_bytes as f64,
        ),
        (
            "natrix_account_out_bytes_total",
            "counter",
            "Message bytes delivered to the account's clients.",
            |a| a.out_bytes as f64,
        ),
        (
            "natrix_account_slow_consumers_total",
            "counter",
            "The account's clients closed as slow consumers.",
            |a| a.slow_consumers as f64,
        ),
    ];
    for (name, kind, help, f) in account {
        o.family(name, kind, help);
        for a in m.accounts.values() {
            o.sample(name, &[("account", &a.name)], f(a));
        }
    }
    Response::new(200, "text/plain; version=0.0.4; charset=utf-8", o.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
