//! Zero-copy parser for the client side of the NATS protocol.
//!
//! The reference server parses byte by byte and keeps a scratch buffer only
//! when a line is split across reads. We get the same observable behaviour
//! over a contiguous read buffer: the operation name is checked byte by byte
//! (so garbage is rejected as soon as it arrives, without waiting for a line
//! end), and the arguments are found with `memchr`. An incomplete operation
//! returns [`Parsed::Incomplete`] and is parsed again from its first byte once
//! more bytes have arrived; only the name prefix is rescanned, which is at most
//! a few bytes.
//!
//! Ops borrow from the input. Nothing here allocates.

use memchr::{memchr, memrchr};

/// One client operation, borrowing the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Op<'a> {
    Connect(&'a [u8]),
    /// `PUB`/`HPUB`. `hdr_len` is 0 for `PUB`; `msg` holds headers then payload.
    Pub {
        subject: &'a [u8],
        reply: Option<&'a [u8]>,
        hdr_len: usize,
        msg: &'a [u8],
        has_headers: bool,
    },
    Sub {
        subject: &'a [u8],
        queue: Option<&'a [u8]>,
        sid: &'a [u8],
    },
    /// `max` is `None` for a plain UNSUB, or when the count does not parse
    /// (the reference then unsubscribes at once).
    Unsub {
        sid: &'a [u8],
        max: Option<u64>,
    },
    Ping,
    Pong,
    /// `INFO` sent by a client: the reference parses its JSON and ignores it.
    Info(&'a [u8]),
    /// `+OK` from a client: ignored.
    Ok,
    /// `-ERR` from a client: the reference logs it and closes the connection.
    Err(&'a [u8]),
}

/// Why parsing stopped. Each maps to exactly one reference behaviour.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum ParseError {
    /// `-ERR 'Unknown Protocol Operation'`, then close.
    UnknownOp,
    /// `-ERR 'maximum control line exceeded'`, then close.
    MaxControlLine,
    /// `-ERR 'Maximum Payload Violation'`, then close.
    MaxPayload,
    /// A payload not followed by its CRLF: `-ERR 'Unknown Protocol
    /// Operation'`, then close. The subject (`start..end` in the input) is
    /// there for the check the reference made when it read the line.
    PayloadEnd { subject: (usize, usize) },
    /// A malformed argument list: the reference closes without an `-ERR`.
    BadArgs,
    /// HPUB from a client that did not declare headers: closed without `-ERR`.
    HeadersNotSupported,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// An operation and the number of input bytes it used.
    Op(Op<'a>, usize),
    /// More input is needed. `need` is the total length the input must reach
    /// before parsing can make progress (0 when unknown: wait for any bytes).
    Incomplete { need: usize },
}

/// Per-connection parameters the parser checks against.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_control_line: usize,
    pub max_payload: usize,
    /// Whether the client negotiated headers (HPUB is refused otherwise).
    pub headers: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Pub,
    HPub,
    Sub,
    Unsub,
    Connect,
    Info,
    Ping,
    Pong,
    Ok,
    Err,
}

/// Name of each op after its first byte, and whether whitespace must follow it.
fn op_name(first: u8) -> Option<&'static [(&'static [u8], Kind)]> {
    const P: &[(&[u8], Kind)] = &[
        (b"PUB", Kind::Pub),
        (b"PING", Kind::Ping),
        (b"PONG", Kind::Pong),
    ];
    const H: &[(&[u8], Kind)] = &[(b"HPUB", Kind::HPub)];
    const S: &[(&[u8], Kind)] = &[(b"SUB", Kind::Sub)];
    const U: &[(&[u8], Kind)] = &[(b"UNSUB", Kind::Unsub)];
    const C: &[(&[u8], Kind)] = &[(b"CONNECT", Kind::Connect)];
    const I: &[(&[u8], Kind)] = &[(b"INFO", Kind::Info)];
    const PLUS: &[(&[u8], Kind)] = &[(b"+OK", Kind::Ok)];
    const MINUS: &[(&[u8], Kind)] = &[(b"-ERR", Kind::Err)];
    match first.to_ascii_uppercase() {
        b'P' => Some(P),
        b'H' => Some(H),
        b'S' => Some(S),
        b'U' => Some(U),
        b'C' => Some(C),
        b'I' => Some(I),
        b'+' => Some(PLUS),
        b'-' => Some(MINUS),
        _ => None,
    }
}

/// Recognises the operation name at the start of `buf`.
/// Returns the op and the name's length, `Ok(None)` when `buf` is a valid
/// but incomplete prefix, or `UnknownOp` as soon as a byte cannot continue
/// any name.
fn recognise(buf: &[u8]) -> Result<Option<(Kind, usize)>, ParseError> {
    let cands = op_name(buf[0]).ok_or(ParseError::UnknownOp)?;
    let mut alive = [true; 3];
    for (i, &b) in buf.iter().enumerate().skip(1) {
        let b = b.to_ascii_uppercase();
        let mut any = false;
        for (k, (name, kind)) in cands.iter().enumerate() {
            if !alive[k] {
                continue;
            }
            if i < name.len() {
                if name[i] == b {
                    any = true;
                } else {
                    alive[k] = false;
                }
            } else {
                // The whole name matched; `b` is the byte after it.
                return Ok(Some((*kind, name.len())));
            }
        }
        if !any {
            return Err(ParseError::UnknownOp);
        }
    }
    // Every byte so far matched. A name complete at the end of the buffer
    // still needs its next byte to decide (e.g. `PUB` vs `PUBX`).
    Ok(None)
}

#[inline]
fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Splits on runs of spaces and tabs into at most `N` args; `None` if more.
fn split_args<const N: usize>(arg: &[u8], extra_sep: bool) -> Option<([&[u8]; N], usize)> {
    let mut out: [&[u8]; N] = [&[]; N];
    let mut n = 0;
    let mut start: Option<usize> = None;
    let sep = |b: u8| is_ws(b) || (extra_sep && (b == b'\r' || b == b'\n'));
    for (i, &b) in arg.iter().enumerate() {
        if sep(b) {
            if let Some(s) = start.take() {
                if n == N {
                    return None;
                }
                out[n] = &arg[s..i];
                n += 1;
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        if n == N {
            return None;
        }
        out[n] = &arg[s..];
        n += 1;
    }
    Some((out, n))
}

/// The line nearly every publisher sends, `PUB <subject> [<reply>] <size>`
/// in upper case with single spaces and a CRLF, read with a few vector
/// searches instead of the byte-at-a-time scanner. It takes only lines it
/// reads exactly as the general path would, and then finishes with the
/// same [`pub_payload`]; `None` hands every other line to the general path.
#[inline]
fn parse_pub_fast<'a>(buf: &'a [u8], lim: &Limits) -> Option<Result<Parsed<'a>, ParseError>> {
    if buf.len() < 4 || buf[..4] != *b"PUB " {
        return None;
    }
    let nl = 4 + memchr(b'\n', &buf[4..])?;
    if nl == 4 || buf[nl - 1] != b'\r' {
        return None;
    }
    let arg = &buf[4..nl - 1];
    if arg.len() > lim.max_control_line || memchr(b'\t', arg).is_some() {
        return None;
    }
    let last = memrchr(b' ', arg)?;
    let size = parse_size(&arg[last + 1..])?;
    let rest = &arg[..last];
    let (subject, reply) = match memchr(b' ', rest) {
        None => (rest, None),
        Some(sp) => (&rest[..sp], Some(&rest[sp + 1..])),
    };
    if subject.is_empty() || reply.is_some_and(|r| r.is_empty() || memchr(b' ', r).is_some()) {
        return None;
    }
    let args = PubArgs {
        subject,
        reply,
        hdr_len: 0,
        size,
        has_headers: false,
    };
    Some(pub_payload(buf, nl + 1, args, lim))
}

/// A `PUB` or `HPUB` line's arguments, once read.
struct PubArgs<'a> {
    subject: &'a [u8],
    reply: Option<&'a [u8]>,
    hdr_len: usize,
    size: usize,
    has_headers: bool,
}

/// The rest of a `PUB`/`HPUB` whose line (`line_len` bytes with its line
/// feed) gave `a`: the size limit, then the payload and its CRLF.
fn pub_payload<'a>(
    buf: &'a [u8],
    line_len: usize,
    a: PubArgs<'a>,
    lim: &Limits,
) -> Result<Parsed<'a>, ParseError> {
    if a.size > lim.max_payload {
        return Err(ParseError::MaxPayload);
    }
    let total = line_len + a.size + 2;
    if buf.len() < total {
        // Bytes past the declared end cannot exist yet, but a client whose
        // payload runs long is caught at the CRLF check below.
        return Ok(Parsed::Incomplete { need: total });
    }
    if buf[line_len + a.size..total] != *b"\r\n" {
        let start = a.subject.as_ptr() as usize - buf.as_ptr() as usize;
        return Err(ParseError::PayloadEnd {
            subject: (start, start + a.subject.len()),
        });
    }
    let op = Op::Pub {
        subject: a.subject,
        reply: a.reply,
        hdr_len: a.hdr_len,
        msg: &buf[line_len..line_len + a.size],
        has_headers: a.has_headers,
    };
    Ok(Parsed::Op(op, total))
}

/// The reference's `parseSize`: at most 9 ASCII digits, else invalid.
pub fn parse_size(d: &[u8]) -> Option<usize> {
    if d.is_empty() || d.len() > 9 {
        return None;
    }
    let mut n = 0usize;
    for &c in d {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (c - b'0') as usize;
    }
    Some(n)
}

/// Parses one operation from the front of `buf`.
pub fn parse<'a>(buf: &'a [u8], lim: &Limits) -> Result<Parsed<'a>, ParseError> {
    if buf.is_empty() {
        return Ok(Parsed::Incomplete { need: 0 });
    }
    if let Some(done) = parse_pub_fast(buf, lim) {
        return done;
    }
    parse_general(buf, lim)
}

/// Any op, any spelling the reference accepts, byte by byte.
fn parse_general<'a>(buf: &'a [u8], lim: &Limits) -> Result<Parsed<'a>, ParseError> {
    let (kind, name_len) = match recognise(buf)? {
        Some(k) => k,
        None => return Ok(Parsed::Incomplete { need: 0 }),
    };
    let after = buf[name_len];
    match kind {
        // These ignore anything up to the line feed.
        Kind::Ping | Kind::Pong | Kind::Ok => {
            return match memchr(b'\n', &buf[name_len..]) {
                Some(p) => {
                    let op = match kind {
                        Kind::Ping => Op::Ping,
                        Kind::Pong => Op::Pong,
                        _ => Op::Ok,
                    };
                    Ok(Parsed::Op(op, name_len + p + 1))
                }
                None => Ok(Parsed::Incomplete { need: 0 }),
            };
        }
        // CONNECT does not require whitespace after its name.
        Kind::Connect => {}
        _ => {
            if !is_ws(after) {
                return Err(ParseError::UnknownOp);
            }
        }
    }
    // Skip the whitespace run before the arguments.
    let mut start = name_len;
    while start < buf.len() && is_ws(buf[start]) {
        start += 1;
    }
    let nl = match memchr(b'\n', &buf[start..]) {
        Some(p) => start + p,
        None => {
            if buf.len() - start > lim.max_control_line {
                return Err(ParseError::MaxControlLine);
            }
            return Ok(Parsed::Incomplete { need: 0 });
        }
    };
    // A '\r' anywhere before the '\n' marks one byte to drop, as the
    // reference's `drop` flag does; in practice it is the one just before.
    let end = if nl > start && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    let arg = &buf[start..end.max(start)];
    if arg.len() > lim.max_control_line {
        return Err(ParseError::MaxControlLine);
    }
    let line_len = nl + 1;
    match kind {
        Kind::Connect => Ok(Parsed::Op(Op::Connect(arg), line_len)),
        Kind::Info => Ok(Parsed::Op(Op::Info(arg), line_len)),
        Kind::Err => Ok(Parsed::Op(Op::Err(arg), line_len)),
        Kind::Sub => {
            let (a, n) = split_args::<3>(arg, true).ok_or(ParseError::BadArgs)?;
            let op = match n {
                2 => Op::Sub {
                    subject: a[0],
                    queue: None,
                    sid: a[1],
                },
                3 => Op::Sub {
                    subject: a[0],
                    queue: Some(a[1]),
                    sid: a[2],
                },
                _ => return Err(ParseError::BadArgs),
            };
            Ok(Parsed::Op(op, line_len))
        }
        Kind::Unsub => {
            let (a, n) = split_args::<2>(arg, true).ok_or(ParseError::BadArgs)?;
            let op = match n {
                1 => Op::Unsub {
                    sid: a[0],
                    max: None,
                },
                2 => Op::Unsub {
                    sid: a[0],
                    max: parse_size(a[1]).map(|m| m as u64),
                },
                _ => return Err(ParseError::BadArgs),
            };
            Ok(Parsed::Op(op, line_len))
        }
        Kind::Pub | Kind::HPub => {
            let headers = kind == Kind::HPub;
            if headers && !lim.headers {
                return Err(ParseError::HeadersNotSupported);
            }
            let (subject, reply, hdr_len, size) = if headers {
                let (a, n) = split_args::<4>(arg, false).ok_or(ParseError::BadArgs)?;
                let (s, r, h, t) = match n {
                    3 => (a[0], None, a[1], a[2]),
                    4 => (a[0], Some(a[1]), a[2], a[3]),
                    _ => return Err(ParseError::BadArgs),
                };
                let h = parse_size(h).ok_or(ParseError::BadArgs)?;
                let t = parse_size(t).ok_or(ParseError::BadArgs)?;
                if h > t {
                    return Err(ParseError::BadArgs);
                }
                (s, r, h, t)
            } else {
                let (a, n) = split_args::<3>(arg, false).ok_or(ParseError::BadArgs)?;
                let (s, r, t) = match n {
                    2 => (a[0], None, a[1]),
                    3 => (a[0], Some(a[1]), a[2]),
                    _ => return Err(ParseError::BadArgs),
                };
                (s, r, 0, parse_size(t).ok_or(ParseError::BadArgs)?)
            };
            let args = PubArgs {
                subject,
                reply,
                hdr_len,
                size,
                has_headers: headers,
            };
            pub_payload(buf, line_len, args, lim)
        }
        Kind::Ping | Kind::Pong | Kind::Ok => unreachable!("handled above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIM: Limits = Limits {
        max_control_line: 4096,
        max_payload: 1 << 20,
        headers: true,
    };

    /// Parses everything in `input`, feeding it in two pieces split at `cut`,
    /// the way a connection accumulates reads; returns the ops as owned
    /// debug strings, or the first error.
    fn parse_all_split(input: &[u8], cut: usize, lim: &Limits) -> Result<Vec<String>, ParseError> {
        let mut buf: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        let mut pos = 0;
        for chunk in [&input[..cut], &input[cut..]] {
            buf.extend_from_slice(chunk);
            while let Parsed::Op(op, n) = parse(&buf[pos..], lim)? {
                out.push(format!("{op:?}"));
                pos += n;
            }
        }
        assert_eq!(
            pos,
            buf.len(),
            "input left unparsed: {:?}",
            String::from_utf8_lossy(&buf[pos..])
        );
        Ok(out)
    }

    /// Every split point must give the same ops as the whole input.
    fn check_every_split(input: &[u8], lim: &Limits) -> Vec<String> {
        let whole = parse_all_split(input, input.len(), lim).expect("whole input parses");
        for cut in 0..=input.len() {
            let split = parse_all_split(input, cut, lim).expect("split input parses");
            assert_eq!(split, whole, "split at {cut}");
        }
        whole
    }

    #[test]
    fn every_line_split_at_every_byte() {
        let lines: &[&[u8]] = &[
            b"CONNECT {\"verbose\":false}\r\n",
            b"CONNECT{}\r\n",
            b"PING\r\n",
            b"ping\r\n",
            b"PONG\r\n",
            b"PING\n",
            b"+OK\r\n",
            b"SUB foo 1\r\n",
            b"sub foo.* q 22\r\n",
            b"SUB\tfoo.>\t \t3\r\n",
            b"UNSUB 1\r\n",
            b"UNSUB 1 10\r\n",
            b"PUB foo 5\r\nhello\r\n",
            b"pub foo bar 5\r\nhello\r\n",
            b"PUB foo 0\r\n\r\n",
            b"HPUB foo 12 17\r\nNATS/1.0\r\n\r\nhello\r\n",
            b"HPUB foo reply 12 12\r\nNATS/1.0\r\n\r\n\r\n",
            b"INFO {}\r\n",
            b"-ERR 'x'\r\n",
        ];
        let mut all = Vec::new();
        for l in lines {
            check_every_split(l, &LIM);
            all.extend_from_slice(l);
        }
        let ops = check_every_split(&all, &LIM);
        assert_eq!(ops.len(), lines.len());
    }

    #[test]
    fn fast_pub_path_agrees_with_the_general_one() {
        let lines: &[&[u8]] = &[
            b"PUB foo 3\r\nabc\r\n",
            b"PUB foo bar 3\r\nabc\r\n",
            b"PUB foo 0\r\n\r\n",
            b"PUB foo  3\r\nabc\r\n",
            b"PUB  foo 3\r\nabc\r\n",
            b"PUB foo bar  3\r\nabc\r\n",
            b"PUB foo  bar 3\r\nabc\r\n",
            b"PUB foo\tbar 3\r\nabc\r\n",
            b"PUB foo bar baz 3\r\nabc\r\n",
            b"PUB foo 3 \r\nabc\r\n",
            b"PUB foo x3\r\nabc\r\n",
            b"PUB foo 3\nabc\r\n",
            b"PUB foo 3\r\nabcd\r\n",
            b"PUB foo 3\r\nab\r\n\r\n",
            b"PUB foo 1234567890\r\n",
            b"PUB foo 2000000\r\n",
            b"PUB 3\r\nabc\r\n",
            b"PUB \r\n",
            b"PUB foo\r\n",
            b"pub foo 3\r\nabc\r\n",
        ];
        let tight = Limits {
            max_control_line: 8,
            ..LIM
        };
        for line in lines {
            for lim in [&LIM, &tight] {
                for cut in 1..=line.len() {
                    let buf = &line[..cut];
                    let fast = format!("{:?}", parse(buf, lim));
                    let general = format!("{:?}", parse_general(buf, lim));
                    assert_eq!(
                        fast,
                        general,
                        "{:?} cut at {cut}",
                        String::from_utf8_lossy(line)
                    );
                }
            }
        }
    }

    #[test]
    fn pub_fields() {
        let b = b"PUB foo bar 5\r\nhello\r\n";
        match parse(b, &LIM).unwrap() {
            Parsed::Op(
                Op::Pub {
                    subject,
                    reply,
                    hdr_len,
                    msg,
                    has_headers,
                },
                n,
            ) => {
                assert_eq!(subject, b"foo");
                assert_eq!(reply, Some(&b"bar"[..]));
                assert_eq!(hdr_len, 0);
                assert_eq!(msg, b"hello");
                assert!(!has_headers);
                assert_eq!(n, b.len());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hpub_fields() {
        let b = b"HPUB foo 12 17\r\nNATS/1.0\r\n\r\nhello\r\n";
        match parse(b, &LIM).unwrap() {
            Parsed::Op(
                Op::Pub {
                    hdr_len,
                    msg,
                    has_headers,
                    ..
                },
                _,
            ) => {
                assert_eq!(hdr_len, 12);
                assert_eq!(msg.len(), 17);
                assert!(has_headers);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sub_and_unsub_fields() {
        assert_eq!(
            parse(b"SUB foo q 1\r\n", &LIM).unwrap(),
            Parsed::Op(
                Op::Sub {
                    subject: b"foo",
                    queue: Some(b"q"),
                    sid: b"1"
                },
                13
            )
        );
        assert_eq!(
            parse(b"UNSUB 1 5\r\n", &LIM).unwrap(),
            Parsed::Op(
                Op::Unsub {
                    sid: b"1",
                    max: Some(5)
                },
                11
            )
        );
        assert_eq!(
            parse(b"UNSUB 1 x\r\n", &LIM).unwrap(),
            Parsed::Op(
                Op::Unsub {
                    sid: b"1",
                    max: None
                },
                11
            )
        );
    }

    #[test]
    fn unknown_ops_fail_without_a_line_end() {
        assert_eq!(parse(b"FOO", &LIM), Err(ParseError::UnknownOp));
        assert_eq!(parse(b"PUX", &LIM), Err(ParseError::UnknownOp));
        assert_eq!(parse(b"PUBX", &LIM), Err(ParseError::UnknownOp));
        assert_eq!(parse(b"PI\r\n", &LIM), Err(ParseError::UnknownOp));
        assert_eq!(parse(b"PUB\r\n", &LIM), Err(ParseError::UnknownOp));
        assert_eq!(parse(b"\r\n", &LIM), Err(ParseError::UnknownOp));
        assert_eq!(parse(b"P", &LIM), Ok(Parsed::Incomplete { need: 0 }));
        assert_eq!(parse(b"PUB", &LIM), Ok(Parsed::Incomplete { need: 0 }));
    }

    #[test]
    fn malformed_arguments_close_silently() {
        assert_eq!(parse(b"PUB foo\r\n", &LIM), Err(ParseError::BadArgs));
        assert_eq!(parse(b"PUB foo x\r\n", &LIM), Err(ParseError::BadArgs));
        assert_eq!(parse(b"PUB a b c 1\r\n", &LIM), Err(ParseError::BadArgs));
        assert_eq!(parse(b"SUB foo\r\n", &LIM), Err(ParseError::BadArgs));
        assert_eq!(parse(b"SUB a b c d\r\n", &LIM), Err(ParseError::BadArgs));
        assert_eq!(parse(b"HPUB foo 10 5\r\n", &LIM), Err(ParseError::BadArgs));
        let no_hdr = Limits {
            headers: false,
            ..LIM
        };
        assert_eq!(
            parse(b"HPUB foo 0 0\r\n\r\n", &no_hdr),
            Err(ParseError::HeadersNotSupported)
        );
    }

    #[test]
    fn payload_must_end_with_crlf() {
        assert_eq!(
            parse(b"PUB foo 2\r\nhello\r\n", &LIM),
            Err(ParseError::PayloadEnd { subject: (4, 7) })
        );
        assert_eq!(
            parse(b"HPUB a.* 12 12\r\nNATS/1.0\r\n\r\n..\r\n", &LIM),
            Err(ParseError::PayloadEnd { subject: (5, 8) })
        );
    }

    #[test]
    fn limits() {
        let big = format!("PUB foo {}\r\n", (1 << 20) + 1);
        assert_eq!(parse(big.as_bytes(), &LIM), Err(ParseError::MaxPayload));
        let long = format!("SUB {} 1\r\n", "a".repeat(5000));
        assert_eq!(
            parse(long.as_bytes(), &LIM),
            Err(ParseError::MaxControlLine)
        );
        // Caught before the line ends, so a client cannot grow our buffer.
        let partial = format!("SUB {}", "a".repeat(5000));
        assert_eq!(
            parse(partial.as_bytes(), &LIM),
            Err(ParseError::MaxControlLine)
        );
        // The limit applies to the arguments, not the op name.
        let edge = format!("SUB {} 1\r\n", "a".repeat(4094));
        assert!(matches!(parse(edge.as_bytes(), &LIM), Ok(Parsed::Op(..))));
    }

    #[test]
    fn incomplete_payload_reports_need() {
        assert_eq!(
            parse(b"PUB foo 5\r\nhel", &LIM),
            Ok(Parsed::Incomplete { need: 18 })
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(b"123"), Some(123));
        assert_eq!(parse_size(b""), None);
        assert_eq!(parse_size(b"1234567890"), None);
        assert_eq!(parse_size(b"12a"), None);
    }
}
