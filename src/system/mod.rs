//! The system account: the server's events and the requests it answers
//! under `$SYS`, with the reference's subjects and JSON shapes.
//!
//! Two halves, neither on the message path:
//! - **Events** are published by the shard where they happen (a client
//!   connects, leaves, or fails authentication), straight into the system
//!   account's subject space like any internal publish ([`System`] builds
//!   the JSON). They cost nothing per message.
//! - **Requests** (`$SYS.REQ.…`) reach internal subscriptions that shard 0
//!   holds in the system account; each delivery is copied to the service
//!   thread ([`service`]), which gathers what it needs from the shards over
//!   their control channels, as monitoring does, and publishes the answer
//!   back through shard 0. Periodic events (STATSZ, account connection
//!   heartbeats) come from the same thread.

pub mod claims;
pub mod events;
pub mod service;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;

use crate::security::account::{account_id, AccountId};

pub use events::EventServer;

/// What shards hand to the service thread.
pub enum SysIn {
    /// A message delivered to one of the server's internal subscriptions,
    /// in account `account` (the system account, or an account importing
    /// one of its services).
    Request {
        account: AccountId,
        subject: String,
        reply: Option<String>,
        /// Header block (empty without headers) and payload.
        hdr: Vec<u8>,
        body: Vec<u8>,
    },
    /// Account `name`'s number of connections changed to `conns`.
    AccountConns { name: String, conns: u64 },
    /// The server is stopping: send the shutdown event, then acknowledge.
    Shutdown(Sender<()>),
}

/// The system account of a running server: who it is, and how shards
/// reach the service thread. Shared read-only by every shard.
pub struct System {
    pub account: String,
    pub account_id: AccountId,
    pub server_id: String,
    pub server_name: String,
    pub host: String,
    /// The events' sequence number, server-wide.
    seq: AtomicU64,
    /// Event ids: a random prefix and a counter, as unique as NUIDs.
    id_prefix: String,
    next_id: AtomicU64,
    tx: Sender<SysIn>,
}

/// The connection id internal subscriptions report as their owner; no
/// client has it, so `echo: false` never hides a system answer.
pub const INTERNAL_CID: u64 = u64::MAX;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl System {
    pub fn new(
        account: &str,
        server_id: &str,
        server_name: &str,
        host: &str,
        tx: Sender<SysIn>,
    ) -> System {
        let mut seed = [0u8; 12];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed);
        let id_prefix = seed
            .iter()
            .map(|b| BASE62[*b as usize % 62] as char)
            .collect();
        System {
            account: account.to_string(),
            account_id: account_id(account),
            server_id: server_id.to_string(),
            server_name: server_name.to_string(),
            host: host.to_string(),
            seq: AtomicU64::new(0),
            id_prefix,
            next_id: AtomicU64::new(1),
            tx,
        }
    }

    /// Hands `m` to the service thread; dropped quietly once it has
    /// stopped (the server is exiting).
    pub fn send(&self, m: SysIn) {
        let _ = self.tx.send(m);
    }

    /// The `server` object of an event or answer, with the next sequence
    /// number and the current time.
    pub fn server(&self) -> EventServer {
        EventServer {
            name: self.server_name.clone(),
            host: self.host.clone(),
            id: self.server_id.clone(),
            ver: crate::options::SERVER_VERSION.to_string(),
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            jetstream: false,
            time: crate::timefmt::rfc3339(std::time::SystemTime::now()),
        }
    }

    /// A fresh event id (22 characters, like the reference's NUIDs).
    pub fn event_id(&self) -> String {
        let mut n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut tail = [b'0'; 10];
        for c in tail.iter_mut().rev() {
            *c = BASE62[(n % 62) as usize];
            n /= 62;
        }
        let mut s = self.id_prefix.clone();
        s.push_str(std::str::from_utf8(&tail).unwrap_or_default());
        s
    }

    /// The internal subscriptions of the system account: (subject, queue).
    /// A directory resolver takes claim pushes without an account in the
    /// subject; a full one also answers lookup, list, pack and delete, as
    /// the reference's do.
    pub fn subscriptions(&self, mode: ClaimsMode) -> Vec<(String, Option<String>)> {
        let id = &self.server_id;
        let mut v: Vec<(String, Option<String>)> = Vec::new();
        let mut add = |s: String| v.push((s, None));
        add("$SYS.REQ.SERVER.PING".into());
        for x in SERVER_REQUESTS {
            add(format!("$SYS.REQ.SERVER.PING.{x}"));
            add(format!("$SYS.REQ.SERVER.{id}.{x}"));
        }
        for x in ACCOUNT_REQUESTS {
            add(format!("$SYS.REQ.ACCOUNT.*.{x}"));
        }
        add("$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE".into());
        add("$SYS.ACCOUNT.*.CLAIMS.UPDATE".into());
        if matches!(mode, ClaimsMode::Full | ClaimsMode::Cache) {
            add("$SYS.REQ.CLAIMS.UPDATE".into());
        }
        if mode == ClaimsMode::Full {
            add("$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP".into());
            add("$SYS.REQ.CLAIMS.LIST".into());
            add("$SYS.REQ.CLAIMS.DELETE".into());
            v.push(("$SYS.REQ.CLAIMS.PACK".into(), Some("responder".into())));
        }
        v
    }
}

/// How account claim pushes are taken, by the kind of account resolver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimsMode {
    /// `resolver { type: full }`: every pushed account is stored.
    Full,
    /// `resolver { type: cache }`: stored only when the account is in use.
    Cache,
    /// MEMORY, URL, or config mode: applied to an account in use, never
    /// stored.
    InUse,
}

impl ClaimsMode {
    pub fn of(opts: &crate::options::Options) -> ClaimsMode {
        use crate::config::DirResolverKind;
        match opts
            .security
            .auth
            .operator()
            .and_then(|op| op.resolver.directory())
        {
            Some(DirResolverKind::Full) => ClaimsMode::Full,
            Some(DirResolverKind::Cache) => ClaimsMode::Cache,
            None => ClaimsMode::InUse,
        }
    }
}

/// What `$SYS.REQ.SERVER.PING.<X>` and `$SYS.REQ.SERVER.<id>.<X>` answer.
pub const SERVER_REQUESTS: &[&str] = &[
    "STATSZ", "VARZ", "SUBSZ", "CONNZ", "ROUTEZ", "GATEWAYZ", "LEAFZ", "ACCOUNTZ", "JSZ", "HEALTHZ",
];

/// What `$SYS.REQ.ACCOUNT.<account>.<X>` answers.
pub const ACCOUNT_REQUESTS: &[&str] = &["SUBSZ", "CONNZ", "LEAFZ", "JSZ", "INFO", "STATZ", "CONNS"];

/// The service imports every account gets from the system account, as
/// the reference registers them: (subject in the account, the request it
/// maps to, `$SYS.REQ.ACCOUNT.<account>.<request>`).
pub const SYSTEM_IMPORTS: &[(&str, &str)] = &[
    ("$SYS.REQ.ACCOUNT.PING.CONNZ", "CONNZ"),
    ("$SYS.REQ.SERVER.PING.CONNZ", "CONNZ"),
    ("$SYS.REQ.ACCOUNT.PING.STATZ", "STATZ"),
];

/// The accounts that get [`SYSTEM_IMPORTS`], each with its own imports:
/// the global account and every account known at start but the system
/// account `sys`.
pub fn system_importers<'a>(
    security: &'a crate::security::account::Security,
    sys: &'a str,
) -> impl Iterator<Item = (&'a str, &'a [crate::config::Import])> {
    std::iter::once((crate::config::GLOBAL_ACCOUNT, &[][..]))
        .chain(
            security
                .accounts
                .iter()
                .map(|a| (a.name.as_str(), &a.imports[..])),
        )
        .filter(move |(name, _)| *name != sys)
}

/// The [`SYSTEM_IMPORTS`] an account with `own` imports gets: as in the
/// reference, one whose local subject the account imports a service to
/// itself is left out, so that service alone answers there.
pub fn system_imports_for(
    own: &[crate::config::Import],
) -> impl Iterator<Item = &'static (&'static str, &'static str)> + '_ {
    SYSTEM_IMPORTS.iter().filter(move |(local, _)| {
        !own.iter().any(
            |i| matches!(&i.kind, crate::config::ImportKind::Service { to, .. } if to == local),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_unique_and_nuid_sized() {
        let (tx, _rx) = std::sync::mpsc::channel();
        let s = System::new("$SYS", "NID", "n", "0.0.0.0", tx);
        let a = s.event_id();
        let b = s.event_id();
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        assert_eq!(s.server().seq + 1, s.server().seq);
    }

    #[test]
    fn directory_resolver_requests_only_with_one() {
        let (tx, _rx) = std::sync::mpsc::channel();
        let s = System::new("$SYS", "NID", "n", "0.0.0.0", tx);
        let plain = s.subscriptions(ClaimsMode::InUse);
        let full = s.subscriptions(ClaimsMode::Full);
        assert!(plain.iter().any(|(s, _)| s == "$SYS.REQ.SERVER.NID.VARZ"));
        assert!(!plain.iter().any(|(s, _)| s == "$SYS.REQ.CLAIMS.LIST"));
        assert!(full
            .iter()
            .any(|(s, q)| s == "$SYS.REQ.CLAIMS.PACK" && q.as_deref() == Some("responder")));
    }
}
