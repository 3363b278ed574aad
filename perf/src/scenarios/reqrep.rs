//! Request/reply throughput with many concurrent requesters (`scale_reqrep`).
//!
//! Responders form one queue group on the service subject and echo each
//! request to its reply subject. Every requester has its own inbox and keeps
//! a fixed number of requests outstanding, sending the next as soon as a
//! reply frees a slot: no rate, no pauses, just as fast as the round trips
//! allow. Each reply is matched to its request (publisher id and sequence
//! number in the payload), so a lost, duplicated or misrouted reply fails
//! the run; latency is measured per request from its write to its reply.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::client::{Conn, ReadOutcome, BIG_BUF};
use crate::error::{bail, Context, Error, Result};
use crate::pin::Pinner;
use crate::proto::{self, Frame, PubTemplate, Stamp};

use super::latency::{new_latency_histogram, probe, respond};
use super::{
    attribute, classified, server_error, slow_consumer, Better, Diagnostic, Metric, Outcome,
    Target, LOSS, ORDER,
};

pub const SERVICE_SUBJECT: &str = "bench.svc";
const RESPONDER_GROUP: &str = "responders";
/// Outstanding requests and no reply for this long: they are lost (or the
/// server has stalled); either way the run fails.
const REPLY_LIMIT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct ReqRepSpec {
    pub requesters: usize,
    /// Members of the responders' queue group.
    pub responders: usize,
    pub payload: usize,
    pub requests_per_requester: u64,
    /// Requests each requester keeps outstanding.
    pub window: usize,
}

/// Requester `i`'s reply subject.
pub fn inbox(i: usize) -> String {
    format!("bench.inbox.{i}")
}

struct Shared {
    stop: AtomicBool,
    go: AtomicBool,
    ready: AtomicUsize,
    first_error: Mutex<Option<String>>,
}

impl Shared {
    fn fail(&self, who: &str, e: &Error) {
        self.first_error
            .lock()
            .unwrap()
            .get_or_insert_with(|| attribute(who, e));
        self.stop.store(true, Ordering::Release);
    }
}

pub fn run(spec: &ReqRepSpec, target: &mut Target<'_>) -> Result<Outcome> {
    let deadline = target.deadline;
    let mut responders = Vec::with_capacity(spec.responders);
    for i in 0..spec.responders {
        let name = format!("responder {i}");
        let mut c = Conn::connect(
            &target.opts.named(format!("bench-responder-{i}")),
            BIG_BUF / 4,
            deadline,
        )
        .context(&name)?;
        c.subscribe(SERVICE_SUBJECT, Some(RESPONDER_GROUP), 1, deadline)
            .context(&name)?;
        responders.push(c);
    }
    let mut requesters = Vec::with_capacity(spec.requesters);
    for i in 0..spec.requesters {
        let name = format!("requester {i}");
        let mut c = Conn::connect(
            &target.opts.named(format!("bench-requester-{i}")),
            BIG_BUF / 4,
            deadline,
        )
        .context(&name)?;
        c.subscribe(&inbox(i), None, 1, deadline).context(&name)?;
        requesters.push(c);
    }

    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        go: AtomicBool::new(false),
        ready: AtomicUsize::new(0),
        first_error: Mutex::new(None),
    });
    let responder_threads: Vec<_> = responders
        .into_iter()
        .enumerate()
        .map(|(i, conn)| {
            let (shared, pinner) = (shared.clone(), target.pinner.clone());
            thread::Builder::new()
                .name(format!("responder {i}"))
                .spawn(move || {
                    let r = respond(conn, &shared.stop, &pinner, deadline);
                    if let Err(e) = &r {
                        shared.fail(&format!("responder {i}"), e);
                    }
                    r
                })
                .expect("spawn responder")
        })
        .collect();
    let requester_threads: Vec<_> = requesters
        .into_iter()
        .enumerate()
        .map(|(i, conn)| {
            let (shared, pinner, spec) = (shared.clone(), target.pinner.clone(), spec.clone());
            thread::Builder::new()
                .name(format!("requester {i}"))
                .spawn(move || {
                    let r = requester(i, conn, &spec, &shared, &pinner, deadline);
                    if let Err(e) = &r {
                        shared.fail(&format!("requester {i}"), e);
                    }
                    r
                })
                .expect("spawn requester")
        })
        .collect();

    while shared.ready.load(Ordering::Acquire) < spec.requesters
        && !shared.stop.load(Ordering::Acquire)
        && Instant::now() < deadline
    {
        thread::sleep(Duration::from_millis(1));
    }
    let start = Instant::now();
    shared.go.store(true, Ordering::Release);

    let mut hist = new_latency_histogram();
    let mut end = start;
    let mut failed = 0;
    for t in requester_threads {
        match t.join().expect("requester thread panicked") {
            Ok((h, at)) => {
                hist.add(&h).expect("histograms share bounds");
                end = end.max(at);
            }
            Err(_) => failed += 1,
        }
    }
    shared.stop.store(true, Ordering::Release);
    for t in responder_threads {
        if t.join().expect("responder thread panicked").is_err() {
            failed += 1;
        }
    }
    if failed > 0 {
        let first = shared
            .first_error
            .lock()
            .unwrap()
            .take()
            .unwrap_or_else(|| "requesters never started".into());
        let threads = spec.requesters + spec.responders;
        bail!("{first} [{failed} of {threads} client threads failed]");
    }
    let total = spec.requests_per_requester * spec.requesters as u64;
    if hist.len() != total {
        bail!("recorded {} of {total} round trips", hist.len());
    }
    let secs = end.duration_since(start).as_secs_f64().max(1e-9);
    let us = |ns: u64| ns as f64 / 1000.0;
    Ok(Outcome {
        metrics: vec![
            Metric {
                name: "req/s",
                unit: "req/s",
                better: Better::Higher,
                value: total as f64 / secs,
            },
            Metric {
                name: "p99",
                unit: "µs",
                better: Better::Lower,
                value: us(hist.value_at_quantile(0.99)),
            },
        ],
        diagnostics: vec![
            Diagnostic {
                name: "elapsed (s)",
                value: secs,
            },
            Diagnostic {
                name: "p50 (µs)",
                value: us(hist.value_at_quantile(0.5)),
            },
            Diagnostic {
                name: "max (µs)",
                value: us(hist.max()),
            },
        ],
        latency: None,
        cpu: None,
    })
}

/// Keeps `window` requests outstanding until every request is answered;
/// returns the round-trip histogram and when the last reply arrived.
fn requester(
    idx: usize,
    mut conn: Conn,
    spec: &ReqRepSpec,
    shared: &Shared,
    pinner: &Pinner,
    deadline: Instant,
) -> Result<(Histogram<u64>, Instant)> {
    pinner.pin_current();
    let template = PubTemplate::new(SERVICE_SUBJECT, Some(&inbox(idx)), spec.payload);
    probe(&mut conn, &template, deadline)?;
    shared.ready.fetch_add(1, Ordering::AcqRel);
    while !shared.go.load(Ordering::Acquire) {
        if shared.stop.load(Ordering::Acquire) || Instant::now() >= deadline {
            bail!("never started");
        }
        thread::yield_now();
    }

    let total = spec.requests_per_requester;
    let w = spec.window.max(1);
    // Request `seq` lives in slot `seq % w` until answered; a slot still
    // taken holds back later requests, so at most `w` are outstanding.
    let mut slots: Vec<Option<(u64, Instant)>> = vec![None; w];
    let mut hist = new_latency_histogram();
    let mut out = Vec::with_capacity(w * template.wire_len() + 64);
    let (mut sent, mut answered) = (0u64, 0u64);
    let mut last_reply = Instant::now();
    loop {
        let now = Instant::now();
        while sent < total && slots[(sent % w as u64) as usize].is_none() {
            template.encode(
                &mut out,
                Stamp {
                    publisher: idx as u32,
                    seq: sent,
                },
            );
            slots[(sent % w as u64) as usize] = Some((sent, now));
            sent += 1;
        }
        if !out.is_empty() {
            conn.send_unpaced(&out)
                .map_err(|e| Error(format!("after {sent} requests: {e}")))?;
            out.clear();
        }
        if answered == total {
            return Ok((hist, Instant::now()));
        }
        let before = answered;
        let outcome = conn.reader.read_frames(|f| match f {
            Frame::Msg(m) => {
                let Some(stamp) = Stamp::read(m.payload) else {
                    bail!("reply too short for a stamp");
                };
                if stamp.is_probe() {
                    return Ok(());
                }
                if stamp.publisher as usize != idx {
                    bail!("reply to requester {} arrived in my inbox", stamp.publisher);
                }
                let slot = &mut slots[(stamp.seq % w as u64) as usize];
                match *slot {
                    Some((seq, at)) if seq == stamp.seq => {
                        let rtt = Instant::now().saturating_duration_since(at);
                        hist.saturating_record(rtt.as_nanos().max(1) as u64);
                        *slot = None;
                        answered += 1;
                        Ok(())
                    }
                    _ => Err(classified(
                        ORDER,
                        format!(
                            "reply for request {} which is not outstanding (duplicate?)",
                            stamp.seq
                        ),
                    )),
                }
            }
            Frame::Ping => {
                out.extend_from_slice(proto::PONG);
                Ok(())
            }
            Frame::Err(e) => Err(server_error(e, answered)),
            _ => Ok(()),
        })?;
        if answered != before {
            last_reply = Instant::now();
        } else if last_reply.elapsed() >= REPLY_LIMIT {
            return Err(classified(
                LOSS,
                format!(
                    "{answered} of {total} replies; {} outstanding request(s) unanswered for \
                     {REPLY_LIMIT:?} (lost requests or replies, or a stalled server)",
                    sent - answered
                ),
            ));
        }
        if outcome == ReadOutcome::Eof {
            return Err(slow_consumer(format!(
                "server closed the connection after {answered} of {total} replies"
            )));
        }
        if shared.stop.load(Ordering::Acquire) {
            bail!("stopped after {answered} replies");
        }
        if Instant::now() >= deadline {
            bail!("timed out after {answered} of {total} replies");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inboxes_are_distinct_from_the_service_subject() {
        assert_eq!(inbox(3), "bench.inbox.3");
        assert_ne!(inbox(0), inbox(1));
        assert!(!SERVICE_SUBJECT.starts_with("bench.inbox"));
    }
}
