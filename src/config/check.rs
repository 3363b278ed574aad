//! Small validators shared by the parser and the model: key paths, Go-style
//! durations, NATS subjects and public nkeys.

use std::time::Duration;

/// Appends `key` to a dotted key path, quoting keys that would make the
/// path ambiguous.
pub(crate) fn join_key(base: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && !key
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '.' | '[' | ']' | '"'));
    let key = if plain {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if base.is_empty() {
        key
    } else {
        format!("{base}.{key}")
    }
}

pub(crate) fn index_path(base: &str, index: usize) -> String {
    format!("{base}[{index}]")
}

/// Parses a duration the way Go's `time.ParseDuration` does
/// (`"300ms"`, `"-1.5h"`, `"2h45m"`; units ns, us/µs, ms, s, m, h; a bare
/// `"0"` is allowed). Returns signed nanoseconds.
pub(crate) fn parse_go_duration(text: &str) -> Result<i128, String> {
    let invalid = || {
        format!(
            "invalid duration {text:?}: expected numbers with units (ns, us, ms, s, m, h), e.g. \"2m\", \"1h30m\" or \"1.5s\""
        )
    };
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(f) => {
                let n = f.bytes().take_while(u8::is_ascii_digit).count();
                f.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = after
            .char_indices()
            .find(|&(_, c)| c == '.' || c.is_ascii_digit())
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => {
                return Err(format!(
                    "invalid duration {text:?}: missing unit (ns, us, ms, s, m, h)"
                ))
            }
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {other:?} (expected ns, us, ms, s, m or h)"
                ))
            }
        };
        // More integer digits than an i64 of nanoseconds can hold is an
        // overflow anyway, and fraction digits past 18 are below nanosecond
        // precision; the bounds keep the i128 arithmetic from overflowing.
        if int_part.len() > 20 {
            return Err(invalid());
        }
        let whole: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        let mut frac_ns: i128 = 0;
        let mut div: i128 = 1;
        for d in frac_part.bytes().take(18) {
            frac_ns = frac_ns * 10 + i128::from(d - b'0');
            div *= 10;
        }
        total += whole * scale + frac_ns * scale / div;
        if total > i128::from(i64::MAX) {
            return Err(invalid());
        }
        rest = after;
    }
    Ok(if negative { -total } else { total })
}

/// A non-negative Go-style duration.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let ns = parse_go_duration(text)?;
    u64::try_from(ns)
        .map(Duration::from_nanos)
        .map_err(|_| format!("duration {text:?} must not be negative"))
}

/// Formats a duration like Go does in messages (`1m30s`, `500ms`).
pub(crate) fn show_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}us", trim_float(ns as f64 / 1e3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", trim_float(ns as f64 / 1e6));
    }
    let secs = d.as_secs();
    let frac = f64::from(d.subsec_nanos()) / 1e9;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let s = trim_float(s as f64 + frac);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

fn trim_float(f: f64) -> String {
    let s = format!("{f:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// A subject that may be subscribed to: non-empty tokens, no whitespace,
/// `>` only as the last token.
pub(crate) fn is_valid_subject(subject: &str) -> bool {
    if subject.is_empty() {
        return false;
    }
    let mut after_fwc = false;
    for token in subject.split('.') {
        if token.is_empty() || after_fwc {
            return false;
        }
        if token
            .chars()
            .any(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c'))
        {
            return false;
        }
        if token == ">" {
            after_fwc = true;
        }
    }
    true
}

/// True when every subject matched by `subject` is also matched by
/// `pattern` (both may hold wildcards): `foo.*` is within `>` and `*.*`
/// but not within `foo.bar`.
pub(crate) fn is_subset_match(subject: &str, pattern: &str) -> bool {
    let tokens: Vec<&str> = subject.split('.').collect();
    let test: Vec<&str> = pattern.split('.').collect();
    for (i, t2) in test.iter().enumerate() {
        let Some(t1) = tokens.get(i) else {
            return false;
        };
        if t2.is_empty() {
            return false;
        }
        if *t2 == ">" {
            return true;
        }
        if t1.is_empty() || *t1 == ">" {
            return false;
        }
        if *t1 == "*" {
            if *t2 != "*" {
                return false;
            }
            continue;
        }
        if *t2 != "*" && t1 != t2 {
            return false;
        }
    }
    tokens.len() == test.len()
}

/// Kinds of public nkeys that appear in configuration files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NkeyKind {
    Operator,
    Account,
    User,
}

impl NkeyKind {
    fn prefix_byte(self) -> u8 {
        match self {
            NkeyKind::Operator => 14 << 3,
            NkeyKind::Account => 0,
            NkeyKind::User => 20 << 3,
        }
    }
}

/// Validates an encoded public nkey: base32 (RFC 4648, unpadded) of a
/// prefix byte, a 32-byte ed25519 key and a little-endian CRC-16/XMODEM.
pub(crate) fn is_valid_public_nkey(key: &str, kind: NkeyKind) -> bool {
    let Some(raw) = base32_decode(key) else {
        return false;
    };
    if raw.len() != 35 || raw[0] != kind.prefix_byte() {
        return false;
    }
    let crc = u16::from_le_bytes([raw[33], raw[34]]);
    crc16(&raw[..33]) == crc
}

fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let s = |t: &str| parse_go_duration(t).unwrap();
        assert_eq!(s("0"), 0);
        assert_eq!(s("2m"), 120_000_000_000);
        assert_eq!(s("500ms"), 500_000_000);
        assert_eq!(s("1h30m"), 5_400_000_000_000);
        assert_eq!(s("1.5s"), 1_500_000_000);
        assert_eq!(s(".5s"), 500_000_000);
        assert_eq!(s("-1m"), -60_000_000_000);
        assert_eq!(s("10us"), 10_000);
        assert_eq!(s("10µs"), 10_000);
        assert_eq!(s("3ns"), 3);
        assert!(parse_go_duration("").is_err());
        assert!(parse_go_duration("5").unwrap_err().contains("missing unit"));
        assert!(parse_go_duration("5d")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_go_duration("s").is_err());
        assert!(parse_go_duration("99999999999h").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(show_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(show_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(show_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(show_duration(Duration::from_secs(7200)), "2h0m0s");
    }

    #[test]
    fn subjects() {
        assert!(is_valid_subject("foo.bar"));
        assert!(is_valid_subject("foo.*.>"));
        assert!(!is_valid_subject("foo..bar"));
        assert!(!is_valid_subject("foo.>.bar"));
        assert!(!is_valid_subject(""));
        assert!(!is_valid_subject("a b"));
        assert!(is_subset_match("foo.bar", "foo.*"));
        assert!(is_subset_match("foo.*", ">"));
        assert!(is_subset_match("foo.*", "*.*"));
        assert!(!is_subset_match("foo.*", "foo.bar"));
        assert!(!is_subset_match("foo.>", "foo.*"));
        assert!(is_subset_match("foo.>", "foo.>"));
        assert!(!is_subset_match("bar", "foo.>"));
    }

    #[test]
    fn nkeys() {
        let user = "UBRYMDSRTC6AVJL6USKKS3FIOE466GMEU67PZDGOWYSYHWA7GSKO42VW";
        let op = "OBYEOZQ46VZMFMNETBAW2H6VGDSOBLP67VUEZJ5LPR3PIZBWWRIY4UI4";
        let acc = "AB5UKNPVHDWBP5WODG742274I3OGY5FM3CBIFCYI4OFEH7Y23GNZPXFE";
        assert!(is_valid_public_nkey(user, NkeyKind::User));
        assert!(is_valid_public_nkey(op, NkeyKind::Operator));
        assert!(is_valid_public_nkey(acc, NkeyKind::Account));
        assert!(!is_valid_public_nkey(user, NkeyKind::Account));
        assert!(!is_valid_public_nkey(
            "UBRYMDSRTC6AVJL6USKKS3FIOE466GMEU67PZDGOWYSYHWA7GSKO42VX",
            NkeyKind::User
        ));
        assert!(!is_valid_public_nkey("UBADKEY", NkeyKind::User));
    }
}
