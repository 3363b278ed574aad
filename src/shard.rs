//! One shard: a pinned glommio executor that owns its connections, its copy
//! of the subject index, and its ends of the channel mesh.
//!
//! Routing a message: the publishing shard matches the subject against its
//! local subscriptions and against the interest its peers announced. Local
//! subscribers are written to directly. Each peer with matching interest gets
//! one [`Delivery`] carrying the payload as a shared `Bytes`; the peer does
//! its own local match. Queue groups are resolved on the publishing shard:
//! it picks the member's shard weighted by how many members each shard
//! announced, so exactly one member in the whole server gets each message.
//!
//! Interest moves between shards as [`ShardMsg::Interest`] messages, sent
//! when a shard's local count for a (subject, queue) changes. Plain interest
//! is announced on its first subscriber and withdrawn on its last; queue
//! interest carries the member count, which weights the cross-shard pick.
//!
//! Accounts are separate subject spaces: each shard keeps one [`Space`]
//! (local index, peer interest) per account id, and every interest change
//! and delivery between shards names its account. Stream imports re-route a
//! message into the importing account's space under its local subject;
//! service imports route a request into the exporter's space with a reply
//! of the form `_R_.<shard>.<token>`, which the responding shard hands back
//! to the shard that holds the mapping to the requester's real reply.
//!
//! Messages to a peer are collected per loop tick and sent as one batch by a
//! per-peer flusher task. Channels are FIFO, so a client's SUB is known to a
//! peer before any later message of that client's. A PING after a SUB
//! waits on a barrier (every peer acknowledges having processed what this
//! shard sent before it), so subscribe-flush-publish works across shards.
//! A new connection's first message waits for a settle ([`Shard::settle`]):
//! a barrier that every peer answers only after reading what its clients
//! had already written, so a SUB still unread on a shard the OS has not run
//! yet is not overtaken by a client that connected after it was written.
//!
//! Flow control between shards has two parts.
//! - A byte window per directed link bounds what is in flight: bytes pushed
//!   to a peer count as outstanding until the peer has handled them and
//!   sends them back as [`ShardMsg::Credit`]. A producer that pushed to a
//!   peer whose window is full waits before it reads more input, so a shard
//!   that falls behind on CPU slows the shards feeding it.
//! - Back-pressure from a consumer reaches the producer that fed it, and
//!   only that producer, as in the reference. The receiving shard delivers
//!   every message at once, never waiting inside a link (so credits,
//!   interest and barriers behind a congested consumer's messages are never
//!   held up, and other producers' traffic on the link flows on). When a
//!   delivery left a local consumer congested, it tells the producing shard
//!   [`ShardMsg::Stall`] naming the producer, waits for the consumer as the
//!   reference's producer would ([`fanout::stall`]: until it drains, at
//!   most the reference's stall time), then sends [`ShardMsg::Unstall`].
//!   The producer waits in between before handling its next message.
//!   What it had in flight meanwhile joins the consumer's buffer, unless
//!   the consumer is past its [`fanout::park_level`]: then it waits in
//!   line ([`Parked`]) and holds its window credit until it can join, so
//!   the windows bound it. Nothing is dropped on the way; a consumer that
//!   never reads still reaches `max_pending` or its write deadline and is
//!   closed.
//!
//! Placement: each shard accepts on its own `SO_REUSEPORT` listener, then
//! hands the new connection over the mesh, before a byte is exchanged, to
//! the shard [`Global::place`] picks: among the shards with (nearly) the
//! fewest connections, the least busy. The kernel's port hash is therefore
//! only where a connection is accepted, never where it lives.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use glommio::channels::channel_mesh::{MeshBuilder, Receivers, Senders};
use glommio::net::{AcceptedTcpStream, TcpListener, TcpStream};

use crate::fanout::{self, Msg, Session, SubRef};
use crate::monitor::snapshot::{
    AccountCounters, ConnBrief, ConnInfo, ConnSelect, PendingResponse, Query, ShardSnapshot,
    SubInfo, SublistStats,
};
use crate::options::Options;
use crate::proto::encode::ServerInfo;
use crate::security::account::AccountId;
use crate::security::authz::CompiledPerms;
use crate::subject;
use crate::sublist::{MatchResult, SubList};
use crate::system::{SysIn, System, INTERNAL_CID};

/// State shared by all shards: counters only, never written per message.
pub struct Global {
    pub connections: AtomicUsize,
    pub next_cid: AtomicU64,
    /// Live connections per shard, for placement.
    pub shard_conns: Vec<AtomicUsize>,
    /// Each shard's recent CPU use in tenths of its core (0–10), which each
    /// shard refreshes for itself a few times a second, for placement.
    pub shard_busy: Vec<AtomicUsize>,
    /// New interest (a subject or queue group a shard had no subscription
    /// for) announced by any shard, ever. A shard that knows of fewer has
    /// some on the way to it; it reads this only for a message that found
    /// no subscriber (see [`Shard::interest_in_flight`]).
    pub interest_adds: AtomicU64,
    /// `tls { connection_rate_limit }`: TLS connections allowed per second
    /// (0: no limit), fixed at start as in the reference.
    tls_rate_limit: i64,
    /// The rate limit's current one-second window and what it refused
    /// since the last report. Touched once per TLS connection, never per
    /// message.
    tls_rate: std::sync::Mutex<TlsRate>,
    /// The control plane, set once every shard runs: what a shard's
    /// blocking work uses to change options on every shard (a fetched
    /// account's exports and imports).
    pub plane: std::sync::OnceLock<Arc<crate::plane::Plane>>,
    /// The client ids of the reference's internal clients, one per account
    /// with the system imports (the system client itself is
    /// [`SYSTEM_CLIENT_CID`]): what `/subsz` lists the server's own
    /// subscriptions under. Touched when an account gets the imports and by
    /// monitoring, never per message.
    internal_cids: std::sync::Mutex<HashMap<AccountId, u64>>,
}

/// The client id of the reference's system client, whose subscriptions are
/// the system account's requests: the first one taken.
pub const SYSTEM_CLIENT_CID: u64 = 1;

#[derive(Default)]
struct TlsRate {
    end: Option<Instant>,
    count: i64,
    blocked: u64,
}

impl Global {
    pub fn new(nshards: usize, tls_rate_limit: i64) -> Global {
        Global {
            connections: AtomicUsize::new(0),
            next_cid: AtomicU64::new(0),
            shard_conns: (0..nshards).map(|_| AtomicUsize::new(0)).collect(),
            shard_busy: (0..nshards).map(|_| AtomicUsize::new(0)).collect(),
            interest_adds: AtomicU64::new(0),
            tls_rate_limit,
            tls_rate: std::sync::Mutex::new(TlsRate::default()),
            plane: std::sync::OnceLock::new(),
            internal_cids: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Takes the client ids the reference's internal clients take before
    /// any client connects, when there is a system account: the system
    /// client's, one per account in `importers` (those given the system
    /// imports, in order), then the system account's own. A first client
    /// therefore gets the id it gets from the reference (4 by default).
    pub fn reserve_internal_cids(&self, system_account: AccountId, importers: &[AccountId]) {
        self.next_cid
            .fetch_max(SYSTEM_CLIENT_CID, Ordering::Relaxed);
        for &a in importers {
            self.internal_cid(a);
        }
        self.internal_cid(system_account);
    }

    /// The id of `account`'s internal client, taken from the client ids the
    /// first time the account needs one, as the reference creates it.
    pub fn internal_cid(&self, account: AccountId) -> u64 {
        let mut m = self.internal_cids.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(account)
            .or_insert_with(|| self.next_cid.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// Whether one more TLS connection fits `tls { connection_rate_limit }`,
    /// counted as the reference does: a window opens with the first
    /// connection after the last one ended, and lasts a second.
    pub fn tls_rate_allow(&self) -> bool {
        let limit = self.tls_rate_limit;
        if limit <= 0 {
            return true;
        }
        let now = Instant::now();
        let mut r = self.tls_rate.lock().unwrap_or_else(|e| e.into_inner());
        if r.end.is_none_or(|end| now > end) {
            r.count = 0;
            r.end = Some(now + Duration::from_secs(1));
        } else {
            r.count += 1;
        }
        let allow = r.count < limit;
        if !allow {
            r.blocked += 1;
        }
        allow
    }

    /// TLS connections refused by the rate limit since the last call.
    pub fn take_tls_blocked(&self) -> u64 {
        std::mem::take(
            &mut self
                .tls_rate
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .blocked,
        )
    }

    /// Picks a shard for a new connection and counts it there at once, so
    /// concurrent accepts spread out. Connection counts come first: only
    /// shards within [`place_slack`] of the fewest are candidates. Among
    /// them the least busy (by tenths of a core) wins, then the fewest
    /// connections, then the lowest index. So idle shards fill evenly, and
    /// a shard whose clients keep it busy gets fewer newcomers.
    pub fn place(&self) -> usize {
        let best = pick_shard(&self.loads(), &self.busy());
        self.shard_conns[best].fetch_add(1, Ordering::Relaxed);
        best
    }

    /// Connections per shard, for placement and logs.
    pub fn loads(&self) -> Vec<usize> {
        read_all(&self.shard_conns)
    }

    /// Each shard's recent CPU use in tenths of a core, for placement and
    /// logs.
    pub fn busy(&self) -> Vec<usize> {
        read_all(&self.shard_busy)
    }
}

fn read_all(v: &[AtomicUsize]) -> Vec<usize> {
    v.iter().map(|c| c.load(Ordering::Relaxed)).collect()
}

/// How many connections above the fewest a shard may hold and still take
/// a newcomer for being less busy: one, or an eighth of the fewest.
fn place_slack(fewest: usize) -> usize {
    (fewest / 8).max(1)
}

/// The placement rule of [`Global::place`] over connection counts and busy
/// tenths per shard.
fn pick_shard(conns: &[usize], busy: &[usize]) -> usize {
    let fewest = conns.iter().copied().min().unwrap_or(0);
    let limit = fewest + place_slack(fewest);
    (0..conns.len())
        .filter(|&i| conns[i] <= limit)
        .min_by_key(|&i| (busy[i], conns[i], i))
        .unwrap_or(0)
}

/// A connection handed from the shard that accepted it to the one that
/// will own it.
pub type Serve =
    fn(Rc<Shard>, TcpStream) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

/// A message routed to another shard. The subject, reply and message share
/// one allocation: `data` is subject, then reply, then headers and payload.
pub struct Delivery {
    account: AccountId,
    data: Bytes,
    subject_len: u32,
    reply_len: u32,
    hdr_len: u32,
    has_headers: bool,
    has_reply: bool,
    /// Deliver to the peer's plain subscribers.
    plain: bool,
    /// Queue groups whose member the publishing shard picked on this peer.
    queues: Groups,
    /// The publishing client's id on the sending shard (0: none, as for
    /// the server's own messages), which a congested consumer stalls.
    producer: u64,
}

pub enum ShardMsg {
    Deliver(Delivery),
    /// A response to a service import whose mapping lives on the receiving
    /// shard under `token`.
    Response {
        token: u64,
        d: Delivery,
    },
    Interest {
        account: AccountId,
        subject: Box<[u8]>,
        queue: Option<Box<[u8]>>,
        count: u32,
        /// New interest, counted in [`Global::interest_adds`].
        added: bool,
    },
    Barrier {
        token: u64,
        /// Acknowledge only after reading what already waits in this
        /// shard's sockets (see [`Shard::settle`]).
        settle: bool,
    },
    BarrierAck {
        token: u64,
    },
    /// Flow control: the receiver delivered this many bytes of the
    /// sender's traffic, which no longer count against its window.
    Credit(usize),
    /// A delivery from the sender's client `producer` left a consumer here
    /// congested: the producer waits until the matching `Unstall`.
    Stall {
        producer: u64,
    },
    /// The consumer behind an earlier `Stall` drained, closed, or the
    /// stall time passed.
    Unstall {
        producer: u64,
    },
    /// A connection this shard accepted for the receiver to own.
    Adopt(AcceptedTcpStream),
    /// To shard 0: a client bound to `account`, which the options do not
    /// list (fetched from a URL resolver), so give it the system imports.
    SystemImports {
        account: AccountId,
    },
}

pub type Batch = Vec<ShardMsg>;

/// The queue groups a delivery's peer was picked for. Nearly always none
/// or one, and neither costs an allocation: the names are the ones the
/// peer announced, shared, not copied per message.
#[derive(Default)]
pub enum Groups {
    #[default]
    None,
    One(Arc<[u8]>),
    Many(Vec<Arc<[u8]>>),
}

impl Groups {
    fn push(&mut self, g: Arc<[u8]>) {
        *self = match std::mem::take(self) {
            Groups::None => Groups::One(g),
            Groups::One(first) => Groups::Many(vec![first, g]),
            Groups::Many(mut v) => {
                v.push(g);
                Groups::Many(v)
            }
        };
    }

    fn is_empty(&self) -> bool {
        matches!(self, Groups::None)
    }

    fn names(&self) -> &[Arc<[u8]>] {
        match self {
            Groups::None => &[],
            Groups::One(g) => std::slice::from_ref(g),
            Groups::Many(v) => v,
        }
    }
}

/// A peer's announced interest in one (subject, queue).
pub struct RemoteInterest {
    pub shard: usize,
    pub count: Cell<u32>,
    /// The queue group's name, for deliveries to a member over there.
    pub queue: Option<Arc<[u8]>>,
}

#[derive(Clone)]
pub struct RemoteRef(pub Rc<RemoteInterest>);

impl PartialEq for RemoteRef {
    fn eq(&self, o: &Self) -> bool {
        Rc::ptr_eq(&self.0, &o.0)
    }
}

type InterestKey = (Box<[u8]>, Option<Box<[u8]>>);
/// A peer's interest: (peer, subject, queue).
type RemoteKey = (usize, Box<[u8]>, Option<Box<[u8]>>);
/// Per peer: whether its plain subscribers get a message, and the queue
/// groups it was picked for.
type PeerPick = (bool, Groups);

/// One account's subject space on this shard.
#[derive(Default)]
pub struct Space {
    /// This account's traffic on this shard, for monitoring.
    pub stats: SpaceStats,
    local: RefCell<SubList<SubRef>>,
    remote: RefCell<SubList<RemoteRef>>,
    local_interest: RefCell<HashMap<InterestKey, u32>>,
    remote_interest: RefCell<HashMap<RemoteKey, RemoteRef>>,
}

/// One account's counters on one shard; written only by the shard.
#[derive(Default)]
pub struct SpaceStats {
    pub in_msgs: Cell<u64>,
    pub in_bytes: Cell<u64>,
    pub out_msgs: Cell<u64>,
    pub out_bytes: Cell<u64>,
    pub slow_consumers: Cell<u64>,
    pub total_conns: Cell<u64>,
}

/// Where responses to one forwarded service request go.
struct ResponseRoute {
    importer: AccountId,
    /// The exporting account (for monitoring: its pending responses).
    exporter: AccountId,
    /// The import shares the requester's details (for monitoring).
    share: bool,
    reply: Box<[u8]>,
    /// Responses still allowed; `None` for streamed responses.
    remaining: Option<u32>,
    expires: Instant,
}

struct Peer {
    batch: RefCell<Batch>,
    /// Length of the last batch sent, capped: the next one starts with
    /// room for that many instead of regrowing through every doubling.
    batch_hint: Cell<usize>,
    flusher: Cell<Option<Waker>>,
    /// Bytes pushed to this peer that it has not credited back yet.
    outstanding: Cell<usize>,
    /// Bytes of this peer's traffic delivered here, not yet credited.
    owed: Cell<usize>,
    /// Producers waiting for this peer's window to reopen.
    waiters: RefCell<Vec<Waker>>,
}

/// The most deliveries a new batch reserves room for up front.
const BATCH_HINT_MAX: usize = 1024;

/// Bytes in flight on one link (pushed, not yet delivered by the peer)
/// above which producers that feed it wait before reading more.
const LINK_WINDOW: usize = 4 * 1024 * 1024;

/// Owed credit that is sent at once; less waits for other traffic to the
/// peer or the next housekeeping tick (see [`Shard::credit`]).
const CREDIT_EAGER: usize = LINK_WINDOW / 16;

/// What one delivery costs against the window besides its bytes, so a
/// flood of tiny messages is bounded too.
const MSG_COST: usize = 64;

thread_local! {
    /// Peers (bit per peer index, the last bit standing for all above 63)
    /// that the current producer pushed deliveries to.
    static TOUCHED: Cell<u64> = const { Cell::new(0) };
}

/// Per-shard counters, read by monitoring; written only by their shard.
#[derive(Default)]
pub struct ShardStats {
    /// Deliveries and responses sent to peers.
    pub mesh_out: Cell<u64>,
    /// Deliveries and responses received from peers.
    pub mesh_in: Cell<u64>,
    /// Time producers and peer links spent waiting for consumers or
    /// windows, in nanoseconds.
    pub stalled_ns: Cell<u64>,
    /// Messages and payload bytes published by this shard's clients.
    pub in_msgs: Cell<u64>,
    pub in_bytes: Cell<u64>,
    /// Messages and payload bytes delivered to this shard's clients.
    pub out_msgs: Cell<u64>,
    pub out_bytes: Cell<u64>,
    pub slow_consumers: Cell<u64>,
    /// Connections this shard has served since start.
    pub total_connections: Cell<u64>,
}

/// Adds `n` to a counter cell.
#[inline]
pub fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get() + n);
}

/// Closed connections each shard remembers for `/connz?state=closed`
/// (the reference's default `max_closed_clients`).
pub const MAX_CLOSED_CLIENTS: usize = 10_000;

/// The rounds of [`Shard::settle`] behind [`Shard::settled_since`]: a round
/// covers what clients wrote before it started.
#[derive(Default)]
struct Settles {
    started: Cell<u64>,
    done: Cell<u64>,
    wanted: Cell<u64>,
    running: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

struct BarrierState {
    remaining: usize,
    waker: Option<Waker>,
}

pub struct Shard {
    pub id: usize,
    pub nshards: usize,
    pub opts: RefCell<Rc<Options>>,
    pub info: RefCell<Rc<ServerInfo>>,
    pub global: Arc<Global>,
    /// Account spaces, indexed by account id.
    spaces: RefCell<Vec<Option<Rc<Space>>>>,
    responses: RefCell<HashMap<u64, ResponseRoute>>,
    next_response: Cell<u64>,
    /// Compiled permissions per user name, rebuilt after a reload.
    perms: RefCell<HashMap<String, Rc<CompiledPerms>>>,
    peers: Vec<Peer>,
    senders: Senders<Batch>,
    barriers: RefCell<HashMap<u64, BarrierState>>,
    next_token: Cell<u64>,
    /// Settle rounds, for new connections' first messages and for 503s.
    settles: Settles,
    /// New interest this shard knows of: its own and what peers announced
    /// to it, against [`Global::interest_adds`].
    interest_known: Cell<u64>,
    pub clients: RefCell<HashMap<u64, Rc<dyn Session>>>,
    serve: Serve,
    pub stats: ShardStats,
    rng: Cell<u64>,
    /// Reused per publish, indexed by peer: whether its plain subscribers
    /// get the message, and the queue groups it was picked for.
    scratch: RefCell<Vec<PeerPick>>,
    /// Lame duck mode has begun.
    pub lame_duck: Cell<bool>,
    listener_fd: Cell<i32>,
    /// Recently closed connections, oldest first, for monitoring.
    closed: RefCell<std::collections::VecDeque<ConnInfo>>,
    /// The system account, when events are on.
    pub system: Option<Arc<System>>,
    /// The system imports this shard subscribed (shard 0 only), by account
    /// and subject, kept in step with the accounts the options know.
    system_imports: RefCell<HashMap<(AccountId, &'static str), SubRef>>,
    /// Accounts the options do not list that clients bound to (fetched
    /// ones): given every system import as well (shard 0 only).
    fetched_importers: RefCell<std::collections::HashSet<AccountId>>,
    /// The server's own subscriptions (shard 0 only), for `/subsz`, and
    /// the last sid each internal client used.
    internal_subs: RefCell<Vec<Rc<SysSub>>>,
    internal_sids: RefCell<HashMap<u64, u64>>,
    /// Accounts this shard asked shard 0 to give system imports to, or
    /// found listed in the options: asked once per shard.
    system_imports_asked: RefCell<std::collections::HashSet<AccountId>>,
    /// The client whose message is being routed (0: none), for the
    /// deliveries it sends to peers.
    producer: Cell<u64>,
    /// This shard's producers that peers asked to wait, by client id.
    stalled: RefCell<HashMap<u64, ProducerStall>>,
    /// (peer, producer) pairs a consumer here is stalling.
    stalling: RefCell<std::collections::HashSet<(usize, u64)>>,
    /// Deliveries from peers waiting in line for consumers near their
    /// `max_pending`, by consumer (its address).
    parked: RefCell<HashMap<usize, Rc<Parked>>>,
}

/// Deliveries from peers held back, in order, for one consumer that was
/// past its [`fanout::park_level`]: what its producers had in flight when
/// they were told to wait. They join its buffer as it drains.
struct Parked {
    consumer: Rc<dyn fanout::Outbound>,
    queue: RefCell<std::collections::VecDeque<(SubRef, Delivery, Rc<Held>)>>,
}

/// A peer's delivery with copies waiting in line: its window credit goes
/// back only once every copy has joined its consumer's buffer, so what
/// waits in line stays within the link's window.
struct Held {
    shard: Rc<Shard>,
    from: usize,
    cost: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        let p = &self.shard.peers[self.from];
        p.owed.set(p.owed.get() + self.cost);
        self.shard.credit(self.from);
    }
}

/// A consumer's identity as a map key: the address it lives at.
fn consumer_key(c: &Rc<dyn fanout::Outbound>) -> usize {
    Rc::as_ptr(c) as *const () as usize
}

/// A producer that peers asked to wait for their congested consumers.
#[derive(Default)]
struct ProducerStall {
    /// `Stall`s not yet matched by an `Unstall`.
    count: u32,
    waker: Option<Waker>,
}

/// Longest a producer waits for a peer's `Unstall`: the reference's longest
/// stall, plus slack for the trip between shards.
const PEER_STALL_MAX: Duration = Duration::from_millis(1500);

impl Shard {
    /// A cheap pseudo-random number (xorshift) for queue member picks.
    pub fn rand(&self, n: usize) -> usize {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        (x % n as u64) as usize
    }

    /// A snapshot of this shard's clients, to act on them while the map
    /// may change underneath (closing, re-authorizing).
    fn client_list(&self) -> Vec<Rc<dyn Session>> {
        self.clients.borrow().values().cloned().collect()
    }

    pub fn options(&self) -> Rc<Options> {
        self.opts.borrow().clone()
    }

    /// The space of account `acc`, created on first use.
    pub fn space(&self, acc: AccountId) -> Rc<Space> {
        let mut spaces = self.spaces.borrow_mut();
        let i = acc as usize;
        if spaces.len() <= i {
            spaces.resize(i + 1, None);
        }
        spaces[i]
            .get_or_insert_with(|| Rc::new(Space::default()))
            .clone()
    }

    /// The compiled permissions of `user` on this shard.
    pub fn compiled_perms(&self, user: &str, p: &crate::config::Permissions) -> Rc<CompiledPerms> {
        self.perms
            .borrow_mut()
            .entry(user.to_string())
            .or_insert_with(|| Rc::new(CompiledPerms::compile(p)))
            .clone()
    }

    /// Registers a local subscription and announces interest changes.
    pub fn add_sub(&self, s: &SubKey<'_>, sub: SubRef) {
        let space = self.space(s.account);
        space.local.borrow_mut().insert(s.subject, s.queue, sub);
        let key: InterestKey = (s.subject.into(), s.queue.map(Into::into));
        let count = {
            let mut li = space.local_interest.borrow_mut();
            let c = li.entry(key).or_insert(0);
            *c += 1;
            *c
        };
        if s.queue.is_some() || count == 1 {
            let added = count == 1;
            if added && self.nshards > 1 {
                self.global.interest_adds.fetch_add(1, Ordering::Release);
                self.interest_known.set(self.interest_known.get() + 1);
            }
            self.announce(s.account, s.subject, s.queue, count, added);
        }
    }

    /// Removes a local subscription; returns whether it was registered.
    pub fn remove_sub(&self, s: &SubKey<'_>, sub: &SubRef) -> bool {
        let space = self.space(s.account);
        if !space.local.borrow_mut().remove(s.subject, s.queue, sub) {
            return false;
        }
        let key: InterestKey = (s.subject.into(), s.queue.map(Into::into));
        let count = {
            let mut li = space.local_interest.borrow_mut();
            match li.get_mut(&key) {
                Some(c) => {
                    *c -= 1;
                    let c = *c;
                    if c == 0 {
                        li.remove(&key);
                    }
                    c
                }
                None => 0,
            }
        };
        if s.queue.is_some() || count == 0 {
            self.announce(s.account, s.subject, s.queue, count, false);
        }
        true
    }

    fn announce(
        &self,
        account: AccountId,
        subject: &[u8],
        queue: Option<&[u8]>,
        count: u32,
        added: bool,
    ) {
        for p in 0..self.nshards {
            if p != self.id {
                let msg = ShardMsg::Interest {
                    account,
                    subject: subject.into(),
                    queue: queue.map(Into::into),
                    count,
                    added,
                };
                self.push(p, msg);
            }
        }
    }

    /// Queues a control message (no flow control) for `peer`.
    fn push(&self, peer: usize, msg: ShardMsg) {
        let p = &self.peers[peer];
        let mut batch = p.batch.borrow_mut();
        if batch.capacity() == 0 {
            batch.reserve(p.batch_hint.get());
        }
        batch.push(msg);
        drop(batch);
        if let Some(w) = p.flusher.take() {
            w.wake();
        }
    }

    /// Queues a delivery of `bytes` for `peer`, counted against its window
    /// and noted for the producer, which waits for the window later.
    fn push_data(&self, peer: usize, msg: ShardMsg, bytes: usize) {
        let p = &self.peers[peer];
        p.outstanding.set(p.outstanding.get() + bytes + MSG_COST);
        self.stats.mesh_out.set(self.stats.mesh_out.get() + 1);
        TOUCHED.with(|t| t.set(t.get() | 1 << peer.min(63)));
        self.push(peer, msg);
    }

    /// The peers in `touched` whose windows are full.
    fn full_peers(&self, touched: u64) -> impl Iterator<Item = &Peer> {
        self.peers.iter().enumerate().filter_map(move |(i, p)| {
            (touched & (1 << i.min(63)) != 0 && p.outstanding.get() > LINK_WINDOW).then_some(p)
        })
    }

    /// The peers (as a bit set) fed since the last call; a producer takes
    /// them right after each message it routes.
    pub fn take_touched(&self) -> u64 {
        TOUCHED.with(|t| t.replace(0))
    }

    /// Waits until every peer in `touched` has room in its window again.
    /// Peers always make progress (see the module comment), so this ends.
    pub async fn wait_window(&self, touched: u64) {
        if touched == 0 || self.full_peers(touched).next().is_none() {
            return;
        }
        let start = Instant::now();
        poll_fn(|cx| {
            let mut full = false;
            for p in self.full_peers(touched) {
                p.waiters.borrow_mut().push(cx.waker().clone());
                full = true;
            }
            if full {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        self.note_stall(start.elapsed());
    }

    /// Whether another shard announced new interest that has not reached
    /// this one yet. A message that found no subscriber checks this: a
    /// client may have subscribed on another shard just before the message
    /// arrived here, and the reference, with one subject index, would have
    /// delivered to it. nats.py's `flush()`, for one, writes its PING ahead
    /// of a SUB still queued, so its PONG does not prove the SUB arrived.
    pub fn interest_in_flight(&self) -> bool {
        self.nshards > 1
            && self.global.interest_adds.load(Ordering::Acquire) > self.interest_known.get()
    }

    /// Adds to the time spent stalled, for monitoring.
    pub fn note_stall(&self, d: Duration) {
        let ns = self.stats.stalled_ns.get();
        self.stats.stalled_ns.set(ns + d.as_nanos() as u64);
    }

    /// Resolves once every peer has processed everything this shard sent
    /// before the call.
    pub async fn barrier(&self) {
        self.barrier_with(false).await
    }

    /// A [`Shard::barrier`] that also covers what clients of other shards
    /// wrote before the call and those shards have not read yet: each peer
    /// acknowledges only after one pass of its event loop, which reads
    /// every socket with input waiting, and after the connections woken by
    /// that pass have run; the interest they announced travels ahead of
    /// the acknowledgement. A shard whose thread the OS has not run for a
    /// while (more busy threads than CPUs) can hold a client's `SUB` for
    /// milliseconds, while a message that the reference, reading every
    /// socket as it becomes readable, would have delivered to it arrives
    /// elsewhere. Costs a round trip to every peer and a loop pass there,
    /// so it runs in coalesced rounds ([`Shard::settled_since`]) and where
    /// rare: before a connection's first message is routed, and before a
    /// request is told there are no responders.
    async fn settle(&self) {
        self.barrier_with(true).await
    }

    /// A mark of the settle rounds started so far: a round started after
    /// it covers what clients wrote before it was taken.
    pub fn settle_mark(&self) -> u64 {
        self.settles.started.get()
    }

    /// Resolves once a settle round that started after `mark` was taken has
    /// completed, starting one if none has. Rounds are coalesced: one runs
    /// at a time, and the next one serves every mark taken meanwhile.
    pub async fn settled_since(self: &Rc<Self>, mark: u64) {
        if self.nshards == 1 {
            return;
        }
        let st = &self.settles;
        let ticket = mark + 1;
        if st.done.get() >= ticket {
            return;
        }
        st.wanted.set(st.wanted.get().max(ticket));
        if !st.running.replace(true) {
            glommio::spawn_local(self.clone().settle_rounds()).detach();
        }
        poll_fn(|cx| {
            if st.done.get() >= ticket {
                Poll::Ready(())
            } else {
                st.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    async fn settle_rounds(self: Rc<Self>) {
        let st = &self.settles;
        while st.done.get() < st.wanted.get() {
            let round = st.started.get() + 1;
            st.started.set(round);
            self.settle().await;
            st.done.set(round);
            for w in st.waiters.borrow_mut().drain(..) {
                w.wake();
            }
        }
        st.running.set(false);
    }

    async fn barrier_with(&self, settle: bool) {
        if self.nshards == 1 {
            return;
        }
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        self.barriers.borrow_mut().insert(
            token,
            BarrierState {
                remaining: self.nshards - 1,
                waker: None,
            },
        );
        for p in 0..self.nshards {
            if p != self.id {
                self.push(p, ShardMsg::Barrier { token, settle });
            }
        }
        poll_fn(|cx| {
            let mut b = self.barriers.borrow_mut();
            match b.get_mut(&token) {
                Some(st) if st.remaining > 0 => {
                    st.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
                _ => {
                    b.remove(&token);
                    Poll::Ready(())
                }
            }
        })
        .await
    }

    /// Routes one message published by `from` in account `acc`: within the
    /// account, then across its stream and service imports, and back along
    /// service response mappings.
    pub fn publish(&self, from: Option<&Origin<'_>>, acc: AccountId, m: Msg<'_>) -> Routed {
        self.producer.set(from.map_or(0, |o| o.cid));
        let mut routed = self.route(from, acc, m);
        let opts = self.options();
        let sec = &opts.security;
        if sec.streams.is_empty() && sec.services.is_empty() {
            return routed;
        }
        for e in sec.streams.iter().filter(|e| e.exporter == acc) {
            if subject::matches(e.subject.as_bytes(), m.subject) {
                let local = e.local_subject(m.subject);
                routed.merge(self.route(
                    None,
                    e.importer,
                    Msg {
                        subject: &local,
                        ..m
                    },
                ));
            }
        }
        for e in sec.services.iter().filter(|e| e.importer == acc) {
            if !subject::matches(e.to.as_bytes(), m.subject) {
                continue;
            }
            // The request's subject in the exporter, as the import maps it.
            let renamed;
            let target: &[u8] = match &e.rename {
                crate::transform::Rename::Same => m.subject,
                crate::transform::Rename::Fixed(s) => s,
                crate::transform::Rename::Map(t) => {
                    renamed = t.apply(m.subject);
                    &renamed
                }
            };
            let mapped = m.reply.map(|r| {
                let token = self.next_response.get();
                self.next_response.set(token + 1);
                self.responses.borrow_mut().insert(
                    token,
                    ResponseRoute {
                        importer: acc,
                        exporter: e.exporter,
                        share: e.share,
                        reply: r.into(),
                        remaining: match e.response {
                            crate::config::ResponseType::Singleton => Some(1),
                            _ => None,
                        },
                        expires: Instant::now() + e.threshold,
                    },
                );
                format!("_R_.{}.{}", self.id, token).into_bytes()
            });
            // The requester's identity travels in a header, as the
            // reference adds it to every request crossing an import.
            let info = from.and_then(|o| o.client_info).map(|f| f(e.share));
            let with_info = info.map(|json| with_request_info(&m, &json));
            let forwarded = match &with_info {
                Some((body, hdr_len)) => Msg {
                    subject: target,
                    reply: mapped.as_deref(),
                    has_headers: true,
                    hdr_len: *hdr_len,
                    body,
                },
                None => Msg {
                    subject: target,
                    reply: mapped.as_deref(),
                    ..m
                },
            };
            routed.merge(self.route(None, e.exporter, forwarded));
        }
        if let Some((shard, token)) = parse_response_subject(m.subject) {
            if shard == self.id {
                routed.merge(self.respond(token, m));
            } else if shard < self.nshards {
                let d = self.delivery(acc, Msg { reply: None, ..m });
                let len = d.data.len();
                self.push_data(shard, ShardMsg::Response { token, d }, len);
                routed.delivered = true;
                routed.remote = true;
            }
        }
        routed
    }

    /// Delivers a service response (`m`'s headers and payload) along the
    /// mapping `token`.
    fn respond(&self, token: u64, m: Msg<'_>) -> Routed {
        let (importer, reply) = {
            let mut r = self.responses.borrow_mut();
            let Some(route) = r.get_mut(&token) else {
                return Routed::default();
            };
            if route.expires < Instant::now() {
                r.remove(&token);
                return Routed::default();
            }
            let out = (route.importer, route.reply.clone());
            if let Some(n) = &mut route.remaining {
                *n -= 1;
                if *n == 0 {
                    r.remove(&token);
                }
            }
            out
        };
        self.route(
            None,
            importer,
            Msg {
                subject: &reply,
                reply: None,
                ..m
            },
        )
    }

    /// A delivery of `m` for peers; each sets `plain` and `queues` for its
    /// own peer.
    fn delivery(&self, account: AccountId, m: Msg<'_>) -> Delivery {
        let Msg {
            subject,
            reply,
            has_headers,
            hdr_len,
            body: msg,
        } = m;
        let mut v = Vec::with_capacity(subject.len() + reply.map_or(0, |r| r.len()) + msg.len());
        v.extend_from_slice(subject);
        if let Some(r) = reply {
            v.extend_from_slice(r);
        }
        v.extend_from_slice(msg);
        Delivery {
            account,
            data: Bytes::from(v),
            subject_len: subject.len() as u32,
            reply_len: reply.map_or(0, |r| r.len()) as u32,
            hdr_len: hdr_len as u32,
            has_headers,
            has_reply: reply.is_some(),
            plain: false,
            queues: Groups::None,
            producer: self.producer.get(),
        }
    }

    /// Routes a message within one account: local subscribers directly,
    /// peers with matching interest by one delivery each, one member per
    /// queue group across the server.
    fn route(&self, from: Option<&Origin<'_>>, acc: AccountId, m: Msg<'_>) -> Routed {
        let subject = m.subject;
        let own;
        let space: &Space = match from {
            Some(o) if o.account == acc => o.space,
            _ => {
                own = self.space(acc);
                &own
            }
        };
        let local = space.local.borrow_mut().matches(subject);
        let remote = if self.nshards > 1 {
            Some(space.remote.borrow_mut().matches(subject))
        } else {
            None
        };
        let echo_off = |s: &SubRef| from.is_some_and(|f| !f.echo && s.0.owner() == f.cid);
        let mut delivered = false;
        for s in &local.plain {
            if !echo_off(s) {
                delivered |= s.0.deliver(&m);
            }
        }

        let mut scratch = self.scratch.borrow_mut();
        let mut any_remote = false;
        if let Some(remote) = &remote {
            for r in &remote.plain {
                let e = &mut scratch[r.0.shard];
                if !e.0 {
                    e.0 = true;
                    any_remote = true;
                }
            }
        }
        // Queue groups: one member across the whole server.
        let empty = MatchResult {
            plain: Vec::new(),
            queues: Vec::new(),
        };
        let remote_r: &MatchResult<RemoteRef> = remote.as_deref().unwrap_or(&empty);
        for (name, members) in &local.queues {
            let rmembers = remote_r
                .queues
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, m)| &m[..])
                .unwrap_or(&[]);
            match self.pick_queue(members, rmembers, &echo_off) {
                Some(QueuePick::Local(s)) => delivered |= s.0.deliver(&m),
                Some(QueuePick::Remote(r)) => {
                    if let Some(q) = &r.queue {
                        scratch[r.shard].1.push(q.clone());
                        any_remote = true;
                    }
                }
                None => {}
            }
        }
        for (name, rmembers) in &remote_r.queues {
            if local.queues.iter().any(|(n, _)| n == name) {
                continue;
            }
            if let Some(QueuePick::Remote(r)) = self.pick_queue(&[], rmembers, &echo_off) {
                if let Some(q) = &r.queue {
                    scratch[r.shard].1.push(q.clone());
                    any_remote = true;
                }
            }
        }
        if any_remote {
            let mut proto = self.delivery(acc, m);
            let len = proto.data.len();
            let wanted = |e: &PeerPick| e.0 || !e.1.is_empty();
            // The last peer takes the payload itself: a message for one
            // peer (the usual case) is never cloned, so its buffer is never
            // promoted to a shared one.
            let last = scratch.iter().rposition(wanted);
            for (peer, entry) in scratch.iter_mut().enumerate() {
                if !wanted(entry) {
                    continue;
                }
                let data = if Some(peer) == last {
                    std::mem::take(&mut proto.data)
                } else {
                    proto.data.clone()
                };
                let d = Delivery {
                    data,
                    plain: std::mem::take(&mut entry.0),
                    queues: std::mem::take(&mut entry.1),
                    ..proto.clone_header()
                };
                self.push_data(peer, ShardMsg::Deliver(d), len);
                delivered = true;
            }
        }
        Routed {
            delivered,
            remote: any_remote,
        }
    }

    fn pick_queue<'a>(
        &self,
        local: &'a [SubRef],
        remote: &'a [RemoteRef],
        skip: &dyn Fn(&SubRef) -> bool,
    ) -> Option<QueuePick<'a>> {
        // Members on the publishing connection are skipped when echo is off.
        let nlocal = local.iter().filter(|s| !skip(s)).count();
        let total = nlocal
            + remote
                .iter()
                .map(|r| r.0.count.get() as usize)
                .sum::<usize>();
        if total == 0 {
            return None;
        }
        let mut pick = self.rand(total);
        if pick < nlocal {
            return local
                .iter()
                .filter(|s| !skip(s))
                .nth(pick)
                .map(QueuePick::Local);
        }
        pick -= nlocal;
        for r in remote {
            let c = r.0.count.get() as usize;
            if pick < c {
                return Some(QueuePick::Remote(&r.0));
            }
            pick -= c;
        }
        None
    }

    /// Handles a batch from peer `from`. Deliveries go out at once; one
    /// that left a local consumer congested stalls its producer over there
    /// (see the module comment), never this link.
    fn receive(self: &Rc<Self>, from: usize, batch: Batch) {
        // Deliveries made here may feed further peers (service responses);
        // they have no producer to stall, and this task never waits for
        // their windows.
        self.producer.set(0);
        for m in batch {
            let (cost, producer) = match m {
                ShardMsg::Deliver(d) => {
                    let cost = d.data.len() + MSG_COST;
                    let producer = d.producer;
                    if self.deliver_remote(d, from, cost) {
                        // Credited when its copies leave the line.
                        (0, producer)
                    } else {
                        (cost, producer)
                    }
                }
                ShardMsg::Response { token, d } => {
                    let cost = d.data.len() + MSG_COST;
                    let producer = d.producer;
                    self.respond(token, d.msg());
                    (cost, producer)
                }
                ShardMsg::Interest {
                    account,
                    subject,
                    queue,
                    count,
                    added,
                } => {
                    if added {
                        self.interest_known.set(self.interest_known.get() + 1);
                    }
                    self.remote_interest(from, account, subject, queue, count);
                    continue;
                }
                ShardMsg::Barrier { token, settle } => {
                    if settle {
                        // A timer fires only in the loop's I/O pass, which
                        // also reaps the socket reads ready by then and wakes
                        // their connections; those run before this task,
                        // queued behind them by the yield, acknowledges.
                        let shard = self.clone();
                        glommio::spawn_local(async move {
                            glommio::timer::sleep(Duration::from_micros(1)).await;
                            futures_lite::future::yield_now().await;
                            shard.push(from, ShardMsg::BarrierAck { token });
                        })
                        .detach();
                    } else {
                        self.push(from, ShardMsg::BarrierAck { token });
                    }
                    continue;
                }
                ShardMsg::BarrierAck { token } => {
                    let mut b = self.barriers.borrow_mut();
                    if let Some(st) = b.get_mut(&token) {
                        st.remaining -= 1;
                        if st.remaining == 0 {
                            if let Some(w) = st.waker.take() {
                                w.wake();
                            }
                        }
                    }
                    continue;
                }
                ShardMsg::Credit(n) => {
                    let p = &self.peers[from];
                    p.outstanding.set(p.outstanding.get().saturating_sub(n));
                    if p.outstanding.get() <= LINK_WINDOW {
                        for w in p.waiters.borrow_mut().drain(..) {
                            w.wake();
                        }
                    }
                    continue;
                }
                ShardMsg::Stall { producer } => {
                    self.stalled.borrow_mut().entry(producer).or_default().count += 1;
                    continue;
                }
                ShardMsg::Unstall { producer } => {
                    let mut st = self.stalled.borrow_mut();
                    if let Some(e) = st.get_mut(&producer) {
                        e.count = e.count.saturating_sub(1);
                        if e.count == 0 {
                            if let Some(w) = st.remove(&producer).and_then(|e| e.waker) {
                                w.wake();
                            }
                        }
                    }
                    continue;
                }
                ShardMsg::Adopt(a) => {
                    let stream = a.bind_to_executor();
                    glommio::spawn_local((self.serve)(self.clone(), stream)).detach();
                    continue;
                }
                ShardMsg::SystemImports { account } => {
                    self.add_fetched_importer(account);
                    continue;
                }
            };
            self.stats.mesh_in.set(self.stats.mesh_in.get() + 1);
            let p = &self.peers[from];
            p.owed.set(p.owed.get() + cost);
            TOUCHED.with(|t| t.set(0));
            if let Some(c) = fanout::take_congested() {
                if producer != 0 {
                    self.stall_producer(from, producer, c);
                }
            }
        }
        self.credit(from);
    }

    /// Asks peer `from` to hold `producer` until `c` drains (or the
    /// reference's stall time passes), unless it is already held for a
    /// consumer here.
    fn stall_producer(self: &Rc<Self>, from: usize, producer: u64, c: Rc<dyn fanout::Outbound>) {
        if !self.stalling.borrow_mut().insert((from, producer)) {
            return;
        }
        self.push(from, ShardMsg::Stall { producer });
        let s = self.clone();
        glommio::spawn_local(async move {
            fanout::stall(&*c).await;
            s.stalling.borrow_mut().remove(&(from, producer));
            s.push(from, ShardMsg::Unstall { producer });
        })
        .detach();
    }

    /// Waits while a peer holds producer `cid` for one of its congested
    /// consumers (at most [`PEER_STALL_MAX`]). Costs one map check when no
    /// producer here is held.
    pub async fn producer_wait(&self, cid: u64) {
        if self.stalled.borrow().is_empty() || !self.stalled.borrow().contains_key(&cid) {
            return;
        }
        let start = Instant::now();
        let wait = poll_fn(|cx| match self.stalled.borrow_mut().get_mut(&cid) {
            Some(e) => {
                e.waker = Some(cx.waker().clone());
                Poll::Pending
            }
            None => Poll::Ready(()),
        });
        fanout::at_most(PEER_STALL_MAX, wait).await;
        self.note_stall(start.elapsed());
    }

    /// Sends `from` the credit owed for its delivered traffic once it is
    /// worth a message of its own ([`CREDIT_EAGER`]). Smaller amounts ride
    /// along with the next batch to that peer, or go at the next
    /// housekeeping tick: a request and its reply then cost each shard one
    /// wake-up, not two, and a producer can never wait on them (the window
    /// is far larger).
    fn credit(&self, from: usize) {
        if self.peers[from].owed.get() >= CREDIT_EAGER {
            self.flush_credit(from);
        }
    }

    /// Sends `from` whatever credit is owed to it now.
    fn flush_credit(&self, from: usize) {
        let owed = self.peers[from].owed.replace(0);
        if owed > 0 {
            self.push(from, ShardMsg::Credit(owed));
        }
    }

    /// Delivers a peer's message to the subscribers here; returns whether
    /// a copy waits in line (see [`Parked`]), which then holds its credit.
    fn deliver_remote(self: &Rc<Self>, d: Delivery, from: usize, cost: usize) -> bool {
        let m = d.msg();
        let local = self.space(d.account).local.borrow_mut().matches(m.subject);
        let mut held = None;
        if d.plain {
            for s in &local.plain {
                self.deliver_or_park(s, &d, &m, &mut held, (from, cost));
            }
        }
        for q in d.queues.names() {
            // The member may have left since the publisher's pick; then the
            // message is dropped, as it would be for a group that emptied.
            if let Some((_, members)) = local.queues.iter().find(|(n, _)| n[..] == q[..]) {
                if !members.is_empty() {
                    let s = &members[self.rand(members.len())];
                    self.deliver_or_park(s, &d, &m, &mut held, (from, cost));
                }
            }
        }
        held.is_some()
    }

    /// Delivers `m` (from `d`, a peer's delivery) to `s`, unless its
    /// consumer already has deliveries waiting in line or is past its
    /// park level: then the message joins that line, holding the link's
    /// credit (`held`, made on first use, for `link` = (peer, cost)).
    /// Either way a consumer in line is marked congested, so its producer
    /// is held too.
    fn deliver_or_park(
        self: &Rc<Self>,
        s: &SubRef,
        d: &Delivery,
        m: &Msg<'_>,
        held: &mut Option<Rc<Held>>,
        link: (usize, usize),
    ) {
        if let Some(c) = s.0.consumer() {
            let key = consumer_key(&c);
            // Nearly always no line exists: skip the lookup then.
            let waiting = {
                let parked = self.parked.borrow();
                if parked.is_empty() {
                    None
                } else {
                    parked.get(&key).cloned()
                }
            };
            let line = match waiting {
                Some(p) => Some(p),
                None if !c.is_closed() && c.pending() + d.data.len() > fanout::park_level(&*c) => {
                    let p = Rc::new(Parked {
                        consumer: c.clone(),
                        queue: RefCell::new(std::collections::VecDeque::new()),
                    });
                    self.parked.borrow_mut().insert(key, p.clone());
                    glommio::spawn_local(self.clone().unpark(key, p.clone())).detach();
                    Some(p)
                }
                None => None,
            };
            if let Some(p) = line {
                let copy = Delivery {
                    data: d.data.clone(),
                    ..d.clone_header()
                };
                let hold = held
                    .get_or_insert_with(|| {
                        Rc::new(Held {
                            shard: self.clone(),
                            from: link.0,
                            cost: link.1,
                        })
                    })
                    .clone();
                p.queue.borrow_mut().push_back((s.clone(), copy, hold));
                fanout::note_congested(c);
                return;
            }
        }
        s.0.deliver(m);
    }

    /// Moves a consumer's waiting deliveries into its buffer as it drains
    /// to its stall level. After a full stall time without that, they go
    /// in up to its `max_pending`, and at least one (as the reference's
    /// producer goes on after its stall), so a consumer that never reads
    /// still reaches its `max_pending` and is cut.
    async fn unpark(self: Rc<Self>, key: usize, p: Rc<Parked>) {
        let c = &p.consumer;
        while !c.is_closed() {
            fanout::stall(&**c).await;
            let timed_out = c.pending() > c.stall_level();
            let mut moved = 0;
            while !c.is_closed() {
                let Some(len) = p.queue.borrow().front().map(|e| e.1.data.len()) else {
                    break;
                };
                let fits = if timed_out {
                    c.pending() + len <= c.max_pending()
                } else {
                    c.pending() <= c.stall_level()
                };
                if !fits && (moved > 0 || !timed_out) {
                    break;
                }
                let next = p.queue.borrow_mut().pop_front();
                if let Some((s, d, _held)) = next {
                    s.0.deliver(&d.msg());
                    moved += 1;
                }
            }
            // Marks left by these deliveries are this task's own.
            let _ = fanout::take_congested();
            if p.queue.borrow().is_empty() {
                break;
            }
        }
        // Closed: what still waits is dropped with the consumer, and its
        // credit goes back.
        self.parked.borrow_mut().remove(&key);
        p.queue.borrow_mut().clear();
    }

    fn remote_interest(
        &self,
        from: usize,
        account: AccountId,
        subject: Box<[u8]>,
        queue: Option<Box<[u8]>>,
        count: u32,
    ) {
        let space = self.space(account);
        let key = (from, subject, queue);
        let mut ri = space.remote_interest.borrow_mut();
        if count == 0 {
            if let Some(r) = ri.remove(&key) {
                space
                    .remote
                    .borrow_mut()
                    .remove(&key.1, key.2.as_deref(), &r);
            }
        } else if let Some(r) = ri.get(&key) {
            r.0.count.set(count);
        } else {
            let r = RemoteRef(Rc::new(RemoteInterest {
                shard: from,
                count: Cell::new(count),
                queue: key.2.as_deref().map(Arc::from),
            }));
            space
                .remote
                .borrow_mut()
                .insert(&key.1, key.2.as_deref(), r.clone());
            ri.insert(key, r);
        }
    }

    /// Sends queued batches to peer `peer` whenever there are any.
    async fn flusher(self: Rc<Self>, peer: usize) {
        loop {
            poll_fn(|cx| {
                if self.peers[peer].batch.borrow().is_empty() {
                    self.peers[peer].flusher.set(Some(cx.waker().clone()));
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
            let owed = self.peers[peer].owed.replace(0);
            let mut batch = std::mem::take(&mut *self.peers[peer].batch.borrow_mut());
            self.peers[peer]
                .batch_hint
                .set(batch.len().min(BATCH_HINT_MAX));
            if owed > 0 {
                batch.push(ShardMsg::Credit(owed));
            }
            if self.senders.send_to(peer, batch).await.is_err() {
                return;
            }
        }
    }

    /// Control messages from the main thread, applied as soon as they
    /// arrive: the main thread writes a byte to this shard's end of a
    /// socket pair after each message, and that readable socket wakes the
    /// executor through io_uring like any client would.
    async fn control(self: Rc<Self>, rx: std::sync::mpsc::Receiver<Control>, wake_fd: i32) {
        // SAFETY: `wake_fd` is this shard's end of a socket pair, handed
        // over by the server and owned from here on.
        let mut wake =
            unsafe { <glommio::net::UnixStream as std::os::fd::FromRawFd>::from_raw_fd(wake_fd) };
        let mut buf = [0u8; 64];
        loop {
            while let Ok(msg) = rx.try_recv() {
                match msg {
                    Control::Reload(new, ack) => {
                        self.apply_options(*new);
                        let _ = ack.send(());
                    }
                    Control::LameDuck => {
                        glommio::spawn_local(self.clone().lame_duck()).detach();
                    }
                    Control::Shutdown(ack) => {
                        glommio::spawn_local(self.clone().shutdown(ack)).detach();
                    }
                    Control::Snapshot(q, reply) => {
                        let _ = reply.send(self.snapshot(&q));
                    }
                    Control::Publish(msgs) => {
                        for m in msgs {
                            self.publish_internal(
                                m.account,
                                &m.subject,
                                m.reply.as_deref(),
                                &m.body,
                            );
                        }
                    }
                }
            }
            match futures_lite::AsyncReadExt::read(&mut wake, &mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// Per-shard timers: client pings and stale detection, auth and TLS
    /// handshake timeouts, expired service response routes.
    async fn housekeeping(self: Rc<Self>) {
        // Traffic seen at the last check, and whether memory may be
        // waiting to go back since.
        let mut last_seen = (0u64, 0u64);
        let mut last_check = Instant::now();
        let mut dirty = false;
        // CPU use for placement: this thread's CPU time over wall time,
        // measured every BUSY_EVERY and smoothed over about two of them.
        let mut busy_mark = (Instant::now(), thread_cpu_ns());
        let mut busy_avg = 0.0f64;
        let mut rate_report = Instant::now();
        loop {
            let tick = (self.options().ping_interval / 10)
                .clamp(Duration::from_millis(20), Duration::from_millis(100));
            glommio::timer::sleep(tick).await;
            let opts = self.options();
            let now = Instant::now();
            let clients = self.client_list();
            for c in clients {
                c.tick(now, &opts);
            }
            self.responses.borrow_mut().retain(|_, r| r.expires > now);
            for peer in (0..self.nshards).filter(|&p| p != self.id) {
                self.flush_credit(peer);
            }
            // Shard 0 reports the TLS rate limit's refusals once a second,
            // as the reference does.
            if self.id == 0 && now.duration_since(rate_report) >= Duration::from_secs(1) {
                rate_report = now;
                let blocked = self.global.take_tls_blocked();
                if blocked > 0 {
                    crate::warn!("Rejected {blocked} connections due to TLS rate limiting");
                }
            }
            let wall = now.duration_since(busy_mark.0);
            if wall >= BUSY_EVERY {
                let cpu = thread_cpu_ns();
                let share = cpu.saturating_sub(busy_mark.1) as f64 / wall.as_nanos() as f64;
                busy_avg = (busy_avg + share.min(1.0)) / 2.0;
                busy_mark = (now, cpu);
                self.global.shard_busy[self.id]
                    .store((busy_avg * 10.0).round() as usize, Ordering::Relaxed);
            }
            if now.duration_since(last_check) >= COLLECT_EVERY {
                last_check = now;
                // The allocator keeps freed pages until this thread
                // allocates again; after a burst a quiet shard would hold
                // them indefinitely. Once a shard that had traffic has been
                // quiet for a whole interval, return them, so resident
                // memory follows the load down without a collection ever
                // running in the middle of traffic.
                let seen = (self.stats.in_msgs.get(), self.stats.mesh_in.get());
                if seen != last_seen {
                    last_seen = seen;
                    dirty = true;
                } else if dirty {
                    dirty = false;
                    // SAFETY: mi_collect only walks this thread's own heap.
                    unsafe { libmimalloc_sys::mi_collect(true) };
                }
            }
        }
    }
}

/// CPU time (user plus system) of the calling thread, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    // SAFETY: getrusage fills a local struct.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_THREAD, &mut ru) != 0 {
            return 0;
        }
        ru
    };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The CPUs the calling thread may run on, in ascending order.
fn thread_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity fills a local, zeroed CPU set.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        set
    };
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: every index is below CPU_SETSIZE, the set's capacity.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// How often a shard measures its CPU use for placement.
const BUSY_EVERY: Duration = Duration::from_millis(250);

/// How often a shard hands freed memory back to the OS.
const COLLECT_EVERY: Duration = Duration::from_millis(250);

/// Control-plane messages from the main thread; never on the message path.
pub enum Control {
    /// New options; the shard acknowledges once they apply.
    Reload(Box<Options>, std::sync::mpsc::Sender<()>),
    /// Stop accepting, tell clients (INFO with `ldm`), then close them
    /// gradually over the lame duck duration.
    LameDuck,
    /// Stop accepting and close every client, flushing what is queued to
    /// it; acknowledged once the writers are done or after a bound.
    Shutdown(std::sync::mpsc::Sender<()>),
    /// Report counters and connections to monitoring.
    Snapshot(Query, std::sync::mpsc::Sender<ShardSnapshot>),
    /// Publish messages from the server itself (system account answers
    /// and events), in order.
    Publish(Vec<InternalMsg>),
}

/// A message the server publishes itself, in `account`.
pub struct InternalMsg {
    pub account: AccountId,
    pub subject: String,
    pub reply: Option<String>,
    pub body: Vec<u8>,
}

/// The outcome of routing one message.
#[derive(Default)]
pub struct Routed {
    pub delivered: bool,
    pub remote: bool,
}

impl Routed {
    fn merge(&mut self, o: Routed) {
        self.delivered |= o.delivered;
        self.remote |= o.remote;
    }
}

/// Who published a message: the connection, for `echo: false`, and its
/// bound account and subject space, so routing within its own account
/// looks nothing up.
pub struct Origin<'a> {
    pub cid: u64,
    pub echo: bool,
    pub account: AccountId,
    pub space: &'a Space,
    /// The publishing client's `Nats-Request-Info` JSON (detailed when the
    /// argument is true), asked for only when a request crosses a service
    /// import.
    pub client_info: Option<&'a dyn Fn(bool) -> String>,
}

/// Where a subscription lives in a shard's index.
pub struct SubKey<'a> {
    pub account: AccountId,
    pub subject: &'a [u8],
    pub queue: Option<&'a [u8]>,
}

impl Delivery {
    /// The message this delivery carries, borrowing its shared bytes.
    fn msg(&self) -> Msg<'_> {
        let sl = self.subject_len as usize;
        let rl = self.reply_len as usize;
        Msg {
            subject: &self.data[..sl],
            reply: self.has_reply.then(|| &self.data[sl..sl + rl]),
            has_headers: self.has_headers,
            hdr_len: self.hdr_len as usize,
            body: &self.data[sl + rl..],
        }
    }

    /// Everything but the shared payload and the per-peer fields.
    fn clone_header(&self) -> Delivery {
        Delivery {
            account: self.account,
            data: Bytes::new(),
            subject_len: self.subject_len,
            reply_len: self.reply_len,
            hdr_len: self.hdr_len,
            has_headers: self.has_headers,
            has_reply: self.has_reply,
            plain: false,
            queues: Groups::None,
            producer: self.producer,
        }
    }
}

/// The header the reference puts on requests that cross a service import.
pub const CLIENT_INFO_HDR: &[u8] = b"Nats-Request-Info";

/// `m`'s body with `Nats-Request-Info: json` as its last header (replacing
/// one the publisher sent), and the new header block's length. Built as
/// the reference does: the publisher's header lines are kept as sent.
fn with_request_info(m: &Msg<'_>, json: &str) -> (Vec<u8>, usize) {
    const HDR_LINE: &[u8] = b"NATS/1.0\r\n";
    let mut out = Vec::with_capacity(m.body.len() + json.len() + 40);
    let (hdr, payload) = if m.has_headers && m.hdr_len > 2 && m.hdr_len <= m.body.len() {
        (&m.body[..m.hdr_len - 2], &m.body[m.hdr_len..])
    } else if m.has_headers {
        (&[][..], &m.body[m.hdr_len.min(m.body.len())..])
    } else {
        (&[][..], m.body)
    };
    match without_header(hdr, CLIENT_INFO_HDR) {
        Some(h) if h.is_empty() => out.extend_from_slice(HDR_LINE),
        Some(h) => out.extend_from_slice(&h),
        None if hdr.is_empty() => out.extend_from_slice(HDR_LINE),
        None => out.extend_from_slice(hdr),
    }
    out.extend_from_slice(CLIENT_INFO_HDR);
    out.extend_from_slice(b": ");
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    let hdr_len = out.len();
    out.extend_from_slice(payload);
    (out, hdr_len)
}

/// `hdr` without its first `key:` line (found only at a line start), or
/// `None` when there is none; empty when only the status line would stay.
fn without_header(hdr: &[u8], key: &[u8]) -> Option<Vec<u8>> {
    let start = hdr.windows(key.len()).position(|w| w == key)?;
    if start < 1 || hdr[start - 1] != b'\n' || hdr.get(start + key.len()) != Some(&b':') {
        return None;
    }
    let end = hdr[start..].windows(2).position(|w| w == b"\r\n")?;
    let mut v = hdr[..start].to_vec();
    v.extend_from_slice(&hdr[start + end + 2..]);
    if v.len() <= b"NATS/1.0\r\n\r\n".len() {
        return Some(Vec::new());
    }
    Some(v)
}

/// `_R_.<shard>.<token>`: the reply of a request forwarded by a service
/// import, naming the shard that holds the way back.
fn parse_response_subject(subject: &[u8]) -> Option<(usize, u64)> {
    let rest = subject.strip_prefix(b"_R_.")?;
    let dot = rest.iter().position(|&b| b == b'.')?;
    let shard = std::str::from_utf8(&rest[..dot]).ok()?.parse().ok()?;
    let token = std::str::from_utf8(&rest[dot + 1..]).ok()?.parse().ok()?;
    Some((shard, token))
}

enum QueuePick<'a> {
    Local(&'a SubRef),
    Remote(&'a RemoteInterest),
}

/// What a shard thread needs to start.
pub struct ShardSpec {
    pub listener_fd: i32,
    pub opts: Options,
    pub info: ServerInfo,
    pub global: Arc<Global>,
    pub mesh: MeshBuilder<Batch, glommio::channels::channel_mesh::Full>,
    pub nshards: usize,
    pub control: std::sync::mpsc::Receiver<Control>,
    /// Read end of the socket pair that signals new control messages.
    pub control_wake_fd: i32,
    /// Serves a connection this shard owns.
    pub serve: Serve,
    /// Told once the shard has joined the mesh and is accepting.
    pub ready: std::sync::mpsc::Sender<usize>,
    /// The system account, when events are on.
    pub system: Option<Arc<System>>,
}

/// Runs a shard until the process exits.
pub async fn run(spec: ShardSpec) {
    let (senders, receivers): (Senders<Batch>, Receivers<Batch>) = match spec.mesh.join().await {
        Ok(x) => x,
        Err(e) => {
            crate::fatal!("shard failed to join the channel mesh: {e}");
            std::process::exit(1);
        }
    };
    let id = senders.peer_id();
    let nshards = spec.nshards;
    let shard = Rc::new(Shard {
        id,
        nshards,
        opts: RefCell::new(Rc::new(spec.opts)),
        info: RefCell::new(Rc::new(spec.info)),
        global: spec.global,
        spaces: RefCell::new(Vec::new()),
        responses: RefCell::new(HashMap::new()),
        next_response: Cell::new(0),
        perms: RefCell::new(HashMap::new()),
        peers: (0..nshards)
            .map(|_| Peer {
                batch: RefCell::new(Vec::new()),
                batch_hint: Cell::new(0),
                flusher: Cell::new(None),
                outstanding: Cell::new(0),
                owed: Cell::new(0),
                waiters: RefCell::new(Vec::new()),
            })
            .collect(),
        senders,
        barriers: RefCell::new(HashMap::new()),
        settles: Settles::default(),
        next_token: Cell::new(0),
        interest_known: Cell::new(0),
        clients: RefCell::new(HashMap::new()),
        serve: spec.serve,
        stats: ShardStats::default(),
        rng: Cell::new(0x9E37_79B9_7F4A_7C15 ^ ((id as u64 + 1) * 0x2545_F491_4F6C_DD1D)),
        scratch: RefCell::new((0..nshards).map(|_| (false, Groups::None)).collect()),
        lame_duck: Cell::new(false),
        listener_fd: Cell::new(spec.listener_fd),
        closed: RefCell::new(std::collections::VecDeque::new()),
        system: spec.system,
        system_imports: RefCell::new(HashMap::new()),
        fetched_importers: RefCell::new(std::collections::HashSet::new()),
        internal_subs: RefCell::new(Vec::new()),
        internal_sids: RefCell::new(HashMap::new()),
        system_imports_asked: RefCell::new(std::collections::HashSet::new()),
        producer: Cell::new(0),
        stalled: RefCell::new(HashMap::new()),
        stalling: RefCell::new(std::collections::HashSet::new()),
        parked: RefCell::new(HashMap::new()),
    });
    let mut receivers = receivers;
    for (peer, rx) in receivers.streams() {
        let s = shard.clone();
        glommio::spawn_local(async move {
            while let Some(batch) = rx.recv().await {
                s.receive(peer, batch);
            }
        })
        .detach();
    }
    for peer in 0..nshards {
        if peer != id {
            glommio::spawn_local(shard.clone().flusher(peer)).detach();
        }
    }
    glommio::spawn_local(shard.clone().housekeeping()).detach();
    glommio::spawn_local(shard.clone().control(spec.control, spec.control_wake_fd)).detach();
    if id == 0 {
        if let Some(sys) = shard.system.clone() {
            shard.subscribe_system(&sys);
            // Every shard knows the system's interest before clients come.
            shard.barrier().await;
        }
    }

    // SAFETY: the fd is a bound, listening TCP socket created for this shard
    // alone by the server, which hands over its ownership here.
    let listener =
        unsafe { <TcpListener as std::os::fd::FromRawFd>::from_raw_fd(spec.listener_fd) };
    let _ = spec.ready.send(id);
    loop {
        match listener.shared_accept().await {
            Ok(accepted) => {
                let target = shard.global.place();
                crate::debug!(
                    "Shard {} accepted a connection for shard {target}; connections per shard: {:?}; busy tenths per shard: {:?}",
                    shard.id,
                    shard.global.loads(),
                    shard.global.busy()
                );
                if target == shard.id {
                    let stream = accepted.bind_to_executor();
                    glommio::spawn_local((shard.serve)(shard.clone(), stream)).detach();
                } else {
                    shard.push(target, ShardMsg::Adopt(accepted));
                }
            }
            Err(_) if shard.lame_duck.get() => {
                crate::info!("Shard {} stopped accepting clients", shard.id);
                // Keep the executor alive for the clients still connected.
                std::future::pending::<()>().await;
            }
            Err(e) => {
                crate::error!("Error accepting client connection: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// An internal subscription of the server: what it gets goes to the
/// system account's service thread, copied (never on a client's path).
struct SysSub {
    sys: Arc<System>,
    account: AccountId,
    /// As monitoring lists it: the internal client's id, its own sid.
    cid: u64,
    sid: u64,
    subject: Box<str>,
    queue: Option<Box<str>>,
    msgs: Cell<u64>,
}

impl fanout::Subscriber for SysSub {
    fn deliver(&self, m: &Msg<'_>) -> bool {
        self.msgs.set(self.msgs.get() + 1);
        let split = if m.has_headers {
            m.hdr_len.min(m.body.len())
        } else {
            0
        };
        self.sys.send(SysIn::Request {
            account: self.account,
            subject: String::from_utf8_lossy(m.subject).into_owned(),
            reply: m.reply.map(|r| String::from_utf8_lossy(r).into_owned()),
            hdr: m.body[..split].to_vec(),
            body: m.body[split..].to_vec(),
        });
        true
    }

    fn owner(&self) -> u64 {
        INTERNAL_CID
    }
}

impl Shard {
    /// Registers the server's internal subscriptions: the system account's
    /// requests, and in every other account the services the reference
    /// imports into it from the system account.
    fn subscribe_system(&self, sys: &Arc<System>) {
        let opts = self.options();
        let mode = crate::system::ClaimsMode::of(&opts);
        for (subject, queue) in sys.subscriptions(mode) {
            self.add_system_sub(sys, sys.account_id, &subject, queue.as_deref());
        }
        self.sync_system_imports(sys, &opts);
    }

    /// Adds one internal subscription in `account`, whose messages go to
    /// the system account's service thread.
    fn add_system_sub(
        &self,
        sys: &Arc<System>,
        account: AccountId,
        subject: &str,
        queue: Option<&str>,
    ) -> SubRef {
        let cid = if account == sys.account_id {
            SYSTEM_CLIENT_CID
        } else {
            self.global.internal_cid(account)
        };
        let sid = {
            let mut sids = self.internal_sids.borrow_mut();
            let n = sids.entry(cid).or_insert(0);
            *n += 1;
            *n
        };
        let sys_sub = Rc::new(SysSub {
            sys: sys.clone(),
            account,
            cid,
            sid,
            subject: subject.into(),
            queue: queue.map(Into::into),
            msgs: Cell::new(0),
        });
        self.internal_subs.borrow_mut().push(sys_sub.clone());
        let sub = SubRef(sys_sub);
        let key = SubKey {
            account,
            subject: subject.as_bytes(),
            queue: queue.map(str::as_bytes),
        };
        self.add_sub(&key, sub.clone());
        sub
    }

    /// Subscribes the system imports of every account the options know
    /// and drops those of accounts they no longer know (or that now import
    /// a service to the subject themselves): at start, and whenever the
    /// options change, as a reload, a pushed account JWT or a fetched
    /// account's exports and imports do. The reference registers them with
    /// each account it learns of.
    fn sync_system_imports(&self, sys: &Arc<System>, opts: &Options) {
        let mut want = std::collections::HashSet::new();
        let mut listed = std::collections::HashSet::new();
        for (name, own) in crate::system::system_importers(&opts.security, &sys.account) {
            let account = crate::security::account::account_id(name);
            listed.insert(account);
            for (subject, _) in crate::system::system_imports_for(own) {
                want.insert((account, *subject));
            }
        }
        for &account in self.fetched_importers.borrow().iter() {
            if !listed.contains(&account) {
                for (subject, _) in crate::system::system_imports_for(&[]) {
                    want.insert((account, *subject));
                }
            }
        }
        let mut have = self.system_imports.borrow_mut();
        let gone: Vec<_> = have.keys().filter(|k| !want.contains(k)).copied().collect();
        for k in gone {
            if let Some(sub) = have.remove(&k) {
                let key = SubKey {
                    account: k.0,
                    subject: k.1.as_bytes(),
                    queue: None,
                };
                self.remove_sub(&key, &sub);
                self.internal_subs
                    .borrow_mut()
                    .retain(|s| (s.account, &*s.subject) != (k.0, k.1));
            }
        }
        for k in want {
            have.entry(k)
                .or_insert_with(|| self.add_system_sub(sys, k.0, k.1, None));
        }
    }

    /// Shard 0: gives a fetched account, which the options do not list
    /// (its CONNECT's shard checked), every system import, kept from then
    /// on as the reference keeps a registered account's. Adds only its
    /// own; the next options change re-syncs the whole set.
    fn add_fetched_importer(&self, account: AccountId) {
        let Some(sys) = self.system.clone() else {
            return;
        };
        if !self.fetched_importers.borrow_mut().insert(account) {
            return;
        }
        let mut have = self.system_imports.borrow_mut();
        for (subject, _) in crate::system::system_imports_for(&[]) {
            have.entry((account, *subject))
                .or_insert_with(|| self.add_system_sub(&sys, account, subject, None));
        }
    }

    /// At CONNECT, once a client is bound to `account`: if the options do
    /// not list it (an account fetched from a URL resolver), has shard 0
    /// give it the system imports, as the reference does with every account
    /// it registers, and waits until this shard knows of that interest, so
    /// the client's first request finds it. Once per account and shard.
    pub async fn ensure_system_imports(self: &Rc<Self>, account: AccountId) {
        let Some(sys) = self.system.clone() else {
            return;
        };
        if account == sys.account_id || !self.system_imports_asked.borrow_mut().insert(account) {
            return;
        }
        let opts = self.options();
        let name = crate::security::account::account_name(account);
        if crate::system::system_importers(&opts.security, &sys.account).any(|(n, _)| n == name) {
            return;
        }
        if self.id == 0 {
            self.add_fetched_importer(account);
        } else {
            // Shard 0 handles it before acknowledging the barrier, and
            // announces the interest ahead of the acknowledgement.
            self.push(0, ShardMsg::SystemImports { account });
            self.barrier().await;
        }
    }

    /// Publishes a message from the server itself in `account`.
    pub fn publish_internal(
        &self,
        account: AccountId,
        subject: &str,
        reply: Option<&str>,
        body: &[u8],
    ) {
        self.publish(
            None,
            account,
            Msg {
                subject: subject.as_bytes(),
                reply: reply.map(str::as_bytes),
                has_headers: false,
                hdr_len: 0,
                body,
            },
        );
        // Nothing waits on these: internal messages are few and small.
        self.take_touched();
    }

    /// Remembers a closed connection, forgetting the oldest past the bound.
    pub fn record_closed(&self, c: ConnInfo) {
        let mut closed = self.closed.borrow_mut();
        if closed.len() >= MAX_CLOSED_CLIENTS {
            closed.pop_front();
        }
        closed.push_back(c);
    }

    /// This shard's counters, accounts and the connections `q` asks for,
    /// for monitoring. A page is chosen from cheap figures first, so only
    /// the connections it lists are copied in full.
    fn snapshot(&self, q: &Query) -> ShardSnapshot {
        let clients = self.client_list();
        let mut per_account: HashMap<AccountId, u64> = HashMap::new();
        let briefs: Vec<ConnBrief> = clients.iter().map(|c| c.conn_brief()).collect();
        for b in &briefs {
            *per_account.entry(b.account).or_insert(0) += 1;
        }
        let mut matched = clients.len();
        let mut page: Vec<ConnBrief> = Vec::new();
        let conns: Vec<ConnInfo> = match &q.open {
            ConnSelect::None => Vec::new(),
            ConnSelect::All => clients.iter().map(|c| c.conn_info(true, false)).collect(),
            ConnSelect::Page { filter, sort, keep } => {
                matched = 0;
                for (c, b) in clients.iter().zip(&briefs) {
                    if !filter.acc.is_empty() && !c.conn_in_account(&filter.acc) {
                        continue;
                    }
                    matched += 1;
                    if c.conn_listed(filter) {
                        page.push(*b);
                    }
                }
                // The first `keep` in sort order, in no particular order:
                // the monitoring thread sorts the merged candidates.
                let keep = (*keep).min(page.len());
                if keep > 0 && keep < page.len() {
                    let now = SystemTime::now();
                    page.select_nth_unstable_by(keep - 1, |a, b| sort.cmp(a, b, now));
                }
                page.truncate(keep);
                Vec::new()
            }
            ConnSelect::Cids { cids, subs, auth } => {
                let by_id = self.clients.borrow();
                cids.iter()
                    .filter_map(|cid| by_id.get(cid))
                    .map(|c| c.conn_info(*subs, *auth))
                    .collect()
            }
        };
        let st = &self.stats;
        let mut accounts = Vec::new();
        let mut subscriptions = 0;
        for (id, space) in self.spaces.borrow().iter().enumerate() {
            let Some(space) = space else { continue };
            let name = crate::security::account::account_name(id as AccountId);
            let local = space.local.borrow();
            let cache = local.cache_stats();
            let sublist = SublistStats {
                subscriptions: local.len() as u64,
                cache: cache.entries as u64,
                inserts: local.stats.inserts,
                removes: local.stats.removes,
                matches: local.stats.matches,
                cache_hits: local.stats.cache_hits,
                max_fanout: cache.max_fanout as u64,
                total_fanout: cache.total_fanout as u64,
            };
            subscriptions += local.len() as u64;
            let ss = &space.stats;
            accounts.push(AccountCounters {
                conns: per_account.get(&(id as AccountId)).copied().unwrap_or(0),
                name,
                total_conns: ss.total_conns.get(),
                in_msgs: ss.in_msgs.get(),
                in_bytes: ss.in_bytes.get(),
                out_msgs: ss.out_msgs.get(),
                out_bytes: ss.out_bytes.get(),
                slow_consumers: ss.slow_consumers.get(),
                subscriptions: local.len() as u64,
                sublist,
            });
        }
        ShardSnapshot {
            id: self.id,
            num_conns: clients.len(),
            matched,
            briefs: page,
            closed: if q.closed {
                self.closed.borrow().iter().cloned().collect()
            } else {
                Vec::new()
            },
            conns,
            internal_subs: if matches!(q.open, ConnSelect::All) {
                self.internal_subs
                    .borrow()
                    .iter()
                    .map(|s| SubInfo {
                        account: crate::security::account::account_name(s.account),
                        subject: s.subject.to_string(),
                        queue: s.queue.as_deref().map(str::to_string),
                        sid: s.sid.to_string(),
                        msgs: s.msgs.get(),
                        max: 0,
                        cid: s.cid,
                    })
                    .collect()
            } else {
                Vec::new()
            },
            in_msgs: st.in_msgs.get(),
            out_msgs: st.out_msgs.get(),
            in_bytes: st.in_bytes.get(),
            out_bytes: st.out_bytes.get(),
            slow_consumers: st.slow_consumers.get(),
            total_connections: st.total_connections.get(),
            subscriptions,
            mesh_out: st.mesh_out.get(),
            mesh_in: st.mesh_in.get(),
            stalled_ns: st.stalled_ns.get(),
            cpu_ns: thread_cpu_ns(),
            busy_tenths: self.global.shard_busy[self.id].load(Ordering::Relaxed),
            cpus: thread_cpus(),
            accounts,
            responses: if q.responses {
                let now = Instant::now();
                self.responses
                    .borrow()
                    .iter()
                    .filter(|(_, r)| r.expires > now)
                    .map(|(token, r)| PendingResponse {
                        exporter: crate::security::account::account_name(r.exporter),
                        subject: format!("_R_.{}.{token}", self.id),
                        importer: crate::security::account::account_name(r.importer),
                        reply: String::from_utf8_lossy(&r.reply).into_owned(),
                        share: r.share,
                    })
                    .collect()
            } else {
                Vec::new()
            },
            mesh_pending: self
                .peers
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != self.id)
                .map(|(i, p)| (i, p.batch.borrow().len()))
                .collect(),
        }
    }

    /// Applies reloaded options: new connections see them at once, live
    /// ones from their next read (limits) or tick (pings).
    fn apply_options(&self, new: Options) {
        {
            let mut info = self.info.borrow_mut();
            let mut i = (**info).clone();
            new.apply_to_info(&mut i);
            if let Some(n) = &new.server_name {
                i.server_name = n.clone();
            }
            *info = Rc::new(i);
        }
        let auth_changed = !Arc::ptr_eq(&self.options().security, &new.security);
        *self.opts.borrow_mut() = Rc::new(new);
        if auth_changed {
            self.perms.borrow_mut().clear();
        }
        let opts = self.options();
        if auth_changed && self.id == 0 {
            if let Some(sys) = self.system.clone() {
                self.sync_system_imports(&sys, &opts);
            }
        }
        for c in self.client_list() {
            c.reloaded(&opts, auth_changed);
        }
    }

    /// Lame duck mode, as the reference: the listener closes at once so
    /// clients reconnect elsewhere; after the grace period, the remaining
    /// clients are closed one by one, spread over the rest of the duration.
    async fn lame_duck(self: Rc<Self>) {
        if self.lame_duck.replace(true) {
            return;
        }
        // SAFETY: shutdown on the listening socket this shard owns; it
        // wakes the pending accept with an error and refuses new clients.
        unsafe { libc::shutdown(self.listener_fd.get(), libc::SHUT_RDWR) };
        let clients = self.client_list();
        for c in &clients {
            c.lame_duck();
        }
        let opts = self.options();
        let grace = opts.lame_duck_grace_period.min(opts.lame_duck_duration);
        glommio::timer::sleep(grace).await;
        let clients = self.client_list();
        let window = opts.lame_duck_duration.saturating_sub(grace);
        let step = window
            .checked_div(clients.len().max(1) as u32)
            .unwrap_or_default();
        for c in clients {
            c.shutdown();
            if !step.is_zero() {
                glommio::timer::sleep(step).await;
            }
        }
    }

    /// Closes the listener and every client (flushing their queued output),
    /// then acknowledges once they are gone or a second has passed.
    async fn shutdown(self: Rc<Self>, ack: std::sync::mpsc::Sender<()>) {
        self.lame_duck.set(true);
        // SAFETY: shutdown on the listening socket this shard owns.
        unsafe { libc::shutdown(self.listener_fd.get(), libc::SHUT_RDWR) };
        for c in self.client_list() {
            c.shutdown();
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        while !self.clients.borrow().is_empty() && Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
        let _ = ack.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::{pick_shard, Groups};
    use std::sync::Arc;

    #[test]
    fn tls_rate_limit_counts_as_the_reference() {
        let g = super::Global::new(1, 0);
        assert!((0..5).all(|_| g.tls_rate_allow()), "no limit set");
        let g = super::Global::new(1, 2);
        // The first call opens a one-second window; `limit` fit in it.
        let got: Vec<bool> = (0..4).map(|_| g.tls_rate_allow()).collect();
        assert_eq!(got, [true, true, false, false]);
        assert_eq!(g.take_tls_blocked(), 2);
        assert_eq!(g.take_tls_blocked(), 0);
    }

    #[test]
    fn groups_keep_every_name_in_order() {
        let mut g = Groups::default();
        assert!(g.is_empty() && g.names().is_empty());
        let names: Vec<Arc<[u8]>> = ["a", "b", "c"]
            .iter()
            .map(|n| Arc::from(n.as_bytes()))
            .collect();
        for (i, n) in names.iter().enumerate() {
            g.push(n.clone());
            assert!(!g.is_empty());
            assert_eq!(g.names(), &names[..=i]);
        }
        assert!(std::mem::take(&mut g).names().len() == 3 && g.is_empty());
    }

    #[test]
    fn placement_fills_idle_shards_evenly() {
        assert_eq!(pick_shard(&[0, 0, 0, 0], &[0, 0, 0, 0]), 0);
        assert_eq!(pick_shard(&[1, 0, 0, 0], &[0, 0, 0, 0]), 1);
        assert_eq!(pick_shard(&[1, 1, 1, 0], &[0, 0, 0, 0]), 3);
        assert_eq!(pick_shard(&[2, 1, 2, 2], &[0, 0, 0, 0]), 1);
    }

    #[test]
    fn placement_avoids_busy_shards_within_the_slack() {
        // Shard 0's one client keeps it busy: the next connection goes to the
        // idle shard although both hold one.
        assert_eq!(pick_shard(&[1, 1], &[9, 0]), 1);
        // One more than the fewest is still a candidate; two more is not.
        assert_eq!(pick_shard(&[2, 1], &[0, 8]), 0);
        assert_eq!(pick_shard(&[3, 1], &[0, 8]), 1);
        // The slack grows with the count: an eighth of the fewest.
        assert_eq!(pick_shard(&[84, 80], &[1, 9]), 0);
        assert_eq!(pick_shard(&[91, 80], &[1, 9]), 1);
    }
}
