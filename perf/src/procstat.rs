//! Server CPU time from /proc: the whole process, and natrix's shard
//! threads one by one, so a run shows how evenly the shards were loaded.

use std::fs;

use crate::error::Result;

/// Prefix of natrix's shard thread names (`natrix-shard-<i>`; glommio adds
/// a suffix, and the kernel keeps 15 bytes of a thread name).
pub const SHARD_PREFIX: &str = "natrix-shard";

/// CPU seconds (user + system) spent so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CpuSample {
    pub process: f64,
    /// Indexed by shard number: every thread named `natrix-shard-<i>…`
    /// counts towards shard `i`. Empty for servers without such threads.
    pub shards: Vec<f64>,
}

/// CPU time spent during one run: `after - before`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CpuUsage {
    pub process: f64,
    pub shards: Vec<f64>,
}

impl CpuSample {
    pub fn since(&self, before: &CpuSample) -> CpuUsage {
        CpuUsage {
            process: (self.process - before.process).max(0.0),
            shards: self
                .shards
                .iter()
                .enumerate()
                .map(|(i, s)| (s - before.shards.get(i).copied().unwrap_or(0.0)).max(0.0))
                .collect(),
        }
    }
}

impl CpuUsage {
    /// "1.20 / 1.10 / 0.00 / 2.30", or "—" without shard threads.
    pub fn shards_line(&self) -> String {
        if self.shards.is_empty() {
            return "—".into();
        }
        self.shards
            .iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
            .join(" / ")
    }

    /// Busiest shard over the mean: 1.0 is perfectly even, N means one
    /// shard of N did all the work. `None` without shards or work.
    pub fn imbalance(&self) -> Option<f64> {
        let n = self.shards.len();
        let total: f64 = self.shards.iter().sum();
        if n == 0 || total <= 0.0 {
            return None;
        }
        let max = self.shards.iter().copied().fold(0.0, f64::max);
        Some(max / (total / n as f64))
    }
}

/// Reads the process's and its shard threads' CPU time.
pub fn sample(pid: u32) -> Result<CpuSample> {
    let tick = clock_ticks();
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let (_, process) = parse_stat(&stat).ok_or("unparsable /proc/PID/stat")?;
    let mut shards: Vec<f64> = Vec::new();
    for entry in fs::read_dir(format!("/proc/{pid}/task"))? {
        let Ok(entry) = entry else { continue };
        // A thread may exit between listing and reading; skip it.
        let Ok(text) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((comm, ticks)) = parse_stat(&text) else {
            continue;
        };
        if let Some(i) = shard_index(comm) {
            if shards.len() <= i {
                shards.resize(i + 1, 0.0);
            }
            shards[i] += ticks as f64 / tick;
        }
    }
    Ok(CpuSample {
        process: process as f64 / tick,
        shards,
    })
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// `(comm, utime + stime)` from a `stat` line. The name sits in
/// parentheses and may itself contain spaces or parentheses, so fields are
/// counted from the last `)`.
pub fn parse_stat(line: &str) -> Option<(&str, u64)> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let comm = line.get(open + 1..close)?;
    // After ") ": state(3) ppid(4) ... utime(14) stime(15).
    let mut fields = line.get(close + 1..)?.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((comm, utime + stime))
}

/// Shard number of a natrix shard thread: `natrix-shard-3-…` → 3.
pub fn shard_index(comm: &str) -> Option<usize> {
    let rest = comm.strip_prefix(SHARD_PREFIX)?.strip_prefix('-')?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines() {
        let line =
            "15009 (natrix-shard-0-) S 1 15004 6690 0 -1 4194624 16 0 0 0 250 40 0 0 20 0 5 0";
        assert_eq!(parse_stat(line), Some(("natrix-shard-0-", 290)));
        let odd = "7 (a) b (c) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14";
        assert_eq!(parse_stat(odd), Some(("a) b (c", 23)));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn shard_numbers_from_thread_names() {
        assert_eq!(shard_index("natrix-shard-0-"), Some(0));
        assert_eq!(shard_index("natrix-shard-1-"), Some(1));
        assert_eq!(shard_index("natrix-shard-12"), Some(12));
        assert_eq!(shard_index("natrix"), None);
        assert_eq!(shard_index("natrix-shard-"), None);
        assert_eq!(shard_index("nats-server"), None);
    }

    #[test]
    fn usage_is_the_difference() {
        let before = CpuSample {
            process: 1.0,
            shards: vec![0.5, 0.5],
        };
        let after = CpuSample {
            process: 4.0,
            shards: vec![1.7, 0.5, 1.0],
        };
        let u = after.since(&before);
        assert!((u.process - 3.0).abs() < 1e-9);
        assert_eq!(u.shards_line(), "1.20 / 0.00 / 1.00");
        assert!((u.imbalance().unwrap() - 1.2 / (2.2 / 3.0)).abs() < 1e-9);
        assert_eq!(CpuUsage::default().shards_line(), "—");
        assert_eq!(CpuUsage::default().imbalance(), None);
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.process >= 0.0);
        assert!(s.shards.is_empty());
    }
}
