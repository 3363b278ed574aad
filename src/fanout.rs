//! The narrow interface between a shard's routing and the connections it
//! delivers to. `shard` depends on this module and never on `conn`; `conn`
//! implements the traits here. A message therefore flows one way: a
//! connection hands it to its shard, the shard matches it and hands it to
//! [`Subscriber`]s, and nothing climbs back up into the connection module.
//!
//! Back-pressure, as the reference applies it: a consumer whose pending
//! output passes its stall level marks itself congested while a message is
//! delivered to it ([`note_congested`]). The client's read loop that
//! produced the message takes the mark right after it ([`take_congested`])
//! and waits until the consumer drains or the reference's stall time passes
//! ([`stall`]), before it handles the next message. For a message that came
//! from another shard, the receiving shard takes the mark and holds the
//! producer over there the same way (see `shard`). A consumer that keeps
//! up is never cut; one that never reads still reaches `max_pending` or its
//! write deadline and is closed.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::options::Options;

/// One message as it is routed: subject, reply, and the body (headers,
/// when `has_headers`, then payload), all borrowed.
#[derive(Clone, Copy, Debug)]
pub struct Msg<'a> {
    pub subject: &'a [u8],
    pub reply: Option<&'a [u8]>,
    pub has_headers: bool,
    /// Length of the header block at the start of `body`.
    pub hdr_len: usize,
    pub body: &'a [u8],
}

/// A subscription as the subject index holds it.
pub trait Subscriber {
    /// Queues `m` to the subscriber; returns whether it was accepted.
    fn deliver(&self, m: &Msg<'_>) -> bool;
    /// The connection id that owns the subscription (for `echo: false`).
    fn owner(&self) -> u64;
    /// The output buffer deliveries go to, when it can congest.
    fn consumer(&self) -> Option<Rc<dyn Outbound>> {
        None
    }
}

/// A subscription compared by identity, as stored in the subject index.
#[derive(Clone)]
pub struct SubRef(pub Rc<dyn Subscriber>);

impl PartialEq for SubRef {
    fn eq(&self, o: &Self) -> bool {
        std::ptr::addr_eq(Rc::as_ptr(&self.0), Rc::as_ptr(&o.0))
    }
}

/// A connection as its shard manages it outside the message path.
pub trait Session {
    /// Per-tick timers: pings, stale detection, handshake deadlines.
    fn tick(&self, now: Instant, opts: &Options);
    /// Close for server shutdown or the end of lame duck mode, flushing
    /// what is queued.
    fn shutdown(&self);
    /// Tell the client the server entered lame duck mode.
    fn lame_duck(&self);
    /// New options took effect; `auth_changed` asks for re-authorization.
    fn reloaded(&self, opts: &Options, auth_changed: bool);
    /// Figures monitoring filters and sorts connections by; no allocation.
    fn conn_brief(&self) -> crate::monitor::snapshot::ConnBrief;
    /// Whether the connection is bound to account `acc`.
    fn conn_in_account(&self, acc: &str) -> bool;
    /// Whether a `/connz` listing with filter `f` shows the connection
    /// (its account aside).
    fn conn_listed(&self, f: &crate::monitor::snapshot::ConnFilter) -> bool;
    /// The connection as monitoring reports it, with its subscriptions
    /// listed and its TLS peer certificates (for `auth`) when asked.
    fn conn_info(&self, subs: bool, auth: bool) -> crate::monitor::snapshot::ConnInfo;
}

/// A consumer's output buffer, as producers see it when they must wait.
pub trait Outbound {
    fn pending(&self) -> usize;
    fn max_pending(&self) -> usize;
    /// Pending bytes at or below which the consumer counts as drained.
    fn stall_level(&self) -> usize;
    fn is_closed(&self) -> bool;
    /// Registers a waker for the next drain or close.
    fn on_drain(&self, w: &Waker);
}

/// Most pending bytes a consumer holds before producers wait for it,
/// whatever its `max_pending`: the reference waits from half of
/// `max_pending`; a lower ceiling keeps buffers (and resident memory)
/// small while still far above what one socket write takes.
pub const STALL_CEILING: usize = 4 * 1024 * 1024;

thread_local! {
    /// The most congested consumer the current message reached.
    static CONGESTED: RefCell<Option<Rc<dyn Outbound>>> = const { RefCell::new(None) };
}

/// Marks `c` congested if it is the most congested one this message reached.
pub fn note_congested(c: Rc<dyn Outbound>) {
    CONGESTED.with(|cg| {
        let mut cg = cg.borrow_mut();
        if cg.as_ref().is_none_or(|o| o.pending() < c.pending()) {
            *cg = Some(c);
        }
    });
}

/// Takes the congestion mark left by the last message, if any.
pub fn take_congested() -> Option<Rc<dyn Outbound>> {
    CONGESTED.with(|cg| cg.borrow_mut().take())
}

/// Pending bytes above which deliveries from other shards wait in line
/// for `c` instead of joining its buffer: halfway from its stall level to
/// its `max_pending`, so what was already in flight from every other shard
/// when its producers were told to wait cannot push a consumer that keeps
/// reading over `max_pending`.
pub fn park_level(c: &dyn Outbound) -> usize {
    let stall = c.stall_level();
    stall + c.max_pending().saturating_sub(stall) / 2
}

/// The reference's stall time for a consumer with `pending` of
/// `max_pending` bytes: 100 ms, growing by 100 ms for each tenth of the
/// upper half it has filled, up to 1 s at `max_pending`.
pub fn stall_duration(pending: usize, max_pending: usize) -> Duration {
    const MIN: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(1);
    if pending >= max_pending {
        return MAX;
    }
    let half = max_pending / 2;
    if pending <= half {
        return MIN;
    }
    let step = (half / 10).max(1);
    (MIN + MIN * ((pending - half) / step) as u32).min(MAX)
}

/// Waits until `c` drains below its stall level or closes, at most the
/// reference's stall time. Returns how long it waited.
pub async fn stall(c: &dyn Outbound) -> Duration {
    let start = Instant::now();
    if c.is_closed() || c.pending() <= c.stall_level() {
        return Duration::ZERO;
    }
    let ttl = stall_duration(c.pending(), c.max_pending());
    let wait = poll_fn(|cx| {
        if c.is_closed() || c.pending() <= c.stall_level() {
            Poll::Ready(())
        } else {
            c.on_drain(cx.waker());
            Poll::Pending
        }
    });
    at_most(ttl, wait).await;
    start.elapsed()
}

/// Waits for `wait`, but no longer than `limit`: the bounded stall every
/// producer hold uses.
pub async fn at_most(limit: Duration, wait: impl std::future::Future<Output = ()>) {
    let _ = glommio::timer::timeout(limit, async {
        wait.await;
        Ok(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_duration_follows_the_reference() {
        let mp = 100;
        assert_eq!(stall_duration(110, mp), Duration::from_secs(1));
        assert_eq!(stall_duration(100, mp), Duration::from_secs(1));
        assert_eq!(stall_duration(49, mp), Duration::from_millis(100));
        assert_eq!(stall_duration(50, mp), Duration::from_millis(100));
        assert_eq!(stall_duration(55, mp), Duration::from_millis(200));
        assert_eq!(stall_duration(60, mp), Duration::from_millis(300));
        assert_eq!(stall_duration(99, mp), Duration::from_secs(1));
    }
}
