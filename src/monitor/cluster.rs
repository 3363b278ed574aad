//! `/routez`, `/gatewayz` and `/leafz`: natrix has no clustering,
//! gateways or leaf nodes, so these answer as the reference does without
//! them: no routes, no gateways, no leaf nodes. Their options are still
//! decoded, so a malformed one is refused as the reference refuses it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::gojson::Fields;
use super::http::{Request, Response};
use super::query::decode_bool;
use super::Monitor;
use crate::timefmt::rfc3339;

/// The reference's `RoutezOptions` (`subs`: 0/1/detail), checked only.
pub struct RoutezOptions;

impl RoutezOptions {
    pub fn from_query(r: &Request) -> Result<RoutezOptions, Response> {
        if !r.get("subs").eq_ignore_ascii_case("detail") {
            decode_bool(r, "subs")?;
        }
        Ok(RoutezOptions)
    }

    pub fn from_json(f: &Fields) -> Result<RoutezOptions, String> {
        f.bool("subscriptions")?;
        f.bool("subscriptions_detail")?;
        Ok(RoutezOptions)
    }
}

/// The reference's `GatewayzOptions`, checked only.
pub struct GatewayzOptions;

impl GatewayzOptions {
    pub fn from_query(r: &Request) -> Result<GatewayzOptions, Response> {
        decode_bool(r, "accs")?;
        Ok(GatewayzOptions)
    }

    pub fn from_json(f: &Fields) -> Result<GatewayzOptions, String> {
        f.string("name")?;
        f.bool("accounts")?;
        f.string("account_name")?;
        Ok(GatewayzOptions)
    }
}

/// The reference's `LeafzOptions`, checked only (the account filter has
/// no leaf node to filter).
pub struct LeafzOptions;

impl LeafzOptions {
    pub fn from_query(r: &Request) -> Result<LeafzOptions, Response> {
        decode_bool(r, "subs")?;
        Ok(LeafzOptions)
    }

    pub fn from_json(f: &Fields) -> Result<LeafzOptions, String> {
        f.bool("subscriptions")?;
        f.string("account")?;
        Ok(LeafzOptions)
    }
}

#[derive(Serialize)]
pub struct Routez {
    server_id: String,
    now: String,
    num_routes: u64,
    routes: [u8; 0],
}

#[derive(Serialize)]
pub struct Gatewayz {
    server_id: String,
    now: String,
    outbound_gateways: BTreeMap<String, u8>,
    inbound_gateways: BTreeMap<String, u8>,
}

#[derive(Serialize)]
pub struct Leafz {
    server_id: String,
    now: String,
    leafnodes: u64,
    leafs: Option<[u8; 0]>,
}

impl Monitor {
    pub(super) fn routez(&self, _: &RoutezOptions) -> Routez {
        Routez {
            server_id: self.info.server_id.clone(),
            now: rfc3339(self.now()),
            num_routes: 0,
            routes: [],
        }
    }

    pub(super) fn gatewayz(&self, _: &GatewayzOptions) -> Gatewayz {
        Gatewayz {
            server_id: self.info.server_id.clone(),
            now: rfc3339(self.now()),
            outbound_gateways: BTreeMap::new(),
            inbound_gateways: BTreeMap::new(),
        }
    }

    pub(super) fn leafz(&self, _: &LeafzOptions) -> Leafz {
        Leafz {
            server_id: self.info.server_id.clone(),
            now: rfc3339(self.now()),
            leafnodes: 0,
            leafs: None,
        }
    }
}
