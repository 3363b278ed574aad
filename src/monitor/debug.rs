//! `/stacksz` and `/ipqueuesz`, the reference's debugging endpoints.
//!
//! The reference dumps its goroutines' stacks; natrix has no goroutines,
//! so `/stacksz` lists the process's threads as the kernel reports them
//! (`/proc/self/task`): name, scheduler state, where it waits in the
//! kernel, and CPU time. `/ipqueuesz` reports natrix's internal queues:
//! on each shard, the messages collected for each peer shard and not yet
//! handed to the mesh.

use std::collections::BTreeMap;

use serde::Serialize;

use super::http::{Request, Response};
use super::query::{decode_bool, respond_body};
use super::Monitor;

/// The threads of this process, one paragraph each, in thread id order.
pub fn thread_dump() -> String {
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut tids: Vec<u64> = std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    tids.sort_unstable();
    let mut out = String::new();
    for tid in tids {
        let dir = format!("/proc/self/task/{tid}");
        let Ok(stat) = std::fs::read_to_string(format!("{dir}/stat")) else {
            continue; // the thread ended meanwhile
        };
        // "tid (comm) S ...": the name may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let state = match f.first().copied().unwrap_or("?") {
            "R" => "R (running)",
            "S" => "S (sleeping)",
            "D" => "D (disk sleep)",
            "T" => "T (stopped)",
            "t" => "t (tracing stop)",
            "Z" => "Z (zombie)",
            "X" => "X (dead)",
            "I" => "I (idle)",
            other => other,
        };
        let cpu = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / ticks;
        let wchan = std::fs::read_to_string(format!("{dir}/wchan")).unwrap_or_default();
        let wchan = match wchan.trim() {
            "" | "0" => "-",
            w => w,
        };
        out.push_str(&format!(
            "thread {tid} [{state}]:\n\tname: {name}\n\twaiting in: {wchan}\n\tcpu: user {:.2}s, system {:.2}s\n\n",
            cpu(11),
            cpu(12)
        ));
    }
    out
}

/// `/stacksz`: the thread dump, sent with the reference's content type.
pub fn stacksz() -> Response {
    Response::new(200, "application/json", thread_dump())
}

/// `/ipqueuesz` parameters: `all` includes empty queues, `queues` keeps
/// those whose name contains it.
pub struct IpqueueszOptions {
    all: bool,
    filter: String,
}

impl IpqueueszOptions {
    pub fn from_query(r: &Request) -> Result<IpqueueszOptions, Response> {
        Ok(IpqueueszOptions {
            all: decode_bool(r, "all")?,
            filter: r.get("queues").to_string(),
        })
    }
}

#[derive(Serialize)]
struct QueueJson {
    pending: usize,
}

impl Monitor {
    pub(super) fn ipqueuesz(&self, r: &Request, o: &IpqueueszOptions) -> Response {
        let m = self.gather();
        let mut queues: BTreeMap<String, QueueJson> = BTreeMap::new();
        for s in &m.shards {
            for &(peer, pending) in &s.mesh_pending {
                let name = format!("Shard {} mesh to shard {peer}", s.id);
                if (!o.all && pending == 0) || !name.contains(&o.filter) {
                    continue;
                }
                queues.insert(name, QueueJson { pending });
            }
        }
        // Indented with three spaces, as the reference writes this one.
        let mut body = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
        let mut ser = serde_json::Serializer::with_formatter(&mut body, fmt);
        let _ = queues.serialize(&mut ser);
        respond_body(r, body)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn thread_dump_lists_this_thread() {
        let name = "dump-me";
        let (tid, dump) = std::thread::Builder::new()
            .name(name.into())
            .spawn(|| (unsafe { libc::gettid() }, super::thread_dump()))
            .unwrap()
            .join()
            .unwrap();
        assert!(dump.contains(&format!("thread {tid} [")), "{dump}");
        assert!(dump.contains(&format!("\tname: {name}\n")), "{dump}");
        assert!(
            dump.contains("[R (running)]") || dump.contains("(sleeping)"),
            "{dump}"
        );
    }
}
