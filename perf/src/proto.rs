//! NATS client wire protocol: parsing server frames and encoding client ops.
//!
//! Everything here is pure (no I/O) so it can be unit-tested and driven from
//! memory by the self-test, which measures exactly the code the benchmark
//! clients run.

use std::fmt;

/// A control line longer than this without a newline is a protocol error
/// rather than a reason to keep buffering.
pub const MAX_CONTROL_LINE: usize = 64 * 1024;

/// One complete frame sent by a server. Slices borrow the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Info(&'a [u8]),
    Msg(Msg<'a>),
    Ping,
    Pong,
    Ok,
    Err(&'a [u8]),
}

#[derive(Debug, PartialEq, Eq)]
pub struct Msg<'a> {
    pub subject: &'a [u8],
    pub sid: &'a [u8],
    pub reply: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    UnknownOp(String),
    BadMsg(String),
    LineTooLong,
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::UnknownOp(l) => write!(f, "unknown protocol op: {l:?}"),
            ProtoError::BadMsg(l) => write!(f, "malformed MSG line: {l:?}"),
            ProtoError::LineTooLong => write!(f, "control line exceeds {MAX_CONTROL_LINE} bytes"),
        }
    }
}

impl std::error::Error for ProtoError {}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(120)]).into_owned()
}

/// Parses the first frame in `buf`.
///
/// Returns `Ok(None)` when `buf` holds only a prefix of a frame; the caller
/// keeps the bytes and calls again with more. On success returns the frame and
/// the number of bytes it occupied.
pub fn parse_frame(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, ProtoError> {
    let Some(nl) = memchr::memchr(b'\n', buf) else {
        return if buf.len() > MAX_CONTROL_LINE {
            Err(ProtoError::LineTooLong)
        } else {
            Ok(None)
        };
    };
    let line_end = nl + 1;
    let line = strip_cr(&buf[..nl]);
    // Fast path for the frame that dominates benchmark traffic.
    if line.len() > 4 && line[..4].eq_ignore_ascii_case(b"MSG ") {
        return parse_msg(&line[4..], buf, line_end);
    }
    let op_len = line
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(line.len());
    let (op, args) = line.split_at(op_len);
    let frame = if op.eq_ignore_ascii_case(b"MSG") {
        return parse_msg(args, buf, line_end);
    } else if op.eq_ignore_ascii_case(b"PING") {
        Frame::Ping
    } else if op.eq_ignore_ascii_case(b"PONG") {
        Frame::Pong
    } else if op.eq_ignore_ascii_case(b"+OK") {
        Frame::Ok
    } else if op.eq_ignore_ascii_case(b"-ERR") {
        Frame::Err(trim(args))
    } else if op.eq_ignore_ascii_case(b"INFO") {
        Frame::Info(trim(args))
    } else {
        return Err(ProtoError::UnknownOp(lossy(line)));
    };
    Ok(Some((frame, line_end)))
}

/// `MSG <subject> <sid> [reply-to] <#bytes>\r\n<payload>\r\n`
fn parse_msg<'a>(
    args: &'a [u8],
    buf: &'a [u8],
    line_end: usize,
) -> Result<Option<(Frame<'a>, usize)>, ProtoError> {
    let bad = || ProtoError::BadMsg(lossy(args));
    let is_space = |b: u8| b == b' ' || b == b'\t';
    let mut toks: [&[u8]; 4] = [&[]; 4];
    let mut n = 0;
    let mut i = 0;
    loop {
        while i < args.len() && is_space(args[i]) {
            i += 1;
        }
        if i == args.len() {
            break;
        }
        let start = i;
        while i < args.len() && !is_space(args[i]) {
            i += 1;
        }
        if n == toks.len() {
            return Err(bad());
        }
        toks[n] = &args[start..i];
        n += 1;
    }
    let (subject, sid, reply, size) = match n {
        3 => (toks[0], toks[1], None, toks[2]),
        4 => (toks[0], toks[1], Some(toks[2]), toks[3]),
        _ => return Err(bad()),
    };
    let size = parse_usize(size).ok_or_else(bad)?;
    let end = line_end + size + 2;
    if buf.len() < end {
        return Ok(None);
    }
    if &buf[end - 2..end] != b"\r\n" {
        return Err(bad());
    }
    let payload = &buf[line_end..line_end + size];
    Ok(Some((
        Frame::Msg(Msg {
            subject,
            sid,
            reply,
            payload,
        }),
        end,
    )))
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &b[start..end]
}

pub fn parse_usize(b: &[u8]) -> Option<usize> {
    if b.is_empty() || b.len() > 15 {
        return None;
    }
    b.iter().try_fold(0usize, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + usize::from(c - b'0'))
    })
}

/// Identifies a benchmark message: which publisher sent it and its sequence
/// number. Stored little-endian in the first [`Stamp::LEN`] payload bytes so
/// subscribers can check for loss, duplication and reordering per publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub publisher: u32,
    pub seq: u64,
}

impl Stamp {
    pub const LEN: usize = 12;
    /// Probe messages check subscription propagation before measuring; they
    /// are never counted as deliveries.
    pub const PROBE_SEQ: u64 = u64::MAX;

    pub fn probe(publisher: u32) -> Self {
        Stamp {
            publisher,
            seq: Self::PROBE_SEQ,
        }
    }

    pub fn is_probe(&self) -> bool {
        self.seq == Self::PROBE_SEQ
    }

    pub fn write(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.seq.to_le_bytes());
        out[8..12].copy_from_slice(&self.publisher.to_le_bytes());
    }

    pub fn read(payload: &[u8]) -> Option<Stamp> {
        let b = payload.get(..Self::LEN)?;
        Some(Stamp {
            seq: u64::from_le_bytes(b[..8].try_into().ok()?),
            publisher: u32::from_le_bytes(b[8..12].try_into().ok()?),
        })
    }
}

/// A pre-encoded `PUB` frame; encoding a message is one copy plus patching the
/// stamp, which keeps the publisher far cheaper than the server it drives.
#[derive(Debug, Clone)]
pub struct PubTemplate {
    bytes: Vec<u8>,
    payload_at: usize,
}

impl PubTemplate {
    /// `payload_len` must be at least [`Stamp::LEN`].
    pub fn new(subject: &str, reply: Option<&str>, payload_len: usize) -> Self {
        assert!(payload_len >= Stamp::LEN, "payload must hold a stamp");
        let mut bytes = match reply {
            Some(r) => format!("PUB {subject} {r} {payload_len}\r\n"),
            None => format!("PUB {subject} {payload_len}\r\n"),
        }
        .into_bytes();
        let payload_at = bytes.len();
        // Printable filler keeps captures readable when debugging a server.
        bytes.extend((0..payload_len).map(|i| b'a' + (i % 26) as u8));
        bytes.extend_from_slice(b"\r\n");
        PubTemplate { bytes, payload_at }
    }

    /// Bytes one message occupies on the wire.
    pub fn wire_len(&self) -> usize {
        self.bytes.len()
    }

    pub fn encode(&self, out: &mut Vec<u8>, stamp: Stamp) {
        let at = out.len() + self.payload_at;
        out.extend_from_slice(&self.bytes);
        stamp.write(&mut out[at..at + Stamp::LEN]);
    }
}

/// Encodes `PUB <reply> <len>\r\n<payload>\r\n` for a responder echoing a
/// request's payload.
pub fn encode_pub(out: &mut Vec<u8>, subject: &[u8], payload: &[u8]) {
    out.extend_from_slice(b"PUB ");
    out.extend_from_slice(subject);
    out.push(b' ');
    push_usize(out, payload.len());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

fn push_usize(out: &mut Vec<u8>, mut v: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

pub fn encode_sub(subject: &str, queue: Option<&str>, sid: u64) -> String {
    match queue {
        Some(q) => format!("SUB {subject} {q} {sid}\r\n"),
        None => format!("SUB {subject} {sid}\r\n"),
    }
}

pub fn encode_unsub(sid: u64) -> String {
    format!("UNSUB {sid}\r\n")
}

/// What a `CONNECT` authenticates with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectAuth<'a> {
    None,
    UserPass(&'a str, &'a str),
    /// A user JWT and `sig`, the signature over the server's nonce.
    Jwt {
        jwt: &'a str,
        sig: &'a str,
    },
}

/// `CONNECT` with verbose off: the harness never wants `+OK` per op.
/// `tls` says whether the connection was upgraded to TLS. A JWT connect
/// announces `headers` and `no_responders` as the NATS clients do; the
/// others keep the flags the earlier scenarios were measured with (neither
/// changes how a server handles plain `PUB`/`MSG`).
pub fn encode_connect(name: &str, auth: ConnectAuth<'_>, tls: bool) -> String {
    let (auth, modern) = match auth {
        ConnectAuth::None => (String::new(), false),
        ConnectAuth::UserPass(u, p) => (
            format!(
                r#","user":"{}","pass":"{}""#,
                json_escape(u),
                json_escape(p)
            ),
            false,
        ),
        ConnectAuth::Jwt { jwt, sig } => (
            format!(
                r#","jwt":"{}","sig":"{}""#,
                json_escape(jwt),
                json_escape(sig)
            ),
            true,
        ),
    };
    format!(
        concat!(
            r#"CONNECT {{"verbose":false,"pedantic":false,"tls_required":{},"#,
            r#""name":"{}","lang":"rust","version":"{}","protocol":1,"echo":true,"#,
            r#""headers":{},"no_responders":{}{}}}"#,
            "\r\n"
        ),
        tls,
        json_escape(name),
        env!("CARGO_PKG_VERSION"),
        modern,
        modern,
        auth
    )
}

/// The string value of `"key"` in a flat JSON object such as `INFO`'s
/// (`nonce`) or a JWT's claims (`iss`, `sub`): the first occurrence of
/// `"key"` followed by `:` and a string. Escapes `\"`, `\\` and `\/` are
/// undone; others are kept as written (nonces and nkeys have none).
pub fn json_string_field(json: &[u8], key: &str) -> Option<String> {
    let needle = format!("\"{key}\"");
    let mut from = 0;
    while let Some(at) = memchr::memmem::find(&json[from..], needle.as_bytes()) {
        let mut i = from + at + needle.len();
        from = i;
        let skip_ws = |i: &mut usize| {
            while json.get(*i).is_some_and(|c| c.is_ascii_whitespace()) {
                *i += 1;
            }
        };
        skip_ws(&mut i);
        if json.get(i) != Some(&b':') {
            // A value that happens to equal the key, or a longer key.
            continue;
        }
        i += 1;
        skip_ws(&mut i);
        if json.get(i) != Some(&b'"') {
            return None;
        }
        i += 1;
        let mut out = Vec::new();
        while let Some(&c) = json.get(i) {
            match c {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let next = *json.get(i + 1)?;
                    if !matches!(next, b'"' | b'\\' | b'/') {
                        out.push(c);
                    }
                    out.push(next);
                    i += 2;
                }
                _ => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        return None;
    }
    None
}

fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

pub const PING: &[u8] = b"PING\r\n";
pub const PONG: &[u8] = b"PONG\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn one(buf: &[u8]) -> (Frame<'_>, usize) {
        parse_frame(buf).unwrap().unwrap()
    }

    #[test]
    fn parses_control_frames() {
        assert_eq!(one(b"PING\r\n"), (Frame::Ping, 6));
        assert_eq!(one(b"PONG\r\nPING\r\n"), (Frame::Pong, 6));
        assert_eq!(one(b"+OK\r\n"), (Frame::Ok, 5));
        assert_eq!(one(b"ping\n"), (Frame::Ping, 5));
        assert_eq!(
            one(b"-ERR 'Authorization Violation'\r\n"),
            (Frame::Err(b"'Authorization Violation'"), 32)
        );
        let (f, n) = one(b"INFO {\"server_id\":\"x\"} \r\nMSG");
        assert_eq!(f, Frame::Info(b"{\"server_id\":\"x\"}"));
        assert_eq!(n, 25);
    }

    #[test]
    fn parses_msg_with_and_without_reply() {
        let buf = b"MSG foo.bar 9 5\r\nhello\r\nMSG a 1 _INBOX.x 0\r\n\r\n";
        let (f, n) = one(buf);
        assert_eq!(
            f,
            Frame::Msg(Msg {
                subject: b"foo.bar",
                sid: b"9",
                reply: None,
                payload: b"hello"
            })
        );
        let (f, m) = one(&buf[n..]);
        assert_eq!(
            f,
            Frame::Msg(Msg {
                subject: b"a",
                sid: b"1",
                reply: Some(b"_INBOX.x"),
                payload: b""
            })
        );
        assert_eq!(n + m, buf.len());
    }

    #[test]
    fn tolerates_extra_whitespace_in_msg() {
        let (f, _) = one(b"MSG  s\t1   3\r\nabc\r\n");
        assert!(matches!(
            f,
            Frame::Msg(Msg {
                payload: b"abc",
                ..
            })
        ));
    }

    #[test]
    fn payload_may_contain_crlf() {
        let (f, n) = one(b"MSG s 1 4\r\n\r\n\r\n\r\n");
        assert!(matches!(
            f,
            Frame::Msg(Msg {
                payload: b"\r\n\r\n",
                ..
            })
        ));
        assert_eq!(n, 17);
    }

    #[test]
    fn every_strict_prefix_is_incomplete() {
        let buf = b"MSG subj 1 reply 10\r\n0123456789\r\n";
        for cut in 0..buf.len() {
            assert_eq!(parse_frame(&buf[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(one(buf).1, buf.len());
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            parse_frame(b"HELLO\r\n"),
            Err(ProtoError::UnknownOp(_))
        ));
        assert!(matches!(
            parse_frame(b"MSG a 1\r\n"),
            Err(ProtoError::BadMsg(_))
        ));
        assert!(matches!(
            parse_frame(b"MSG a 1 b c 3\r\n"),
            Err(ProtoError::BadMsg(_))
        ));
        assert!(matches!(
            parse_frame(b"MSG a 1 x\r\n"),
            Err(ProtoError::BadMsg(_))
        ));
        assert!(matches!(
            parse_frame(b"MSG a 1 3\r\nabcXY"),
            Err(ProtoError::BadMsg(_))
        ));
        let long = vec![b'x'; MAX_CONTROL_LINE + 1];
        assert_eq!(parse_frame(&long), Err(ProtoError::LineTooLong));
    }

    #[test]
    fn stamp_round_trips_through_template() {
        let t = PubTemplate::new("bench.data", None, 16);
        assert_eq!(t.wire_len(), "PUB bench.data 16\r\n".len() + 16 + 2);
        let mut out = Vec::new();
        t.encode(
            &mut out,
            Stamp {
                publisher: 3,
                seq: 41,
            },
        );
        t.encode(&mut out, Stamp::probe(7));
        assert_eq!(out.len(), 2 * t.wire_len());
        assert!(out.starts_with(b"PUB bench.data 16\r\n"));
        // The server rewrites PUB to MSG; the payload is what matters here.
        let payload = &out[19..35];
        assert_eq!(
            Stamp::read(payload),
            Some(Stamp {
                publisher: 3,
                seq: 41
            })
        );
        let second = &out[t.wire_len() + 19..t.wire_len() + 35];
        assert!(Stamp::read(second).unwrap().is_probe());
        assert_eq!(Stamp::read(&payload[..11]), None);
    }

    #[test]
    fn template_with_reply() {
        let t = PubTemplate::new("req", Some("rep"), 12);
        let mut out = Vec::new();
        t.encode(
            &mut out,
            Stamp {
                publisher: 0,
                seq: 0,
            },
        );
        assert!(out.starts_with(b"PUB req rep 12\r\n"));
        assert!(out.ends_with(b"\r\n"));
    }

    #[test]
    fn encodes_client_ops() {
        let mut out = Vec::new();
        encode_pub(&mut out, b"r.1", b"xy");
        encode_pub(&mut out, b"r.2", &[b'z'; 120]);
        assert!(out.starts_with(b"PUB r.1 2\r\nxy\r\nPUB r.2 120\r\n"));
        assert_eq!(encode_sub("s", Some("q"), 4), "SUB s q 4\r\n");
        assert_eq!(encode_sub("s", None, 4), "SUB s 4\r\n");
        assert_eq!(encode_unsub(4), "UNSUB 4\r\n");
        let c = encode_connect("n", ConnectAuth::UserPass("u\"", "p\\"), false);
        assert!(c.starts_with("CONNECT {\"verbose\":false"));
        assert!(c.contains(r#""tls_required":false,"#));
        assert!(c.contains(r#""user":"u\"","pass":"p\\""#));
        assert!(c.contains(r#""headers":false,"no_responders":false,"#));
        assert!(c.ends_with("}\r\n"));
        assert!(!encode_connect("n", ConnectAuth::None, false).contains("user"));
        assert!(encode_connect("n", ConnectAuth::None, true).contains(r#""tls_required":true,"#));
    }

    #[test]
    fn encodes_jwt_connect() {
        let c = encode_connect(
            "bench",
            ConnectAuth::Jwt {
                jwt: "eyJ0.eyJj.c2ln",
                sig: "AbC-_d",
            },
            false,
        );
        assert_eq!(
            c,
            format!(
                concat!(
                    r#"CONNECT {{"verbose":false,"pedantic":false,"tls_required":false,"#,
                    r#""name":"bench","lang":"rust","version":"{}","protocol":1,"echo":true,"#,
                    r#""headers":true,"no_responders":true,"jwt":"eyJ0.eyJj.c2ln","sig":"AbC-_d"}}"#,
                    "\r\n"
                ),
                env!("CARGO_PKG_VERSION")
            )
        );
        assert!(!c.contains("user"));
    }

    #[test]
    fn finds_json_string_fields() {
        // The reference's INFO in operator mode, abridged.
        let info = br#"{"server_id":"NDX","server_name":"nonce","version":"2.9.10","go":"go1.19","host":"127.0.0.1","port":4222,"headers":true,"auth_required":true,"max_payload":1048576,"proto":1,"nonce":"kmn7Vb4W6Ls0eSg"}"#;
        assert_eq!(
            json_string_field(info, "nonce").as_deref(),
            Some("kmn7Vb4W6Ls0eSg")
        );
        assert_eq!(
            json_string_field(info, "version").as_deref(),
            Some("2.9.10")
        );
        assert_eq!(json_string_field(info, "port"), None, "not a string");
        assert_eq!(json_string_field(info, "jwt"), None);
        assert_eq!(
            json_string_field(br#"{ "nonce" :  "a\"b\/c\u0041" }"#, "nonce").as_deref(),
            Some(r#"a"b/c\u0041"#)
        );
        assert_eq!(
            json_string_field(br#"{"nonce":"abc"#, "nonce"),
            None,
            "unterminated"
        );
        assert_eq!(
            json_string_field(br#"{"xnonce":"a","nonce":"b"}"#, "nonce").as_deref(),
            Some("b")
        );
        // Without a nonce (a server not asking for signatures).
        assert_eq!(json_string_field(br#"{"server_id":"x"}"#, "nonce"), None);
    }

    #[test]
    fn parses_decimal_sizes() {
        assert_eq!(parse_usize(b"0"), Some(0));
        assert_eq!(parse_usize(b"4096"), Some(4096));
        assert_eq!(parse_usize(b""), None);
        assert_eq!(parse_usize(b"-1"), None);
        assert_eq!(parse_usize(b"1234567890123456"), None);
    }
}
