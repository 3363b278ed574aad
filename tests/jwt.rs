//! Operator mode: JWT accounts and users, as a client sees them.
//!
//! Operator, account and user JWTs are minted at test time with the nkeys
//! crate and natrix's claims encoder (the Go library's tokens are checked
//! in `src/security/jwt.rs`). Every test runs against natrix and the
//! reference (`NATRIX_TEST_BIN=/usr/sbin/nats-server`); where natrix says
//! more than the reference (the cause of a refusal in its log), that part
//! is checked only against natrix.

mod common;

use std::time::Duration;

use common::jwt::*;
use common::{is_natrix, show, with_timeout, Raw, Server};
use natrix::security::auth::base64_url_encode;
use nkeys::KeyPair;
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn info_carries_a_nonce_and_requires_auth() {
    with_timeout(LIMIT, || {
        let s = Setup::new();
        let (srv, _) = s.one_account(json!({}));
        let r = Raw::connect(srv.port());
        assert_eq!(r.info["auth_required"], true);
        let nonce = r.info["nonce"].as_str().expect("nonce");
        assert!(nonce.len() >= 11, "nonce {nonce}");
        let r2 = Raw::connect(srv.port());
        assert_ne!(r2.info["nonce"], r.info["nonce"], "a nonce per connection");
    });
}

#[test]
fn users_of_one_account_talk_and_accounts_are_isolated() {
    with_timeout(LIMIT, || {
        let s = Setup::new();
        let a = KeyPair::new_account();
        let b = KeyPair::new_account();
        let (ja, jb) = (
            account_jwt(&s.op, &a, json!({})),
            account_jwt(&s.op, &b, json!({})),
        );
        let srv = Server::with_config(&s.config(&[(&a, &ja), (&b, &jb)], ""), &[]);
        let port = srv.port();
        let mut sub_a = login(port, &a, &KeyPair::new_user(), json!({}));
        let mut sub_b = login(port, &b, &KeyPair::new_user(), json!({}));
        let mut pub_a = login(port, &a, &KeyPair::new_user(), json!({}));
        sub_a.send(b"SUB x 1\r\n");
        sub_a.sync();
        sub_b.send(b"SUB x 1\r\n");
        sub_b.sync();
        pub_a.send(b"PUB x 2\r\nhi\r\n");
        pub_a.sync();
        assert_eq!(sub_a.next_line(), "MSG x 1 2");
        assert_eq!(sub_a.next_line(), "hi");
        sub_b.expect_nothing(200);
    });
}

#[test]
fn async_nats_connects_with_a_creds_file() {
    with_timeout(LIMIT, || {
        let s = Setup::new();
        let (srv, acc) = s.one_account(json!({}));
        let user = KeyPair::new_user();
        let jwt = user_jwt(&acc, &user, json!({}));
        let creds = format!(
            "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\n\
             -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
            user.seed().unwrap()
        );
        let path = srv.write_file("user.creds", &creds);
        let url = srv.url();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let nc = async_nats::ConnectOptions::with_credentials_file(path)
                .await
                .expect("creds file reads")
                .connect(url)
                .await
                .expect("connects with creds");
            let mut sub = nc.subscribe("greet").await.unwrap();
            nc.flush().await.unwrap();
            nc.publish("greet", "hello".into()).await.unwrap();
            let m =
                tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut sub))
                    .await
                    .expect("message in time")
                    .expect("message");
            assert_eq!(&m.payload[..], b"hello");
        });
    });
}

#[test]
fn every_refusal_is_an_authorization_violation_with_its_cause_logged() {
    with_timeout(LIMIT, || {
        let s = Setup::new();
        let acc = KeyPair::new_account();
        let revoked_user = KeyPair::new_user();
        let acc_jwt = account_jwt(
            &s.op,
            &acc,
            json!({"revocations": {revoked_user.public_key(): now() + 1}}),
        );
        // An account issued by an operator the server does not trust.
        let stranger_op = KeyPair::new_operator();
        let untrusted = KeyPair::new_account();
        let untrusted_jwt = account_jwt(&stranger_op, &untrusted, json!({}));
        // An account that does not allow bearer tokens.
        let strict = KeyPair::new_account();
        let strict_jwt = account_jwt(&s.op, &strict, json!({"limits": {"disallow_bearer": true}}));
        let srv = Server::with_config(
            &s.config(
                &[
                    (&acc, &acc_jwt),
                    (&untrusted, &untrusted_jwt),
                    (&strict, &strict_jwt),
                ],
                "",
            ),
            &[],
        );
        let port = srv.port();
        let u = KeyPair::new_user();

        // No JWT at all.
        let mut r = Raw::connect(port);
        r.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
        let line = r.next_line();
        assert_refused(&srv, r, line, "no user JWT");

        // A signature of something else than the nonce.
        let jwt = user_jwt(&acc, &u, json!({}));
        let (r, line) = connect_jwt_with(
            port,
            &jwt,
            None,
            json!({"sig": base64_url_encode(&u.sign(b"not the nonce").unwrap())}),
        );
        assert_refused(&srv, r, line, "signature does not match the nonce");

        // No signature, and not a bearer token.
        let (r, line) = connect_jwt(port, &jwt, None);
        assert_refused(&srv, r, line, "no signature of the nonce");

        // Expired, and not yet valid.
        let jwt = user_jwt_with(&acc, &u, json!({}), |c| c.exp = Some(now() - 10));
        let (r, line) = connect_jwt(port, &jwt, Some(&u));
        assert_refused(&srv, r, line, "expired at");
        let jwt = user_jwt_with(&acc, &u, json!({}), |c| c.nbf = Some(now() + 3600));
        let (r, line) = connect_jwt(port, &jwt, Some(&u));
        assert_refused(&srv, r, line, "not valid before");

        // An account the resolver does not know.
        let unknown = KeyPair::new_account();
        let jwt = user_jwt(&unknown, &u, json!({}));
        let (r, line) = connect_jwt(port, &jwt, Some(&u));
        assert_refused(&srv, r, line, "not found");

        // An account not issued by a trusted operator.
        let jwt = user_jwt(&untrusted, &u, json!({}));
        let (r, line) = connect_jwt(port, &jwt, Some(&u));
        assert_refused(&srv, r, line, "not issued by a trusted operator");

        // Issued by a key that is not a signing key of the account.
        let rogue = KeyPair::new_account();
        let jwt = user_jwt(&rogue, &u, json!({"issuer_account": acc.public_key()}));
        let (r, line) = connect_jwt(port, &jwt, Some(&u));
        assert_refused(&srv, r, line, "nor one of its signing keys");

        // A bearer token where the account disallows them.
        let jwt = user_jwt(&strict, &u, json!({"bearer_token": true}));
        let (r, line) = connect_jwt(port, &jwt, None);
        assert_refused(&srv, r, line, "disallows bearer tokens");

        // Revoked: the user was issued before the revocation time.
        let jwt = user_jwt(&acc, &revoked_user, json!({}));
        let (r, line) = connect_jwt(port, &jwt, Some(&revoked_user));
        assert_refused(&srv, r, line, "revoked at");

        // A source address outside the allowed networks.
        let jwt = user_jwt(&acc, &u, json!({"src": ["10.0.0.0/8"]}));
        let (r, line) = connect_jwt(port, &jwt, Some(&u));
        assert_refused(&srv, r, line, "source address 127.0.0.1 not allowed");

        // Outside the allowed times: a one-minute window two hours away.
        let later = (now() + 7200).rem_euclid(86_400);
        let hms = |t: i64| format!("{:02}:{:02}:{:02}", t / 3600, t % 3600 / 60, t % 60);
        let jwt = user_jwt(
            &acc,
            &u,
            json!({"times": [{"start": hms(later), "end": hms((later + 60) % 86_400)}],
                   "times_location": "UTC"}),
        );
        let (r, line) = connect_jwt(port, &jwt, Some(&u));
        assert_refused(&srv, r, line, "outside the allowed times");

        // Only other connection types allowed.
        let jwt = user_jwt(&acc, &u, json!({"allowed_connection_types": ["MQTT"]}));
        let (r, line) = connect_jwt(port, &jwt, Some(&u));
        assert_refused(&srv, r, line, "connection type STANDARD not allowed");

        // And the same user, properly signed, gets in.
        login(port, &acc, &u, json!({}));
    });
}

#[test]
fn bearer_tokens_need_no_signature() {
    with_timeout(LIMIT, || {
        let s = Setup::new();
        let (srv, acc) = s.one_account(json!({}));
        let u = KeyPair::new_user();
        let jwt = user_jwt(&acc, &u, json!({"bearer_token": true}));
        let (mut r, line) = connect_jwt(srv.port(), &jwt, None);
        assert_eq!(line, "PONG");
        r.send(b"SUB a 1\r\nPUB a 1\r\nx\r\n");
        assert_eq!(r.next_line(), "MSG a 1 1");
    });
}

#[test]
fn revoking_every_user_before_a_time_spares_later_ones() {
    with_timeout(LIMIT, || {
        let s = Setup::new();
        let t = now();
        let (srv, acc) = s.one_account(json!({"revocations": {"*": t}}));
        let u = KeyPair::new_user();
        let old = user_jwt_with(&acc, &u, json!({}), |c| c.iat = t - 60);
        let (r, line) = connect_jwt(srv.port(), &old, Some(&u));
        assert_refused(&srv, r, line, "revoked at");
        let new = user_jwt_with(&acc, &u, json!({}), |c| c.iat = t + 1);
        let (_r, line) = connect_jwt(srv.port(), &new, Some(&u));
        assert_eq!(line, "PONG");
    });
}

#[test]
fn user_permissions_from_the_jwt_and_account_defaults() {
    with_timeout(LIMIT, || {
        let s = Setup::new();
        let (srv, acc) = s.one_account(json!({
            "default_permissions": {"pub": {"allow": ["dflt.>"]}, "sub": {"deny": ["secret.>"]}}
        }));
        let port = srv.port();
        let mut r = login(
            port,
            &acc,
            &KeyPair::new_user(),
            json!({"pub": {"allow": ["orders.>"], "deny": ["orders.secret"]},
                   "sub": {"allow": ["orders.>", "_INBOX.>"]}}),
        );
        r.send(
            b"PUB orders.new 0\r\n\r\nPUB orders.secret 0\r\n\r\nPUB misc 0\r\n\r\nSUB misc 1\r\n",
        );
        assert_eq!(
            r.next_line(),
            "-ERR 'Permissions Violation for Publish to \"orders.secret\"'"
        );
        assert_eq!(
            r.next_line(),
            "-ERR 'Permissions Violation for Publish to \"misc\"'"
        );
        assert_eq!(
            r.next_line(),
            "-ERR 'Permissions Violation for Subscription to \"misc\"'"
        );
        r.sync();

        // A user without permissions of its own gets the account's defaults.
        let mut d = login(port, &acc, &KeyPair::new_user(), json!({}));
        d.send(b"PUB dflt.x 0\r\n\r\nPUB other 0\r\n\r\nSUB secret.x 1\r\nSUB any 2\r\n");
        assert_eq!(
            d.next_line(),
            "-ERR 'Permissions Violation for Publish to \"other\"'"
        );
        assert_eq!(
            d.next_line(),
            "-ERR 'Permissions Violation for Subscription to \"secret.x\"'"
        );
        d.sync();
    });
}

#[test]
fn signing_keys_and_scoped_templates() {
    with_timeout(LIMIT, || {
        let s = Setup::new();
        let acc = KeyPair::new_account();
        let plain = KeyPair::new_account();
        let scoped = KeyPair::new_account();
        let acc_jwt = account_jwt(
            &s.op,
            &acc,
            json!({"signing_keys": [
                plain.public_key(),
                {"kind": "user_scope", "key": scoped.public_key(), "role": "team",
                 "template": {"pub": {"allow": ["{{name()}}.>"]}, "sub": {"allow": ["{{name()}}.>"]},
                              "subs": 1, "data": -1, "payload": -1}}
            ]}),
        );
        let srv = Server::with_config(&s.config(&[(&acc, &acc_jwt)], ""), &[]);
        let port = srv.port();
        // A plain signing key: the JWT's own permissions apply.
        let mut p = login(
            port,
            &plain,
            &KeyPair::new_user(),
            json!({"issuer_account": acc.public_key(), "pub": {"allow": ["p.>"]}}),
        );
        p.send(b"PUB q 0\r\n\r\n");
        assert_eq!(
            p.next_line(),
            "-ERR 'Permissions Violation for Publish to \"q\"'"
        );

        // A scoped key: the template, filled with the user's name, applies,
        // including its subscription limit.
        let u = KeyPair::new_user();
        let jwt = mint(
            &scoped,
            &u.public_key(),
            "alice",
            json!({"type": "user", "version": 2, "issuer_account": acc.public_key()}),
            |_| {},
        );
        let (mut r, line) = connect_jwt(port, &jwt, Some(&u));
        assert_eq!(line, "PONG", "scoped user refused");
        r.send(b"PUB alice.x 0\r\n\r\nPUB bob.x 0\r\n\r\nSUB alice.> 1\r\nSUB alice.y 2\r\n");
        assert_eq!(
            r.next_line(),
            "-ERR 'Permissions Violation for Publish to \"bob.x\"'"
        );
        assert_eq!(r.next_line(), "-ERR 'maximum subscriptions exceeded'");
        r.sync();

        // A scoped key may not issue a JWT that carries permissions itself.
        let jwt = user_jwt(
            &scoped,
            &u,
            json!({"issuer_account": acc.public_key(), "pub": {"allow": [">"]}}),
        );
        let (r, line) = connect_jwt(port, &jwt, Some(&u));
        assert_refused(
            &srv,
            r,
            line,
            "scoped users require no permissions or limits set",
        );
    });
}

/// A payload limit from the JWTs binds what the client wrote right behind
/// its CONNECT, in the same packet, as the reference checks it.
#[test]
fn payload_limits_bind_a_publish_sent_with_connect() {
    with_timeout(LIMIT, || {
        let s = Setup::new();
        let (srv, acc) = s.one_account(json!({"limits": {"payload": 4}}));
        for user_limits in [json!({}), json!({"payload": 4})] {
            let u = KeyPair::new_user();
            let jwt = user_jwt(&acc, &u, user_limits);
            let mut r = Raw::connect(srv.port());
            let nonce = r.info["nonce"].as_str().unwrap().to_string();
            let sig = base64_url_encode(&u.sign(nonce.as_bytes()).unwrap());
            r.send(
                format!(
                    "CONNECT {{\"verbose\":false,\"jwt\":\"{jwt}\",\"sig\":\"{sig}\"}}\r\n\
                     SUB x 1\r\nPUB x 4\r\nabcd\r\nPUB x 5\r\nabcde\r\nPING\r\n"
                )
                .as_bytes(),
            );
            let got = r.read_until_closed(Duration::from_secs(5));
            let text = show(&got);
            assert!(
                text.contains("MSG x 1 4")
                    && text.ends_with("-ERR 'Maximum Payload Violation'\\r\\n"),
                "{text}"
            );
            assert!(!text.contains("MSG x 1 5"), "{text}");
        }
    });
}

#[test]
fn user_and_account_limits() {
    with_timeout(LIMIT, || {
        let s = Setup::new();
        let (srv, acc) = s.one_account(json!({"limits": {"conn": 2, "subs": 3}}));
        let port = srv.port();
        // User limits: 2 subscriptions, 8-byte payloads, announced in an
        // INFO right after the first PONG.
        let u = KeyPair::new_user();
        let jwt = user_jwt(&acc, &u, json!({"subs": 2, "payload": 8}));
        let (mut r, line) = connect_jwt(port, &jwt, Some(&u));
        assert_eq!(line, "PONG");
        let line = r.next_line();
        assert!(
            line.starts_with("INFO "),
            "expected an INFO update, got {line}"
        );
        let info: Value = serde_json::from_str(line[5..].trim()).unwrap();
        assert_eq!(info["max_payload"], 8);
        r.send(b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\n");
        assert_eq!(r.next_line(), "-ERR 'maximum subscriptions exceeded'");
        r.sync();
        r.send(b"PUB a 9\r\n123456789\r\n");
        assert_eq!(r.next_line(), "-ERR 'Maximum Payload Violation'");
        r.read_until_closed(Duration::from_secs(5));

        // The account's subscription limit applies when the user has none.
        let mut a = login(port, &acc, &KeyPair::new_user(), json!({}));
        a.send(b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nSUB d 4\r\n");
        assert_eq!(a.next_line(), "-ERR 'maximum subscriptions exceeded'");
        a.sync();

        // Two connections at most: the third is refused.
        let _b = login(port, &acc, &KeyPair::new_user(), json!({}));
        let u3 = KeyPair::new_user();
        let (mut c, line) = connect_jwt(port, &user_jwt(&acc, &u3, json!({})), Some(&u3));
        assert_eq!(line, "-ERR 'maximum account active connections exceeded'");
        c.read_until_closed(Duration::from_secs(5));
        // Once one leaves, there is room again.
        drop(a);
        let u4 = KeyPair::new_user();
        let jwt = user_jwt(&acc, &u4, json!({}));
        let mut ok = false;
        for _ in 0..50 {
            let (_c, line) = connect_jwt(port, &jwt, Some(&u4));
            if line == "PONG" {
                ok = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(ok, "a freed connection slot is not reused");
    });
}

#[test]
fn a_user_whose_jwt_expires_is_disconnected() {
    with_timeout(LIMIT, || {
        let s = Setup::new();
        let (srv, acc) = s.one_account(json!({}));
        let u = KeyPair::new_user();
        let jwt = user_jwt_with(&acc, &u, json!({}), |c| c.exp = Some(now() + 2));
        let (mut r, line) = connect_jwt(srv.port(), &jwt, Some(&u));
        assert_eq!(line, "PONG");
        let rest = r.read_until_closed(Duration::from_secs(6));
        let text = show(&rest);
        assert!(
            text.contains("-ERR 'User Authentication Expired'"),
            "expected the expiry error, got {text}"
        );
    });
}

#[test]
fn exports_and_imports_with_activation_tokens() {
    with_timeout(LIMIT, || {
        let s = Setup::new();
        let exporter = KeyPair::new_account();
        let importer = KeyPair::new_account();
        let outsider = KeyPair::new_account();
        let ex_jwt = account_jwt(
            &s.op,
            &exporter,
            json!({"exports": [
                {"name": "events", "subject": "events.>", "type": "stream"},
                {"name": "private", "subject": "private.>", "type": "stream", "token_req": true},
                {"name": "svc", "subject": "svc.echo", "type": "service", "token_req": true},
            ]}),
        );
        let activation = |subject: &str, kind: &str, to: &KeyPair| {
            mint(
                &exporter,
                &to.public_key(),
                subject,
                json!({"type": "activation", "version": 2, "subject": subject, "kind": kind}),
                |_| {},
            )
        };
        let imports = |who: &KeyPair, with_tokens: bool| {
            let tok = |subject: &str, kind: &str| {
                if with_tokens {
                    activation(subject, kind, who)
                } else {
                    String::new()
                }
            };
            json!({"imports": [
                {"name": "events", "subject": "events.>", "account": exporter.public_key(),
                 "type": "stream", "local_subject": "ext.events.>"},
                {"name": "private", "subject": "private.>", "account": exporter.public_key(),
                 "type": "stream", "token": tok("private.>", "stream")},
                {"name": "svc", "subject": "svc.echo", "account": exporter.public_key(),
                 "type": "service", "local_subject": "echo", "token": tok("svc.echo", "service")},
            ]})
        };
        let im_jwt = account_jwt(&s.op, &importer, imports(&importer, true));
        let out_jwt = account_jwt(&s.op, &outsider, imports(&outsider, false));
        let srv = Server::with_config(
            &s.config(
                &[
                    (&exporter, &ex_jwt),
                    (&importer, &im_jwt),
                    (&outsider, &out_jwt),
                ],
                "",
            ),
            &[],
        );
        let port = srv.port();
        let mut ex = login(port, &exporter, &KeyPair::new_user(), json!({}));
        let mut im = login(port, &importer, &KeyPair::new_user(), json!({}));
        let mut out = login(port, &outsider, &KeyPair::new_user(), json!({}));
        for c in [&mut im, &mut out] {
            c.send(b"SUB ext.events.> 1\r\nSUB private.> 2\r\nSUB _INBOX.> 3\r\n");
            c.sync();
        }
        ex.send(b"SUB svc.echo 9\r\n");
        ex.sync();
        ex.send(b"PUB events.a 1\r\na\r\nPUB private.b 1\r\nb\r\n");
        ex.sync();
        // The importer sees the public stream under its local subject and
        // the private one thanks to its activation.
        assert_eq!(im.next_line(), "MSG ext.events.a 1 1");
        assert_eq!(im.next_line(), "a");
        assert_eq!(im.next_line(), "MSG private.b 2 1");
        assert_eq!(im.next_line(), "b");
        // The outsider, without tokens, only the public one.
        assert_eq!(out.next_line(), "MSG ext.events.a 1 1");
        assert_eq!(out.next_line(), "a");
        out.expect_nothing(200);

        // The service: the importer's request reaches the exporter.
        im.send(b"PUB echo _INBOX.r1 4\r\nping\r\n");
        im.sync();
        // It arrives with the reference's Nats-Request-Info header naming
        // the requesting account.
        let req = ex.next_line();
        let parts: Vec<&str> = req.split(' ').collect();
        assert_eq!(&parts[..3], ["HMSG", "svc.echo", "9"], "exporter got {req}");
        let reply = parts[3].to_string();
        let (hlen, total): (usize, usize) = (parts[4].parse().unwrap(), parts[5].parse().unwrap());
        let body = ex.read_exact_bytes(total + 2);
        let headers = String::from_utf8_lossy(&body[..hlen]).to_string();
        assert!(
            headers.starts_with("NATS/1.0\r\nNats-Request-Info: {"),
            "{headers}"
        );
        assert!(
            headers.contains(&format!("\"acc\":\"{}\"", importer.public_key())),
            "{headers}"
        );
        assert_eq!(&body[hlen..total], b"ping");
        ex.send(format!("PUB {reply} 4\r\npong\r\n").as_bytes());
        ex.sync();
        assert_eq!(im.next_line(), "MSG _INBOX.r1 3 4");
        assert_eq!(im.next_line(), "pong");
        // The outsider's request goes nowhere: no responders.
        out.send(b"PUB echo _INBOX.r2 4\r\nping\r\n");
        assert_eq!(out.next_line(), "HMSG _INBOX.r2 3 16 16");
        assert_eq!(out.read_exact_bytes(18), b"NATS/1.0 503\r\n\r\n\r\n");
        ex.expect_nothing(200);
    });
}

#[test]
fn config_account_limits_are_enforced() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(
            "accounts {\n  A {\n    users: [ {user: a, password: a}, {user: b, password: b} ]\n    limits: { max_connections: 1, max_subscriptions: 1, max_payload: 4 }\n  }\n}\n",
            &[],
        );
        let port = srv.port();
        let mut a = Raw::connect(port);
        a.send(
            b"CONNECT {\"verbose\":false,\"user\":\"a\",\"pass\":\"a\",\"protocol\":1}\r\nPING\r\n",
        );
        assert_eq!(a.next_line(), "PONG");
        let line = a.next_line();
        assert!(
            line.starts_with("INFO "),
            "expected an INFO update, got {line}"
        );
        assert!(line.contains("\"max_payload\":4"), "{line}");
        a.send(b"SUB x 1\r\nSUB y 2\r\n");
        assert_eq!(a.next_line(), "-ERR 'maximum subscriptions exceeded'");
        a.sync();
        let mut b = Raw::connect(port);
        b.send(b"CONNECT {\"verbose\":false,\"user\":\"b\",\"pass\":\"b\"}\r\nPING\r\n");
        assert_eq!(
            b.next_line(),
            "-ERR 'maximum account active connections exceeded'"
        );
        a.send(b"PUB x 5\r\n12345\r\n");
        assert_eq!(a.next_line(), "-ERR 'Maximum Payload Violation'");
    });
}

#[test]
fn a_bad_operator_jwt_is_refused_at_start_naming_the_file() {
    with_timeout(LIMIT, || {
        let op = KeyPair::new_operator();
        let mut jwt = operator_jwt(&op, json!({}));
        // Break the signature.
        jwt.truncate(jwt.len() - 4);
        jwt.push_str("AAAA");
        let dir = common::TempDir::new("badop");
        let path = dir.path().join("op.jwt");
        std::fs::write(&path, &jwt).unwrap();
        let exit = common::run_to_exit(
            "server.conf",
            &format!("operator: \"{}\"\nresolver: MEMORY\n", path.display()),
            &[],
            &["-t"],
            Duration::from_secs(20),
        );
        assert!(
            !exit.success(),
            "a forged operator JWT must not pass: {}",
            exit.output
        );
        if is_natrix() {
            assert!(
                exit.output.contains("op.jwt") && exit.output.contains("signature"),
                "natrix names the file and the reason: {}",
                exit.output
            );
        }
    });
}

#[test]
fn account_updates_revoke_users_and_tighten_limits_at_once() {
    with_timeout(LIMIT, || {
        let s = Setup::new();
        let acc = KeyPair::new_account();
        let jwt1 = account_jwt(&s.op, &acc, json!({}));
        let srv = Server::with_config(&s.config(&[(&acc, &jwt1)], ""), &[]);
        let port = srv.port();
        let (u1, u2, u3) = (
            KeyPair::new_user(),
            KeyPair::new_user(),
            KeyPair::new_user(),
        );
        let mut c1 = login(port, &acc, &u1, json!({}));
        let mut c2 = login(port, &acc, &u2, json!({}));
        let mut c3 = login(port, &acc, &u3, json!({}));

        // The account JWT now revokes u1: it is closed at once.
        let jwt2 = account_jwt_with(
            &s.op,
            &acc,
            json!({"revocations": {u1.public_key(): now() + 1}}),
            |c| c.iat = now(),
        );
        srv.reload_with(&s.config(&[(&acc, &jwt2)], ""));
        let got = show(&c1.read_until_closed(Duration::from_secs(5)));
        assert!(
            got.contains("-ERR 'User Authentication Revoked'"),
            "revoked user got {got}"
        );
        c2.sync();
        c3.sync();

        // Then it allows one connection: the older one goes, the newest
        // stays.
        let jwt3 = account_jwt_with(
            &s.op,
            &acc,
            json!({"revocations": {u1.public_key(): now() + 1}, "limits": {"conn": 1}}),
            |c| c.iat = now() + 1,
        );
        srv.reload_with(&s.config(&[(&acc, &jwt3)], ""));
        let got = show(&c2.read_until_closed(Duration::from_secs(5)));
        assert!(
            got.contains("-ERR 'maximum account active connections exceeded'"),
            "older connection got {got}"
        );
        c3.sync();
    });
}

/// Tokens made by the Go jwt library (tests/fixtures/gojwt/main.go), not by
/// natrix: an operator, an account with a signing key and a connection
/// limit of 2, a user of the signing key and a bearer user.
const GO_CONF: &str = include_str!("fixtures/gojwt/server.conf");
const GO_WORKER_CREDS: &str = include_str!("fixtures/gojwt/worker.creds");
const GO_BEARER_JWT: &str = include_str!("fixtures/gojwt/bearer.jwt");

#[test]
fn tokens_made_by_the_go_library_work_as_in_the_reference() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(GO_CONF, &[]);
        let port = srv.port();
        let creds = natrix::security::jwt::parse_creds(GO_WORKER_CREDS).unwrap();
        let worker = KeyPair::from_seed(&creds.seed).unwrap();
        let (mut w, line) = connect_jwt(port, &creds.jwt, Some(&worker));
        assert_eq!(line, "PONG");
        w.send(b"PUB billing 0\r\n\r\nSUB orders.secret 1\r\nSUB orders.> 2\r\nSUB _INBOX.> 3\r\n");
        assert_eq!(
            w.next_line(),
            "-ERR 'Permissions Violation for Publish to \"billing\"'"
        );
        assert_eq!(
            w.next_line(),
            "-ERR 'Permissions Violation for Subscription to \"orders.secret\"'"
        );
        w.sync();
        w.send(b"SUB orders.a 4\r\nSUB orders.b 5\r\n");
        assert_eq!(w.next_line(), "-ERR 'maximum subscriptions exceeded'");
        w.sync();

        let (mut b, line) = connect_jwt(port, GO_BEARER_JWT.trim(), None);
        assert_eq!(line, "PONG");
        b.send(b"PUB orders.new 2\r\nhi\r\n");
        b.sync();
        assert_eq!(w.next_line(), "MSG orders.new 2 2");
        assert_eq!(w.next_line(), "hi");

        // The account allows two connections.
        let (_c, line) = connect_jwt(port, GO_BEARER_JWT.trim(), None);
        assert_eq!(line, "-ERR 'maximum account active connections exceeded'");

        // And async-nats connects with the creds file as written by Go.
        drop(b);
        let path = srv.write_file("worker.creds", GO_WORKER_CREDS);
        let url = srv.url();
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                let mut last = None;
                for _ in 0..50 {
                    let opts = async_nats::ConnectOptions::with_credentials_file(path.clone())
                        .await
                        .expect("creds file reads");
                    match opts.connect(url.clone()).await {
                        Ok(nc) => {
                            nc.publish("orders.x", "y".into()).await.unwrap();
                            nc.flush().await.unwrap();
                            return;
                        }
                        // The bearer connection may still be closing.
                        Err(e) => last = Some(e),
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                panic!("async-nats could not connect: {last:?}");
            });
    });
}

#[test]
fn trusted_keys_stand_in_for_an_operator_jwt() {
    with_timeout(LIMIT, || {
        let op = KeyPair::new_operator();
        let acc = KeyPair::new_account();
        let acc_jwt = account_jwt(&op, &acc, json!({}));
        let conf = format!(
            "trusted_keys: [\"{}\"]\nresolver: MEMORY\nresolver_preload: {{\n  {}: {acc_jwt}\n}}\n",
            op.public_key(),
            acc.public_key()
        );
        let srv = Server::with_config(&conf, &[]);
        let mut c = login(srv.port(), &acc, &KeyPair::new_user(), json!({}));
        c.send(b"SUB t 1\r\nPUB t 1\r\nx\r\n");
        assert_eq!(c.next_line(), "MSG t 1 1");
        // An account of another operator is not trusted.
        let other = KeyPair::new_account();
        let u = KeyPair::new_user();
        let (r, line) = connect_jwt(srv.port(), &user_jwt(&other, &u, json!({})), Some(&u));
        assert_refused(&srv, r, line, "not found");
    });
}

#[test]
fn an_expiring_account_disconnects_its_users() {
    with_timeout(LIMIT, || {
        let s = Setup::new();
        let acc = KeyPair::new_account();
        // Far enough ahead that a slow start still finds it valid.
        let jwt = account_jwt_with(&s.op, &acc, json!({}), |c| c.exp = Some(now() + 5));
        let srv = Server::with_config(&s.config(&[(&acc, &jwt)], ""), &[]);
        let mut c = login(srv.port(), &acc, &KeyPair::new_user(), json!({}));
        let rest = show(&c.read_until_closed(Duration::from_secs(12)));
        assert!(
            rest.contains("-ERR 'Account Authentication Expired'"),
            "expected the account expiry error, got {rest}"
        );
    });
}
