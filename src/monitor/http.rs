//! The monitoring listener: a plain std thread per listener and per HTTP
//! connection (monitoring traffic is light), requests parsed by `httparse`,
//! persistent connections as HTTP/1.1 has them, HTTPS with rustls.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::Monitor;

/// A request as the handlers see it.
pub struct Request {
    pub method: String,
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
}

impl Request {
    /// The first value of `key` ("" when absent), as Go's `Query().Get`.
    pub fn get(&self, key: &str) -> &str {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A response before it is written.
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// `X-Content-Type-Options: nosniff`, as Go's `NotFound` sends.
    pub nosniff: bool,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            body: body.into(),
            nosniff: false,
        }
    }

    /// A 400 with the reason as text, as the reference answers bad
    /// parameters.
    pub fn bad_request(text: impl Into<Vec<u8>>) -> Response {
        Response::new(400, "text/plain; charset=utf-8", text)
    }

    pub fn not_found() -> Response {
        Response {
            nosniff: true,
            ..Response::new(404, "text/plain; charset=utf-8", "404 page not found\n")
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        413 => "Request Entity Too Large",
        _ => "Error",
    }
}

/// Percent-decoding with `+` as space, as Go's `url.ParseQuery`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn split_target(target: &str) -> (String, Vec<(String, String)>) {
    let (path, q) = target.split_once('?').unwrap_or((target, ""));
    let query = q
        .split(['&', ';'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (unescape(k), unescape(v))
        })
        .collect();
    (unescape(path), query)
}

/// Longest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// An idle persistent connection is closed after this.
const IDLE: Duration = Duration::from_secs(60);

/// Serves one HTTP connection until the client closes it or asks to.
fn serve_conn<S: Read + Write>(mon: &Monitor, s: &mut S) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut tmp = [0u8; 4096];
    loop {
        // Read until a whole head is in.
        let (req, keep_alive, used, body_len) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut r = httparse::Request::new(&mut headers);
            match r.parse(&buf) {
                Ok(httparse::Status::Complete(used)) => {
                    let version = r.version.unwrap_or(1);
                    let header = |name: &str| {
                        r.headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case(name))
                            .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
                    };
                    let conn = header("connection").unwrap_or_default();
                    let keep = if version == 0 {
                        conn.contains("keep-alive")
                    } else {
                        !conn.contains("close")
                    };
                    let body_len: usize = header("content-length")
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    let (path, query) = split_target(r.path.unwrap_or("/"));
                    let req = Request {
                        method: r.method.unwrap_or("GET").to_string(),
                        path,
                        query,
                    };
                    break (req, keep, used, body_len);
                }
                Ok(httparse::Status::Partial) => {
                    if buf.len() > MAX_HEAD {
                        let resp = Response::new(413, "text/plain; charset=utf-8", "");
                        write_response(s, &resp, false, false)?;
                        return Ok(());
                    }
                }
                Err(_) => {
                    let resp = Response::bad_request("400 Bad Request");
                    write_response(s, &resp, false, false)?;
                    return Ok(());
                }
            }
            let n = s.read(&mut tmp)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&tmp[..n]);
        };
        // Skip a request body; monitoring reads none.
        let mut end = used + body_len;
        while buf.len() < end {
            let n = s.read(&mut tmp)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&tmp[..n]);
        }
        end = end.min(buf.len());
        buf.drain(..end);
        let resp = mon.handle(&req);
        write_response(s, &resp, req.method == "HEAD", keep_alive)?;
        if !keep_alive {
            return Ok(());
        }
    }
}

fn write_response<S: Write>(s: &mut S, r: &Response, head: bool, keep: bool) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\n",
        r.status,
        reason(r.status),
        r.content_type
    );
    if r.nosniff {
        out.push_str("X-Content-Type-Options: nosniff\r\n");
    }
    out.push_str(&format!(
        "Date: {}\r\nContent-Length: {}\r\n",
        crate::timefmt::http_date(SystemTime::now()),
        r.body.len()
    ));
    if !keep {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head {
        bytes.extend_from_slice(&r.body);
    }
    s.write_all(&bytes)?;
    s.flush()
}

/// Accepts monitoring connections on `listener` forever, each served on
/// its own thread; with `tls`, over TLS.
pub fn run_listener(
    mon: Arc<Monitor>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    for conn in listener.incoming() {
        let Ok(sock) = conn else { continue };
        let mon = mon.clone();
        let tls = tls.clone();
        let spawned = std::thread::Builder::new()
            .name("natrix-http".into())
            .spawn(move || {
                let _ = sock.set_read_timeout(Some(IDLE));
                let _ = sock.set_write_timeout(Some(IDLE));
                let _ = sock.set_nodelay(true);
                let _ = match tls {
                    None => {
                        let mut sock = sock;
                        serve_conn(&mon, &mut sock)
                    }
                    Some(cfg) => serve_tls(&mon, sock, cfg),
                };
            });
        if let Err(e) = spawned {
            crate::error!("monitoring: cannot start a connection thread: {e}");
        }
    }
}

fn serve_tls(mon: &Monitor, sock: TcpStream, cfg: Arc<rustls::ServerConfig>) -> io::Result<()> {
    let conn = rustls::ServerConnection::new(cfg).map_err(io::Error::other)?;
    let mut s = rustls::StreamOwned::new(conn, sock);
    let res = serve_conn(mon, &mut s);
    s.conn.send_close_notify();
    let _ = s.flush();
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_decoded_as_go_does() {
        let (p, q) = split_target("/connz?sort=bytes_to&callback=a%2Eb&user=x+y&bad=%zz");
        assert_eq!(p, "/connz");
        assert_eq!(
            q,
            vec![
                ("sort".into(), "bytes_to".into()),
                ("callback".into(), "a.b".into()),
                ("user".into(), "x y".into()),
                ("bad".into(), "%zz".into()),
            ]
        );
    }
}
