//! natrix-only `shards { count, cpus, pin, io_memory, spin }`: how many
//! thread-per-core shards to run, which CPUs to pin them to (or none),
//! each one's I/O memory, and how long an idle shard polls before it
//! sleeps.
//!
//! Invariants: `count` is at least 1 and, when `cpus` is also given, equals
//! its length; a CPU is listed at most once; `io_memory` is a positive byte
//! size (an integer such as `64MB` or a quoted size such as `"1GiB"`);
//! `pin: false` cannot be combined with `cpus`; without `pin`, shards are
//! pinned when `cpus` lists them or when they leave a CPU to spare;
//! `spin` is a duration string of at most 10ms (`"50us"`). The
//! reference has no such block, so a config that uses it is natrix-only.

use std::sync::Arc;
use std::time::Duration;

use super::{duration_str, Node};
use crate::config::lex::{Scalar, Scanner};
use crate::config::{ConfigError, Value};
/// natrix-only `shards { count, cpus, pin, io_memory, spin }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardsConfig {
    /// Number of shards (one per core); `None` means one per available CPU
    /// (or one per entry of `cpus`).
    pub count: Option<usize>,
    /// CPUs to pin shards to, in shard order; empty means the default:
    /// shard i on the i-th available CPU while there are enough of them.
    pub cpus: Vec<usize>,
    /// Whether shards are pinned: `false` leaves them to the kernel's
    /// scheduler, `true` pins shard i to the i-th CPU (or to `cpus`).
    /// `None` (the default) pins them when `cpus` lists them, or when there
    /// are fewer shards than CPUs; with a shard on every CPU it leaves them
    /// unpinned, since a pinned shard must then share its CPU with whatever
    /// else runs there (clients on the same machine) and waits for it.
    pub pin: Option<bool>,
    /// Bytes of I/O buffer memory per shard; `None` means the default.
    pub io_memory: Option<u64>,
    /// How long an idle shard keeps polling before it sleeps: a message
    /// from a client or another shard that arrives meanwhile is picked up
    /// without a wake-up. Zero (the default) sleeps at once.
    pub spin: Duration,
}

impl Default for ShardsConfig {
    fn default() -> Self {
        ShardsConfig {
            count: None,
            cpus: Vec::new(),
            pin: None,
            io_memory: None,
            spin: Duration::ZERO,
        }
    }
}

/// The longest `spin` accepted: beyond it a shard burns its core for
/// nothing a sleep would not do as well.
const SPIN_MAX: Duration = Duration::from_millis(10);

pub(super) fn shards(n: &Node<'_>) -> Result<ShardsConfig, ConfigError> {
    const KEYS: &[&str] = &["count", "cpus", "pin", "io_memory", "spin"];
    let mut s = ShardsConfig::default();
    let mut count_node = None;
    let mut pin_node = None;
    for field in n.entries()? {
        let v = &field.node;
        match field.name.as_str() {
            "count" => {
                let c: usize = v.int_as("shards count")?;
                if c == 0 {
                    return Err(v.err("shards count must be at least 1"));
                }
                s.count = Some(c);
                count_node = Some(v.clone());
            }
            "cpus" => {
                s.cpus.clear();
                for item in v.items()? {
                    let cpu: usize = item.int_as("a CPU number")?;
                    if s.cpus.contains(&cpu) {
                        return Err(item.err(format!("CPU {cpu} is listed twice")));
                    }
                    s.cpus.push(cpu);
                }
            }
            "pin" => {
                s.pin = Some(v.bool()?);
                pin_node = Some(v.clone());
            }
            "io_memory" => {
                let bytes = size(v)?;
                if bytes == 0 {
                    return Err(v.err("io_memory must be positive"));
                }
                s.io_memory = Some(bytes);
            }
            "spin" => {
                let d = duration_str(v)?;
                if d > SPIN_MAX {
                    return Err(v.err(format!(
                        "spin must be at most {} (a shard polling longer only burns its core)",
                        crate::config::check::show_duration(SPIN_MAX)
                    )));
                }
                s.spin = d;
            }
            _ => field.unknown(KEYS)?,
        }
    }
    if let Some(node) = pin_node.filter(|_| s.pin == Some(false) && !s.cpus.is_empty()) {
        return Err(node.err("pin: false cannot be combined with a cpus list"));
    }
    if let (Some(count), Some(node)) = (s.count, count_node) {
        if !s.cpus.is_empty() && s.cpus.len() != count {
            return Err(node.err(format!(
                "shards count ({count}) does not match the number of cpus listed ({})",
                s.cpus.len()
            )));
        }
    }
    Ok(s)
}

/// A byte size: an integer (`64MB` is already one) or a quoted size.
fn size(n: &Node<'_>) -> Result<u64, ConfigError> {
    let bytes = match n.value() {
        Value::Integer(i) => *i,
        Value::String(s) => {
            let mut sc = Scanner::new(s.trim(), Arc::clone(&n.pos().file));
            match sc.scan_scalar() {
                Ok(Scalar::Integer(i)) if sc.peek().is_none() => i,
                _ => {
                    return Err(n.err(format!(
                        "invalid size {s:?}: expected a number with an optional suffix such as 64MB"
                    )))
                }
            }
        }
        _ => return Err(n.expected("a size such as 64MB")),
    };
    u64::try_from(bytes).map_err(|_| n.err("a size must not be negative"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::test_support::{err, ok};

    #[test]
    fn shards_block() {
        let c = ok("shards {\n  count: 4\n  cpus: [0, 2, 4, 6]\n  io_memory: 64MB\n}");
        assert_eq!(
            c.shards,
            ShardsConfig {
                count: Some(4),
                cpus: vec![0, 2, 4, 6],
                pin: None,
                io_memory: Some(64 << 20),
                spin: Duration::ZERO,
            }
        );
        assert_eq!(
            ok("shards { count: 2, pin: false }").shards.pin,
            Some(false)
        );
        assert_eq!(ok("shards { count: 2, pin: true }").shards.pin, Some(true));
        assert_eq!(
            err("shards { cpus: [0, 1]\n  pin: false }"),
            "<string>:2:8: shards.pin: pin: false cannot be combined with a cpus list"
        );
        assert_eq!(
            ok("shards { spin: \"50us\" }").shards.spin,
            Duration::from_micros(50)
        );
        assert_eq!(
            err("shards { spin: \"1s\" }"),
            "<string>:1:16: shards.spin: spin must be at most 10ms (a shard polling longer only burns its core)"
        );
        assert_eq!(
            ok("shards { io_memory: \"1GiB\" }").shards.io_memory,
            Some(1 << 30)
        );
        assert_eq!(
            err("shards { count: 2, cpus: [0, 1, 2] }"),
            "<string>:1:17: shards.count: shards count (2) does not match the number of cpus listed (3)"
        );
        assert_eq!(
            err("shards { count: 0 }"),
            "<string>:1:17: shards.count: shards count must be at least 1"
        );
        assert_eq!(
            err("shards { cpus: [1, 1] }"),
            "<string>:1:20: shards.cpus[1]: CPU 1 is listed twice"
        );
        assert!(err("shards { io_memory: \"lots\" }").contains("invalid size \"lots\""));
        assert!(err("shards { cores: 2 }").contains("unknown field \"cores\""));
    }
}
