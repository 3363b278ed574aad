//! Request/reply latency at a fixed offered rate.
//!
//! Requests are scheduled at `start + i / rate` and each reply's latency is
//! measured from that intended send time, not from when the request was
//! actually written. A stall (in the server or the client) therefore shows
//! up in every request it delayed, which corrects for coordinated omission.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::client::{Conn, FrameReader, ReadOutcome, Stream, BIG_BUF};
use crate::error::{bail, Context, Result};
use crate::pin::Pinner;
use crate::proto::{self, encode_pub, Frame, PubTemplate, Stamp};

use super::throughput::Tally;
use super::{Better, Diagnostic, Metric, Outcome, Target};

const REQUEST_SUBJECT: &str = "bench.req";
const REPLY_SUBJECT: &str = "bench.reply";
pub const LATENCY_SUBJECTS: [&str; 2] = [REQUEST_SUBJECT, REPLY_SUBJECT];

/// Replies stopping for this long (at any rate worth measuring) means the
/// server has stalled; the run fails then instead of at its deadline.
const STALL_LIMIT: Duration = Duration::from_secs(5);

/// Latency percentiles reported, as (label, quantile).
pub const PERCENTILES: [(&str, f64); 5] = [
    ("p50", 0.50),
    ("p90", 0.90),
    ("p99", 0.99),
    ("p99.9", 0.999),
    ("p99.99", 0.9999),
];

#[derive(Clone, Debug)]
pub struct LatencySpec {
    /// Requests per second offered, regardless of how fast replies come.
    pub rate: u64,
    pub duration: Duration,
    pub payload: usize,
}

impl LatencySpec {
    fn total(&self) -> u64 {
        (self.rate as f64 * self.duration.as_secs_f64())
            .round()
            .max(1.0) as u64
    }
}

/// Nanosecond histogram from 1 ns to 60 s at 3 significant digits.
pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// When request `i` is meant to be sent.
#[derive(Clone, Copy)]
struct Schedule {
    start: Instant,
    rate: u64,
}

impl Schedule {
    fn at(&self, i: u64) -> Instant {
        self.start
            + Duration::from_nanos((u128::from(i) * 1_000_000_000 / u128::from(self.rate)) as u64)
    }
}

pub fn run(spec: &LatencySpec, target: &mut Target<'_>) -> Result<Outcome> {
    let (hist, lag, send_secs) = round_trips(spec, target)?;
    let total = spec.total();
    let us = |ns: u64| ns as f64 / 1000.0;
    let mut metrics: Vec<Metric> = PERCENTILES
        .iter()
        .map(|&(name, q)| Metric {
            name,
            unit: "µs",
            better: Better::Lower,
            value: us(hist.value_at_quantile(q)),
        })
        .collect();
    metrics.push(Metric {
        name: "max",
        unit: "µs",
        better: Better::Lower,
        value: us(hist.max()),
    });
    Ok(Outcome {
        metrics,
        diagnostics: vec![
            Diagnostic {
                name: "achieved req/s",
                value: total as f64 / send_secs.max(1e-9),
            },
            Diagnostic {
                name: "client send lag p99 (µs)",
                value: us(lag.value_at_quantile(0.99)),
            },
            Diagnostic {
                name: "client send lag max (µs)",
                value: us(lag.max()),
            },
        ],
        latency: Some(hist),
        cpu: None,
    })
}

/// One measured run: a responder and a requester at the spec's rate.
/// Returns the round-trip histogram, the client's send-lag histogram and
/// how long sending took.
pub(super) fn round_trips(
    spec: &LatencySpec,
    target: &mut Target<'_>,
) -> Result<(Histogram<u64>, Histogram<u64>, f64)> {
    let deadline = target.deadline;
    let mut responder = Conn::connect(&target.opts.named("bench-responder"), BIG_BUF, deadline)
        .context("responder")?;
    responder
        .subscribe(REQUEST_SUBJECT, None, 1, deadline)
        .context("responder")?;
    let mut requester = Conn::connect(&target.opts.named("bench-requester"), BIG_BUF, deadline)
        .context("requester")?;
    requester
        .subscribe(REPLY_SUBJECT, None, 1, deadline)
        .context("requester")?;

    let stop = Arc::new(AtomicBool::new(false));
    let responder = {
        let (stop, pinner) = (stop.clone(), target.pinner.clone());
        thread::Builder::new()
            .name("responder".into())
            .spawn(move || respond(responder, &stop, &pinner, deadline))
            .expect("spawn responder")
    };

    let template = PubTemplate::new(REQUEST_SUBJECT, Some(REPLY_SUBJECT), spec.payload);
    let measured = probe(&mut requester, &template, deadline).and_then(|()| {
        let schedule = Schedule {
            start: Instant::now() + Duration::from_millis(5),
            rate: spec.rate,
        };
        measure(
            spec,
            requester,
            template,
            schedule,
            &target.pinner,
            deadline,
        )
    });
    stop.store(true, Ordering::Release);
    // The responder only fails for a real reason (server error, closed
    // connection), which then also explains any measurement failure.
    responder
        .join()
        .expect("responder thread panicked")
        .context("responder")?;
    measured
}

/// Sends probe requests until one is answered, proving both subscriptions
/// are live end to end before the clock starts.
pub(super) fn probe(conn: &mut Conn, template: &PubTemplate, deadline: Instant) -> Result<()> {
    let limit = (Instant::now() + Duration::from_secs(5)).min(deadline);
    let mut out = Vec::new();
    loop {
        template.encode(&mut out, Stamp::probe(0));
        conn.send(&out)?;
        out.clear();
        let mut answered = false;
        let outcome = conn.reader.read_frames(|f| {
            if let Frame::Msg(m) = f {
                answered |= Stamp::read(m.payload).is_some_and(|s| s.is_probe());
            }
            Ok(())
        })?;
        if answered {
            return Ok(());
        }
        if outcome == ReadOutcome::Eof {
            bail!("requester: connection closed while probing");
        }
        if Instant::now() >= limit {
            bail!("no reply to probe requests within 5 s");
        }
    }
}

/// Returns the latency histogram, the client's send-lag histogram and how
/// long sending took.
fn measure(
    spec: &LatencySpec,
    requester: Conn,
    template: PubTemplate,
    schedule: Schedule,
    pinner: &Pinner,
    deadline: Instant,
) -> Result<(Histogram<u64>, Histogram<u64>, f64)> {
    let total = spec.total();
    let (reader, writer) = requester.split()?;
    let receiver = {
        let (pinner, payload) = (pinner.clone(), spec.payload);
        thread::Builder::new()
            .name("receiver".into())
            .spawn(move || receive(reader, total, payload, schedule, &pinner, deadline))
            .expect("spawn receiver")
    };
    let sent = send(writer, &template, total, schedule, pinner, deadline);
    // On a send failure the receiver runs into its deadline; the send error
    // is the one worth reporting, so join and prefer it.
    let received = receiver.join().expect("receiver thread panicked");
    let (lag, send_secs) = sent.context("sender")?;
    let hist = received.context("receiver")?;
    Ok((hist, lag, send_secs))
}

fn send(
    mut writer: Stream,
    template: &PubTemplate,
    total: u64,
    schedule: Schedule,
    pinner: &Pinner,
    deadline: Instant,
) -> Result<(Histogram<u64>, f64)> {
    use std::io::Write;
    pinner.pin_current();
    set_fine_timer_slack();
    let mut lag = new_latency_histogram();
    let mut out = Vec::with_capacity(64 << 10);
    let mut next = 0;
    while next < total {
        let due = schedule.at(next);
        let now = Instant::now();
        if now < due {
            wait_until(due, now);
            continue;
        }
        // Everything already due goes out in one write: when the client
        // falls behind it catches up instead of drifting further.
        while next < total && schedule.at(next) <= now {
            template.encode(
                &mut out,
                Stamp {
                    publisher: 0,
                    seq: next,
                },
            );
            lag.saturating_record((now - schedule.at(next)).as_nanos().max(1) as u64);
            next += 1;
        }
        writer.write_all(&out).context("write")?;
        out.clear();
        if Instant::now() >= deadline {
            bail!("timed out after sending {next} of {total}");
        }
    }
    Ok((lag, schedule.start.elapsed().as_secs_f64()))
}

/// Sleeping wakes up tens of microseconds late (more on a busy or virtual
/// machine), and that lateness would count as latency. So sleep until just
/// before the deadline and yield-spin the rest; yielding lets the server and
/// the other client threads run if they need this CPU.
fn wait_until(due: Instant, now: Instant) {
    const SPIN: Duration = Duration::from_micros(80);
    let gap = due - now;
    if gap > SPIN {
        thread::sleep(gap - SPIN);
    }
    while Instant::now() < due {
        thread::yield_now();
    }
}

/// Nanosleep rounds wakeups up by the thread's timer slack (50 µs by
/// default); the sender wants them as close to the schedule as possible.
fn set_fine_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer and affects only the
    // calling thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// Server `PING`s are not answered here (the writer belongs to the sender);
/// runs are far shorter than the server's ping interval.
fn receive(
    mut reader: FrameReader<Stream>,
    total: u64,
    payload: usize,
    schedule: Schedule,
    pinner: &Pinner,
    deadline: Instant,
) -> Result<Histogram<u64>> {
    pinner.pin_current();
    let mut hist = new_latency_histogram();
    let mut tally = Tally::new(1, true, payload);
    let (mut seen, mut last_reply) = (0, Instant::now());
    while tally.count < total {
        let outcome = reader.read_frames(|f| match f {
            Frame::Msg(m) => {
                let before = tally.count;
                tally.on_msg(m.payload)?;
                if tally.count > before {
                    // The tally enforces gapless order, so this reply
                    // answers request number `before`.
                    let latency = Instant::now().saturating_duration_since(schedule.at(before));
                    hist.saturating_record(latency.as_nanos().max(1) as u64);
                }
                Ok(())
            }
            Frame::Err(e) => bail!("server error: {}", String::from_utf8_lossy(e)),
            _ => Ok(()),
        })?;
        if outcome == ReadOutcome::Eof {
            bail!("connection closed after {} of {total} replies", tally.count);
        }
        if tally.count != seen {
            (seen, last_reply) = (tally.count, Instant::now());
        } else if last_reply.elapsed() >= STALL_LIMIT {
            bail!(
                "no reply for {STALL_LIMIT:?} after {} of {total} (server stalled?)",
                tally.count
            );
        }
        if Instant::now() >= deadline {
            bail!("timed out after {} of {total} replies", tally.count);
        }
    }
    Ok(hist)
}

/// Echoes every request's payload to its reply subject, one write per read.
pub(super) fn respond(
    mut conn: Conn,
    stop: &AtomicBool,
    pinner: &Pinner,
    deadline: Instant,
) -> Result<u64> {
    pinner.pin_current();
    let mut out = Vec::with_capacity(64 << 10);
    let mut answered = 0u64;
    loop {
        let outcome = conn.reader.read_frames(|f| match f {
            Frame::Msg(m) => {
                let Some(reply) = m.reply else {
                    bail!("request without a reply subject")
                };
                encode_pub(&mut out, reply, m.payload);
                answered += 1;
                Ok(())
            }
            Frame::Ping => {
                out.extend_from_slice(proto::PONG);
                Ok(())
            }
            Frame::Err(e) => bail!("server error: {}", String::from_utf8_lossy(e)),
            _ => Ok(()),
        })?;
        if !out.is_empty() {
            conn.send(&out)?;
            out.clear();
        }
        if stop.load(Ordering::Acquire) {
            return Ok(answered);
        }
        if outcome == ReadOutcome::Eof {
            bail!("connection closed after {answered} replies");
        }
        if Instant::now() >= deadline {
            bail!("timed out");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_spaces_requests_evenly() {
        let s = Schedule {
            start: Instant::now(),
            rate: 4,
        };
        assert_eq!(s.at(0), s.start);
        assert_eq!(s.at(1) - s.start, Duration::from_millis(250));
        assert_eq!(s.at(8) - s.start, Duration::from_secs(2));
        let s = Schedule {
            start: s.start,
            rate: 3,
        };
        assert_eq!(s.at(1) - s.start, Duration::from_nanos(333_333_333));
    }

    #[test]
    fn total_is_rate_times_duration() {
        let spec = LatencySpec {
            rate: 5000,
            duration: Duration::from_secs(5),
            payload: 16,
        };
        assert_eq!(spec.total(), 25_000);
    }
}
