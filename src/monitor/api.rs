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

/// Options that do not decode get the reference's 400.
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
    /// come from the body's `accounts`. A request the filter leaves out
    /// builds nothing.
    pub fn api_data(
        &self,
        endpoint: &str,
        account: Option<&str>,
        opts: &[u8],
    ) -> Result<Option<serde_json::Value>, (u16, String)> {
        let Some(go_struct) = event_options(endpoint, account.is_some()) else {
            return Ok(None);
        };
        let given = !opts.is_empty();
        let f = bad(gojson::parse(if given { opts } else { b"{}" }, go_struct))?;
        // Go decodes the whole body (the endpoint's options and the
        // filter) before it looks at the filter, and builds nothing for a
        // server the filter leaves out.
        let filter = bad(EventFilter::from_json(&f))?;
        let Some(req) = bad(ApiRequest::decode(endpoint, account, &f))? else {
            return Ok(None);
        };
        if given && !self.answers(&filter) {
            return Ok(None);
        }
        self.build(req)
    }

    /// Whether this server answers a STATSZ request with body `opts` (the
    /// reference's StatszEventOptions: a filter and nothing else).
    pub fn statsz_answers(&self, opts: &[u8]) -> Result<bool, (u16, String)> {
        if opts.is_empty() {
            return Ok(true);
        }
        let f = bad(gojson::parse(opts, "StatszEventOptions"))?;
        let filter = bad(EventFilter::from_json(&f))?;
        Ok(self.answers(&filter))
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

    fn build(&self, req: ApiRequest) -> ApiResult {
        match req {
            ApiRequest::Varz => data(Ok(self.varz())),
            ApiRequest::Connz(o) => data(self.connz(&o)),
            ApiRequest::Subsz(o) => data(self.subsz(&o)),
            ApiRequest::Accountz(o) => data(self.accountz(&o)),
            ApiRequest::Healthz(o) => data(Ok(self.healthz(&o))),
            ApiRequest::Jsz(o) => match self.jsz(&o) {
                Some(j) => data(Ok(j)),
                None => Ok(None),
            },
            ApiRequest::AccountJsz => data::<()>(Err("jetstream not enabled".into())),
            ApiRequest::Routez(o) => data(Ok(self.routez(&o))),
            ApiRequest::Gatewayz(o) => data(Ok(self.gatewayz(&o))),
            ApiRequest::Leafz(o) => data(Ok(self.leafz(&o))),
            ApiRequest::Info(acc) => data(self.account_info(&acc)),
            ApiRequest::Statz(o) => {
                let stz = self.accstatz(&o);
                if stz.is_empty() && !o.include_unused {
                    return Ok(None);
                }
                data(Ok(stz))
            }
        }
    }
}

/// A decoded `$SYS` monitoring request.
enum ApiRequest {
    Varz,
    Connz(ConnzOptions),
    Subsz(SubszOptions),
    Accountz(AccountzOptions),
    Healthz(HealthzOptions),
    Jsz(JszOptions),
    /// An account's JetStream report: there is no JetStream.
    AccountJsz,
    Routez(RoutezOptions),
    Gatewayz(GatewayzOptions),
    Leafz(LeafzOptions),
    Info(String),
    Statz(AccstatzOptions),
}

impl ApiRequest {
    /// The request for `endpoint` (None where the reference serves none),
    /// its options from the body, confined to `account` for account
    /// requests as the reference's handlers do.
    fn decode(endpoint: &str, account: Option<&str>, f: &Fields) -> Result<Option<Self>, String> {
        Ok(Some(match (account, endpoint) {
            (None, "VARZ") => ApiRequest::Varz,
            (None, "CONNZ") => ApiRequest::Connz(ConnzOptions::from_json(f)?),
            (None, "SUBSZ") => ApiRequest::Subsz(SubszOptions::from_json(f)?),
            (None, "ACCOUNTZ") => ApiRequest::Accountz(AccountzOptions::from_json(f)?),
            (None, "HEALTHZ") => ApiRequest::Healthz(HealthzOptions::from_json(f)?),
            (None, "JSZ") => ApiRequest::Jsz(JszOptions::from_json(f)?),
            (None, "ROUTEZ") => ApiRequest::Routez(RoutezOptions::from_json(f)?),
            (None, "GATEWAYZ") => ApiRequest::Gatewayz(GatewayzOptions::from_json(f)?),
            (None, "LEAFZ") | (Some(_), "LEAFZ") => ApiRequest::Leafz(LeafzOptions::from_json(f)?),
            (Some(acc), "CONNZ") => ApiRequest::Connz(ConnzOptions {
                acc: acc.to_string(),
                ..ConnzOptions::from_json(f)?
            }),
            (Some(acc), "SUBSZ") => ApiRequest::Subsz(SubszOptions {
                subs: true,
                acc: acc.to_string(),
                ..SubszOptions::from_json(f)?
            }),
            (Some(_), "JSZ") => {
                JszOptions::from_json(f)?;
                ApiRequest::AccountJsz
            }
            (Some(acc), "INFO") => ApiRequest::Info(acc.to_string()),
            (Some(acc), "STATZ") => {
                let mut o = AccstatzOptions::from_json(f)?;
                // `$SYS.REQ.ACCOUNT.PING.STATZ` is the account ping: the
                // body names the accounts.
                if acc != "PING" {
                    o.accounts = vec![acc.to_string()];
                }
                ApiRequest::Statz(o)
            }
            _ => return Ok(None),
        }))
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
