//! The `$SYS` monitoring requests' answers: the same builders as the HTTP
//! endpoints, with options decoded from the request's JSON body as the
//! reference's `zReq` decodes them into its `*EventOptions` structs, and
//! its `EventFilterOptions` deciding whether this server answers at all.

use serde::Serialize;
use serde_json::Value;

use super::accountz::{AccountzOptions, AccstatzOptions};
use super::cluster::{GatewayzOptions, LeafzOptions, RoutezOptions};
use super::connz::ConnzOptions;
use super::gojson::{self, EventFilter, Fields};
use super::jsz::{HealthzOptions, JszOptions};
use super::subsz::SubszOptions;
use super::Monitor;

type ApiResult = Result<Option<Value>, (u16, String)>;

/// An endpoint's answer as the response's `data`; an endpoint error is the
/// reference's 500.
fn data<T: Serialize>(v: Result<T, String>) -> ApiResult {
    let v = v.map_err(|e| (500, e))?;
    serde_json::to_value(v)
        .map(Some)
        .map_err(|e| (500, e.to_string()))
}

/// Options decoding fails with the reference's 400.
fn bad<T>(v: Result<T, String>) -> Result<T, (u16, String)> {
    v.map_err(|e| (400, e))
}

impl Monitor {
    /// The `data` of the reference's ServerAPIResponse for a `$SYS`
    /// monitoring request. `endpoint`: the subject's last token (VARZ,
    /// CONNZ, SUBSZ, ACCOUNTZ, HEALTHZ, JSZ, ROUTEZ, GATEWAYZ, LEAFZ for
    /// server requests; CONNZ, SUBSZ, LEAFZ, JSZ, INFO, STATZ for
    /// account requests). `account`: Some(acc) for
    /// `$SYS.REQ.ACCOUNT.<acc>.<endpoint>`. `opts`: the request body, the
    /// reference's JSON options (e.g. `{"sort":"cid","limit":2,"subscriptions":true}`),
    /// empty for defaults. Ok(None): no reply at all (the reference's
    /// errSkipZreq, e.g. an account STATZ for an account without
    /// connections unless include_unused). Err((code, description)): the
    /// reference's ApiError (400 for options that do not decode, 500 for
    /// an endpoint error).
    ///
    /// An endpoint the reference does not serve for that kind of request
    /// gets Ok(None) too: it has no subscription there, so no reply.
    /// `$SYS.REQ.ACCOUNT.PING.STATZ` is the account ping: its accounts
    /// come from the body's `accounts`.
    pub fn api_data(&self, endpoint: &str, account: Option<&str>, opts: &[u8]) -> ApiResult {
        let Some(go_struct) = event_options(endpoint, account.is_some()) else {
            return Ok(None);
        };
        let given = !opts.is_empty();
        let f = bad(gojson::parse(if given { opts } else { b"{}" }, go_struct))?;
        // Go decodes the whole body (the endpoint's options and the
        // filter) before it looks at the filter.
        let filter = bad(EventFilter::from_json(&f))?;
        let built = self.decode_and_build(endpoint, account, &f);
        if let Err((400, _)) = built {
            return built;
        }
        if given && !self.answers(&filter) {
            return Ok(None);
        }
        built
    }

    /// Whether this server is one the request's filter names.
    fn answers(&self, f: &EventFilter) -> bool {
        let opts = self.options();
        let name = opts
            .server_name
            .clone()
            .unwrap_or_else(|| self.info.server_name.clone());
        // No cluster and no JetStream domain: a filter on either excludes
        // this server, as the reference's empty names do.
        f.matches(&name, &self.info.host, "", &opts.server_tags, "")
    }

    fn decode_and_build(&self, endpoint: &str, account: Option<&str>, f: &Fields) -> ApiResult {
        match (account, endpoint) {
            (None, "VARZ") => data(Ok(self.varz())),
            (None, "CONNZ") => data(self.connz(&bad(ConnzOptions::from_json(f))?)),
            (None, "SUBSZ") => data(self.subsz(&bad(SubszOptions::from_json(f))?)),
            (None, "ACCOUNTZ") => data(self.accountz(&bad(AccountzOptions::from_json(f))?)),
            (None, "HEALTHZ") => data(Ok(self.healthz(&bad(HealthzOptions::from_json(f))?))),
            (None, "JSZ") => match self.jsz(&bad(JszOptions::from_json(f))?) {
                Some(j) => data(Ok(j)),
                None => Ok(None),
            },
            (None, "ROUTEZ") => data(Ok(self.routez(&bad(RoutezOptions::from_json(f))?))),
            (None, "GATEWAYZ") => data(Ok(self.gatewayz(&bad(GatewayzOptions::from_json(f))?))),
            (None, "LEAFZ") => data(Ok(self.leafz(&bad(LeafzOptions::from_json(f))?))),
            (Some(acc), "CONNZ") => {
                let mut o = bad(ConnzOptions::from_json(f))?;
                o.acc = acc.to_string();
                data(self.connz(&o))
            }
            (Some(acc), "SUBSZ") => {
                let mut o = bad(SubszOptions::from_json(f))?;
                o.subs = true;
                o.acc = acc.to_string();
                data(self.subsz(&o))
            }
            (Some(_), "LEAFZ") => data(Ok(self.leafz(&bad(LeafzOptions::from_json(f))?))),
            (Some(_), "JSZ") => {
                bad(JszOptions::from_json(f))?;
                data::<()>(Err("jetstream not enabled".into()))
            }
            (Some(acc), "INFO") => data(self.account_info(acc)),
            (Some(acc), "STATZ") => {
                let mut o = bad(AccstatzOptions::from_json(f))?;
                if acc != "PING" {
                    o.accounts = vec![acc.to_string()];
                }
                let stz = self.accstatz(&o);
                if stz.is_empty() && !o.include_unused {
                    return Ok(None);
                }
                data(Ok(stz))
            }
            _ => Ok(None),
        }
    }
}

/// The reference's options struct for an endpoint, as its decode errors
/// name it; None where it serves no such request.
fn event_options(endpoint: &str, account: bool) -> Option<&'static str> {
    Some(match (account, endpoint) {
        (false, "VARZ") => "VarzEventOptions",
        (_, "CONNZ") => "ConnzEventOptions",
        (_, "SUBSZ") => "SubszEventOptions",
        (false, "ACCOUNTZ") => "AccountzEventOptions",
        (false, "HEALTHZ") => "HealthzEventOptions",
        (_, "JSZ") => "JszEventOptions",
        (false, "ROUTEZ") => "RoutezEventOptions",
        (false, "GATEWAYZ") => "GatewayzEventOptions",
        (_, "LEAFZ") => "LeafzEventOptions",
        (true, "INFO") => "AccInfoEventOptions",
        (true, "STATZ") => "AccountStatzEventOptions",
        _ => return None,
    })
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
