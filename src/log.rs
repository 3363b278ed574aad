//! Server log in the reference's format: `[pid] 2006/01/02 15:04:05.000000 [INF] text`.
//!
//! Logging is off the message path except for `-V` tracing, so a mutex around
//! the sink is fine. The level switches are atomics read without locking.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

static DEBUG: AtomicBool = AtomicBool::new(false);
static TRACE: AtomicBool = AtomicBool::new(false);
static LOGTIME: AtomicBool = AtomicBool::new(true);
/// `max_traced_msg_len`: traced message bodies are cut past this (0: never).
static MAX_TRACED: AtomicUsize = AtomicUsize::new(0);
static SINK: Mutex<Option<FileSink>> = Mutex::new(None);

/// The log file, with what it holds so far for `log_size_limit`.
struct FileSink {
    file: File,
    path: PathBuf,
    /// Bytes in the file (its size when opened, plus what was written).
    written: u64,
    /// Rotate once the file passes this many bytes (0: never).
    limit: u64,
}

fn open_append(p: &PathBuf) -> std::io::Result<(File, u64)> {
    let f = OpenOptions::new().create(true).append(true).open(p)?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((f, len))
}

/// Applies the logging options; `file` None logs to stderr. With a file,
/// `size_limit` (bytes, 0: none) rotates it as the reference's
/// `log_size_limit` does.
pub fn configure(
    debug: bool,
    trace: bool,
    logtime: bool,
    file: Option<PathBuf>,
    size_limit: u64,
) -> std::io::Result<()> {
    DEBUG.store(debug, Ordering::Relaxed);
    TRACE.store(trace, Ordering::Relaxed);
    LOGTIME.store(logtime, Ordering::Relaxed);
    let mut sink = SINK.lock().unwrap_or_else(|e| e.into_inner());
    *sink = match file {
        Some(path) => {
            let (file, written) = open_append(&path)?;
            Some(FileSink {
                file,
                path,
                written,
                limit: size_limit,
            })
        }
        None => None,
    };
    Ok(())
}

/// Reopens the log file (SIGUSR1), for log rotation.
pub fn reopen() -> std::io::Result<()> {
    let mut sink = SINK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = sink.as_mut() {
        (s.file, s.written) = open_append(&s.path)?;
    }
    Ok(())
}

/// The name a rotated log file is kept under, as the reference names it:
/// `<file>.YYYY.MM.DD.hh.mm.ss.nnnnnnnnn`.
fn backup_name(path: &std::path::Path, now: SystemTime) -> PathBuf {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = crate::timefmt::civil(days);
    let mut name = path.as_os_str().to_owned();
    name.push(format!(
        ".{year:04}.{month:02}.{day:02}.{:02}.{:02}.{:02}.{:09}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_nanos()
    ));
    PathBuf::from(name)
}

/// Once the file has passed its limit: keeps it under its backup name,
/// starts a new one and says so in it first.
fn rotate(s: &mut FileSink) {
    let bak = backup_name(&s.path, SystemTime::now());
    if let Err(e) = std::fs::rename(&s.path, &bak) {
        // As the reference: try again when the file has doubled.
        s.limit = s.limit.saturating_mul(2);
        let _ = s.file.write_all(
            line(
                "ERR",
                format_args!(
                    "Unable to rotate logfile ({e}), will attempt next rotation at size {}",
                    s.limit
                ),
            )
            .as_bytes(),
        );
        return;
    }
    match open_append(&s.path) {
        Ok((f, _)) => {
            s.file = f;
            let note = line(
                "INF",
                format_args!(
                    "Rotated log, backup saved as {:?}",
                    bak.display().to_string()
                ),
            );
            let _ = s.file.write_all(note.as_bytes());
            s.written = note.len() as u64;
        }
        Err(e) => {
            // Keep writing to the renamed file rather than lose lines.
            let _ = s.file.write_all(
                line(
                    "ERR",
                    format_args!("Unable to re-open the logfile after rotation: {e}"),
                )
                .as_bytes(),
            );
        }
    }
}

pub fn debug_enabled() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

pub fn trace_enabled() -> bool {
    TRACE.load(Ordering::Relaxed)
}

/// Sets `max_traced_msg_len` (at start and on reload).
pub fn set_max_traced_msg_len(n: usize) {
    MAX_TRACED.store(n, Ordering::Relaxed);
}

pub fn max_traced_msg_len() -> usize {
    MAX_TRACED.load(Ordering::Relaxed)
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

/// One log line, newline included.
fn line(level: &str, msg: std::fmt::Arguments<'_>) -> String {
    if LOGTIME.load(Ordering::Relaxed) {
        format!(
            "[{}] {} [{}] {}\n",
            std::process::id(),
            timestamp(SystemTime::now()),
            level,
            msg
        )
    } else {
        format!("[{}] [{}] {}\n", std::process::id(), level, msg)
    }
}

pub fn write(level: &str, msg: std::fmt::Arguments<'_>) {
    let line = line(level, msg);
    let mut sink = SINK.lock().unwrap_or_else(|e| e.into_inner());
    match sink.as_mut() {
        Some(s) => {
            if s.file.write_all(line.as_bytes()).is_ok() {
                s.written += line.len() as u64;
                if s.limit > 0 && s.written > s.limit {
                    rotate(s);
                }
            }
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
