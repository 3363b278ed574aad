//! What a shard reports to monitoring: plain, sendable copies of its
//! counters and connections, built on the shard's own thread when the
//! monitoring thread asks ([`crate::shard::Control::Snapshot`]). Nothing
//! here is shared with the message path.
//!
//! A request says what it needs ([`Query`]), so the shard does no more
//! than that: `/varz` needs counters only, and `/connz` a page, in two
//! steps. First each shard filters cheap per-connection figures
//! ([`ConnBrief`]) and sends the first `offset + limit` in the requested
//! order; the monitoring thread merges them with the same comparator
//! ([`ConnSort::cmp`]), which is exact because the order is total (ties
//! fall back to the cid), and cuts the page. Then it asks for the page's
//! connections by id, so full [`ConnInfo`]s are built for the page only,
//! however many shards there are.

use std::cmp::Ordering;
use std::time::{Duration, SystemTime};

use crate::security::account::AccountId;

/// What one snapshot must carry.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub open: ConnSelect,
    /// Recently closed connections too (all of them).
    pub closed: bool,
    /// Service responses still awaited.
    pub responses: bool,
}

/// A request forwarded over a service import whose response is still
/// awaited: the reply subject the exporter sees, and where the response
/// goes back to.
#[derive(Clone, Debug)]
pub struct PendingResponse {
    pub exporter: String,
    /// `_R_.<shard>.<token>`.
    pub subject: String,
    pub importer: String,
    /// The requester's reply subject.
    pub reply: String,
    pub share: bool,
}

/// Which open connections a snapshot carries in full.
#[derive(Clone, Debug, Default)]
pub enum ConnSelect {
    /// None: counters only.
    #[default]
    None,
    /// Every one, with subscriptions.
    All,
    /// The figures of the first `keep` matching `filter` in `sort` order
    /// (into [`ShardSnapshot::briefs`]).
    Page {
        filter: ConnFilter,
        sort: ConnSort,
        keep: usize,
    },
    /// These connections (those this shard has), in full.
    Cids {
        cids: Vec<u64>,
        /// Fill in subscription lists.
        subs: bool,
        /// Fill in TLS peer certificates.
        auth: bool,
    },
}

/// Which connections a `/connz` page considers. `acc` decides the total;
/// the rest only the listing.
#[derive(Clone, Debug, Default)]
pub struct ConnFilter {
    /// Account name ("" for any).
    pub acc: String,
    /// CONNECT's user name ("" for any).
    pub user: String,
    /// One connection id (0 for any).
    pub cid: u64,
    /// A subscription must collide with this subject ("" for any).
    pub subject: String,
    /// An MQTT client id: natrix has no MQTT clients, so a non-empty one
    /// matches nothing.
    pub mqtt_client: String,
}

/// The reference's `/connz` sort orders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConnSort {
    #[default]
    Cid,
    Start,
    Subs,
    Pending,
    MsgsTo,
    MsgsFrom,
    BytesTo,
    BytesFrom,
    Last,
    Idle,
    Uptime,
    Stop,
    Reason,
}

impl ConnSort {
    /// The order a `sort` value names ("" for the default).
    pub fn parse(s: &str) -> Option<ConnSort> {
        Some(match s {
            "" | "cid" => ConnSort::Cid,
            "start" => ConnSort::Start,
            "subs" => ConnSort::Subs,
            "pending" => ConnSort::Pending,
            "msgs_to" => ConnSort::MsgsTo,
            "msgs_from" => ConnSort::MsgsFrom,
            "bytes_to" => ConnSort::BytesTo,
            "bytes_from" => ConnSort::BytesFrom,
            "last" => ConnSort::Last,
            "idle" => ConnSort::Idle,
            "uptime" => ConnSort::Uptime,
            "stop" => ConnSort::Stop,
            "reason" => ConnSort::Reason,
            _ => return None,
        })
    }

    /// The reference's order: most first for counters and recency, longest
    /// first for idle time, shortest first for uptime, then by cid.
    pub fn cmp(self, a: &ConnBrief, b: &ConnBrief, now: SystemTime) -> Ordering {
        let since = |l: SystemTime, e: SystemTime| l.duration_since(e).unwrap_or_default();
        let end = |c: &ConnBrief| c.stop.unwrap_or(now);
        let o = match self {
            ConnSort::Cid => Ordering::Equal,
            ConnSort::Start => a.start.cmp(&b.start),
            ConnSort::Subs => b.num_subs.cmp(&a.num_subs),
            ConnSort::Pending => b.pending.cmp(&a.pending),
            ConnSort::MsgsTo => b.out_msgs.cmp(&a.out_msgs),
            ConnSort::MsgsFrom => b.in_msgs.cmp(&a.in_msgs),
            ConnSort::BytesTo => b.out_bytes.cmp(&a.out_bytes),
            ConnSort::BytesFrom => b.in_bytes.cmp(&a.in_bytes),
            ConnSort::Last => b.last_activity.cmp(&a.last_activity),
            // The time between start and last activity, longest first.
            ConnSort::Idle => since(b.last_activity, b.start).cmp(&since(a.last_activity, a.start)),
            ConnSort::Uptime => since(end(a), a.start).cmp(&since(end(b), b.start)),
            ConnSort::Stop => b.stop.cmp(&a.stop),
            ConnSort::Reason => a.reason.cmp(&b.reason),
        };
        o.then(a.cid.cmp(&b.cid))
    }
}

/// The figures a connection is filtered and sorted by: cheap to take, no
/// allocation.
#[derive(Clone, Copy, Debug)]
pub struct ConnBrief {
    pub cid: u64,
    pub account: AccountId,
    pub start: SystemTime,
    pub last_activity: SystemTime,
    pub stop: Option<SystemTime>,
    pub reason: Option<&'static str>,
    pub pending: usize,
    pub num_subs: usize,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
}

/// A TLS client certificate as `/connz` shows it with `auth`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PeerCert {
    pub subject: String,
    pub spki_sha256: String,
    pub cert_sha256: String,
}

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
    /// The client's certificate chain (filled only when asked for).
    pub tls_peer_certs: Vec<PeerCert>,
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
    /// Subscriptions (filled only when asked for; `num_subs` counts them
    /// always).
    pub subs: Vec<SubInfo>,
    pub num_subs: usize,
    /// The shard that owns (owned) the connection.
    pub shard: usize,
}

impl ConnInfo {
    pub fn brief(&self) -> ConnBrief {
        ConnBrief {
            cid: self.cid,
            account: 0,
            start: self.start,
            last_activity: self.last_activity,
            stop: self.stop,
            reason: self.reason,
            pending: self.pending,
            num_subs: self.num_subs,
            in_msgs: self.in_msgs,
            out_msgs: self.out_msgs,
            in_bytes: self.in_bytes,
            out_bytes: self.out_bytes,
        }
    }
}

/// A certificate chain as `/connz` shows it: the subject as Go's
/// `pkix.Name.String()` writes it, and hex SHA-256 of the subject public
/// key info and of the whole certificate.
pub fn peer_certs(chain: &[rustls::pki_types::CertificateDer<'_>]) -> Vec<PeerCert> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let hex = |b: &[u8]| {
        let d = ring::digest::digest(&ring::digest::SHA256, b);
        d.as_ref()
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    chain
        .iter()
        .filter_map(|der| {
            let (_, c) = X509Certificate::from_der(der.as_ref()).ok()?;
            Some(PeerCert {
                subject: go_name(c.subject()),
                spki_sha256: hex(c.tbs_certificate.subject_pki.raw),
                cert_sha256: hex(der.as_ref()),
            })
        })
        .collect()
}

/// A distinguished name as Go's `pkix.Name.String()`: the attributes Go
/// knows by name in its fixed order (C, ST, L, STREET, POSTALCODE, O, OU,
/// CN, SERIALNUMBER) after any others, each value its own RDN, the whole
/// written last first.
fn go_name(name: &x509_parser::x509::X509Name<'_>) -> String {
    const KNOWN: [(&str, &str); 9] = [
        ("2.5.4.6", "C"),
        ("2.5.4.8", "ST"),
        ("2.5.4.7", "L"),
        ("2.5.4.9", "STREET"),
        ("2.5.4.17", "POSTALCODE"),
        ("2.5.4.10", "O"),
        ("2.5.4.11", "OU"),
        ("2.5.4.3", "CN"),
        ("2.5.4.5", "SERIALNUMBER"),
    ];
    let attrs: Vec<(String, String)> = name
        .iter_attributes()
        .map(|a| {
            let v = a.as_str().map(escape_dn).unwrap_or_else(|_| {
                let hex: String = a.as_slice().iter().map(|b| format!("{b:02x}")).collect();
                format!("#{hex}")
            });
            (a.attr_type().to_id_string(), v)
        })
        .collect();
    let mut seq: Vec<String> = attrs
        .iter()
        .filter(|(oid, _)| KNOWN.iter().all(|(k, _)| k != oid))
        .map(|(oid, v)| format!("{oid}={v}"))
        .collect();
    for (oid, short) in KNOWN {
        seq.extend(
            attrs
                .iter()
                .filter(|(o, _)| o == oid)
                .map(|(_, v)| format!("{short}={v}")),
        );
    }
    seq.reverse();
    seq.join(",")
}

/// RFC 4514 escaping, as Go applies it to attribute values.
fn escape_dn(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let n = v.chars().count();
    for (i, ch) in v.chars().enumerate() {
        let special = matches!(ch, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (ch == ' ' || ch == '#'))
            || (i + 1 == n && ch == ' ');
        if special {
            out.push('\\');
        }
        out.push(ch);
    }
    out
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
    /// Open connections on the shard.
    pub num_conns: usize,
    /// Open connections of the page's account (all of them without one).
    pub matched: usize,
    /// The open connections the query selected.
    pub conns: Vec<ConnInfo>,
    /// A page's candidates: their figures only.
    pub briefs: Vec<ConnBrief>,
    /// Recently closed connections, oldest first (when asked for).
    pub closed: Vec<ConnInfo>,
    /// The server's own subscriptions (with every open connection).
    pub internal_subs: Vec<SubInfo>,
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
    /// Recent CPU use in tenths of a core, as placement sees it.
    pub busy_tenths: usize,
    /// The CPUs the shard's thread may run on: one when it is pinned.
    pub cpus: Vec<usize>,
    pub accounts: Vec<AccountCounters>,
    /// Service responses awaited (when asked for).
    pub responses: Vec<PendingResponse>,
    /// Message batches queued for each peer shard, not yet handed to the
    /// mesh (natrix's internal queues, as `/ipqueuesz` reports them).
    pub mesh_pending: Vec<(usize, usize)>,
}
