//! Message throughput: publish-only, 1:1, fan-out, queue groups and many
//! publishers, all through one routine parameterised by shape.
//!
//! Correctness is part of the measurement: every message carries a
//! [`Stamp`], subscribers check per-publisher sequence numbers, and a run
//! only counts if every expected message arrived exactly once.
//!
//! Paced runs keep measuring sustained throughput rather than how much the
//! server can buffer: each publisher keeps at most one `PING` window
//! un-acknowledged (server ingress), and publishers pause while the slowest
//! subscriber is more than [`WINDOW_BYTES`] behind (end to end).
//!
//! Unpaced runs behave like ordinary clients (`nats bench`, applications):
//! publishers write as fast as the socket takes and send one `PING` at the
//! end. Whatever the server does with the backlog (buffer it, push back on
//! the publishers, cut a subscriber as a slow consumer, drop messages) shows
//! up, and anything but complete, in-order delivery fails the run.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::client::{Conn, ReadOutcome, BIG_BUF, SMALL_BUF};
use crate::error::{bail, Context, Error, Result};
use crate::pin::Pinner;
use crate::proto::{self, Frame, PubTemplate, Stamp};

use super::{classified, server_error, slow_consumer, Better, Diagnostic, Metric, Outcome, Target};

pub const THROUGHPUT_SUBJECT: &str = "bench.data";
const QUEUE_GROUP: &str = "workers";

/// Bytes per `write(2)` from a publisher.
const BATCH_BYTES: usize = 64 << 10;
/// A publisher sends `PING` after this many bytes and never has more than
/// one such window un-acknowledged.
const PING_WINDOW_BYTES: usize = 1 << 20;
/// Most bytes any subscriber may be behind the publishers; far below the
/// server's per-client pending limit (64 MiB in nats-server), so a healthy
/// server never drops a subscriber as a slow consumer.
const WINDOW_BYTES: usize = 8 << 20;
/// How long publishers may take to see every subscription.
const PROBE_LIMIT: Duration = Duration::from_secs(5);
/// A run with no message sent or delivered for this long has stalled; it
/// fails then rather than at the (much later) scenario deadline.
const STALL_LIMIT: Duration = Duration::from_secs(5);
/// Once every publisher's final `PING` is answered the server has taken
/// every message; if deliveries then stop for this long before all have
/// arrived, the missing ones are lost.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(3);

#[derive(Clone, Debug)]
pub struct ThroughputSpec {
    pub payload: usize,
    pub publishers: usize,
    /// Zero means publish-only.
    pub subscribers: usize,
    /// Subscribers share one queue group: each message goes to one of them.
    pub queue: bool,
    pub msgs_per_publisher: u64,
    /// Flow control (see the module docs); unpaced publishers write as fast
    /// as the socket takes and flush only at the end.
    pub paced: bool,
    /// Independent pairs: publisher `i` sends on its own subject, which only
    /// subscriber `i` subscribes to (needs as many subscribers as publishers).
    pub pairs: bool,
}

impl ThroughputSpec {
    fn total_sent(&self) -> u64 {
        self.msgs_per_publisher * self.publishers as u64
    }

    /// Deliveries that make the run complete.
    fn expected_deliveries(&self) -> u64 {
        match (self.subscribers, self.queue || self.pairs) {
            (0, _) => 0,
            (_, true) => self.total_sent(),
            (n, false) => self.total_sent() * n as u64,
        }
    }

    /// Messages each subscriber must receive; `None` for queue members,
    /// which share the stream.
    fn per_subscriber(&self) -> Option<u64> {
        if self.queue {
            None
        } else if self.pairs {
            Some(self.msgs_per_publisher)
        } else {
            Some(self.total_sent())
        }
    }

    /// Subject publisher (or subscriber) `i` uses.
    pub fn subject(&self, i: usize) -> String {
        if self.pairs {
            format!("{THROUGHPUT_SUBJECT}.{i}")
        } else {
            THROUGHPUT_SUBJECT.to_string()
        }
    }

    /// Subscribers progress together (queue group, pairs) rather than each
    /// receiving the whole stream.
    fn aggregate(&self) -> bool {
        self.queue || self.pairs
    }
}

/// Keeps each subscriber's counter on its own cache line so the publishers
/// polling them do not slow the subscribers down.
#[repr(align(128))]
#[derive(Default)]
struct Padded<T>(T);

struct Shared {
    stop: AtomicBool,
    go: AtomicBool,
    ready_publishers: AtomicUsize,
    /// Publishers whose final `PING` was answered.
    flushed_publishers: AtomicUsize,
    sent: AtomicU64,
    delivered: Vec<Padded<AtomicU64>>,
    delivered_total: AtomicU64,
    /// Per subscriber: bit p is set once a probe from publisher p arrived.
    probes: Vec<Padded<AtomicU64>>,
    finished_at: Mutex<Option<Instant>>,
    /// The first failure, which is the cause; threads failing after it
    /// usually only report that they were stopped.
    first_error: Mutex<Option<String>>,
}

impl Shared {
    /// Messages published but not yet received by the slowest subscriber
    /// (or, for a queue group or pairs, by the subscribers as a whole).
    fn lag(&self, aggregate: bool) -> u64 {
        let sent = self.sent.load(Ordering::Acquire);
        let received = if aggregate {
            self.delivered_total.load(Ordering::Acquire)
        } else {
            self.delivered
                .iter()
                .map(|d| d.0.load(Ordering::Acquire))
                .min()
                .unwrap_or(sent)
        };
        sent.saturating_sub(received)
    }

    fn probe_seen(&self, publisher: usize, spec: &ThroughputSpec) -> bool {
        let bit = 1u64 << publisher;
        if spec.pairs {
            return self.probes[publisher].0.load(Ordering::Acquire) & bit != 0;
        }
        let mut seen = self
            .probes
            .iter()
            .map(|p| p.0.load(Ordering::Acquire) & bit != 0);
        if spec.queue {
            seen.any(|s| s)
        } else {
            seen.all(|s| s)
        }
    }

    fn delivered_counts(&self) -> Vec<u64> {
        self.delivered
            .iter()
            .map(|d| d.0.load(Ordering::Acquire))
            .collect()
    }
}

/// Per-subscriber bookkeeping of what arrived; also driven by the self-test.
#[derive(Debug)]
pub struct Tally {
    next_seq: Vec<u64>,
    /// Queue members see a subset of each publisher's stream, so only
    /// "strictly increasing" can be checked, not "no gaps".
    gapless: bool,
    payload_len: usize,
    pub count: u64,
    pub probe_mask: u64,
}

impl Tally {
    pub fn new(publishers: usize, gapless: bool, payload_len: usize) -> Tally {
        Tally {
            next_seq: vec![0; publishers],
            gapless,
            payload_len,
            count: 0,
            probe_mask: 0,
        }
    }

    pub fn on_msg(&mut self, payload: &[u8]) -> Result<()> {
        if payload.len() != self.payload_len {
            bail!(
                "payload of {} bytes, expected {}",
                payload.len(),
                self.payload_len
            );
        }
        let Some(stamp) = Stamp::read(payload) else {
            bail!("payload too short for a stamp")
        };
        let p = stamp.publisher as usize;
        if stamp.is_probe() {
            self.probe_mask |= 1u64 << (p % 64);
            return Ok(());
        }
        let Some(next) = self.next_seq.get_mut(p) else {
            bail!("message from unknown publisher {p}")
        };
        if stamp.seq < *next {
            bail!(
                "ORDER: publisher {p}: got seq {} after {} (duplicated or reordered)",
                stamp.seq,
                *next as i128 - 1
            );
        }
        if self.gapless && stamp.seq != *next {
            return Err(classified(
                super::LOSS,
                format!(
                    "publisher {p}: got seq {} after {}: {} message(s) missing",
                    stamp.seq,
                    *next as i128 - 1,
                    stamp.seq - *next
                ),
            ));
        }
        *next = stamp.seq + 1;
        self.count += 1;
        Ok(())
    }
}

pub fn run(spec: &ThroughputSpec, target: &mut Target<'_>) -> Result<Outcome> {
    assert!(
        spec.publishers >= 1 && spec.publishers <= 64,
        "stamp probes track at most 64 publishers"
    );
    assert!(
        !spec.pairs || spec.publishers == spec.subscribers,
        "pairs need one subscriber per publisher"
    );
    let deadline = target.deadline;
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        go: AtomicBool::new(false),
        ready_publishers: AtomicUsize::new(0),
        flushed_publishers: AtomicUsize::new(0),
        sent: AtomicU64::new(0),
        delivered: (0..spec.subscribers).map(|_| Padded::default()).collect(),
        delivered_total: AtomicU64::new(0),
        probes: (0..spec.subscribers).map(|_| Padded::default()).collect(),
        finished_at: Mutex::new(None),
        first_error: Mutex::new(None),
    });

    // Connections are made here, not in the threads, so a refused connection
    // fails the run before anything starts.
    let sub_buf = if spec.subscribers > 16 {
        BIG_BUF / 4
    } else {
        BIG_BUF
    };
    let mut subs = Vec::with_capacity(spec.subscribers);
    for i in 0..spec.subscribers {
        let mut conn = Conn::connect(
            &target.opts.named(format!("bench-sub-{i}")),
            sub_buf,
            deadline,
        )
        .context(format_args!("subscriber {i}"))?;
        let queue = spec.queue.then_some(QUEUE_GROUP);
        conn.subscribe(&spec.subject(i), queue, 1, deadline)
            .context(format_args!("subscriber {i}"))?;
        subs.push(conn);
    }
    let mut pubs = Vec::with_capacity(spec.publishers);
    for i in 0..spec.publishers {
        let conn = Conn::connect(
            &target.opts.named(format!("bench-pub-{i}")),
            SMALL_BUF,
            deadline,
        )
        .context(format_args!("publisher {i}"))?;
        pubs.push(conn);
    }

    let sub_threads: Vec<_> = subs
        .into_iter()
        .enumerate()
        .map(|(i, conn)| {
            let (shared, spec, pinner) = (shared.clone(), spec.clone(), target.pinner.clone());
            spawn_guarded(format!("subscriber {i}"), shared.clone(), move || {
                subscriber(i, conn, &spec, &shared, &pinner, deadline)
            })
        })
        .collect();
    let pub_threads: Vec<_> = pubs
        .into_iter()
        .enumerate()
        .map(|(i, conn)| {
            let (shared, spec, pinner) = (shared.clone(), spec.clone(), target.pinner.clone());
            spawn_guarded(format!("publisher {i}"), shared.clone(), move || {
                publisher(i, conn, &spec, &shared, &pinner, deadline)
            })
        })
        .collect();

    // Start the clock only once every publisher has seen every subscription.
    while shared.ready_publishers.load(Ordering::Acquire) < spec.publishers
        && !shared.stop.load(Ordering::Acquire)
        && Instant::now() < deadline
    {
        thread::sleep(Duration::from_millis(1));
    }
    let start = Instant::now();
    shared.go.store(true, Ordering::Release);
    watch_progress(&shared, spec, &pub_threads, &sub_threads);

    let mut failed = 0;
    let mut flushed_at = Vec::new();
    for t in pub_threads {
        match t.join().expect("publisher thread panicked") {
            Ok(at) => flushed_at.push(at),
            Err(_) => failed += 1,
        }
    }
    let mut counts = Vec::new();
    for t in sub_threads {
        match t.join().expect("subscriber thread panicked") {
            Ok(n) => counts.push(n),
            Err(_) => failed += 1,
        }
    }
    if failed > 0 {
        let first = shared
            .first_error
            .lock()
            .unwrap()
            .take()
            .unwrap_or_default();
        let threads = spec.publishers + spec.subscribers;
        return Err(Error(format!(
            "{first} [{failed} of {threads} client threads failed]"
        )));
    }

    let sent = shared.sent.load(Ordering::Acquire);
    if sent != spec.total_sent() {
        bail!("sent {sent} of {} messages", spec.total_sent());
    }
    let delivered: u64 = counts.iter().sum();
    if delivered != spec.expected_deliveries() {
        return Err(classified(
            super::LOSS,
            format!(
                "delivered {delivered} of {} expected messages (per subscriber: {counts:?})",
                spec.expected_deliveries()
            ),
        ));
    }
    if let Some(want) = spec.per_subscriber() {
        if let Some(short) = counts.iter().position(|&c| c != want) {
            return Err(classified(
                super::LOSS,
                format!("subscriber {short} received {} of {want}", counts[short]),
            ));
        }
    }

    let end = if spec.subscribers == 0 {
        flushed_at
            .into_iter()
            .max()
            .expect("at least one publisher")
    } else {
        shared
            .finished_at
            .lock()
            .unwrap()
            .ok_or("no finish time recorded")?
    };
    let secs = end.duration_since(start).as_secs_f64().max(1e-9);
    let (name, count) = if spec.subscribers == 0 {
        ("sent msgs/s", sent)
    } else {
        ("delivered msgs/s", delivered)
    };
    Ok(Outcome {
        metrics: vec![Metric {
            name,
            unit: "msgs/s",
            better: Better::Higher,
            value: count as f64 / secs,
        }],
        diagnostics: vec![
            Diagnostic {
                name: "elapsed (s)",
                value: secs,
            },
            Diagnostic {
                name: "payload MB/s",
                value: count as f64 * spec.payload as f64 / secs / 1e6,
            },
        ],
        latency: None,
        cpu: None,
    })
}

/// Waits for the client threads to finish, failing the run if they stop
/// making progress: after [`STALL_LIMIT`] with nothing sent or delivered,
/// or, once every publisher's final `PING` has been answered, after
/// [`DRAIN_LIMIT`] with deliveries still missing (lost messages).
fn watch_progress<A, B>(
    shared: &Shared,
    spec: &ThroughputSpec,
    pubs: &[thread::JoinHandle<A>],
    subs: &[thread::JoinHandle<B>],
) {
    let progress =
        || shared.sent.load(Ordering::Acquire) + shared.delivered_total.load(Ordering::Acquire);
    let (mut last, mut last_change) = (progress(), Instant::now());
    let mut drained_since: Option<Instant> = None;
    let fail = |msg: String| {
        shared.first_error.lock().unwrap().get_or_insert(msg);
        shared.stop.store(true, Ordering::Release);
    };
    while !(pubs.iter().all(|t| t.is_finished()) && subs.iter().all(|t| t.is_finished())) {
        thread::sleep(Duration::from_millis(20));
        let now = progress();
        if now != last {
            (last, last_change) = (now, Instant::now());
        }
        if shared.stop.load(Ordering::Acquire) {
            continue;
        }
        let all_flushed = shared.flushed_publishers.load(Ordering::Acquire) == spec.publishers;
        if all_flushed && spec.subscribers > 0 {
            // The drain wait starts when the last publisher is answered, and
            // any delivery restarts it.
            let since = *drained_since.get_or_insert_with(Instant::now);
            let quiet = last_change.max(since);
            if quiet.elapsed() >= DRAIN_LIMIT {
                let delivered = shared.delivered_total.load(Ordering::Acquire);
                let expected = spec.expected_deliveries();
                if delivered < expected {
                    let counts = shared.delivered_counts();
                    let msg = format!(
                        "delivered {delivered} of {expected} expected messages (per subscriber: \
                         {counts:?}); nothing more arrived within {DRAIN_LIMIT:?} after every \
                         publisher's final PING was answered"
                    );
                    fail(classified(super::LOSS, msg).0);
                }
            }
        } else if last_change.elapsed() >= STALL_LIMIT {
            fail(format!(
                "no message sent or delivered for {STALL_LIMIT:?} (server stalled?)"
            ));
        }
    }
}

/// Runs `body` on a thread; an error is recorded (if it is the first) and
/// raises the shared stop flag so the other threads give up promptly
/// instead of waiting for the deadline.
fn spawn_guarded<T: Send + 'static>(
    name: String,
    shared: Arc<Shared>,
    body: impl FnOnce() -> Result<T> + Send + 'static,
) -> thread::JoinHandle<Result<T>> {
    thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let r = body();
            if let Err(e) = &r {
                shared
                    .first_error
                    .lock()
                    .unwrap()
                    .get_or_insert_with(|| super::attribute(&name, e));
                shared.stop.store(true, Ordering::Release);
            }
            r
        })
        .expect("spawn thread")
}

fn subscriber(
    idx: usize,
    mut conn: Conn,
    spec: &ThroughputSpec,
    shared: &Shared,
    pinner: &Pinner,
    deadline: Instant,
) -> Result<u64> {
    pinner.pin_current();
    let mut tally = Tally::new(spec.publishers, !spec.queue, spec.payload);
    let mine = spec.per_subscriber();
    let expected_total = spec.expected_deliveries();
    let mut published_probes = 0;
    loop {
        let before = tally.count;
        let mut pings = 0;
        let outcome = conn.reader.read_frames(|f| match f {
            Frame::Msg(m) => {
                if spec.pairs {
                    if let Some(s) = Stamp::read(m.payload).filter(|s| s.publisher as usize != idx)
                    {
                        bail!(
                            "message from publisher {} on subscriber {idx}'s own subject",
                            s.publisher
                        );
                    }
                }
                tally.on_msg(m.payload)
            }
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
        let got = tally.count - before;
        if got > 0 {
            shared.delivered[idx].0.fetch_add(got, Ordering::AcqRel);
            let total = shared.delivered_total.fetch_add(got, Ordering::AcqRel) + got;
            if total == expected_total {
                *shared.finished_at.lock().unwrap() = Some(Instant::now());
            }
        }
        if tally.probe_mask != published_probes {
            published_probes = tally.probe_mask;
            shared.probes[idx]
                .0
                .store(published_probes, Ordering::Release);
        }
        let complete = match mine {
            Some(m) => tally.count >= m,
            None => shared.delivered_total.load(Ordering::Acquire) >= expected_total,
        };
        if complete {
            // Tidy teardown only: the count is final, so a failure here
            // does not change the result.
            let _ = conn.send(proto::encode_unsub(1).as_bytes());
            return Ok(tally.count);
        }
        if outcome == ReadOutcome::Eof {
            return Err(slow_consumer(format!(
                "server closed the connection after {} of {} messages",
                tally.count,
                mine.map_or("its share of".to_string(), |m| m.to_string())
            )));
        }
        if shared.stop.load(Ordering::Acquire) {
            bail!("stopped after {} messages", tally.count);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {} messages", tally.count);
        }
    }
}

/// Returns when the server has acknowledged (via `PONG`) every message.
fn publisher(
    idx: usize,
    mut conn: Conn,
    spec: &ThroughputSpec,
    shared: &Shared,
    pinner: &Pinner,
    deadline: Instant,
) -> Result<Instant> {
    pinner.pin_current();
    let template = PubTemplate::new(&spec.subject(idx), None, spec.payload);
    let publisher = idx as u32;
    if spec.subscribers > 0 {
        probe(&mut conn, &template, idx, spec, shared, deadline)?;
    }
    shared.ready_publishers.fetch_add(1, Ordering::AcqRel);
    while !shared.go.load(Ordering::Acquire) {
        if shared.stop.load(Ordering::Acquire) || Instant::now() >= deadline {
            bail!("never started");
        }
        thread::yield_now();
    }
    if !spec.paced {
        return publish_unpaced(&mut conn, &template, spec, publisher, shared, deadline);
    }

    let wire = template.wire_len();
    let per_batch = (BATCH_BYTES / wire).max(1) as u64;
    let batches_per_ping = (PING_WINDOW_BYTES / BATCH_BYTES).max(1) as u64;
    let window = (WINDOW_BYTES / wire).max(1) as u64;
    let mut out = Vec::with_capacity(per_batch as usize * wire + proto::PING.len());
    let mut seq = 0;
    let mut batches = 0u64;
    while seq < spec.msgs_per_publisher {
        if spec.subscribers > 0 {
            wait_for_subscribers(shared, spec.aggregate(), window, deadline)?;
        }
        let k = per_batch.min(spec.msgs_per_publisher - seq);
        for s in seq..seq + k {
            template.encode(&mut out, Stamp { publisher, seq: s });
        }
        seq += k;
        batches += 1;
        if batches.is_multiple_of(batches_per_ping) {
            conn.push_ping(&mut out);
        }
        conn.send(&out)?;
        out.clear();
        shared.sent.fetch_add(k, Ordering::AcqRel);
        // Pipeline depth one: the window just sent may be in flight, the one
        // before it must have been processed.
        let acked = conn.pings_sent().saturating_sub(1);
        conn.wait_pongs_unless(acked, deadline, || shared.stop.load(Ordering::Acquire))?;
        if shared.stop.load(Ordering::Acquire) {
            bail!("stopped after {seq} messages");
        }
    }
    final_flush(&mut conn, shared, deadline)
}

/// Sends one `PING` after everything and waits for its `PONG`: the server
/// has then processed every message of this publisher.
fn final_flush(conn: &mut Conn, shared: &Shared, deadline: Instant) -> Result<Instant> {
    let mut ping = Vec::new();
    conn.push_ping(&mut ping);
    conn.send(&ping)?;
    conn.wait_pongs_unless(conn.pings_sent(), deadline, || {
        shared.stop.load(Ordering::Acquire)
    })
    .map_err(|e| match e.0.as_str() {
        "connection closed while waiting for PONG" => {
            Error("server closed the connection before answering the final PING".into())
        }
        _ => e,
    })?;
    let at = Instant::now();
    shared.flushed_publishers.fetch_add(1, Ordering::AcqRel);
    Ok(at)
}

/// Writes every message as fast as the socket takes them, in
/// [`BATCH_BYTES`] writes, without waiting for the server or the
/// subscribers; one `PING` at the end.
fn publish_unpaced(
    conn: &mut Conn,
    template: &PubTemplate,
    spec: &ThroughputSpec,
    publisher: u32,
    shared: &Shared,
    deadline: Instant,
) -> Result<Instant> {
    let per_batch = (BATCH_BYTES / template.wire_len()).max(1) as u64;
    let mut out = Vec::with_capacity(per_batch as usize * template.wire_len());
    let mut seq = 0;
    while seq < spec.msgs_per_publisher {
        let k = per_batch.min(spec.msgs_per_publisher - seq);
        for s in seq..seq + k {
            template.encode(&mut out, Stamp { publisher, seq: s });
        }
        conn.send_unpaced(&out)
            .map_err(|e| Error(format!("after {seq} messages: {e}")))?;
        out.clear();
        seq += k;
        shared.sent.fetch_add(k, Ordering::AcqRel);
        if shared.stop.load(Ordering::Acquire) {
            bail!("stopped after {seq} messages");
        }
        if Instant::now() >= deadline {
            bail!("timed out after sending {seq} messages");
        }
    }
    final_flush(conn, shared, deadline)
}

/// Publishes probe messages until the subscriptions are visible to this
/// publisher's connection. A sharded server may propagate interest between
/// shards asynchronously, so a subscriber's own `PONG` does not prove that.
fn probe(
    conn: &mut Conn,
    template: &PubTemplate,
    idx: usize,
    spec: &ThroughputSpec,
    shared: &Shared,
    deadline: Instant,
) -> Result<()> {
    let limit = (Instant::now() + PROBE_LIMIT).min(deadline);
    let mut out = Vec::new();
    while !shared.probe_seen(idx, spec) {
        if Instant::now() >= limit {
            bail!("subscriptions not visible to this publisher after {PROBE_LIMIT:?}");
        }
        if shared.stop.load(Ordering::Acquire) {
            bail!("stopped while probing");
        }
        template.encode(&mut out, Stamp::probe(idx as u32));
        conn.send(&out)?;
        out.clear();
        conn.flush(deadline)?;
        thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

fn wait_for_subscribers(
    shared: &Shared,
    aggregate: bool,
    window: u64,
    deadline: Instant,
) -> Result<()> {
    let mut spins = 0u32;
    while shared.lag(aggregate) > window {
        if shared.stop.load(Ordering::Acquire) {
            bail!("stopped");
        }
        if Instant::now() >= deadline {
            bail!(
                "timed out waiting for subscribers to catch up ({} messages behind)",
                shared.lag(aggregate)
            );
        }
        spins += 1;
        if spins < 64 {
            thread::yield_now();
        } else {
            thread::sleep(Duration::from_micros(50));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(publisher: u32, seq: u64) -> Vec<u8> {
        let mut p = vec![0u8; 16];
        Stamp { publisher, seq }.write(&mut p);
        p
    }

    #[test]
    fn tally_accepts_in_order_streams_from_several_publishers() {
        let mut t = Tally::new(2, true, 16);
        for seq in 0..5 {
            t.on_msg(&payload(0, seq)).unwrap();
            t.on_msg(&payload(1, seq)).unwrap();
        }
        assert_eq!(t.count, 10);
    }

    #[test]
    fn tally_rejects_gaps_duplicates_and_strangers() {
        let mut t = Tally::new(1, true, 16);
        t.on_msg(&payload(0, 0)).unwrap();
        let gap = t.on_msg(&payload(0, 2)).unwrap_err();
        assert!(
            gap.0
                .starts_with("LOSS: publisher 0: got seq 2 after 0: 1 message(s) missing"),
            "{gap}"
        );
        let mut t = Tally::new(1, true, 16);
        t.on_msg(&payload(0, 0)).unwrap();
        let dup = t.on_msg(&payload(0, 0)).unwrap_err();
        assert!(dup.0.starts_with("ORDER: "), "{dup}");
        assert!(
            Tally::new(1, true, 16).on_msg(&payload(5, 0)).is_err(),
            "unknown publisher"
        );
        assert!(
            Tally::new(1, true, 17).on_msg(&payload(0, 0)).is_err(),
            "wrong size"
        );
    }

    #[test]
    fn queue_tally_allows_gaps_but_not_going_backwards() {
        let mut t = Tally::new(1, false, 16);
        t.on_msg(&payload(0, 3)).unwrap();
        t.on_msg(&payload(0, 9)).unwrap();
        assert!(t.on_msg(&payload(0, 9)).is_err());
        assert_eq!(t.count, 2);
    }

    #[test]
    fn probes_are_flagged_not_counted() {
        let mut t = Tally::new(3, true, 16);
        let mut p = vec![0u8; 16];
        Stamp::probe(2).write(&mut p);
        t.on_msg(&p).unwrap();
        t.on_msg(&payload(2, 0)).unwrap();
        t.on_msg(&p).unwrap();
        assert_eq!((t.count, t.probe_mask), (1, 0b100));
    }

    #[test]
    fn expected_deliveries_follow_the_shape() {
        let spec = |p, s, q| ThroughputSpec {
            payload: 16,
            publishers: p,
            subscribers: s,
            queue: q,
            msgs_per_publisher: 10,
            paced: true,
            pairs: false,
        };
        assert_eq!(spec(1, 0, false).expected_deliveries(), 0);
        assert_eq!(spec(1, 10, false).expected_deliveries(), 100);
        assert_eq!(spec(1, 10, false).per_subscriber(), Some(10));
        assert_eq!(spec(1, 4, true).expected_deliveries(), 10);
        assert_eq!(spec(1, 4, true).per_subscriber(), None);
        assert_eq!(spec(4, 1, false).expected_deliveries(), 40);
        assert_eq!(spec(4, 1, false).subject(3), THROUGHPUT_SUBJECT);
        let pairs = ThroughputSpec {
            pairs: true,
            ..spec(8, 8, false)
        };
        assert_eq!(pairs.expected_deliveries(), 80);
        assert_eq!(pairs.per_subscriber(), Some(10));
        assert_eq!(pairs.subject(3), "bench.data.3");
    }
}
