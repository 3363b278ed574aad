//! Claims as `natrix jwt` makes and edits them: new operator, account and
//! user claims with nsc's defaults, and the flags that change them.
//!
//! Edits work on the `nats` object as JSON, so fields this tool does not
//! know (JetStream limits, mappings written by nsc) survive an edit; the
//! typed views of [`crate::security::jwt`] check the result before it is
//! signed. Empty lists and objects are dropped as the Go library's
//! `omitempty` drops them.

use serde_json::{json, Map, Value};

use super::args::{many, opt, opt_value, switch, CliError, Flag, Parsed};
use crate::security::jwt::Claims;
use crate::subject;

/// New claims about `sub`, issued by `iss` (iat and jti are set when the
/// token is issued).
pub fn new_claims(iss: &str, sub: &str, name: &str, nats: Value) -> Claims {
    Claims {
        jti: String::new(),
        iat: 0,
        iss: iss.to_string(),
        sub: sub.to_string(),
        name: name.to_string(),
        aud: None,
        exp: None,
        nbf: None,
        nats,
    }
}

pub fn operator_nats() -> Value {
    json!({"type": "operator", "version": 2})
}

/// An account with every limit unlimited, as nsc creates one.
pub fn account_nats() -> Value {
    json!({
        "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                   "wildcards": true, "conn": -1, "leaf": -1},
        "default_permissions": {"pub": {}, "sub": {}},
        "type": "account", "version": 2,
    })
}

/// A user without permissions and without limits of its own.
pub fn user_nats(issuer_account: Option<&str>) -> Value {
    let mut v = json!({"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                       "type": "user", "version": 2});
    if let Some(a) = issuer_account {
        v["issuer_account"] = json!(a);
    }
    v
}

/// The flags that set a user's permissions and limits (also a scoped
/// signing key's template).
pub const USER_FLAGS: &[Flag] = &[
    many("allow-pub", "SUBJECT", "allow publishing to SUBJECT"),
    many(
        "allow-sub",
        "SUBJECT",
        "allow subscribing to SUBJECT (\"subj queue\" for a queue group)",
    ),
    many(
        "allow-pubsub",
        "SUBJECT",
        "allow both publishing and subscribing",
    ),
    many("deny-pub", "SUBJECT", "deny publishing to SUBJECT"),
    many("deny-sub", "SUBJECT", "deny subscribing to SUBJECT"),
    many("deny-pubsub", "SUBJECT", "deny both"),
    many("rm", "SUBJECT", "remove SUBJECT from every permission list"),
    opt_value(
        "allow-pub-response",
        "MAX",
        "may publish MAX replies (default 1) to the reply subject of each request received",
    ),
    opt(
        "response-ttl",
        "DUR",
        "how long the reply permission lasts (e.g. 5s)",
    ),
    switch("rm-response-perms", "remove the reply permission"),
    switch(
        "bearer",
        "a bearer token: no nonce signature needed (--bearer=false clears)",
    ),
    many("src", "CIDR", "connections only from these networks"),
    many("rm-src", "CIDR", "remove a network"),
    many(
        "time",
        "HH:MM:SS-HH:MM:SS",
        "connections only in this daily window",
    ),
    many("rm-time", "HH:MM:SS-HH:MM:SS", "remove a window"),
    opt(
        "locale",
        "TZ",
        "time zone of the windows (e.g. Europe/Paris; default: the server's)",
    ),
    opt("subs", "N", "max subscriptions (-1: unlimited)"),
    opt(
        "payload",
        "N",
        "max message payload in bytes (-1: unlimited)",
    ),
    opt("data", "N", "max data in bytes (-1: unlimited)"),
];

fn obj<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !v.get(key).is_some_and(Value::is_object) {
        v[key] = json!({});
    }
    v[key].as_object_mut().expect("made an object")
}

fn list(m: &mut Map<String, Value>, key: &str) -> Vec<String> {
    match m.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect(),
        Some(Value::String(s)) if !s.is_empty() => s.split(',').map(|p| p.trim().into()).collect(),
        _ => Vec::new(),
    }
}

fn set_list(m: &mut Map<String, Value>, key: &str, items: Vec<String>) {
    if items.is_empty() {
        m.remove(key);
    } else {
        m.insert(key.into(), json!(items));
    }
}

/// Adds `add` to the list `path` (`["pub", "allow"]`), removes `rm`.
fn edit_list(nats: &mut Value, section: &str, key: &str, add: &[String], rm: &[String]) {
    let m = obj(nats, section);
    let mut items = list(m, key);
    for a in add {
        if !items.contains(a) {
            items.push(a.clone());
        }
    }
    items.retain(|i| !rm.contains(i));
    set_list(m, key, items);
}

fn check_subjects(flag: &str, subjects: &[String], queue_ok: bool) -> Result<(), CliError> {
    for s in subjects {
        let mut parts = s.split_whitespace();
        let subj = parts.next().unwrap_or("");
        let queue = parts.next();
        let ok = subject::valid_subscribe(subj.as_bytes())
            && parts.next().is_none()
            && (queue.is_none() || queue_ok);
        if !ok {
            return Err(CliError::Usage(format!(
                "--{flag} {s:?} is not a valid subject{}",
                if queue_ok {
                    " (or \"subject queue\")"
                } else {
                    ""
                }
            )));
        }
    }
    Ok(())
}

fn int_flag(p: &Parsed, name: &str) -> Result<Option<i64>, CliError> {
    match p.int(name)? {
        Some(n) if n < -1 => {
            Err(p.usage(format!("--{name} {n}: use -1 for unlimited, or a count")))
        }
        n => Ok(n),
    }
}

/// `HH:MM:SS` (hours 0-23).
fn valid_clock(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()))
        && parts[0] < "24"
        && parts[1] < "60"
        && parts[2] < "60"
}

/// Applies the [`USER_FLAGS`] given on the command line to a user's (or a
/// template's) `nats` object.
pub fn apply_user_flags(nats: &mut Value, p: &Parsed) -> Result<(), CliError> {
    let pubsub =
        |a: &str, b: &str| -> Vec<String> { p.all(a).iter().chain(p.all(b)).cloned().collect() };
    let allow_pub = pubsub("allow-pub", "allow-pubsub");
    let allow_sub = pubsub("allow-sub", "allow-pubsub");
    let deny_pub = pubsub("deny-pub", "deny-pubsub");
    let deny_sub = pubsub("deny-sub", "deny-pubsub");
    check_subjects("allow-pub", &allow_pub, false)?;
    check_subjects("deny-pub", &deny_pub, false)?;
    check_subjects("allow-sub", &allow_sub, true)?;
    check_subjects("deny-sub", &deny_sub, true)?;
    let rm = p.all("rm").to_vec();
    edit_list(nats, "pub", "allow", &allow_pub, &rm);
    edit_list(nats, "pub", "deny", &deny_pub, &rm);
    edit_list(nats, "sub", "allow", &allow_sub, &rm);
    edit_list(nats, "sub", "deny", &deny_sub, &rm);
    if let Some(max) = p.get("allow-pub-response") {
        let max: i64 = if max.is_empty() {
            1
        } else {
            max.parse().ok().filter(|&n| n >= 0).ok_or_else(|| {
                p.usage(format!(
                    "--allow-pub-response={max}: expected a count of replies"
                ))
            })?
        };
        let ttl = match p.get("response-ttl") {
            Some(d) => parse_duration(d).map_err(|e| p.usage(format!("--response-ttl: {e}")))?,
            None => 0,
        };
        nats["resp"] = json!({"max": max, "ttl": ttl * 1_000_000_000});
    } else if p.has("response-ttl") {
        return Err(p.usage("--response-ttl goes with --allow-pub-response"));
    }
    if p.switch("rm-response-perms") {
        if let Some(m) = nats.as_object_mut() {
            m.remove("resp");
        }
    }
    if let Some(b) = p.get("bearer") {
        if b == "true" {
            nats["bearer_token"] = json!(true);
        } else if let Some(m) = nats.as_object_mut() {
            m.remove("bearer_token");
        }
    }
    for c in p.all("src") {
        if !valid_cidr(c) {
            return Err(p.usage(format!("--src {c:?} is not a network (e.g. 10.0.0.0/8)")));
        }
    }
    {
        let m = nats.as_object_mut().expect("nats is an object");
        let mut src = list(m, "src");
        for c in p.all("src") {
            if !src.contains(c) {
                src.push(c.clone());
            }
        }
        src.retain(|s| !p.all("rm-src").contains(s));
        set_list(m, "src", src);
    }
    let mut times: Vec<Value> = nats
        .get("times")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for t in p.all("time") {
        let (start, end) = t
            .split_once('-')
            .filter(|(s, e)| valid_clock(s) && valid_clock(e))
            .ok_or_else(|| p.usage(format!("--time {t:?}: expected HH:MM:SS-HH:MM:SS")))?;
        times.push(json!({"start": start, "end": end}));
    }
    times.retain(|t| {
        let text = format!(
            "{}-{}",
            t["start"].as_str().unwrap_or(""),
            t["end"].as_str().unwrap_or("")
        );
        !p.all("rm-time").contains(&text)
    });
    let m = nats.as_object_mut().expect("nats is an object");
    if times.is_empty() {
        m.remove("times");
    } else {
        m.insert("times".into(), Value::Array(times));
    }
    if let Some(l) = p.get("locale") {
        if crate::security::operator::tz::load(l).is_none() {
            return Err(p.usage(format!("--locale {l:?} is not a known time zone")));
        }
        m.insert("times_location".into(), json!(l));
    }
    for k in ["subs", "payload", "data"] {
        if let Some(n) = int_flag(p, k)? {
            m.insert(k.into(), json!(n));
        }
    }
    Ok(())
}

pub fn valid_cidr(c: &str) -> bool {
    let Some((ip, bits)) = c.split_once('/') else {
        return false;
    };
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    bits.parse::<u8>().is_ok_and(|b| b <= max)
}

/// The account flags for limits and default permissions.
pub const ACCOUNT_LIMIT_FLAGS: &[Flag] = &[
    opt("conns", "N", "max client connections (-1: unlimited)"),
    opt("leaf-conns", "N", "max leaf node connections"),
    opt("subs", "N", "max subscriptions"),
    opt("payload", "N", "max message payload in bytes"),
    opt("data", "N", "max data in bytes"),
    opt("imports", "N", "max imports"),
    opt("exports", "N", "max exports"),
    opt(
        "wildcard-exports",
        "BOOL",
        "whether exports may contain wildcards (true|false)",
    ),
    switch(
        "disallow-bearer",
        "users may not be bearer tokens (--disallow-bearer=false clears)",
    ),
    many(
        "default-allow-pub",
        "SUBJECT",
        "default permissions of users without their own",
    ),
    many(
        "default-allow-sub",
        "SUBJECT",
        "default permissions: subscribe allow",
    ),
    many(
        "default-deny-pub",
        "SUBJECT",
        "default permissions: publish deny",
    ),
    many(
        "default-deny-sub",
        "SUBJECT",
        "default permissions: subscribe deny",
    ),
    many(
        "rm-default",
        "SUBJECT",
        "remove SUBJECT from the default permissions",
    ),
];

pub fn apply_account_limits(nats: &mut Value, p: &Parsed) -> Result<(), CliError> {
    let limits = obj(nats, "limits");
    for (flag, key) in [
        ("conns", "conn"),
        ("leaf-conns", "leaf"),
        ("subs", "subs"),
        ("payload", "payload"),
        ("data", "data"),
        ("imports", "imports"),
        ("exports", "exports"),
    ] {
        if let Some(n) = int_flag(p, flag)? {
            limits.insert(key.into(), json!(n));
        }
    }
    if let Some(w) = p.get("wildcard-exports") {
        let b: bool = w
            .parse()
            .map_err(|_| p.usage(format!("--wildcard-exports {w:?}: expected true or false")))?;
        limits.insert("wildcards".into(), json!(b));
    }
    if let Some(b) = p.get("disallow-bearer") {
        if b == "true" {
            limits.insert("disallow_bearer".into(), json!(true));
        } else {
            limits.remove("disallow_bearer");
        }
    }
    let dp = obj(nats, "default_permissions");
    let mut dpv = Value::Object(std::mem::take(dp));
    let rm = p.all("rm-default").to_vec();
    for (flag, section, key, queue) in [
        ("default-allow-pub", "pub", "allow", false),
        ("default-deny-pub", "pub", "deny", false),
        ("default-allow-sub", "sub", "allow", true),
        ("default-deny-sub", "sub", "deny", true),
    ] {
        check_subjects(flag, p.all(flag), queue)?;
        edit_list(&mut dpv, section, key, p.all(flag), &rm);
    }
    nats["default_permissions"] = dpv;
    Ok(())
}

/// Seconds in a duration such as `90s`, `30m`, `24h`, `7d`, `2w`, `1y`.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 30m, 24h, 7d, 1y)"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "y" => 365 * 86_400,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (s, m, h, d, w, y)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too long"))
}

/// Days since 1970-01-01 of a civil date (inverse of `timefmt::civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A moment: `0`/`never` (none), a duration from `now`, a date
/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS` (UTC), or unix seconds.
pub fn parse_when(s: &str, now: i64) -> Result<Option<i64>, String> {
    let s = s.trim();
    if s == "0" || s == "never" {
        return Ok(None);
    }
    if s == "now" {
        return Ok(Some(now));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(Some)
            .map_err(|_| format!("{s:?} is not a unix time"));
    }
    if s.len() >= 10 && s.as_bytes()[4] == b'-' {
        let (date, time) = s.split_once('T').unwrap_or((s, "00:00:00"));
        let time = time.trim_end_matches('Z');
        let d: Vec<&str> = date.split('-').collect();
        let bad = || format!("{s:?}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (UTC)");
        let (Ok(y), Ok(m), Ok(day)) = (
            d[0].parse::<i64>(),
            d.get(1).unwrap_or(&"").parse::<u32>(),
            d.get(2).unwrap_or(&"").parse::<u32>(),
        ) else {
            return Err(bad());
        };
        if d.len() != 3 || !(1..=12).contains(&m) || !(1..=31).contains(&day) || !valid_clock(time)
        {
            return Err(bad());
        }
        let t: Vec<i64> = time.split(':').map(|p| p.parse().unwrap_or(0)).collect();
        return Ok(Some(
            days_from_civil(y, m, day) * 86_400 + t[0] * 3600 + t[1] * 60 + t[2],
        ));
    }
    Ok(Some(now + parse_duration(s)?))
}

/// Sets `exp` (`--exp`) and `nbf` (`--start`) from the command line.
pub fn apply_validity(c: &mut Claims, p: &Parsed, now: i64) -> Result<(), CliError> {
    if let Some(e) = p.get("exp") {
        c.exp = parse_when(e, now).map_err(|m| p.usage(format!("--exp: {m}")))?;
    }
    if let Some(s) = p.get("start") {
        c.nbf = parse_when(s, now).map_err(|m| p.usage(format!("--start: {m}")))?;
    }
    if let (Some(e), Some(n)) = (c.exp, c.nbf) {
        if e <= n {
            return Err(p.usage("--exp is not after --start"));
        }
    }
    Ok(())
}

pub const VALIDITY_FLAGS: &[Flag] = &[
    opt(
        "exp",
        "WHEN",
        "expiry: a duration (24h, 30d, 1y), a date (2027-01-31), unix seconds, or 0 for never",
    ),
    opt("start", "WHEN", "not valid before (same forms as --exp)"),
];

/// A moment as `2026-11-30 06:05:07 +01:00 (2026-11-30T05:05:07Z)`: local
/// time first, then UTC.
pub fn local_text(t: i64) -> String {
    let off = crate::security::operator::tz::local().offset_at(t);
    let sign = if off < 0 { '-' } else { '+' };
    let a = off.abs();
    format!(
        "{} {sign}{:02}:{:02} ({}Z)",
        crate::timefmt::civil_seconds(t + off).replace('T', " "),
        a / 3600,
        a / 60 % 60,
        crate::timefmt::civil_seconds(t)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_and_durations() {
        assert_eq!(parse_duration("24h"), Ok(86_400));
        assert_eq!(parse_duration("2w"), Ok(14 * 86_400));
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("h").is_err());
        let now = 1_800_000_000;
        assert_eq!(parse_when("1d", now), Ok(Some(now + 86_400)));
        assert_eq!(parse_when("0", now), Ok(None));
        assert_eq!(parse_when("2000-02-29", now), Ok(Some(951_782_400)));
        assert_eq!(
            parse_when("2027-01-15T08:00:00Z", now),
            Ok(Some(1_800_000_000))
        );
        assert!(parse_when("2027-13-01", now).is_err());
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }

    #[test]
    fn clocks_and_networks() {
        assert!(valid_clock("08:00:00"));
        assert!(!valid_clock("24:00:00"));
        assert!(!valid_clock("8:00:00"));
        assert!(valid_cidr("10.0.0.0/8"));
        assert!(valid_cidr("::1/128"));
        assert!(!valid_cidr("10.0.0.0/33"));
        assert!(!valid_cidr("10.0.0.0"));
    }
}
