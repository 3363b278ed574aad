//! `/subsz`: subject index statistics, and with `subs` the subscriptions
//! themselves, filtered by account and by a subject they match.

use serde::Serialize;

use super::gojson::Fields;
use super::http::{Request, Response};
use super::query::{decode_bool, decode_int};
use super::snapshot::{ConnSelect, Query, SubInfo, SublistStats};
use super::{is_zero, Monitor, DEFAULT_SUB_LIST};
use crate::timefmt::rfc3339;

/// The reference's `SubszOptions`.
#[derive(Debug, Default)]
pub struct SubszOptions {
    pub offset: i64,
    pub limit: i64,
    pub subs: bool,
    pub acc: String,
    pub test: String,
}

impl SubszOptions {
    pub fn from_query(r: &Request) -> Result<SubszOptions, Response> {
        Ok(SubszOptions {
            subs: decode_bool(r, "subs")?,
            offset: decode_int(r, "offset")?,
            limit: decode_int(r, "limit")?,
            test: r.get("test").to_string(),
            acc: r.get("acc").to_string(),
        })
    }

    pub fn from_json(f: &Fields) -> Result<SubszOptions, String> {
        Ok(SubszOptions {
            offset: f.int("offset")?,
            limit: f.int("limit")?,
            subs: f.bool("subscriptions")?,
            acc: f.string("account")?,
            test: f.string("test")?,
        })
    }
}

/// One subscription as the reference's `SubDetail`.
#[derive(Serialize)]
pub struct SubDetailJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<String>,
    subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    qgroup: Option<String>,
    sid: String,
    msgs: u64,
    #[serde(skip_serializing_if = "is_zero")]
    max: u64,
    cid: u64,
}

impl SubDetailJson {
    pub fn of(s: &SubInfo, with_account: bool) -> Self {
        SubDetailJson {
            account: with_account.then(|| s.account.clone()),
            subject: s.subject.clone(),
            qgroup: s.queue.clone(),
            sid: s.sid.clone(),
            msgs: s.msgs,
            max: s.max,
            cid: s.cid,
        }
    }
}

/// A subject index's statistics as the reference's `SublistStats`.
#[derive(Serialize)]
pub struct SublistJson {
    num_subscriptions: u64,
    num_cache: u64,
    num_inserts: u64,
    num_removes: u64,
    num_matches: u64,
    cache_hit_rate: f64,
    max_fanout: u64,
    avg_fanout: f64,
}

impl From<&SublistStats> for SublistJson {
    fn from(s: &SublistStats) -> Self {
        SublistJson {
            num_subscriptions: s.subscriptions,
            num_cache: s.cache,
            num_inserts: s.inserts,
            num_removes: s.removes,
            num_matches: s.matches,
            cache_hit_rate: if s.matches > 0 {
                s.cache_hits as f64 / s.matches as f64
            } else {
                0.0
            },
            max_fanout: s.max_fanout,
            avg_fanout: if s.cache > 0 {
                s.total_fanout as f64 / s.cache as f64
            } else {
                0.0
            },
        }
    }
}

/// The reference's `Subsz`: statistics and a page of subscriptions.
#[derive(Serialize)]
pub struct Subsz {
    server_id: String,
    now: String,
    #[serde(flatten)]
    stats: SublistJson,
    total: usize,
    offset: usize,
    limit: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions_list: Vec<SubDetailJson>,
}

/// What HTTP answers: the statistics alone when no subscription is
/// listed, as the reference.
#[derive(Serialize)]
#[serde(untagged)]
pub enum SubszHttp {
    Stats(SublistJson),
    Full(Subsz),
}

impl Subsz {
    pub fn for_http(self) -> SubszHttp {
        if self.subscriptions_list.is_empty() {
            SubszHttp::Stats(self.stats)
        } else {
            SubszHttp::Full(self)
        }
    }
}

impl Monitor {
    pub(super) fn subsz(&self, o: &SubszOptions) -> Result<Subsz, String> {
        let offset = o.offset.max(0) as usize;
        let limit = if o.limit <= 0 {
            DEFAULT_SUB_LIST
        } else {
            o.limit as usize
        };
        let (test, acc) = (o.test.as_str(), o.acc.as_str());
        if !test.is_empty() && !crate::subject::valid_literal(test.as_bytes()) {
            return Err(format!(
                "invalid test subject, must be valid publish subject: {test}"
            ));
        }
        let m = self.gather_for(Query {
            open: if o.subs {
                ConnSelect::All
            } else {
                ConnSelect::None
            },
            closed: false,
            responses: false,
        });
        let mut stats = SublistStats::default();
        for a in m.accounts.values() {
            if acc.is_empty() || a.name == acc {
                stats.add(&a.sublist);
            }
        }
        let mut sz = Subsz {
            server_id: self.info.server_id.clone(),
            now: rfc3339(self.now()),
            stats: SublistJson::from(&stats),
            total: 0,
            offset,
            limit,
            subscriptions_list: Vec::new(),
        };
        if !o.subs {
            return Ok(sz);
        }
        let mut all: Vec<&SubInfo> = m
            .open()
            .flat_map(|c| c.subs.iter())
            .chain(m.internal_subs())
            .filter(|s| acc.is_empty() || s.account == acc)
            .filter(|s| {
                test.is_empty() || crate::subject::matches(s.subject.as_bytes(), test.as_bytes())
            })
            .collect();
        all.sort_by(|a, b| (a.cid, a.sid.len(), &a.sid).cmp(&(b.cid, b.sid.len(), &b.sid)));
        let lo = offset.min(all.len());
        let hi = offset.saturating_add(limit).min(all.len());
        let page: Vec<SubDetailJson> = all[lo..hi]
            .iter()
            .map(|s| SubDetailJson::of(s, true))
            .collect();
        sz.total = page.len();
        sz.subscriptions_list = page;
        Ok(sz)
    }
}
