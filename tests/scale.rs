//! Many concurrent connections: 1000 raw clients, each subscribed to its own subject and
//! to a shared subject. Every client must get its own message and the shared one.

mod common;

use common::Server;
use futures::StreamExt;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::timeout;

const CONNS: usize = 1000;
const STEP: Duration = Duration::from_secs(15);

struct Conn {
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
}

impl Conn {
    async fn open(port: u16) -> Conn {
        let s = timeout(STEP, TcpStream::connect(("127.0.0.1", port)))
            .await
            .expect("connect timed out")
            .expect("connect");
        s.set_nodelay(true).ok();
        let (r, w) = s.into_split();
        let mut c = Conn {
            rd: BufReader::new(r),
            wr: w,
        };
        let info = c.line().await;
        assert!(info.starts_with("INFO "), "first line: {info}");
        c
    }

    async fn send(&mut self, b: &[u8]) {
        timeout(STEP, self.wr.write_all(b))
            .await
            .expect("write timed out")
            .expect("write");
    }

    /// One line without CRLF.
    async fn line(&mut self) -> String {
        let mut v = Vec::new();
        let n = timeout(STEP, self.rd.read_until(b'\n', &mut v))
            .await
            .expect("no line in time")
            .expect("read");
        assert!(n > 0, "connection closed");
        assert!(v.ends_with(b"\r\n"), "line not CRLF-terminated: {:?}", v);
        v.truncate(v.len() - 2);
        String::from_utf8(v).expect("utf-8 line")
    }

    /// Next protocol item that is not a server PING (which is answered).
    /// Returns (control line, payload) for MSG, or (line, empty) otherwise.
    async fn next(&mut self) -> (String, Vec<u8>) {
        for _ in 0..10 {
            let l = self.line().await;
            if l == "PING" {
                self.send(b"PONG\r\n").await;
                continue;
            }
            if l.starts_with("MSG ") {
                let n: usize = l.rsplit(' ').next().unwrap().parse().expect("MSG size");
                let mut p = vec![0u8; n + 2];
                timeout(STEP, self.rd.read_exact(&mut p))
                    .await
                    .expect("payload timed out")
                    .expect("payload");
                assert_eq!(&p[n..], b"\r\n", "payload not followed by CRLF");
                p.truncate(n);
                return (l, p);
            }
            return (l, Vec::new());
        }
        panic!("too many server PINGs");
    }

    async fn sync(&mut self) {
        self.send(b"PING\r\n").await;
        let (l, _) = self.next().await;
        assert_eq!(l, "PONG");
    }
}

fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_connections_each_get_own_and_shared_messages() {
    if let Some(n) = open_files_limit() {
        assert!(
            n >= (CONNS as u64) + 200,
            "this test needs ~{} open files; `ulimit -n` is {n}",
            CONNS + 200
        );
    }
    timeout(Duration::from_secs(60), async {
        let srv = Server::start(&[]);
        let port = srv.port();
        let started = Instant::now();

        // Connect and subscribe, 50 handshakes in flight at a time.
        let mut conns: Vec<(usize, Conn)> = futures::stream::iter(0..CONNS)
            .map(|i| async move {
                let mut c = Conn::open(port).await;
                c.send(
                    format!(
                        "CONNECT {{\"verbose\":false,\"pedantic\":false}}\r\nSUB own.{i} 1\r\nSUB shared 2\r\n"
                    )
                    .as_bytes(),
                )
                .await;
                c.sync().await;
                (i, c)
            })
            .buffer_unordered(50)
            .collect()
            .await;
        assert_eq!(conns.len(), CONNS);
        conns.sort_by_key(|(i, _)| *i);
        let connected_in = started.elapsed();

        // One publisher: a message to each own.<i>, then one to the shared subject.
        let mut publisher = Conn::open(port).await;
        publisher
            .send(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n")
            .await;
        let mut batch = Vec::new();
        for i in 0..CONNS {
            let body = format!("m{i}");
            batch.extend_from_slice(format!("PUB own.{i} {}\r\n{body}\r\n", body.len()).as_bytes());
        }
        batch.extend_from_slice(b"PUB shared 5\r\nhello\r\n");
        publisher.send(&batch).await;
        publisher.sync().await;

        // Every connection receives exactly its own message and the shared one.
        let results: Vec<usize> = futures::stream::iter(conns.into_iter())
            .map(|(i, mut c)| async move {
                let mut got = Vec::new();
                for _ in 0..2 {
                    let (l, p) = c.next().await;
                    got.push((l, String::from_utf8(p).unwrap()));
                }
                got.sort();
                let own_body = format!("m{i}");
                let want = vec![
                    ("MSG shared 2 5".to_string(), "hello".to_string()),
                    (format!("MSG own.{i} 1 {}", own_body.len()), own_body),
                ];
                let mut want = want;
                want.sort();
                assert_eq!(got, want, "connection {i}");
                c.sync().await; // nothing else queued
                i
            })
            .buffer_unordered(CONNS)
            .collect()
            .await;
        assert_eq!(results.len(), CONNS);
        let total = started.elapsed();
        eprintln!("{CONNS} connections set up in {connected_in:?}, all delivered in {total:?}");
        assert!(
            total < Duration::from_secs(30),
            "scale test took {total:?}, budget is ~20 s"
        );
    })
    .await
    .expect("scale test timed out");
}
