//! Server log in the reference's format: `[pid] 2006/01/02 15:04:05.000000 [INF] text`.
//!
//! Logging is off the message path except for `-V` tracing, so a mutex around
//! the sink is fine. The level switches are atomics read without locking.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

static DEBUG: AtomicBool = AtomicBool::new(false);
static TRACE: AtomicBool = AtomicBool::new(false);
static LOGTIME: AtomicBool = AtomicBool::new(true);
static SINK: Mutex<Option<(File, PathBuf)>> = Mutex::new(None);

/// Applies the logging options; `file` None logs to stderr.
pub fn configure(
    debug: bool,
    trace: bool,
    logtime: bool,
    file: Option<PathBuf>,
) -> std::io::Result<()> {
    DEBUG.store(debug, Ordering::Relaxed);
    TRACE.store(trace, Ordering::Relaxed);
    LOGTIME.store(logtime, Ordering::Relaxed);
    let mut sink = SINK.lock().unwrap_or_else(|e| e.into_inner());
    *sink = match file {
        Some(p) => Some((OpenOptions::new().create(true).append(true).open(&p)?, p)),
        None => None,
    };
    Ok(())
}

/// Reopens the log file (SIGUSR1), for log rotation.
pub fn reopen() -> std::io::Result<()> {
    let mut sink = SINK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((f, p)) = sink.as_mut() {
        *f = OpenOptions::new().create(true).append(true).open(&*p)?;
    }
    Ok(())
}

pub fn debug_enabled() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

pub fn trace_enabled() -> bool {
    TRACE.load(Ordering::Relaxed)
}

/// Formats a UTC timestamp like Go's `2006/01/02 15:04:05.000000`.
fn timestamp(now: SystemTime) -> String {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = crate::timefmt::civil(days);
    format!(
        "{year:04}/{month:02}/{day:02} {:02}:{:02}:{:02}.{:06}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_micros()
    )
}

pub fn write(level: &str, msg: std::fmt::Arguments<'_>) {
    let line = if LOGTIME.load(Ordering::Relaxed) {
        format!(
            "[{}] {} [{}] {}\n",
            std::process::id(),
            timestamp(SystemTime::now()),
            level,
            msg
        )
    } else {
        format!("[{}] [{}] {}\n", std::process::id(), level, msg)
    };
    let mut sink = SINK.lock().unwrap_or_else(|e| e.into_inner());
    match sink.as_mut() {
        Some((f, _)) => {
            let _ = f.write_all(line.as_bytes());
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::log::write("INF", format_args!($($t)*)) };
}
#[macro_export]
macro_rules! warn {
    ($($t:tt)*) => { $crate::log::write("WRN", format_args!($($t)*)) };
}
#[macro_export]
macro_rules! error {
    ($($t:tt)*) => { $crate::log::write("ERR", format_args!($($t)*)) };
}
#[macro_export]
macro_rules! fatal {
    ($($t:tt)*) => { $crate::log::write("FTL", format_args!($($t)*)) };
}
#[macro_export]
macro_rules! debug {
    ($($t:tt)*) => { if $crate::log::debug_enabled() { $crate::log::write("DBG", format_args!($($t)*)) } };
}
#[macro_export]
macro_rules! trace {
    ($($t:tt)*) => { if $crate::log::trace_enabled() { $crate::log::write("TRC", format_args!($($t)*)) } };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamp_format() {
        let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(timestamp(t), "2023/11/14 22:13:20.123456");
        assert_eq!(timestamp(UNIX_EPOCH), "1970/01/01 00:00:00.000000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&timestamp(leap)[..10], "2000/02/29");
    }
}
