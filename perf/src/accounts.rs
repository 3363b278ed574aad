//! The account server behind the URL resolver scenarios: a plain HTTP/1.1
//! server on 127.0.0.1 that the harness runs itself, in the shape of the
//! NATS account server the `resolver: URL(...)` of both servers asks.
//!
//! `GET <base>` answers 200 (both servers require it at start),
//! `GET <base><account public key>` answers 200 with the account's JWT, any
//! other request 404. Every request is counted, so a run can report how
//! often a server went back to the account server. Connections are kept
//! alive unless the client asks to close (the reference's Go client keeps
//! them; natrix sends `Connection: close`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::error::{Context, Result};

/// The path both servers' URL resolvers are configured with.
pub const BASE_PATH: &str = "/jwt/v1/accounts/";

/// A connection idle this long is closed, so a handler thread never
/// outlives the server process that opened it by much.
const IDLE: Duration = Duration::from_secs(10);

/// Requests served on one connection before it is closed.
const MAX_REQUESTS_PER_CONN: usize = 100_000;

/// Longest request line or header line read.
const MAX_LINE: usize = 8 * 1024;

pub struct AccountServer {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl AccountServer {
    /// Serves `accounts` ((public key, JWT) pairs) on a free loopback port.
    pub fn start(accounts: &[(String, String)]) -> Result<AccountServer> {
        let listener = TcpListener::bind("127.0.0.1:0").context("account server: bind")?;
        let addr = listener.local_addr()?;
        let jwts: Arc<HashMap<String, String>> = Arc::new(accounts.iter().cloned().collect());
        let requests = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (requests, stop) = (requests.clone(), stop.clone());
            thread::Builder::new()
                .name("account-server".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        let (jwts, requests) = (jwts.clone(), requests.clone());
                        let _ = thread::Builder::new()
                            .name("account-conn".into())
                            .spawn(move || serve(stream, &jwts, &requests));
                    }
                })
                .context("account server: spawn")?
        };
        Ok(AccountServer {
            addr,
            requests,
            stop,
            accept: Some(accept),
        })
    }

    /// `http://127.0.0.1:<port>/jwt/v1/accounts/`, what `URL(...)` gets.
    pub fn base_url(&self) -> String {
        format!("http://{}{BASE_PATH}", self.addr)
    }

    /// Requests answered so far (any path, any status).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for AccountServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Answers requests on one connection until the client closes it, asks
/// to close, goes idle, or sends something that is not a GET.
fn serve(stream: TcpStream, jwts: &HashMap<String, String>, requests: &AtomicU64) {
    if stream.set_read_timeout(Some(IDLE)).is_err() {
        return;
    }
    let _ = stream.set_nodelay(true);
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut r = BufReader::new(stream);
    for _ in 0..MAX_REQUESTS_PER_CONN {
        let Some(line) = read_line(&mut r) else {
            return;
        };
        let mut parts = line.split_whitespace();
        let (method, path, version) = (parts.next(), parts.next(), parts.next());
        let mut close = version != Some("HTTP/1.1");
        loop {
            let Some(h) = read_line(&mut r) else { return };
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                if name.trim().eq_ignore_ascii_case("connection")
                    && value.trim().eq_ignore_ascii_case("close")
                {
                    close = true;
                }
            }
        }
        requests.fetch_add(1, Ordering::Relaxed);
        let (status, body) = match (method, path) {
            (Some("GET"), Some(p)) if p == BASE_PATH || p == BASE_PATH.trim_end_matches('/') => {
                ("200 OK", "")
            }
            (Some("GET"), Some(p)) => match p.strip_prefix(BASE_PATH).and_then(|k| jwts.get(k)) {
                Some(jwt) => ("200 OK", jwt.as_str()),
                None => ("404 Not Found", ""),
            },
            _ => {
                close = true;
                ("405 Method Not Allowed", "")
            }
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/jwt\r\nContent-Length: {}\r\n\
             Connection: {}\r\n\r\n{body}",
            body.len(),
            if close { "close" } else { "keep-alive" }
        );
        if out.write_all(response.as_bytes()).is_err() || close {
            return;
        }
    }
}

/// One CRLF- (or LF-) terminated line without its terminator; `None` at
/// end of stream, on a read error or timeout, or past [`MAX_LINE`].
fn read_line(r: &mut BufReader<TcpStream>) -> Option<String> {
    let mut buf = Vec::new();
    let n = r
        .by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut buf)
        .ok()?;
    if n == 0 || buf.last() != Some(&b'\n') {
        return None;
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    String::from_utf8(buf).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `requests` on one connection and reads until the server
    /// closes it.
    fn exchange(addr: SocketAddr, requests: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(requests.as_bytes()).unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn serves_base_and_accounts_and_counts_every_request() {
        let server = AccountServer::start(&[("AKEY".into(), "eyJh.eyJi.c2ln".into())]).unwrap();
        assert!(server.base_url().starts_with("http://127.0.0.1:"));
        assert!(server.base_url().ends_with("/jwt/v1/accounts/"));
        let get = |path: &str, last: bool| {
            format!(
                "GET {path} HTTP/1.1\r\nHost: x\r\n{}\r\n",
                if last { "Connection: close\r\n" } else { "" }
            )
        };
        // Three requests on one kept-alive connection, the last closing it.
        let text = exchange(
            server.addr,
            &format!(
                "{}{}{}",
                get(BASE_PATH, false),
                get("/jwt/v1/accounts/AKEY", false),
                get("/jwt/v1/accounts/ANOPE", true)
            ),
        );
        let answers: Vec<&str> = text.split("HTTP/1.1 ").skip(1).collect();
        assert_eq!(answers.len(), 3, "{text}");
        assert!(answers[0].starts_with("200 OK\r\n"));
        assert!(answers[0].contains("Content-Length: 0\r\nConnection: keep-alive\r\n"));
        assert!(answers[1].starts_with("200 OK\r\n"));
        assert!(answers[1]
            .ends_with("Content-Length: 14\r\nConnection: keep-alive\r\n\r\neyJh.eyJi.c2ln"));
        assert!(answers[2].starts_with("404 Not Found\r\n"));
        assert!(answers[2].contains("Connection: close\r\n"));
        // HTTP/1.0 closes after one answer; a non-GET is refused.
        let text = exchange(server.addr, "GET /jwt/v1/accounts/AKEY HTTP/1.0\r\n\r\n");
        assert!(text.ends_with("eyJh.eyJi.c2ln"), "{text}");
        let text = exchange(server.addr, "POST /jwt/v1/accounts/ HTTP/1.1\r\n\r\n");
        assert!(text.starts_with("HTTP/1.1 405"), "{text}");
        assert_eq!(server.requests(), 5);
    }
}
