//! HTTP query parameters as the reference decodes them (Go's `strconv`
//! with its error texts), and answers as it writes them: indented JSON,
//! or JSONP with `callback`.

use serde::Serialize;

use super::http::{Request, Response};

/// Go's `strconv.ParseBool`.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn go_quote(v: &str) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Reads query parameter `key` with `parse`; empty or absent gives the
/// type's zero value. A bad value gets the reference's error text, naming
/// the Go type and parse function it uses for that parameter.
fn decode<T: Default>(
    r: &Request,
    key: &str,
    (go_type, go_func): (&str, &str),
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, Response> {
    let v = r.get(key);
    if v.is_empty() {
        return Ok(T::default());
    }
    parse(v).ok_or_else(|| {
        Response::bad_request(format!(
            "Error decoding {go_type} for '{key}': strconv.{go_func}: parsing {}: invalid syntax",
            go_quote(v)
        ))
    })
}

pub fn decode_bool(r: &Request, key: &str) -> Result<bool, Response> {
    decode(r, key, ("boolean", "ParseBool"), parse_bool)
}

pub fn decode_int(r: &Request, key: &str) -> Result<i64, Response> {
    decode(r, key, ("int", "Atoi"), |v| v.parse().ok())
}

pub fn decode_u64(r: &Request, key: &str) -> Result<u64, Response> {
    decode(r, key, ("uint64", "ParseUint"), |v| v.parse().ok())
}

/// An endpoint's answer over HTTP: its JSON indented as Go's
/// `MarshalIndent` with two spaces, or its error as a 400 with the text.
pub fn reply<T: Serialize>(r: &Request, v: Result<T, String>) -> Response {
    match v {
        Ok(v) => respond_json(r, &v, true),
        Err(e) => Response::bad_request(e),
    }
}

/// JSON, or JSONP when the request names a `callback`.
pub fn respond_json<T: Serialize>(r: &Request, v: &T, pretty: bool) -> Response {
    let body = if pretty {
        serde_json::to_vec_pretty(v)
    } else {
        serde_json::to_vec(v)
    }
    .unwrap_or_default();
    respond_body(r, body)
}

/// A body the reference sends through its `ResponseHandler`: as JSON, or
/// wrapped for JSONP when the request names a `callback`.
pub fn respond_body(r: &Request, body: Vec<u8>) -> Response {
    let cb = r.get("callback");
    if cb.is_empty() {
        Response::new(200, "application/json", body)
    } else {
        let mut out = Vec::with_capacity(body.len() + cb.len() + 2);
        out.extend_from_slice(cb.as_bytes());
        out.push(b'(');
        out.extend_from_slice(&body);
        out.push(b')');
        Response::new(200, "application/javascript", out)
    }
}
