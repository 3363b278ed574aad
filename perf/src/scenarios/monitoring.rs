//! What HTTP monitoring costs the message path: request/reply latency
//! with many idle connections open, measured once quietly and once while
//! a client polls `/connz` (the reference's default page, 1024
//! connections) in a loop. The metric is the p99 the polling adds.
//!
//! The loop polls at a fixed rate, so both servers do the same monitoring
//! work: polled back to back, a server that answers `/connz` faster would
//! be asked more often and pay for its speed. (A rate of 0 polls back to
//! back; a poll that takes longer than the interval is followed at once.)
//!
//! Both phases run the same fixed-rate request/reply measurement as
//! `reqrep_latency` (coordinated-omission corrected), against the same
//! server, with the same connections open.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::error::{bail, Context, Error, Result};

use super::latency::{round_trips, LatencySpec};
use super::{new_latency_histogram, Better, Diagnostic, Metric, Outcome, Target};

#[derive(Clone, Debug)]
pub struct ConnzPollSpec {
    /// Idle connections held open during both phases.
    pub connections: usize,
    /// Client threads that open them.
    pub threads: usize,
    /// The request/reply measurement of each phase.
    pub latency: LatencySpec,
    /// `/connz?limit=` of each poll.
    pub page: usize,
    /// Polls started per second (0: back to back).
    pub polls_per_sec: u32,
}

/// Lets the server settle after the connections open, before measuring.
const SETTLE: Duration = Duration::from_millis(500);

/// One `/connz` poller's tally.
struct Polls {
    count: u64,
    /// Time per poll (request written to body read), ns.
    time: Histogram<u64>,
    bytes: u64,
    /// `num_connections` of the last answer.
    listed: u64,
}

pub fn run(spec: &ConnzPollSpec, target: &mut Target<'_>) -> Result<Outcome> {
    let Some(port) = target.server.monitor_port else {
        bail!("the server was started without a monitoring port");
    };
    super::connections::check_nofile(spec.connections)?;
    let idle = super::connections::open_idle(spec.connections, spec.threads, target)?;
    thread::sleep(SETTLE);
    let http = SocketAddr::from(([127, 0, 0, 1], port));
    // The page must list what it should before it is worth timing.
    let first = poll_once(&mut connect_http(http)?, spec.page)?;
    if first.0 < spec.page.min(spec.connections) as u64 {
        bail!(
            "/connz listed {} connections, expected at least {}",
            first.0,
            spec.page.min(spec.connections)
        );
    }

    let (quiet, _, _) = round_trips(&spec.latency, target).context("without polling")?;
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (stop, page, rate, deadline) =
            (stop.clone(), spec.page, spec.polls_per_sec, target.deadline);
        thread::Builder::new()
            .name("connz-poller".into())
            .spawn(move || poll_loop(http, page, rate, &stop, deadline))
            .expect("spawn poller")
    };
    let started = Instant::now();
    let polled = round_trips(&spec.latency, target).context("while polling");
    stop.store(true, Ordering::Release);
    let secs = started.elapsed().as_secs_f64();
    let polls = poller.join().expect("poller thread panicked")?;
    let (polled, _, _) = polled?;
    drop(idle);
    if polls.count == 0 {
        bail!("no /connz poll finished during the measurement");
    }

    let us = |ns: u64| ns as f64 / 1000.0;
    let p99 = |h: &Histogram<u64>| us(h.value_at_quantile(0.99));
    Ok(Outcome {
        metrics: vec![Metric {
            name: "p99 added by /connz polling",
            unit: "µs",
            better: Better::Lower,
            value: p99(&polled) - p99(&quiet),
        }],
        diagnostics: vec![
            Diagnostic {
                name: "p99 without polling (µs)",
                value: p99(&quiet),
            },
            Diagnostic {
                name: "p99 while polling (µs)",
                value: p99(&polled),
            },
            Diagnostic {
                name: "p99.9 without polling (µs)",
                value: us(quiet.value_at_quantile(0.999)),
            },
            Diagnostic {
                name: "p99.9 while polling (µs)",
                value: us(polled.value_at_quantile(0.999)),
            },
            Diagnostic {
                name: "/connz polls per s",
                value: polls.count as f64 / secs.max(1e-9),
            },
            Diagnostic {
                name: "/connz time p50 (ms)",
                value: polls.time.value_at_quantile(0.5) as f64 / 1e6,
            },
            Diagnostic {
                name: "/connz KiB per poll",
                value: polls.bytes as f64 / polls.count as f64 / 1024.0,
            },
            Diagnostic {
                name: "/connz connections listed",
                value: polls.listed as f64,
            },
        ],
        latency: Some(polled),
        cpu: None,
    })
}

fn connect_http(addr: SocketAddr) -> Result<BufReader<TcpStream>> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .context(format_args!("connect to monitoring at {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_nodelay(true)?;
    Ok(BufReader::new(s))
}

/// Polls `/connz` on one keep-alive connection, `rate` times a second (0:
/// back to back), until told to stop.
fn poll_loop(
    addr: SocketAddr,
    page: usize,
    rate: u32,
    stop: &AtomicBool,
    deadline: Instant,
) -> Result<Polls> {
    let mut conn = connect_http(addr)?;
    let start = Instant::now();
    let mut polls = Polls {
        count: 0,
        time: new_latency_histogram(),
        bytes: 0,
        listed: 0,
    };
    while !stop.load(Ordering::Acquire) {
        if Instant::now() >= deadline {
            bail!("polling /connz ran into the scenario's deadline");
        }
        if rate > 0 {
            let due = start + Duration::from_secs(polls.count) / rate;
            let now = Instant::now();
            if now < due {
                thread::sleep((due - now).min(Duration::from_millis(50)));
                continue;
            }
        }
        let t = Instant::now();
        let (listed, bytes) = poll_once(&mut conn, page)?;
        polls
            .time
            .saturating_record(t.elapsed().as_nanos().max(1) as u64);
        polls.count += 1;
        polls.bytes += bytes as u64;
        polls.listed = listed;
    }
    Ok(polls)
}

/// One `GET /connz?limit=page`: the listed connection count and the body
/// size. The body comes with a Content-Length or chunked (Go's server
/// chunks large answers).
fn poll_once(conn: &mut BufReader<TcpStream>, page: usize) -> Result<(u64, usize)> {
    let req = format!("GET /connz?limit={page} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    conn.get_mut().write_all(req.as_bytes())?;
    let mut line = String::new();
    conn.read_line(&mut line)?;
    if !line.starts_with("HTTP/1.1 200") {
        bail!("/connz answered {:?}", line.trim_end());
    }
    let (mut length, mut chunked) = (None, false);
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            bail!("/connz: connection closed in the headers");
        }
        let h = line.trim_end().to_ascii_lowercase();
        if h.is_empty() {
            break;
        }
        if let Some(v) = h.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        }
        chunked |= h.starts_with("transfer-encoding:") && h.contains("chunked");
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            conn.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim_end(), 16)
                .map_err(|_| Error(format!("/connz: bad chunk size {line:?}")))?;
            let at = body.len();
            body.resize(at + size + 2, 0);
            conn.read_exact(&mut body[at..])?;
            body.truncate(at + size);
            if size == 0 {
                break;
            }
        }
    } else {
        let n = length.ok_or_else(|| Error("/connz: no Content-Length".into()))?;
        body.resize(n, 0);
        conn.read_exact(&mut body)?;
    }
    Ok((num_connections(&body)?, body.len()))
}

/// `"num_connections": N` of a `/connz` answer.
fn num_connections(body: &[u8]) -> Result<u64> {
    let text = String::from_utf8_lossy(body);
    let at = text
        .find("\"num_connections\":")
        .ok_or_else(|| Error("/connz: no num_connections".into()))?;
    let rest = text[at + 18..].trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .map_err(|_| Error(format!("/connz: bad num_connections {rest:.20}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A monitoring stand-in answering two polls: chunked, then with a
    /// Content-Length, as the two servers do.
    #[test]
    fn polls_read_chunked_and_sized_bodies() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        const BODY: &str = "{\n  \"num_connections\": 7,\n  \"total\": 9\n}";
        let server = thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s);
            let body = BODY;
            for chunked in [true, false] {
                let mut line = String::new();
                while r.read_line(&mut line).unwrap() > 0 && !line.ends_with("\r\n\r\n") {}
                assert!(line.starts_with("GET /connz?limit=5 HTTP/1.1"), "{line}");
                let resp = if chunked {
                    let (a, b) = body.split_at(10);
                    format!(
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                        a.len(),
                        b.len()
                    )
                } else {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                };
                r.get_mut().write_all(resp.as_bytes()).unwrap();
            }
        });
        let mut c = connect_http(addr).unwrap();
        assert_eq!(poll_once(&mut c, 5).unwrap(), (7, BODY.len()));
        assert_eq!(poll_once(&mut c, 5).unwrap(), (7, BODY.len()));
        server.join().unwrap();
    }

    #[test]
    fn num_connections_is_read_from_the_body() {
        assert_eq!(
            num_connections(b"{\"num_connections\": 1024,").unwrap(),
            1024
        );
        assert!(num_connections(b"{}").is_err());
    }
}
