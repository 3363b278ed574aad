//! The system account's service thread: answers `$SYS` requests, sends
//! the periodic events, and applies account claim pushes. It gathers what
//! it needs from the shards over their control channels, as monitoring
//! does, and publishes through shard 0; no shard ever waits for it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::claims;
use super::events::{AccountStat, DataStats, ServerStats};
use super::{ClaimsMode, SysIn, System, SYSTEM_IMPORTS};
use crate::monitor::snapshot::Query;
use crate::monitor::{Merged, Monitor};
use crate::plane::Plane;
use crate::security::account::{
    account_connections, account_id, account_name, account_names, AccountId,
};
use crate::shard::{Control, InternalMsg};

/// The reference's heartbeat for STATSZ and account connection events.
const HEARTBEAT: Duration = Duration::from_secs(30);
/// The first STATSZ comes this soon after start, then the interval
/// doubles up to the heartbeat, as the reference's does.
const FIRST_STATSZ: Duration = Duration::from_millis(250);
/// How long connection changes gather before their events go out.
const CONNS_BATCH: Duration = Duration::from_millis(2);
/// How long account connection events reuse gathered traffic counters.
const COUNTERS_REUSE: Duration = Duration::from_secs(1);

/// Starts the service thread.
pub fn start(
    sys: Arc<System>,
    monitor: Arc<Monitor>,
    plane: Arc<Plane>,
    rx: Receiver<SysIn>,
) -> Result<(), String> {
    let mode = ClaimsMode::of(&plane.current());
    let svc = Service {
        sys,
        monitor,
        plane,
        mode,
        start: SystemTime::now(),
        started: Instant::now(),
        statsz_every: FIRST_STATSZ,
        next_statsz: Instant::now() + FIRST_STATSZ,
        heartbeats: BTreeMap::new(),
        recent: RefCell::new(None),
        outbox: RefCell::new(Vec::new()),
    };
    std::thread::Builder::new()
        .name("natrix-system".into())
        .spawn(move || svc.run(rx))
        .map(|_| ())
        .map_err(|e| format!("cannot start the system account service: {e}"))
}

struct Service {
    sys: Arc<System>,
    monitor: Arc<Monitor>,
    plane: Arc<Plane>,
    mode: ClaimsMode,
    start: SystemTime,
    started: Instant,
    statsz_every: Duration,
    next_statsz: Instant,
    /// Accounts with connections, and when their next heartbeat is due.
    heartbeats: BTreeMap<String, Instant>,
    /// The shards' counters of the last gather for account events, and
    /// when: events reuse them for a while, so a storm of connects does
    /// not keep the shards answering.
    recent: RefCell<Option<(Instant, Merged)>>,
    /// Messages to publish, sent to shard 0 as one batch per wake-up.
    outbox: RefCell<Vec<InternalMsg>>,
}

impl Service {
    fn run(mut self, rx: Receiver<SysIn>) {
        loop {
            let next = self
                .heartbeats
                .values()
                .copied()
                .chain(std::iter::once(self.next_statsz))
                .min()
                .unwrap_or(self.next_statsz);
            let wait = next.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(first) => {
                    // Connection changes come in bursts (a storm of
                    // connects): gather a little, then send one event per
                    // account with its latest count, so a storm costs the
                    // shards a few wake-ups, not one per connection.
                    if matches!(first, SysIn::AccountConns { .. }) {
                        std::thread::sleep(CONNS_BATCH);
                    }
                    let mut changed: Vec<(String, Option<u64>)> = Vec::new();
                    let mut next = Some(first);
                    while let Some(m) = next {
                        match m {
                            SysIn::AccountConns { name, conns } => {
                                match changed.iter_mut().find(|(n, _)| *n == name) {
                                    Some(e) => e.1 = Some(conns),
                                    None => changed.push((name, Some(conns))),
                                }
                            }
                            SysIn::Request {
                                account,
                                subject,
                                reply,
                                hdr: _,
                                body,
                            } => self.request(account, &subject, reply.as_deref(), &body),
                            SysIn::Shutdown(ack) => {
                                self.flush();
                                self.shutdown();
                                let _ = ack.send(());
                                return;
                            }
                        }
                        next = rx.try_recv().ok();
                    }
                    if !changed.is_empty() {
                        self.account_conns(&changed);
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.timers(),
                Err(RecvTimeoutError::Disconnected) => return,
            }
            self.flush();
        }
    }

    /// Sends what was published since the last flush to shard 0.
    fn flush(&self) {
        let msgs = std::mem::take(&mut *self.outbox.borrow_mut());
        if msgs.is_empty() {
            return;
        }
        if let Some(link) = self.plane.links.first() {
            link.send(Control::Publish(msgs));
        }
    }

    fn timers(&mut self) {
        let now = Instant::now();
        if now >= self.next_statsz {
            let subject = format!("$SYS.SERVER.{}.STATSZ", self.sys.server_id);
            let body = self.statsz_body();
            self.publish(self.sys.account_id, &subject, None, body);
            self.statsz_every = (self.statsz_every * 2).min(HEARTBEAT);
            self.next_statsz = now + self.statsz_every;
        }
        let due: Vec<(String, Option<u64>)> = self
            .heartbeats
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(a, _)| (a.clone(), None))
            .collect();
        if !due.is_empty() {
            self.account_conns(&due);
        }
    }

    /// Publishes through shard 0 (at the next flush).
    fn publish(&self, account: AccountId, subject: &str, reply: Option<&str>, body: Vec<u8>) {
        self.outbox.borrow_mut().push(InternalMsg {
            account,
            subject: subject.to_string(),
            reply: reply.map(str::to_string),
            body,
        });
    }

    fn request(&mut self, account: AccountId, subject: &str, reply: Option<&str>, body: &[u8]) {
        if account != self.sys.account_id {
            // A system service imported into another account answers for
            // that account, in it.
            let name = account_name(account);
            let Some((_, endpoint)) = SYSTEM_IMPORTS.iter().find(|(s, _)| *s == subject) else {
                return;
            };
            let answer = self.monitor.api_data(endpoint, Some(&name), body);
            self.zreply(account, reply, answer);
            return;
        }
        let sys = self.sys.account_id;
        let toks: Vec<&str> = subject.split('.').collect();
        match toks.as_slice() {
            ["$SYS", "REQ", "SERVER", "PING"] => self.statsz(reply, body),
            ["$SYS", "REQ", "SERVER", _, "STATSZ"] => self.statsz(reply, body),
            ["$SYS", "REQ", "SERVER", _, endpoint] => {
                let answer = self.monitor.api_data(endpoint, None, body);
                self.zreply(sys, reply, answer);
            }
            ["$SYS", "REQ", "ACCOUNT", acc, "CLAIMS", "UPDATE"]
            | ["$SYS", "ACCOUNT", acc, "CLAIMS", "UPDATE"] => {
                let out = claims::update(&self.plane, &self.sys, Some(acc), body, self.mode);
                self.reply(reply, out);
            }
            ["$SYS", "REQ", "CLAIMS", "UPDATE"] => {
                let out = claims::update(&self.plane, &self.sys, None, body, self.mode);
                self.reply(reply, out);
            }
            ["$SYS", "REQ", "ACCOUNT", acc, "CLAIMS", "LOOKUP"] => {
                if let Some(out) = claims::lookup(&self.plane, acc) {
                    self.reply(reply, out);
                }
            }
            ["$SYS", "REQ", "CLAIMS", "LIST"] => {
                if let Some(out) = claims::list(&self.plane, &self.sys) {
                    self.reply(reply, out);
                }
            }
            ["$SYS", "REQ", "CLAIMS", "PACK"] => {
                for m in claims::pack(&self.plane, body) {
                    self.reply(reply, m);
                }
            }
            ["$SYS", "REQ", "CLAIMS", "DELETE"] => {
                let out = claims::delete(&self.plane, &self.sys, body);
                self.reply(reply, out);
            }
            ["$SYS", "REQ", "ACCOUNT", acc, "CONNS"] => self.conns_request(acc, reply, body),
            ["$SYS", "REQ", "ACCOUNT", acc, endpoint] => {
                let answer = self.monitor.api_data(endpoint, Some(acc), body);
                self.zreply(sys, reply, answer);
            }
            _ => crate::debug!("system account: no handler for {subject}"),
        }
    }

    /// A raw reply in the system account, when the request asked for one.
    fn reply(&self, reply: Option<&str>, body: Vec<u8>) {
        if let Some(r) = reply.filter(|r| !r.is_empty()) {
            self.publish(self.sys.account_id, r, None, body);
        }
    }

    /// A monitoring answer wrapped as the reference's ServerAPIResponse;
    /// `Ok(None)`: this server does not answer.
    fn zreply(
        &self,
        account: AccountId,
        reply: Option<&str>,
        answer: Result<Option<Value>, (u16, String)>,
    ) {
        let Some(r) = reply.filter(|r| !r.is_empty()) else {
            return;
        };
        let body = match answer {
            Ok(None) => return,
            Ok(Some(v)) => self.sys.api_response(Ok(v)),
            Err(e) => self.sys.api_response(Err(e)),
        };
        self.publish(account, r, None, body);
    }

    /// `$SYS.REQ.SERVER.PING` and `…STATSZ`: the statistics to the reply,
    /// or to the STATSZ event subject when there is none.
    fn statsz(&self, reply: Option<&str>, body: &[u8]) {
        let to = match reply.filter(|r| !r.is_empty()) {
            Some(r) => r.to_string(),
            None => format!("$SYS.SERVER.{}.STATSZ", self.sys.server_id),
        };
        let out = match self.monitor.statsz_answers(body) {
            Ok(false) => return,
            Ok(true) => self.statsz_body(),
            Err(e) => self.sys.api_response(Err(e)),
        };
        self.publish(self.sys.account_id, &to, None, out);
    }

    fn statsz_body(&self) -> Vec<u8> {
        let t = self.monitor.gather().totals();
        let (mem, cpu) = crate::monitor::varz::process_usage(self.started.elapsed());
        // Bound connections per account; the registry's order is the ids'.
        let per_account: Vec<usize> = (0..account_names().len())
            .map(|id| account_connections(id as AccountId))
            .collect();
        let stats = ServerStats {
            start: crate::timefmt::rfc3339(self.start),
            mem,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu: crate::monitor::go_float(cpu),
            connections: per_account.iter().sum(),
            total_connections: t.total_connections,
            active_accounts: per_account.iter().filter(|n| **n > 0).count(),
            subscriptions: t.subscriptions,
            sent: DataStats {
                msgs: t.out_msgs,
                bytes: t.out_bytes,
            },
            received: DataStats {
                msgs: t.in_msgs,
                bytes: t.in_bytes,
            },
            slow_consumers: t.slow_consumers,
            active_servers: 1,
        };
        self.sys.statsz_msg(&stats)
    }

    /// One account's connections and traffic, server-wide.
    fn account_stat(&self, merged: &Merged, name: &str) -> AccountStat {
        let conns = account_connections(account_id(name)) as u64;
        let mut st = AccountStat {
            acc: name.to_string(),
            conns,
            total_conns: conns,
            ..AccountStat::default()
        };
        if let Some(a) = merged.accounts.get(name) {
            st.received = DataStats {
                msgs: a.in_msgs,
                bytes: a.in_bytes,
            };
            st.sent = DataStats {
                msgs: a.out_msgs,
                bytes: a.out_bytes,
            };
            st.slow_consumers = a.slow_consumers;
        }
        st
    }

    /// `$SYS.ACCOUNT.<account>.SERVER.CONNS` (and the old subject) for
    /// accounts whose connections changed (to the count given, as it was
    /// then) or whose heartbeat is due (`None`: the count now).
    fn account_conns(&mut self, accounts: &[(String, Option<u64>)]) {
        let now = Instant::now();
        let fresh = self
            .recent
            .borrow()
            .as_ref()
            .is_some_and(|(at, _)| now.duration_since(*at) < COUNTERS_REUSE);
        if !fresh {
            *self.recent.borrow_mut() = Some((now, self.monitor.gather()));
        }
        let recent = self.recent.borrow();
        let Some((_, merged)) = recent.as_ref() else {
            return;
        };
        for (name, conns) in accounts {
            let mut st = self.account_stat(merged, name);
            if let Some(n) = conns {
                st.conns = *n;
                st.total_conns = *n;
            }
            let body = self.sys.account_conns_event(&st);
            for subject in [
                format!("$SYS.ACCOUNT.{name}.SERVER.CONNS"),
                format!("$SYS.SERVER.ACCOUNT.{name}.CONNS"),
            ] {
                self.publish(self.sys.account_id, &subject, None, body.clone());
            }
            // As the reference: a heartbeat while the account has
            // connections; none once it has none.
            if st.total_conns > 0 {
                self.heartbeats.insert(name.clone(), now + HEARTBEAT);
            } else {
                self.heartbeats.remove(name);
            }
        }
    }

    /// `$SYS.REQ.ACCOUNT.<account>.CONNS`: this server's connections of
    /// the account, when it has any.
    fn conns_request(&self, account: &str, reply: Option<&str>, body: &[u8]) {
        if !body.is_empty() {
            let named = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v.get("acc").and_then(Value::as_str).map(str::to_string));
            if named.as_deref() != Some(account) {
                crate::debug!(
                    "account connections request for {account}: the body names another account"
                );
                return;
            }
        }
        if account_connections(account_id(account)) == 0 {
            return;
        }
        let st = self.account_stat(&self.monitor.gather(), account);
        let body = self.sys.account_conns_event(&st);
        self.reply(reply, body);
    }

    /// The shutdown event, delivered before the shards close their
    /// clients: shard 0 has published it once it answers the next
    /// control message, and peers get a moment to deliver theirs.
    fn shutdown(&self) {
        let (subject, body) = self.sys.shutdown_event();
        self.publish(self.sys.account_id, &subject, None, body);
        self.flush();
        if let Some(link) = self.plane.links.first() {
            let (tx, rx) = std::sync::mpsc::channel();
            if link.send(Control::Snapshot(Query::default(), tx)) {
                let _ = rx.recv_timeout(Duration::from_millis(500));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
