//! Accounts as the server sees them: dense ids, and the import edges that
//! connect their subject spaces.
//!
//! Every account gets a small integer id that never changes for the life of
//! the process (ids survive reloads, so shard state keyed by id stays
//! valid). `$G` is always 0. A [`Security`] value is the immutable product of
//! one configuration: authentication settings plus the resolved stream and
//! service import edges. It travels to the shards inside the options, and
//! each shard compiles its own permission sets from it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{ExportKind, ImportKind, ResponseType, ServerConfig, GLOBAL_ACCOUNT};
use crate::security::auth::AuthConfig;
use crate::security::operator::{self, OperatorAuth};
use crate::transform::{service_rename, stream_rename, Rename};

pub type AccountId = u32;
pub const GLOBAL: AccountId = 0;

/// Name → id, assigned on first sight and kept across reloads.
static REGISTRY: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The id of `name`, assigning the next one if new.
pub fn account_id(name: &str) -> AccountId {
    let mut r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    if r.is_empty() {
        r.push(GLOBAL_ACCOUNT.to_string());
    }
    match r.iter().position(|n| n == name) {
        Some(i) => i as AccountId,
        None => {
            r.push(name.to_string());
            (r.len() - 1) as AccountId
        }
    }
}

/// Live client connections per account, across shards, by cid (cids grow
/// with connection age): consulted when a client binds (CONNECT, reload)
/// and when it closes, never per message.
static MEMBERS: Mutex<Vec<BTreeSet<u64>>> = Mutex::new(Vec::new());

fn members() -> std::sync::MutexGuard<'static, Vec<BTreeSet<u64>>> {
    MEMBERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts connection `cid` in account `acc` unless the account already
/// has `limit` (-1: no limit) connections.
pub fn join_account(acc: AccountId, cid: u64, limit: i64) -> bool {
    let mut m = members();
    while m.len() <= acc as usize {
        m.push(BTreeSet::new());
    }
    let set = &mut m[acc as usize];
    if set.contains(&cid) {
        return true;
    }
    if limit >= 0 && set.len() as i64 >= limit {
        return false;
    }
    set.insert(cid);
    true
}

/// Whether connection `cid`, already counted in `acc`, stays under a limit
/// that may have tightened: as the reference, the newest `limit`
/// connections stay. One that does not is no longer counted.
pub fn still_fits(acc: AccountId, cid: u64, limit: i64) -> bool {
    let mut m = members();
    let Some(set) = m.get_mut(acc as usize) else {
        return true;
    };
    if limit < 0 || (set.range(cid + 1..).count() as i64) < limit {
        return true;
    }
    set.remove(&cid);
    false
}

/// Stops counting connection `cid` in `acc`.
pub fn leave_account(acc: AccountId, cid: u64) {
    if let Some(set) = members().get_mut(acc as usize) {
        set.remove(&cid);
    }
}

/// Live client connections of account `acc`.
pub fn account_connections(acc: AccountId) -> usize {
    members().get(acc as usize).map_or(0, BTreeSet::len)
}

/// Every account name known to the process ($G first), for monitoring.
pub fn account_names() -> Vec<String> {
    account_id(GLOBAL_ACCOUNT);
    let r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    r.clone()
}

/// The name of account `id`, for logs.
pub fn account_name(id: AccountId) -> String {
    let r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    r.get(id as usize)
        .cloned()
        .unwrap_or_else(|| GLOBAL_ACCOUNT.to_string())
}

/// Messages published in `exporter` on `subject` (a pattern) also reach
/// `importer`, renamed as the import says.
#[derive(Clone, Debug)]
pub struct StreamEdge {
    pub exporter: AccountId,
    pub subject: String,
    pub importer: AccountId,
    pub rename: Rename,
}

impl StreamEdge {
    /// The subject a message on `subject` has in the importing account.
    pub fn local_subject(&self, subject: &[u8]) -> Vec<u8> {
        self.rename.apply(subject)
    }
}

/// The local subject of a stream import of `subject`, as the reference
/// spells it: `prefix.subject`, or `to`, or the subject itself.
pub fn stream_import_local(subject: &str, prefix: Option<&str>, to: Option<&str>) -> String {
    match (
        prefix.filter(|p| !p.is_empty()),
        to.filter(|t| !t.is_empty()),
    ) {
        (Some(p), _) if p.ends_with('.') => format!("{p}{subject}"),
        (Some(p), _) => format!("{p}.{subject}"),
        (None, Some(t)) => t.to_string(),
        (None, None) => subject.to_string(),
    }
}

/// Requests published in `importer` on `to` are delivered in `exporter` on
/// `subject`; responses travel back through a reply mapping.
#[derive(Clone, Debug)]
pub struct ServiceEdge {
    pub importer: AccountId,
    /// The local pattern requests are matched against (`$N` placeholders
    /// read as `*`).
    pub to: String,
    pub exporter: AccountId,
    pub subject: String,
    /// How a request's subject becomes the exporter's.
    pub rename: Rename,
    pub response: ResponseType,
    pub threshold: Duration,
    /// The requester's details go in the request info header.
    pub share: bool,
}

/// Authentication and cross-account routing of one configuration.
#[derive(Clone, Debug, Default)]
pub struct Security {
    pub auth: AuthConfig,
    pub streams: Vec<StreamEdge>,
    pub services: Vec<ServiceEdge>,
    /// The accounts with their exports and imports (in operator mode, the
    /// verified JWT accounts as config accounts), for monitoring.
    pub accounts: Vec<crate::config::Account>,
    /// The system account (`$SYS` unless configured, or off with
    /// `no_system_account`): where the server's events and requests live.
    pub system_account: Option<String>,
}

/// How long a service response mapping lives without a threshold set.
pub const DEFAULT_RESPONSE_THRESHOLD: Duration = Duration::from_secs(120);

impl Security {
    /// The security of a configuration; in operator mode this reads and
    /// verifies the operator JWTs and preloaded accounts, and says why it
    /// cannot.
    pub fn from_config(cfg: &ServerConfig) -> Result<Security, String> {
        let mut s = Security {
            auth: AuthConfig::from_config(cfg),
            ..Security::default()
        };
        let jwt_accounts;
        let mut system_account = cfg.system_account.clone();
        let accounts: &[crate::config::Account] = match OperatorAuth::from_config(cfg)? {
            Some(op) => {
                system_account.clone_from(&op.system_account);
                jwt_accounts = op.config_accounts(operator::now());
                s.auth.set_operator(Arc::new(op), &jwt_accounts);
                &jwt_accounts
            }
            None => &cfg.accounts,
        };
        s.add_edges(accounts);
        // As the reference: a default system account unless opted out.
        s.system_account = match system_account {
            Some(a) => Some(a),
            None if cfg.no_system_account => None,
            None => Some(crate::config::SYSTEM_ACCOUNT.to_string()),
        };
        Ok(s)
    }

    /// The same security with `op` as its operator mode (an account
    /// claim update or delete): accounts, limits and routing edges follow
    /// the operator's accounts; everything else is kept.
    pub fn with_operator(&self, op: OperatorAuth) -> Security {
        let accounts = op.config_accounts(operator::now());
        let mut auth = self.auth.clone();
        auth.set_operator(Arc::new(op), &accounts);
        let mut s = Security {
            auth,
            system_account: self.system_account.clone(),
            ..Security::default()
        };
        s.add_edges(&accounts);
        s
    }

    /// The stream and service import edges of `accounts`, which become
    /// this security's accounts.
    fn add_edges(&mut self, accounts: &[crate::config::Account]) {
        let s = self;
        let find = |name: &str| accounts.iter().find(|a| a.name == name);
        for acc in accounts {
            let importer = account_id(&acc.name);
            for imp in &acc.imports {
                let exporter = account_id(&imp.account);
                match &imp.kind {
                    ImportKind::Stream { prefix, to } => {
                        let local =
                            stream_import_local(&imp.subject, prefix.as_deref(), to.as_deref());
                        // Checked when the config was read.
                        let Ok(rename) = stream_rename(&imp.subject, &local) else {
                            continue;
                        };
                        s.streams.push(StreamEdge {
                            exporter,
                            subject: imp.subject.clone(),
                            importer,
                            rename,
                        })
                    }
                    ImportKind::Service { to, share } => {
                        // Checked when the config was read.
                        let Ok((local, rename)) = service_rename(to, &imp.subject) else {
                            continue;
                        };
                        let export = find(&imp.account)
                            .and_then(|a| a.exports.iter().find(|e| e.subject == imp.subject))
                            .map(|e| e.kind.clone());
                        let (response, threshold) = match export {
                            Some(ExportKind::Service {
                                response_type,
                                response_threshold,
                                ..
                            }) => (
                                response_type,
                                response_threshold.unwrap_or(DEFAULT_RESPONSE_THRESHOLD),
                            ),
                            _ => (ResponseType::Singleton, DEFAULT_RESPONSE_THRESHOLD),
                        };
                        s.services.push(ServiceEdge {
                            importer,
                            to: local,
                            rename,
                            exporter,
                            subject: imp.subject.clone(),
                            response,
                            threshold,
                            share: *share,
                        });
                    }
                }
            }
        }
        s.accounts = accounts.to_vec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_global_is_zero() {
        assert_eq!(account_id(GLOBAL_ACCOUNT), GLOBAL);
        let a = account_id("ACC_TEST_A");
        assert_eq!(account_id("ACC_TEST_A"), a);
        assert_ne!(account_id("ACC_TEST_B"), a);
        assert_eq!(account_name(a), "ACC_TEST_A");
    }

    #[test]
    fn edges_from_config() {
        let cfg = crate::config::parse_str(
            r#"accounts {
                A { exports: [ {stream: "events.>"}, {service: "svc.echo", response_type: stream} ] }
                B { imports: [ {stream: {account: A, subject: "events.>"}, prefix: "a"},
                               {service: {account: A, subject: "svc.echo"}, to: "echo"} ] }
            }"#,
        )
        .unwrap();
        let s = Security::from_config(&cfg).unwrap();
        assert_eq!(s.streams.len(), 1);
        assert_eq!(s.streams[0].local_subject(b"events.x"), b"a.events.x");
        assert_eq!(s.services.len(), 1);
        assert_eq!(s.services[0].to, "echo");
        assert_eq!(s.services[0].response, ResponseType::Stream);
        assert_eq!(s.streams[0].importer, account_id("B"));
    }
}
