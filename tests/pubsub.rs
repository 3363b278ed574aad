//! Pub/sub behaviour through a real client library (async-nats).

mod common;

use async_nats::{Client, ConnectOptions, HeaderMap, Message, Subscriber};
use common::Server;
use futures::StreamExt;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(30);

async fn bounded<F: Future<Output = ()>>(f: F) {
    timeout(LIMIT, f).await.expect("test timed out");
}

async fn connect(srv: &Server) -> Client {
    timeout(Duration::from_secs(10), async_nats::connect(srv.url()))
        .await
        .expect("connect timed out")
        .expect("connect")
}

async fn next(sub: &mut Subscriber) -> Message {
    timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("no message within 5s")
        .expect("subscription ended unexpectedly")
}

/// Collect messages until none arrives for `idle`, at most `max` of them.
async fn drain(sub: &mut Subscriber, idle: Duration, max: usize) -> Vec<Message> {
    let mut out = Vec::new();
    while out.len() < max {
        match timeout(idle, sub.next()).await {
            Ok(Some(m)) => out.push(m),
            _ => break,
        }
    }
    out
}

/// Round trip through the server. async-nats 0.42's `flush()` only flushes the socket
/// (no PING/PONG), so it does not prove the server has processed earlier SUBs. A request
/// nobody answers does: the server handles a connection's ops in order and replies 503.
async fn round_trip(c: &Client) {
    c.flush().await.expect("flush");
    let r = timeout(
        Duration::from_secs(10),
        c.request("_itest.barrier", bytes::Bytes::new()),
    )
    .await
    .expect("barrier request timed out");
    match r {
        Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {}
        other => panic!("barrier request: expected no-responders, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_subscribe_between_connections() {
    bounded(async {
        let srv = Server::start(&[]);
        let sub_c = connect(&srv).await;
        let pub_c = connect(&srv).await;
        let mut sub = sub_c.subscribe("greet.joe").await.unwrap();
        round_trip(&sub_c).await;
        pub_c.publish("greet.joe", "hello".into()).await.unwrap();
        pub_c.publish("greet.sue", "nope".into()).await.unwrap();
        round_trip(&pub_c).await;
        let m = next(&mut sub).await;
        assert_eq!(m.subject.as_str(), "greet.joe");
        assert_eq!(&m.payload[..], b"hello");
        assert!(m.reply.is_none());
        assert!(drain(&mut sub, Duration::from_millis(300), 10)
            .await
            .is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_info_seen_by_client() {
    bounded(async {
        let srv = Server::start(&[]);
        let c = connect(&srv).await;
        let info = c.server_info();
        assert_eq!(info.max_payload, 1048576);
        assert!(info.headers);
        assert_eq!(info.port, srv.port());
        assert!(!info.server_id.is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_from_one_publisher_arrive_in_order() {
    bounded(async {
        let srv = Server::start(&[]);
        let sub_c = connect(&srv).await;
        let pub_c = connect(&srv).await;
        let mut sub = sub_c.subscribe("seq").await.unwrap();
        round_trip(&sub_c).await;
        const N: usize = 10_000;
        for i in 0..N {
            pub_c.publish("seq", i.to_string().into()).await.unwrap();
        }
        round_trip(&pub_c).await;
        for i in 0..N {
            let m = next(&mut sub).await;
            assert_eq!(std::str::from_utf8(&m.payload).unwrap(), i.to_string());
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_subscriptions() {
    bounded(async {
        let srv = Server::start(&[]);
        let sub_c = connect(&srv).await;
        let pub_c = connect(&srv).await;
        let mut star = sub_c.subscribe("a.*.c").await.unwrap();
        let mut full = sub_c.subscribe("a.>").await.unwrap();
        round_trip(&sub_c).await;
        for s in ["a.b.c", "a.x.c", "a.b", "a.b.c.d", "b.b.c", "a"] {
            pub_c.publish(s, s.into()).await.unwrap();
        }
        round_trip(&pub_c).await;
        let got_star: Vec<String> = drain(&mut star, Duration::from_millis(500), 100)
            .await
            .into_iter()
            .map(|m| m.subject.to_string())
            .collect();
        let got_full: Vec<String> = drain(&mut full, Duration::from_millis(500), 100)
            .await
            .into_iter()
            .map(|m| m.subject.to_string())
            .collect();
        assert_eq!(got_star, vec!["a.b.c", "a.x.c"]);
        assert_eq!(got_full, vec!["a.b.c", "a.x.c", "a.b", "a.b.c.d"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_group_across_many_connections() {
    bounded(async {
        let srv = Server::start(&[]);
        let mut members = Vec::new();
        for _ in 0..8 {
            let c = connect(&srv).await;
            let s = c.queue_subscribe("work", "workers".into()).await.unwrap();
            round_trip(&c).await;
            members.push((c, s));
        }
        let mut plain = Vec::new();
        for _ in 0..2 {
            let c = connect(&srv).await;
            let s = c.subscribe("work").await.unwrap();
            round_trip(&c).await;
            plain.push((c, s));
        }
        let pub_c = connect(&srv).await;
        const N: usize = 400;
        for i in 0..N {
            pub_c.publish("work", i.to_string().into()).await.unwrap();
        }
        round_trip(&pub_c).await;

        let idle = Duration::from_millis(1000);
        let member_runs = members.iter_mut().map(|(_, s)| drain(s, idle, N + 10));
        let member_msgs: Vec<Vec<Message>> = futures::future::join_all(member_runs).await;
        let plain_runs = plain.iter_mut().map(|(_, s)| drain(s, idle, N + 10));
        let plain_msgs: Vec<Vec<Message>> = futures::future::join_all(plain_runs).await;

        assert_each_once(member_msgs.iter().flatten(), N, "the group");
        let active = member_msgs.iter().filter(|v| !v.is_empty()).count();
        assert!(active > 1, "only {active} group member received messages");
        for (i, msgs) in plain_msgs.iter().enumerate() {
            assert_eq!(msgs.len(), N, "plain subscriber {i} count");
            for (j, m) in msgs.iter().enumerate() {
                assert_eq!(
                    m.payload,
                    j.to_string().as_bytes(),
                    "plain subscriber order"
                );
            }
        }
    })
    .await;
}

/// Asserts that `msgs`, between them, carry each payload "0" to "n-1"
/// exactly once (what one queue group must get for n messages).
fn assert_each_once<'a>(msgs: impl IntoIterator<Item = &'a Message>, n: usize, who: &str) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for m in msgs {
        *seen
            .entry(String::from_utf8(m.payload.to_vec()).unwrap())
            .or_default() += 1;
    }
    assert_eq!(seen.len(), n, "{who} did not receive every message");
    assert!(
        seen.values().all(|&c| c == 1),
        "{who} got some message more than once"
    );
    assert!((0..n).all(|i| seen.contains_key(&i.to_string())));
}

/// Two queue groups match one message (one by a wildcard): each group gets
/// every message exactly once, wherever its members live. With members
/// spread over connections, a message often picks members of both groups
/// on the same other shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_queue_groups_on_one_subject_each_get_every_message_once() {
    bounded(async {
        let srv = Server::start(&[]);
        let mut members = Vec::new();
        for i in 0..8 {
            let c = connect(&srv).await;
            let (subject, group) = if i % 2 == 0 {
                ("work.*", "alpha")
            } else {
                ("work.x", "beta")
            };
            let s = c.queue_subscribe(subject, group.into()).await.unwrap();
            round_trip(&c).await;
            members.push((group, c, s));
        }
        let pub_c = connect(&srv).await;
        const N: usize = 400;
        for i in 0..N {
            pub_c.publish("work.x", i.to_string().into()).await.unwrap();
        }
        round_trip(&pub_c).await;

        let idle = Duration::from_millis(1000);
        let runs = members.iter_mut().map(|(_, _, s)| drain(s, idle, N + 10));
        let got: Vec<Vec<Message>> = futures::future::join_all(runs).await;
        for group in ["alpha", "beta"] {
            let msgs = got
                .iter()
                .zip(&members)
                .filter(|(_, (g, _, _))| *g == group)
                .flat_map(|(msgs, _)| msgs);
            assert_each_once(msgs, N, group);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply() {
    bounded(async {
        let srv = Server::start(&[]);
        let svc = connect(&srv).await;
        let mut reqs = svc.subscribe("svc.echo").await.unwrap();
        round_trip(&svc).await;
        let responder = tokio::spawn({
            let svc = svc.clone();
            async move {
                for _ in 0..3 {
                    let Some(m) = reqs.next().await else { return };
                    let reply = m.reply.expect("request carries a reply subject");
                    let mut body = b"re:".to_vec();
                    body.extend_from_slice(&m.payload);
                    svc.publish(reply, body.into()).await.unwrap();
                }
                svc.flush().await.unwrap();
            }
        });
        let client = connect(&srv).await;
        for i in 0..3 {
            let resp = timeout(
                Duration::from_secs(5),
                client.request("svc.echo", format!("q{i}").into()),
            )
            .await
            .expect("request timed out")
            .expect("request failed");
            assert_eq!(resp.payload, format!("re:q{i}").as_bytes());
        }
        timeout(Duration::from_secs(5), responder)
            .await
            .expect("responder hang")
            .unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_with_no_responders_fails_fast() {
    bounded(async {
        let srv = Server::start(&[]);
        let client = connect(&srv).await;
        let started = std::time::Instant::now();
        let err = timeout(
            Duration::from_secs(5),
            client.request("nobody.listens", "x".into()),
        )
        .await
        .expect("request hang")
        .expect_err("request with nobody listening must fail");
        assert_eq!(
            err.kind(),
            async_nats::RequestErrorKind::NoResponders,
            "got {err:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "no-responders was not fast"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_round_trip() {
    bounded(async {
        let srv = Server::start(&[]);
        let sub_c = connect(&srv).await;
        let pub_c = connect(&srv).await;
        let mut sub = sub_c.subscribe("hdr").await.unwrap();
        round_trip(&sub_c).await;
        let mut h = HeaderMap::new();
        h.insert("X-Trace", "abc-123");
        h.append("X-Multi", "one");
        h.append("X-Multi", "two");
        pub_c
            .publish_with_headers("hdr", h, "body".into())
            .await
            .unwrap();
        let mut h2 = HeaderMap::new();
        h2.insert("Only", "headers");
        pub_c
            .publish_with_headers("hdr", h2, bytes::Bytes::new())
            .await
            .unwrap();
        round_trip(&pub_c).await;

        let m = next(&mut sub).await;
        assert_eq!(&m.payload[..], b"body");
        let hm = m.headers.expect("headers present");
        assert_eq!(hm.get("X-Trace").map(|v| v.as_str()), Some("abc-123"));
        let multi: Vec<&str> = hm.get_all("X-Multi").map(|v| v.as_str()).collect();
        assert_eq!(multi, vec!["one", "two"]);

        let m = next(&mut sub).await;
        assert!(m.payload.is_empty());
        let hm = m.headers.expect("headers present");
        assert_eq!(hm.get("Only").map(|v| v.as_str()), Some("headers"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_off_skips_own_publishes() {
    bounded(async {
        let srv = Server::start(&[]);
        let quiet = timeout(
            Duration::from_secs(10),
            ConnectOptions::new().no_echo().connect(srv.url()),
        )
        .await
        .expect("connect timed out")
        .expect("connect");
        let other = connect(&srv).await;
        let mut sub = quiet.subscribe("echo").await.unwrap();
        round_trip(&quiet).await;
        quiet.publish("echo", "mine".into()).await.unwrap();
        round_trip(&quiet).await;
        other.publish("echo", "theirs".into()).await.unwrap();
        round_trip(&other).await;
        let got = drain(&mut sub, Duration::from_millis(500), 10).await;
        let payloads: Vec<&[u8]> = got.iter().map(|m| &m.payload[..]).collect();
        assert_eq!(payloads, vec![&b"theirs"[..]]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_on_by_default() {
    bounded(async {
        let srv = Server::start(&[]);
        let c = connect(&srv).await;
        let mut sub = c.subscribe("echo").await.unwrap();
        round_trip(&c).await;
        c.publish("echo", "mine".into()).await.unwrap();
        round_trip(&c).await;
        assert_eq!(&next(&mut sub).await.payload[..], b"mine");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_after_n_messages() {
    bounded(async {
        let srv = Server::start(&[]);
        let sub_c = connect(&srv).await;
        let pub_c = connect(&srv).await;
        let mut sub = sub_c.subscribe("limited").await.unwrap();
        sub.unsubscribe_after(3).await.unwrap();
        round_trip(&sub_c).await;
        for i in 0..6 {
            pub_c
                .publish("limited", i.to_string().into())
                .await
                .unwrap();
        }
        round_trip(&pub_c).await;
        let got = drain(&mut sub, Duration::from_millis(500), 10).await;
        let payloads: Vec<String> = got
            .iter()
            .map(|m| String::from_utf8(m.payload.to_vec()).unwrap())
            .collect();
        assert_eq!(payloads, vec!["0", "1", "2"]);
        // Another subscriber shows the rest was still published.
        let mut watcher = sub_c.subscribe("limited").await.unwrap();
        round_trip(&sub_c).await;
        pub_c.publish("limited", "late".into()).await.unwrap();
        round_trip(&pub_c).await;
        assert_eq!(&next(&mut watcher).await.payload[..], b"late");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_unsubscribe_stops_delivery() {
    bounded(async {
        let srv = Server::start(&[]);
        let sub_c = connect(&srv).await;
        let pub_c = connect(&srv).await;
        let mut gone = sub_c.subscribe("u").await.unwrap();
        let mut stays = sub_c.subscribe("u").await.unwrap();
        round_trip(&sub_c).await;
        pub_c.publish("u", "1".into()).await.unwrap();
        round_trip(&pub_c).await;
        assert_eq!(&next(&mut gone).await.payload[..], b"1");
        assert_eq!(&next(&mut stays).await.payload[..], b"1");
        gone.unsubscribe().await.unwrap();
        round_trip(&sub_c).await;
        pub_c.publish("u", "2".into()).await.unwrap();
        round_trip(&pub_c).await;
        assert_eq!(&next(&mut stays).await.payload[..], b"2");
        let rest = drain(&mut gone, Duration::from_millis(300), 10).await;
        assert!(
            rest.is_empty(),
            "unsubscribed subscriber still got messages"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_payload_round_trip() {
    bounded(async {
        let srv = Server::start(&[]);
        let sub_c = connect(&srv).await;
        let pub_c = connect(&srv).await;
        let mut sub = sub_c.subscribe("big").await.unwrap();
        round_trip(&sub_c).await;
        let body: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        pub_c.publish("big", body.clone().into()).await.unwrap();
        round_trip(&pub_c).await;
        let m = next(&mut sub).await;
        assert_eq!(m.payload.len(), body.len());
        assert!(m.payload[..] == body[..], "payload corrupted");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_with_reply_subject_is_forwarded() {
    bounded(async {
        let srv = Server::start(&[]);
        let sub_c = connect(&srv).await;
        let pub_c = connect(&srv).await;
        let mut sub = sub_c.subscribe("ask").await.unwrap();
        round_trip(&sub_c).await;
        pub_c
            .publish_with_reply("ask", "answer.here", "q".into())
            .await
            .unwrap();
        round_trip(&pub_c).await;
        let m = next(&mut sub).await;
        assert_eq!(m.reply.as_ref().map(|r| r.as_str()), Some("answer.here"));
    })
    .await;
}
