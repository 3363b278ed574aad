//! `/accountz` (the accounts, or one account's detail) and `/accstatz`
//! (per-account traffic), with the reference's field names and omitempty
//! rules.
//!
//! natrix refuses subject mappings in the configuration, so an account
//! never has `mappings` (omitted when empty, as in the reference). An
//! exporting account's `responses` are the service requests it was sent
//! whose responses are still awaited, gathered from every shard.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;

use super::gojson::Fields;
use super::http::{Request, Response};
use super::query::decode_bool;
use super::snapshot::Query;
use super::subsz::SublistJson;
use super::{is_zero, Monitor};
use crate::config::{Export, ExportKind, Import, ImportKind, ResponseType, ServiceLatency};
use crate::timefmt::rfc3339;

/// The reference's `AccountzOptions`.
#[derive(Debug, Default)]
pub struct AccountzOptions {
    pub acc: String,
}

impl AccountzOptions {
    pub fn from_query(r: &Request) -> AccountzOptions {
        AccountzOptions {
            acc: r.get("acc").to_string(),
        }
    }

    pub fn from_json(f: &Fields) -> Result<AccountzOptions, String> {
        Ok(AccountzOptions {
            acc: f.string("account")?,
        })
    }
}

/// The reference's `AccountStatzOptions`.
#[derive(Debug, Default)]
pub struct AccstatzOptions {
    /// Only these accounts (all when empty).
    pub accounts: Vec<String>,
    pub include_unused: bool,
}

impl AccstatzOptions {
    pub fn from_query(r: &Request) -> Result<AccstatzOptions, Response> {
        Ok(AccstatzOptions {
            accounts: Vec::new(),
            include_unused: decode_bool(r, "unused")?,
        })
    }

    pub fn from_json(f: &Fields) -> Result<AccstatzOptions, String> {
        Ok(AccstatzOptions {
            accounts: f.strings("accounts")?,
            include_unused: f.bool("include_unused")?,
        })
    }
}

/// Unix seconds as the reference writes `time.Unix(v, 0)`.
fn unix_time(secs: i64) -> String {
    let t = if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    };
    rfc3339(t)
}

/// Revocations (key → unix seconds) as times, from a JWT's JSON.
fn revocations(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, t)| Some((k.clone(), unix_time(t.as_i64()?))))
                .collect()
        })
        .unwrap_or_default()
}

/// Latency tracking as the reference's `jwt.ServiceLatency`: a sampling
/// of 0 means "headers".
#[derive(Serialize)]
struct LatencyJson {
    sampling: Value,
    results: String,
}

impl LatencyJson {
    fn of(l: &ServiceLatency) -> Self {
        LatencyJson {
            sampling: if l.sampling == 0 {
                "headers".into()
            } else {
                l.sampling.into()
            },
            results: l.subject.clone(),
        }
    }
}

/// An export as the reference's `/accountz` writes it.
#[derive(Serialize)]
struct ExportJson {
    subject: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    token_req: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_latency: Option<LatencyJson>,
    #[serde(skip_serializing_if = "is_zero")]
    account_token_position: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    approved_accounts: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    revoked_activations: BTreeMap<String, String>,
}

impl ExportJson {
    /// `claims`: the account JWT's exports, where the activation
    /// revocations are.
    fn of(e: &Export, claims: &[Value]) -> Self {
        let (kind, response_type, latency) = match &e.kind {
            ExportKind::Stream => ("stream", None, None),
            ExportKind::Service {
                response_type,
                latency,
                ..
            } => (
                "service",
                Some(match response_type {
                    ResponseType::Singleton => "Singleton",
                    ResponseType::Stream => "Streamed",
                    ResponseType::Chunked => "Chunked",
                }),
                latency.as_ref().map(LatencyJson::of),
            ),
        };
        let claim = claims.iter().find(|c| {
            c.get("subject").and_then(Value::as_str) == Some(e.subject.as_str())
                && c.get("type").and_then(Value::as_str).unwrap_or("stream") == kind
        });
        ExportJson {
            subject: e.subject.clone(),
            kind,
            // An empty approval list is what a token-required JWT export
            // without activations becomes.
            token_req: e.accounts.as_ref().is_some_and(|a| a.is_empty()),
            response_type,
            service_latency: latency,
            account_token_position: e.account_token_position.into(),
            approved_accounts: e.accounts.clone().unwrap_or_default(),
            revoked_activations: revocations(claim.and_then(|c| c.get("revocations"))),
        }
    }
}

/// An import as the reference's `/accountz` writes it: a service import's
/// `subject` is the local subject and `to` the exported one; it carries
/// the export's latency tracking.
#[derive(Serialize)]
struct ImportJson {
    subject: String,
    account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    local_subject: Option<String>,
    #[serde(rename = "type")]
    kind: Value,
    invalid: bool,
    share: bool,
    tracking: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency: Option<LatencyJson>,
}

impl ImportJson {
    fn of(i: &Import, accounts: &[crate::config::Account]) -> Self {
        match &i.kind {
            ImportKind::Stream { prefix, to } => ImportJson {
                subject: i.subject.clone(),
                account: i.account.clone(),
                to: None,
                local_subject: Some(crate::security::account::stream_import_local(
                    &i.subject,
                    prefix.as_deref(),
                    to.as_deref(),
                )),
                kind: "stream".into(),
                invalid: false,
                share: false,
                tracking: false,
                latency: None,
            },
            ImportKind::Service { to, share } => {
                let latency = accounts
                    .iter()
                    .find(|a| a.name == i.account)
                    .and_then(|a| {
                        a.exports.iter().find_map(|e| match &e.kind {
                            ExportKind::Service { latency, .. }
                                if crate::subject::subset(
                                    i.subject.as_bytes(),
                                    e.subject.as_bytes(),
                                ) =>
                            {
                                latency.as_ref()
                            }
                            _ => None,
                        })
                    })
                    .map(LatencyJson::of);
                ImportJson {
                    subject: to.clone(),
                    account: i.account.clone(),
                    to: Some(i.subject.clone()),
                    local_subject: None,
                    kind: "service".into(),
                    invalid: false,
                    share: *share,
                    tracking: false,
                    latency,
                }
            }
        }
    }
}

/// The service imports every account but the system account has from it,
/// as the reference adds them: `$SYS.REQ.ACCOUNT.PING.CONNZ` and
/// `$SYS.REQ.SERVER.PING.CONNZ` answer with its own connections,
/// `$SYS.REQ.ACCOUNT.PING.STATZ` with its statistics.
fn system_imports(acc: &str, sys: &str, own: &[Import]) -> Vec<ImportJson> {
    crate::system::system_imports_for(own)
        .map(|(local, what)| ImportJson {
            subject: (*local).to_string(),
            account: sys.to_string(),
            to: Some(format!("$SYS.REQ.ACCOUNT.{acc}.{what}")),
            local_subject: None,
            kind: "service".into(),
            invalid: false,
            share: false,
            tracking: false,
            latency: None,
        })
        .collect()
}

/// The service exports behind [`system_imports`], which the system account
/// gets unless it exports a subject covering them itself. (The reference
/// also exports `$SYS.DEBUG.SUBSCRIBERS`, which natrix does not serve.)
fn system_exports(own: &[Export]) -> Vec<ExportJson> {
    ["CONNZ", "STATZ"]
        .iter()
        .map(|what| format!("$SYS.REQ.ACCOUNT.*.{what}"))
        .filter(|subject| {
            !own.iter().any(|e| {
                matches!(e.kind, ExportKind::Service { .. })
                    && crate::subject::subset(subject.as_bytes(), e.subject.as_bytes())
            })
        })
        .map(|subject| ExportJson {
            subject,
            kind: "service",
            token_req: false,
            response_type: Some("Streamed"),
            service_latency: None,
            account_token_position: 0,
            approved_accounts: Vec::new(),
            revoked_activations: BTreeMap::new(),
        })
        .collect()
}

/// The claims of a JWT (its middle part), as JSON.
fn decode_claims(jwt: &str) -> Option<Value> {
    let part = jwt.split('.').nth(1)?;
    let bytes = crate::security::auth::base64_decode(part)?;
    serde_json::from_slice(&bytes).ok()
}

/// The reference's `AccountInfo`.
#[derive(Serialize)]
pub struct AccountInfo {
    account_name: String,
    update_time: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    is_system: bool,
    expired: bool,
    complete: bool,
    jetstream_enabled: bool,
    leafnode_connections: u64,
    client_connections: u64,
    subscriptions: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exports: Vec<ExportJson>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    imports: Vec<ImportJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name_tag: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decoded_jwt: Option<Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    revoked_user: BTreeMap<String, String>,
    sublist_stats: SublistJson,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    responses: BTreeMap<String, ImportJson>,
}

/// The reference's `Accountz`: the account names, or one's detail.
#[derive(Serialize)]
pub struct Accountz {
    server_id: String,
    now: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_account: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    accounts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_detail: Option<AccountInfo>,
}

#[derive(Serialize)]
struct DataJson {
    msgs: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct AccountStat {
    acc: String,
    conns: u64,
    leafnodes: u64,
    total_conns: u64,
    sent: DataJson,
    received: DataJson,
    slow_consumers: u64,
}

/// The reference's `AccountStatz`.
#[derive(Serialize)]
pub struct Accstatz {
    server_id: String,
    now: String,
    account_statz: Vec<AccountStat>,
}

impl Accstatz {
    pub fn is_empty(&self) -> bool {
        self.account_statz.is_empty()
    }
}

impl Monitor {
    pub(super) fn accountz(&self, o: &AccountzOptions) -> Result<Accountz, String> {
        let mut a = Accountz {
            server_id: self.info.server_id.clone(),
            now: rfc3339(self.now()),
            system_account: self.options().system_account(),
            accounts: Vec::new(),
            account_detail: None,
        };
        if o.acc.is_empty() {
            a.accounts = crate::security::account::account_names();
            a.accounts.sort();
        } else {
            a.account_detail = Some(self.account_info(&o.acc)?);
        }
        Ok(a)
    }

    /// One account's detail (the reference's `accountInfo`).
    pub(super) fn account_info(&self, acc: &str) -> Result<AccountInfo, String> {
        if !crate::security::account::account_names()
            .iter()
            .any(|a| a == acc)
        {
            return Err(format!("Account {acc} does not exist"));
        }
        let m = self.gather_for(Query {
            responses: true,
            ..Query::default()
        });
        let counters = m.accounts.get(acc).cloned().unwrap_or_default();
        // As the reference lists them: the reply subject the exporter saw,
        // the requester's account, and where the response goes.
        let responses = m
            .shards
            .iter()
            .flat_map(|s| &s.responses)
            .filter(|r| r.exporter == acc)
            .map(|r| {
                (
                    r.subject.clone(),
                    ImportJson {
                        subject: r.subject.clone(),
                        account: r.importer.clone(),
                        to: Some(r.reply.clone()),
                        local_subject: None,
                        // The reference writes these from a map, where
                        // jwt.ExportType's JSON method (on the pointer)
                        // does not apply: service is its number, 2.
                        kind: 2.into(),
                        invalid: false,
                        share: r.share,
                        tracking: false,
                        latency: None,
                    },
                )
            })
            .collect();
        let opts = self.options();
        let accounts = &opts.security.accounts;
        let cfg = accounts.iter().find(|a| a.name == acc);
        let now_unix = crate::security::operator::now();
        let jwt_acc = opts.security.auth.operator().and_then(|op| {
            // Loaded at start, else as the resolver last answered
            // (without asking it again).
            op.accounts()
                .find(|a| a.key == acc)
                .cloned()
                .or_else(|| op.account_at_hand(acc, now_unix).and_then(Result::ok))
        });
        let jwt_acc = jwt_acc.as_deref();
        let claims = jwt_acc.map(|j| decode_claims(&j.jwt)).unwrap_or_default();
        let claim_exports: Vec<Value> = claims
            .as_ref()
            .and_then(|c| c.pointer("/nats/exports"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut exports: Vec<ExportJson> = cfg
            .map(|a| {
                a.exports
                    .iter()
                    .map(|e| ExportJson::of(e, &claim_exports))
                    .collect()
            })
            .unwrap_or_default();
        let mut imports: Vec<ImportJson> = cfg
            .map(|a| {
                a.imports
                    .iter()
                    .map(|i| ImportJson::of(i, accounts))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(sys) = opts.system_account() {
            if sys == acc {
                exports.extend(system_exports(cfg.map_or(&[][..], |a| &a.exports[..])));
            } else if let Some((_, own)) =
                crate::system::system_importers(&opts.security, &sys).find(|(name, _)| *name == acc)
            {
                // Only the accounts the shards gave them (see
                // `Shard::sync_system_imports`).
                imports.extend(system_imports(acc, &sys, own));
            } else if jwt_acc.is_some() {
                // Fetched, without edges of its own: given them at its
                // first CONNECT (`Shard::ensure_system_imports`).
                imports.extend(system_imports(acc, &sys, &[]));
            }
        }
        Ok(AccountInfo {
            account_name: acc.to_string(),
            update_time: rfc3339(self.config_load_time()),
            is_system: opts.system_account().as_deref() == Some(acc),
            expired: jwt_acc.and_then(|j| j.exp).is_some_and(|e| now_unix >= e),
            complete: true,
            jetstream_enabled: false,
            leafnode_connections: 0,
            client_connections: counters.conns,
            subscriptions: counters.subscriptions,
            exports,
            imports,
            jwt: jwt_acc.map(|j| j.jwt.clone()),
            issuer_key: jwt_acc.map(|j| j.issuer.clone()),
            name_tag: jwt_acc.map(|j| j.name.clone()).filter(|n| !n.is_empty()),
            tags: jwt_acc.map_or_else(Vec::new, |j| j.claims.tags.0.clone()),
            revoked_user: revocations(claims.as_ref().and_then(|c| c.pointer("/nats/revocations"))),
            decoded_jwt: claims,
            sublist_stats: SublistJson::from(&counters.sublist),
            responses,
        })
    }

    pub(super) fn accstatz(&self, o: &AccstatzOptions) -> Accstatz {
        let m = self.gather();
        let mut names = crate::security::account::account_names();
        if o.accounts.is_empty() {
            names.sort();
        } else {
            names = o
                .accounts
                .iter()
                .filter(|a| names.contains(a))
                .cloned()
                .collect();
        }
        let mut out = Vec::new();
        for name in names {
            let a = m.accounts.get(&name).cloned().unwrap_or_default();
            if a.conns == 0 && !o.include_unused {
                continue;
            }
            out.push(AccountStat {
                acc: name,
                conns: a.conns,
                leafnodes: 0,
                total_conns: a.total_conns,
                sent: DataJson {
                    msgs: a.out_msgs,
                    bytes: a.out_bytes,
                },
                received: DataJson {
                    msgs: a.in_msgs,
                    bytes: a.in_bytes,
                },
                slow_consumers: a.slow_consumers,
            });
        }
        Accstatz {
            server_id: self.info.server_id.clone(),
            now: rfc3339(self.now()),
            account_statz: out,
        }
    }
}
