//! Protocol trace lines (`-V`, `trace: true`) in the reference's words:
//! `<<- [PUB foo 5]` for what a client sent, `<<- MSG_PAYLOAD: ["hello"]`
//! for a message body, `->> [MSG foo 1 5]` for what it was sent and
//! `<-> [DELSUB 1]` for a subscription going away. Only called while
//! tracing is on; nothing here is on the message path otherwise.

use std::borrow::Cow;
use std::fmt::Write;

/// Splits a raw operation, as read, into its name and arguments: the first
/// line without its line end, the name up to the first blank, the
/// arguments after the blanks that follow it (their inner spacing as the
/// client wrote it).
pub fn op_arg(raw: &[u8]) -> &[u8] {
    let line = match memchr::memchr(b'\n', raw) {
        Some(i) => &raw[..i],
        None => raw,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let name_end = line
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(line.len());
    let rest = &line[name_end..];
    let start = rest
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(rest.len());
    &rest[start..]
}

/// `[OP arg]`, or `[OP]` without arguments, as the reference prints the
/// pair.
pub fn bracket(op: &str, arg: Option<&[u8]>) -> String {
    match arg {
        Some(a) => format!("[{op} {}]", String::from_utf8_lossy(a)),
        None => format!("[{op}]"),
    }
}

/// A CONNECT's arguments with the first password value replaced by
/// `[REDACTED]`: the first `pass…` key (`pass`, `password`, …) followed by
/// `:` or `=` loses the value after it, up to a quote, comma, brace or
/// line end.
pub fn redact_pass(arg: &[u8]) -> Cow<'_, [u8]> {
    let ws = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c);
    let mut from = 0;
    while let Some(at) = memchr::memmem::find(&arg[from..], b"pass") {
        let key_end = from + at + 4;
        from = from + at + 1;
        // The key runs on over non-blanks, as short as will do.
        let mut k = key_end;
        loop {
            let mut i = k;
            if arg.get(i) == Some(&b'"') {
                i += 1;
            }
            while arg.get(i).is_some_and(|&b| ws(b)) {
                i += 1;
            }
            if matches!(arg.get(i), Some(b':' | b'=')) {
                i += 1;
                while arg.get(i).is_some_and(|&b| ws(b)) {
                    i += 1;
                }
                if arg.get(i) == Some(&b'"') {
                    i += 1;
                }
                let end = arg[i..]
                    .iter()
                    .position(|b| matches!(b, b'"' | b',' | b'\r' | b'\n' | b'}'))
                    .map_or(arg.len(), |n| i + n);
                let mut out = Vec::with_capacity(arg.len() + 10);
                out.extend_from_slice(&arg[..i]);
                out.extend_from_slice(b"[REDACTED]");
                out.extend_from_slice(&arg[end..]);
                return Cow::Owned(out);
            }
            match arg.get(k) {
                Some(&b) if !ws(b) => k += 1,
                _ => break,
            }
        }
    }
    Cow::Borrowed(arg)
}

/// `MSG_PAYLOAD: ["…"]`: the body quoted as Go's `%q` does. With `max`
/// above 0 and a longer body, the first `max` characters of the quoted
/// first `max` bytes, then `...`, exactly as the reference cuts it.
pub fn payload(body: &[u8], max: usize) -> String {
    if max > 0 && body.len() > max {
        let quoted = go_quote(&body[..max]);
        // Go slices the quoted string by bytes, after the opening quote.
        let cut = &quoted.as_bytes()[1..(max + 1).min(quoted.len())];
        format!("MSG_PAYLOAD: [\"{}...\"]", String::from_utf8_lossy(cut))
    } else {
        format!("MSG_PAYLOAD: [{}]", go_quote(body))
    }
}

/// Go's `strconv.Quote` of bytes: printable characters as they are, `"`
/// and `\` escaped, the usual C escapes, `\xNN` for other control bytes
/// and bytes that are not UTF-8, `\uNNNN` / `\UNNNNNNNN` for characters
/// that do not print.
pub fn go_quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\x07' => out.push_str("\\a"),
                '\x08' => out.push_str("\\b"),
                '\x0c' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\x0b' => out.push_str("\\v"),
                c if prints(c) => out.push(c),
                c if (c as u32) < 0x80 => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if (c as u32) < 0x10000 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
    out
}

/// Whether Go's `unicode.IsPrint` holds, closely enough for a trace:
/// the ASCII space and graphic characters print; controls, other spaces,
/// invisible format characters, private use and non-characters do not.
fn prints(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(u,
            0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e
            | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x206f
            | 0xfeff | 0xfff9..=0xfffb | 0xe000..=0xf8ff
            | 0xf0000..=0x10ffff)
        || (u & 0xfffe) == 0xfffe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_keep_their_inner_spacing() {
        assert_eq!(op_arg(b"PUB  foo   2\r\nab\r\n"), b"foo   2");
        assert_eq!(op_arg(b"HPUB foo  reply 12 17\r\n"), b"foo  reply 12 17");
        assert_eq!(op_arg(b"PING\r\n"), b"");
        assert_eq!(op_arg(b"sub\tx 1\n"), b"x 1");
        assert_eq!(bracket("PUB", Some(b"foo 5")), "[PUB foo 5]");
        assert_eq!(bracket("PING", None), "[PING]");
    }

    #[test]
    fn passwords_are_redacted_as_the_reference_does() {
        let r = |s: &str| String::from_utf8(redact_pass(s.as_bytes()).into_owned()).unwrap();
        assert_eq!(
            r(r#"{"verbose":true,"user":"a","pass":"secretpw"}"#),
            r#"{"verbose":true,"user":"a","pass":"[REDACTED]"}"#
        );
        assert_eq!(
            r(r#"{"password": "p,w", "pass":"x"}"#),
            r#"{"password": "[REDACTED],w", "pass":"x"}"#
        );
        // The key may run on over the following JSON, as the reference's
        // pattern lets it.
        assert_eq!(
            r(r#"{"user":"passenger","pass":"x"}"#),
            r#"{"user":"passenger","pass":"[REDACTED]"}"#
        );
        assert_eq!(r(r#"{"user":"a"}"#), r#"{"user":"a"}"#);
        assert_eq!(r(r#"{"pass":12}"#), r#"{"pass":[REDACTED]}"#);
    }

    #[test]
    fn payloads_are_quoted_and_cut_as_go_does() {
        assert_eq!(payload(b"hello", 0), r#"MSG_PAYLOAD: ["hello"]"#);
        assert_eq!(payload(b"", 0), r#"MSG_PAYLOAD: [""]"#);
        assert_eq!(payload(b"\x01\xff", 0), r#"MSG_PAYLOAD: ["\x01\xff"]"#);
        assert_eq!(
            payload("\t\"\\é\u{a0}\u{7f}".as_bytes(), 0),
            r#"MSG_PAYLOAD: ["\t\"\\é\u00a0\x7f"]"#
        );
        // Cut: the first 4 characters of the quoted first 4 bytes.
        assert_eq!(
            payload(b"\r\n\t\"\\\x80a", 4),
            r#"MSG_PAYLOAD: ["\r\n..."]"#
        );
        assert_eq!(payload(b"NATS/1.0\r\n", 4), r#"MSG_PAYLOAD: ["NATS..."]"#);
        assert_eq!(payload(b"abc", 4), r#"MSG_PAYLOAD: ["abc"]"#);
    }
}
