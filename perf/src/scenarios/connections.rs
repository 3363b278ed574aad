//! Connection handling: how fast a server accepts full handshakes, and how
//! much memory it spends per idle connection.

use std::thread;
use std::time::{Duration, Instant};

use crate::client::{Conn, ConnectOpts, SMALL_BUF};
use crate::error::{bail, Context, Error, Result};
use crate::pin::Pinner;

use super::{Better, Diagnostic, Metric, Outcome, Target};

#[derive(Clone, Debug)]
pub struct StormSpec {
    pub connections: usize,
    pub threads: usize,
}

#[derive(Clone, Debug)]
pub struct IdleSpec {
    pub connections: usize,
    pub threads: usize,
}

/// Lets the server finish start-up work (and the Go runtime its first GC
/// cycles) before the baseline RSS sample, and settle after the last
/// connection before the second.
const SETTLE: Duration = Duration::from_millis(500);

/// Each iteration: connect, read `INFO`, send `CONNECT`+`PING`, wait for
/// `PONG`, close.
pub fn storm(spec: &StormSpec, target: &mut Target<'_>) -> Result<Outcome> {
    let start = Instant::now();
    let counts = fan_out(
        spec.connections,
        spec.threads,
        &target.pinner,
        &target.opts,
        |opts, n, deadline| {
            for i in 0..n {
                Conn::connect(opts, SMALL_BUF, deadline).context(format_args!("connection {i}"))?;
            }
            Ok(n)
        },
        target.deadline,
    )?;
    let secs = start.elapsed().as_secs_f64();
    let done: usize = counts.iter().sum();
    Ok(Outcome {
        metrics: vec![Metric {
            name: "connects/s",
            unit: "conn/s",
            better: Better::Higher,
            value: done as f64 / secs,
        }],
        diagnostics: vec![Diagnostic {
            name: "elapsed (s)",
            value: secs,
        }],
        latency: None,
        cpu: None,
    })
}

/// Server RSS growth divided by the number of idle, fully handshaken
/// connections held open.
pub fn idle(spec: &IdleSpec, target: &mut Target<'_>) -> Result<Outcome> {
    let limit = crate::rlimit::nofile()?;
    if limit < spec.connections as u64 + 256 {
        bail!(
            "RLIMIT_NOFILE is {limit}; {} connections need more (ulimit -n)",
            spec.connections
        );
    }
    thread::sleep(SETTLE);
    let before = target.server.rss_bytes()?;
    let groups = fan_out(
        spec.connections,
        spec.threads,
        &target.pinner,
        &target.opts,
        |opts, n, deadline| {
            (0..n)
                .map(|i| {
                    Conn::connect(opts, SMALL_BUF, deadline).context(format_args!("connection {i}"))
                })
                .collect::<Result<Vec<Conn>>>()
        },
        target.deadline,
    )?;
    thread::sleep(SETTLE);
    let after = target.server.rss_bytes()?;
    target.server.check_alive()?;

    // Every connection must still be served, or the number is meaningless.
    let alive = verify_alive(groups, &target.pinner, target.deadline)?;
    if alive != spec.connections {
        bail!(
            "only {alive} of {} connections answered PING",
            spec.connections
        );
    }
    let per_conn = after.saturating_sub(before) as f64 / spec.connections as f64;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    Ok(Outcome {
        metrics: vec![Metric {
            name: "RSS per idle conn",
            unit: "KiB",
            better: Better::Lower,
            value: per_conn / 1024.0,
        }],
        diagnostics: vec![
            Diagnostic {
                name: "RSS before (MiB)",
                value: mib(before),
            },
            Diagnostic {
                name: "RSS after (MiB)",
                value: mib(after),
            },
        ],
        latency: None,
        cpu: None,
    })
}

/// PINGs every connection, then closes them all with RST so ten thousand
/// client ports are not left in TIME_WAIT for the next run.
fn verify_alive(groups: Vec<Vec<Conn>>, pinner: &Pinner, deadline: Instant) -> Result<usize> {
    let handles: Vec<_> = groups
        .into_iter()
        .map(|conns| {
            let pinner = pinner.clone();
            thread::spawn(move || -> Result<usize> {
                pinner.pin_current();
                let mut ok = 0;
                let mut first_err = None;
                for mut c in conns {
                    match c.flush(deadline) {
                        Ok(()) => ok += 1,
                        Err(e) => {
                            first_err.get_or_insert(e);
                        }
                    }
                    c.abort();
                }
                match first_err {
                    Some(e) if ok == 0 => Err(e),
                    _ => Ok(ok),
                }
            })
        })
        .collect();
    let mut alive = 0;
    for h in handles {
        alive += h.join().expect("verify thread panicked")?;
    }
    Ok(alive)
}

/// Splits `total` connections over `threads` threads, each running `work`
/// with its share, and gathers the results in thread order.
fn fan_out<T, F>(
    total: usize,
    threads: usize,
    pinner: &Pinner,
    opts: &ConnectOpts,
    work: F,
    deadline: Instant,
) -> Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(&ConnectOpts, usize, Instant) -> Result<T> + Send + Sync + Clone + 'static,
{
    let threads = threads.clamp(1, total.max(1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let share = total / threads + usize::from(t < total % threads);
            let (pinner, opts, work) = (
                pinner.clone(),
                opts.named(format!("bench-conn-{t}")),
                work.clone(),
            );
            thread::spawn(move || {
                pinner.pin_current();
                work(&opts, share, deadline)
            })
        })
        .collect();
    let mut out = Vec::with_capacity(threads);
    let mut errors = Vec::new();
    for (t, h) in handles.into_iter().enumerate() {
        match h.join().expect("connection thread panicked") {
            Ok(v) => out.push(v),
            Err(e) => errors.push(format!("thread {t}: {e}")),
        }
    }
    if !errors.is_empty() {
        return Err(Error(errors.join("; ")));
    }
    Ok(out)
}
