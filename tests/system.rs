//! The system account as a client of it sees it: events (CONNECT,
//! DISCONNECT, AUTH.ERR, STATSZ, SERVER.CONNS, SHUTDOWN), the server's
//! answers to `$SYS.REQ.…` requests, and account claims pushed, looked up,
//! listed, packed and deleted over `$SYS` with a full directory resolver.
//! Every test runs against natrix and the reference
//! (`NATRIX_TEST_BIN=/usr/sbin/nats-server`) unless named `natrix_only`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::jwt::{account_jwt, connect_jwt, mint, operator_jwt, user_jwt};
use common::{with_timeout, Raw, Server, TempDir};
use nkeys::KeyPair;
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(60);

const CONFIG: &str = "accounts {\n  SYS { users: [ {user: sys, password: sys} ] }\n  A { users: [ {user: a, password: a} ] }\n}\nsystem_account: SYS\n";

/// Connects with a user name and password and waits for the PONG.
fn login(port: u16, user: &str) -> Raw {
    let mut r = Raw::connect(port);
    r.send(
        format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"headers\":true,\"protocol\":1,\"user\":\"{user}\",\"pass\":\"{user}\"}}\r\n"
        )
        .as_bytes(),
    );
    r.sync();
    r
}

/// The next message's subject and JSON payload, skipping other lines
/// (server PINGs are answered), within `limit`.
fn next_msg(r: &mut Raw, limit: Duration) -> Option<(String, Vec<u8>)> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = r.line_within(left)?;
        if let Some(rest) = line.strip_prefix("MSG ") {
            let parts: Vec<&str> = rest.split(' ').filter(|p| !p.is_empty()).collect();
            let len: usize = parts.last().unwrap().parse().unwrap();
            let body = r.read_exact_bytes(len + 2);
            return Some((parts[0].to_string(), body[..len].to_vec()));
        }
    }
}

/// The next message on `subject` (others are skipped), as JSON.
fn msg_on(r: &mut Raw, subject: &str, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (s, body) = next_msg(r, left).unwrap_or_else(|| panic!("no message on {subject}"));
        if s == subject {
            return serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("{subject}: {e}: {}", String::from_utf8_lossy(&body)));
        }
    }
}

/// Sends a request on `subject` with `body` and returns the reply's body.
fn request(r: &mut Raw, subject: &str, body: &[u8]) -> Vec<u8> {
    r.send(format!("PUB {subject} _INBOX.sys {}\r\n", body.len()).as_bytes());
    r.send(body);
    r.send(b"\r\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (s, body) = next_msg(r, left).unwrap_or_else(|| panic!("no reply to {subject}"));
        if s == "_INBOX.sys" {
            return body;
        }
    }
}

fn json_request(r: &mut Raw, subject: &str, body: &[u8]) -> Value {
    let b = request(r, subject, body);
    serde_json::from_slice(&b)
        .unwrap_or_else(|e| panic!("{subject}: {e}: {}", String::from_utf8_lossy(&b)))
}

/// A system account client subscribed to `subjects` and to the inbox.
fn sys_client(port: u16, subjects: &[&str]) -> Raw {
    let mut r = login(port, "sys");
    for (i, s) in subjects.iter().enumerate() {
        r.send(format!("SUB {s} {}\r\n", i + 10).as_bytes());
    }
    r.send(b"SUB _INBOX.sys 1\r\n");
    r.sync();
    r
}

#[test]
fn connect_and_disconnect_events_describe_the_client() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(CONFIG, &[]);
        let mut sys = sys_client(srv.port(), &["$SYS.ACCOUNT.A.*"]);
        let id = sys.info["server_id"].as_str().unwrap().to_string();

        let mut a = Raw::connect(srv.port());
        a.send(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"user\":\"a\",\"pass\":\"a\",\"name\":\"probe\",\"lang\":\"rust\",\"version\":\"9.9\"}\r\n");
        a.send(b"PUB x 2\r\nhi\r\nPUB y 3\r\nabc\r\n");
        a.sync();
        let c = msg_on(&mut sys, "$SYS.ACCOUNT.A.CONNECT", Duration::from_secs(5));
        assert_eq!(c["type"], "io.nats.server.advisory.v1.client_connect");
        assert_eq!(c["server"]["id"], id.as_str());
        assert_eq!(c["server"]["ver"], "2.9.10");
        assert!(c["server"]["seq"].as_u64().unwrap() > 0);
        assert_eq!(c["client"]["acc"], "A");
        assert_eq!(c["client"]["user"], "a");
        assert_eq!(c["client"]["name"], "probe");
        assert_eq!(c["client"]["lang"], "rust");
        assert_eq!(c["client"]["ver"], "9.9");
        assert_eq!(c["client"]["host"], "127.0.0.1");
        assert_eq!(c["client"]["kind"], "Client");
        assert_eq!(c["client"]["client_type"], "nats");
        assert!(c["client"]["id"].as_u64().unwrap() > 0);
        assert!(c["client"].get("stop").is_none());
        assert_eq!(c["id"].as_str().unwrap().len(), 22);

        drop(a);
        let d = msg_on(
            &mut sys,
            "$SYS.ACCOUNT.A.DISCONNECT",
            Duration::from_secs(5),
        );
        assert_eq!(d["type"], "io.nats.server.advisory.v1.client_disconnect");
        assert_eq!(d["client"]["id"], c["client"]["id"]);
        assert!(d["client"]["stop"].is_string());
        assert_eq!(d["reason"], "Client Closed");
        // What the client sent is what the server received from it.
        assert_eq!(d["sent"]["msgs"], 2);
        assert_eq!(d["sent"]["bytes"], 5);
        assert_eq!(d["received"]["msgs"], 0);
        assert!(d["server"]["seq"].as_u64() > c["server"]["seq"].as_u64());
    });
}

#[test]
fn refused_clients_raise_an_auth_error_event() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(CONFIG, &[]);
        let mut sys = sys_client(srv.port(), &["$SYS.SERVER.*.CLIENT.AUTH.ERR"]);
        let id = sys.info["server_id"].as_str().unwrap().to_string();
        let mut bad = Raw::connect(srv.port());
        bad.send(b"CONNECT {\"verbose\":false,\"user\":\"a\",\"pass\":\"wrong\"}\r\n");
        assert_eq!(bad.next_line(), "-ERR 'Authorization Violation'");
        let e = msg_on(
            &mut sys,
            &format!("$SYS.SERVER.{id}.CLIENT.AUTH.ERR"),
            Duration::from_secs(5),
        );
        assert_eq!(e["type"], "io.nats.server.advisory.v1.client_disconnect");
        assert_eq!(e["reason"], "Authentication Failure");
        assert_eq!(e["client"]["acc"], "$G");
        assert_eq!(e["client"]["user"], "a");
        assert_eq!(e["client"]["host"], "127.0.0.1");
    });
}

#[test]
fn statsz_answers_pings_and_goes_out_on_its_own() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(CONFIG, &[]);
        let mut sys = sys_client(srv.port(), &["$SYS.SERVER.*.STATSZ"]);
        let id = sys.info["server_id"].as_str().unwrap().to_string();
        let _a = login(srv.port(), "a");
        for subject in [
            "$SYS.REQ.SERVER.PING".to_string(),
            "$SYS.REQ.SERVER.PING.STATSZ".to_string(),
            format!("$SYS.REQ.SERVER.{id}.STATSZ"),
        ] {
            let v = json_request(&mut sys, &subject, b"");
            assert_eq!(v["server"]["id"], id.as_str(), "{subject}");
            let st = &v["statsz"];
            assert_eq!(st["connections"], 2, "{subject}: {v}");
            assert!(st["total_connections"].as_u64().unwrap() >= 2, "{v}");
            assert!(st["mem"].as_u64().unwrap() > 0);
            assert!(st["cores"].as_u64().unwrap() > 0);
            assert!(st["subscriptions"].as_u64().unwrap() >= 2);
            assert!(st["start"].is_string());
            assert!(st["sent"]["msgs"].is_u64());
            assert!(st["received"]["bytes"].is_u64());
        }
        // A filter that names another server gets no answer.
        let filter = br#"{"server_name":"elsewhere"}"#;
        sys.send(format!("PUB $SYS.REQ.SERVER.PING _INBOX.sys {}\r\n", filter.len()).as_bytes());
        sys.send(filter);
        sys.send(b"\r\n");
        sys.sync();
        // The periodic one (first within a second of start, as the
        // reference's).
        let p = msg_on(
            &mut sys,
            &format!("$SYS.SERVER.{id}.STATSZ"),
            Duration::from_secs(10),
        );
        assert_eq!(p["server"]["id"], id.as_str());
        assert!(p["statsz"]["connections"].as_u64().unwrap() >= 1);
    });
}

#[test]
fn account_connection_counts_go_out_as_they_change() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(CONFIG, &[]);
        let mut sys = sys_client(srv.port(), &["$SYS.ACCOUNT.A.SERVER.CONNS"]);
        let a = login(srv.port(), "a");
        let up = msg_on(
            &mut sys,
            "$SYS.ACCOUNT.A.SERVER.CONNS",
            Duration::from_secs(5),
        );
        assert_eq!(up["type"], "io.nats.server.advisory.v1.account_connections");
        assert_eq!(up["acc"], "A");
        assert_eq!(up["conns"], 1);
        assert_eq!(up["total_conns"], 1);
        // The account's connection count on request.
        let v = json_request(&mut sys, "$SYS.REQ.ACCOUNT.A.CONNS", b"");
        assert_eq!(v["acc"], "A");
        assert_eq!(v["conns"], 1);
        drop(a);
        let down = msg_on(
            &mut sys,
            "$SYS.ACCOUNT.A.SERVER.CONNS",
            Duration::from_secs(5),
        );
        assert_eq!(down["conns"], 0);
    });
}

#[test]
fn shutdown_is_announced_to_the_system_account() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(CONFIG, &[]);
        let mut sys = sys_client(srv.port(), &["$SYS.SERVER.*.SHUTDOWN"]);
        let id = sys.info["server_id"].as_str().unwrap().to_string();
        srv.signal("TERM");
        let v = msg_on(
            &mut sys,
            &format!("$SYS.SERVER.{id}.SHUTDOWN"),
            Duration::from_secs(5),
        );
        assert_eq!(v["id"], id.as_str());
        assert_eq!(v["ver"], "2.9.10");
    });
}

#[test]
fn a_request_without_a_responder_in_the_system_account_gets_none() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(CONFIG, &[]);
        let mut sys = sys_client(srv.port(), &[]);
        // Not one of the server's subjects: no responders, as usual.
        sys.send(b"HPUB $SYS.REQ.SERVER.PING.NOPE _INBOX.sys 12 12\r\nNATS/1.0\r\n\r\n\r\n");
        sys.send(b"SUB _INBOX.none 99\r\nPING\r\n");
        assert_eq!(sys.next_line(), "PONG");
    });
}

// ---------------------------------------------------------------------
// Operator mode with a full directory resolver: claims over $SYS.

struct Operator {
    op: KeyPair,
    sys_acc: KeyPair,
    sys_user: KeyPair,
    jwts: TempDir,
}

impl Operator {
    fn new() -> Operator {
        let op = KeyPair::new_operator();
        let sys_acc = KeyPair::new_account();
        let jwts = TempDir::new("sysjwt");
        write_jwt(
            jwts.path(),
            &sys_acc,
            &account_jwt(&op, &sys_acc, json!({})),
        );
        Operator {
            op,
            sys_acc,
            sys_user: KeyPair::new_user(),
            jwts,
        }
    }

    fn config(&self, extra: &str) -> String {
        format!(
            "operator: {}\nsystem_account: {}\nresolver {{\n  type: full\n  dir: \"{}\"\n{extra}}}\n",
            operator_jwt(&self.op, json!({})),
            self.sys_acc.public_key(),
            self.jwts.path().display()
        )
    }

    /// A system account user, subscribed to the inbox.
    fn sys_client(&self, port: u16) -> Raw {
        let jwt = user_jwt(&self.sys_acc, &self.sys_user, json!({}));
        let (mut r, line) = connect_jwt(port, &jwt, Some(&self.sys_user));
        assert_eq!(line, "PONG");
        r.send(b"SUB _INBOX.sys 1\r\n");
        r.sync();
        r
    }
}

fn write_jwt(dir: &Path, acc: &KeyPair, jwt: &str) {
    std::fs::write(dir.join(format!("{}.jwt", acc.public_key())), jwt).unwrap();
}

fn connect_user(port: u16, acc: &KeyPair, user: &KeyPair) -> (Raw, String) {
    connect_jwt(port, &user_jwt(acc, user, json!({})), Some(user))
}

#[test]
fn pushed_accounts_are_stored_looked_up_and_listed() {
    with_timeout(LIMIT, || {
        let o = Operator::new();
        let srv = Server::with_config(&o.config(""), &[]);
        let mut sys = o.sys_client(srv.port());
        let acc = KeyPair::new_account();
        let user = KeyPair::new_user();
        // Unknown before the push.
        let (_r, line) = connect_user(srv.port(), &acc, &user);
        assert_eq!(line, "-ERR 'Authorization Violation'");

        let jwt = account_jwt(&o.op, &acc, json!({}));
        let v = json_request(&mut sys, "$SYS.REQ.CLAIMS.UPDATE", jwt.as_bytes());
        assert_eq!(v["data"]["code"], 200, "{v}");
        assert_eq!(v["data"]["account"], acc.public_key().as_str());
        assert_eq!(v["data"]["message"], "jwt updated");
        assert!(v["server"]["id"].is_string());
        // Stored in the reference's layout.
        let file = o.jwts.path().join(format!("{}.jwt", acc.public_key()));
        assert_eq!(std::fs::read_to_string(file).unwrap().trim(), jwt);

        let (_r, line) = connect_user(srv.port(), &acc, &user);
        assert_eq!(line, "PONG");

        let looked = request(
            &mut sys,
            &format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.LOOKUP", acc.public_key()),
            b"",
        );
        assert_eq!(String::from_utf8(looked).unwrap(), jwt);

        let list = json_request(&mut sys, "$SYS.REQ.CLAIMS.LIST", b"");
        let keys: Vec<&str> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert!(keys.contains(&acc.public_key().as_str()), "{list}");
        assert!(keys.contains(&o.sys_acc.public_key().as_str()), "{list}");

        // The account-named subject checks the key against the JWT.
        let other = KeyPair::new_account();
        let v = json_request(
            &mut sys,
            &format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", other.public_key()),
            jwt.as_bytes(),
        );
        assert_eq!(v["error"]["code"], 500, "{v}");
        assert!(
            v["error"]["description"]
                .as_str()
                .unwrap()
                .contains("subject does not match jwt content"),
            "{v}"
        );
    });
}

#[test]
fn a_pushed_revocation_disconnects_the_user() {
    with_timeout(LIMIT, || {
        let o = Operator::new();
        let acc = KeyPair::new_account();
        write_jwt(o.jwts.path(), &acc, &account_jwt(&o.op, &acc, json!({})));
        let srv = Server::with_config(&o.config(""), &[]);
        let mut sys = o.sys_client(srv.port());
        let user = KeyPair::new_user();
        let (mut r, line) = connect_user(srv.port(), &acc, &user);
        assert_eq!(line, "PONG");
        let keeper = KeyPair::new_user();
        let (mut k, line) = connect_user(srv.port(), &acc, &keeper);
        assert_eq!(line, "PONG");

        let revoked = account_jwt(
            &o.op,
            &acc,
            json!({"revocations": {user.public_key(): common::jwt::now() + 5}}),
        );
        let v = json_request(&mut sys, "$SYS.REQ.CLAIMS.UPDATE", revoked.as_bytes());
        assert_eq!(v["data"]["message"], "jwt updated", "{v}");
        let out =
            String::from_utf8_lossy(&r.read_until_closed(Duration::from_secs(5))).into_owned();
        assert!(
            out.contains("-ERR 'User Authentication Revoked'"),
            "{out:?}"
        );
        // Another user of the account stays.
        k.sync();
        // And the revoked user cannot come back.
        let (_r, line) = connect_user(srv.port(), &acc, &user);
        assert_eq!(line, "-ERR 'Authorization Violation'");
    });
}

#[test]
fn pack_sends_every_stored_account_then_an_empty_message() {
    with_timeout(LIMIT, || {
        let o = Operator::new();
        let acc = KeyPair::new_account();
        let jwt = account_jwt(&o.op, &acc, json!({}));
        write_jwt(o.jwts.path(), &acc, &jwt);
        let srv = Server::with_config(&o.config(""), &[]);
        let mut sys = o.sys_client(srv.port());
        sys.send(b"PUB $SYS.REQ.CLAIMS.PACK _INBOX.sys 0\r\n\r\n");
        let mut got = Vec::new();
        loop {
            let (s, body) = next_msg(&mut sys, Duration::from_secs(5)).expect("pack answer");
            assert_eq!(s, "_INBOX.sys");
            if body.is_empty() {
                break;
            }
            got.push(String::from_utf8(body).unwrap());
            assert!(got.len() <= 2, "{got:?}");
        }
        assert!(
            got.contains(&format!("{}|{jwt}", acc.public_key())),
            "{got:?}"
        );
        assert_eq!(got.len(), 2, "{got:?}");
    });
}

#[test]
fn operator_deletes_accounts_and_their_clients_go() {
    with_timeout(LIMIT, || {
        let o = Operator::new();
        let acc = KeyPair::new_account();
        write_jwt(o.jwts.path(), &acc, &account_jwt(&o.op, &acc, json!({})));
        let srv = Server::with_config(&o.config("  allow_delete: true\n"), &[]);
        let mut sys = o.sys_client(srv.port());
        let user = KeyPair::new_user();
        let (_r, line) = connect_user(srv.port(), &acc, &user);
        assert_eq!(line, "PONG");

        // Not signed by the operator: refused.
        let forged = mint(
            &acc,
            &acc.public_key(),
            "",
            json!({"accounts": [acc.public_key()]}),
            |_| {},
        );
        let v = json_request(&mut sys, "$SYS.REQ.CLAIMS.DELETE", forged.as_bytes());
        assert_eq!(v["error"]["code"], 500, "{v}");

        let del = mint(
            &o.op,
            &o.op.public_key(),
            "",
            json!({"accounts": [acc.public_key()]}),
            |_| {},
        );
        let v = json_request(&mut sys, "$SYS.REQ.CLAIMS.DELETE", del.as_bytes());
        assert_eq!(v["data"]["code"], 200, "{v}");
        assert_eq!(v["data"]["message"], "deleted 1 accounts");
        let list = json_request(&mut sys, "$SYS.REQ.CLAIMS.LIST", b"");
        assert!(
            !list["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k == acc.public_key().as_str()),
            "{list}"
        );
        let (_r, line) = connect_user(srv.port(), &acc, &KeyPair::new_user());
        assert_eq!(line, "-ERR 'Authorization Violation'");
    });
}

#[test]
fn natrix_only_untrusted_pushes_are_refused_and_never_stored() {
    with_timeout(LIMIT, || {
        let o = Operator::new();
        let srv = Server::with_config(&o.config(""), &[]);
        let mut sys = o.sys_client(srv.port());
        let acc = KeyPair::new_account();
        let stranger = KeyPair::new_operator();
        let jwt = account_jwt(&stranger, &acc, json!({}));
        let v = json_request(&mut sys, "$SYS.REQ.CLAIMS.UPDATE", jwt.as_bytes());
        assert_eq!(v["error"]["code"], 500, "{v}");
        let d = v["error"]["description"].as_str().unwrap();
        assert!(d.contains("not issued by a trusted operator"), "{d}");
        assert!(d.contains(&stranger.public_key()), "{d}");
        assert!(!o
            .jwts
            .path()
            .join(format!("{}.jwt", acc.public_key()))
            .exists());
    });
}

#[test]
fn a_pushed_limit_applies_to_connected_clients() {
    with_timeout(LIMIT, || {
        let o = Operator::new();
        let acc = KeyPair::new_account();
        write_jwt(o.jwts.path(), &acc, &account_jwt(&o.op, &acc, json!({})));
        let srv = Server::with_config(&o.config(""), &[]);
        let mut sys = o.sys_client(srv.port());
        let (mut r, line) = connect_user(srv.port(), &acc, &KeyPair::new_user());
        assert_eq!(line, "PONG");
        r.send(b"SUB a 1\r\nSUB b 2\r\n");
        r.sync();
        let tight = account_jwt(&o.op, &acc, json!({"limits": {"subs": 1}}));
        let v = json_request(&mut sys, "$SYS.REQ.CLAIMS.UPDATE", tight.as_bytes());
        assert_eq!(v["data"]["message"], "jwt updated", "{v}");
        let out =
            String::from_utf8_lossy(&r.read_until_closed(Duration::from_secs(5))).into_owned();
        assert!(
            out.contains("-ERR 'maximum subscriptions exceeded'"),
            "{out:?}"
        );
        // A new client of the account gets the new limit.
        let (mut n, line) = connect_user(srv.port(), &acc, &KeyPair::new_user());
        assert_eq!(line, "PONG");
        n.send(b"SUB a 1\r\nSUB b 2\r\n");
        assert_eq!(n.next_line(), "-ERR 'maximum subscriptions exceeded'");
    });
}

#[test]
fn natrix_only_application_traffic_in_the_system_account_is_warned_about() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(CONFIG, &[]);
        let mut sys = login(srv.port(), "sys");
        sys.send(b"PUB orders.new 2\r\nhi\r\n");
        sys.sync();
        assert!(
            srv.wait_for_log(
                "publishes application traffic (\"orders.new\") in the system account",
                Duration::from_secs(5)
            ),
            "{}",
            srv.log()
        );
    });
}

#[test]
fn a_pushed_import_routes_for_connected_clients() {
    with_timeout(LIMIT, || {
        let o = Operator::new();
        let exporter = KeyPair::new_account();
        let importer = KeyPair::new_account();
        let ex_jwt = account_jwt(
            &o.op,
            &exporter,
            json!({"exports": [{"name": "events", "subject": "events.>", "type": "stream"}]}),
        );
        write_jwt(o.jwts.path(), &exporter, &ex_jwt);
        write_jwt(
            o.jwts.path(),
            &importer,
            &account_jwt(&o.op, &importer, json!({})),
        );
        let srv = Server::with_config(&o.config(""), &[]);
        let mut sys = o.sys_client(srv.port());
        let (mut ex, line) = connect_user(srv.port(), &exporter, &KeyPair::new_user());
        assert_eq!(line, "PONG");
        let (mut im, line) = connect_user(srv.port(), &importer, &KeyPair::new_user());
        assert_eq!(line, "PONG");
        im.send(b"SUB ext.events.> 1\r\n");
        im.sync();
        ex.send(b"PUB events.a 1\r\na\r\n");
        ex.sync();
        im.expect_nothing(200);

        let with_import = account_jwt(
            &o.op,
            &importer,
            json!({"imports": [{"name": "events", "subject": "events.>",
                "account": exporter.public_key(), "type": "stream",
                "local_subject": "ext.events.>"}]}),
        );
        let v = json_request(&mut sys, "$SYS.REQ.CLAIMS.UPDATE", with_import.as_bytes());
        assert_eq!(v["data"]["message"], "jwt updated", "{v}");
        ex.send(b"PUB events.b 1\r\nb\r\n");
        ex.sync();
        assert_eq!(im.next_line(), "MSG ext.events.b 1 1");
        assert_eq!(im.next_line(), "b");
    });
}

#[test]
fn monitoring_requests_answer_with_the_endpoints_data() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(CONFIG, &[]);
        let mut sys = sys_client(srv.port(), &[]);
        let id = sys.info["server_id"].as_str().unwrap().to_string();
        let mut a = login(srv.port(), "a");
        a.send(b"SUB orders.* 1\r\n");
        a.sync();

        let v = json_request(&mut sys, "$SYS.REQ.SERVER.PING.VARZ", b"");
        assert_eq!(v["server"]["id"], id.as_str());
        assert_eq!(v["data"]["server_id"], id.as_str());
        assert_eq!(v["data"]["connections"], 2);

        let v = json_request(&mut sys, &format!("$SYS.REQ.SERVER.{id}.HEALTHZ"), b"");
        assert_eq!(v["data"]["status"], "ok", "{v}");

        let v = json_request(
            &mut sys,
            "$SYS.REQ.SERVER.PING.CONNZ",
            br#"{"sort":"cid","limit":1,"subscriptions":true}"#,
        );
        assert_eq!(v["data"]["num_connections"], 1, "{v}");
        assert_eq!(v["data"]["total"], 2, "{v}");
        assert_eq!(v["data"]["limit"], 1);

        // One account's connections and subscriptions.
        let v = json_request(&mut sys, "$SYS.REQ.ACCOUNT.A.CONNZ", b"");
        // Only account A's client (the system client is not listed).
        assert_eq!(v["data"]["num_connections"], 1, "{v}");
        assert_eq!(v["data"]["connections"][0]["subscriptions"], 1, "{v}");
        let v = json_request(&mut sys, "$SYS.REQ.ACCOUNT.A.SUBSZ", b"");
        let subs = v["data"]["subscriptions_list"].as_array().expect("list");
        assert!(subs.iter().any(|s| s["subject"] == "orders.*"), "{v}");

        // Options that do not decode: the reference's 400.
        let v = json_request(&mut sys, "$SYS.REQ.SERVER.PING.CONNZ", br#"{"limit":"x"}"#);
        assert_eq!(v["error"]["code"], 400, "{v}");
        assert!(v.get("data").is_none());
        // The endpoint's own failure: a 500, and data present but null.
        let v = json_request(&mut sys, "$SYS.REQ.ACCOUNT.A.JSZ", b"");
        assert_eq!(v["error"]["code"], 500, "{v}");
        assert_eq!(v["error"]["description"], "jetstream not enabled", "{v}");
        assert_eq!(v.get("data"), Some(&Value::Null), "{v}");
    });
}

/// An account that imports a service to one of those PING subjects itself
/// keeps it: only that service answers there, not the server too.
/// User `importer`'s account imports the service `<exporter>.connz` of user
/// `exporter`'s account to `$SYS.REQ.ACCOUNT.PING.CONNZ`: a request there reaches the
/// exporter's service (which does not answer), and neither it nor the server replies.
/// Returns both clients, still connected.
fn only_own_import_answers(port: u16, exporter: &str, importer: &str) -> (Raw, Raw) {
    let mut ex = login(port, exporter);
    ex.send(format!("SUB {exporter}.connz 1\r\n").as_bytes());
    ex.sync();
    let mut im = login(port, importer);
    im.send(b"SUB _INBOX.sys 1\r\n");
    im.sync();
    im.send(b"PUB $SYS.REQ.ACCOUNT.PING.CONNZ _INBOX.sys 2\r\n{}\r\n");
    // (With the requester's Nats-Request-Info header.)
    let line = ex
        .line_within(Duration::from_secs(5))
        .expect("the exporter's service gets it");
    assert!(
        line.starts_with(&format!("HMSG {exporter}.connz 1 _R_.")),
        "{line}"
    );
    // The service does not answer, and the server must not either.
    assert_eq!(next_msg(&mut im, Duration::from_millis(500)), None);
    (ex, im)
}

#[test]
fn an_accounts_own_import_of_a_ping_subject_replaces_the_servers() {
    with_timeout(LIMIT, || {
        let conf = "accounts {\n  SYS { users: [ {user: sys, password: sys} ] }\n  B { users: [ {user: b, password: b} ], exports: [ {service: \"b.connz\"} ] }\n  C { users: [ {user: c, password: c} ], imports: [ {service: {account: B, subject: \"b.connz\"}, to: \"$SYS.REQ.ACCOUNT.PING.CONNZ\"} ] }\n}\nsystem_account: SYS\n";
        let srv = Server::with_config(conf, &[]);
        let (_b, mut c) = only_own_import_answers(srv.port(), "b", "c");
        // The imports it does not replace still reach the server.
        let v = json_request(&mut c, "$SYS.REQ.SERVER.PING.CONNZ", b"");
        assert_eq!(v["data"]["num_connections"], 1, "{v}");
    });
}

#[test]
fn every_account_can_ask_about_its_own_connections() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(CONFIG, &[]);
        let _sys = login(srv.port(), "sys");
        let mut a = login(srv.port(), "a");
        a.send(b"SUB _INBOX.sys 1\r\n");
        a.sync();
        for subject in ["$SYS.REQ.ACCOUNT.PING.CONNZ", "$SYS.REQ.SERVER.PING.CONNZ"] {
            let v = json_request(&mut a, subject, b"");
            // Its own connection only (not the system account's).
            assert_eq!(v["data"]["num_connections"], 1, "{subject}: {v}");
            assert_eq!(v["data"]["total"], 1, "{subject}: {v}");
        }
        let v = json_request(&mut a, "$SYS.REQ.ACCOUNT.PING.STATZ", b"");
        let accounts = v["data"]["account_statz"]
            .as_array()
            .expect("account_statz");
        assert_eq!(accounts.len(), 1, "{v}");
        assert_eq!(accounts[0]["acc"], "A");
        assert_eq!(accounts[0]["conns"], 1);
    });
}

/// The reference gives every account it registers the system imports, whether it was
/// configured, stored in a resolver's directory, or pushed while the server runs: a
/// user of any of them can ask about its own account's connections and statistics.
#[test]
fn resolver_accounts_can_ask_about_their_own_connections() {
    with_timeout(LIMIT, || {
        let o = Operator::new();
        // One account stored before the start, one pushed while the server runs.
        let stored = KeyPair::new_account();
        write_jwt(
            o.jwts.path(),
            &stored,
            &account_jwt(&o.op, &stored, json!({})),
        );
        let srv = Server::with_config(&o.config(""), &[]);
        let mut sys = o.sys_client(srv.port());
        let pushed = KeyPair::new_account();
        let jwt = account_jwt(&o.op, &pushed, json!({}));
        let v = json_request(&mut sys, "$SYS.REQ.CLAIMS.UPDATE", jwt.as_bytes());
        assert_eq!(v["data"]["code"], 200, "{v}");
        for acc in [&stored, &pushed] {
            let user = KeyPair::new_user();
            let (mut r, line) = connect_user(srv.port(), acc, &user);
            assert_eq!(line, "PONG");
            r.send(b"SUB _INBOX.sys 1\r\n");
            r.sync();
            for subject in ["$SYS.REQ.ACCOUNT.PING.CONNZ", "$SYS.REQ.SERVER.PING.CONNZ"] {
                let v = json_request(&mut r, subject, b"");
                assert_eq!(v["data"]["num_connections"], 1, "{subject}: {v}");
            }
            let v = json_request(&mut r, "$SYS.REQ.ACCOUNT.PING.STATZ", b"");
            let accounts = v["data"]["account_statz"]
                .as_array()
                .expect("account_statz");
            assert_eq!(accounts.len(), 1, "{v}");
            assert_eq!(accounts[0]["acc"], acc.public_key().as_str());
            assert_eq!(accounts[0]["conns"], 1);
        }
    });
}

/// An account a reload adds gets the system imports too; one whose reload gives it an
/// import of its own to a PING subject loses the server's there. natrix only: the
/// reference registers the imports on reload too (`registerSystemImports`), but 2.9.10
/// then crashes on the first such request (a nil dereference in
/// `setResponseThresholdTimer`: the reload replaced the system account's exports).
#[test]
fn natrix_only_accounts_changed_by_reload_get_the_system_imports() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(CONFIG, &[]);
        let _sys = login(srv.port(), "sys");
        srv.reload_with(
            "accounts {\n  SYS { users: [ {user: sys, password: sys} ] }\n  \
             A { users: [ {user: a, password: a} ], exports: [ {service: \"a.connz\"} ] }\n  \
             B { users: [ {user: b, password: b} ] }\n  \
             C { users: [ {user: c, password: c} ], imports: [ {service: {account: A, \
             subject: \"a.connz\"}, to: \"$SYS.REQ.ACCOUNT.PING.CONNZ\"} ] }\n}\n\
             system_account: SYS\n",
        );
        assert!(
            srv.wait_for_log("Reloaded server configuration", Duration::from_secs(10)),
            "no reload: {}",
            srv.log()
        );
        for user in ["b", "c"] {
            let mut r = login(srv.port(), user);
            r.send(b"SUB _INBOX.sys 1\r\n");
            r.sync();
            let v = json_request(&mut r, "$SYS.REQ.SERVER.PING.CONNZ", b"");
            assert_eq!(v["data"]["num_connections"], 1, "{user}: {v}");
            let v = json_request(&mut r, "$SYS.REQ.ACCOUNT.PING.STATZ", b"");
            assert_eq!(
                v["data"]["account_statz"][0]["acc"],
                user.to_uppercase(),
                "{v}"
            );
        }
        // C's own import answers there now: A's service, nobody else.
        only_own_import_answers(srv.port(), "a", "c");
    });
}
