//! HTTP monitoring, as nats-server 2.9.10 serves it: `/varz`, `/connz` and all its
//! options, `/subsz` (and `/subscriptionsz`), `/accountz`, `/accstatz`, `/routez`,
//! `/gatewayz`, `/leafz`, `/healthz`, the index page, 404, HEAD, JSONP, keep-alive,
//! HTTPS and the base path; in `monitor/`: `/jsz`, `/stacksz`, `/ipqueuesz`,
//! `mqtt_client`, TLS connections and `/accountz`'s system account, latency and
//! revocation fields. Every check here passes against the reference too
//! (`NATRIX_TEST_BIN=/usr/sbin/nats-server`), except the tests named `natrix_only`
//! (`/varz`'s `natrix` object and `/metrics`), which that leg skips.
//!
//! The reference has a system account with internal subscriptions, so server-wide
//! subscription counts are checked as differences from a baseline.

#[path = "monitor/accounts_detail.rs"]
mod accounts_detail;
mod common;
#[path = "monitor/more_endpoints.rs"]
mod more_endpoints;
#[path = "monitor/tls_conns.rs"]
mod tls_conns;

use common::http::{self, get, get_json};
use common::{jwt, shard_flags, with_timeout, Raw, Server};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

fn start(extra: &[&str]) -> Server {
    let mut args: Vec<String> = vec!["-m".into(), "-1".into()];
    args.extend(shard_flags(3));
    args.extend(extra.iter().map(|s| s.to_string()));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&a)
}

fn start_conf(conf: &str) -> Server {
    let mut args: Vec<String> = vec!["-m".into(), "-1".into()];
    args.extend(shard_flags(3));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::with_config(conf, &a)
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} is not an unsigned integer: {}", v[k]))
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} is not a string: {}", v[k]))
}

/// An RFC 3339 UTC timestamp as Go writes it.
fn assert_time(v: &Value, k: &str) {
    let t = s(v, k);
    assert!(
        t.len() >= 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
        "{k} is not an RFC 3339 UTC time: {t}"
    );
}

fn conns(v: &Value) -> &Vec<Value> {
    v["connections"].as_array().expect("connections array")
}

fn cids(v: &Value) -> Vec<u64> {
    conns(v).iter().map(|c| u(c, "cid")).collect()
}

/// A connected raw client named `name`, synced, and its cid.
fn client(srv: &Server, name: &str) -> (Raw, u64) {
    let mut r = Raw::connect(srv.port());
    r.send(
        format!("CONNECT {{\"verbose\":false,\"pedantic\":false,\"name\":\"{name}\",\"lang\":\"rust\",\"version\":\"9.9\"}}\r\n")
            .as_bytes(),
    );
    r.sync();
    let port = srv.monitor_port();
    let v = get_json(port, "/connz?limit=100000");
    let cid = conns(&v)
        .iter()
        .find(|c| c["name"] == name)
        .map(|c| u(c, "cid"))
        .unwrap_or_else(|| panic!("{name} not in /connz: {v}"));
    (r, cid)
}

fn conn_by_cid(port: u16, cid: u64, q: &str) -> Value {
    let v = get_json(port, &format!("/connz?cid={cid}{q}"));
    assert_eq!(conns(&v).len(), 1, "cid {cid}: {v}");
    conns(&v)[0].clone()
}

#[test]
fn varz_has_the_reference_fields_with_their_types() {
    with_timeout(LIMIT, || {
        let srv = start(&[]);
        let port = srv.monitor_port();
        let v = get_json(port, "/varz");
        for k in [
            "server_id",
            "server_name",
            "version",
            "go",
            "host",
            "http_host",
            "http_base_path",
            "uptime",
        ] {
            s(&v, k);
        }
        assert_eq!(s(&v, "version"), "2.9.10");
        assert_eq!(s(&v, "host"), "127.0.0.1");
        assert_eq!(u(&v, "port"), srv.port() as u64);
        // The configured port, as the reference reports it (-1: random).
        assert_eq!(v["http_port"], -1);
        assert!(port > 0);
        assert_eq!(u(&v, "https_port"), 0);
        assert_eq!(s(&v, "http_base_path"), "");
        assert_eq!(u(&v, "proto"), 1);
        assert_eq!(u(&v, "max_connections"), 65536);
        assert_eq!(u(&v, "ping_interval"), 120_000_000_000, "nanoseconds");
        assert_eq!(u(&v, "ping_max"), 2);
        assert_eq!(v["auth_timeout"].as_f64(), Some(2.0), "seconds");
        assert_eq!(v["tls_timeout"].as_f64(), Some(2.0), "seconds");
        assert_eq!(u(&v, "write_deadline"), 10_000_000_000, "nanoseconds");
        assert_eq!(u(&v, "max_control_line"), 4096);
        assert_eq!(u(&v, "max_payload"), 1_048_576);
        assert_eq!(u(&v, "max_pending"), 67_108_864);
        for k in [
            "cluster",
            "gateway",
            "leaf",
            "mqtt",
            "websocket",
            "jetstream",
        ] {
            assert!(v[k].is_object(), "{k}: {}", v[k]);
        }
        for k in ["start", "now", "config_load_time"] {
            assert_time(&v, k);
        }
        for k in [
            "mem",
            "cores",
            "gomaxprocs",
            "connections",
            "total_connections",
            "routes",
            "remotes",
            "leafnodes",
            "in_msgs",
            "out_msgs",
            "in_bytes",
            "out_bytes",
            "slow_consumers",
            "subscriptions",
        ] {
            u(&v, k);
        }
        assert!(u(&v, "mem") > 0 && u(&v, "cores") > 0);
        assert!(v["cpu"].is_number());
        assert_eq!(
            (u(&v, "routes"), u(&v, "remotes"), u(&v, "leafnodes")),
            (0, 0, 0)
        );
        // This request is counted before the answer is built.
        assert_eq!(v["http_req_stats"]["/varz"], 1, "{}", v["http_req_stats"]);
        let v = get_json(port, "/varz");
        assert_eq!(v["http_req_stats"]["/varz"], 2);
        // Optional fields left out when off, as the reference's omitempty.
        for k in [
            "auth_required",
            "tls_required",
            "tls_verify",
            "max_subscriptions",
        ] {
            assert!(v.get(k).is_none(), "{k} present: {}", v[k]);
        }
    });
}

#[test]
fn varz_and_connz_count_known_traffic_across_connections() {
    with_timeout(LIMIT, || {
        let srv = start(&[]);
        let port = srv.monitor_port();
        let before = get_json(port, "/varz");
        // Three connections (on natrix: three shards).
        let (mut a, ca) = client(&srv, "a");
        let (mut b, cb) = client(&srv, "b");
        let (mut p, cp) = client(&srv, "p");
        a.send(b"SUB foo 1\r\nSUB bar 2\r\n");
        a.sync();
        b.send(b"SUB foo 1\r\n");
        b.sync();
        p.sync();
        // 10 messages of 5 bytes to two subscribers, 3 of 7 bytes to one, 2 to none.
        for _ in 0..10 {
            p.send(b"PUB foo 5\r\nhello\r\n");
        }
        for _ in 0..3 {
            p.send(b"PUB bar 7\r\nabcdefg\r\n");
        }
        p.send(b"PUB nobody 1\r\nx\r\nPUB nobody 1\r\nx\r\n");
        p.sync();
        for _ in 0..10 {
            assert_eq!(b.expect_line(), "MSG foo 1 5");
            assert_eq!(b.read_exact_bytes(7), b"hello\r\n");
        }
        let mut got = 0;
        while got < 13 {
            let l = a.expect_line();
            let n: usize = l.rsplit(' ').next().unwrap().parse().unwrap();
            a.read_exact_bytes(n + 2);
            got += 1;
        }
        a.sync();
        b.sync();
        let after = get_json(port, "/varz");
        let d = |k: &str| u(&after, k) - u(&before, k);
        assert_eq!(d("in_msgs"), 15);
        assert_eq!(d("in_bytes"), 50 + 21 + 2);
        assert_eq!(d("out_msgs"), 23);
        assert_eq!(d("out_bytes"), 100 + 21);
        assert_eq!(d("connections"), 3);
        assert_eq!(d("total_connections"), 3);
        assert_eq!(d("subscriptions"), 3);
        assert_eq!(d("slow_consumers"), 0);

        let ci = conn_by_cid(port, cp, "");
        assert_eq!((u(&ci, "in_msgs"), u(&ci, "in_bytes")), (15, 73));
        assert_eq!((u(&ci, "out_msgs"), u(&ci, "out_bytes")), (0, 0));
        assert_eq!(u(&ci, "subscriptions"), 0);
        let ci = conn_by_cid(port, ca, "");
        assert_eq!((u(&ci, "out_msgs"), u(&ci, "out_bytes")), (13, 71));
        assert_eq!(u(&ci, "subscriptions"), 2);
        let ci = conn_by_cid(port, cb, "");
        assert_eq!((u(&ci, "out_msgs"), u(&ci, "out_bytes")), (10, 50));
        assert_eq!(u(&ci, "in_msgs"), 0);
    });
}

#[test]
fn connz_connection_fields_and_types() {
    with_timeout(LIMIT, || {
        let srv = start(&[]);
        let port = srv.monitor_port();
        let (mut a, ca) = client(&srv, "alpha");
        a.send(b"SUB foo 1\r\nSUB bar q 2\r\nUNSUB 2 5\r\n");
        a.sync();
        let v = get_json(port, "/connz");
        assert_eq!(s(&v, "server_id"), s(&get_json(port, "/varz"), "server_id"));
        assert_time(&v, "now");
        assert_eq!((u(&v, "num_connections"), u(&v, "total")), (1, 1));
        assert_eq!((u(&v, "offset"), u(&v, "limit")), (0, 1024));
        let c = &conns(&v)[0];
        assert_eq!(u(c, "cid"), ca);
        assert_eq!((s(c, "kind"), s(c, "type")), ("Client", "nats"));
        assert_eq!(s(c, "ip"), "127.0.0.1");
        assert_eq!(u(c, "port"), a.stream().local_addr().unwrap().port() as u64);
        assert_time(c, "start");
        assert_time(c, "last_activity");
        assert!(c.get("stop").is_none() && c.get("reason").is_none());
        for k in ["rtt", "uptime", "idle"] {
            s(c, k);
        }
        assert!(s(c, "uptime").ends_with('s'));
        u(c, "pending_bytes");
        assert_eq!(u(c, "subscriptions"), 2);
        assert_eq!(
            (s(c, "name"), s(c, "lang"), s(c, "version")),
            ("alpha", "rust", "9.9")
        );
        // Without subs=, no lists; without auth=1, no user.
        for k in [
            "subscriptions_list",
            "subscriptions_list_detail",
            "authorized_user",
            "account",
        ] {
            assert!(c.get(k).is_none(), "{k}: {c}");
        }

        let c = conn_by_cid(port, ca, "&subs=1");
        let mut list: Vec<&str> = c["subscriptions_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        list.sort();
        assert_eq!(list, ["bar", "foo"]);
        assert!(c.get("subscriptions_list_detail").is_none());

        let c = conn_by_cid(port, ca, "&subs=detail");
        assert!(c.get("subscriptions_list").is_none());
        let mut det = c["subscriptions_list_detail"].as_array().unwrap().clone();
        det.sort_by_key(|d| d["sid"].as_str().unwrap().to_string());
        assert_eq!(det[0]["subject"], "foo");
        assert_eq!(det[0]["sid"], "1");
        assert_eq!(det[0]["msgs"], 0);
        assert_eq!(det[0]["cid"], ca);
        assert!(det[0].get("qgroup").is_none() && det[0].get("max").is_none());
        assert!(
            det[0].get("account").is_none(),
            "no account in connz detail"
        );
        assert_eq!(det[1]["subject"], "bar");
        assert_eq!(det[1]["qgroup"], "q");
        assert_eq!(det[1]["max"], 5);
    });
}

/// An RFC 3339 UTC time as a sortable (date-time, nanoseconds) pair; the
/// reference trims trailing zeros from the fraction, so strings alone do
/// not compare.
fn instant(t: &str) -> (String, u64) {
    let t = t
        .strip_suffix('Z')
        .unwrap_or_else(|| panic!("not UTC: {t}"));
    let (whole, frac) = t.split_once('.').unwrap_or((t, "0"));
    let nanos = format!("{frac:0<9}")[..9].parse().unwrap();
    (whole.to_string(), nanos)
}

#[test]
fn last_activity_counts_messages_and_subscriptions_not_pings() {
    with_timeout(LIMIT, || {
        let srv = start(&[]);
        let port = srv.monitor_port();
        let (mut a, ida) = client(&srv, "a");
        let (mut b, _) = client(&srv, "b");
        let last = |cid| instant(s(&conn_by_cid(port, cid, ""), "last_activity"));
        let t0 = last(ida);
        std::thread::sleep(Duration::from_millis(20));
        a.sync();
        assert_eq!(last(ida), t0, "a PING is not activity");
        a.send(b"SUB act 1\r\n");
        a.sync();
        let t1 = last(ida);
        assert!(t1 > t0, "a SUB is activity: {t0:?} then {t1:?}");
        std::thread::sleep(Duration::from_millis(20));
        b.send(b"PUB act 2\r\nhi\r\n");
        b.sync();
        assert_eq!(a.expect_line(), "MSG act 1 2");
        a.read_exact_bytes(4);
        let t2 = last(ida);
        assert!(t2 > t1, "a delivery is activity: {t1:?} then {t2:?}");
    });
}

#[test]
fn connz_sorts_by_every_key_and_refuses_unknown_ones() {
    with_timeout(LIMIT, || {
        let srv = start(&[]);
        let port = srv.monitor_port();
        // c1: 3 subs, publishes 1 message of 100 bytes; c2: 1 sub, receives
        // that message and publishes 5 small ones; c3: idle, nothing.
        let (mut c1, id1) = client(&srv, "c1");
        let (mut c2, id2) = client(&srv, "c2");
        let (_c3, id3) = client(&srv, "c3");
        c1.send(b"SUB x1 1\r\nSUB x2 2\r\nSUB x3 3\r\n");
        c1.sync();
        c2.send(b"SUB big 1\r\n");
        c2.sync();
        let payload = vec![b'z'; 100];
        let mut pubm = b"PUB big 100\r\n".to_vec();
        pubm.extend_from_slice(&payload);
        pubm.extend_from_slice(b"\r\n");
        c1.send(&pubm);
        c1.sync();
        assert_eq!(c2.expect_line(), "MSG big 1 100");
        c2.read_exact_bytes(102);
        for _ in 0..5 {
            c2.send(b"PUB x1 1\r\na\r\n");
        }
        c2.sync();
        for _ in 0..5 {
            assert_eq!(c1.expect_line(), "MSG x1 1 1");
            c1.read_exact_bytes(3);
        }
        // A SUB is activity in the reference's sense (a PING is not), and
        // it makes c1's the latest: c2's publishing and the deliveries to
        // c1 share one timestamp in the reference.
        c1.send(b"SUB x4 4\r\n");
        c1.sync();
        let order = |sort: &str| cids(&get_json(port, &format!("/connz?sort={sort}")));
        assert_eq!(order("cid"), vec![id1, id2, id3]);
        assert_eq!(order("start"), vec![id1, id2, id3]);
        assert_eq!(order("subs"), vec![id1, id2, id3]);
        assert_eq!(order("msgs_to")[..2], [id1, id2], "c1 got 5, c2 got 1");
        assert_eq!(order("msgs_from")[..2], [id2, id1], "c2 sent 5, c1 sent 1");
        assert_eq!(
            order("bytes_to")[..2],
            [id2, id1],
            "c2 got 100 bytes, c1 got 5"
        );
        assert_eq!(order("bytes_from")[..2], [id1, id2]);
        assert_eq!(order("pending").len(), 3);
        // c1 was active last (its SUB above), c3 first.
        assert_eq!(order("last")[0], id1);
        assert_eq!(order("last")[2], id3);
        assert_eq!(order("idle").len(), 3);
        // Uptime ascending: the newest connection first.
        assert_eq!(order("uptime")[0], id3);

        for (sort, want) in [
            ("stop", "sort by stop only valid on closed connections"),
            ("reason", "sort by reason only valid on closed connections"),
            ("bogus", "invalid sorting option: bogus"),
            // 2.9.10 has no rtt sort.
            ("rtt", "invalid sorting option: rtt"),
        ] {
            let r = get(port, &format!("/connz?sort={sort}"));
            assert_eq!(r.status, 400, "sort={sort}");
            assert_eq!(r.text(), want);
        }
        for (q, want) in [
            ("limit=x", "Error decoding int for 'limit'"),
            ("offset=x", "Error decoding int for 'offset'"),
            ("cid=-1", "Error decoding uint64 for 'cid'"),
            ("auth=maybe", "Error decoding boolean for 'auth'"),
            ("subs=maybe", "Error decoding boolean for 'subs'"),
            ("state=sleeping", "Error decoding state for sleeping"),
        ] {
            let r = get(port, &format!("/connz?{q}"));
            assert_eq!(r.status, 400, "{q}");
            assert!(r.text().starts_with(want), "{q}: {}", r.text());
        }
    });
}

#[test]
fn connz_limit_offset_and_cid() {
    with_timeout(LIMIT, || {
        let srv = start(&[]);
        let port = srv.monitor_port();
        let mut ids = Vec::new();
        let mut keep = Vec::new();
        for i in 0..5 {
            let (r, id) = client(&srv, &format!("n{i}"));
            keep.push(r);
            ids.push(id);
        }
        let v = get_json(port, "/connz?limit=2&offset=1");
        assert_eq!((u(&v, "limit"), u(&v, "offset")), (2, 1));
        assert_eq!((u(&v, "num_connections"), u(&v, "total")), (2, 5));
        assert_eq!(cids(&v), ids[1..3]);
        let v = get_json(port, "/connz?offset=4");
        assert_eq!(cids(&v), ids[4..]);
        let v = get_json(port, "/connz?offset=10");
        assert_eq!((u(&v, "num_connections"), u(&v, "total")), (0, 5));
        assert_eq!(conns(&v).len(), 0);
        // limit <= 0 means the default.
        assert_eq!(u(&get_json(port, "/connz?limit=0"), "limit"), 1024);
        assert_eq!(u(&get_json(port, "/connz?offset=-3"), "offset"), 0);
        // cid picks one connection and sets the limit to 1.
        let v = get_json(port, &format!("/connz?cid={}", ids[3]));
        assert_eq!(cids(&v), [ids[3]]);
        assert_eq!(u(&v, "limit"), 1);
        let v = get_json(port, "/connz?cid=999999");
        assert_eq!(conns(&v).len(), 0);
    });
}

const AUTH_CONF: &str = r#"
accounts {
  A { users = [ {user: alice, password: pa}, {user: amy, password: pm} ] }
  B { users = [ {user: bob, password: pb} ] }
}
"#;

fn login(srv: &Server, user: &str, pass: &str) -> Raw {
    let mut r = Raw::connect(srv.port());
    r.send(
        format!("CONNECT {{\"verbose\":false,\"pedantic\":false,\"user\":\"{user}\",\"pass\":\"{pass}\",\"name\":\"{user}\"}}\r\n")
            .as_bytes(),
    );
    r.sync();
    r
}

#[test]
fn connz_auth_account_and_user_filters() {
    with_timeout(LIMIT, || {
        let srv = start_conf(AUTH_CONF);
        let port = srv.monitor_port();
        let mut alice = login(&srv, "alice", "pa");
        let _amy = login(&srv, "amy", "pm");
        let _bob = login(&srv, "bob", "pb");
        alice.send(b"SUB a.b 1\r\n");
        alice.sync();
        let v = get_json(port, "/connz?auth=1");
        assert_eq!(u(&v, "total"), 3);
        let mut users: Vec<(String, String)> = conns(&v)
            .iter()
            .map(|c| {
                (
                    s(c, "authorized_user").to_string(),
                    s(c, "account").to_string(),
                )
            })
            .collect();
        users.sort();
        assert_eq!(
            users,
            [
                ("alice".into(), "A".into()),
                ("amy".into(), "A".into()),
                ("bob".into(), "B".into())
            ]
        );
        // Without auth=1 neither field appears.
        let v = get_json(port, "/connz");
        assert!(conns(&v)
            .iter()
            .all(|c| c.get("authorized_user").is_none() && c.get("account").is_none()));

        let v = get_json(port, "/connz?auth=1&acc=A");
        assert_eq!(u(&v, "total"), 2);
        assert!(conns(&v).iter().all(|c| c["account"] == "A"));
        let v = get_json(port, "/connz?auth=1&acc=B");
        assert_eq!(conns(&v).len(), 1);
        assert_eq!(conns(&v)[0]["authorized_user"], "bob");
        let v = get_json(port, "/connz?auth=1&user=amy");
        assert_eq!(conns(&v).len(), 1);
        assert_eq!(conns(&v)[0]["name"], "amy");

        // accstatz: per-account connections and traffic.
        let st = get_json(port, "/accstatz");
        let list = st["account_statz"].as_array().unwrap();
        let a = list
            .iter()
            .find(|x| x["acc"] == "A")
            .expect("A in accstatz");
        assert_eq!(u(a, "conns"), 2);
        assert_eq!(u(a, "total_conns"), 2);
        assert_eq!(u(a, "leafnodes"), 0);
        assert!(a["sent"]["msgs"].is_u64() && a["received"]["bytes"].is_u64());
        assert_eq!(u(a, "slow_consumers"), 0);
        let bob = list
            .iter()
            .find(|x| x["acc"] == "B")
            .expect("B in accstatz");
        assert_eq!(u(bob, "conns"), 1);
        // Accounts without connections only with unused=1.
        let has = |q: &str, acc: &str| {
            get_json(port, &format!("/accstatz{q}"))["account_statz"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["acc"] == acc)
        };
        assert!(!has("", "$G"));
        assert!(has("?unused=1", "$G"));

        // Traffic inside A counts for A.
        let mut amy2 = login(&srv, "amy", "pm");
        amy2.send(b"PUB a.b 3\r\nxyz\r\n");
        amy2.sync();
        assert_eq!(alice.expect_line(), "MSG a.b 1 3");
        alice.read_exact_bytes(5);
        let st = get_json(port, "/accstatz");
        let a = st["account_statz"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["acc"] == "A")
            .expect("A")
            .clone();
        let a = &a;
        assert_eq!(
            (u(&a["received"], "msgs"), u(&a["received"], "bytes")),
            (1, 3)
        );
        assert_eq!((u(&a["sent"], "msgs"), u(&a["sent"], "bytes")), (1, 3));
        assert_eq!(u(a, "total_conns"), 3);

        // accountz lists the configured accounts and details one.
        let az = get_json(port, "/accountz");
        let names: Vec<&str> = az["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"A") && names.contains(&"B") && names.contains(&"$G"),
            "{names:?}"
        );
        assert_time(&az, "now");
        let d = get_json(port, "/accountz?acc=A");
        let det = &d["account_detail"];
        assert_eq!(det["account_name"], "A");
        assert_eq!(u(det, "client_connections"), 3);
        // The reference adds internal (system import) subscriptions to each
        // account: compare before and after one more SUB.
        let subs = u(det, "subscriptions");
        assert!(subs >= 1);
        assert_eq!(u(&det["sublist_stats"], "num_subscriptions"), subs);
        assert_eq!(det["expired"], false);
        assert_eq!(det["complete"], true);
        assert_eq!(det["jetstream_enabled"], false);
        alice.send(b"SUB a.c 2\r\n");
        alice.sync();
        let d = get_json(port, "/accountz?acc=A");
        assert_eq!(u(&d["account_detail"], "subscriptions"), subs + 1);
        assert_eq!(
            u(
                &get_json(port, "/accountz?acc=B")["account_detail"],
                "subscriptions"
            ),
            subs - 1
        );
    });
}

/// Opens a connection that ends with `how`, returns its cid.
fn closed_with(srv: &Server, name: &str, how: &[u8]) -> u64 {
    let (mut r, cid) = client(srv, name);
    r.send(how);
    r.read_until_closed(Duration::from_secs(5));
    cid
}

#[test]
fn closed_connections_keep_their_reason_stop_and_counters() {
    with_timeout(LIMIT, || {
        let srv = start(&[]);
        let port = srv.monitor_port();
        // A clean close.
        let (mut r, clean) = client(&srv, "clean");
        r.send(b"SUB q 1\r\nPUB q 2\r\nhi\r\n");
        assert_eq!(r.expect_line(), "MSG q 1 2");
        r.read_exact_bytes(4);
        r.sync();
        r.stream().shutdown(std::net::Shutdown::Write).unwrap();
        r.read_until_closed(Duration::from_secs(5));
        // A protocol error.
        let parse = closed_with(&srv, "parse", b"BOGUS\r\n");
        // Payload over max_payload (1 MB default).
        let big = closed_with(&srv, "big", b"PUB x 2000000\r\n");
        assert!(common::wait_until(Duration::from_secs(5), || {
            u(&get_json(port, "/connz?state=closed"), "total") >= 3
        }));

        let v = get_json(port, "/connz?state=closed&subs=1");
        assert_eq!(u(&v, "total"), 3);
        let by: HashMap<u64, &Value> = conns(&v).iter().map(|c| (u(c, "cid"), c)).collect();
        let c = by[&clean];
        assert_eq!(s(c, "reason"), "Client Closed");
        assert_time(c, "stop");
        assert_eq!(
            (u(c, "in_msgs"), u(c, "out_msgs"), u(c, "in_bytes")),
            (1, 1, 2)
        );
        assert_eq!(
            c["subscriptions_list"],
            serde_json::json!(["q"]),
            "subscriptions kept"
        );
        assert_eq!(s(c, "name"), "clean");
        assert_eq!(s(by[&parse], "reason"), "Protocol Violation");
        assert_eq!(s(by[&big], "reason"), "Maximum Message Payload Exceeded");
        assert!(get_json(port, "/connz")
            .get("connections")
            .unwrap()
            .as_array()
            .unwrap()
            .is_empty());

        // state=all has open and closed; sort=stop (newest first) and reason.
        let (_open, open_id) = client(&srv, "open");
        let v = get_json(port, "/connz?state=all");
        assert_eq!(u(&v, "total"), 4);
        assert!(cids(&v).contains(&open_id));
        let v = get_json(port, "/connz?state=closed&sort=stop");
        assert_eq!(cids(&v), [big, parse, clean]);
        let v = get_json(port, "/connz?state=closed&sort=reason");
        let reasons: Vec<&str> = conns(&v).iter().map(|c| s(c, "reason")).collect();
        assert_eq!(
            reasons,
            [
                "Client Closed",
                "Maximum Message Payload Exceeded",
                "Protocol Violation"
            ]
        );
        // cid finds a closed connection with state=closed.
        let v = get_json(port, &format!("/connz?state=closed&cid={parse}"));
        assert_eq!(cids(&v), [parse]);
    });
}

#[test]
fn closed_connection_reason_for_an_authentication_failure() {
    with_timeout(LIMIT, || {
        let srv = start_conf(AUTH_CONF);
        let port = srv.monitor_port();
        let mut r = Raw::connect(srv.port());
        r.send(b"CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"wrong\"}\r\nPING\r\n");
        r.read_until_closed(Duration::from_secs(5));
        assert!(common::wait_until(Duration::from_secs(5), || {
            u(&get_json(port, "/connz?state=closed"), "total") == 1
        }));
        let v = get_json(port, "/connz?state=closed");
        assert_eq!(s(&conns(&v)[0], "reason"), "Authentication Failure");
    });
}

#[test]
fn subsz_statistics_and_listing() {
    with_timeout(LIMIT, || {
        let srv = start(&[]);
        let port = srv.monitor_port();
        let base = u(&get_json(port, "/subsz"), "num_subscriptions");
        let (mut a, ca) = client(&srv, "a");
        a.send(b"SUB foo.bar 1\r\nSUB foo.* q 2\r\nSUB baz 3\r\n");
        a.sync();
        let v = get_json(port, "/subsz");
        assert_eq!(u(&v, "num_subscriptions"), base + 3);
        for k in [
            "num_cache",
            "num_inserts",
            "num_removes",
            "num_matches",
            "max_fanout",
        ] {
            u(&v, k);
        }
        assert!(v["cache_hit_rate"].is_number() && v["avg_fanout"].is_number());
        // Without subs=1 only the statistics, as the reference.
        assert!(v.get("subscriptions_list").is_none() && v.get("server_id").is_none());
        let alias = get_json(port, "/subscriptionsz");
        assert_eq!(u(&alias, "num_subscriptions"), base + 3);

        let v = get_json(port, "/subsz?subs=1&test=foo.bar");
        assert_eq!(u(&v, "total"), 2);
        let list = v["subscriptions_list"].as_array().unwrap();
        let mut subjects: Vec<&str> = list.iter().map(|d| s(d, "subject")).collect();
        subjects.sort();
        assert_eq!(subjects, ["foo.*", "foo.bar"]);
        for d in list {
            assert_eq!(d["account"], "$G");
            assert_eq!(u(d, "cid"), ca);
            s(d, "sid");
            u(d, "msgs");
        }
        assert_eq!(s(&v, "server_id"), s(&get_json(port, "/varz"), "server_id"));
        let v = get_json(port, "/subsz?subs=1&test=baz&limit=5");
        assert_eq!(u(&v, "limit"), 5);
        assert_eq!(v["subscriptions_list"][0]["subject"], "baz");
        let r = get(port, "/subsz?test=foo.*");
        assert_eq!(r.status, 400);
        assert_eq!(
            r.text(),
            "invalid test subject, must be valid publish subject: foo.*"
        );
    });
}

#[test]
fn routez_gatewayz_leafz_healthz_without_clustering() {
    with_timeout(LIMIT, || {
        let srv = start(&[]);
        let port = srv.monitor_port();
        let id = s(&get_json(port, "/varz"), "server_id").to_string();
        let v = get_json(port, "/routez");
        assert_eq!(s(&v, "server_id"), id);
        assert_time(&v, "now");
        assert_eq!(u(&v, "num_routes"), 0);
        assert_eq!(v["routes"], serde_json::json!([]));
        let v = get_json(port, "/gatewayz");
        assert_eq!(s(&v, "server_id"), id);
        assert_eq!(v["outbound_gateways"], serde_json::json!({}));
        assert_eq!(v["inbound_gateways"], serde_json::json!({}));
        let v = get_json(port, "/leafz");
        assert_eq!(u(&v, "leafnodes"), 0);
        assert!(v["leafs"].is_null());
        let r = get(port, "/healthz");
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), serde_json::json!({"status": "ok"}));
    });
}

#[test]
fn http_details_index_404_head_jsonp_keepalive() {
    with_timeout(LIMIT, || {
        let srv = start(&[]);
        let port = srv.monitor_port();
        let r = get(port, "/");
        assert_eq!(r.status, 200);
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        assert!(r.text().contains("varz") && r.text().contains("connz"));
        for path in ["/nope", "/varz/", "/varzz"] {
            let r = get(port, path);
            assert_eq!(r.status, 404, "{path}");
            assert_eq!(r.text(), "404 page not found\n");
            assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
            assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        }
        // HEAD: the GET's headers, no body.
        let mut c = http::connect(port);
        let h = c.request("HEAD", "/healthz");
        assert_eq!(h.status, 200);
        assert_eq!(h.header("content-type"), Some("application/json"));
        assert_eq!(h.header("content-length"), Some("15"));
        assert!(h.header("date").is_some());
        // Same connection (keep-alive): GET, JSONP, another GET.
        let g = c.request("GET", "/healthz");
        assert_eq!(g.text(), r#"{"status":"ok"}"#);
        let j = c.request("GET", "/connz?callback=cb");
        assert_eq!(j.header("content-type"), Some("application/javascript"));
        let t = j.text();
        assert!(t.starts_with("cb(") && t.ends_with(')'), "{t}");
        let inner: Value = serde_json::from_str(&t[3..t.len() - 1]).expect("JSON inside JSONP");
        assert_eq!(inner["limit"], 1024);
        let v = c.request("GET", "/varz?callback=f.g");
        assert!(v.text().starts_with("f.g({"));
        let last = c.request("GET", "/varz");
        assert_eq!(last.header("content-type"), Some("application/json"));
        last.json();
    });
}

#[test]
fn base_path_from_config() {
    with_timeout(LIMIT, || {
        let srv = start_conf("http_base_path: /mon\n");
        let port = srv.monitor_port();
        assert_eq!(get(port, "/mon").status, 200);
        let v = get_json(port, "/mon/varz");
        assert_eq!(s(&v, "http_base_path"), "/mon");
        assert_eq!(u(&get_json(port, "/mon/connz"), "limit"), 1024);
        assert_eq!(get(port, "/varz").status, 404);
        assert_eq!(get(port, "/").status, 404);
    });
}

#[test]
fn https_monitoring_uses_the_tls_block() {
    with_timeout(LIMIT, || {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        let dir = common::TempDir::new("mon-tls");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
        let conf = format!(
            "tls {{ cert_file: \"{}\", key_file: \"{}\" }}\n",
            cert.display(),
            key.display()
        );
        let mut args: Vec<String> = vec!["-ms".into(), "-1".into()];
        args.extend(shard_flags(2));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let srv = Server::with_config(&conf, &a);
        let port = srv.monitor_port_for("https");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ck.cert.der().clone()).unwrap();
        let cfg = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(std::sync::Arc::new(cfg), name).unwrap();
        let sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut c = http::Http::new(rustls::StreamOwned::new(conn, sock));
        let r = c.request("GET", "/varz");
        assert_eq!(r.status, 200);
        let v = r.json();
        assert_eq!(v["https_port"], -1);
        assert_eq!(v["tls_required"], true);
        let r = c.request("GET", "/healthz");
        assert_eq!(r.json(), serde_json::json!({"status": "ok"}));
    });
}

// ------------------------------------------------------------ natrix only

#[test]
fn natrix_only_placement_prefers_the_less_busy_shard() {
    with_timeout(LIMIT, || {
        let mut args: Vec<String> = vec!["-m".into(), "-1".into()];
        args.extend(shard_flags(2));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let srv = Server::start(&a);
        let port = srv.monitor_port();
        let shards = || {
            let v = get_json(port, "/varz");
            let list = v["natrix"]["shards"]
                .as_array()
                .expect("natrix.shards")
                .clone();
            let mut by_id: Vec<(u64, u64, u64)> = list
                .iter()
                .map(|s| (u(s, "id"), u(s, "connections"), u(s, "busy_tenths")))
                .collect();
            by_id.sort();
            by_id
        };
        // A publisher with no subscribers keeps shard 0 busy; an idle client
        // evens the counts on shard 1.
        let (mut flood, _) = client(&srv, "flood");
        let (_idle, _) = client(&srv, "idle");
        assert_eq!(
            shards().iter().map(|s| s.1).collect::<Vec<_>>(),
            [1, 1],
            "one connection each"
        );
        let batch = b"PUB busy 100\r\n"
            .iter()
            .chain(&[b'x'; 100])
            .chain(b"\r\n");
        let batch: Vec<u8> = batch.copied().collect::<Vec<u8>>().repeat(500);
        let until = std::time::Instant::now() + Duration::from_secs(10);
        let busy = loop {
            for _ in 0..20 {
                flood.send(&batch);
            }
            let s = shards();
            if s[0].2 >= 2 && s[1].2 == 0 {
                break s;
            }
            assert!(
                std::time::Instant::now() < until,
                "shard 0 never looked busier than shard 1: {s:?}"
            );
        };
        // Counts are level, so the busy shard is passed over.
        let (_newcomer, _) = client(&srv, "newcomer");
        assert_eq!(
            shards().iter().map(|s| s.1).collect::<Vec<_>>(),
            [1, 2],
            "the newcomer should go to the idle shard (busy tenths then: {busy:?})"
        );
        flood.sync();
    });
}

#[test]
fn natrix_only_shards_are_pinned_where_a_cpu_is_to_spare_or_when_asked() {
    with_timeout(LIMIT, || {
        // The server inherits this process's CPUs: its affinity, as
        // /proc has it (a cgroup's CPU quota does not narrow it).
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .expect("Cpus_allowed_list")
            .trim();
        let available: usize = list
            .split(',')
            .map(|r| match r.split_once('-') {
                Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
                None => 1,
            })
            .sum();
        let cpus = |conf: &str| -> Vec<u64> {
            let srv = Server::with_config(conf, &["-m", "-1"]);
            let v = get_json(srv.monitor_port(), "/varz");
            let shard = &v["natrix"]["shards"][0];
            shard["cpus"]
                .as_array()
                .unwrap_or_else(|| panic!("no cpus list: {shard}"))
                .iter()
                .map(|c| c.as_u64().expect("a CPU number"))
                .collect()
        };
        // Fewer shards than CPUs, the default: pinned to a single CPU.
        assert_eq!(cpus("shards { count: 1 }\n").len(), 1);
        // pin: false leaves it every CPU the process may use.
        assert_eq!(
            cpus("shards { count: 1, pin: false }\n").len(),
            available,
            "an unpinned shard is confined"
        );
        // A shard on every CPU, the default: none is pinned, so none waits
        // for whatever else runs on its CPU.
        assert_eq!(cpus("").len(), available, "default shards are confined");
        // Unless pin: true asks for it.
        assert_eq!(
            cpus(&format!("shards {{ count: {available}, pin: true }}\n")).len(),
            1
        );
    });
}

#[test]
fn natrix_only_varz_reports_each_shard() {
    with_timeout(LIMIT, || {
        let srv = start(&[]);
        let port = srv.monitor_port();
        // The server's own subscriptions (the system account's, on shard
        // 0) are there before any client's.
        let internal = u(
            &get_json(port, "/varz")["natrix"]["shards"][0],
            "subscriptions",
        );
        // Consecutive connections land on shards 0, 1, 2.
        let (mut sub, _) = client(&srv, "sub");
        let (mut publ, _) = client(&srv, "pub");
        let (_idle, _) = client(&srv, "idle");
        sub.send(b"SUB x 1\r\n");
        sub.sync();
        publ.sync();
        for _ in 0..4 {
            publ.send(b"PUB x 3\r\nabc\r\n");
        }
        publ.sync();
        for _ in 0..4 {
            assert_eq!(sub.expect_line(), "MSG x 1 3");
            sub.read_exact_bytes(5);
        }
        let v = get_json(port, "/varz");
        let shards = v["natrix"]["shards"].as_array().expect("natrix.shards");
        assert_eq!(shards.len(), 3);
        let by_id = |i: u64| shards.iter().find(|s| s["id"] == i).expect("shard");
        let (s0, s1, s2) = (by_id(0), by_id(1), by_id(2));
        for s in shards {
            assert_eq!(u(s, "connections"), 1);
            assert!(u(s, "cpu_ns") > 0, "{s}");
            u(s, "stalled_ns");
        }
        assert_eq!(
            (
                u(s0, "subscriptions"),
                u(s0, "out_msgs"),
                u(s0, "out_bytes")
            ),
            (internal + 1, 4, 12)
        );
        assert_eq!((u(s1, "in_msgs"), u(s1, "in_bytes")), (4, 12));
        // The messages crossed from shard 1 to shard 0 over the mesh.
        assert_eq!(u(s1, "mesh_sent"), 4);
        assert_eq!(u(s0, "mesh_received"), 4);
        assert_eq!(
            (u(s2, "in_msgs"), u(s2, "out_msgs"), u(s2, "mesh_sent")),
            (0, 0, 0)
        );
        // The reference's fields are untouched and agree with the shards.
        let sum = |k: &str| shards.iter().map(|s| u(s, k)).sum::<u64>();
        for k in [
            "in_msgs",
            "out_msgs",
            "in_bytes",
            "out_bytes",
            "subscriptions",
            "slow_consumers",
        ] {
            assert_eq!(u(&v, k), sum(k), "{k}");
        }
        assert_eq!(u(&v, "connections"), sum("connections"));
        assert_eq!(u(&v, "total_connections"), sum("total_connections"));
    });
}

/// One sample of the Prometheus text format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// A strict parser for the text exposition format 0.0.4: HELP and TYPE once per
/// family and before its samples, valid metric and label names, quoted and escaped
/// label values, a float value, every sample in a declared family, families
/// contiguous, no duplicate series.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    fn valid_name(n: &str) -> bool {
        let mut c = n.chars();
        matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
            && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
    }
    fn valid_label(n: &str) -> bool {
        let mut c = n.chars();
        matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
            && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
    }
    assert!(text.ends_with('\n'), "exposition must end with a newline");
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashMap<String, ()> = HashMap::new();
    let mut done: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let ln = ln + 1;
        assert!(!line.is_empty(), "line {ln}: empty line");
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kw = parts.next().unwrap();
            let name = parts
                .next()
                .unwrap_or_else(|| panic!("line {ln}: no metric name"));
            let arg = parts.next().unwrap_or_else(|| panic!("line {ln}: no text"));
            assert!(valid_name(name), "line {ln}: bad name {name}");
            assert!(
                !done.contains(&name.to_string()),
                "line {ln}: family {name} not contiguous"
            );
            match kw {
                "HELP" => assert!(
                    helps.insert(name.into(), ()).is_none(),
                    "line {ln}: second HELP"
                ),
                "TYPE" => {
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&arg),
                        "line {ln}: bad type {arg}"
                    );
                    assert!(
                        types.insert(name.into(), arg.into()).is_none(),
                        "line {ln}: second TYPE"
                    );
                    assert!(
                        !out.iter().any(|s: &Sample| s.name == name),
                        "line {ln}: TYPE after samples"
                    );
                }
                _ => panic!("line {ln}: unknown comment keyword {kw}"),
            }
            if current != name {
                if !current.is_empty() {
                    done.push(std::mem::take(&mut current));
                }
                current = name.to_string();
            }
            continue;
        }
        assert!(!line.starts_with('#'), "line {ln}: comment without a space");
        // name{labels} value
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("line {ln}: no value"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("line {ln}: bad value {v}")),
        };
        let (name, labels) = match series.find('{') {
            None => (series.to_string(), Vec::new()),
            Some(i) => {
                assert!(series.ends_with('}'), "line {ln}: unterminated labels");
                let name = series[..i].to_string();
                let body = &series[i + 1..series.len() - 1];
                let mut labels = Vec::new();
                let b = body.as_bytes();
                let mut p = 0;
                while p < b.len() {
                    let eq = body[p..]
                        .find('=')
                        .unwrap_or_else(|| panic!("line {ln}: label without ="))
                        + p;
                    let lname = &body[p..eq];
                    assert!(valid_label(lname), "line {ln}: bad label name {lname}");
                    assert_eq!(
                        b.get(eq + 1),
                        Some(&b'"'),
                        "line {ln}: label value not quoted"
                    );
                    let mut q = eq + 2;
                    let mut val = String::new();
                    loop {
                        match b.get(q) {
                            None => panic!("line {ln}: unterminated label value"),
                            Some(b'"') => break,
                            Some(b'\\') => {
                                match b.get(q + 1) {
                                    Some(b'\\') => val.push('\\'),
                                    Some(b'"') => val.push('"'),
                                    Some(b'n') => val.push('\n'),
                                    other => panic!("line {ln}: bad escape {other:?}"),
                                }
                                q += 2;
                            }
                            Some(_) => {
                                let ch = body[q..].chars().next().unwrap();
                                val.push(ch);
                                q += ch.len_utf8();
                            }
                        }
                    }
                    labels.push((lname.to_string(), val));
                    p = q + 1;
                    if p < b.len() {
                        assert_eq!(b[p], b',', "line {ln}: labels not comma separated");
                        p += 1;
                    }
                }
                (name, labels)
            }
        };
        assert!(valid_name(&name), "line {ln}: bad metric name {name}");
        assert_eq!(name, current, "line {ln}: sample {name} outside its family");
        assert!(types.contains_key(&name), "line {ln}: {name} has no TYPE");
        assert!(
            seen.insert(format!("{name}{labels:?}")),
            "line {ln}: duplicate series"
        );
        if types[&name] == "counter" {
            assert!(
                name.ends_with("_total"),
                "line {ln}: counter {name} without _total"
            );
            assert!(value >= 0.0, "line {ln}: negative counter");
        }
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

#[test]
fn natrix_only_metrics_in_prometheus_text_format() {
    with_timeout(LIMIT, || {
        let srv = start_conf(AUTH_CONF);
        let port = srv.monitor_port();
        // The server's own subscriptions (the system account's).
        let internal = u(&get_json(port, "/varz"), "subscriptions") as f64;
        let mut alice = login(&srv, "alice", "pa");
        let mut amy = login(&srv, "amy", "pm");
        let _bob = login(&srv, "bob", "pb");
        alice.send(b"SUB t 1\r\n");
        alice.sync();
        amy.sync();
        for _ in 0..3 {
            amy.send(b"PUB t 4\r\nabcd\r\n");
        }
        amy.sync();
        for _ in 0..3 {
            assert_eq!(alice.expect_line(), "MSG t 1 4");
            alice.read_exact_bytes(6);
        }
        let r = get(port, "/metrics");
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        let samples = parse_prometheus(&r.text());
        let one = |name: &str, labels: &[(&str, &str)]| -> f64 {
            let found: Vec<&Sample> = samples
                .iter()
                .filter(|s| {
                    s.name == name
                        && s.labels.len() == labels.len()
                        && labels
                            .iter()
                            .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
                })
                .collect();
            assert_eq!(found.len(), 1, "{name}{labels:?}");
            found[0].value
        };
        let v = get_json(port, "/varz");
        assert_eq!(one("natrix_in_msgs_total", &[]), 3.0);
        assert_eq!(one("natrix_out_msgs_total", &[]), 3.0);
        assert_eq!(one("natrix_in_bytes_total", &[]), 12.0);
        assert_eq!(one("natrix_out_bytes_total", &[]), 12.0);
        assert_eq!(one("natrix_connections", &[]), 3.0);
        assert_eq!(
            one("natrix_connections_total", &[]),
            u(&v, "total_connections") as f64
        );
        assert_eq!(one("natrix_subscriptions", &[]), internal + 1.0);
        assert_eq!(one("natrix_slow_consumers_total", &[]), 0.0);
        assert_eq!(one("natrix_shards", &[]), 3.0);
        // Per shard: the sums match the server totals.
        for (series, total) in [
            ("natrix_shard_in_msgs_total", 3.0),
            ("natrix_shard_out_msgs_total", 3.0),
            ("natrix_shard_connections", 3.0),
            ("natrix_shard_subscriptions", internal + 1.0),
        ] {
            let sum: f64 = samples
                .iter()
                .filter(|s| s.name == series)
                .map(|s| s.value)
                .sum();
            assert_eq!(sum, total, "{series}");
            assert_eq!(
                samples.iter().filter(|s| s.name == series).count(),
                3,
                "{series}"
            );
        }
        for shard in ["0", "1", "2"] {
            assert!(one("natrix_shard_cpu_seconds_total", &[("shard", shard)]) > 0.0);
            one("natrix_shard_stalled_seconds_total", &[("shard", shard)]);
            one("natrix_shard_mesh_sent_total", &[("shard", shard)]);
            one("natrix_shard_mesh_received_total", &[("shard", shard)]);
        }
        // Per account.
        assert_eq!(one("natrix_account_connections", &[("account", "A")]), 2.0);
        assert_eq!(one("natrix_account_connections", &[("account", "B")]), 1.0);
        assert_eq!(
            one("natrix_account_in_msgs_total", &[("account", "A")]),
            3.0
        );
        assert_eq!(
            one("natrix_account_out_bytes_total", &[("account", "A")]),
            12.0
        );
        // Alice's, and the system services every account imports.
        assert_eq!(
            one("natrix_account_subscriptions", &[("account", "A")]),
            1.0 + natrix::system::SYSTEM_IMPORTS.len() as f64
        );
        assert_eq!(
            one("natrix_account_in_msgs_total", &[("account", "B")]),
            0.0
        );
    });
}

#[test]
fn natrix_only_prometheus_parser_rejects_malformed_text() {
    for bad in [
        "x 1\n",                                 // no TYPE
        "# TYPE x gauge\nx{a=b} 1\n",            // unquoted label
        "# TYPE x gauge\nx one\n",               // bad value
        "# TYPE x counter\nx 1\n",               // counter without _total
        "# TYPE x gauge\nx 1\nx 2\n",            // duplicate series
        "# TYPE x gauge\n# TYPE y gauge\nx 1\n", // sample outside its family
        "# TYPE x gauge\nx{a=\"\\q\"} 1\n",      // bad escape
        "# TYPE x gauge\nx 1",                   // no final newline
    ] {
        let r = std::panic::catch_unwind(|| parse_prometheus(bad));
        assert!(r.is_err(), "accepted: {bad:?}");
    }
    let ok = parse_prometheus(
        "# HELP x_total h\n# TYPE x_total counter\nx_total{a=\"q\\\"\\\\\\n\",b=\"\"} 2.5\n",
    );
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].labels[0].1, "q\"\\\n");
    assert_eq!(ok[0].value, 2.5);
}

#[test]
fn natrix_only_https_port_without_tls_is_refused_naming_file_line_and_key() {
    let out = common::run_to_exit(
        "server.conf",
        "port: -1\nhttps_port: 8443\n",
        &[],
        &[],
        Duration::from_secs(10),
    );
    assert!(!out.success(), "started without TLS: {}", out.output);
    let path = out.conf_path.display().to_string();
    assert!(
        out.output.contains(&format!("{path}:2:")) && out.output.contains("https_port"),
        "error should name file, line and key: {}",
        out.output
    );
    // The flags can supply the TLS the file lacks; -m alone needs none.
    let out = common::run_to_exit(
        "server.conf",
        "port: -1\n",
        &[],
        &["-ms", "-1", "-t"],
        Duration::from_secs(10),
    );
    assert!(
        !out.success() && out.output.contains("https_port"),
        "{}",
        out.output
    );
}

// ---- Operator mode: JWT users and accounts in /connz and /accountz ----

/// Connects with `token`, signing the nonce as `user`, under client name
/// `name`; must be accepted.
fn jwt_login(port: u16, token: &str, user: &nkeys::KeyPair, name: &str) -> Raw {
    let (r, line) =
        jwt::connect_jwt_with(port, token, Some(user), serde_json::json!({"name": name}));
    assert_eq!(line, "PONG", "login refused");
    r
}

fn by_name<'a>(v: &'a Value, name: &str) -> &'a Value {
    conns(v)
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {v}"))
}

#[test]
fn connz_jwt_users_show_key_account_jwt_issuer_name_and_tags_with_auth() {
    with_timeout(LIMIT, || {
        use nkeys::KeyPair;
        use serde_json::json;
        let setup = jwt::Setup::new();
        let acc = KeyPair::new_account();
        let sk = KeyPair::new_account();
        let acc_jwt = jwt::account_jwt_with(
            &setup.op,
            &acc,
            json!({"signing_keys": [sk.public_key()]}),
            jwt::named("ACC"),
        );
        let srv = start_conf(&setup.config(&[(&acc, &acc_jwt)], ""));
        let port = srv.monitor_port();
        // One user issued by the account itself, with tags; one by a
        // signing key of the account.
        let u1 = KeyPair::new_user();
        let j1 = jwt::user_jwt_with(
            &acc,
            &u1,
            json!({"tags": ["red", "blue"]}),
            jwt::named("alice"),
        );
        let _c1 = jwt_login(srv.port(), &j1, &u1, "one");
        let u2 = KeyPair::new_user();
        let j2 = jwt::user_jwt_with(
            &sk,
            &u2,
            json!({"issuer_account": acc.public_key()}),
            jwt::named("bob"),
        );
        let mut c2 = jwt_login(srv.port(), &j2, &u2, "two");

        // Without auth none of it shows.
        let v = get_json(port, "/connz");
        for c in conns(&v) {
            for k in [
                "authorized_user",
                "account",
                "jwt",
                "issuer_key",
                "name_tag",
                "tags",
            ] {
                assert!(c.get(k).is_none(), "{k} without auth: {c}");
            }
        }
        let v = get_json(port, "/connz?auth=1");
        let one = by_name(&v, "one");
        assert_eq!(s(one, "authorized_user"), u1.public_key());
        assert_eq!(s(one, "account"), acc.public_key());
        assert_eq!(s(one, "jwt"), j1);
        assert_eq!(s(one, "issuer_key"), acc.public_key());
        assert_eq!(s(one, "name_tag"), "alice");
        assert_eq!(one["tags"], json!(["red", "blue"]));
        let two = by_name(&v, "two");
        assert_eq!(s(two, "authorized_user"), u2.public_key());
        assert_eq!(s(two, "account"), acc.public_key());
        assert_eq!(s(two, "jwt"), j2);
        assert_eq!(s(two, "issuer_key"), sk.public_key());
        assert_eq!(s(two, "name_tag"), "bob");
        assert!(two.get("tags").is_none(), "no tags: {two}");

        // The account filter takes the account's public key; the user
        // filter matches CONNECT's user name only, which JWT users lack.
        let v = get_json(port, &format!("/connz?auth=1&acc={}", acc.public_key()));
        assert_eq!(u(&v, "total"), 2);
        let v = get_json(port, &format!("/connz?auth=1&user={}", u1.public_key()));
        assert_eq!(u(&v, "total"), 2);
        assert_eq!(conns(&v).len(), 0, "{v}");
        // The reference means filters to need auth but checks before it
        // reads them: they work without.
        let v = get_json(port, &format!("/connz?acc={}", acc.public_key()));
        assert_eq!(conns(&v).len(), 2, "{v}");
        assert!(conns(&v).iter().all(|c| c.get("account").is_none()));
        // An unknown account: answered early, without server id or list.
        let v = get_json(port, "/connz?acc=nope");
        assert_eq!(v["server_id"], "");
        assert_eq!(u(&v, "total"), 0);
        assert!(v["connections"].is_null(), "{v}");

        // A closed connection keeps its JWT details, shown even without
        // auth; its user is CONNECT's user name, so none here.
        c2.send(b"garbage\r\n");
        c2.read_until_closed(Duration::from_secs(5));
        // The reference records it a moment after the socket closes.
        assert!(common::wait_until(Duration::from_secs(5), || {
            u(&get_json(port, "/connz?state=closed"), "total") >= 1
        }));
        let v = get_json(port, "/connz?state=closed");
        let two = by_name(&v, "two");
        assert_eq!(s(two, "jwt"), j2);
        assert_eq!(s(two, "issuer_key"), sk.public_key());
        assert_eq!(s(two, "name_tag"), "bob");
        assert!(two.get("authorized_user").is_none() && two.get("account").is_none());
        let v = get_json(port, "/connz?state=closed&auth=1");
        let two = by_name(&v, "two");
        assert!(two.get("authorized_user").is_none(), "{two}");
        assert_eq!(s(two, "account"), acc.public_key());
    });
}

#[test]
fn connz_closed_connection_user_is_the_connect_user_name() {
    with_timeout(LIMIT, || {
        let srv = start_conf(AUTH_CONF);
        let port = srv.monitor_port();
        let mut amy = login(&srv, "amy", "pm");
        amy.send(b"garbage\r\n");
        amy.read_until_closed(Duration::from_secs(5));
        assert!(common::wait_until(Duration::from_secs(5), || {
            u(&get_json(port, "/connz?state=closed"), "total") >= 1
        }));
        let v = get_json(port, "/connz?state=closed&auth=1&user=amy");
        assert_eq!(conns(&v).len(), 1, "{v}");
        assert_eq!(s(&conns(&v)[0], "authorized_user"), "amy");
        assert_eq!(s(&conns(&v)[0], "account"), "A");
        let v = get_json(port, "/connz?state=closed");
        assert!(conns(&v)[0].get("authorized_user").is_none());
    });
}

/// An export or import list as sorted (field, value) strings, without the
/// imports every account gets from the system account (see
/// `accountz_shows_the_system_accounts_imports_and_exports`).
fn entries(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or(&[])
        .iter()
        .filter(|e| e["account"] != "$SYS")
        .map(|e| e.to_string())
        .collect();
    out.sort();
    out
}

/// Every account imports the system account's per-account CONNZ and STATZ
/// services under the `PING` subjects, and the system account exports
/// them; `/accountz` shows both, as the reference does. An account that
/// imports one of those subjects itself keeps its own.
#[test]
fn accountz_shows_the_system_accounts_imports_and_exports() {
    with_timeout(LIMIT, || {
        let srv = start_conf(
            r#"
accounts {
  SYS { users = [ {user: s, password: s} ] }
  A { users = [ {user: a, password: a} ] }
  B { users = [ {user: b, password: b} ],
      exports = [ {service: "b.connz"} ] }
  C { users = [ {user: c, password: c} ],
      imports = [ {service: {account: B, subject: "b.connz"}, to: "$SYS.REQ.ACCOUNT.PING.CONNZ"} ] }
}
system_account: SYS
"#,
        );
        let port = srv.monitor_port();
        let system = |v: &Value| -> Vec<String> {
            let mut out: Vec<String> = v
                .as_array()
                .map(|a| a.as_slice())
                .unwrap_or(&[])
                .iter()
                .filter(|e| e["subject"].as_str().unwrap_or("").starts_with("$SYS."))
                .map(|e| e.to_string())
                .collect();
            out.sort();
            out
        };
        let a = &get_json(port, "/accountz?acc=A")["account_detail"];
        assert_eq!(
            system(&a["imports"]),
            [
                r#"{"account":"SYS","invalid":false,"share":false,"subject":"$SYS.REQ.ACCOUNT.PING.CONNZ","to":"$SYS.REQ.ACCOUNT.A.CONNZ","tracking":false,"type":"service"}"#,
                r#"{"account":"SYS","invalid":false,"share":false,"subject":"$SYS.REQ.ACCOUNT.PING.STATZ","to":"$SYS.REQ.ACCOUNT.A.STATZ","tracking":false,"type":"service"}"#,
                r#"{"account":"SYS","invalid":false,"share":false,"subject":"$SYS.REQ.SERVER.PING.CONNZ","to":"$SYS.REQ.ACCOUNT.A.CONNZ","tracking":false,"type":"service"}"#,
            ]
        );
        // C's own import of the PING subject stays; the other two are added.
        let c = &get_json(port, "/accountz?acc=C")["account_detail"];
        assert_eq!(
            system(&c["imports"]),
            [
                r#"{"account":"B","invalid":false,"share":false,"subject":"$SYS.REQ.ACCOUNT.PING.CONNZ","to":"b.connz","tracking":false,"type":"service"}"#,
                r#"{"account":"SYS","invalid":false,"share":false,"subject":"$SYS.REQ.ACCOUNT.PING.STATZ","to":"$SYS.REQ.ACCOUNT.C.STATZ","tracking":false,"type":"service"}"#,
                r#"{"account":"SYS","invalid":false,"share":false,"subject":"$SYS.REQ.SERVER.PING.CONNZ","to":"$SYS.REQ.ACCOUNT.C.CONNZ","tracking":false,"type":"service"}"#,
            ]
        );
        let sys = &get_json(port, "/accountz?acc=SYS")["account_detail"];
        assert_eq!(sys["is_system"], true);
        assert!(sys.get("imports").is_none(), "{sys}");
        let exports = system(&sys["exports"]);
        for want in [
            r#"{"response_type":"Streamed","subject":"$SYS.REQ.ACCOUNT.*.CONNZ","type":"service"}"#,
            r#"{"response_type":"Streamed","subject":"$SYS.REQ.ACCOUNT.*.STATZ","type":"service"}"#,
        ] {
            assert!(
                exports.iter().any(|e| e == want),
                "{want} not in {exports:?}"
            );
        }
    });
}

#[test]
fn accountz_detail_lists_config_exports_and_imports() {
    with_timeout(LIMIT, || {
        let srv = start_conf(
            r#"
accounts {
  A { users = [ {user: a, password: a} ]
      exports = [ {stream: "s.>"}, {service: "svc.a", response_type: stream},
                  {stream: "priv.>", accounts: [B]} ] }
  B { users = [ {user: b, password: b} ]
      imports = [ {stream: {account: A, subject: "s.>"}, prefix: "fromA"},
                  {service: {account: A, subject: "svc.a"}, to: "a.svc"},
                  {stream: {account: A, subject: "priv.>"}} ] }
  C { users = [ {user: c, password: c} ] }
}
"#,
        );
        let port = srv.monitor_port();
        let a = &get_json(port, "/accountz?acc=A")["account_detail"];
        assert_eq!(
            entries(&a["exports"]),
            [
                r#"{"approved_accounts":["B"],"subject":"priv.>","type":"stream"}"#,
                r#"{"response_type":"Streamed","subject":"svc.a","type":"service"}"#,
                r#"{"subject":"s.>","type":"stream"}"#,
            ]
        );
        assert!(entries(&a["imports"]).is_empty());
        for k in ["jwt", "issuer_key", "name_tag", "tags", "decoded_jwt"] {
            assert!(a.get(k).is_none(), "{k} for a config account: {a}");
        }
        let b = &get_json(port, "/accountz?acc=B")["account_detail"];
        assert!(b.get("exports").is_none(), "{b}");
        assert_eq!(
            entries(&b["imports"]),
            [
                r#"{"account":"A","invalid":false,"local_subject":"fromA.s.>","share":false,"subject":"s.>","tracking":false,"type":"stream"}"#,
                r#"{"account":"A","invalid":false,"local_subject":"priv.>","share":false,"subject":"priv.>","tracking":false,"type":"stream"}"#,
                r#"{"account":"A","invalid":false,"share":false,"subject":"a.svc","to":"svc.a","tracking":false,"type":"service"}"#,
            ]
        );
        let c = &get_json(port, "/accountz?acc=C")["account_detail"];
        assert!(c.get("exports").is_none() && entries(&c["imports"]).is_empty());
    });
}

#[test]
fn accountz_detail_of_a_jwt_account() {
    with_timeout(LIMIT, || {
        use nkeys::KeyPair;
        use serde_json::json;
        let setup = jwt::Setup::new();
        let a = KeyPair::new_account();
        let b = KeyPair::new_account();
        let ja = jwt::account_jwt_with(
            &setup.op,
            &a,
            json!({"tags": ["prod", "eu"], "exports": [
                {"name": "events", "subject": "s.>", "type": "stream"},
                {"name": "svc", "subject": "svc", "type": "service"},
            ]}),
            jwt::named("ACCA"),
        );
        let jb = jwt::account_jwt_with(
            &setup.op,
            &b,
            json!({"imports": [
                {"name": "events", "subject": "s.>", "account": a.public_key(), "type": "stream"},
                {"name": "svc", "subject": "svc", "account": a.public_key(), "type": "service"},
            ]}),
            jwt::named("ACCB"),
        );
        let srv = start_conf(&setup.config(&[(&a, &ja), (&b, &jb)], ""));
        let port = srv.monitor_port();
        let ua = KeyPair::new_user();
        let _ca = jwt_login(
            srv.port(),
            &jwt::user_jwt_with(&a, &ua, json!({}), jwt::named("ua")),
            &ua,
            "ca",
        );
        let ub = KeyPair::new_user();
        let _cb = jwt_login(
            srv.port(),
            &jwt::user_jwt_with(&b, &ub, json!({}), jwt::named("ub")),
            &ub,
            "cb",
        );

        let d = &get_json(port, &format!("/accountz?acc={}", a.public_key()))["account_detail"];
        assert_eq!(s(d, "account_name"), a.public_key());
        assert_eq!(s(d, "jwt"), ja);
        assert_eq!(s(d, "issuer_key"), setup.op.public_key());
        assert_eq!(s(d, "name_tag"), "ACCA");
        assert_eq!(d["tags"], json!(["prod", "eu"]));
        assert_eq!(d["expired"], false);
        assert_eq!(d["complete"], true);
        assert_eq!(u(d, "client_connections"), 1);
        assert_eq!(d["decoded_jwt"]["sub"], a.public_key());
        assert_eq!(d["decoded_jwt"]["name"], "ACCA");
        assert_eq!(d["decoded_jwt"]["iss"], setup.op.public_key());
        assert_eq!(
            entries(&d["exports"]),
            [
                r#"{"response_type":"Singleton","subject":"svc","type":"service"}"#,
                r#"{"subject":"s.>","type":"stream"}"#,
            ]
        );
        let d = &get_json(port, &format!("/accountz?acc={}", b.public_key()))["account_detail"];
        assert_eq!(s(d, "name_tag"), "ACCB");
        assert!(d.get("tags").is_none() && d.get("exports").is_none(), "{d}");
        let ak = a.public_key();
        assert_eq!(
            entries(&d["imports"]),
            [
                format!(
                    r#"{{"account":"{ak}","invalid":false,"local_subject":"s.>","share":false,"subject":"s.>","tracking":false,"type":"stream"}}"#
                ),
                format!(
                    r#"{{"account":"{ak}","invalid":false,"share":false,"subject":"svc","to":"svc","tracking":false,"type":"service"}}"#
                ),
            ]
        );
    });
}

#[test]
fn accountz_detail_of_a_jwt_account_from_a_directory_resolver() {
    with_timeout(LIMIT, || {
        use nkeys::KeyPair;
        use serde_json::json;
        let setup = jwt::Setup::new();
        let a = KeyPair::new_account();
        let ja = jwt::account_jwt_with(&setup.op, &a, json!({"tags": ["x"]}), jwt::named("DIRACC"));
        let dir = common::TempDir::new("accountz-dir");
        std::fs::write(dir.path().join(format!("{}.jwt", a.public_key())), &ja).unwrap();
        let srv = start_conf(&format!(
            "operator: {}\nsystem_account: {}\nresolver {{ type: full, dir: \"{}\" }}\n",
            setup.op_jwt,
            KeyPair::new_account().public_key(),
            dir.path().display()
        ));
        let ua = KeyPair::new_user();
        let _ca = jwt_login(
            srv.port(),
            &jwt::user_jwt_with(&a, &ua, json!({}), jwt::named("ua")),
            &ua,
            "ca",
        );
        let d = &get_json(
            srv.monitor_port(),
            &format!("/accountz?acc={}", a.public_key()),
        )["account_detail"];
        assert_eq!(s(d, "jwt"), ja);
        assert_eq!(s(d, "issuer_key"), setup.op.public_key());
        assert_eq!(s(d, "name_tag"), "DIRACC");
        assert_eq!(d["tags"], json!(["x"]));
        assert_eq!(d["decoded_jwt"]["sub"], a.public_key());
    });
}

/// The `client_id` of a new raw connection's INFO.
fn first_client_id(port: u16) -> u64 {
    let mut r = Raw::connect_no_info(port);
    let line = r.expect_line();
    let info: Value = serde_json::from_str(line.trim_start_matches("INFO ").trim_end())
        .unwrap_or_else(|e| panic!("INFO {line}: {e}"));
    u(&info, "client_id")
}

/// The server's own subscriptions are listed as the reference lists them:
/// the system account's under the system client (cid 1), each account's
/// system imports under an internal client of its own, all with ids taken
/// before the first client's.
#[test]
fn subsz_lists_the_servers_own_subscriptions_under_internal_clients() {
    with_timeout(LIMIT, || {
        // The system client, $G, A, B and $SYS each take an id first.
        let srv = start_conf(
            "accounts { A { users [{user: a, password: a}] }, B { users [{user: b, password: b}] } }\n\
             no_auth_user: a\n",
        );
        let port = srv.monitor_port();
        assert_eq!(first_client_id(srv.port()), 6);

        let listed = |acc: &str| -> Vec<Value> {
            let v = get_json(port, &format!("/subsz?subs=1&acc={acc}"));
            assert_eq!(u(&v, "total"), u(&v, "num_subscriptions"), "{v}");
            v["subscriptions_list"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        };
        let mut import_cids = Vec::new();
        for acc in ["A", "B", "$G"] {
            let list = listed(acc);
            let mut subjects: Vec<&str> = list.iter().map(|d| s(d, "subject")).collect();
            subjects.sort();
            assert_eq!(
                subjects,
                [
                    "$SYS.REQ.ACCOUNT.PING.CONNZ",
                    "$SYS.REQ.ACCOUNT.PING.STATZ",
                    "$SYS.REQ.SERVER.PING.CONNZ"
                ],
                "{acc}"
            );
            let cid = u(&list[0], "cid");
            assert!(list.iter().all(|d| u(d, "cid") == cid), "{acc}: {list:?}");
            assert!((2..6).contains(&cid), "{acc}: cid {cid}");
            import_cids.push(cid);
        }
        import_cids.sort();
        import_cids.dedup();
        assert_eq!(import_cids.len(), 3, "one internal client per account");

        let sys = listed("$SYS");
        assert!(!sys.is_empty());
        assert!(sys.iter().all(|d| u(d, "cid") == 1), "{sys:?}");
        assert!(sys
            .iter()
            .any(|d| s(d, "subject") == "$SYS.REQ.SERVER.PING"));

        // A request through A's import counts on A's subscription.
        let mut a = Raw::connect_ok(srv.port());
        a.send(b"SUB r 1\r\nPUB $SYS.REQ.SERVER.PING.CONNZ r 0\r\n\r\n");
        let msg = a.expect_line();
        assert!(msg.starts_with("MSG r 1 "), "{msg}");
        let list = listed("A");
        let d = list
            .iter()
            .find(|d| s(d, "subject") == "$SYS.REQ.SERVER.PING.CONNZ")
            .unwrap();
        assert_eq!(u(d, "msgs"), 1, "{d}");
    });
}

/// Without a system account there are no internal clients: the first
/// client is 1.
#[test]
fn first_client_id_follows_the_internal_clients() {
    with_timeout(LIMIT, || {
        let srv = start(&[]);
        assert_eq!(first_client_id(srv.port()), 4);
        let srv = start_conf("no_sys_acc: true\n");
        assert_eq!(first_client_id(srv.port()), 1);
    });
}
