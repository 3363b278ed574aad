//! Server memory after bursts (`rss_after_burst`): a publisher writes a
//! burst of messages as fast as the socket takes them, to several
//! subscribers on one subject; once every subscriber has every message and
//! the server has had a moment to settle, its resident set size is read.
//! Repeated bursts show whether buffers grown for a burst are given back
//! (and whether anything accumulates).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::client::{Conn, ReadOutcome, BIG_BUF, SMALL_BUF};
use crate::error::{bail, Context, Error, Result};
use crate::proto::{self, Frame, PubTemplate, Stamp};

use super::throughput::{Tally, DRAIN_LIMIT, THROUGHPUT_SUBJECT};
use super::{
    attribute, classified, server_error, slow_consumer, Better, Diagnostic, Metric, Outcome,
    Target, LOSS,
};

/// Metric names per burst (names are static strings in the report).
const AFTER_BURST: [&str; 8] = [
    "RSS after burst 1",
    "RSS after burst 2",
    "RSS after burst 3",
    "RSS after burst 4",
    "RSS after burst 5",
    "RSS after burst 6",
    "RSS after burst 7",
    "RSS after burst 8",
];
pub const MAX_BURSTS: usize = AFTER_BURST.len();

#[derive(Clone, Debug)]
pub struct BurstSpec {
    pub subscribers: usize,
    /// Messages per burst.
    pub msgs: u64,
    pub payload: usize,
    pub bursts: usize,
    /// Pause between delivery of a burst completing and the RSS sample.
    pub settle: Duration,
}

struct Shared {
    stop: AtomicBool,
    delivered: Vec<AtomicU64>,
    probed: Vec<AtomicBool>,
    first_error: Mutex<Option<String>>,
}

impl Shared {
    fn error(&self) -> Error {
        Error(
            self.first_error
                .lock()
                .unwrap()
                .clone()
                .unwrap_or_else(|| "stopped".into()),
        )
    }

    fn counts(&self) -> Vec<u64> {
        self.delivered
            .iter()
            .map(|d| d.load(Ordering::Acquire))
            .collect()
    }
}

pub fn run(spec: &BurstSpec, target: &mut Target<'_>) -> Result<Outcome> {
    assert!((1..=MAX_BURSTS).contains(&spec.bursts));
    let deadline = target.deadline;
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        delivered: (0..spec.subscribers).map(|_| AtomicU64::new(0)).collect(),
        probed: (0..spec.subscribers)
            .map(|_| AtomicBool::new(false))
            .collect(),
        first_error: Mutex::new(None),
    });
    let mut subs = Vec::new();
    for i in 0..spec.subscribers {
        let mut c = Conn::connect(
            &target.opts.named(format!("bench-sub-{i}")),
            BIG_BUF,
            deadline,
        )
        .context(format_args!("subscriber {i}"))?;
        c.subscribe(THROUGHPUT_SUBJECT, None, 1, deadline)
            .context(format_args!("subscriber {i}"))?;
        subs.push(c);
    }
    let mut publisher = Conn::connect(&target.opts.named("bench-pub-0"), SMALL_BUF, deadline)
        .context("publisher")?;
    let total = spec.msgs * spec.bursts as u64;
    let threads: Vec<_> = subs
        .into_iter()
        .enumerate()
        .map(|(i, conn)| {
            let (shared, pinner, payload) = (shared.clone(), target.pinner.clone(), spec.payload);
            thread::Builder::new()
                .name(format!("subscriber {i}"))
                .spawn(move || {
                    pinner.pin_current();
                    let r = subscriber(i, conn, payload, total, &shared, deadline);
                    if let Err(e) = &r {
                        shared
                            .first_error
                            .lock()
                            .unwrap()
                            .get_or_insert_with(|| attribute(&format!("subscriber {i}"), e));
                        shared.stop.store(true, Ordering::Release);
                    }
                    r
                })
                .expect("spawn subscriber")
        })
        .collect();

    let measured = bursts(spec, &mut publisher, target, &shared);
    shared.stop.store(true, Ordering::Release);
    for t in threads {
        let _ = t.join().expect("subscriber thread panicked");
    }
    let (before, after) = measured?;

    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let mut diagnostics = vec![Diagnostic {
        name: "RSS before bursts (MiB)",
        value: mib(before),
    }];
    diagnostics.push(Diagnostic {
        name: "RSS growth over the bursts (MiB)",
        value: mib(*after.last().expect("at least one burst")) - mib(before),
    });
    Ok(Outcome {
        metrics: after
            .iter()
            .zip(AFTER_BURST)
            .map(|(&rss, name)| Metric {
                name,
                unit: "MiB",
                better: Better::Lower,
                value: mib(rss),
            })
            .collect(),
        diagnostics,
        latency: None,
        cpu: None,
    })
}

/// Returns the RSS before the first burst and after each.
fn bursts(
    spec: &BurstSpec,
    publisher: &mut Conn,
    target: &mut Target<'_>,
    shared: &Shared,
) -> Result<(u64, Vec<u64>)> {
    let deadline = target.deadline;
    let template = PubTemplate::new(THROUGHPUT_SUBJECT, None, spec.payload);
    probe(publisher, &template, shared, deadline)?;
    thread::sleep(spec.settle);
    let before = target.server.rss_bytes()?;
    let mut out = Vec::with_capacity(spec.msgs as usize * template.wire_len());
    let mut after = Vec::with_capacity(spec.bursts);
    for b in 0..spec.bursts as u64 {
        out.clear();
        for seq in b * spec.msgs..(b + 1) * spec.msgs {
            template.encode(&mut out, Stamp { publisher: 0, seq });
        }
        publisher
            .send_unpaced(&out)
            .map_err(|e| Error(format!("publisher, burst {}: {e}", b + 1)))?;
        publisher
            .flush(deadline)
            .context(format_args!("publisher, burst {}", b + 1))?;
        wait_delivered(shared, (b + 1) * spec.msgs, deadline)
            .map_err(|e| Error(attribute(&format!("burst {}", b + 1), &e)))?;
        thread::sleep(spec.settle);
        target.server.check_alive()?;
        after.push(target.server.rss_bytes()?);
    }
    Ok((before, after))
}

/// Probe messages until every subscriber has seen one.
fn probe(
    conn: &mut Conn,
    template: &PubTemplate,
    shared: &Shared,
    deadline: Instant,
) -> Result<()> {
    let limit = (Instant::now() + Duration::from_secs(5)).min(deadline);
    let mut out = Vec::new();
    while !shared.probed.iter().all(|p| p.load(Ordering::Acquire)) {
        if shared.stop.load(Ordering::Acquire) {
            return Err(shared.error());
        }
        if Instant::now() >= limit {
            bail!("subscriptions not visible to the publisher after 5 s");
        }
        template.encode(&mut out, Stamp::probe(0));
        conn.send(&out)?;
        out.clear();
        conn.flush(deadline)?;
        thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Waits until every subscriber has `want` messages; fails when deliveries
/// stop short for [`DRAIN_LIMIT`] (the publisher's `PING` was answered, so
/// the server has every message).
fn wait_delivered(shared: &Shared, want: u64, deadline: Instant) -> Result<()> {
    let mut last = shared.counts();
    let mut since = Instant::now();
    loop {
        if shared.stop.load(Ordering::Acquire) {
            return Err(shared.error());
        }
        let now = shared.counts();
        if now.iter().all(|&c| c >= want) {
            return Ok(());
        }
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= DRAIN_LIMIT {
            return Err(classified(
                LOSS,
                format!(
                    "subscribers have {now:?} of {want} messages; nothing more arrived within \
                     {DRAIN_LIMIT:?} after the publisher's PING was answered"
                ),
            ));
        }
        if Instant::now() >= deadline {
            bail!("timed out waiting for delivery ({last:?} of {want})");
        }
        thread::sleep(Duration::from_millis(1));
    }
}

fn subscriber(
    idx: usize,
    mut conn: Conn,
    payload: usize,
    total: u64,
    shared: &Shared,
    deadline: Instant,
) -> Result<u64> {
    let mut tally = Tally::new(1, true, payload);
    let mut probed = false;
    loop {
        let mut pings = 0;
        let outcome = conn.reader.read_frames(|f| match f {
            Frame::Msg(m) => tally.on_msg(m.payload),
            Frame::Ping => {
                pings += 1;
                Ok(())
            }
            Frame::Err(e) => Err(server_error(e, tally.count)),
            _ => Ok(()),
        })?;
        for _ in 0..pings {
            conn.send(proto::PONG)?;
        }
        if !probed && tally.probe_mask != 0 {
            probed = true;
            shared.probed[idx].store(true, Ordering::Release);
        }
        shared.delivered[idx].store(tally.count, Ordering::Release);
        if tally.count >= total {
            return Ok(tally.count);
        }
        if outcome == ReadOutcome::Eof {
            return Err(slow_consumer(format!(
                "server closed the connection after {} of {total} messages",
                tally.count
            )));
        }
        if shared.stop.load(Ordering::Acquire) {
            bail!("stopped after {} messages", tally.count);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {} of {total} messages", tally.count);
        }
    }
}
