//! One client connection, owned by the shard that accepted it.
//!
//! Two tasks serve a connection: the reader parses and acts on input, the
//! writer drains the outbound buffer. They share one socket (one descriptor
//! per client, as the reference uses) through a `RefCell` that is borrowed
//! only inside a single poll, never across an await: glommio keeps separate
//! read and write readiness sources, so the two tasks' polls interleave
//! freely. Deliveries from any connection on the shard append to the
//! outbound buffer and wake the writer, which therefore batches everything
//! produced in one loop tick into one write.
//!
//! Closing is one-way: [`Client::close`] marks the client closed, and either
//! lets the writer flush what is queued (for `-ERR` lines) or shuts the
//! socket down at once (slow consumers). The reader alone cleans up, when
//! its read ends, so subscriptions are removed exactly once.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;

use crate::fanout::{self, Msg, Outbound, Session, SubRef, Subscriber};
use crate::monitor::snapshot::{ConnBrief, ConnFilter, ConnInfo, SubInfo};
use crate::options::Options;
use crate::outbuf::OutBuf;
use crate::proto::connect::{self, ConnectOpts};
use crate::proto::encode::{self, push_err, push_msg};
use crate::proto::{parse, Limits, Op, ParseError, Parsed};
use crate::security::account::{self, AccountId};
use crate::security::auth::{AuthFailure, AuthStep, Credentials, Identity};
use crate::security::authz::CompiledPerms;
use crate::security::operator::JwtFailure;
use crate::security::tls::{TlsConn, TlsSettings};
use crate::shard::{Origin, Shard, Space, SubKey};
use crate::subject;

/// Why a connection ended, as the reference names it in logs and monitoring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    ClientClosed,
    WriteError,
    ReadError,
    ParseError,
    ProtocolViolation,
    MaxPayloadExceeded,
    MaxControlLineExceeded,
    SlowConsumerPendingBytes,
    SlowConsumerWriteDeadline,
    StaleConnection,
    MaxConnectionsExceeded,
    BadClientProtocolVersion,
    NoRespondersRequiresHeaders,
    AuthenticationViolation,
    AuthenticationTimeout,
    TlsHandshakeError,
    ServerShutdown,
    MaxAccountConnectionsExceeded,
    MaxSubscriptionsExceeded,
    AuthenticationExpired,
    Revocation,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClientClosed => "Client Closed",
            CloseReason::WriteError => "Write Error",
            CloseReason::ReadError => "Read Error",
            CloseReason::ParseError => "Parse Error",
            CloseReason::ProtocolViolation => "Protocol Violation",
            CloseReason::MaxPayloadExceeded => "Maximum Message Payload Exceeded",
            CloseReason::MaxControlLineExceeded => "Maximum Control Line Exceeded",
            CloseReason::SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
            CloseReason::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            CloseReason::StaleConnection => "Stale Connection",
            CloseReason::MaxConnectionsExceeded => "Maximum Connections Exceeded",
            CloseReason::BadClientProtocolVersion => "Bad Client Protocol Version",
            CloseReason::NoRespondersRequiresHeaders => "No Responders Requires Headers",
            CloseReason::AuthenticationViolation => "Authentication Failure",
            CloseReason::AuthenticationTimeout => "Authentication Timeout",
            CloseReason::TlsHandshakeError => "TLS Handshake Failure",
            CloseReason::ServerShutdown => "Server Shutdown",
            CloseReason::MaxAccountConnectionsExceeded => "Maximum Account Connections Exceeded",
            CloseReason::MaxSubscriptionsExceeded => "Maximum Subscriptions Exceeded",
            CloseReason::AuthenticationExpired => "Authentication Expired",
            CloseReason::Revocation => "Credentials Revoked",
        }
    }
}

/// A subscription of one client; lives in the client's sid map and in the
/// shard's index.
pub struct Subscription {
    pub client: Rc<Client>,
    pub account: AccountId,
    pub subject: Box<[u8]>,
    pub queue: Option<Box<[u8]>>,
    pub sid: Box<[u8]>,
    pub delivered: Cell<u64>,
    /// Auto-unsubscribe after this many deliveries; 0 means never.
    pub max: Cell<u64>,
    /// Unsubscribed: a delivery that still holds it (one waiting in line
    /// for a congested consumer) is not written.
    pub removed: Cell<bool>,
}

impl Subscription {
    fn key(&self) -> SubKey<'_> {
        SubKey {
            account: self.account,
            subject: &self.subject,
            queue: self.queue.as_deref(),
        }
    }

    /// The handle the shard's index holds.
    fn handle(self: &Rc<Self>) -> SubRef {
        SubRef(self.clone())
    }
}

pub struct Client {
    pub id: u64,
    pub addr: SocketAddr,
    fd: RawFd,
    shard: Rc<Shard>,
    out: RefCell<OutBuf>,
    /// Bytes handed to the writer's current write, still counted as pending.
    inflight: Cell<usize>,
    writer: Cell<Option<Waker>>,
    drain_waiters: RefCell<Vec<Waker>>,
    closed: Cell<Option<CloseReason>>,
    max_pending: Cell<usize>,
    pub echo: Cell<bool>,
    pub headers: Cell<bool>,
    verbose: Cell<bool>,
    pedantic: Cell<bool>,
    no_responders: Cell<bool>,
    connected: Cell<bool>,
    subs: RefCell<HashMap<Box<[u8]>, Rc<Subscription>>>,
    /// Peers (a bit set) this client's messages went to since its last
    /// wait for their flow-control windows.
    touched: Cell<u64>,
    /// Interest changed, or messages went to peers, since the last barrier:
    /// the next PING waits until every peer has processed them, so a PONG
    /// means all earlier input took effect server-wide, as in the reference.
    needs_barrier: Cell<bool>,
    /// This read's input already caught up with interest on its way from
    /// other shards (see the `Pub` handler): everything in one read
    /// arrived at once, so one catch-up covers all of it.
    caught_up: Cell<bool>,
    /// The settle rounds started before this read (see
    /// [`Shard::settled_since`]): one that starts later covers its input.
    read_mark: Cell<u64>,
    /// Until this client's first message is routed: the settle rounds
    /// started before it arrived (see [`Shard::settled_since`]).
    settle_mark: Cell<Option<u64>>,
    last_activity: Cell<Instant>,
    /// This read batch carried a message or a (un)subscription: activity
    /// in the reference's sense (PINGs and PONGs are not).
    active: Cell<bool>,
    /// The account and permissions this connection is bound to, set at
    /// CONNECT (and again on reload), never looked up per message.
    account: Cell<AccountId>,
    /// The bound account's name, for the request info header and
    /// monitoring (no registry lookup).
    account_name: RefCell<String>,
    space: RefCell<Rc<Space>>,
    perms: RefCell<Option<Rc<CompiledPerms>>>,
    user: RefCell<String>,
    /// For monitoring: CONNECT's user name and JWT, and the JWT user bound.
    connect_user: RefCell<Option<String>>,
    connect_jwt: RefCell<Option<String>>,
    jwt_user: RefCell<Option<Box<crate::security::auth::JwtUser>>>,
    /// Limits bound at CONNECT (-1: none): subscriptions and payload, the
    /// stricter of user, account and server.
    max_subs: Cell<i64>,
    max_payload: Cell<i64>,
    /// Whether messages to this client are checked against its subscribe
    /// deny rules at delivery: set, as the reference sets its filter, once
    /// a wildcard subscription that some deny rule falls within is
    /// accepted, and worked out again when the permissions change.
    deny_filter: Cell<bool>,
    /// The account this connection is counted in, for account limits.
    account_slot: Cell<Option<AccountId>>,
    /// Bound to the system account; cleared once its first application
    /// publish drew the warning.
    system_user: Cell<bool>,
    /// When the user's or the account's authorization ends.
    user_expires: Cell<Option<SystemTime>>,
    account_expires: Cell<Option<SystemTime>>,
    /// CONNECT asked for protocol 1 (async INFO).
    protocol: Cell<i64>,
    /// The first PONG went out (the reference re-announces a per-client
    /// max_payload before it).
    first_pong: Cell<bool>,
    /// The credentials of the CONNECT, kept to re-check them on reload.
    creds: RefCell<Option<Box<SavedCreds>>>,
    /// INFO nonce, when nkey users exist.
    nonce: Option<String>,
    /// CONNECT must arrive before this when authentication is required.
    auth_deadline: Cell<Option<Instant>>,
    /// Reply subjects this client may answer under allow_responses: how
    /// many answers remain (0: unlimited) and until when (None: forever).
    replies: RefCell<HashMap<Box<[u8]>, ReplyPermit>>,
    /// TLS state, shared by the reader (decrypts) and the writer (encrypts).
    tls: Option<Box<RefCell<TlsConn>>>,
    tls_settings: Option<Arc<TlsSettings>>,
    /// The TLS handshake must finish before this.
    tls_deadline: Cell<Option<Instant>>,
    last_ping_in: Cell<Option<Instant>>,
    pings_out: Cell<u32>,
    next_ping: Cell<Option<Instant>>,
    desc: RefCell<String>,
    /// Monitoring: when the connection started (wall clock and monotonic),
    /// its traffic, what CONNECT said about the client, and the round trip
    /// of the last server PING.
    started: (SystemTime, Instant),
    in_msgs: Cell<u64>,
    in_bytes: Cell<u64>,
    out_msgs: Cell<u64>,
    out_bytes: Cell<u64>,
    client_name: RefCell<Option<String>>,
    lang: RefCell<Option<String>>,
    version: RefCell<Option<String>>,
    rtt: Cell<Duration>,
    ping_sent: Cell<Option<Instant>>,
}

/// Answers left (0: unlimited) and expiry (None: never) for one reply
/// subject under allow_responses.
type ReplyPermit = (u32, Option<Instant>);

#[derive(Clone, Debug, Default)]
struct SavedCreds {
    user: Option<String>,
    pass: Option<String>,
    token: Option<String>,
    nkey: Option<String>,
    sig: Option<String>,
    cert: Option<Vec<String>>,
    jwt: Option<String>,
    ip: Option<std::net::IpAddr>,
    cert_dn: Option<crate::security::dn::Dn>,
}

impl SavedCreds {
    fn as_credentials(&self) -> Credentials<'_> {
        Credentials {
            user: self.user.as_deref(),
            pass: self.pass.as_deref(),
            token: self.token.as_deref(),
            nkey: self.nkey.as_deref(),
            sig: self.sig.as_deref(),
            cert: self.cert.as_deref(),
            jwt: self.jwt.as_deref(),
            ip: self.ip,
            cert_dn: self.cert_dn.as_ref(),
        }
    }
}

impl Client {
    /// A CONNECT's options: the first over the reference's defaults, a
    /// later one over what the earlier ones set.
    fn connect_opts(&self, json: &[u8]) -> Result<ConnectOpts, serde_json::Error> {
        if !self.connected.get() {
            return connect::merge(serde_json::Map::new(), json);
        }
        let creds = self.creds.borrow();
        let c = creds.as_deref();
        let text = |v: Option<String>| v.map_or(serde_json::Value::Null, Into::into);
        let so_far = [
            ("verbose", self.verbose.get().into()),
            ("pedantic", self.pedantic.get().into()),
            ("echo", self.echo.get().into()),
            ("headers", self.headers.get().into()),
            ("no_responders", self.no_responders.get().into()),
            ("protocol", self.protocol.get().into()),
            ("name", text(self.client_name.borrow().clone())),
            ("lang", text(self.lang.borrow().clone())),
            ("version", text(self.version.borrow().clone())),
            ("user", text(c.and_then(|c| c.user.clone()))),
            ("pass", text(c.and_then(|c| c.pass.clone()))),
            ("auth_token", text(c.and_then(|c| c.token.clone()))),
            ("nkey", text(c.and_then(|c| c.nkey.clone()))),
            ("sig", text(c.and_then(|c| c.sig.clone()))),
            ("jwt", text(c.and_then(|c| c.jwt.clone()))),
        ];
        connect::merge(
            so_far
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            json,
        )
    }

    pub fn account(&self) -> AccountId {
        self.account.get()
    }

    pub fn space(&self) -> Rc<Space> {
        self.space.borrow().clone()
    }

    /// Binds the connection to an authenticated identity: account,
    /// permissions, limits and expiry. Returns false (having told the
    /// client and closed) when the account has no room for it.
    fn bind(&self, id: &Identity) -> bool {
        let acc = account::account_id(&id.account);
        if !self.take_account_slot(acc, id.limits.account_conns) {
            crate::error!(
                "{} - maximum account active connections exceeded",
                self.desc.borrow()
            );
            self.send_err("maximum account active connections exceeded");
            self.close(CloseReason::MaxAccountConnectionsExceeded, true);
            return false;
        }
        self.account.set(acc);
        self.system_user.set(
            self.shard
                .system
                .as_ref()
                .is_some_and(|s| s.account_id == acc),
        );
        id.account.clone_into(&mut self.account_name.borrow_mut());
        *self.space.borrow_mut() = self.shard.space(acc);
        if !self.connected.get() {
            crate::shard::bump(&self.space.borrow().stats.total_conns, 1);
        }
        *self.perms.borrow_mut() = id
            .permissions
            .as_ref()
            .map(|p| self.shard.compiled_perms(&id.name, p));
        // The reference drops its filter with the old permissions and
        // builds it again from the subscriptions they still allow.
        self.deny_filter.set(false);
        *self.user.borrow_mut() = id.name.clone();
        *self.jwt_user.borrow_mut() = id.jwt_user.clone().map(Box::new);
        if !id.name.is_empty() {
            *self.desc.borrow_mut() = format!(
                "{} - cid:{} - user:{:?} account:{:?}",
                self.addr, self.id, id.name, id.account
            );
        }
        let opts = self.shard.options();
        let subs = crate::security::operator::min_limit(id.limits.subs, opts.subs_limit());
        let payload =
            crate::security::operator::min_limit(id.limits.payload, opts.max_payload as i64);
        if id.limits.payload >= 0 && payload < id.limits.payload {
            crate::error!(
                "{} - Max Payload set to {} from server overrides account or user config",
                self.desc.borrow(),
                opts.max_payload
            );
        }
        self.max_subs.set(subs);
        self.max_payload.set(payload);
        let at = |t: i64| std::time::UNIX_EPOCH + Duration::from_secs(t.max(0) as u64);
        self.user_expires.set(id.user_expires.map(at));
        self.account_expires.set(id.account_expires.map(at));
        if subs >= 0 && self.subs.borrow().len() as i64 > subs {
            // Tightened on reload or update: as the reference, tell the
            // client and close it.
            crate::error!("{} - maximum subscriptions exceeded", self.desc.borrow());
            self.send_err("maximum subscriptions exceeded");
            self.close(CloseReason::MaxSubscriptionsExceeded, true);
            return false;
        }
        true
    }

    /// Counts this connection in account `acc`, refusing it when the
    /// account already has `limit` (-1: no limit) connections; on a
    /// re-bind, whether it is among the newest `limit` still.
    fn take_account_slot(&self, acc: AccountId, limit: i64) -> bool {
        match self.account_slot.get() {
            Some(a) if a == acc => {
                if account::still_fits(acc, self.id, limit) {
                    return true;
                }
                self.account_slot.set(None);
                false
            }
            old => {
                if !account::join_account(acc, self.id, limit) {
                    return false;
                }
                if let Some(o) = old {
                    account::leave_account(o, self.id);
                }
                self.account_slot.set(Some(acc));
                true
            }
        }
    }

    /// Re-checks credentials and permissions after a reload, as the
    /// reference does: a user that no longer exists or moved account is
    /// disconnected, failed credentials get `Authorization Violation`, and
    /// subscriptions the new permissions forbid are removed, each reported.
    pub fn reauthorize(&self) {
        if self.is_closed() || !self.connected.get() {
            return;
        }
        let opts = self.shard.options();
        let auth = &opts.security.auth;
        let creds = self.creds.borrow().as_deref().cloned().unwrap_or_default();
        // Never blocks the shard: an account the resolver would have to be
        // asked for again is taken as it was at CONNECT.
        let res = auth.authenticate_now(
            &creds.as_credentials(),
            self.nonce.as_deref().map(str::as_bytes),
        );
        let id = match res {
            Ok(id) => id,
            Err(AuthFailure::UnknownUser(_)) | Err(AuthFailure::UnknownNkey(_)) => {
                crate::info!("{} - user removed by reload: closing", self.desc.borrow());
                self.close(CloseReason::ClientClosed, true);
                return;
            }
            // An account update revoked the user.
            Err(AuthFailure::Jwt(e @ JwtFailure::Revoked { .. })) => {
                crate::info!("{} - User Authentication Revoked: {e}", self.desc.borrow());
                self.send_err("User Authentication Revoked");
                self.close(CloseReason::Revocation, true);
                return;
            }
            // An operator deleted the account: as the reference, its
            // clients go as if it had expired.
            Err(AuthFailure::Jwt(JwtFailure::Account(
                e @ crate::security::operator::AccountFailure::Deleted { .. },
            ))) => {
                crate::info!(
                    "{} - Account Authentication Expired: {e}",
                    self.desc.borrow()
                );
                self.send_err("Account Authentication Expired");
                self.close(CloseReason::AuthenticationExpired, true);
                return;
            }
            // Like the reference, an update re-checks only revocations and
            // bearer tokens; the rest of the chain was walked at CONNECT,
            // and expiry has its own timer.
            Err(AuthFailure::Jwt(e)) if !matches!(e, JwtFailure::BearerNotAllowed { .. }) => {
                crate::debug!("{} - kept after reload although: {e}", self.desc.borrow());
                return;
            }
            Err(e) => {
                crate::info!(
                    "{} - Authorization Violation after reload: {e}",
                    self.desc.borrow()
                );
                self.send_err("Authorization Violation");
                self.close(CloseReason::AuthenticationViolation, true);
                return;
            }
        };
        if account::account_id(&id.account) != self.account.get() {
            crate::info!(
                "{} - account changed by reload: closing",
                self.desc.borrow()
            );
            self.close(CloseReason::ClientClosed, true);
            return;
        }
        if !self.bind(&id) {
            return;
        }
        let Some(perms) = self.perms.borrow().clone() else {
            return;
        };
        let mut subs: Vec<Rc<Subscription>> = self.subs.borrow().values().cloned().collect();
        // Report in sid order (numeric sids sort by length first).
        subs.sort_by(|a, b| (a.sid.len(), &a.sid).cmp(&(b.sid.len(), &b.sid)));
        for sub in subs {
            if perms.can_subscribe(&sub.subject, sub.queue.as_deref()) {
                if perms.needs_delivery_filter(&sub.subject) {
                    self.deny_filter.set(true);
                }
            } else {
                let subj = String::from_utf8_lossy(&sub.subject).into_owned();
                let sid = String::from_utf8_lossy(&sub.sid).into_owned();
                crate::info!(
                    "{} - Subscription Violation after reload - subject {subj:?}, sid {sid:?}",
                    self.desc.borrow()
                );
                self.unsubscribe(&sub.sid);
                self.send_err(&format!(
                    "Permissions Violation for Subscription to {subj:?} (sid {sid:?})"
                ));
            }
        }
    }

    /// This client's INFO line; `ldm` announces lame duck mode.
    fn info_line(&self, ldm: bool) -> Vec<u8> {
        let ip = self.addr.ip().to_string();
        let info = self.shard.info.borrow();
        let own = self.max_payload.get();
        if own != info.max_payload {
            // The reference announces the client's own limit (-1 for none).
            let mut i = (**info).clone();
            i.max_payload = own;
            return i.line(self.id, &ip, self.nonce.as_deref(), ldm);
        }
        info.line(self.id, &ip, self.nonce.as_deref(), ldm)
    }

    /// Tells the client the server is entering lame duck mode.
    pub fn lame_duck_info(&self) {
        self.send(&self.info_line(true));
    }

    fn wake_writer(&self) {
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }

    /// Checks made once the TLS handshake is done: the handshake deadline
    /// is cleared and pinned certificates are enforced.
    fn tls_established(&self) -> Result<(), String> {
        self.tls_deadline.set(None);
        let (Some(t), Some(s)) = (&self.tls, &self.tls_settings) else {
            return Ok(());
        };
        if !s.pinned.is_empty() {
            let fp = t.borrow().peer_fingerprint().unwrap_or_default();
            if !s.pinned.contains(&fp) {
                return Err(format!("client certificate {fp} is not in pinned_certs"));
            }
        }
        Ok(())
    }

    pub fn set_max_pending(&self, n: usize) {
        self.max_pending.set(n);
    }

    /// Appends protocol bytes and wakes the writer.
    pub fn send(&self, bytes: &[u8]) {
        if self.is_closed() {
            return;
        }
        if crate::log::trace_enabled() {
            let op = match bytes {
                encode::OK => Some("OK"),
                encode::PING => Some("PING"),
                encode::PONG => Some("PONG"),
                _ => None,
            };
            if let Some(op) = op {
                self.trace_out(op, None);
            }
        }
        self.out.borrow_mut().extend_from_slice(bytes);
        self.queued();
    }

    pub fn send_err(&self, text: &str) {
        if self.is_closed() {
            return;
        }
        if crate::log::trace_enabled() {
            self.trace_out("-ERR", Some(text.as_bytes()));
        }
        self.out
            .borrow_mut()
            .append(text.len() + 9, |v| push_err(v, text));
        self.queued();
    }

    /// `->> [OP arg]`: something this client is sent.
    #[cold]
    fn trace_out(&self, op: &str, arg: Option<&[u8]>) {
        crate::trace!(
            "{} - ->> {}",
            self.desc.borrow(),
            crate::proto::trace::bracket(op, arg)
        );
    }

    /// `<-> [DELSUB sid]`: one of this client's subscriptions goes away.
    #[cold]
    fn trace_delsub(&self, sid: &[u8]) {
        crate::trace!(
            "{} - <-> {}",
            self.desc.borrow(),
            crate::proto::trace::bracket("DELSUB", Some(sid))
        );
    }

    /// After bytes were queued: enforce max_pending, note congestion, wake
    /// the writer.
    fn queued(self: &Client) {
        let pending = self.pending();
        if pending > self.max_pending.get() {
            crate::info!(
                "{} - Slow Consumer Detected: MaxPending of {} Exceeded",
                self.desc.borrow(),
                self.max_pending.get()
            );
            self.count_slow_consumer();
            self.close(CloseReason::SlowConsumerPendingBytes, false);
            return;
        }
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }

    fn count_slow_consumer(&self) {
        crate::shard::bump(&self.shard.stats.slow_consumers, 1);
        crate::shard::bump(&self.space.borrow().stats.slow_consumers, 1);
    }

    /// The connection as monitoring reports it; `stop` and `reason` for a
    /// closed one.
    pub fn info(&self, closed: Option<(SystemTime, CloseReason)>) -> ConnInfo {
        self.info_with(closed, true)
    }

    /// The connection for monitoring; subscriptions listed only with
    /// `with_subs` (they are counted always).
    fn info_with(&self, closed: Option<(SystemTime, CloseReason)>, with_subs: bool) -> ConnInfo {
        let wall = |t: Instant| self.started.0 + t.saturating_duration_since(self.started.1);
        let account = self.account_name.borrow().clone();
        let num_subs = self.subs.borrow().len();
        let mut subs: Vec<SubInfo> = self
            .subs
            .borrow()
            .values()
            .filter(|_| with_subs)
            .map(|s| SubInfo {
                account: account.clone(),
                subject: String::from_utf8_lossy(&s.subject).into_owned(),
                queue: s
                    .queue
                    .as_deref()
                    .map(|q| String::from_utf8_lossy(q).into_owned()),
                sid: String::from_utf8_lossy(&s.sid).into_owned(),
                msgs: s.delivered.get(),
                max: s.max.get(),
                cid: self.id,
            })
            .collect();
        subs.sort_by(|a, b| (a.sid.len(), &a.sid).cmp(&(b.sid.len(), &b.sid)));
        let (tls_version, tls_cipher) = match &self.tls {
            Some(t) => {
                let t = t.borrow();
                let v = t.conn.protocol_version().map(|v| match v {
                    rustls::ProtocolVersion::TLSv1_2 => "1.2".to_string(),
                    rustls::ProtocolVersion::TLSv1_3 => "1.3".to_string(),
                    other => format!("{other:?}"),
                });
                // Go names TLS 1.3 suites without the "13".
                let c = t.conn.negotiated_cipher_suite().map(|c| {
                    let n = format!("{:?}", c.suite());
                    n.strip_prefix("TLS13_")
                        .map_or(n.clone(), |r| format!("TLS_{r}"))
                });
                (v, c)
            }
            None => (None, None),
        };
        let ju = self.jwt_user.borrow();
        let ju = ju.as_deref();
        ConnInfo {
            cid: self.id,
            ip: self.addr.ip().to_string(),
            port: self.addr.port(),
            start: self.started.0,
            last_activity: wall(self.last_activity.get()),
            stop: closed.map(|c| c.0),
            reason: closed.map(|c| c.1.as_str()),
            rtt: self.rtt.get(),
            pending: if closed.is_some() { 0 } else { self.pending() },
            in_msgs: self.in_msgs.get(),
            out_msgs: self.out_msgs.get(),
            in_bytes: self.in_bytes.get(),
            out_bytes: self.out_bytes.get(),
            name: self.client_name.borrow().clone(),
            lang: self.lang.borrow().clone(),
            version: self.version.borrow().clone(),
            tls_version,
            tls_cipher,
            tls_peer_certs: Vec::new(),
            user: self.user.borrow().clone(),
            account,
            connect_user: self.connect_user.borrow().clone().unwrap_or_default(),
            jwt: self.connect_jwt.borrow().clone(),
            issuer_key: ju.map(|j| j.issuer.clone()),
            name_tag: ju.map(|j| j.name.clone()).filter(|n| !n.is_empty()),
            tags: ju.map(|j| j.tags.clone()).unwrap_or_default(),
            subs,
            num_subs,
            shard: self.shard.id,
        }
    }

    /// The system account's events for a client that just authenticated:
    /// CONNECT in its account, and the account's connection count.
    fn connect_events(&self) {
        let Some(sys) = &self.shard.system else {
            return;
        };
        if self.account.get() != account::GLOBAL {
            if let Some((subject, body)) = sys.connect_event(&self.info(None)) {
                self.shard
                    .publish_internal(sys.account_id, &subject, None, &body);
            }
        }
        sys.send(crate::system::SysIn::AccountConns {
            name: self.account_name.borrow().clone(),
            conns: account::account_connections(self.account.get()) as u64,
        });
    }

    /// The troubleshooting guides' warning, once per connection: the
    /// system account is for the server's events and requests; messages
    /// of an application there mix with them and skip account isolation.
    fn note_system_traffic(&self, subject: &[u8]) {
        if subject.starts_with(b"$SYS.") || subject.starts_with(b"_INBOX.") {
            return;
        }
        self.system_user.set(false);
        crate::warn!(
            "{} - publishes application traffic ({:?}) in the system account: it is meant for monitoring and managing the server; give applications their own account",
            self.desc.borrow(),
            String::from_utf8_lossy(subject)
        );
    }

    /// DISCONNECT in the client's account, and its new connection count.
    fn disconnect_events(&self, closed: &ConnInfo) {
        let Some(sys) = &self.shard.system else {
            return;
        };
        if let Some((subject, body)) = sys.disconnect_event(closed) {
            self.shard
                .publish_internal(sys.account_id, &subject, None, &body);
        }
        sys.send(crate::system::SysIn::AccountConns {
            name: closed.account.clone(),
            conns: account::account_connections(self.account.get()) as u64,
        });
    }

    /// `$SYS.SERVER.<id>.CLIENT.AUTH.ERR` for a client refused.
    fn auth_error_event(&self) {
        let Some(sys) = &self.shard.system else {
            return;
        };
        let info = self.info(Some((
            SystemTime::now(),
            CloseReason::AuthenticationViolation,
        )));
        let (subject, body) = sys.auth_error_event(&info);
        self.shard
            .publish_internal(sys.account_id, &subject, None, &body);
    }

    /// Marks the client closed. With `flush`, the writer first sends what is
    /// queued (an `-ERR` line); otherwise the socket is shut down at once.
    pub fn close(&self, reason: CloseReason, flush: bool) {
        if self.is_closed() {
            return;
        }
        self.closed.set(Some(reason));
        if let Some(acc) = self.account_slot.take() {
            account::leave_account(acc, self.id);
        }
        crate::debug!(
            "{} - Client connection closed: {}",
            self.desc.borrow(),
            reason.as_str()
        );
        if !flush {
            self.out.borrow_mut().clear();
            // SAFETY: shutdown on our own open socket; it stays open until
            // both tasks have dropped their descriptors.
            unsafe { libc::shutdown(self.fd, libc::SHUT_RDWR) };
        }
        if let Some(w) = self.writer.take() {
            w.wake();
        }
        for w in self.drain_waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// Removes a subscription by sid from the client and the shard.
    fn unsubscribe(&self, sid: &[u8]) {
        let removed = self.subs.borrow_mut().remove(sid);
        if let Some(sub) = removed {
            if crate::log::trace_enabled() {
                self.trace_delsub(sid);
            }
            sub.removed.set(true);
            if self.shard.remove_sub(&sub.key(), &sub.handle()) {
                self.needs_barrier.set(true);
            }
        }
    }

    /// Per-tick timers (called by the shard's housekeeping task).
    pub fn tick(&self, now: Instant, opts: &Options) {
        if self.is_closed() {
            return;
        }
        if let Some(deadline) = self.tls_deadline.get() {
            if now >= deadline {
                crate::error!("{} - TLS handshake timeout", self.desc.borrow());
                self.close(CloseReason::TlsHandshakeError, false);
                return;
            }
        }
        if self.connected.get() {
            let wall = SystemTime::now();
            if self.user_expires.get().is_some_and(|t| wall >= t) {
                crate::debug!("{} - User Authentication Expired", self.desc.borrow());
                self.send_err("User Authentication Expired");
                self.close(CloseReason::AuthenticationExpired, true);
                return;
            }
            if self.account_expires.get().is_some_and(|t| wall >= t) {
                crate::debug!("{} - Account Authentication Expired", self.desc.borrow());
                self.send_err("Account Authentication Expired");
                self.close(CloseReason::AuthenticationExpired, true);
                return;
            }
        }
        if let Some(deadline) = self.auth_deadline.get() {
            if now >= deadline {
                crate::info!(
                    "{} - Authentication Timeout: no CONNECT within {:?}",
                    self.desc.borrow(),
                    opts.auth_timeout
                );
                self.send_err("Authentication Timeout");
                self.close(CloseReason::AuthenticationTimeout, true);
                return;
            }
        }
        let Some(due) = self.next_ping.get() else {
            return;
        };
        if now < due {
            return;
        }
        let interval = opts.ping_interval;
        self.next_ping.set(Some(now + interval));
        // As the reference: recent traffic from the client, or a PING it
        // sent, proves it alive without a round trip.
        if now.duration_since(self.last_activity.get()) < interval {
            return;
        }
        if self
            .last_ping_in
            .get()
            .is_some_and(|t| now.duration_since(t) < interval)
        {
            return;
        }
        if self.pings_out.get() + 1 > opts.ping_max {
            crate::debug!("{} - Stale Client Connection - Closing", self.desc.borrow());
            self.send_err("Stale Connection");
            self.close(CloseReason::StaleConnection, true);
            return;
        }
        self.pings_out.set(self.pings_out.get() + 1);
        self.ping_sent.set(Some(now));
        self.send(encode::PING);
    }
}

impl Subscriber for Subscription {
    fn owner(&self) -> u64 {
        self.client.id
    }

    /// Writes one message to this subscription's client. Returns whether
    /// it was queued.
    fn deliver(&self, m: &Msg<'_>) -> bool {
        deliver(self, m)
    }

    fn consumer(&self) -> Option<Rc<dyn Outbound>> {
        Some(self.client.clone())
    }
}

impl Outbound for Client {
    fn pending(&self) -> usize {
        self.out.borrow().len() + self.inflight.get()
    }

    fn max_pending(&self) -> usize {
        self.max_pending.get()
    }

    fn stall_level(&self) -> usize {
        (self.max_pending.get() / 2).min(fanout::STALL_CEILING)
    }

    fn is_closed(&self) -> bool {
        self.closed.get().is_some()
    }

    fn on_drain(&self, w: &std::task::Waker) {
        self.drain_waiters.borrow_mut().push(w.clone());
    }
}

impl Session for Client {
    fn tick(&self, now: Instant, opts: &Options) {
        Client::tick(self, now, opts)
    }

    fn shutdown(&self) {
        self.close(CloseReason::ServerShutdown, true);
    }

    fn lame_duck(&self) {
        self.lame_duck_info();
    }

    fn reloaded(&self, opts: &Options, auth_changed: bool) {
        self.set_max_pending(opts.max_pending);
        if auth_changed {
            self.reauthorize();
        }
    }

    fn conn_brief(&self) -> ConnBrief {
        let wall = |t: Instant| self.started.0 + t.saturating_duration_since(self.started.1);
        ConnBrief {
            cid: self.id,
            account: self.account.get(),
            start: self.started.0,
            last_activity: wall(self.last_activity.get()),
            stop: None,
            reason: None,
            pending: self.pending(),
            num_subs: self.subs.borrow().len(),
            in_msgs: self.in_msgs.get(),
            out_msgs: self.out_msgs.get(),
            in_bytes: self.in_bytes.get(),
            out_bytes: self.out_bytes.get(),
        }
    }

    fn conn_in_account(&self, acc: &str) -> bool {
        *self.account_name.borrow() == acc
    }

    fn conn_listed(&self, f: &ConnFilter) -> bool {
        if f.cid != 0 {
            return f.cid == self.id;
        }
        if !f.user.is_empty() && self.connect_user.borrow().as_deref().unwrap_or("") != f.user {
            return false;
        }
        if !f.mqtt_client.is_empty() {
            return false;
        }
        f.subject.is_empty()
            || self
                .subs
                .borrow()
                .values()
                .any(|s| subject::collide(f.subject.as_bytes(), &s.subject))
    }

    fn conn_info(&self, subs: bool, auth: bool) -> ConnInfo {
        let mut c = self.info_with(None, subs);
        if auth {
            if let Some(t) = &self.tls {
                if let Some(chain) = t.borrow().conn.peer_certificates() {
                    c.tls_peer_certs = crate::monitor::snapshot::peer_certs(chain);
                }
            }
        }
        c
    }
}

fn deliver(s: &Subscription, m: &Msg<'_>) -> bool {
    let Msg {
        subject,
        reply,
        has_headers,
        hdr_len,
        body: msg,
    } = *m;
    let c = &s.client;
    if c.is_closed() || s.removed.get() {
        return false;
    }
    let max = s.max.get();
    let n = s.delivered.get() + 1;
    if max > 0 && n > max {
        return false;
    }
    if let Some(p) = c.perms.borrow().as_deref() {
        // Once a wildcard subscription overlapping the subscribe deny
        // rules was accepted, the denied subjects are filtered here, for
        // every subscription of the client, as the reference does.
        if c.deny_filter.get() && p.deny_delivery(subject) {
            return false;
        }
        if let (Some((max, ttl)), Some(r)) = (p.responses(), reply) {
            let expires = (!ttl.is_zero()).then(|| Instant::now() + ttl);
            c.replies.borrow_mut().insert(r.into(), (max, expires));
        }
    }
    s.delivered.set(n);
    if max > 0 && n == max {
        crate::debug!(
            "{} - Auto-unsubscribe limit of {max} reached for sid '{}'",
            c.desc.borrow(),
            String::from_utf8_lossy(&s.sid)
        );
    }
    {
        let bytes = if has_headers && !c.headers.get() {
            msg.len().saturating_sub(hdr_len) as u64
        } else {
            msg.len() as u64
        };
        crate::shard::bump(&c.out_msgs, 1);
        crate::shard::bump(&c.out_bytes, bytes);
        let st = &c.shard.stats;
        crate::shard::bump(&st.out_msgs, 1);
        crate::shard::bump(&st.out_bytes, bytes);
        let space = c.space.borrow();
        crate::shard::bump(&space.stats.out_msgs, 1);
        crate::shard::bump(&space.stats.out_bytes, bytes);
    }
    {
        let need = encode::msg_size(subject, &s.sid, reply, msg);
        c.out.borrow_mut().append(need, |out| {
            if !has_headers {
                push_msg(out, subject, &s.sid, reply, false, 0, msg);
            } else if c.headers.get() {
                push_msg(out, subject, &s.sid, reply, true, hdr_len, msg);
            } else {
                // A client without header support gets the payload alone.
                push_msg(
                    out,
                    subject,
                    &s.sid,
                    reply,
                    false,
                    0,
                    &msg[hdr_len.min(msg.len())..],
                );
            }
        });
    }
    if crate::log::trace_enabled() {
        trace_delivery(s, m);
    }
    c.queued();
    if !c.is_closed() && c.pending() > c.stall_level() {
        fanout::note_congested(c.clone());
    }
    if max > 0 && n == max {
        c.unsubscribe(&s.sid);
    }
    true
}

/// `->> [MSG subject sid [reply] size]` (or `HMSG … hdr_len size`) on the
/// subscriber's connection, as the reference traces a delivery.
#[cold]
fn trace_delivery(s: &Subscription, m: &Msg<'_>) {
    let c = &s.client;
    let with_headers = m.has_headers && c.headers.get();
    let size = if m.has_headers && !with_headers {
        m.body.len().saturating_sub(m.hdr_len)
    } else {
        m.body.len()
    };
    let mut line = String::from(if with_headers { "HMSG " } else { "MSG " });
    line.push_str(&String::from_utf8_lossy(m.subject));
    line.push(' ');
    line.push_str(&String::from_utf8_lossy(&s.sid));
    if let Some(r) = m.reply {
        line.push(' ');
        line.push_str(&String::from_utf8_lossy(r));
    }
    if with_headers {
        line.push_str(&format!(" {}", m.hdr_len));
    }
    line.push_str(&format!(" {size}"));
    c.trace_out(&line, None);
}

/// Traces one operation a client sent, as read (`raw` starts with it):
/// `<<- [OP args]`, and for a message its body.
#[cold]
fn trace_in(client: &Client, op: &Op<'_>, raw: &[u8]) {
    use crate::proto::trace;
    let arg = trace::op_arg(raw);
    let desc = client.desc.borrow();
    let line = match op {
        Op::Connect(_) => trace::bracket("CONNECT", Some(&trace::redact_pass(arg))),
        Op::Pub { has_headers, .. } => {
            trace::bracket(if *has_headers { "HPUB" } else { "PUB" }, Some(arg))
        }
        Op::Sub { .. } => trace::bracket("SUB", Some(arg)),
        Op::Unsub { .. } => trace::bracket("UNSUB", Some(arg)),
        Op::Ping => trace::bracket("PING", None),
        Op::Pong => trace::bracket("PONG", None),
        // The reference does not trace these from a client.
        Op::Info(_) | Op::Ok | Op::Err(_) => return,
    };
    crate::trace!("{desc} - <<- {line}");
    if let Op::Pub { msg, .. } = op {
        crate::trace!(
            "{desc} - <<- {}",
            trace::payload(msg, crate::log::max_traced_msg_len())
        );
    }
}

/// Initial read buffer; grows for large messages or fast producers.
const READ_BUF_START: usize = 512;
const READ_BUF_MAX: usize = 64 * 1024;

/// Serves one accepted connection until it closes.
pub async fn serve(shard: Rc<Shard>, stream: TcpStream) {
    let opts = shard.options();
    let global = shard.global.clone();
    let count = global
        .connections
        .fetch_add(1, std::sync::atomic::Ordering::AcqRel)
        + 1;
    // Counts this connection until `serve` returns, whichever way (its
    // place in this shard's count was taken when it was placed here), so
    // an early return gives both back too.
    let _slot = ConnectionSlot(global.clone(), shard.id);
    let addr = match stream.peer_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let _ = stream.set_nodelay(true);
    let fd = stream.as_raw_fd();
    let _ = stream.set_write_timeout(Some(opts.write_deadline));
    let tls_first = match &opts.tls {
        Some(t) if t.handshake_first => match t.handshake_first_fallback {
            None => true,
            // As the reference: whatever the client sends first within the
            // fallback delay means it starts the handshake; silence means
            // it waits for INFO, which then goes in the clear.
            Some(wait) => first_byte(&stream, wait).await.is_some(),
        },
        _ => false,
    };
    let mut stream = stream;

    let cid = global
        .next_cid
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    let now = Instant::now();
    let tls = match &opts.tls {
        Some(t) => match TlsConn::new(t) {
            Ok(c) => Some(Box::new(RefCell::new(c))),
            Err(e) => {
                crate::error!("{addr} - TLS setup failed: {e}");
                return;
            }
        },
        None => None,
    };
    let mut client = Rc::new(Client {
        id: cid,
        addr,
        fd,
        shard: shard.clone(),
        out: RefCell::new(OutBuf::default()),
        inflight: Cell::new(0),
        writer: Cell::new(None),
        drain_waiters: RefCell::new(Vec::new()),
        closed: Cell::new(None),
        max_pending: Cell::new(opts.max_pending),
        echo: Cell::new(true),
        headers: Cell::new(false),
        verbose: Cell::new(true),
        pedantic: Cell::new(true),
        no_responders: Cell::new(false),
        connected: Cell::new(false),
        subs: RefCell::new(HashMap::new()),
        touched: Cell::new(0),
        needs_barrier: Cell::new(false),
        caught_up: Cell::new(false),
        read_mark: Cell::new(0),
        settle_mark: Cell::new((shard.nshards > 1).then(|| shard.settle_mark())),
        last_activity: Cell::new(now),
        active: Cell::new(false),
        last_ping_in: Cell::new(None),
        pings_out: Cell::new(0),
        next_ping: Cell::new(None),
        desc: RefCell::new(format!("{addr} - cid:{cid}")),
        started: (SystemTime::now(), now),
        in_msgs: Cell::new(0),
        in_bytes: Cell::new(0),
        out_msgs: Cell::new(0),
        out_bytes: Cell::new(0),
        client_name: RefCell::new(None),
        lang: RefCell::new(None),
        version: RefCell::new(None),
        rtt: Cell::new(Duration::ZERO),
        ping_sent: Cell::new(None),
        account: Cell::new(account::GLOBAL),
        account_name: RefCell::new(crate::config::GLOBAL_ACCOUNT.to_string()),
        system_user: Cell::new(false),
        space: RefCell::new(shard.space(account::GLOBAL)),
        perms: RefCell::new(None),
        user: RefCell::new(String::new()),
        connect_user: RefCell::new(None),
        connect_jwt: RefCell::new(None),
        jwt_user: RefCell::new(None),
        max_subs: Cell::new(opts.subs_limit()),
        max_payload: Cell::new(opts.max_payload as i64),
        deny_filter: Cell::new(false),
        account_slot: Cell::new(None),
        user_expires: Cell::new(None),
        account_expires: Cell::new(None),
        protocol: Cell::new(0),
        first_pong: Cell::new(false),
        creds: RefCell::new(None),
        nonce: opts
            .security
            .auth
            .needs_nonce()
            .then(crate::security::auth::new_nonce),
        auth_deadline: Cell::new(
            opts.security
                .auth
                .required()
                .then(|| now + opts.auth_timeout),
        ),
        replies: RefCell::new(HashMap::new()),
        tls,
        tls_settings: opts.tls.clone(),
        tls_deadline: Cell::new(opts.tls.as_ref().map(|t| now + t.timeout)),
    });
    crate::debug!("{} - Client connection created", client.desc.borrow());
    let info = client.info_line(false);
    match &client.tls_settings {
        // Without handshake_first (or when its fallback delay passed in
        // silence), INFO goes in the clear and the client upgrades after
        // reading it; it is written before the writer task exists so it
        // can never be encrypted.
        Some(_) if !tls_first => {
            if futures_lite::AsyncWriteExt::write_all(&mut stream, &info)
                .await
                .is_err()
            {
                return;
            }
        }
        // With handshake_first, INFO follows the handshake (see read_loop).
        Some(_) => {}
        None => client.send(&info),
    }
    // Refusals before the TLS handshake. A TLS client gets them in the
    // clear (after a clear INFO), as from the reference: nothing could be
    // encrypted yet.
    let mut refusal = None;
    if count > opts.max_connections {
        crate::error!("{} - maximum connections exceeded", client.desc.borrow());
        refusal = Some("maximum connections exceeded");
    } else if let Some(t) = opts
        .tls
        .as_ref()
        .filter(|_| opts.allow_non_tls && !tls_first)
    {
        // allow_non_tls: the client's first byte says whether it starts
        // the handshake (0x16, a TLS handshake record) or stays plain.
        if first_byte(&stream, t.timeout).await != Some(0x16) {
            if let Some(c) = Rc::get_mut(&mut client) {
                c.tls = None;
                c.tls_deadline.set(None);
            }
        }
    }
    if refusal.is_none() && client.tls.is_some() && !global.tls_rate_allow() {
        refusal = Some("Connection throttling is active. Please try again later.");
    }
    if let Some(text) = refusal {
        if client.tls.is_some() {
            let mut line = Vec::new();
            push_err(&mut line, text);
            let _ = futures_lite::AsyncWriteExt::write_all(&mut stream, &line).await;
            client.close(CloseReason::MaxConnectionsExceeded, false);
        } else {
            client.send_err(text);
            client.close(CloseReason::MaxConnectionsExceeded, true);
        }
    }
    let stream: Shared = Rc::new(RefCell::new(stream));
    let writer_task = glommio::spawn_local(writer(client.clone(), stream.clone()));
    crate::debug!(
        "{} - on shard {}; connections per shard: {:?}",
        client.desc.borrow(),
        shard.id,
        global.loads()
    );
    shard.clients.borrow_mut().insert(cid, client.clone());
    crate::shard::bump(&shard.stats.total_connections, 1);

    // Only a handshake_first connection still needs its INFO (after the
    // handshake); any other lets it go now rather than hold it for life.
    let info = tls_first.then_some(info);
    let reason = read_loop(&client, &stream, info).await;
    if !client.is_closed() {
        client.close(reason, true);
    }
    // The descriptor stays open until the writer is done too, so a
    // shutdown can never hit a reused descriptor number.
    writer_task.await;
    drop(stream);
    // Remembered for monitoring with its subscriptions, before they go.
    let reason = client.closed.get().unwrap_or(reason);
    let closed = client.info(Some((SystemTime::now(), reason)));
    if client.connected.get() {
        client.disconnect_events(&closed);
    }
    shard.record_closed(closed);
    // Cleanup: drop every subscription, then the client itself.
    let subs: Vec<Rc<Subscription>> = client.subs.borrow_mut().drain().map(|(_, s)| s).collect();
    for s in subs {
        if crate::log::trace_enabled() {
            client.trace_delsub(&s.sid);
        }
        shard.remove_sub(&s.key(), &s.handle());
    }
    shard.clients.borrow_mut().remove(&cid);
}

/// The client's first byte, if one arrives within `wait`; it stays unread.
async fn first_byte(stream: &TcpStream, wait: Duration) -> Option<u8> {
    let mut first = [0u8; 1];
    match glommio::timer::timeout(wait, stream.peek(&mut first)).await {
        Ok(n) if n > 0 => Some(first[0]),
        _ => None,
    }
}

/// One connection's place in the server-wide and its shard's counts,
/// given back on drop.
struct ConnectionSlot(std::sync::Arc<crate::shard::Global>, usize);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
        self.0.shard_conns[self.1].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Boxed [`serve`], as the shard starts connections it owns.
pub fn serve_boxed(
    shard: Rc<Shard>,
    stream: TcpStream,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
    Box::pin(serve(shard, stream))
}

/// The connection's socket, shared by its reader and writer tasks.
type Shared = Rc<RefCell<TcpStream>>;

/// Reads what is available; the borrow lasts one poll.
async fn read_some(s: &RefCell<TcpStream>, buf: &mut [u8]) -> io::Result<usize> {
    poll_fn(|cx| {
        let mut st = s.borrow_mut();
        std::pin::Pin::new(&mut *st).poll_read(cx, &mut *buf)
    })
    .await
}

/// Writes what the socket takes of `data`, waiting for room (within the
/// write deadline) if it has none; the borrow lasts one poll, so the reader
/// can poll in between while the socket is full.
async fn write_some(s: &RefCell<TcpStream>, data: &[u8]) -> io::Result<usize> {
    poll_fn(|cx| {
        let mut st = s.borrow_mut();
        std::pin::Pin::new(&mut *st).poll_write(cx, data)
    })
    .await
}

/// Writes all of `data`.
async fn write_all(s: &RefCell<TcpStream>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let n = write_some(s, data).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
    }
    Ok(())
}

/// Writes a buffer's chunks in order. A plain connection sends as many
/// chunks as the socket takes in one `sendmsg`, so a long buffer costs no
/// more system calls (nor wake-ups of the reading client) than one vector
/// would; an encrypted one seals each chunk in TLS records first. The
/// whole buffer counts as pending until it is all written, as one vector
/// did: producers waiting on this consumer resume once, with room for a
/// good batch, rather than each time a little was written.
async fn write_chunks(
    client: &Client,
    stream: &Shared,
    out: &OutBuf,
    raw: &mut Vec<u8>,
) -> io::Result<()> {
    let Some(t) = &client.tls else {
        let (mut idx, mut off) = (0, 0);
        // Whether the socket took all it was last offered; when it did
        // not, the next write waits for room.
        let mut room = true;
        loop {
            // Step over what was sent, and over empty chunks.
            while idx < out.chunk_count() && off >= out.chunk(idx).len() {
                off -= out.chunk(idx).len();
                idx += 1;
            }
            if idx == out.chunk_count() {
                return Ok(());
            }
            // Several chunks go in one call; the last one, or any write
            // after a short one, goes the usual way, which waits for room
            // and keeps the write deadline.
            let sent = if room && idx + 1 < out.chunk_count() {
                send_vectored(client.fd, out, idx, off)
            } else {
                None
            };
            let (n, offered) = match sent {
                Some(r) => r?,
                None => {
                    let first = &out.chunk(idx)[off..];
                    (write_some(stream, first).await?, first.len())
                }
            };
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            room = n == offered;
            off += n;
        }
    };
    let mut chunks = out.chunks().peekable();
    if chunks.peek().is_none() {
        // Nothing queued, but TLS has records of its own to send.
        raw.clear();
        t.borrow_mut().drain(raw)?;
        return write_all(stream, raw).await;
    }
    for chunk in chunks {
        raw.clear();
        t.borrow_mut().encrypt(chunk, raw)?;
        write_all(stream, raw).await?;
    }
    Ok(())
}

/// One non-blocking `sendmsg` of `out`'s chunks from `idx` on, the first
/// from `off` on: how much it took of how much was offered, or `None`
/// when the socket has no room.
fn send_vectored(
    fd: RawFd,
    out: &OutBuf,
    idx: usize,
    off: usize,
) -> Option<io::Result<(usize, usize)>> {
    const MAX_IOV: usize = 64;
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; MAX_IOV];
    let (mut k, mut offered) = (0, 0);
    for i in idx..out.chunk_count() {
        if k == MAX_IOV {
            break;
        }
        let c = out.chunk(i);
        let c = if i == idx { &c[off..] } else { c };
        if c.is_empty() {
            continue;
        }
        iov[k] = libc::iovec {
            iov_base: c.as_ptr() as *mut libc::c_void,
            iov_len: c.len(),
        };
        k += 1;
        offered += c.len();
    }
    if k == 0 {
        return Some(Ok((0, 0)));
    }
    // SAFETY: a zeroed msghdr is valid; it points at `k` initialized iovecs
    // that borrow `out`, which outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = k as _;
    loop {
        // SAFETY: `fd` is this connection's open socket and `msg` is valid.
        let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Some(Ok((n as usize, offered)));
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return None,
            _ => return Some(Err(e)),
        }
    }
}

async fn writer(client: Rc<Client>, stream: Shared) {
    let mut spare = OutBuf::default();
    let mut raw: Vec<u8> = Vec::new();
    // Messages written so far: delivering one is activity too.
    let mut written_msgs = client.out_msgs.get();
    let tls_pending = || {
        client
            .tls
            .as_ref()
            .is_some_and(|t| t.borrow().conn.wants_write())
    };
    loop {
        poll_fn(|cx| {
            if !client.out.borrow().is_empty() || client.is_closed() || tls_pending() {
                Poll::Ready(())
            } else {
                client.writer.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
        std::mem::swap(&mut *client.out.borrow_mut(), &mut spare);
        if spare.is_empty() && !tls_pending() {
            if client.is_closed() {
                // Closed with nothing (more) to flush.
                break;
            }
            continue;
        }
        client.inflight.set(spare.len());
        if client.out_msgs.get() != written_msgs {
            written_msgs = client.out_msgs.get();
            client.last_activity.set(Instant::now());
        }
        let res = write_chunks(&client, &stream, &spare, &mut raw).await;
        client.inflight.set(0);
        for w in client.drain_waiters.borrow_mut().drain(..) {
            w.wake();
        }
        if let Err(e) = res {
            let reason = if e.kind() == io::ErrorKind::TimedOut {
                crate::info!(
                    "{} - Slow Consumer Detected: WriteDeadline of {:?} exceeded",
                    client.desc.borrow(),
                    client.shard.options().write_deadline
                );
                client.count_slow_consumer();
                CloseReason::SlowConsumerWriteDeadline
            } else {
                CloseReason::WriteError
            };
            client.close(reason, false);
            break;
        }
        spare.clear();
        if raw.capacity() > 1024 * 1024 {
            raw = Vec::new();
        }
    }
    // SAFETY: shutdown on our own socket wakes the reader with EOF.
    unsafe { libc::shutdown(client.fd, libc::SHUT_RDWR) };
}

/// Reads and handles input until the connection ends; returns why.
async fn read_loop(client: &Rc<Client>, stream: &Shared, mut info: Option<Vec<u8>>) -> CloseReason {
    let shard = client.shard.clone();
    let mut buf: Vec<u8> = vec![0; READ_BUF_START];
    let mut filled = 0usize;
    let mut raw: Vec<u8> = Vec::new();
    // The TLS peer sent close_notify: handle what came before it, then
    // answer and close.
    let mut peer_closed = false;
    loop {
        if client.is_closed() {
            return CloseReason::ClientClosed;
        }
        if filled == buf.len() {
            buf.resize((buf.len() * 2).max(READ_BUF_START), 0);
        }
        let room = buf.len() - filled;
        let n = match &client.tls {
            None => match read_some(stream, &mut buf[filled..]).await {
                Ok(0) => return CloseReason::ClientClosed,
                Ok(n) => n,
                Err(_) => return CloseReason::ReadError,
            },
            Some(tls) => {
                if raw.is_empty() {
                    raw = vec![0; 16 * 1024 + 256];
                }
                let got = match read_some(stream, &mut raw).await {
                    Ok(0) => return CloseReason::ClientClosed,
                    Ok(n) => n,
                    Err(_) => return CloseReason::ReadError,
                };
                let was_handshaking = tls.borrow().conn.is_handshaking();
                let mut rest: &[u8] = &raw[..got];
                let mut n = 0;
                let mut failed = None;
                loop {
                    // Drain plaintext before feeding more records.
                    loop {
                        if filled + n == buf.len() {
                            let grown = (buf.len() * 2).max(READ_BUF_START);
                            buf.resize(grown, 0);
                        }
                        let k = tls.borrow_mut().read_plain(&mut buf[filled + n..]);
                        if k == 0 {
                            break;
                        }
                        n += k;
                    }
                    if rest.is_empty() {
                        break;
                    }
                    match tls.borrow_mut().feed(&mut rest) {
                        Ok(closed) => peer_closed |= closed,
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                if let Some(e) = failed {
                    // Like the reference, nothing more is sent to a peer
                    // that does not speak TLS: close without an alert.
                    crate::error!("{} - TLS handshake error: {e}", client.desc.borrow());
                    client.close(CloseReason::TlsHandshakeError, false);
                    return CloseReason::TlsHandshakeError;
                }
                // Handshake replies go out through the writer.
                client.wake_writer();
                if was_handshaking && !tls.borrow().conn.is_handshaking() {
                    if let Err(e) = client.tls_established() {
                        crate::error!("{} - TLS handshake error: {e}", client.desc.borrow());
                        client.close(CloseReason::TlsHandshakeError, false);
                        return CloseReason::TlsHandshakeError;
                    }
                    if let Some(i) = info.take() {
                        client.send(&i);
                    }
                }
                if n == 0 {
                    if peer_closed {
                        return tls_closed(client);
                    }
                    continue;
                }
                n
            }
        };
        // A read that fills all the room means a fast producer: read more
        // per call next time, up to the cap.
        if n >= room && buf.len() < READ_BUF_MAX {
            let grown = (buf.len() * 2).min(READ_BUF_MAX);
            buf.resize(grown, 0);
        }
        filled += n;
        // Options are read per batch so a reload applies to live clients.
        let opts = shard.options();
        let opts = &*opts;

        let mut pos = 0;
        let mut need = 0;
        client.caught_up.set(false);
        client.read_mark.set(shard.settle_mark());
        let tracing = crate::log::trace_enabled();
        while pos < filled && !client.is_closed() {
            // Per operation: CONNECT may change the headers flag and the
            // payload limit (an account's or user's), and what follows it
            // in the same read obeys them.
            let limits = Limits {
                max_control_line: opts.max_control_line,
                max_payload: match client.max_payload.get() {
                    n if n < 0 => usize::MAX,
                    n => n as usize,
                },
                headers: client.headers.get(),
            };
            if !before_connect(client, buf[pos], opts) {
                break;
            }
            match parse(&buf[pos..filled], &limits) {
                Ok(Parsed::Op(op, used)) => {
                    if tracing {
                        trace_in(client, &op, &buf[pos..pos + used]);
                    }
                    handle(client, &shard, op, opts).await;
                    pos += used;
                    // As the reference: a producer that just fed a
                    // congested consumer waits for it before going on.
                    if let Some(c) = fanout::take_congested() {
                        if !std::ptr::addr_eq(Rc::as_ptr(&c), Rc::as_ptr(client)) {
                            let waited = fanout::stall(&*c).await;
                            shard.note_stall(waited);
                        }
                    }
                    // Likewise for consumers on other shards it fed.
                    shard.producer_wait(client.id).await;
                }
                Ok(Parsed::Incomplete { need: n }) => {
                    need = n;
                    break;
                }
                Err(e) => {
                    parse_error(client, e, &buf[pos..filled]);
                    break;
                }
            }
        }
        if client.active.replace(false) {
            client.last_activity.set(Instant::now());
        }
        // Keep the unparsed tail at the front, with room for what it needs.
        buf.copy_within(pos..filled, 0);
        filled -= pos;
        if need > buf.len() {
            buf.resize(need, 0);
        } else if need == 0 && filled == 0 && buf.len() > READ_BUF_MAX {
            buf = vec![0; READ_BUF_MAX];
        }

        if peer_closed {
            return tls_closed(client);
        }
        // Back-pressure across shards: wait while a peer this input fed
        // has a full window.
        shard.wait_window(client.touched.replace(0)).await;
        // Let the writers this batch woke run before reading more.
        futures_lite::future::yield_now().await;
    }
}

/// The TLS peer closed cleanly: answer its close_notify with ours and
/// close the connection at once (the writer sends the alert, then shuts the
/// socket down), so a client waiting for the TLS shutdown returns promptly.
fn tls_closed(client: &Client) -> CloseReason {
    if let Some(t) = &client.tls {
        t.borrow_mut().send_close_notify();
    }
    client.close(CloseReason::ClientClosed, true);
    CloseReason::ClientClosed
}

fn parse_error(client: &Client, e: ParseError, at: &[u8]) {
    let snippet = String::from_utf8_lossy(&at[..at.len().min(32)]).into_owned();
    match e {
        ParseError::UnknownOp | ParseError::PayloadEnd { .. } => {
            // The reference checks a pedantic client's publish subject as
            // it reads the line, before the payload it finds malformed.
            if let ParseError::PayloadEnd { subject: (a, b) } = e {
                if client.pedantic.get() && !subject::valid_literal(&at[a..b]) {
                    client.send_err("Invalid Publish Subject");
                }
            }
            // As the reference: the -ERR first (its trace line), then the
            // log line.
            client.send_err("Unknown Protocol Operation");
            crate::error!(
                "{} - Client parser ERROR, proto='{:?}...'",
                client.desc.borrow(),
                snippet
            );
            // The reference records an unknown operation as a protocol
            // violation (monitoring's close reason).
            client.close(CloseReason::ProtocolViolation, true);
        }
        ParseError::MaxControlLine => {
            client.send_err("maximum control line exceeded");
            crate::error!("{} - maximum control line exceeded", client.desc.borrow());
            client.close(CloseReason::MaxControlLineExceeded, true);
        }
        ParseError::MaxPayload => {
            crate::error!("{} - Maximum Payload Violation", client.desc.borrow());
            client.send_err("Maximum Payload Violation");
            client.close(CloseReason::MaxPayloadExceeded, true);
        }
        ParseError::BadArgs | ParseError::HeadersNotSupported => {
            crate::error!(
                "{} - Client parser ERROR, proto='{:?}...'",
                client.desc.borrow(),
                snippet
            );
            client.close(CloseReason::ParseError, true);
        }
    }
}

/// An operation other than CONNECT (its first byte, `first`, is not a C)
/// from a client that has not sent CONNECT where authentication is
/// required: like the reference, which looks at that byte alone, before
/// the rest of the line, logs the client in as the no_auth_user when there
/// is one, and otherwise refuses it. Whether the operation may go on.
fn before_connect(client: &Client, first: u8, opts: &Options) -> bool {
    if client.connected.get() || matches!(first, b'C' | b'c') || !opts.security.auth.required() {
        return true;
    }
    match opts.security.auth.no_auth_identity() {
        Some(id) => {
            if !client.bind(&id) {
                return false;
            }
            *client.creds.borrow_mut() = Some(Box::default());
            client.auth_deadline.set(None);
            client.connect_events();
            client.connected.set(true);
            true
        }
        None => {
            client.auth_error_event();
            crate::info!(
                "{} - Authorization Violation: operation before CONNECT",
                client.desc.borrow()
            );
            client.send_err("Authorization Violation");
            client.close(CloseReason::AuthenticationViolation, true);
            false
        }
    }
}

async fn handle(client: &Rc<Client>, shard: &Rc<Shard>, op: Op<'_>, opts: &Options) {
    match op {
        // Boxed: CONNECT's state (credentials, a resolver fetch) is big,
        // and inline it would sit in every idle connection's future.
        Op::Connect(json) => Box::pin(connect(client, json, opts)).await,
        Op::Pub {
            subject,
            reply,
            hdr_len,
            msg,
            has_headers,
        } => {
            if client.pedantic.get() && !subject::valid_literal(subject) {
                client.send_err("Invalid Publish Subject");
            }
            if !client.may_publish(subject) {
                return;
            }
            if client.system_user.get() {
                client.note_system_traffic(subject);
            }
            if let Some(r) = reply.filter(|r| is_reserved_reply(r)) {
                let r = String::from_utf8_lossy(r);
                crate::info!(
                    "{} - Publish Violation - reserved reply subject {r:?}",
                    client.desc.borrow()
                );
                client.send_err(&format!(
                    "Permissions Violation for Publish with Reply of {r:?}"
                ));
                return;
            }
            if client.verbose.get() {
                client.send(encode::OK);
            }
            {
                let bytes = msg.len() as u64;
                client.active.set(true);
                crate::shard::bump(&client.in_msgs, 1);
                crate::shard::bump(&client.in_bytes, bytes);
                crate::shard::bump(&shard.stats.in_msgs, 1);
                crate::shard::bump(&shard.stats.in_bytes, bytes);
                let space = client.space.borrow();
                crate::shard::bump(&space.stats.in_msgs, 1);
                crate::shard::bump(&space.stats.in_bytes, bytes);
            }
            let m = Msg {
                subject,
                reply,
                has_headers,
                hdr_len,
                body: msg,
            };
            if let Some(mark) = client.settle_mark.take() {
                // A new connection's first message may not overtake what
                // other shards' clients wrote before it connected.
                // async-nats's flush(), for one, only writes, so "subscribe,
                // flush, connect another client, publish" can leave the SUB
                // unread on a shard the OS has not run yet, where the
                // reference, reading each socket as it becomes readable,
                // would deliver. Once per connection, and only as it first
                // publishes.
                shard.settled_since(mark).await;
                if client.is_closed() {
                    return;
                }
            }
            let mut routed = route_from(client, shard, m);
            let wants_503 = reply.is_some() && client.no_responders.get();
            if !routed.delivered
                && shard.nshards > 1
                && (wants_503 || (!client.caught_up.get() && shard.interest_in_flight()))
            {
                // Nobody here wanted it, but a subscriber may have taken
                // it on another shard just before it arrived, its interest
                // still on the way here (nats.py, for one, writes a
                // flush's PING ahead of a queued SUB). Catch up with every
                // peer (their acknowledgements follow what they sent
                // before), then route again, as the reference's single
                // subject index would have. A request always does so
                // before its 503; the barrier also proves this client's
                // earlier SUBs took effect, as a PONG does. Other messages
                // do so only while new interest is in flight, and once
                // per read, so that a publisher is not held at every
                // message while other clients keep subscribing.
                client.needs_barrier.set(false);
                client.caught_up.set(true);
                if wants_503 {
                    // A 503 is final for the requester: first read what
                    // other shards' clients already wrote, too. One round
                    // that started after this read covers every request
                    // in it, so a burst of them waits once, not each.
                    shard.settled_since(client.read_mark.get()).await;
                } else {
                    shard.barrier().await;
                }
                routed = route_from(client, shard, m);
            }
            if routed.remote {
                client.needs_barrier.set(true);
            }
            if !routed.delivered {
                if let Some(reply) = reply.filter(|_| client.no_responders.get()) {
                    no_responders(client, reply);
                }
            }
        }
        Op::Sub {
            subject,
            queue,
            sid,
        } => {
            client.active.set(true);
            sub(client, shard, opts, subject, queue, sid)
        }
        Op::Unsub { sid, max } => {
            client.active.set(true);
            if client.verbose.get() {
                client.send(encode::OK);
            }
            let sub = client.subs.borrow().get(sid).cloned();
            if let Some(sub) = sub {
                match max {
                    Some(m) if m > 0 && m > sub.delivered.get() => sub.max.set(m),
                    _ => client.unsubscribe(sid),
                }
            }
        }
        Op::Ping => {
            if client.needs_barrier.replace(false) {
                shard.barrier().await;
            }
            client.last_ping_in.set(Some(Instant::now()));
            client.send(encode::PONG);
            // As the reference: with the first PONG, a client that takes
            // async INFO hears of a max_payload of its own.
            if client.connected.get()
                && !client.first_pong.replace(true)
                && client.protocol.get() >= 1
                && client.max_payload.get() != opts.max_payload as i64
            {
                client.send(&client.info_line(false));
            }
        }
        Op::Pong => {
            client.pings_out.set(0);
            if let Some(t) = client.ping_sent.take() {
                client.rtt.set(t.elapsed());
            }
        }
        Op::Info(json) => {
            if serde_json::from_slice::<serde_json::Value>(json).is_err() {
                client.close(CloseReason::ParseError, true);
            }
        }
        Op::Ok => {}
        Op::Err(text) => {
            crate::error!(
                "{} - Client Error {}",
                client.desc.borrow(),
                String::from_utf8_lossy(text)
            );
            client.close(CloseReason::ParseError, true);
        }
    }
}

/// Routes one message published by `client` and notes the peers it fed.
fn route_from(client: &Client, shard: &Shard, m: Msg<'_>) -> crate::shard::Routed {
    let routed = {
        let space = client.space.borrow();
        let info = |share: bool| client.request_info(share);
        let origin = Origin {
            cid: client.id,
            echo: client.echo.get(),
            account: client.account(),
            space: &space,
            client_info: Some(&info),
        };
        shard.publish(Some(&origin), client.account(), m)
    };
    client
        .touched
        .set(client.touched.get() | shard.take_touched());
    routed
}

/// Reply prefixes the server reserves for its own routing.
fn is_reserved_reply(r: &[u8]) -> bool {
    r.starts_with(b"_R_.") || r.starts_with(b"$JS.ACK.") || r.starts_with(b"_GR_.")
}

impl Client {
    /// The `Nats-Request-Info` JSON of this client, with the fields and in
    /// the order of the reference's `ClientInfo`; `share` adds the details
    /// a service import with `share: true` passes on.
    fn request_info(&self, share: bool) -> String {
        use std::fmt::Write;
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let mut j = String::with_capacity(if share { 256 } else { 48 });
        j.push('{');
        if share {
            let _ = write!(
                j,
                "\"start\":{},",
                q(&crate::timefmt::rfc3339(self.started.0))
            );
            let _ = write!(j, "\"host\":{},", q(&self.addr.ip().to_string()));
            if self.id != 0 {
                let _ = write!(j, "\"id\":{},", self.id);
            }
        }
        let _ = write!(j, "\"acc\":{}", q(&self.account_name.borrow()));
        if share {
            let user = self.user.borrow();
            let fields = [
                ("user", Some(user.clone())),
                ("name", self.client_name.borrow().clone()),
                ("lang", self.lang.borrow().clone()),
                ("ver", self.version.borrow().clone()),
            ];
            for (k, v) in fields {
                if let Some(v) = v.filter(|v| !v.is_empty()) {
                    let _ = write!(j, ",\"{k}\":{}", q(&v));
                }
            }
        }
        let rtt = self.rtt.get().as_nanos();
        if rtt > 0 {
            let _ = write!(j, ",\"rtt\":{rtt}");
        }
        if share {
            let server = self.shard.info.borrow().server_name.clone();
            let _ = write!(j, ",\"server\":{}", q(&server));
            j.push_str(",\"kind\":\"Client\",\"client_type\":\"nats\"");
        }
        j.push('}');
        j
    }

    /// The publish permission check, with allow_responses as the fallback;
    /// sends the violation and logs the deciding rule when refused.
    fn may_publish(&self, subject: &[u8]) -> bool {
        let perms = self.perms.borrow();
        let Some(p) = perms.as_deref() else {
            return true;
        };
        if p.can_publish(subject) || self.take_reply_permit(subject) {
            return true;
        }
        let subj = String::from_utf8_lossy(subject);
        // As the reference: the -ERR (its trace line), then the log.
        self.send_err(&format!("Permissions Violation for Publish to {subj:?}"));
        crate::info!(
            "{} - Publish Violation - User {:?}, Account {:?}, Subject {subj:?}: {}",
            self.desc.borrow(),
            self.user.borrow(),
            account::account_name(self.account()),
            p.explain_publish(subject).reason
        );
        false
    }

    /// Uses up one allow_responses permit for `subject`, if there is one.
    fn take_reply_permit(&self, subject: &[u8]) -> bool {
        let mut replies = self.replies.borrow_mut();
        let Some((left, expires)) = replies.get_mut(subject) else {
            return false;
        };
        if expires.is_some_and(|e| e < Instant::now()) {
            replies.remove(subject);
            return false;
        }
        if *left > 0 {
            *left -= 1;
            if *left == 0 {
                replies.remove(subject);
            }
        }
        true
    }
}

/// Handles CONNECT. When the user's account must be asked of the resolver
/// (a URL or directory resolver, not in memory), the question runs on the
/// shard's blocking pool and this waits for it: the read loop awaits each
/// operation, so nothing the client sent after CONNECT runs before its
/// authentication is decided, while the shard serves everyone else.
async fn connect(client: &Rc<Client>, json: &[u8], opts: &Options) {
    let co: ConnectOpts = match client.connect_opts(json) {
        Ok(c) => c,
        Err(e) => {
            crate::error!("{} - Client parser ERROR: {e}", client.desc.borrow());
            client.close(CloseReason::ParseError, true);
            return;
        }
    };
    client.echo.set(co.echo);
    // The reference's first RTT estimate: from accept to CONNECT.
    if client.rtt.get().is_zero() {
        let since = client.started.1.elapsed();
        client.rtt.set(since.max(Duration::from_nanos(1)));
    }
    *client.client_name.borrow_mut() = co.name.clone().filter(|s| !s.is_empty());
    *client.lang.borrow_mut() = co.lang.clone().filter(|s| !s.is_empty());
    *client.version.borrow_mut() = co.version.clone().filter(|s| !s.is_empty());
    client.verbose.set(co.verbose);
    client.pedantic.set(co.pedantic);
    client.headers.set(co.headers && !opts.no_header_support);
    client.no_responders.set(co.no_responders);
    client.protocol.set(co.protocol);
    *client.connect_user.borrow_mut() = co.user.clone().filter(|s| !s.is_empty());
    *client.connect_jwt.borrow_mut() = co.jwt.clone().filter(|s| !s.is_empty());
    {
        let mut ncs = String::new();
        if let Some(v) = &co.version {
            ncs = format!("v{v}");
        }
        for part in [&co.lang, &co.name].into_iter().flatten() {
            if !ncs.is_empty() {
                ncs.push(':');
            }
            ncs.push_str(part);
        }
        if !ncs.is_empty() {
            *client.desc.borrow_mut() = format!("{} - cid:{} - {:?}", client.addr, client.id, ncs);
        }
    }
    let saved = SavedCreds {
        user: co.user.clone(),
        pass: co.pass.clone(),
        token: co.auth_token.clone(),
        nkey: co.nkey.clone(),
        sig: co.sig.clone(),
        cert: client.tls.as_ref().map(|t| t.borrow().peer_identities()),
        jwt: co.jwt.clone(),
        ip: Some(client.addr.ip()),
        cert_dn: client.tls.as_ref().and_then(|t| t.borrow().peer_dn()),
    };
    let auth = &opts.security.auth;
    let nonce = client.nonce.clone();
    let nonce = nonce.as_deref().map(str::as_bytes);
    let res = match auth.authenticate_start(&saved.as_credentials(), nonce) {
        AuthStep::Done(r) => r,
        AuthStep::Fetch(pending) => {
            let started = Instant::now();
            let answer = glommio::executor().spawn_blocking(pending.fetcher()).await;
            let took = started.elapsed();
            if took > Duration::from_secs(1) {
                crate::warn!("Account [{}] fetch took {took:?}", pending.account());
            } else {
                crate::debug!("Account [{}] fetch took {took:?}", pending.account());
            }
            if client.is_closed() {
                // Gone (or timed out) while the resolver was asked.
                return;
            }
            if let (Ok(jwt), Some(plane)) = (&answer, client.shard.global.plane.get()) {
                // Its exports and imports must route from now on: before
                // this CONNECT is answered, so that a message the client
                // (or anyone) sends after it already takes them, as in
                // the reference, which wires a fetched account's edges
                // while it authenticates. Accounts without edges need
                // nothing. The change waits for every shard's answer
                // (this one's too), so it runs off the shard.
                let has_edges = crate::security::jwt::decode(jwt)
                    .ok()
                    .and_then(|c| c.typed::<crate::security::jwt::AccountClaims>().ok())
                    .is_some_and(|a| crate::system::claims::has_edges(&a));
                if has_edges {
                    let (plane, key) = (plane.clone(), pending.account().to_string());
                    glommio::executor()
                        .spawn_blocking(move || crate::system::claims::adopt(&plane, &key))
                        .await;
                    if client.is_closed() {
                        return;
                    }
                }
            }
            pending.finish(answer, &saved.as_credentials(), nonce)
        }
    };
    match res {
        Ok(id) => {
            client.auth_deadline.set(None);
            if !client.bind(&id) {
                return;
            }
            client.shard.ensure_system_imports(client.account()).await;
            if client.is_closed() {
                return;
            }
            *client.creds.borrow_mut() = Some(Box::new(saved));
            if !client.connected.get() {
                client.connect_events();
            }
        }
        Err(cause) => {
            // The client sees only the reference's text; the log says why.
            crate::info!(
                "{} - Authorization Violation: {cause}",
                client.desc.borrow()
            );
            client.auth_error_event();
            client.send_err("Authorization Violation");
            client.close(CloseReason::AuthenticationViolation, true);
            return;
        }
    }
    if !(0..=1).contains(&co.protocol) {
        client.send_err("invalid client protocol");
        client.close(CloseReason::BadClientProtocolVersion, true);
        return;
    }
    if co.no_responders && !client.headers.get() {
        client.send_err("no responders requires headers support");
        client.close(CloseReason::NoRespondersRequiresHeaders, true);
        return;
    }
    if co.verbose {
        client.send(encode::OK);
    }
    if !client.connected.replace(true) {
        // The first PING comes early (within 2 s, plus up to 20% jitter)
        // to measure RTT, as the reference does.
        let first = opts.ping_interval.min(Duration::from_secs(2));
        let jitter = first.as_nanos() as u64 / 5;
        let extra = if jitter > 0 {
            client.shard.rand(jitter as usize) as u64
        } else {
            0
        };
        client
            .next_ping
            .set(Some(Instant::now() + first + Duration::from_nanos(extra)));
    }
}

fn sub(
    client: &Rc<Client>,
    shard: &Rc<Shard>,
    opts: &Options,
    subject: &[u8],
    queue: Option<&[u8]>,
    sid: &[u8],
) {
    if let Some(p) = client.perms.borrow().clone() {
        if p.can_subscribe(subject, queue) {
            if p.needs_delivery_filter(subject) {
                client.deny_filter.set(true);
            }
        } else {
            let subj = String::from_utf8_lossy(subject);
            // As the reference: the -ERR (its trace line), then the log.
            let text = match queue {
                Some(q) => format!(
                    "Permissions Violation for Subscription to {subj:?} using queue {:?}",
                    String::from_utf8_lossy(q)
                ),
                None => format!("Permissions Violation for Subscription to {subj:?}"),
            };
            client.send_err(&text);
            crate::info!(
                "{} - Subscription Violation - User {:?}, Account {:?}, Subject {subj:?}{}: {}",
                client.desc.borrow(),
                client.user.borrow(),
                account::account_name(client.account()),
                queue
                    .map(|q| format!(", Queue {:?}", String::from_utf8_lossy(q)))
                    .unwrap_or_default(),
                p.explain_subscribe(subject, queue).reason
            );
            return;
        }
    }
    let max_tokens = opts.max_sub_tokens as usize;
    if max_tokens > 0 && subject.split(|&b| b == b'.').count() > max_tokens {
        let subj = String::from_utf8_lossy(subject);
        let user = client.user.borrow();
        crate::error!(
            "{} - Subscription Violation Too Many Tokens - User {:?}, Subject {subj:?}, SID {}",
            client.desc.borrow(),
            if user.is_empty() {
                "N/A"
            } else {
                user.as_str()
            },
            String::from_utf8_lossy(sid)
        );
        client.send_err(&format!(
            "Permissions Violation for Subscription to {subj:?}, too many tokens"
        ));
        return;
    }
    let max_subs = client.max_subs.get();
    if max_subs >= 0 && client.subs.borrow().len() as i64 >= max_subs {
        crate::error!("{} - maximum subscriptions exceeded", client.desc.borrow());
        client.send_err("maximum subscriptions exceeded");
        return;
    }
    // A repeated sid keeps the existing subscription, as the reference
    // does, and its subject is not even checked there.
    let repeated = client.subs.borrow().contains_key(sid);
    if !repeated && !subject::valid_subscribe(subject) {
        client.send_err("Invalid Subject");
        return;
    }
    if !repeated {
        let s = Rc::new(Subscription {
            client: client.clone(),
            account: client.account(),
            subject: subject.into(),
            queue: queue.map(Into::into),
            sid: sid.into(),
            delivered: Cell::new(0),
            max: Cell::new(0),
            removed: Cell::new(false),
        });
        client.subs.borrow_mut().insert(sid.into(), s.clone());
        shard.add_sub(&s.key(), s.handle());
        client.needs_barrier.set(true);
    }
    if client.verbose.get() {
        client.send(encode::OK);
    }
}

/// Tells a requester nobody received its request, on its own reply
/// subscription, when it asked for that in CONNECT.
fn no_responders(client: &Rc<Client>, reply: &[u8]) {
    if !client.no_responders.get() {
        return;
    }
    let sid = client
        .subs
        .borrow()
        .values()
        .find(|s| s.queue.is_none() && subject::matches(&s.subject, reply))
        .map(|s| s.sid.clone());
    if let Some(sid) = sid {
        let mut out = Vec::with_capacity(64 + reply.len());
        push_msg(
            &mut out,
            reply,
            &sid,
            None,
            true,
            encode::NO_RESPONDERS_HDR.len(),
            encode::NO_RESPONDERS_HDR,
        );
        client.send(&out);
    }
}
