//! `/jsz` and `/healthz`. natrix has no JetStream: `/jsz` answers as the
//! reference does with JetStream not enabled (`disabled`, zero config and
//! usage), and the health check has no JetStream state to check.

use serde::Serialize;

use super::gojson::Fields;
use super::http::{Request, Response};
use super::query::{decode_bool, decode_int, respond_json};
use super::Monitor;
use crate::timefmt::rfc3339;

/// The reference's `JSzOptions`; only `leader_only` changes the answer
/// without JetStream, the rest is checked.
#[derive(Debug, Default)]
pub struct JszOptions {
    pub leader_only: bool,
}

impl JszOptions {
    pub fn from_query(r: &Request) -> Result<JszOptions, Response> {
        for k in ["accounts", "streams", "consumers", "config"] {
            decode_bool(r, k)?;
        }
        decode_int(r, "offset")?;
        decode_int(r, "limit")?;
        Ok(JszOptions {
            leader_only: decode_bool(r, "leader-only")?,
        })
    }

    pub fn from_json(f: &Fields) -> Result<JszOptions, String> {
        f.string("account")?;
        for k in ["accounts", "streams", "consumer", "config"] {
            f.bool(k)?;
        }
        f.int("offset")?;
        f.int("limit")?;
        Ok(JszOptions {
            leader_only: f.bool("leader_only")?,
        })
    }
}

#[derive(Serialize)]
struct JsConfig {
    max_memory: u64,
    max_storage: u64,
}

#[derive(Serialize)]
struct JsApi {
    total: u64,
    errors: u64,
}

/// The reference's `JSInfo` for a server without JetStream.
#[derive(Serialize)]
pub struct Jsz {
    server_id: String,
    now: String,
    disabled: bool,
    config: JsConfig,
    memory: u64,
    storage: u64,
    reserved_memory: u64,
    reserved_storage: u64,
    accounts: u64,
    ha_assets: u64,
    api: JsApi,
    streams: u64,
    consumers: u64,
    messages: u64,
    bytes: u64,
}

/// The reference's `HealthzOptions`.
#[derive(Debug, Default)]
pub struct HealthzOptions;

impl HealthzOptions {
    pub fn from_query(r: &Request) -> Result<HealthzOptions, Response> {
        for k in ["js-enabled", "js-enabled-only", "js-server-only"] {
            decode_bool(r, k)?;
        }
        Ok(HealthzOptions)
    }

    pub fn from_json(f: &Fields) -> Result<HealthzOptions, String> {
        f.bool("js-enabled-only")?;
        f.bool("js-server-only")?;
        Ok(HealthzOptions)
    }
}

/// The reference's `HealthStatus`.
#[derive(Serialize)]
pub struct Health {
    status: &'static str,
}

/// Why the reference skips a JetStream request: a leader-only request on
/// a server that is no JetStream leader.
pub const NOT_LEADER: &str = "filtered response: not leader";

impl Monitor {
    /// The JetStream report; None for a leader-only request, which the
    /// reference leaves to the leader.
    pub(super) fn jsz(&self, o: &JszOptions) -> Option<Jsz> {
        if o.leader_only {
            return None;
        }
        Some(Jsz {
            server_id: self.info.server_id.clone(),
            now: rfc3339(self.now()),
            disabled: true,
            config: JsConfig {
                max_memory: 0,
                max_storage: 0,
            },
            memory: 0,
            storage: 0,
            reserved_memory: 0,
            reserved_storage: 0,
            accounts: 0,
            ha_assets: 0,
            api: JsApi {
                total: 0,
                errors: 0,
            },
            streams: 0,
            consumers: 0,
            messages: 0,
            bytes: 0,
        })
    }

    pub(super) fn healthz(&self, _: &HealthzOptions) -> Health {
        Health { status: "ok" }
    }

    /// `/healthz` writes its JSON unindented.
    pub(super) fn healthz_http(&self, r: &Request, o: &HealthzOptions) -> Response {
        respond_json(r, &self.healthz(o), false)
    }
}
