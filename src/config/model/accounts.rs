//! Multi-tenancy: the `accounts` block, per-account limits, and the
//! streams and services accounts export and import.
//!
//! Invariants: account names are case-sensitive, unique and never
//! [`GLOBAL_ACCOUNT`]; an account's users are added to
//! `ServerConfig::users` with the account's name and its default
//! permissions. An export is exactly one of a stream and a service, and
//! service-only options on a stream export are errors; a stream import has
//! at most one of `prefix` and `to`, and service import subjects are unique
//! within an account. Every import must name a defined account and be
//! covered by an export of the same kind that authorizes the importer (public,
//! by account list, or by token position); `Builder::check_exports_imports`
//! checks this once the tree is read, since accounts may come in any order.

use std::collections::BTreeSet;
use std::time::Duration;

use super::auth::{parse_users, permissions};
use super::refused::{account_jetstream, refuse_mappings};
use super::{
    duration_str, Builder, Field, Node, Permissions, ServerConfig, Spot, DEFAULT_LATENCY_SAMPLING,
    GLOBAL_ACCOUNT,
};
use crate::config::check::{is_subset_match, is_valid_public_nkey, is_valid_subject, NkeyKind};
use crate::config::{ConfigError, Value};
use crate::security::account::stream_import_local;
use crate::transform::{service_rename, stream_rename};
/// An account of the `accounts` block. Its users are in
/// [`ServerConfig::users`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Account {
    pub name: String,
    /// Public account nkey (`A...`).
    pub nkey: Option<String>,
    pub exports: Vec<Export>,
    pub imports: Vec<Import>,
    pub default_permissions: Option<Permissions>,
    pub limits: AccountLimits,
}

/// Per-account limits; -1 means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountLimits {
    pub max_connections: i32,
    pub max_subscriptions: i32,
    pub max_payload: i32,
    pub max_leafnodes: i32,
}

impl Default for AccountLimits {
    fn default() -> Self {
        AccountLimits {
            max_connections: -1,
            max_subscriptions: -1,
            max_payload: -1,
            max_leafnodes: -1,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Export {
    pub subject: String,
    pub kind: ExportKind,
    /// Accounts allowed to import; `None` means public.
    pub accounts: Option<Vec<String>>,
    /// When non-zero, an importer is authorized if the subject token at
    /// this 1-based position equals its account name.
    pub account_token_position: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExportKind {
    Stream,
    Service {
        response_type: ResponseType,
        /// Time after which a pending response is considered lost.
        response_threshold: Option<Duration>,
        latency: Option<ServiceLatency>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ResponseType {
    #[default]
    Singleton,
    Stream,
    Chunked,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceLatency {
    /// Subject latency reports are published on.
    pub subject: String,
    /// Percentage of requests sampled (1-100); 0 means only requests that
    /// carry tracing headers.
    pub sampling: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    /// The exporting account.
    pub account: String,
    /// The subject as exported by `account`.
    pub subject: String,
    pub kind: ImportKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportKind {
    Stream {
        /// Prepended (with a dot) to imported subjects.
        prefix: Option<String>,
        /// Local subject the stream is mapped to.
        to: Option<String>,
    },
    Service {
        /// Local subject requests are published on (defaults to `subject`).
        to: String,
        /// Share the requester's connection information with the exporter.
        share: bool,
    },
}

impl Builder {
    pub(super) fn accounts(
        &mut self,
        cfg: &mut ServerConfig,
        f: &Field<'_>,
    ) -> Result<(), ConfigError> {
        const KEYS: &[&str] = &[
            "nkey",
            "imports",
            "exports",
            "jetstream",
            "users",
            "default_permissions",
            "mappings",
            "maps",
            "limits",
        ];
        let n = &f.node;
        self.spots.insert("accounts", Spot::key_of(f));
        // A repeated `accounts` block (keys differing in case) adds to the
        // earlier one, as in the reference.
        let mut accounts = std::mem::take(&mut cfg.accounts);
        match n.value() {
            Value::Array(_) => {
                for item in n.items()? {
                    let name = item.nonempty("an account name")?;
                    if name == GLOBAL_ACCOUNT {
                        return Err(item.err(format!("{name:?} is a reserved account name")));
                    }
                    if accounts.iter().any(|a| a.name == name) {
                        return Err(item.err(format!("duplicate account {name:?}")));
                    }
                    self.account_spots.insert(name.clone(), Spot::of(&item));
                    self.export_spots.push(Vec::new());
                    self.import_spots.push(Vec::new());
                    accounts.push(Account {
                        name,
                        ..Account::default()
                    });
                }
            }
            Value::Map(_) => {
                for af in n.entries()? {
                    if af.entry.used_as_variable {
                        continue;
                    }
                    let name = af.entry.key.clone();
                    let an = &af.node;
                    if !matches!(an.value(), Value::Map(_)) {
                        return Err(an.expected(&format!("a map defining account {name:?}")));
                    }
                    if name == GLOBAL_ACCOUNT {
                        return Err(af.key_err(format!("{name:?} is a reserved account name")));
                    }
                    if accounts.iter().any(|a| a.name == name) {
                        return Err(af.key_err(format!("duplicate account {name:?}")));
                    }
                    let mut acc = Account {
                        name: name.clone(),
                        ..Account::default()
                    };
                    let mut users = Vec::new();
                    let mut users_spot = None;
                    let mut export_spots = Vec::new();
                    let mut import_spots = Vec::new();
                    for field in an.entries()? {
                        let v = &field.node;
                        match field.name.as_str() {
                            "nkey" => {
                                let key = v.string()?;
                                if !is_valid_public_nkey(&key, NkeyKind::Account) {
                                    return Err(v.err(format!(
                                        "{key:?} is not a valid public account nkey (A...)"
                                    )));
                                }
                                acc.nkey = Some(key);
                            }
                            "imports" => {
                                let (imports, spots) = parse_imports(v)?;
                                acc.imports = imports;
                                import_spots = spots;
                            }
                            "exports" => {
                                let (exports, spots, latency) = parse_exports(v)?;
                                acc.exports = exports;
                                export_spots = spots;
                                if latency.is_some() {
                                    self.has_latency = latency;
                                }
                            }
                            "jetstream" => account_jetstream(v, &name)?,
                            "users" => {
                                users_spot = Some(Spot::key_of(&field));
                                users = parse_users(v)?;
                            }
                            "default_permissions" => {
                                acc.default_permissions = Some(permissions(v)?)
                            }
                            "mappings" | "maps" => refuse_mappings(v)?,
                            "limits" => acc.limits = account_limits(v)?,
                            _ => field.unknown(KEYS)?,
                        }
                    }
                    if !users.is_empty() && self.account_users_spot.is_none() {
                        self.account_users_spot = users_spot;
                    }
                    for (mut user, spot) in users {
                        if user.permissions.is_none() {
                            user.permissions.clone_from(&acc.default_permissions);
                        }
                        user.account = name.clone();
                        self.users.push((user, spot));
                    }
                    self.account_spots.insert(name, Spot::key_of(&af));
                    self.export_spots.push(export_spots);
                    self.import_spots.push(import_spots);
                    accounts.push(acc);
                }
            }
            _ => return Err(n.expected("a map of accounts or an array of account names")),
        }
        cfg.accounts = accounts;
        Ok(())
    }

    pub(super) fn check_exports_imports(&self, cfg: &ServerConfig) -> Result<(), ConfigError> {
        let names: BTreeSet<&str> = cfg.accounts.iter().map(|a| a.name.as_str()).collect();
        for (ai, acc) in cfg.accounts.iter().enumerate() {
            for (ei, export) in acc.exports.iter().enumerate() {
                for other in export.accounts.iter().flatten() {
                    if !names.contains(other.as_str()) {
                        let kind = match export.kind {
                            ExportKind::Stream => "stream",
                            ExportKind::Service { .. } => "service",
                        };
                        let spot = self.export_spot(ai, ei, acc);
                        return Err(spot.err(format!(
                            "account {other:?} is not defined (named by the {kind} export {:?})",
                            export.subject
                        )));
                    }
                }
            }
        }
        for (ai, acc) in cfg.accounts.iter().enumerate() {
            for (ii, import) in acc.imports.iter().enumerate() {
                let spot = self
                    .import_spots
                    .get(ai)
                    .and_then(|s| s.get(ii))
                    .cloned()
                    .unwrap_or_else(|| self.spot("accounts"));
                let (kind, is_stream) = match import.kind {
                    ImportKind::Stream { .. } => ("stream", true),
                    ImportKind::Service { .. } => ("service", false),
                };
                let Some(exporter) = cfg.account(&import.account) else {
                    return Err(spot.err(format!(
                        "account {:?} is not defined (named by this {kind} import)",
                        import.account
                    )));
                };
                let tokens: Vec<&str> = import.subject.split('.').collect();
                let matching: Vec<&Export> = exporter
                    .exports
                    .iter()
                    .filter(|e| matches!(e.kind, ExportKind::Stream) == is_stream)
                    .filter(|e| {
                        e.subject == import.subject || is_subset_match(&import.subject, &e.subject)
                    })
                    .collect();
                if matching.is_empty() {
                    return Err(spot.err(format!(
                        "{kind} import not authorized: account {:?} has no {kind} export covering {:?}",
                        import.account, import.subject
                    )));
                }
                let authorized =
                    matching
                        .iter()
                        .any(|e| match (&e.accounts, e.account_token_position) {
                            (_, pos) if pos > 0 => usize::try_from(pos)
                                .ok()
                                .and_then(|p| tokens.get(p - 1))
                                .is_some_and(|t| *t == acc.name),
                            (None, _) => true,
                            (Some(list), _) => list.iter().any(|a| a == &acc.name),
                        });
                if !authorized {
                    return Err(spot.err(format!(
                        "{kind} import not authorized: account {:?} exports {:?} but not to account {:?}",
                        import.account, import.subject, acc.name
                    )));
                }
                // Subjects that differ are mapped token by token; the
                // reference refuses at load what it cannot map.
                let mapped = match &import.kind {
                    ImportKind::Stream { prefix, to } => {
                        if let Some(p) = prefix.as_deref() {
                            if p.split('.').any(|t| t == "*" || t == ">") {
                                return Err(spot.err(format!(
                                    "stream import {:?}: prefix {p:?} can not contain wildcard tokens",
                                    import.subject
                                )));
                            }
                        }
                        let local =
                            stream_import_local(&import.subject, prefix.as_deref(), to.as_deref());
                        stream_rename(&import.subject, &local).map(|_| ())
                    }
                    ImportKind::Service { to, .. } => {
                        service_rename(to, &import.subject).map(|_| ())
                    }
                };
                if let Err(e) = mapped {
                    return Err(spot.err(format!(
                        "{kind} import {:?} from account {:?}: {e}",
                        import.subject, import.account
                    )));
                }
            }
        }
        Ok(())
    }

    fn export_spot(&self, ai: usize, ei: usize, acc: &Account) -> Spot {
        self.export_spots
            .get(ai)
            .and_then(|s| s.get(ei))
            .cloned()
            .or_else(|| self.account_spots.get(&acc.name).cloned())
            .unwrap_or_else(|| self.spot("accounts"))
    }
}

fn account_limits(n: &Node<'_>) -> Result<AccountLimits, ConfigError> {
    const KEYS: &[&str] = &[
        "max_connections",
        "max_conn",
        "max_subscriptions",
        "max_subs",
        "max_payload",
        "max_pay",
        "max_leafnodes",
        "max_leafs",
    ];
    let mut l = AccountLimits::default();
    for field in n.entries()? {
        let v = &field.node;
        match field.name.as_str() {
            "max_connections" | "max_conn" => l.max_connections = v.int_as("max_connections")?,
            "max_subscriptions" | "max_subs" => {
                l.max_subscriptions = v.int_as("max_subscriptions")?
            }
            "max_payload" | "max_pay" => l.max_payload = v.int_as("max_payload")?,
            "max_leafnodes" | "max_leafs" => l.max_leafnodes = v.int_as("max_leafnodes")?,
            _ => field.unknown(KEYS)?,
        }
    }
    Ok(l)
}

/// Exports, the position of each one's `accounts` list, and the position
/// of a latency directive if any export has one.
type ParsedExports = (Vec<Export>, Vec<Spot>, Option<Spot>);

fn parse_exports(n: &Node<'_>) -> Result<ParsedExports, ConfigError> {
    const KEYS: &[&str] = &[
        "stream",
        "service",
        "response",
        "response_type",
        "threshold",
        "response_threshold",
        "response_max_time",
        "response_time",
        "accounts",
        "latency",
        "account_token_position",
    ];
    if !matches!(n.value(), Value::Array(_)) {
        return Err(n.expected("an array of exports"));
    }
    let mut exports = Vec::new();
    let mut spots = Vec::new();
    let mut latency_spot = None;
    for item in n.items()? {
        if !matches!(item.value(), Value::Map(_)) {
            return Err(item.expected("an export map such as {stream: \"foo.>\"}"));
        }
        let mut stream: Option<(String, Spot)> = None;
        let mut service: Option<(String, Spot)> = None;
        let mut response_type: Option<(ResponseType, Spot)> = None;
        let mut threshold: Option<(Duration, Spot)> = None;
        let mut latency: Option<(ServiceLatency, Spot)> = None;
        let mut accounts = None;
        let mut accounts_spot = Spot::of(&item);
        let mut token_pos = 0u32;
        for field in item.entries()? {
            let v = &field.node;
            match field.name.as_str() {
                "stream" => {
                    let s = v
                        .str()
                        .map_err(|_| v.expected("the exported stream subject (a string)"))?;
                    stream = Some((s.to_string(), Spot::of(v)));
                }
                "service" => {
                    let s = v
                        .str()
                        .map_err(|_| v.expected("the exported service subject (a string)"))?;
                    service = Some((s.to_string(), Spot::of(v)));
                }
                "response" | "response_type" => {
                    if response_type.is_some() {
                        return Err(v.err("duplicate response type"));
                    }
                    let s = v.str()?;
                    let rt = match s.to_ascii_lowercase().as_str() {
                        "single" | "singleton" => ResponseType::Singleton,
                        "stream" => ResponseType::Stream,
                        "chunk" | "chunked" => ResponseType::Chunked,
                        _ => {
                            return Err(v.err(format!(
                                "unknown response type {s:?}: expected singleton, stream or chunked"
                            )))
                        }
                    };
                    response_type = Some((rt, Spot::of(v)));
                }
                "threshold" | "response_threshold" | "response_max_time" | "response_time" => {
                    if threshold.is_some() {
                        return Err(v.err("duplicate response threshold"));
                    }
                    threshold = Some((duration_str(v)?, Spot::of(v)));
                }
                "accounts" => {
                    let list: Vec<String> = v
                        .items()?
                        .iter()
                        .map(|a| a.nonempty("an account name"))
                        .collect::<Result<_, _>>()?;
                    accounts_spot = Spot::of(v);
                    // An empty list is public, as in the reference.
                    accounts = (!list.is_empty()).then_some(list);
                }
                "latency" => latency = Some((service_latency(v)?, Spot::of(v))),
                "account_token_position" => token_pos = v.int_as("account_token_position")?,
                _ => field.unknown(KEYS)?,
            }
        }
        let (subject, subject_spot, kind) = match (stream, service) {
            (Some(_), Some((s, spot))) => {
                return Err(spot.err(format!(
                    "export {s:?} cannot be both a stream and a service"
                )))
            }
            (Some((s, spot)), None) => {
                if let Some((_, rt)) = response_type {
                    return Err(rt.err("response type is only valid on a service export"));
                }
                if let Some((_, t)) = threshold {
                    return Err(t.err("response threshold is only valid on a service export"));
                }
                if let Some((_, l)) = latency {
                    return Err(l.err("latency is only valid on a service export"));
                }
                (s, spot, ExportKind::Stream)
            }
            (None, Some((s, spot))) => {
                if let Some((_, l)) = &latency {
                    latency_spot = Some(l.clone());
                }
                (
                    s,
                    spot,
                    ExportKind::Service {
                        response_type: response_type.map(|(rt, _)| rt).unwrap_or_default(),
                        response_threshold: threshold.map(|(t, _)| t),
                        latency: latency.map(|(l, _)| l),
                    },
                )
            }
            (None, None) => {
                return Err(item.err("export entry needs a stream or a service subject"))
            }
        };
        if !is_valid_subject(&subject) {
            return Err(subject_spot.err(format!("{subject:?} is not a valid subject")));
        }
        exports.push(Export {
            subject,
            kind,
            accounts,
            account_token_position: token_pos,
        });
        spots.push(accounts_spot);
    }
    Ok((exports, spots, latency_spot))
}

fn service_latency(n: &Node<'_>) -> Result<ServiceLatency, ConfigError> {
    match n.value() {
        Value::String(s) => Ok(ServiceLatency {
            subject: s.clone(),
            sampling: DEFAULT_LATENCY_SAMPLING,
        }),
        Value::Map(_) => {
            let mut sampling = DEFAULT_LATENCY_SAMPLING;
            let mut subject = None;
            for field in n.entries()? {
                let v = &field.node;
                match field.name.as_str() {
                    "sampling" => {
                        let pct = match v.value() {
                            Value::Integer(i) => *i,
                            Value::String(s) if s.trim().eq_ignore_ascii_case("headers") => 0,
                            Value::String(s) => s.trim_end_matches('%').parse().map_err(|_| {
                                v.err(format!("invalid latency sampling {s:?}: expected a percentage such as \"50%\" or \"headers\""))
                            })?,
                            _ => return Err(v.expected("a percentage or \"headers\"")),
                        };
                        let header_only = matches!(v.value(), Value::String(_)) && pct == 0;
                        if !header_only && !(1..=100).contains(&pct) {
                            return Err(v.err(format!(
                                "latency sampling {pct} is out of range: expected 1-100"
                            )));
                        }
                        sampling = pct as u8;
                    }
                    "subject" => subject = Some(v.nonempty("a latency subject")?),
                    _ => field.unknown(&["sampling", "subject"])?,
                }
            }
            let subject =
                subject.ok_or_else(|| n.err("latency needs a subject to publish reports on"))?;
            Ok(ServiceLatency { subject, sampling })
        }
        _ => Err(n.expected("a latency subject or a map {sampling, subject}")),
    }
}

fn parse_imports(n: &Node<'_>) -> Result<(Vec<Import>, Vec<Spot>), ConfigError> {
    const KEYS: &[&str] = &["stream", "service", "prefix", "to", "share"];
    if !matches!(n.value(), Value::Array(_)) {
        return Err(n.expected("an array of imports"));
    }
    let mut imports: Vec<Import> = Vec::new();
    let mut spots = Vec::new();
    for item in n.items()? {
        if !matches!(item.value(), Value::Map(_)) {
            return Err(
                item.expected("an import map such as {stream: {account: A, subject: \"foo.>\"}}")
            );
        }
        let mut stream: Option<(String, String, Spot)> = None;
        let mut service: Option<(String, String, Spot)> = None;
        let mut prefix: Option<(String, Spot)> = None;
        let mut to = None;
        let mut share = false;
        for field in item.entries()? {
            let v = &field.node;
            match field.name.as_str() {
                "stream" => {
                    let (a, s) = import_source(v)?;
                    stream = Some((a, s, Spot::of(v)));
                }
                "service" => {
                    let (a, s) = import_source(v)?;
                    service = Some((a, s, Spot::of(v)));
                }
                "prefix" => prefix = Some((v.string()?, Spot::of(v))),
                "to" => to = Some(v.string()?),
                "share" => share = v.bool()?,
                _ => field.unknown(KEYS)?,
            }
        }
        let import = match (stream, service) {
            (Some(_), Some((_, _, spot))) => {
                return Err(spot.err("import cannot be both a stream and a service"))
            }
            (Some((account, subject, _)), None) => {
                if let (Some((_, spot)), Some(_)) = (&prefix, &to) {
                    return Err(spot.err("a stream import cannot have both prefix and to"));
                }
                Import {
                    account,
                    subject,
                    kind: ImportKind::Stream {
                        prefix: prefix.map(|(p, _)| p),
                        to,
                    },
                }
            }
            (None, Some((account, subject, spot))) => {
                if let Some((_, p)) = prefix {
                    return Err(p.err("prefix is only valid on a stream import (use to)"));
                }
                let to = to.unwrap_or_else(|| subject.clone());
                if !is_valid_subject(&to) {
                    return Err(spot.err(format!("{to:?} is not a valid subject")));
                }
                if let Some(dup) = imports
                    .iter()
                    .find(|i| matches!(&i.kind, ImportKind::Service { to: t, .. } if *t == to))
                {
                    return Err(item.err(format!(
                        "duplicate service import subject {to:?}, already imported from account {:?} subject {:?}",
                        dup.account, dup.subject
                    )));
                }
                Import {
                    account,
                    subject,
                    kind: ImportKind::Service { to, share },
                }
            }
            (None, None) => return Err(item.err("import entry needs a stream or a service")),
        };
        imports.push(import);
        spots.push(Spot::of(&item));
    }
    Ok((imports, spots))
}

/// `{account: A, subject: s}` of an import.
fn import_source(n: &Node<'_>) -> Result<(String, String), ConfigError> {
    if !matches!(n.value(), Value::Map(_)) {
        return Err(n.expected("a map {account: NAME, subject: SUBJECT}"));
    }
    let (mut account, mut subject) = (None, None);
    for field in n.entries()? {
        match field.name.as_str() {
            "account" => account = Some(field.node.string()?),
            "subject" => subject = Some((field.node.string()?, field.node.clone())),
            _ => field.unknown(&["account", "subject"])?,
        }
    }
    match (account, subject) {
        (Some(a), Some((s, sn))) if !a.is_empty() && !s.is_empty() => {
            if !is_valid_subject(&s) {
                return Err(sn.err(format!("{s:?} is not a valid subject")));
            }
            Ok((a, s))
        }
        _ => Err(n.err("expected an account name and a subject")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::test_support::{allow, err, ok, secs};
    use crate::config::model::User;

    /// Multi-tenancy in the style of the nats-server accounts docs.
    #[test]
    fn accounts_exports_imports() {
        let c = ok(r#"
            accounts: {
              ORDERS: {
                users: [ {user: orders, password: o} ]
                default_permissions: { subscribe: "orders.>" }
                exports: [
                  {stream: "orders.events.>"}
                  {stream: "orders.audit", accounts: [AUDIT]}
                  {service: "orders.get", response_type: singleton}
                  {service: "orders.report.*", response_type: chunked, threshold: "5s", accounts: [AUDIT, BILLING]}
                  {service: "orders.lat", latency: { sampling: "25%", subject: "lat.orders" }}
                ]
              }
              BILLING: {
                users: [ {user: billing, password: b, permissions: { publish: ">" }} ]
                imports: [
                  {stream: {account: ORDERS, subject: "orders.events.>"}, prefix: "from_orders"}
                  {service: {account: ORDERS, subject: "orders.get"}, to: "get.order"}
                  {service: {account: ORDERS, subject: "orders.report.monthly"}}
                ]
              }
              AUDIT: {
                nkey: AB5UKNPVHDWBP5WODG742274I3OGY5FM3CBIFCYI4OFEH7Y23GNZPXFE
                limits: { max_connections: 10, max_payload: 1KB }
                imports: [
                  {stream: {account: ORDERS, subject: "orders.audit"}, to: "audit.orders"}
                  {service: {account: ORDERS, subject: "orders.report.daily"}, share: true}
                ]
              }
              SYS: {}
            }
            system_account: SYS
            no_auth_user: billing
        "#);
        let names: Vec<&str> = c.accounts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["ORDERS", "BILLING", "AUDIT", "SYS"]);
        assert_eq!(c.system_account.as_deref(), Some("SYS"));
        assert_eq!(c.no_auth_user.as_deref(), Some("billing"));

        let orders = c.account("ORDERS").unwrap();
        assert_eq!(orders.exports.len(), 5);
        assert_eq!(orders.exports[0].kind, ExportKind::Stream);
        assert_eq!(orders.exports[0].accounts, None);
        assert_eq!(orders.exports[1].accounts, Some(vec!["AUDIT".to_string()]));
        assert_eq!(
            orders.exports[3].kind,
            ExportKind::Service {
                response_type: ResponseType::Chunked,
                response_threshold: Some(secs(5)),
                latency: None,
            }
        );
        assert_eq!(
            orders.exports[4].kind,
            ExportKind::Service {
                response_type: ResponseType::Singleton,
                response_threshold: None,
                latency: Some(ServiceLatency {
                    subject: "lat.orders".into(),
                    sampling: 25
                }),
            }
        );
        let users: Vec<&str> = c.users_of("ORDERS").map(User::identity).collect();
        assert_eq!(users, ["orders"]);
        // Account default_permissions apply to its users.
        assert_eq!(
            c.users[0].permissions.as_ref().unwrap().subscribe,
            allow(&["orders.>"])
        );

        let billing = c.account("BILLING").unwrap();
        assert_eq!(
            billing.imports,
            vec![
                Import {
                    account: "ORDERS".into(),
                    subject: "orders.events.>".into(),
                    kind: ImportKind::Stream {
                        prefix: Some("from_orders".into()),
                        to: None
                    },
                },
                Import {
                    account: "ORDERS".into(),
                    subject: "orders.get".into(),
                    kind: ImportKind::Service {
                        to: "get.order".into(),
                        share: false
                    },
                },
                Import {
                    account: "ORDERS".into(),
                    subject: "orders.report.monthly".into(),
                    kind: ImportKind::Service {
                        to: "orders.report.monthly".into(),
                        share: false
                    },
                },
            ]
        );
        let audit = c.account("AUDIT").unwrap();
        assert_eq!(
            audit.nkey.as_deref(),
            Some("AB5UKNPVHDWBP5WODG742274I3OGY5FM3CBIFCYI4OFEH7Y23GNZPXFE")
        );
        assert_eq!(audit.limits.max_connections, 10);
        assert_eq!(audit.limits.max_payload, 1024);
        assert_eq!(audit.limits.max_subscriptions, -1);
        assert_eq!(
            audit.imports[1].kind,
            ImportKind::Service {
                to: "orders.report.daily".into(),
                share: true
            }
        );
    }

    #[test]
    fn accounts_array_form() {
        let c = ok("accounts: [A, B, \"C\"]\nsystem_account: A");
        let names: Vec<&str> = c.accounts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["A", "B", "C"]);
        assert_eq!(
            err("accounts: [A, A]"),
            "<string>:1:15: accounts[1]: duplicate account \"A\""
        );
        assert_eq!(
            err("accounts: [\"$G\"]"),
            "<string>:1:12: accounts[0]: \"$G\" is a reserved account name"
        );
    }

    #[test]
    fn account_semantic_errors() {
        assert_eq!(
            err("accounts {\n  A { users [ {user: a, password: x} ] }\n  B { users [ {user: a, password: y} ] }\n}"),
            "<string>:3:15: accounts.B.users[0]: duplicate user \"a\": already defined at <string>:2:15 (in account \"A\")"
        );
        assert_eq!(
            err("accounts { A { users [ {user: a} ] } }\nauthorization { users [ {user: a} ] }"),
            "<string>:2:25: authorization.users[0]: duplicate user \"a\": already defined at <string>:1:24 (in account \"A\")"
        );
        assert_eq!(
            err("authorization { user: x, password: y }\naccounts { A { users [ {user: a} ] } }"),
            "<string>:2:16: accounts.A.users: cannot have both a single user/password in authorization and users in accounts"
        );
        assert_eq!(
            err("accounts {\n  A { exports [ {stream: \"foo.>\", accounts: [C]} ] }\n  B { imports [ {stream: {account: A, subject: \"foo.bar\"}} ] }\n  C {}\n}"),
            "<string>:3:17: accounts.B.imports[0]: stream import not authorized: account \"A\" exports \"foo.bar\" but not to account \"B\""
        );
        assert_eq!(
            err("accounts {\n  A { exports [ {service: \"svc.>\"} ] }\n  B { imports [ {service: {account: A, subject: \"other\"}} ] }\n}"),
            "<string>:3:17: accounts.B.imports[0]: service import not authorized: account \"A\" has no service export covering \"other\""
        );
        assert_eq!(
            err("accounts {\n  A { exports [ {stream: \"s\"} ] }\n  B { imports [ {service: {account: A, subject: \"s\"}} ] }\n}"),
            "<string>:3:17: accounts.B.imports[0]: service import not authorized: account \"A\" has no service export covering \"s\""
        );
        assert_eq!(
            err("accounts {\n  B { imports [ {stream: {account: Z, subject: \"s\"}} ] }\n}"),
            "<string>:2:17: accounts.B.imports[0]: account \"Z\" is not defined (named by this stream import)"
        );
        assert_eq!(
            err("accounts {\n  A { exports [ {stream: \"s\", accounts: [Q]} ] }\n}"),
            "<string>:2:41: accounts.A.exports[0].accounts: account \"Q\" is not defined (named by the stream export \"s\")"
        );
        assert_eq!(
            err("accounts { A { exports [ {stream: \"s\", response_type: stream} ] } }"),
            "<string>:1:55: accounts.A.exports[0].response_type: response type is only valid on a service export"
        );
        assert_eq!(
            err("accounts { A { exports [ {service: \"s\", response_type: bogus} ] } }"),
            "<string>:1:56: accounts.A.exports[0].response_type: unknown response type \"bogus\": expected singleton, stream or chunked"
        );
        assert_eq!(
            err("accounts { A { imports [ {stream: {account: B}} ] }, B {} }"),
            "<string>:1:35: accounts.A.imports[0].stream: expected an account name and a subject"
        );
        assert_eq!(
            err("accounts { A: 5 }"),
            "<string>:1:15: accounts.A: expected a map defining account \"A\", found an integer"
        );
        assert_eq!(
            err("accounts { A { bogus: 1 } }"),
            "<string>:1:16: accounts.A.bogus: unknown field \"bogus\"; expected one of: nkey, imports, exports, jetstream, users, default_permissions, mappings, maps, limits"
        );
        assert_eq!(
            err("accounts { A { nkey: ABC } }"),
            "<string>:1:22: accounts.A.nkey: \"ABC\" is not a valid public account nkey (A...)"
        );
        // Subjects that differ must map token by token.
        ok("accounts {\n  A { exports [ {service: \"svc.*.req\"}, {stream: \"ev.*.x\"} ] }\n  B { imports [ {service: {account: A, subject: \"svc.*.req\"}, to: \"local.*.ask\"}, {stream: {account: A, subject: \"ev.*.x\"}, to: \"got.*\"} ] }\n}");
        assert_eq!(
            err("accounts {\n  A { exports [ {service: \"svc.*.req\"} ] }\n  B { imports [ {service: {account: A, subject: \"svc.*.req\"}, to: \"local.x\"} ] }\n}"),
            "<string>:3:17: accounts.B.imports[0]: service import \"svc.*.req\" from account \"A\": failed to create mapping transform for service import subject \"local.x\" to \"svc.*.req\": invalid mapping destination: not using all of the token wildcard(s) in local.x"
        );
        assert_eq!(
            err("accounts {\n  A { exports [ {stream: \">\"} ] }\n  B { imports [ {stream: {account: A, subject: \"ev.>\"}, to: \"got.*\"} ] }\n}"),
            "<string>:3:17: accounts.B.imports[0]: stream import \"ev.>\" from account \"A\": failed to create mapping transform for stream import subject \"ev.>\" to \"got.*\": invalid subject"
        );
        assert!(err("accounts {\n  A { exports [ {stream: \">\"} ] }\n  B { imports [ {stream: {account: A, subject: \"ev.*\"}, prefix: \"p.*\"} ] }\n}")
            .contains("can not contain wildcard tokens"));
        // Wildcard imports are authorized by wider exports, and a token
        // position can authorize by account name.
        ok("accounts {\n  A { exports [ {stream: \">\"} ] }\n  B { imports [ {stream: {account: A, subject: \"x.*\"}} ] }\n}");
        ok("accounts {\n  A { exports [ {service: \"req.*\", account_token_position: 2} ] }\n  B { imports [ {service: {account: A, subject: \"req.B\"}} ] }\n}");
        assert!(err("accounts {\n  A { exports [ {service: \"req.*\", account_token_position: 2} ] }\n  B { imports [ {service: {account: A, subject: \"req.C\"}} ] }\n}")
            .contains("not authorized"));
    }
}
