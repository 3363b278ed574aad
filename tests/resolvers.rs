//! Account resolvers beyond MEMORY, as a client and the filesystem see
//! them: an account server over HTTP (`resolver: URL(...)`, served here by
//! a small HTTP thread on 127.0.0.1 that counts its requests) and a
//! directory of JWTs (`resolver { type: full | cache, dir }`) in the
//! reference's layout. Every test runs against natrix and the reference
//! (`NATRIX_TEST_BIN=/usr/sbin/nats-server`); what only natrix says (the
//! cause of a refusal in its log, its `resolver_cache` block) is checked
//! only against natrix.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::jwt::{account_jwt, connect_jwt, operator_jwt, user_jwt};
use common::{is_natrix, run_to_exit, shard_flags, with_timeout, Launch, Raw, Server, TempDir};
use natrix::security::operator::AccountResolver;
use natrix::security::resolver::DirResolver;
use nkeys::KeyPair;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(90);
const BASE: &str = "/jwt/v1/accounts/";

/// Connects a new user of `acc`, signing the nonce; sends CONNECT and
/// PING and returns the client and the first line answered.
fn connect_user(port: u16, acc: &KeyPair) -> (Raw, String) {
    let user = KeyPair::new_user();
    connect_jwt(port, &user_jwt(acc, &user, json!({})), Some(&user))
}

fn assert_refused(srv: &Server, (mut r, line): (Raw, String), causes: &[&str]) {
    assert_eq!(line, "-ERR 'Authorization Violation'");
    r.read_until_closed(Duration::from_secs(5));
    if is_natrix() {
        for cause in causes {
            assert!(
                srv.wait_for_log(cause, Duration::from_secs(5)),
                "natrix log does not name {cause:?}:\n{}",
                srv.log()
            );
        }
    }
}

/// An account server on 127.0.0.1: GET BASE answers 200, BASE + key the
/// JWT stored for it (after its delay, if any) or 404. Counts requests by
/// path. Stops when dropped.
struct AccountServer {
    port: u16,
    https: bool,
    jwts: Arc<Mutex<HashMap<String, (String, Duration)>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    stop: Arc<AtomicBool>,
}

impl AccountServer {
    fn start() -> AccountServer {
        Self::start_with(None)
    }

    /// The same over TLS (`https://`), with this server configuration.
    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> AccountServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let s = AccountServer {
            port: l.local_addr().unwrap().port(),
            https: tls.is_some(),
            jwts: Arc::default(),
            hits: Arc::default(),
            stop: Arc::default(),
        };
        let (jwts, hits, stop) = (s.jwts.clone(), s.hits.clone(), s.stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((c, _)) => {
                        let (jwts, hits, tls) = (jwts.clone(), hits.clone(), tls.clone());
                        std::thread::spawn(move || {
                            c.set_nonblocking(false).unwrap();
                            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                            match tls {
                                None => serve_one(c, &jwts, &hits),
                                Some(cfg) => {
                                    let conn = rustls::ServerConnection::new(cfg).unwrap();
                                    let mut t = rustls::StreamOwned::new(conn, c);
                                    serve_one(&mut t, &jwts, &hits);
                                    t.conn.send_close_notify();
                                    let _ = t.flush();
                                }
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        s
    }

    fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{BASE}", self.port)
    }

    fn put(&self, acc: &KeyPair, jwt: &str, delay: Duration) {
        self.jwts
            .lock()
            .unwrap()
            .insert(acc.public_key(), (jwt.to_string(), delay));
    }

    fn hits(&self, acc: &KeyPair) -> usize {
        let path = format!("{BASE}{}", acc.public_key());
        *self.hits.lock().unwrap().get(&path).unwrap_or(&0)
    }
}

impl Drop for AccountServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve_one(
    mut c: impl Read + Write,
    jwts: &Mutex<HashMap<String, (String, Duration)>>,
    hits: &Mutex<HashMap<String, usize>>,
) {
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 65536 {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&req);
    let path = text.split(' ').nth(1).unwrap_or("").to_string();
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let answer = if path == BASE {
        Some((String::new(), Duration::ZERO))
    } else {
        path.strip_prefix(BASE)
            .and_then(|k| jwts.lock().unwrap().get(k).cloned())
    };
    let resp = match answer {
        Some((body, delay)) => {
            std::thread::sleep(delay);
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
        None => {
            "HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nnot found\n"
                .to_string()
        }
    };
    let _ = c.write_all(resp.as_bytes());
}

#[test]
fn url_resolver_serves_accounts_and_remembers_them() {
    with_timeout(LIMIT, || {
        let op = KeyPair::new_operator();
        let acc = KeyPair::new_account();
        let web = AccountServer::start();
        web.put(&acc, &account_jwt(&op, &acc, json!({})), Duration::ZERO);
        let conf = format!(
            "operator: {}\nresolver: URL({})\n",
            operator_jwt(&op, json!({})),
            web.url()
        );
        let srv = Server::with_config(&conf, &[]);
        let port = srv.port();

        let (mut a, line) = connect_user(port, &acc);
        assert_eq!(line, "PONG");
        let (mut b, line) = connect_user(port, &acc);
        assert_eq!(line, "PONG");
        a.send(b"SUB greet 1\r\nPING\r\n");
        assert_eq!(a.next_line(), "PONG");
        b.send(b"PUB greet 2\r\nhi\r\nPING\r\n");
        assert_eq!(b.next_line(), "PONG");
        assert_eq!(a.next_line(), "MSG greet 1 2");
        assert_eq!(a.next_line(), "hi");
        // Both servers asked the account server once for the account.
        assert_eq!(web.hits(&acc), 1, "the account JWT is fetched once");

        // An account the server does not know: refused, the log says who
        // was asked and what it answered.
        let unknown = KeyPair::new_account();
        assert_refused(
            &srv,
            connect_user(port, &unknown),
            &[
                &format!("account {} not found", unknown.public_key()),
                &format!("asked the URL resolver {}", web.url()),
                "HTTP status 404 Not Found",
            ],
        );
        assert!(web.hits(&unknown) >= 1);

        // A JWT the account server has but no trusted operator signed.
        let stranger = KeyPair::new_operator();
        let untrusted = KeyPair::new_account();
        web.put(
            &untrusted,
            &account_jwt(&stranger, &untrusted, json!({})),
            Duration::ZERO,
        );
        assert_refused(
            &srv,
            connect_user(port, &untrusted),
            &[
                "not issued by a trusted operator (JWT from the URL resolver",
                &format!("signed by operator key {}", stranger.public_key()),
            ],
        );
    });
}

/// A CA named `name` (written to `dir/ca.pem`) and a server configuration
/// with a certificate it issued for 127.0.0.1.
fn https_pki(dir: &Path, name: &str) -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
        KeyUsagePurpose, SanType,
    };
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = p.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    p.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().unwrap())];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
    )
    .unwrap();
    (ca_path.to_string_lossy().into_owned(), Arc::new(config))
}

#[test]
fn https_url_resolver_trusts_the_resolver_tls_ca() {
    with_timeout(LIMIT, || {
        let dir = TempDir::new("https-resolver");
        let (ca, tls) = https_pki(dir.path(), "Account Server CA");
        let op = KeyPair::new_operator();
        let acc = KeyPair::new_account();
        let web = AccountServer::start_with(Some(tls));
        web.put(&acc, &account_jwt(&op, &acc, json!({})), Duration::ZERO);
        let op_jwt = operator_jwt(&op, json!({}));

        // Trusting the account server's CA: accounts are fetched over TLS.
        let conf = format!(
            "operator: {op_jwt}\nresolver: URL({})\nresolver_tls {{ ca_file: \"{ca}\" }}\n",
            web.url()
        );
        let srv = Server::with_config(&conf, &[]);
        let (mut a, line) = connect_user(srv.port(), &acc);
        assert_eq!(line, "PONG");
        a.send(b"SUB greet 1\r\nPUB greet 2\r\nhi\r\nPING\r\n");
        assert_eq!(a.next_line(), "MSG greet 1 2");
        assert_eq!(web.hits(&acc), 1, "the account JWT is fetched once");
        drop(srv);

        // Without resolver_tls, the system's roots: here SSL_CERT_FILE,
        // which both servers honour.
        let conf = format!("operator: {op_jwt}\nresolver: URL({})\n", web.url());
        let srv = Server::start_with(&Launch {
            conf: Some(&conf),
            env: &[("SSL_CERT_FILE", &ca)],
            ..Launch::default()
        });
        let (_b, line) = connect_user(srv.port(), &acc);
        assert_eq!(line, "PONG");
        drop(srv);

        // insecure: the certificate is not checked.
        let conf = format!(
            "operator: {op_jwt}\nresolver: URL({})\nresolver_tls {{ insecure: true }}\n",
            web.url()
        );
        let srv = Server::with_config(&conf, &[]);
        let (_b, line) = connect_user(srv.port(), &acc);
        assert_eq!(line, "PONG");
        drop(srv);

        // Not trusting it (a CA of its own that did not sign the account
        // server's certificate): the server does not start.
        let other = TempDir::new("https-resolver-other");
        let (other_ca, _) = https_pki(other.path(), "Some Other CA");
        let conf = format!(
            "operator: {op_jwt}\nresolver: URL({})\nresolver_tls {{ ca_file: \"{other_ca}\" }}\n",
            web.url()
        );
        let exit = run_to_exit("s.conf", &conf, &[], &[], Duration::from_secs(20));
        assert!(
            !exit.success(),
            "started with an untrusted account server:\n{}",
            exit.output
        );
        if is_natrix() {
            assert!(exit.output.contains(&web.url()), "{}", exit.output);
            assert!(exit.output.contains("UnknownIssuer"), "{}", exit.output);
        }
    });
}

#[test]
fn url_resolver_timeouts_and_remembered_refusals() {
    with_timeout(LIMIT, || {
        let op = KeyPair::new_operator();
        let slow = KeyPair::new_account();
        let fine = KeyPair::new_account();
        let web = AccountServer::start();
        // Answers after the fetch timeout (1.9s in both servers).
        web.put(
            &slow,
            &account_jwt(&op, &slow, json!({})),
            Duration::from_millis(3000),
        );
        web.put(&fine, &account_jwt(&op, &fine, json!({})), Duration::ZERO);
        let mut conf = format!(
            "operator: {}\nresolver: URL({})\n",
            operator_jwt(&op, json!({})),
            web.url()
        );
        if is_natrix() {
            conf.push_str("resolver_cache { ttl: \"1m\", negative_ttl: \"30s\" }\n");
        }
        let flags = shard_flags(1);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let srv = Server::with_config(&conf, &flags);
        let port = srv.port();

        // While one CONNECT waits for the account server, another client
        // is served.
        let started = Instant::now();
        let waiting = std::thread::spawn(move || {
            let (r, line) = connect_user(port, &slow);
            (r, line, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(200));
        let (_c, line) = connect_user(port, &fine);
        assert_eq!(line, "PONG");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "a client waited for another one's account fetch"
        );
        let (r, line, took) = waiting.join().unwrap();
        assert!(
            took >= Duration::from_millis(1500),
            "refused before the timeout: {took:?}"
        );
        assert_refused(&srv, (r, line), &["no answer within 1.9s"]);

        // natrix remembers the refusal: the account server is not asked
        // again within negative_ttl, and the log says the answer is a
        // remembered one.
        let unknown = KeyPair::new_account();
        for _ in 0..3 {
            assert_refused(
                &srv,
                connect_user(port, &unknown),
                &["HTTP status 404 Not Found"],
            );
        }
        if is_natrix() {
            assert_eq!(web.hits(&unknown), 1, "negative answers are remembered");
            assert!(srv.wait_for_log(
                "remembered for 30s by resolver_cache",
                Duration::from_secs(5)
            ));
        } else {
            assert_eq!(web.hits(&unknown), 3, "the reference asks every time");
        }
    });
}

#[test]
fn url_resolver_must_answer_at_start_and_takes_no_preloads() {
    with_timeout(LIMIT, || {
        let op = KeyPair::new_operator();
        // Nobody listens there.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = format!(
            "operator: {}\nresolver: URL(http://127.0.0.1:{port}{BASE})\n",
            operator_jwt(&op, json!({}))
        );
        let exit = run_to_exit("s.conf", &conf, &[], &[], Duration::from_secs(20));
        assert!(!exit.success(), "{}", exit.output);
        assert!(exit.output.contains("could not fetch"), "{}", exit.output);

        let web = AccountServer::start();
        let acc = KeyPair::new_account();
        let conf = format!(
            "operator: {}\nresolver: URL({})\nresolver_preload: {{ {}: {} }}\n",
            operator_jwt(&op, json!({})),
            web.url(),
            acc.public_key(),
            account_jwt(&op, &acc, json!({}))
        );
        let exit = run_to_exit("s.conf", &conf, &[], &[], Duration::from_secs(20));
        assert!(!exit.success(), "{}", exit.output);
        assert!(
            exit.output
                .contains("resolver preloads only available for writeable resolver types"),
            "{}",
            exit.output
        );
    });
}

/// A directory resolver needs a system account (both servers refuse to
/// start without one).
fn dir_conf(op_jwt: &str, kind: &str, dir: &Path, extra: &str) -> String {
    format!(
        "operator: {op_jwt}\nsystem_account: {}\nresolver {{\n  type: {kind}\n  dir: \"{}\"\n{extra}}}\n",
        KeyPair::new_account().public_key(),
        dir.display()
    )
}

#[test]
fn full_dir_resolver_reads_files_in_the_reference_layout() {
    with_timeout(LIMIT, || {
        let op = KeyPair::new_operator();
        let acc = KeyPair::new_account();
        let jwts = TempDir::new("jwtdir");
        // As nats-server (and nsc) write it: <dir>/<account key>.jwt.
        std::fs::write(
            jwts.path().join(format!("{}.jwt", acc.public_key())),
            account_jwt(&op, &acc, json!({})),
        )
        .unwrap();
        let srv = Server::with_config(
            &dir_conf(&operator_jwt(&op, json!({})), "full", jwts.path(), ""),
            &[],
        );
        let (_r, line) = connect_user(srv.port(), &acc);
        assert_eq!(line, "PONG");

        let unknown = KeyPair::new_account();
        let dir = std::fs::canonicalize(jwts.path()).unwrap();
        assert_refused(
            &srv,
            connect_user(srv.port(), &unknown),
            &[
                &format!("account {} not found", unknown.public_key()),
                &format!(
                    "asked the full directory resolver {}, which answered: no file {}/{}.jwt",
                    dir.display(),
                    dir.display(),
                    unknown.public_key()
                ),
            ],
        );
    });
}

#[test]
fn dir_written_by_either_server_serves_the_other() {
    with_timeout(LIMIT, || {
        let op = KeyPair::new_operator();
        let op_jwt = operator_jwt(&op, json!({}));
        // 1. The server under test stores resolver_preload into the
        //    directory; the file is what natrix's store reads.
        let acc = KeyPair::new_account();
        let acc_jwt = account_jwt(&op, &acc, json!({}));
        let jwts = TempDir::new("jwtdir");
        let dir = jwts.path().join("store");
        let conf = format!(
            "{}resolver_preload: {{ {}: {acc_jwt} }}\n",
            dir_conf(&op_jwt, "full", &dir, ""),
            acc.public_key()
        );
        {
            let srv = Server::with_config(&conf, &[]);
            let (_r, line) = connect_user(srv.port(), &acc);
            assert_eq!(line, "PONG");
        }
        let file = dir.join(format!("{}.jwt", acc.public_key()));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), acc_jwt);
        let store =
            DirResolver::open(&dir, natrix::config::DirResolverKind::Full, false, 0, None).unwrap();
        assert_eq!(store.fetch(&acc.public_key()).unwrap(), acc_jwt);

        // 2. natrix's store writes an account; the server under test (the
        //    reference too) serves its users after a restart.
        let other = KeyPair::new_account();
        store
            .store(&other.public_key(), &account_jwt(&op, &other, json!({})))
            .unwrap();
        drop(store);
        let srv = Server::with_config(&dir_conf(&op_jwt, "full", &dir, ""), &[]);
        let (_r, line) = connect_user(srv.port(), &other);
        assert_eq!(line, "PONG");
        let (_r, line) = connect_user(srv.port(), &acc);
        assert_eq!(line, "PONG");
    });
}

#[test]
fn cache_dir_resolver_keeps_at_most_limit_files() {
    with_timeout(LIMIT, || {
        let op = KeyPair::new_operator();
        let jwts = TempDir::new("jwtdir");
        let dir = jwts.path().join("cache");
        let (a, b) = (KeyPair::new_account(), KeyPair::new_account());
        let conf = format!(
            "{}resolver_preload: {{\n  {}: {}\n  {}: {}\n}}\n",
            dir_conf(&operator_jwt(&op, json!({})), "cache", &dir, "  limit: 1\n"),
            a.public_key(),
            account_jwt(&op, &a, json!({})),
            b.public_key(),
            account_jwt(&op, &b, json!({}))
        );
        let _srv = Server::with_config(&conf, &[]);
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".jwt"))
            .collect();
        assert_eq!(files.len(), 1, "limit 1 keeps one account file");
    });
}

#[test]
fn dir_resolver_needs_an_operator_and_a_system_account() {
    with_timeout(LIMIT, || {
        let jwts = TempDir::new("jwtdir");
        let op = KeyPair::new_operator();
        let conf = format!(
            "operator: {}\nresolver {{ type: full, dir: \"{}\" }}\n",
            operator_jwt(&op, json!({})),
            jwts.path().display()
        );
        let exit = run_to_exit("s.conf", &conf, &[], &[], Duration::from_secs(20));
        assert!(!exit.success(), "{}", exit.output);
        assert!(
            exit.output
                .contains("the system account needs to be specified"),
            "{}",
            exit.output
        );
        let conf = format!(
            "trusted_keys: [\"{}\"]\nresolver {{ type: full, dir: \"{}\" }}\n",
            op.public_key(),
            jwts.path().display()
        );
        let exit = run_to_exit("s.conf", &conf, &[], &[], Duration::from_secs(20));
        assert!(!exit.success(), "{}", exit.output);
        assert!(
            exit.output.contains("no operator key found"),
            "{}",
            exit.output
        );
    });
}

/// Accounts fetched from a URL resolver at CONNECT bring their exports and
/// imports with them, as the reference registers them when it fetches.
#[test]
fn fetched_accounts_export_and_import() {
    fetched_accounts_export_and_import_with("");
}

/// The same without a system account: wiring a fetched account does not
/// depend on one.
#[test]
fn fetched_accounts_export_and_import_without_a_system_account() {
    fetched_accounts_export_and_import_with("no_system_account: true\n");
}

fn fetched_accounts_export_and_import_with(extra: &'static str) {
    with_timeout(LIMIT, move || {
        let op = KeyPair::new_operator();
        let exporter = KeyPair::new_account();
        let importer = KeyPair::new_account();
        let web = AccountServer::start();
        web.put(
            &exporter,
            &account_jwt(
                &op,
                &exporter,
                json!({"exports": [{"name": "events", "subject": "events.>", "type": "stream"}]}),
            ),
            Duration::ZERO,
        );
        web.put(
            &importer,
            &account_jwt(
                &op,
                &importer,
                json!({"imports": [{"name": "events", "subject": "events.>",
                    "account": exporter.public_key(), "type": "stream",
                    "local_subject": "ext.events.>"}]}),
            ),
            Duration::ZERO,
        );
        let conf = format!(
            "operator: {}\nresolver: URL({})\n{extra}",
            operator_jwt(&op, json!({})),
            web.url()
        );
        let flags = shard_flags(2);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let srv = Server::with_config(&conf, &flags);
        let (mut im, line) = connect_user(srv.port(), &importer);
        assert_eq!(line, "PONG");
        im.send(b"SUB ext.events.> 1\r\n");
        im.sync();
        let (mut ex, line) = connect_user(srv.port(), &exporter);
        assert_eq!(line, "PONG");
        // The edges are in place once each CONNECT is answered: the very
        // first message crosses.
        ex.send(b"PUB events.a 1\r\na\r\n");
        ex.sync();
        assert_eq!(im.next_line(), "MSG ext.events.a 1 1");
        assert_eq!(im.next_line(), "a");
    });
}

/// An account fetched from a URL resolver gets the system imports as any other: its
/// user can ask about its own connections. At 2 shards, the user's shard is not the
/// one that holds the server's internal subscriptions.
#[test]
fn fetched_accounts_can_ask_about_their_own_connections() {
    with_timeout(LIMIT, || {
        let op = KeyPair::new_operator();
        let acc = KeyPair::new_account();
        let sys = KeyPair::new_account();
        let web = AccountServer::start();
        web.put(&acc, &account_jwt(&op, &acc, json!({})), Duration::ZERO);
        web.put(&sys, &account_jwt(&op, &sys, json!({})), Duration::ZERO);
        let conf = format!(
            "operator: {}\nsystem_account: {}\nresolver: URL({})\n",
            operator_jwt(&op, json!({})),
            sys.public_key(),
            web.url()
        );
        let mut flags = shard_flags(2);
        flags.extend(["-m".to_string(), "-1".to_string()]);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let srv = Server::with_config(&conf, &flags);
        // The JSON reply to a request on `subject`.
        let ask = |r: &mut Raw, subject: &str| -> serde_json::Value {
            r.send(format!("PUB {subject} _INBOX.me 0\r\n\r\n").as_bytes());
            let line = r.next_line();
            assert!(line.starts_with("MSG _INBOX.me 1 "), "{subject}: {line}");
            let len: usize = line.rsplit(' ').next().unwrap().parse().unwrap();
            let body = r.read_exact_bytes(len + 2);
            serde_json::from_slice(&body[..len]).unwrap()
        };
        // Two users, both kept connected: on natrix the second lands on the other shard.
        let mut users = Vec::new();
        for _ in 0..2 {
            let (mut r, line) = connect_user(srv.port(), &acc);
            assert_eq!(line, "PONG");
            r.send(b"SUB _INBOX.me 1\r\n");
            let v = ask(&mut r, "$SYS.REQ.SERVER.PING.CONNZ");
            assert!(v["data"]["num_connections"].as_u64() >= Some(1), "{v}");
            let v = ask(&mut r, "$SYS.REQ.ACCOUNT.PING.STATZ");
            assert_eq!(
                v["data"]["account_statz"][0]["acc"],
                acc.public_key().as_str(),
                "{v}"
            );
            users.push(r);
        }
        // And /accountz lists them, as for any other account.
        let key = acc.public_key();
        let v = common::http::get_json(srv.monitor_port(), &format!("/accountz?acc={key}"));
        let mut subjects: Vec<(String, String)> = v["account_detail"]["imports"]
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or(&[])
            .iter()
            .map(|i| {
                (
                    i["subject"].as_str().unwrap_or("").to_string(),
                    i["to"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        subjects.sort();
        let want = |s: &str, w: &str| (s.to_string(), format!("$SYS.REQ.ACCOUNT.{key}.{w}"));
        assert_eq!(
            subjects,
            [
                want("$SYS.REQ.ACCOUNT.PING.CONNZ", "CONNZ"),
                want("$SYS.REQ.ACCOUNT.PING.STATZ", "STATZ"),
                want("$SYS.REQ.SERVER.PING.CONNZ", "CONNZ"),
            ],
            "{v}"
        );
    });
}
