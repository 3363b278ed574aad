//! Limits and liveness configured through a config file: max_payload, max_control_line,
//! max_connections, ping_interval/ping_max (stale connections), max_pending/write_deadline
//! (slow consumers), and isolation from a client that stalls mid-line.

mod common;

use common::{show, with_timeout, Raw, Server};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn max_payload_from_config_is_advertised_and_enforced() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config("max_payload: 512\n", &[]);
        let mut r = Raw::connect_ok(srv.port());
        assert_eq!(r.info["max_payload"], 512, "INFO: {}", r.info);
        // Exactly at the limit is fine.
        let mut msg = b"SUB big 1\r\nPUB big 512\r\n".to_vec();
        msg.extend(std::iter::repeat_n(b'x', 512));
        msg.extend_from_slice(b"\r\n");
        r.send(&msg);
        assert_eq!(r.expect_line(), "MSG big 1 512");
        r.read_exact_bytes(514);
        r.sync();
        // One byte over is fatal.
        r.send(b"PUB big 513\r\n");
        r.expect(b"-ERR 'Maximum Payload Violation'\r\n");
        r.expect_closed();
    });
}

#[test]
fn max_payload_size_suffix_in_config() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config("max_payload: 2KB\n", &[]);
        let r = Raw::connect(srv.port());
        assert_eq!(r.info["max_payload"], 2048, "INFO: {}", r.info);
    });
}

#[test]
fn max_control_line_from_config_is_enforced() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config("max_control_line: 256\n", &[]);
        let mut ok = Raw::connect_ok(srv.port());
        // 254-byte subject + " 1" = 256 bytes of arguments: allowed.
        ok.send(format!("SUB {} 1\r\n", "a".repeat(254)).as_bytes());
        ok.sync();
        let mut bad = Raw::connect_ok(srv.port());
        bad.send(format!("SUB {} 1\r\n", "a".repeat(255)).as_bytes());
        bad.expect(b"-ERR 'maximum control line exceeded'\r\n");
        bad.expect_closed();
        ok.sync();
    });
}

#[test]
fn max_connections_rejects_extra_client_after_info() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config("max_connections: 2\n", &[]);
        let mut a = Raw::connect_ok(srv.port());
        let mut b = Raw::connect_ok(srv.port());
        // Reference: the third client still gets a full INFO line first, then the -ERR.
        let mut c = Raw::connect(srv.port());
        c.expect(b"-ERR 'maximum connections exceeded'\r\n");
        c.expect_closed();
        a.sync();
        b.sync();
        // Once a slot frees up, a new client is admitted (the server notices the close
        // asynchronously, so retry a few times).
        drop(a);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut d = Raw::connect(srv.port());
            d.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
            let got = d.read_for(300);
            if got == b"PONG\r\n" {
                break;
            }
            assert!(
                got.starts_with(b"-ERR 'maximum connections exceeded'\r\n"),
                "unexpected: {}",
                show(&got)
            );
            assert!(
                Instant::now() < deadline,
                "slot never freed after a client left"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        b.sync();
    });
}

#[test]
fn stale_connection_is_pinged_then_closed() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config("ping_interval: \"1s\"\nping_max: 2\n", &[]);
        let mut silent = Raw::connect(srv.port());
        silent.send(b"CONNECT {\"verbose\":false}\r\n");
        let mut healthy = Raw::connect(srv.port());
        healthy.send(b"CONNECT {\"verbose\":false}\r\n");

        // Answer the healthy client's PINGs for a while; never read `silent`.
        let start = Instant::now();
        let mut pings = 0;
        let mut pending = Vec::new();
        while start.elapsed() < Duration::from_millis(5000) {
            pending.extend(healthy.read_for(100));
            while let Some(pos) = pending.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = pending.drain(..pos + 2).collect();
                assert_eq!(line, b"PING\r\n", "healthy client got {}", show(&line));
                pings += 1;
                healthy.send(b"PONG\r\n");
            }
        }
        assert!(pings >= 1, "server never pinged the healthy client");

        // Reference: exactly ping_max PINGs, then the -ERR, then close.
        let got = silent.read_until_closed(Duration::from_secs(5));
        assert_eq!(
            show(&got),
            show(b"PING\r\nPING\r\n-ERR 'Stale Connection'\r\n"),
            "server log:\n{}",
            srv.log()
        );
        healthy.sync();
    });
}

#[test]
fn client_answering_pings_is_not_stale() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config("ping_interval: \"1s\"\nping_max: 1\n", &[]);
        let mut c = Raw::connect(srv.port());
        c.send(b"CONNECT {\"verbose\":false}\r\nSUB foo 1\r\n");
        let start = Instant::now();
        let mut pending = Vec::new();
        while start.elapsed() < Duration::from_millis(3500) {
            pending.extend(c.read_for(100));
            while let Some(pos) = pending.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = pending.drain(..pos + 2).collect();
                assert_eq!(line, b"PING\r\n", "got {}", show(&line));
                c.send(b"PONG\r\n");
            }
        }
        c.send(b"PUB foo 1\r\nx\r\nPING\r\n");
        // A server PING may race with our traffic; skip any that arrive.
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !got.ends_with(b"PONG\r\n") && Instant::now() < deadline {
            got.extend(c.read_for(100));
        }
        let cleaned = show(&got).replace("PING\\r\\n", "");
        assert_eq!(cleaned, show(b"MSG foo 1 1\r\nx\r\nPONG\r\n"));
    });
}

#[test]
fn slow_consumer_is_disconnected_others_unaffected() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config("max_pending: 1MB\nwrite_deadline: \"1s\"\n", &[]);
        const SIZE: usize = 65536;
        const BATCH: usize = 8; // 512 KiB per batch, below max_pending
        const MAX_BYTES: usize = 200 * 1024 * 1024;
        let per_msg = format!("MSG flood 1 {SIZE}\r\n").len() + SIZE + 2;

        // The slow subscriber never reads after subscribing.
        let mut slow = Raw::connect_small_rcvbuf(srv.port(), 4096);
        slow.send(b"CONNECT {\"verbose\":false}\r\nSUB flood 1\r\n");
        slow.sync();

        // The healthy subscriber reads everything on its own thread.
        let mut good = Raw::connect_ok(srv.port());
        good.send(b"SUB flood 1\r\n");
        good.sync();
        // Counts complete `MSG flood 1 65536` deliveries; answers server PINGs.
        let received = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicUsize::new(0));
        let reader = {
            let received = received.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(45);
                let want_line = format!("MSG flood 1 {SIZE}\r\n").into_bytes();
                let mut buf: Vec<u8> = Vec::new();
                while stop.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
                    buf.extend(good.read_some(50));
                    loop {
                        if buf.starts_with(b"PING\r\n") {
                            buf.drain(..6);
                            good.send(b"PONG\r\n");
                        } else if buf.len() >= want_line.len() + SIZE + 2 {
                            assert!(
                                buf.starts_with(&want_line),
                                "healthy subscriber got unexpected data: {}",
                                show(&buf[..want_line.len().min(buf.len())])
                            );
                            assert_eq!(
                                &buf[want_line.len() + SIZE..want_line.len() + SIZE + 2],
                                b"\r\n"
                            );
                            buf.drain(..want_line.len() + SIZE + 2);
                            received.fetch_add(1, Ordering::SeqCst);
                        } else {
                            break;
                        }
                    }
                }
                assert!(buf.is_empty(), "leftover bytes: {}", show(&buf));
                good
            })
        };

        let mut publisher = Raw::connect_ok(srv.port());
        let mut batch = Vec::new();
        for _ in 0..BATCH {
            batch.extend_from_slice(format!("PUB flood {SIZE}\r\n").as_bytes());
            batch.extend(std::iter::repeat_n(b'x', SIZE));
            batch.extend_from_slice(b"\r\n");
        }
        let start = Instant::now();
        let mut sent_msgs = 0usize;
        while sent_msgs * SIZE < MAX_BYTES.min(64 * 1024 * 1024)
            && start.elapsed() < Duration::from_secs(20)
        {
            publisher.send(&batch);
            sent_msgs += BATCH;
            // Pace on the healthy subscriber so that it never falls behind itself.
            let want = sent_msgs;
            let wait_until = Instant::now() + Duration::from_secs(10);
            while received.load(Ordering::SeqCst) < want {
                assert!(
                    Instant::now() < wait_until,
                    "healthy subscriber stalled at {} of {want} messages; log:\n{}",
                    received.load(Ordering::SeqCst),
                    srv.log()
                );
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        assert!(sent_msgs >= 64, "flood too small: {sent_msgs} messages");

        // The publisher is fine.
        publisher.sync();
        // Give a write-deadline based implementation time to act.
        std::thread::sleep(Duration::from_millis(2500));

        // The slow consumer was cut off: it gets some data, then the close.
        let got = slow.read_until_closed(Duration::from_secs(10));
        assert!(
            got.len() < sent_msgs * per_msg,
            "slow consumer received everything ({} bytes); it was never cut off",
            got.len()
        );

        // The healthy subscriber got every message and still works.
        stop.store(1, Ordering::SeqCst);
        let mut good = reader.join().expect("reader thread");
        assert_eq!(received.load(Ordering::SeqCst), sent_msgs);
        good.sync();
        publisher.send(b"PUB flood 2\r\nok\r\n");
        publisher.sync();
        good.expect(b"MSG flood 1 2\r\nok\r\n");
    });
}

#[test]
fn half_line_client_does_not_disturb_others() {
    with_timeout(LIMIT, || {
        let srv = Server::start(&[]);
        let mut stuck_ctl = Raw::connect_ok(srv.port());
        let mut stuck_payload = Raw::connect_ok(srv.port());
        stuck_ctl.send(b"SUB half 1\r\nPUB fo");
        stuck_payload.send(b"PUB half 11\r\nhel");

        let mut a = Raw::connect_ok(srv.port());
        let mut b = Raw::connect_ok(srv.port());
        a.send(b"SUB work 1\r\n");
        a.sync();
        for i in 0..50 {
            b.send(format!("PUB work 2\r\n{:02}\r\n", i).as_bytes());
        }
        b.sync();
        for i in 0..50 {
            a.expect(format!("MSG work 1 2\r\n{:02}\r\n", i).as_bytes());
        }
        a.sync();

        // The stalled clients can finish their lines later.
        stuck_payload.send(b"lo world\r\n");
        stuck_payload.sync();
        stuck_ctl.send(b"o 0\r\n\r\nPUB half 2\r\nok\r\nPING\r\n");
        stuck_ctl.expect(b"MSG half 1 11\r\nhello world\r\nMSG half 1 2\r\nok\r\nPONG\r\n");
    });
}
