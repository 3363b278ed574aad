//! What a shard reports to monitoring: plain, sendable copies of its
//! counters and connections, built on the shard's own thread when the
//! monitoring thread asks ([`crate::shard::Control::Snapshot`]). Nothing
//! here is shared with the message path.

use std::time::{Duration, SystemTime};

/// One subscription of a connection.
#[derive(Clone, Debug)]
pub struct SubInfo {
    pub account: String,
    pub subject: String,
    pub queue: Option<String>,
    pub sid: String,
    pub msgs: u64,
    pub max: u64,
    pub cid: u64,
}

/// One connection, open or closed.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub cid: u64,
    pub ip: String,
    pub port: u16,
    pub start: SystemTime,
    pub last_activity: SystemTime,
    pub stop: Option<SystemTime>,
    pub reason: Option<&'static str>,
    pub rtt: Duration,
    pub pending: usize,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub name: Option<String>,
    pub lang: Option<String>,
    pub version: Option<String>,
    pub tls_version: Option<String>,
    pub tls_cipher: Option<String>,
    /// The authenticated user ("" without one).
    pub user: String,
    pub account: String,
    /// The user name CONNECT gave ("" without one): the reference's
    /// `user` filter, and `authorized_user` of a closed connection.
    pub connect_user: String,
    /// The JWT CONNECT gave, and for a JWT user its issuer (signing key
    /// or account), name and tags.
    pub jwt: Option<String>,
    pub issuer_key: Option<String>,
    pub name_tag: Option<String>,
    pub tags: Vec<String>,
    pub subs: Vec<SubInfo>,
    /// The shard that owns (owned) the connection.
    pub shard: usize,
}

/// One account's counters on one shard.
#[derive(Clone, Debug, Default)]
pub struct AccountCounters {
    pub name: String,
    pub conns: u64,
    pub total_conns: u64,
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
    pub slow_consumers: u64,
    pub subscriptions: u64,
    pub sublist: SublistStats,
}

/// A subject index's statistics, summed over indexes.
#[derive(Clone, Copy, Debug, Default)]
pub struct SublistStats {
    pub subscriptions: u64,
    pub cache: u64,
    pub inserts: u64,
    pub removes: u64,
    pub matches: u64,
    pub cache_hits: u64,
    pub max_fanout: u64,
    pub total_fanout: u64,
}

impl SublistStats {
    pub fn add(&mut self, o: &SublistStats) {
        self.subscriptions += o.subscriptions;
        self.cache += o.cache;
        self.inserts += o.inserts;
        self.removes += o.removes;
        self.matches += o.matches;
        self.cache_hits += o.cache_hits;
        self.max_fanout = self.max_fanout.max(o.max_fanout);
        self.total_fanout += o.total_fanout;
    }
}

/// Everything one shard reports.
#[derive(Clone, Debug, Default)]
pub struct ShardSnapshot {
    pub id: usize,
    pub conns: Vec<ConnInfo>,
    /// Recently closed connections, oldest first.
    pub closed: Vec<ConnInfo>,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub slow_consumers: u64,
    pub total_connections: u64,
    pub subscriptions: u64,
    pub mesh_out: u64,
    pub mesh_in: u64,
    pub stalled_ns: u64,
    /// CPU time of the shard's thread (user plus system).
    pub cpu_ns: u64,
    pub accounts: Vec<AccountCounters>,
}
