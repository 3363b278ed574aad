//! A small blocking HTTP/1.1 client for the monitoring tests: raw TCP (or
//! any Read + Write stream, e.g. rustls), one request at a time, bodies
//! framed by Content-Length.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    /// Header names lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

/// A persistent connection.
pub struct Http<S: Read + Write> {
    pub stream: S,
    buf: Vec<u8>,
}

pub fn connect(port: u16) -> Http<TcpStream> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("http connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    Http::new(s)
}

/// GET `path` on a fresh connection.
pub fn get(port: u16, path: &str) -> Resp {
    connect(port).request("GET", path)
}

/// GET and parse JSON, asserting a 200 with application/json.
pub fn get_json(port: u16, path: &str) -> serde_json::Value {
    let r = get(port, path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "GET {path}"
    );
    r.json()
}

impl<S: Read + Write> Http<S> {
    pub fn new(stream: S) -> Self {
        Http {
            stream,
            buf: Vec::new(),
        }
    }

    fn fill(&mut self) -> usize {
        let mut tmp = [0u8; 8192];
        let n = self.stream.read(&mut tmp).expect("http read");
        self.buf.extend_from_slice(&tmp[..n]);
        n
    }

    fn read_n(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill() > 0, "connection closed inside the body");
        }
        self.buf.drain(..n).collect()
    }

    fn read_line(&mut self) -> String {
        loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let l = String::from_utf8(self.buf[..p].to_vec()).expect("utf-8 chunk line");
                self.buf.drain(..p + 2);
                return l;
            }
            assert!(self.fill() > 0, "connection closed inside a chunk header");
        }
    }

    /// A chunked body (RFC 9112 7.1), without trailers.
    fn read_chunked(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line();
            let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size {line:?}"));
            if size == 0 {
                assert_eq!(self.read_line(), "", "trailers are not expected");
                return body;
            }
            body.extend(self.read_n(size));
            assert_eq!(self.read_n(2), b"\r\n", "chunk not followed by CRLF");
        }
    }

    /// Sends one request and reads its response (no body for HEAD).
    pub fn request(&mut self, method: &str, path: &str) -> Resp {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: natrix-test\r\n\r\n"
        );
        self.stream.write_all(req.as_bytes()).expect("http write");
        self.stream.flush().expect("http flush");
        let head_end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            assert!(
                self.fill() > 0,
                "connection closed before the response head"
            );
        };
        let head = String::from_utf8(self.buf[..head_end].to_vec()).expect("utf-8 head");
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(
            parts.next(),
            Some("HTTP/1.1"),
            "status line {status_line:?}"
        );
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        let body = if method == "HEAD" {
            Vec::new()
        } else if chunked {
            self.read_chunked()
        } else {
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .map(|(_, v)| v.parse().expect("content-length"))
                .expect("response has a Content-Length or is chunked");
            self.read_n(len)
        };
        Resp {
            status,
            headers,
            body,
        }
    }
}
