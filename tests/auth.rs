//! Config-based security: authentication (token, user/password, bcrypt, nkeys, flags,
//! auth timeout, no_auth_user), permissions (allow/deny, queues, defaults, responses,
//! reserved replies) and accounts (isolation, stream/service export and import).
//! Expected behaviour is that of the reference nats-server 2.9.10.

mod common;

use async_nats::{Client, ConnectErrorKind, ConnectOptions, Subscriber};
use common::{run_to_exit, show, with_timeout, Raw, Server};
use futures::StreamExt;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(60);

// bcrypt (cost 4) of "s3cret" and of "tok3n", made once with Python's bcrypt (prefix 2a).
const BCRYPT_S3CRET: &str = "$2a$04$vOQSHhW/0oNkXaKpt4kDZeaa673IHmAd2NtzPpkQ4c97fMQy42Gna";
const BCRYPT_TOK3N: &str = "$2a$04$OJr2QjlOE0S09hRvOz1G6entpwqAeDlSCyxlWTxQ6V0cK.MVXcS2e";

// ---------------------------------------------------------------- helpers

/// Raw client: quiet CONNECT with extra JSON `fields`, then PING/PONG.
fn login(port: u16, fields: &str) -> Raw {
    let mut r = Raw::connect(port);
    r.send(
        format!("CONNECT {{\"verbose\":false,\"pedantic\":false,\"headers\":true,{fields}}}\r\n")
            .as_bytes(),
    );
    r.sync();
    r
}

fn user(port: u16, name: &str, pass: &str) -> Raw {
    login(port, &format!("\"user\":\"{name}\",\"pass\":\"{pass}\""))
}

/// CONNECT with `fields` must get exactly `-ERR 'Authorization Violation'` and a close.
fn refused(port: u16, fields: &str) {
    let mut r = Raw::connect(port);
    r.send(format!("CONNECT {{\"verbose\":false,{fields}}}\r\nPING\r\n").as_bytes());
    r.expect(b"-ERR 'Authorization Violation'\r\n");
    r.expect_closed();
}

/// Next line, skipping server PINGs, must be `want`.
fn line(r: &mut Raw, want: &str) {
    assert_eq!(r.next_line(), want);
}

fn perm_pub(subject: &str) -> String {
    format!("-ERR 'Permissions Violation for Publish to \"{subject}\"'")
}

fn perm_sub(subject: &str) -> String {
    format!("-ERR 'Permissions Violation for Subscription to \"{subject}\"'")
}

/// PING/PONG, then assert nothing else arrived and nothing arrives for a short while.
fn quiet(r: &mut Raw) {
    r.sync();
    r.expect_nothing(150);
}

fn run_async<F: Future<Output = ()> + Send + 'static>(f: F) {
    with_timeout(LIMIT, move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async move { timeout(LIMIT, f).await.expect("test timed out") });
    });
}

async fn try_connect(
    srv_url: &str,
    opts: ConnectOptions,
) -> Result<Client, async_nats::ConnectError> {
    timeout(Duration::from_secs(10), opts.connect(srv_url))
        .await
        .expect("connect did not finish within 10 s")
}

async fn connect_ok(srv_url: &str, opts: ConnectOptions) -> Client {
    try_connect(srv_url, opts).await.expect("connect")
}

async fn connect_refused(srv_url: &str, opts: ConnectOptions) {
    match try_connect(srv_url, opts).await {
        Ok(_) => panic!("connect with bad credentials succeeded"),
        Err(e) => assert_eq!(e.kind(), ConnectErrorKind::AuthorizationViolation, "{e}"),
    }
}

/// Barrier: a request nobody answers comes back as no-responders once the server has
/// processed everything before it on this connection. `subject` must be publishable.
async fn round_trip_on(c: &Client, subject: &str) {
    let r = timeout(
        Duration::from_secs(10),
        c.request(subject.to_string(), bytes::Bytes::new()),
    )
    .await
    .expect("barrier request timed out");
    match r {
        Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {}
        other => panic!("barrier request: expected no-responders, got {other:?}"),
    }
}

async fn round_trip(c: &Client) {
    round_trip_on(c, "_itest.barrier").await
}

async fn next(sub: &mut Subscriber) -> async_nats::Message {
    timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("no message within 5s")
        .expect("subscription ended")
}

/// Unpadded base64url, as NATS clients send the nonce signature.
fn b64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

// ---------------------------------------------------------------- token

#[test]
fn token_auth_accepts_right_token_and_refuses_others() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config("authorization { token: \"s3cr3t\" }\n", &[]);
        let r = Raw::connect(srv.port());
        assert_eq!(r.info["auth_required"], true, "INFO: {}", r.info);
        let mut ok = login(srv.port(), r#""auth_token":"s3cr3t""#);
        ok.send(b"SUB t 1\r\nPUB t 1\r\nx\r\n");
        line(&mut ok, "MSG t 1 1");
        line(&mut ok, "x");
        refused(srv.port(), r#""auth_token":"wrong""#);
        refused(srv.port(), r#""auth_token":"s3cr3""#);
        refused(srv.port(), r#""user":"s3cr3t""#);
        refused(srv.port(), r#""user":"x","pass":"s3cr3t""#);
        // No credentials at all.
        refused(srv.port(), r#""name":"anon""#);
        quiet(&mut ok);
    });
}

#[test]
fn token_auth_with_async_nats_and_auth_flag() {
    run_async(async {
        let srv = Server::start(&["--auth", "flag-tok"]);
        let c = connect_ok(&srv.url(), ConnectOptions::with_token("flag-tok".into())).await;
        let mut sub = c.subscribe("tok.x").await.unwrap();
        round_trip(&c).await;
        c.publish("tok.x", "hi".into()).await.unwrap();
        assert_eq!(&next(&mut sub).await.payload[..], b"hi");
        connect_refused(&srv.url(), ConnectOptions::with_token("nope".into())).await;
        connect_refused(&srv.url(), ConnectOptions::new()).await;
    });
}

#[test]
fn bcrypt_token() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(
            &format!("authorization {{ token: \"{BCRYPT_TOK3N}\" }}\n"),
            &[],
        );
        login(srv.port(), r#""auth_token":"tok3n""#);
        refused(srv.port(), &format!("\"auth_token\":\"{BCRYPT_TOK3N}\""));
        refused(srv.port(), r#""auth_token":"tok3""#);
    });
}

// ---------------------------------------------------------------- user / password

#[test]
fn single_user_plain_password() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config("authorization { user: bob, password: \"pw 1\" }\n", &[]);
        assert_eq!(Raw::connect(srv.port()).info["auth_required"], true);
        user(srv.port(), "bob", "pw 1").sync();
        refused(srv.port(), r#""user":"bob","pass":"pw 2""#);
        refused(srv.port(), r#""user":"bob""#);
        refused(srv.port(), r#""user":"Bob","pass":"pw 1""#);
        refused(srv.port(), r#""pass":"pw 1""#);
    });
}

#[test]
fn bcrypt_password_accepts_plain_and_refuses_the_hash_itself() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(
            &format!("authorization {{ user: bob, password: \"{BCRYPT_S3CRET}\" }}\n"),
            &[],
        );
        user(srv.port(), "bob", "s3cret").sync();
        refused(
            srv.port(),
            &format!("\"user\":\"bob\",\"pass\":\"{BCRYPT_S3CRET}\""),
        );
        refused(srv.port(), r#""user":"bob","pass":"s3cre""#);
        refused(srv.port(), r#""user":"bobx","pass":"s3cret""#);
    });
}

#[test]
fn users_list_each_with_own_password() {
    with_timeout(LIMIT, || {
        let conf = format!(
            r#"
authorization {{
  users: [
    {{user: ann, password: pa}}
    {{user: ben, password: "{BCRYPT_S3CRET}"}}
    {{user: cat, password: pc}}
  ]
}}
"#
        );
        let srv = Server::with_config(&conf, &[]);
        let mut ann = user(srv.port(), "ann", "pa");
        let mut ben = user(srv.port(), "ben", "s3cret");
        user(srv.port(), "cat", "pc");
        refused(srv.port(), r#""user":"ann","pass":"pc""#);
        refused(srv.port(), r#""user":"cat","pass":"pa""#);
        refused(srv.port(), r#""user":"dan","pass":"pa""#);
        // All users share the global account.
        ben.send(b"SUB shared 1\r\n");
        ben.sync();
        ann.send(b"PUB shared 2\r\nok\r\n");
        line(&mut ben, "MSG shared 1 2");
        line(&mut ben, "ok");
    });
}

#[test]
fn user_password_with_async_nats_and_flags() {
    run_async(async {
        let srv = Server::start(&["--user", "u1", "--pass", "p1"]);
        let c = connect_ok(
            &srv.url(),
            ConnectOptions::with_user_and_password("u1".into(), "p1".into()),
        )
        .await;
        round_trip(&c).await;
        connect_refused(
            &srv.url(),
            ConnectOptions::with_user_and_password("u1".into(), "p2".into()),
        )
        .await;
        connect_refused(
            &srv.url(),
            ConnectOptions::with_user_and_password("u2".into(), "p1".into()),
        )
        .await;
        connect_refused(&srv.url(), ConnectOptions::new()).await;
    });
}

// ---------------------------------------------------------------- before CONNECT

#[test]
fn operations_before_connect_are_refused_when_auth_is_on() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config("authorization { user: a, password: b }\n", &[]);
        for op in [
            &b"PING\r\n"[..],
            b"SUB foo 1\r\n",
            b"PUB foo 2\r\nhi\r\n",
            b"UNSUB 1\r\n",
            // The reference decides on the first byte, before the line is
            // parsed: what would be a protocol error is refused as well,
            // and so is a PUB whose payload has not come yet.
            b"P\r\n",
            b"\r\n",
            b"SUB a b c d\r\n",
            b"HPUB foo 10 5\r\n",
            b"PUB foo 1000000000\r\n",
            b"PUB foo 5\r\n",
        ] {
            let mut r = Raw::connect(srv.port());
            assert_eq!(r.info["auth_required"], true);
            r.send(op);
            let got = r.read_until_closed(Duration::from_secs(5));
            assert_eq!(
                show(&got),
                show(b"-ERR 'Authorization Violation'\r\n"),
                "for {}",
                show(op)
            );
        }
        // A lower-case connect is a CONNECT.
        let mut r = Raw::connect(srv.port());
        r.send(b"connect {\"verbose\":false,\"user\":\"a\",\"pass\":\"b\"}\r\nPING\r\n");
        r.expect(b"PONG\r\n");
        // verbose CONNECT with good credentials gets +OK.
        let mut r = Raw::connect(srv.port());
        r.send(b"CONNECT {\"verbose\":true,\"user\":\"a\",\"pass\":\"b\"}\r\nPING\r\n");
        r.expect(b"+OK\r\nPONG\r\n");
    });
}

// ---------------------------------------------------------------- auth timeout

#[test]
fn auth_timeout_closes_client_that_never_connects() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config("authorization {\n  token: t0k\n  timeout: 1\n}\n", &[]);
        let start = Instant::now();
        let mut silent = Raw::connect(srv.port());
        let mut good = login(srv.port(), r#""auth_token":"t0k""#);
        let got = silent.read_until_closed(Duration::from_secs(5));
        let took = start.elapsed();
        assert_eq!(show(&got), show(b"-ERR 'Authentication Timeout'\r\n"));
        assert!(
            took >= Duration::from_millis(700) && took < Duration::from_millis(3500),
            "timeout fired after {took:?}, configured 1 s"
        );
        // A client that authenticated in time is unaffected.
        std::thread::sleep(Duration::from_millis(300));
        good.sync();
    });
}

#[test]
fn auth_timeout_accepts_fractional_seconds() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(
            "authorization {\n  user: a\n  password: b\n  timeout: 0.5\n}\n",
            &[],
        );
        let start = Instant::now();
        let mut silent = Raw::connect(srv.port());
        let got = silent.read_until_closed(Duration::from_secs(5));
        let took = start.elapsed();
        assert_eq!(show(&got), show(b"-ERR 'Authentication Timeout'\r\n"));
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_millis(1800),
            "timeout fired after {took:?}, configured 0.5 s"
        );
    });
}

// ---------------------------------------------------------------- nkeys

fn nkey_conf(public: &str) -> String {
    format!(
        r#"
authorization {{
  users: [
    {{nkey: {public}, permissions: {{publish: "nk.>", subscribe: ["nk.>", "_INBOX.>"]}}}}
    {{user: plain, password: pw}}
  ]
}}
"#
    )
}

#[test]
fn nkey_info_has_fresh_nonce_and_raw_signature_is_checked() {
    with_timeout(LIMIT, || {
        let kp = nkeys::KeyPair::new_user();
        let other = nkeys::KeyPair::new_user();
        let srv = Server::with_config(&nkey_conf(&kp.public_key()), &[]);
        let a = Raw::connect(srv.port());
        let b = Raw::connect(srv.port());
        let na = a.info["nonce"]
            .as_str()
            .expect("INFO.nonce is a string")
            .to_string();
        let nb = b.info["nonce"]
            .as_str()
            .expect("INFO.nonce is a string")
            .to_string();
        assert!(!na.is_empty(), "empty nonce: {}", a.info);
        assert_ne!(na, nb, "nonce must differ per connection");
        assert_eq!(a.info["auth_required"], true);

        // Correct signature of this connection's nonce, base64url without padding.
        let mut r = Raw::connect(srv.port());
        let nonce = r.info["nonce"].as_str().unwrap().to_string();
        let sig = b64url(&kp.sign(nonce.as_bytes()).unwrap());
        r.send(
            format!(
                "CONNECT {{\"verbose\":false,\"nkey\":\"{}\",\"sig\":\"{sig}\"}}\r\n",
                kp.public_key()
            )
            .as_bytes(),
        );
        r.sync();
        // Its permissions apply.
        r.send(b"PUB other 0\r\n\r\n");
        line(&mut r, &perm_pub("other"));
        r.sync();

        // Signature by another key for the configured public key.
        let mut r = Raw::connect(srv.port());
        let nonce = r.info["nonce"].as_str().unwrap().to_string();
        let sig = b64url(&other.sign(nonce.as_bytes()).unwrap());
        r.send(
            format!(
                "CONNECT {{\"verbose\":false,\"nkey\":\"{}\",\"sig\":\"{sig}\"}}\r\nPING\r\n",
                kp.public_key()
            )
            .as_bytes(),
        );
        r.expect(b"-ERR 'Authorization Violation'\r\n");
        r.expect_closed();

        // Signature of another connection's nonce (replay).
        let mut r = Raw::connect(srv.port());
        let sig = b64url(&kp.sign(na.as_bytes()).unwrap());
        r.send(
            format!(
                "CONNECT {{\"verbose\":false,\"nkey\":\"{}\",\"sig\":\"{sig}\"}}\r\nPING\r\n",
                kp.public_key()
            )
            .as_bytes(),
        );
        r.expect(b"-ERR 'Authorization Violation'\r\n");
        r.expect_closed();

        // No signature; and an unknown nkey signing correctly.
        refused(srv.port(), &format!("\"nkey\":\"{}\"", kp.public_key()));
        let mut r = Raw::connect(srv.port());
        let nonce = r.info["nonce"].as_str().unwrap().to_string();
        let sig = b64url(&other.sign(nonce.as_bytes()).unwrap());
        r.send(
            format!(
                "CONNECT {{\"verbose\":false,\"nkey\":\"{}\",\"sig\":\"{sig}\"}}\r\nPING\r\n",
                other.public_key()
            )
            .as_bytes(),
        );
        r.expect(b"-ERR 'Authorization Violation'\r\n");
        r.expect_closed();
        // Password users still work beside nkey users.
        user(srv.port(), "plain", "pw").sync();
    });
}

#[test]
fn nkey_with_async_nats_seed() {
    run_async(async {
        let kp = nkeys::KeyPair::new_user();
        let other = nkeys::KeyPair::new_user();
        let srv = Server::with_config(&nkey_conf(&kp.public_key()), &[]);
        let c = connect_ok(&srv.url(), ConnectOptions::with_nkey(kp.seed().unwrap())).await;
        let mut sub = c.subscribe("nk.a").await.unwrap();
        round_trip_on(&c, "nk.barrier").await;
        c.publish("nk.a", "signed".into()).await.unwrap();
        assert_eq!(&next(&mut sub).await.payload[..], b"signed");
        connect_refused(&srv.url(), ConnectOptions::with_nkey(other.seed().unwrap())).await;
    });
}

// ---------------------------------------------------------------- no_auth_user

const NO_AUTH: &str = r#"
authorization {
  users: [
    {user: guest, password: g, permissions: {publish: "public.>", subscribe: ["public.>", "_INBOX.>"]}}
    {user: admin, password: a}
  ]
}
no_auth_user: guest
"#;

#[test]
fn no_auth_user_applies_to_clients_without_credentials() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(NO_AUTH, &[]);
        let mut anon = login(srv.port(), r#""name":"anon""#);
        anon.send(b"SUB public.x 1\r\nPUB public.x 1\r\nA\r\n");
        line(&mut anon, "MSG public.x 1 1");
        line(&mut anon, "A");
        // Guest's permissions apply.
        anon.send(b"PUB private.x 1\r\nB\r\n");
        line(&mut anon, &perm_pub("private.x"));
        anon.send(b"SUB private.x 2\r\n");
        line(&mut anon, &perm_sub("private.x"));
        quiet(&mut anon);
        // Wrong credentials are still refused, not downgraded to the guest.
        refused(srv.port(), r#""user":"admin","pass":"zz""#);
        refused(srv.port(), r#""user":"guest""#);
        refused(srv.port(), r#""auth_token":"x""#);
        // Right credentials get the named user.
        let mut admin = user(srv.port(), "admin", "a");
        admin.send(b"SUB private.x 1\r\n");
        quiet(&mut admin);
    });
}

#[test]
fn no_auth_user_allows_protocol_before_connect() {
    // Reference quirk (parser.go): with no_auth_user, a first op other than CONNECT
    // registers the client as that user instead of failing.
    with_timeout(LIMIT, || {
        let srv = Server::with_config(NO_AUTH, &[]);
        let mut r = Raw::connect(srv.port());
        r.send(b"PING\r\n");
        r.expect(b"PONG\r\n");
        let mut r = Raw::connect(srv.port());
        r.send(b"SUB private.x 1\r\nPING\r\n");
        line(&mut r, &perm_sub("private.x"));
        line(&mut r, "PONG");
    });
}

#[test]
fn no_auth_user_with_async_nats() {
    run_async(async {
        let srv = Server::with_config(NO_AUTH, &[]);
        let c = connect_ok(&srv.url(), ConnectOptions::new()).await;
        let mut sub = c.subscribe("public.news").await.unwrap();
        round_trip_on(&c, "public.barrier").await;
        c.publish("public.news", "n".into()).await.unwrap();
        assert_eq!(&next(&mut sub).await.payload[..], b"n");
        connect_refused(
            &srv.url(),
            ConnectOptions::with_user_and_password("admin".into(), "wrong".into()),
        )
        .await;
    });
}

// ---------------------------------------------------------------- permissions

const ORDERS: &str = r#"
accounts {
  ORDERS {
    users: [
      {user: alice, password: alice-pw, permissions: {publish: "orders.>", subscribe: "_INBOX.>"}}
      {user: watcher, password: w}
    ]
  }
}
"#;

#[test]
fn docs_example_publish_permissions() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(ORDERS, &[]);
        let mut watcher = user(srv.port(), "watcher", "w");
        watcher.send(b"SUB > 1\r\n");
        watcher.sync();
        let mut alice = user(srv.port(), "alice", "alice-pw");
        alice.send(b"PUB orders.created 5\r\norder\r\n");
        alice.sync();
        line(&mut watcher, "MSG orders.created 1 5");
        line(&mut watcher, "order");
        alice.send(b"PUB billing.invoice 4\r\nbill\r\n");
        alice.expect(b"-ERR 'Permissions Violation for Publish to \"billing.invoice\"'\r\n");
        // The connection stays open and usable.
        alice.sync();
        alice.send(b"PUB orders.shipped 0\r\n\r\n");
        quiet(&mut alice);
        line(&mut watcher, "MSG orders.shipped 1 0");
        line(&mut watcher, "");
        // The refused message never reached anyone.
        quiet(&mut watcher);
        // Subscribe permissions: only _INBOX.>.
        alice.send(b"SUB orders.> 1\r\n");
        line(&mut alice, &perm_sub("orders.>"));
        alice.send(b"SUB _INBOX.abc 2\r\n");
        quiet(&mut alice);
    });
}

#[test]
fn docs_example_request_with_async_nats() {
    run_async(async {
        let srv = Server::with_config(ORDERS, &[]);
        let watcher = connect_ok(
            &srv.url(),
            ConnectOptions::with_user_and_password("watcher".into(), "w".into()),
        )
        .await;
        let mut svc = watcher.subscribe("orders.get").await.unwrap();
        round_trip(&watcher).await;
        let alice = connect_ok(
            &srv.url(),
            ConnectOptions::with_user_and_password("alice".into(), "alice-pw".into()),
        )
        .await;
        round_trip_on(&alice, "orders.barrier").await;
        let w2 = watcher.clone();
        let responder = tokio::spawn(async move {
            let m = next(&mut svc).await;
            w2.publish(m.reply.unwrap(), "order-1".into())
                .await
                .unwrap();
            w2.flush().await.unwrap();
        });
        let resp = timeout(
            Duration::from_secs(5),
            alice.request("orders.get", "id".into()),
        )
        .await
        .expect("request timed out")
        .expect("request");
        assert_eq!(&resp.payload[..], b"order-1");
        responder.await.unwrap();
    });
}

const PERMS: &str = r#"
authorization {
  users: [
    {user: dd, password: d, permissions: {
        publish: {allow: "a.>", deny: "a.secret"},
        subscribe: {allow: ["a.>", "b.*"], deny: ["a.secret", "b.x"]}}}
    {user: ls, password: l, permissions: {publish: ["x", "y.*"], subscribe: "x"}}
    {user: od, password: o, permissions: {publish: {deny: "nope.>"}, subscribe: {deny: ["nope.>"]}}}
    {user: qq, password: q, permissions: {subscribe: ["jobs.* workers", "plain"]}}
    {user: all, password: x}
  ]
}
"#;

#[test]
fn deny_wins_over_allow() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(PERMS, &[]);
        let mut d = user(srv.port(), "dd", "d");
        d.send(b"PUB a.b 0\r\n\r\nPUB a.secret 0\r\n\r\n");
        line(&mut d, &perm_pub("a.secret"));
        d.send(b"SUB a.secret 1\r\n");
        line(&mut d, &perm_sub("a.secret"));
        d.send(b"SUB b.x 2\r\n");
        line(&mut d, &perm_sub("b.x"));
        d.send(b"SUB b.y 3\r\n");
        quiet(&mut d);
        // Outside the allow list.
        d.send(b"PUB c 0\r\n\r\n");
        line(&mut d, &perm_pub("c"));
        d.send(b"SUB c 4\r\n");
        line(&mut d, &perm_sub("c"));
        quiet(&mut d);
    });
}

#[test]
fn wildcard_subscription_overlapping_deny_is_filtered_at_delivery() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(PERMS, &[]);
        let mut d = user(srv.port(), "dd", "d");
        // a.> is covered by the allow rule: accepted although a.secret is denied.
        d.send(b"SUB a.> 1\r\n");
        quiet(&mut d);
        let mut all = user(srv.port(), "all", "x");
        all.send(b"PUB a.secret 1\r\n1\r\nPUB a.open 1\r\n2\r\nPUB a.secret.more 1\r\n3\r\n");
        all.sync();
        line(&mut d, "MSG a.open 1 1");
        line(&mut d, "2");
        line(&mut d, "MSG a.secret.more 1 1");
        line(&mut d, "3");
        quiet(&mut d);
    });
}

/// The reference filters deliveries by the subscribe deny rules only once
/// the client has a wildcard subscription that a deny rule falls within;
/// until then a wildcard that merely overlaps a deny rule (`foo.>` and
/// `*.bar`) gets the denied subjects too. The filter then covers all of
/// the client's subscriptions.
#[test]
fn the_delivery_filter_starts_with_a_wildcard_containing_a_deny_rule() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(
            "authorization { users: [\n\
             {user: f, password: f, permissions: {subscribe: {allow: [\">\"], deny: [\"*.bar\"]}}}\n\
             {user: p, password: p}\n] }\n",
            &[],
        );
        let mut f = user(srv.port(), "f", "f");
        f.send(b"SUB foo.> 1\r\n");
        quiet(&mut f);
        let mut p = user(srv.port(), "p", "p");
        p.send(b"PUB foo.bar 1\r\n1\r\n");
        p.sync();
        line(&mut f, "MSG foo.bar 1 1");
        line(&mut f, "1");
        // `*.bar` lies within `*.*`: from now on the client gets no
        // subject the deny rule matches, on either subscription.
        f.send(b"SUB *.* 2\r\n");
        quiet(&mut f);
        p.send(b"PUB foo.bar 1\r\n2\r\nPUB foo.baz 1\r\n3\r\n");
        p.sync();
        let mut got = Vec::new();
        for _ in 0..2 {
            got.push(f.next_line());
            assert_eq!(f.next_line(), "3");
        }
        got.sort();
        assert_eq!(got, ["MSG foo.baz 1 1", "MSG foo.baz 2 1"]);
        quiet(&mut f);
    });
}

#[test]
fn plain_string_or_list_means_allow() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(PERMS, &[]);
        let mut l = user(srv.port(), "ls", "l");
        l.send(b"PUB x 0\r\n\r\nPUB y.z 0\r\n\r\n");
        quiet(&mut l);
        l.send(b"PUB z 0\r\n\r\n");
        line(&mut l, &perm_pub("z"));
        l.send(b"PUB y.z.w 0\r\n\r\n");
        line(&mut l, &perm_pub("y.z.w"));
        l.send(b"SUB y.z 1\r\n");
        line(&mut l, &perm_sub("y.z"));
        l.send(b"SUB x 2\r\n");
        quiet(&mut l);
    });
}

#[test]
fn only_deny_allows_everything_else() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(PERMS, &[]);
        let mut o = user(srv.port(), "od", "o");
        o.send(b"PUB anything 0\r\n\r\nSUB any 1\r\nSUB some.thing.deep 2\r\n");
        quiet(&mut o);
        o.send(b"PUB nope.x 0\r\n\r\n");
        line(&mut o, &perm_pub("nope.x"));
        o.send(b"SUB nope.x 3\r\n");
        line(&mut o, &perm_sub("nope.x"));
        quiet(&mut o);
    });
}

#[test]
fn queue_permission_entries() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(PERMS, &[]);
        let mut q = user(srv.port(), "qq", "q");
        q.send(b"SUB jobs.a workers 1\r\n");
        quiet(&mut q);
        // "jobs.* workers" allows that subject only with that queue.
        q.send(b"SUB jobs.a 2\r\n");
        line(&mut q, &perm_sub("jobs.a"));
        q.send(b"SUB jobs.a others 3\r\n");
        line(
            &mut q,
            "-ERR 'Permissions Violation for Subscription to \"jobs.a\" using queue \"others\"'",
        );
        // A plain entry allows the subject with any queue or none.
        q.send(b"SUB plain 4\r\nSUB plain anyq 5\r\n");
        quiet(&mut q);
        // The allowed queue subscription receives.
        let mut all = user(srv.port(), "all", "x");
        all.send(b"PUB jobs.a 3\r\njob\r\n");
        all.sync();
        line(&mut q, "MSG jobs.a 1 3");
        line(&mut q, "job");
        quiet(&mut q);
    });
}

#[test]
fn default_permissions_apply_to_users_without_their_own() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(
            r#"
authorization {
  default_permissions: {publish: "pub.>", subscribe: ["sub.>", "_INBOX.>"]}
  users: [
    {user: plain, password: p}
    {user: own, password: o, permissions: {publish: "own.>"}}
  ]
}
"#,
            &[],
        );
        let mut p = user(srv.port(), "plain", "p");
        p.send(b"PUB pub.x 0\r\n\r\nSUB sub.x 1\r\n");
        quiet(&mut p);
        p.send(b"PUB other 0\r\n\r\n");
        line(&mut p, &perm_pub("other"));
        p.send(b"SUB other 2\r\n");
        line(&mut p, &perm_sub("other"));
        // A user's own permissions replace the defaults entirely: no subscribe rule means
        // subscribe is unrestricted, and pub.> from the defaults is not granted.
        let mut o = user(srv.port(), "own", "o");
        o.send(b"PUB own.x 0\r\n\r\nSUB other 1\r\n");
        quiet(&mut o);
        o.send(b"PUB pub.x 0\r\n\r\n");
        line(&mut o, &perm_pub("pub.x"));
        quiet(&mut o);
    });
}

#[test]
fn default_permissions_in_an_account() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(
            r#"
accounts {
  T {
    default_permissions: {publish: {deny: "secret.>"}}
    users: [{user: t, password: t}]
  }
}
"#,
            &[],
        );
        let mut t = user(srv.port(), "t", "t");
        t.send(b"PUB open 0\r\n\r\n");
        quiet(&mut t);
        t.send(b"PUB secret.x 0\r\n\r\n");
        line(&mut t, &perm_pub("secret.x"));
        quiet(&mut t);
    });
}

const RESPONDERS: &str = r#"
authorization {
  users: [
    {user: resp, password: r, permissions: {publish: {deny: "_INBOX.>"}, subscribe: "svc", allow_responses: true}}
    {user: resp2, password: r, permissions: {publish: {deny: ">"}, subscribe: "svc2", allow_responses: {max: 2}}}
    {user: resp3, password: r, permissions: {publish: {deny: ">"}, subscribe: "svc3", allow_responses: {max: 5, expires: "500ms"}}}
    {user: req, password: r}
  ]
}
"#;

#[test]
fn allow_responses_lets_a_denied_responder_reply_once() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(RESPONDERS, &[]);
        let mut rs = user(srv.port(), "resp", "r");
        rs.send(b"SUB svc 1\r\n");
        rs.sync();
        let mut rq = user(srv.port(), "req", "r");
        rq.send(b"SUB _INBOX.me 1\r\nPUB svc _INBOX.me 3\r\nreq\r\n");
        rq.sync();
        line(&mut rs, "MSG svc 1 _INBOX.me 3");
        line(&mut rs, "req");
        // First reply passes although publish to _INBOX.> is denied.
        rs.send(b"PUB _INBOX.me 2\r\nr1\r\n");
        quiet(&mut rs);
        line(&mut rq, "MSG _INBOX.me 1 2");
        line(&mut rq, "r1");
        // Default max is 1: a second reply to the same inbox is refused.
        rs.send(b"PUB _INBOX.me 2\r\nr2\r\n");
        line(&mut rs, &perm_pub("_INBOX.me"));
        // An inbox it never received a request from is refused.
        rs.send(b"PUB _INBOX.other 2\r\nr3\r\n");
        line(&mut rs, &perm_pub("_INBOX.other"));
        quiet(&mut rs);
        quiet(&mut rq);
    });
}

#[test]
fn allow_responses_max_and_expiry() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(RESPONDERS, &[]);
        let mut r2 = user(srv.port(), "resp2", "r");
        r2.send(b"SUB svc2 1\r\n");
        r2.sync();
        let mut rq = user(srv.port(), "req", "r");
        rq.send(b"SUB _INBOX.me 1\r\nPUB svc2 _INBOX.me 1\r\nq\r\n");
        rq.sync();
        line(&mut r2, "MSG svc2 1 _INBOX.me 1");
        line(&mut r2, "q");
        r2.send(b"PUB _INBOX.me 2\r\nr1\r\nPUB _INBOX.me 2\r\nr2\r\nPUB _INBOX.me 2\r\nr3\r\n");
        line(&mut r2, &perm_pub("_INBOX.me"));
        quiet(&mut r2);
        line(&mut rq, "MSG _INBOX.me 1 2");
        line(&mut rq, "r1");
        line(&mut rq, "MSG _INBOX.me 1 2");
        line(&mut rq, "r2");
        quiet(&mut rq);

        // expires: a reply after the window is refused.
        let mut r3 = user(srv.port(), "resp3", "r");
        r3.send(b"SUB svc3 1\r\n");
        r3.sync();
        rq.send(b"PUB svc3 _INBOX.me 1\r\nq\r\nPUB svc3 _INBOX.me2 1\r\nq\r\nSUB _INBOX.me2 2\r\n");
        rq.sync();
        line(&mut r3, "MSG svc3 1 _INBOX.me 1");
        line(&mut r3, "q");
        line(&mut r3, "MSG svc3 1 _INBOX.me2 1");
        line(&mut r3, "q");
        r3.send(b"PUB _INBOX.me2 2\r\nok\r\n");
        quiet(&mut r3);
        line(&mut rq, "MSG _INBOX.me2 2 2");
        line(&mut rq, "ok");
        std::thread::sleep(Duration::from_millis(1000));
        r3.send(b"PUB _INBOX.me 4\r\nlate\r\n");
        line(&mut r3, &perm_pub("_INBOX.me"));
        quiet(&mut r3);
        quiet(&mut rq);
    });
}

#[test]
fn reserved_reply_prefix_is_refused_for_clients() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(RESPONDERS, &[]);
        let mut c = user(srv.port(), "req", "r");
        c.send(b"SUB foo 1\r\n");
        c.send(b"PUB foo _R_.abc 1\r\nx\r\n");
        line(
            &mut c,
            "-ERR 'Permissions Violation for Publish with Reply of \"_R_.abc\"'",
        );
        // The connection stays; a normal reply subject is fine; plain `_R_` is not reserved.
        c.send(b"PUB foo _INBOX.ok 1\r\ny\r\n");
        line(&mut c, "MSG foo 1 _INBOX.ok 1");
        line(&mut c, "y");
        c.send(b"PUB foo _R_ 1\r\nz\r\n");
        line(&mut c, "MSG foo 1 _R_ 1");
        line(&mut c, "z");
        quiet(&mut c);
    });
}

#[test]
fn reserved_reply_prefix_is_refused_without_auth_too() {
    with_timeout(LIMIT, || {
        let srv = Server::start(&[]);
        let mut c = Raw::connect_ok(srv.port());
        c.send(b"SUB foo 1\r\nPUB foo _R_.x.y 0\r\n\r\n");
        line(
            &mut c,
            "-ERR 'Permissions Violation for Publish with Reply of \"_R_.x.y\"'",
        );
        quiet(&mut c);
    });
}

// ---------------------------------------------------------------- accounts

const ACCOUNTS: &str = r#"
accounts {
  A {
    users: [{user: a, password: a}]
    exports: [
      {stream: "events.>"}
      {service: "svc.echo"}
    ]
  }
  B {
    users: [{user: b, password: b}]
    imports: [
      {stream: {account: A, subject: "events.>"}, prefix: "fromA"}
      {service: {account: A, subject: "svc.echo"}, to: "echo"}
    ]
  }
  C {
    users: [{user: c, password: c}]
  }
}
"#;

#[test]
fn accounts_isolate_subjects_including_full_wildcard() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(ACCOUNTS, &[]);
        let mut a = user(srv.port(), "a", "a");
        let mut b = user(srv.port(), "b", "b");
        let mut c = user(srv.port(), "c", "c");
        a.send(b"SUB same 1\r\n");
        b.send(b"SUB > 1\r\n");
        c.send(b"SUB same 1\r\nSUB > 2\r\n");
        a.sync();
        b.sync();
        c.sync();
        c.send(b"PUB same 3\r\nfrC\r\n");
        // Both of C's own subscriptions get it (in either order).
        let mut heads = Vec::new();
        for _ in 0..2 {
            heads.push(c.next_line());
            line(&mut c, "frC");
        }
        heads.sort();
        assert_eq!(heads, ["MSG same 1 3", "MSG same 2 3"]);
        a.send(b"PUB same 3\r\nfrA\r\n");
        line(&mut a, "MSG same 1 3");
        line(&mut a, "frA");
        quiet(&mut a);
        quiet(&mut b);
        quiet(&mut c);
    });
}

#[test]
fn stream_export_import_with_prefix_is_one_way() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(ACCOUNTS, &[]);
        let mut a = user(srv.port(), "a", "a");
        let mut b = user(srv.port(), "b", "b");
        let mut c = user(srv.port(), "c", "c");
        a.send(b"SUB > 9\r\n");
        b.send(b"SUB > 1\r\n");
        c.send(b"SUB > 1\r\n");
        a.sync();
        b.sync();
        c.sync();
        a.send(b"PUB events.x 2\r\nhi\r\nPUB other 1\r\no\r\n");
        line(&mut a, "MSG events.x 9 2");
        line(&mut a, "hi");
        line(&mut a, "MSG other 9 1");
        line(&mut a, "o");
        // The importer sees the stream under its prefix, and nothing else from A.
        line(&mut b, "MSG fromA.events.x 1 2");
        line(&mut b, "hi");
        quiet(&mut b);
        // C imported nothing.
        quiet(&mut c);
        // Not the other way: B publishing either form stays in B.
        b.send(b"PUB events.y 2\r\nhb\r\nPUB fromA.events.z 2\r\nhz\r\n");
        line(&mut b, "MSG events.y 1 2");
        line(&mut b, "hb");
        line(&mut b, "MSG fromA.events.z 1 2");
        line(&mut b, "hz");
        quiet(&mut b);
        quiet(&mut a);
    });
}

#[test]
fn service_export_import_with_to_mapping() {
    run_async(async {
        let srv = Server::with_config(ACCOUNTS, &[]);
        let a = connect_ok(
            &srv.url(),
            ConnectOptions::with_user_and_password("a".into(), "a".into()),
        )
        .await;
        let mut svc = a.subscribe("svc.echo").await.unwrap();
        round_trip(&a).await;
        let a2 = a.clone();
        let responder = tokio::spawn(async move {
            let m = next(&mut svc).await;
            assert_eq!(m.subject.as_str(), "svc.echo");
            let mut body = b"echo:".to_vec();
            body.extend_from_slice(&m.payload);
            a2.publish(m.reply.expect("request has a reply"), body.into())
                .await
                .unwrap();
            a2.flush().await.unwrap();
        });
        let b = connect_ok(
            &srv.url(),
            ConnectOptions::with_user_and_password("b".into(), "b".into()),
        )
        .await;
        let resp = timeout(Duration::from_secs(5), b.request("echo", "ping".into()))
            .await
            .expect("request timed out")
            .expect("request");
        assert_eq!(&resp.payload[..], b"echo:ping");
        responder.await.unwrap();
        // With a responder on svc.echo in A, the export subject itself is still not
        // reachable from B (only the import's local subject is), nor is `echo` from C.
        let _keep = a.subscribe("svc.echo").await.unwrap();
        round_trip(&a).await;
        round_trip_on(&b, "svc.echo").await;
        let c = connect_ok(
            &srv.url(),
            ConnectOptions::with_user_and_password("c".into(), "c".into()),
        )
        .await;
        round_trip_on(&c, "echo").await;
    });
}

#[test]
fn service_import_singleton_passes_one_response() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(ACCOUNTS, &[]);
        let mut a = user(srv.port(), "a", "a");
        a.send(b"SUB svc.echo 1\r\n");
        a.sync();
        let mut b = user(srv.port(), "b", "b");
        b.send(b"SUB _INBOX.b1 1\r\nPUB echo _INBOX.b1 3\r\nreq\r\n");
        b.sync();
        // The exporter sees the request with a rewritten reply subject.
        let head = a.next_line();
        assert!(
            head.starts_with("MSG svc.echo 1 _R_.") || head.starts_with("HMSG svc.echo 1 _R_."),
            "request as seen by the exporter: {head}"
        );
        let reply = head.split(' ').nth(3).unwrap().to_string();
        // Skip the rest of the message (headers and/or payload).
        let total: usize = head.rsplit(' ').next().unwrap().parse().unwrap();
        a.read_exact_bytes(total + 2);
        a.send(format!("PUB {reply} 3\r\nrep\r\nPUB {reply} 4\r\nrep2\r\n").as_bytes());
        a.sync();
        line(&mut b, "MSG _INBOX.b1 1 3");
        line(&mut b, "rep");
        quiet(&mut b);
    });
}

#[test]
fn restricted_export_import_by_unlisted_account_fails_startup() {
    with_timeout(LIMIT, || {
        let conf = |importer: &str| {
            format!(
                r#"
accounts {{
  A {{
    users: [{{user: a, password: a}}]
    exports: [{{stream: "events.>", accounts: [B]}}, {{service: "svc", accounts: [B]}}]
  }}
  B {{ users: [{{user: b, password: b}}] }}
  C {{ users: [{{user: c, password: c}}] }}
  {importer}
}}
"#
            )
        };
        let limit = Duration::from_secs(10);
        let stream_c = conf("").replace(
            "C { users: [{user: c, password: c}] }",
            "C {\n    users: [{user: c, password: c}]\n    imports: [{stream: {account: A, subject: \"events.>\"}}]\n  }",
        );
        let e = run_to_exit("exports.conf", &stream_c, &[], &[], limit);
        assert!(
            !e.success() && e.code.is_some(),
            "started: {:?}\n{}",
            e.code,
            e.output
        );
        assert!(!e.output.trim().is_empty(), "no diagnostic output");
        let service_c = conf("").replace(
            "C { users: [{user: c, password: c}] }",
            "C {\n    users: [{user: c, password: c}]\n    imports: [{service: {account: A, subject: \"svc\"}}]\n  }",
        );
        let e = run_to_exit("exports.conf", &service_c, &[], &[], limit);
        assert!(
            !e.success() && e.code.is_some(),
            "started: {:?}\n{}",
            e.code,
            e.output
        );
        let e = run_to_exit("exports.conf", &service_c, &[], &["-t"], limit);
        assert!(!e.success(), "-t accepted it:\n{}", e.output);
        // The listed account may import it.
        let stream_b = conf("").replace(
            "B { users: [{user: b, password: b}] }",
            "B {\n    users: [{user: b, password: b}]\n    imports: [{stream: {account: A, subject: \"events.>\"}}, {service: {account: A, subject: \"svc\"}}]\n  }",
        );
        let srv = Server::with_config(&stream_b, &[]);
        let mut a = user(srv.port(), "a", "a");
        let mut b = user(srv.port(), "b", "b");
        b.send(b"SUB events.> 1\r\n");
        b.sync();
        a.send(b"PUB events.1 1\r\n1\r\n");
        a.sync();
        line(&mut b, "MSG events.1 1 1");
        line(&mut b, "1");
    });
}

#[test]
fn user_in_two_accounts_fails_startup() {
    with_timeout(LIMIT, || {
        let conf = r#"
accounts {
  A { users: [{user: dup, password: a}] }
  B { users: [{user: dup, password: b}] }
}
"#;
        let e = run_to_exit("dup.conf", conf, &[], &[], Duration::from_secs(10));
        assert!(
            !e.success() && e.code.is_some(),
            "started: {:?}\n{}",
            e.code,
            e.output
        );
        assert!(e.output.contains("dup"), "user not named:\n{}", e.output);
        let e = run_to_exit("dup.conf", conf, &[], &["-t"], Duration::from_secs(10));
        assert!(!e.success(), "-t accepted it:\n{}", e.output);
    });
}

#[test]
fn no_auth_user_must_exist() {
    with_timeout(LIMIT, || {
        let e = run_to_exit(
            "noauth.conf",
            "authorization { users: [{user: a, password: b}] }\nno_auth_user: ghost\n",
            &[],
            &[],
            Duration::from_secs(10),
        );
        assert!(
            !e.success() && e.code.is_some(),
            "started: {:?}\n{}",
            e.code,
            e.output
        );
        assert!(e.output.contains("ghost"), "user not named:\n{}", e.output);
    });
}

// ------------------------------------------------ imports: mapped subjects, request info

const MAPPED_IMPORTS: &str = r#"
accounts {
  A {
    users: [
      {user: a, password: a}
      {user: limited, password: l, permissions: {publish: "foo", subscribe: ">"}}
      {user: answers, password: r, permissions: {publish: "foo", subscribe: ">", allow_responses: true}}
    ]
    exports: [
      {service: "svc.*.req"}
      {service: "multi.*.*"}
      {service: "shared.*"}
      {service: "fixed.svc"}
      {stream: "ev.*.*"}
      {stream: "wide.>"}
    ]
  }
  B {
    users: [{user: b, password: b}]
    imports: [
      {service: {account: A, subject: "svc.*.req"}, to: "local.*.ask"}
      {service: {account: A, subject: "multi.*.*"}, to: "m.$2.$1"}
      {service: {account: A, subject: "shared.*"}, to: "sh.*", share: true}
      {service: {account: A, subject: "fixed.svc"}, to: "fx.*"}
      {stream: {account: A, subject: "ev.*.*"}, to: "got.$2.$1"}
      {stream: {account: A, subject: "wide.>"}, to: "narrow.>"}
    ]
  }
}
"#;

/// One message: its control line split into words, then its body (header
/// block and payload together) without the final CRLF.
fn read_msg(r: &mut Raw) -> (Vec<String>, Vec<u8>) {
    let head = r.next_line();
    let words: Vec<String> = head.split(' ').map(str::to_string).collect();
    let total: usize = words.last().unwrap().parse().expect("message size");
    let mut body = r.read_exact_bytes(total + 2);
    assert_eq!(&body[total..], b"\r\n", "{head}");
    body.truncate(total);
    (words, body)
}

/// An HMSG's header block and payload, checking the sizes it announced.
fn split_hmsg(words: &[String], body: &[u8]) -> (String, Vec<u8>) {
    assert_eq!(words[0], "HMSG", "{words:?}");
    let n = words.len();
    let hdr_len: usize = words[n - 2].parse().unwrap();
    assert_eq!(words[n - 1].parse::<usize>().unwrap(), body.len());
    (
        String::from_utf8(body[..hdr_len].to_vec()).unwrap(),
        body[hdr_len..].to_vec(),
    )
}

/// The `Nats-Request-Info` JSON of a header block that ends with it, and
/// its keys in the order they are written.
fn request_info(
    hdr: &str,
    before: &str,
) -> (serde_json::Map<String, serde_json::Value>, Vec<String>) {
    let want = format!("NATS/1.0\r\n{before}Nats-Request-Info: ");
    assert!(hdr.starts_with(&want), "header block {hdr:?}");
    let json = hdr[want.len()..]
        .strip_suffix("\r\n\r\n")
        .expect("header end");
    assert!(
        !json.contains("\r\n"),
        "more headers after the info: {hdr:?}"
    );
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(json).expect("request info is JSON");
    let mut keys: Vec<(usize, String)> = map
        .keys()
        .map(|k| (json.find(&format!("\"{k}\":")).expect("key"), k.clone()))
        .collect();
    keys.sort();
    (map, keys.into_iter().map(|(_, k)| k).collect())
}

#[test]
fn imports_map_differing_wildcard_subjects_token_by_token() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(MAPPED_IMPORTS, &[]);
        let mut a = user(srv.port(), "a", "a");
        let mut b = user(srv.port(), "b", "b");
        a.send(b"SUB svc.*.req 1\r\nSUB multi.> 2\r\nSUB fixed.> 3\r\n");
        a.sync();
        b.send(b"SUB got.> 1\r\nSUB narrow.> 2\r\n");
        b.sync();
        // Streams: the exporter's tokens land where the import's `to` puts them.
        a.send(b"PUB ev.x.y 2\r\ne1\r\nPUB wide.p.q.r 2\r\ne2\r\nPUB ev.x 2\r\nno\r\n");
        a.sync();
        line(&mut b, "MSG got.y.x 1 2");
        line(&mut b, "e1");
        line(&mut b, "MSG narrow.p.q.r 2 2");
        line(&mut b, "e2");
        quiet(&mut b);
        // Services: the local subject's wildcards fill the export's.
        b.send(b"PUB local.q.ask 2\r\nr1\r\nPUB m.one.two 2\r\nr2\r\n");
        b.sync();
        let (w, body) = read_msg(&mut a);
        assert_eq!(w[..3], ["HMSG", "svc.q.req", "1"]);
        assert_eq!(split_hmsg(&w, &body).1, b"r1");
        let (w, body) = read_msg(&mut a);
        assert_eq!(w[..3], ["HMSG", "multi.two.one", "2"]);
        assert_eq!(split_hmsg(&w, &body).1, b"r2");
        // A literal export takes every subject of a wildcard local one.
        b.send(b"PUB fx.any 2\r\nr3\r\n");
        b.sync();
        let (w, body) = read_msg(&mut a);
        assert_eq!(w[..3], ["HMSG", "fixed.svc", "3"]);
        assert_eq!(split_hmsg(&w, &body).1, b"r3");
        quiet(&mut a);
        // Subjects outside the imports' local patterns stay in B.
        b.send(b"PUB local.q.other 1\r\nx\r\nPUB m.one 1\r\nx\r\nPUB svc.q.req 1\r\nx\r\n");
        b.sync();
        quiet(&mut a);
    });
}

#[test]
fn imports_whose_subjects_cannot_be_mapped_fail_startup() {
    with_timeout(LIMIT, || {
        let limit = Duration::from_secs(10);
        for import in [
            // A wildcard export needs its wildcards in the local subject...
            r#"{service: {account: A, subject: "svc.*.req"}, to: "local.x"}"#,
            // ...no more of them than the export has...
            r#"{service: {account: A, subject: "svc.*.req"}, to: "local.*.*"}"#,
            // ...and `>` in both or neither.
            r#"{service: {account: A, subject: "svc.>"}, to: "local.*"}"#,
            r#"{stream: {account: A, subject: "ev.*.*"}, to: "got.*"}"#,
            r#"{stream: {account: A, subject: "ev.*.*"}, to: "got"}"#,
            r#"{stream: {account: A, subject: "ev.>"}, to: "got.*"}"#,
            r#"{stream: {account: A, subject: "ev.*.*"}, prefix: "p.*"}"#,
        ] {
            let conf = format!(
                "accounts {{\n  A {{ exports: [ {{service: \">\"}}, {{stream: \">\"}} ] }}\n  B {{ imports: [ {import} ] }}\n}}\n"
            );
            let e = run_to_exit("imports.conf", &conf, &[], &[], limit);
            assert!(
                !e.success() && e.code.is_some(),
                "{import} started: {:?}\n{}",
                e.code,
                e.output
            );
            assert!(!e.output.trim().is_empty(), "{import}: no diagnostic");
        }
        // What can be mapped starts: fewer wildcards on the local side of
        // a literal export, placeholders in any order, `>` on both sides.
        let conf = "accounts {\n  A { exports: [ {service: \">\"}, {stream: \">\"} ] }\n  B { imports: [\n    {service: {account: A, subject: \"svc.x\"}, to: \"local.*\"}\n    {service: {account: A, subject: \"svc.*.*\"}, to: \"local.$2.$1\"}\n    {service: {account: A, subject: \"svc.*.>\"}, to: \"loc.*.>\"}\n    {stream: {account: A, subject: \"ev.*.*\"}, to: \"got.$2.$1\"}\n    {stream: {account: A, subject: \"ev.>\"}, to: \"got.>\"}\n  ] }\n}\n";
        let e = run_to_exit("imports.conf", conf, &[], &["-t"], limit);
        assert!(e.success(), "refused: {}", e.output);
    });
}

#[test]
fn service_import_requests_carry_request_info_header() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(MAPPED_IMPORTS, &[]);
        let mut a = user(srv.port(), "a", "a");
        a.send(b"SUB svc.*.req 1\r\nSUB shared.* 2\r\nSUB direct 3\r\n");
        a.sync();
        let mut plain = Raw::connect(srv.port());
        plain.send(b"CONNECT {\"verbose\":false,\"headers\":false,\"user\":\"a\",\"pass\":\"a\"}\r\nSUB svc.*.req 1\r\n");
        plain.sync();
        let mut b = login(
            srv.port(),
            r#""user":"b","pass":"b","name":"bee","lang":"rust","version":"9.9""#,
        );
        let b_cid = b.info["client_id"].as_u64().expect("client_id");

        // A plain PUB becomes an HMSG whose only header is the info: the
        // requester's account and RTT (nanoseconds), nothing more.
        b.send(b"PUB local.x.ask _INBOX.1 2\r\nhi\r\n");
        b.sync();
        let (w, body) = read_msg(&mut a);
        assert_eq!(w[..3], ["HMSG", "svc.x.req", "1"]);
        assert!(w[3].starts_with("_R_."), "{w:?}");
        let (hdr, payload) = split_hmsg(&w, &body);
        assert_eq!(payload, b"hi");
        let (info, keys) = request_info(&hdr, "");
        assert_eq!(keys, ["acc", "rtt"], "{hdr}");
        assert_eq!(info["acc"], "B");
        assert!(info["rtt"].as_u64().unwrap() > 0, "{hdr}");
        // A client without headers gets the request as a plain MSG.
        let (w, body) = read_msg(&mut plain);
        assert_eq!(w[0], "MSG");
        assert_eq!(w[1..3], ["svc.x.req", "1"]);
        assert!(w[3].starts_with("_R_."), "{w:?}");
        assert_eq!(body, b"hi");

        // The publisher's headers are kept in order; an info header it
        // sent is replaced; a request without a reply gets one too.
        let hdrs = "NATS/1.0\r\nNats-Request-Info: forged\r\nFoo: bar\r\n\r\n";
        b.send(
            format!(
                "HPUB local.y.ask {} {}\r\n{hdrs}hi\r\n",
                hdrs.len(),
                hdrs.len() + 2
            )
            .as_bytes(),
        );
        b.sync();
        let (w, body) = read_msg(&mut a);
        assert_eq!(w.len(), 5, "{w:?}");
        assert_eq!(w[..3], ["HMSG", "svc.y.req", "1"]);
        let (hdr, payload) = split_hmsg(&w, &body);
        assert_eq!(payload, b"hi");
        assert_eq!(request_info(&hdr, "Foo: bar\r\n").0["acc"], "B");
        let (w, body) = read_msg(&mut plain);
        assert_eq!(
            (w[0].as_str(), w[1].as_str(), w.len()),
            ("MSG", "svc.y.req", 4)
        );
        assert_eq!(body, b"hi");

        // share: true passes the requester's details, in the reference's order.
        b.send(b"PUB sh.z _INBOX.2 2\r\nhi\r\n");
        b.sync();
        let (w, body) = read_msg(&mut a);
        assert_eq!(w[..3], ["HMSG", "shared.z", "2"]);
        let (hdr, _) = split_hmsg(&w, &body);
        let (info, keys) = request_info(&hdr, "");
        assert_eq!(
            keys,
            [
                "start",
                "host",
                "id",
                "acc",
                "user",
                "name",
                "lang",
                "ver",
                "rtt",
                "server",
                "kind",
                "client_type"
            ],
            "{hdr}"
        );
        assert_eq!(info["host"], "127.0.0.1");
        assert_eq!(info["id"].as_u64(), Some(b_cid));
        assert_eq!(
            (
                &info["acc"],
                &info["user"],
                &info["name"],
                &info["lang"],
                &info["ver"]
            ),
            (
                &"B".into(),
                &"b".into(),
                &"bee".into(),
                &"rust".into(),
                &"9.9".into()
            )
        );
        assert_eq!(info["server"], b.info["server_name"]);
        assert_eq!(
            (&info["kind"], &info["client_type"]),
            (&"Client".into(), &"nats".into())
        );
        assert!(info["start"].as_str().unwrap().ends_with('Z'), "{hdr}");

        // Within an account and across a stream import, nothing is added.
        let mut a2 = user(srv.port(), "a", "a");
        a2.send(b"PUB direct 2\r\nhi\r\n");
        a2.sync();
        line(&mut a, "MSG direct 3 2");
        line(&mut a, "hi");
        quiet(&mut a);
    });
}

#[test]
fn service_import_responses_follow_the_responders_publish_permissions() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(MAPPED_IMPORTS, &[]);
        let mut b = user(srv.port(), "b", "b");
        b.send(b"SUB _INBOX.> 1\r\n");
        b.sync();
        // A responder allowed to publish only on "foo": the mapped reply
        // subject is not covered by the export, so its answer is refused.
        let mut limited = user(srv.port(), "limited", "l");
        limited.send(b"SUB svc.*.req 1\r\n");
        limited.sync();
        b.send(b"PUB local.x.ask _INBOX.1 1\r\n1\r\n");
        b.sync();
        let (w, _) = read_msg(&mut limited);
        let reply = w[3].clone();
        assert!(reply.starts_with("_R_."), "{w:?}");
        limited.send(format!("PUB {reply} 3\r\nrep\r\n").as_bytes());
        line(&mut limited, &perm_pub(&reply));
        quiet(&mut limited);
        quiet(&mut b);
        limited.send(b"UNSUB 1\r\n");
        limited.sync();

        // With allow_responses, exactly one answer to that request passes.
        let mut answers = user(srv.port(), "answers", "r");
        answers.send(b"SUB svc.*.req 1\r\n");
        answers.sync();
        b.send(b"PUB local.y.ask _INBOX.2 1\r\n2\r\n");
        b.sync();
        let (w, _) = read_msg(&mut answers);
        let reply = w[3].clone();
        answers.send(format!("PUB {reply} 3\r\nrep\r\nPUB {reply} 4\r\nrep2\r\n").as_bytes());
        line(&mut answers, &perm_pub(&reply));
        quiet(&mut answers);
        line(&mut b, "MSG _INBOX.2 1 3");
        line(&mut b, "rep");
        quiet(&mut b);
        // Its other publish permissions are unchanged.
        answers.send(b"PUB bar 1\r\nx\r\nPUB foo 1\r\nx\r\n");
        line(&mut answers, &perm_pub("bar"));
        quiet(&mut answers);
    });
}
