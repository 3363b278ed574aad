//! `/connz`: open and recently closed client connections, filtered,
//! sorted and paged as the reference does.
//!
//! The shards do the filtering and send each page's candidates as cheap
//! figures ([`ConnSelect::Page`]); this side merges them in the same
//! order, cuts the page, and then asks for just the page's connections
//! ([`ConnSelect::Cids`]). A closed connection is remembered with
//! everything (subscriptions included), so the closed list is filtered
//! here.

use std::collections::HashMap;
use std::time::SystemTime;

use serde::Serialize;

use super::gojson::Fields;
use super::http::{Request, Response};
use super::query::{decode_bool, decode_int, decode_u64};
use super::snapshot::{ConnBrief, ConnFilter, ConnInfo, ConnSelect, ConnSort, PeerCert, Query};
use super::subsz::SubDetailJson;
use super::{since, Monitor, DEFAULT_CONN_LIST};
use crate::timefmt::{go_duration, rfc3339, uptime};

/// Which connections: the reference's `ConnState` (0, 1, 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum State {
    #[default]
    Open,
    Closed,
    All,
    /// A number the reference has no state for: it lists nothing.
    Other,
}

/// The reference's `ConnzOptions`.
#[derive(Debug, Default)]
pub struct ConnzOptions {
    pub sort: String,
    pub auth: bool,
    pub subs: bool,
    pub subs_detail: bool,
    pub offset: i64,
    pub limit: i64,
    pub cid: u64,
    pub mqtt_client: String,
    pub state: State,
    pub user: String,
    pub acc: String,
    /// Only connections with a subscription colliding with this subject
    /// (needs `acc`; `$SYS` requests only).
    pub filter_subject: String,
}

impl ConnzOptions {
    pub fn from_query(r: &Request) -> Result<ConnzOptions, Response> {
        let subs_v = r.get("subs").to_ascii_lowercase();
        let subs_detail = subs_v == "detail";
        Ok(ConnzOptions {
            sort: r.get("sort").to_string(),
            auth: decode_bool(r, "auth")?,
            subs: !subs_detail && decode_bool(r, "subs")?,
            subs_detail,
            offset: decode_int(r, "offset")?,
            limit: decode_int(r, "limit")?,
            cid: decode_u64(r, "cid")?,
            state: match r.get("state").to_ascii_lowercase().as_str() {
                "" | "open" => State::Open,
                "closed" => State::Closed,
                "any" | "all" => State::All,
                other => {
                    return Err(Response::bad_request(format!(
                        "Error decoding state for {other}"
                    )))
                }
            },
            mqtt_client: r.get("mqtt_client").to_string(),
            user: r.get("user").to_string(),
            acc: r.get("acc").to_string(),
            filter_subject: String::new(),
        })
    }

    pub fn from_json(f: &Fields) -> Result<ConnzOptions, String> {
        Ok(ConnzOptions {
            sort: f.string_as("sort", "server.SortOpt")?,
            auth: f.bool("auth")?,
            subs: f.bool("subscriptions")?,
            subs_detail: f.bool("subscriptions_detail")?,
            offset: f.int("offset")?,
            limit: f.int("limit")?,
            cid: f.uint64("cid")?,
            mqtt_client: f.string("mqtt_client")?,
            state: match f.int_as("state", "server.ConnState")? {
                0 => State::Open,
                1 => State::Closed,
                2 => State::All,
                _ => State::Other,
            },
            user: f.string("user")?,
            acc: f.string("acc")?,
            filter_subject: f.string("filter_subject")?,
        })
    }
}

/// One connection as `/connz` writes it. (`mqtt_client` is omitted when
/// empty, and natrix has no MQTT clients.)
#[derive(Serialize)]
pub struct ConnJson {
    cid: u64,
    kind: &'static str,
    #[serde(rename = "type")]
    typ: &'static str,
    ip: String,
    port: u16,
    start: String,
    last_activity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    rtt: String,
    uptime: String,
    idle: String,
    pending_bytes: usize,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    subscriptions: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lang: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cipher_suite: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tls_peer_certs: Vec<PeerCert>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorized_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscriptions_list: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscriptions_list_detail: Option<Vec<SubDetailJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name_tag: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
}

impl ConnJson {
    fn of(c: &ConnInfo, now: SystemTime, auth: bool, subs: bool, detail: bool) -> Self {
        let end = c.stop.unwrap_or(now);
        let has_subs = !c.subs.is_empty();
        // As the reference: an open connection shows its user (the nkey
        // for a JWT user), JWT details and peer certificates only with
        // auth; a closed one keeps its JWT details always, and as user
        // only CONNECT's name.
        let closed = c.stop.is_some();
        let jwt_details = auth || closed;
        let user = if closed { &c.connect_user } else { &c.user };
        let jwt_detail = |v: &Option<String>| v.clone().filter(|_| jwt_details);
        ConnJson {
            cid: c.cid,
            kind: "Client",
            typ: "nats",
            ip: c.ip.clone(),
            port: c.port,
            start: rfc3339(c.start),
            last_activity: rfc3339(c.last_activity),
            stop: c.stop.map(rfc3339),
            reason: c.reason,
            rtt: go_duration(c.rtt),
            uptime: uptime(since(end, c.start)),
            idle: uptime(since(end, c.last_activity)),
            pending_bytes: c.pending,
            in_msgs: c.in_msgs,
            out_msgs: c.out_msgs,
            in_bytes: c.in_bytes,
            out_bytes: c.out_bytes,
            subscriptions: c.num_subs,
            name: c.name.clone(),
            lang: c.lang.clone(),
            version: c.version.clone(),
            tls_version: c.tls_version.clone(),
            tls_cipher_suite: c.tls_cipher.clone(),
            tls_peer_certs: if auth && !closed {
                c.tls_peer_certs.clone()
            } else {
                Vec::new()
            },
            authorized_user: (auth && !user.is_empty()).then(|| user.clone()),
            account: (auth && c.account != crate::config::GLOBAL_ACCOUNT)
                .then(|| c.account.clone()),
            subscriptions_list: (subs && !detail && has_subs)
                .then(|| c.subs.iter().map(|s| s.subject.clone()).collect()),
            subscriptions_list_detail: (detail && has_subs)
                .then(|| c.subs.iter().map(|s| SubDetailJson::of(s, false)).collect()),
            jwt: jwt_detail(&c.jwt),
            issuer_key: jwt_detail(&c.issuer_key),
            name_tag: jwt_detail(&c.name_tag),
            tags: if jwt_details {
                c.tags.clone()
            } else {
                Vec::new()
            },
        }
    }
}

#[derive(Serialize)]
pub struct Connz {
    server_id: String,
    now: String,
    num_connections: usize,
    total: usize,
    offset: usize,
    limit: usize,
    connections: Option<Vec<ConnJson>>,
}

impl Monitor {
    pub(super) fn connz(&self, o: &ConnzOptions) -> Result<Connz, String> {
        let sort = ConnSort::parse(&o.sort)
            .ok_or_else(|| format!("invalid sorting option: {}", o.sort))?;
        let offset = o.offset.max(0) as usize;
        let mut limit = if o.limit <= 0 {
            DEFAULT_CONN_LIST
        } else {
            o.limit as usize
        };
        let state = o.state;
        for (s, name) in [(ConnSort::Stop, "stop"), (ConnSort::Reason, "reason")] {
            if sort == s && state != State::Closed {
                return Err(format!("sort by {name} only valid on closed connections"));
            }
        }
        if o.cid > 0 {
            limit = 1;
        }
        let mut subject = String::new();
        if !o.filter_subject.is_empty() && o.filter_subject != ">" {
            if o.acc.is_empty() {
                return Err("filter by subject only valid with account filtering".into());
            }
            subject = o.filter_subject.clone();
        }
        let now = self.now();
        // The reference answers an unknown account early: no server id,
        // no total, and a null list.
        if !o.acc.is_empty() && !crate::security::account::account_names().contains(&o.acc) {
            return Ok(Connz {
                server_id: String::new(),
                now: rfc3339(now),
                num_connections: 0,
                total: 0,
                offset,
                limit,
                connections: None,
            });
        }
        let filter = ConnFilter {
            acc: o.acc.clone(),
            user: o.user.clone(),
            cid: o.cid,
            subject,
            mqtt_client: o.mqtt_client.clone(),
        };
        let want_open = matches!(state, State::Open | State::All);
        let want_closed = matches!(state, State::Closed | State::All);
        // With a cid, closed states search the closed connections only.
        let list_open = want_open && !(o.cid > 0 && want_closed);
        let m = self.gather_for(Query {
            open: if want_open {
                ConnSelect::Page {
                    filter,
                    sort,
                    keep: if list_open {
                        offset.saturating_add(limit)
                    } else {
                        0
                    },
                }
            } else {
                ConnSelect::None
            },
            closed: want_closed,
            responses: false,
        });
        let in_acc = |c: &ConnInfo| o.acc.is_empty() || c.account == o.acc;
        let closed: Vec<&ConnInfo> = if want_closed {
            m.closed().into_iter().filter(|c| in_acc(c)).collect()
        } else {
            Vec::new()
        };
        let open_total: usize = if want_open {
            m.shards.iter().map(|s| s.matched).sum()
        } else {
            0
        };
        let total = open_total + closed.len();
        // Candidates: open ones by their figures, closed ones in full.
        let mut list: Vec<(ConnBrief, Option<&ConnInfo>)> = m
            .shards
            .iter()
            .flat_map(|s| s.briefs.iter().map(|b| (*b, None)))
            .collect();
        let closed = closed.into_iter().filter(|c| {
            if o.cid > 0 {
                c.cid == o.cid
            } else {
                (o.user.is_empty() || c.connect_user == o.user) && o.mqtt_client.is_empty()
            }
        });
        list.extend(
            closed
                .take(if o.cid > 0 { 1 } else { usize::MAX })
                .map(|c| (c.brief(), Some(c))),
        );
        list.sort_by(|a, b| sort.cmp(&a.0, &b.0, now));
        let lo = offset.min(list.len());
        let hi = offset.saturating_add(limit).min(list.len());
        let page = &list[lo..hi];
        // The page's open connections, in full, from the shards that hold
        // them; one that closed meanwhile drops out of the page.
        let wanted: Vec<u64> = page
            .iter()
            .filter(|(_, c)| c.is_none())
            .map(|(b, _)| b.cid)
            .collect();
        let mut open: HashMap<u64, ConnInfo> = HashMap::new();
        if !wanted.is_empty() {
            let full = self.gather_for(Query {
                open: ConnSelect::Cids {
                    cids: wanted,
                    subs: o.subs || o.subs_detail,
                    auth: o.auth,
                },
                closed: false,
                responses: false,
            });
            open.extend(
                full.shards
                    .into_iter()
                    .flat_map(|s| s.conns)
                    .map(|c| (c.cid, c)),
            );
        }
        let page: Vec<ConnJson> = page
            .iter()
            .filter_map(|(b, c)| c.or_else(|| open.get(&b.cid)))
            .map(|c| ConnJson::of(c, now, o.auth, o.subs, o.subs_detail))
            .collect();
        Ok(Connz {
            server_id: self.info.server_id.clone(),
            now: rfc3339(now),
            num_connections: page.len(),
            total,
            offset,
            limit,
            connections: Some(page),
        })
    }
}
