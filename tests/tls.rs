//! Client TLS: `tls { cert_file, key_file, ca_file, verify, verify_and_map, timeout }`,
//! the plain INFO sent before the upgrade, refusal of plain / untrusted / unverified
//! clients, certificate-to-user mapping with permissions, config errors and SIGHUP reload
//! of certificates. Expected behaviour is that of the reference nats-server 2.9.10.
//!
//! Every certificate is generated at test time (rcgen, ECDSA P-256) into a temp dir;
//! configs use absolute paths to those files.

mod common;

use async_nats::{Client, ConnectErrorKind, ConnectOptions, Event, ServerError};
use common::{run_to_exit, show, strip_pings, wait_until, with_timeout, Raw, Server, TempDir};
use futures::StreamExt;
use rcgen::{
    date_time_ymd, BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::future::Future;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(60);
const EXIT_LIMIT: Duration = Duration::from_secs(10);
const IO: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------- certificates

/// A certificate authority (self-signed, CA:true).
struct Ca {
    cert: Certificate,
    key: KeyPair,
}

/// A leaf certificate and its key, in PEM and DER.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

/// What goes into a leaf certificate.
#[derive(Default)]
struct Spec<'a> {
    /// Subject attributes in certificate (ASN.1) order, e.g. `[("O","Acme"),("CN","alice")]`,
    /// which RFC 2253 renders as `CN=alice,O=Acme`.
    subject: &'a [(&'a str, &'a str)],
    emails: &'a [&'a str],
    dns: &'a [&'a str],
    ips: &'a [&'a str],
    server: bool,
    expired: bool,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Natrix Tests");
        dn.push(DnType::CommonName, name);
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let cert = p.self_signed(&key).expect("self-sign CA");
        Ca { cert, key }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }

    fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    fn issue(&self, s: &Spec) -> Leaf {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        for (ty, v) in s.subject {
            let ty = match *ty {
                "CN" => DnType::CommonName,
                "O" => DnType::OrganizationName,
                "OU" => DnType::OrganizationalUnitName,
                "C" => DnType::CountryName,
                other => panic!("unsupported DN attribute {other}"),
            };
            dn.push(ty, *v);
        }
        p.distinguished_name = dn;
        let mut sans = Vec::new();
        for e in s.emails {
            sans.push(SanType::Rfc822Name((*e).try_into().expect("email SAN")));
        }
        for d in s.dns {
            sans.push(SanType::DnsName((*d).try_into().expect("DNS SAN")));
        }
        for ip in s.ips {
            sans.push(SanType::IpAddress(ip.parse().expect("IP SAN")));
        }
        p.subject_alt_names = sans;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![if s.server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        if s.expired {
            p.not_before = date_time_ymd(2000, 1, 1);
            p.not_after = date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().expect("leaf key");
        let cert = p.signed_by(&key, &self.cert, &self.key).expect("sign leaf");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    /// Server certificate for 127.0.0.1 and localhost.
    fn server(&self) -> Leaf {
        self.issue(&Spec {
            subject: &[("O", "Natrix Tests"), ("CN", "localhost")],
            dns: &["localhost"],
            ips: &["127.0.0.1"],
            server: true,
            ..Spec::default()
        })
    }
}

/// A directory of PEM files with absolute paths for configs and clients.
struct Files {
    dir: TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: TempDir::new("tls"),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// Write `text` as `name`; returns the absolute path as a string.
    fn put(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write pem");
        p.to_string_lossy().into_owned()
    }
    fn ca(&self, name: &str, ca: &Ca) -> String {
        self.put(&format!("{name}.pem"), &ca.pem())
    }
    /// Writes `name.pem` and `name-key.pem`; returns both paths.
    fn leaf(&self, name: &str, leaf: &Leaf) -> (String, String) {
        (
            self.put(&format!("{name}.pem"), &leaf.cert_pem),
            self.put(&format!("{name}-key.pem"), &leaf.key_pem),
        )
    }
}

/// Server CA + server cert written out; the usual starting point.
struct Pki {
    files: Files,
    ca: Ca,
    ca_path: String,
    cert: String,
    key: String,
}

fn pki() -> Pki {
    let files = Files::new();
    let ca = Ca::new("Natrix Test CA");
    let ca_path = files.ca("ca", &ca);
    let (cert, key) = files.leaf("server", &ca.server());
    Pki {
        files,
        ca,
        ca_path,
        cert,
        key,
    }
}

fn tls_conf(cert: &str, key: &str, extra: &str) -> String {
    format!("tls {{\n  cert_file: \"{cert}\"\n  key_file: \"{key}\"\n{extra}\n}}\n")
}

// ---------------------------------------------------------------- raw TLS client

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// async-nats builds its rustls config with the process-default provider.
fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// rustls client config trusting `roots`, optionally presenting `client`.
fn client_cfg(
    roots: &[CertificateDer<'static>],
    client: Option<&Leaf>,
) -> Arc<rustls::ClientConfig> {
    client_cfg_with(provider(), roots, client)
}

/// [`client_cfg`] with the crypto provider `prov` (e.g. fewer key exchanges).
fn client_cfg_with(
    prov: Arc<rustls::crypto::CryptoProvider>,
    roots: &[CertificateDer<'static>],
    client: Option<&Leaf>,
) -> Arc<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).expect("add root");
    }
    let b = rustls::ClientConfig::builder_with_provider(prov)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(store);
    let cfg = match client {
        Some(l) => b
            .with_client_auth_cert(
                vec![l.cert_der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(l.key_der.clone())),
            )
            .expect("client cert"),
        None => b.with_no_client_auth(),
    };
    Arc::new(cfg)
}

/// A raw protocol connection: INFO read in clear, then a rustls handshake, then lines.
struct TlsRaw {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    buf: Vec<u8>,
    info: serde_json::Value,
}

/// Read the plain INFO line byte by byte (nothing past CRLF is consumed).
fn read_plain_info(sock: &mut TcpStream) -> serde_json::Value {
    sock.set_read_timeout(Some(IO)).expect("read timeout");
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        assert!(line.len() < 65536, "INFO line too long: {}", show(&line));
        match sock.read(&mut b) {
            Ok(0) => panic!("closed before INFO ended: {}", show(&line)),
            Ok(_) => line.push(b[0]),
            Err(e) => panic!("reading plain INFO: {e}; have {}", show(&line)),
        }
    }
    assert!(line.starts_with(b"INFO "), "not INFO: {}", show(&line));
    let json = std::str::from_utf8(&line[5..line.len() - 2]).expect("utf-8");
    serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("INFO JSON ({e}): {json}"))
}

impl TlsRaw {
    /// A TCP connection to the server with the tests' timeouts.
    fn tcp(port: u16) -> TcpStream {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let sock = TcpStream::connect_timeout(&addr, IO).expect("tcp connect");
        sock.set_nodelay(true).ok();
        sock.set_write_timeout(Some(IO)).expect("write timeout");
        sock
    }

    /// The client side of a TLS handshake on `sock` (server name
    /// "localhost"); `Err` describes a failure the client saw.
    fn handshake(
        mut sock: TcpStream,
        cfg: Arc<rustls::ClientConfig>,
        info: serde_json::Value,
    ) -> Result<TlsRaw, String> {
        let name = ServerName::try_from("localhost").expect("server name");
        let mut conn = rustls::ClientConnection::new(cfg, name).expect("client connection");
        let deadline = Instant::now() + IO;
        while conn.is_handshaking() {
            if Instant::now() >= deadline {
                return Err("handshake did not finish within 5 s".into());
            }
            if let Err(e) = conn.complete_io(&mut sock) {
                return Err(format!("handshake: {e}"));
            }
        }
        Ok(TlsRaw {
            tls: rustls::StreamOwned::new(conn, sock),
            buf: Vec::new(),
            info,
        })
    }

    /// TCP connect, INFO in clear, TLS handshake.
    /// `Err` describes a handshake failure seen by the client.
    fn connect(port: u16, cfg: Arc<rustls::ClientConfig>) -> Result<TlsRaw, String> {
        let mut sock = Self::tcp(port);
        let info = read_plain_info(&mut sock);
        Self::handshake(sock, cfg, info)
    }

    /// TCP connect and TLS handshake at once, then INFO over TLS: a client
    /// using `handshake_first` (nothing is read in the clear).
    fn connect_tls_first(port: u16, cfg: Arc<rustls::ClientConfig>) -> TlsRaw {
        let sock = Self::tcp(port);
        sock.set_read_timeout(Some(IO)).expect("read timeout");
        let mut r = Self::handshake(sock, cfg, serde_json::Value::Null)
            .unwrap_or_else(|e| panic!("TLS-first {e}"));
        let line = r.line_raw();
        let json = line
            .strip_prefix("INFO ")
            .unwrap_or_else(|| panic!("first line over TLS is not INFO: {line}"));
        r.info = serde_json::from_str(json.trim()).expect("INFO JSON");
        r
    }

    /// Connect and expect the handshake (client side) to succeed.
    fn open(port: u16, cfg: Arc<rustls::ClientConfig>) -> TlsRaw {
        Self::connect(port, cfg).unwrap_or_else(|e| panic!("TLS handshake failed: {e}"))
    }

    /// Connect, quiet CONNECT, PING/PONG.
    fn connect_ok(port: u16, cfg: Arc<rustls::ClientConfig>) -> TlsRaw {
        let mut r = Self::open(port, cfg);
        r.send(common::CONNECT_QUIET);
        r.sync();
        r
    }

    fn send(&mut self, data: &[u8]) {
        self.tls.write_all(data).expect("send over TLS");
        self.tls.flush().expect("flush TLS");
    }

    fn try_send(&mut self, data: &[u8]) -> bool {
        self.tls.write_all(data).is_ok() && self.tls.flush().is_ok()
    }

    /// Read more; Ok(0) on close (close_notify or EOF), Err on timeout or TLS error.
    fn fill(&mut self, deadline: Instant) -> std::io::Result<usize> {
        let now = Instant::now();
        if now >= deadline {
            return Err(std::io::Error::new(ErrorKind::TimedOut, "deadline"));
        }
        let wait = (deadline - now).max(Duration::from_millis(1));
        self.tls.sock.set_read_timeout(Some(wait))?;
        let mut tmp = [0u8; 65536];
        let n = self.tls.read(&mut tmp)?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    fn line_raw(&mut self) -> String {
        let deadline = Instant::now() + IO;
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let rest = self.buf.split_off(pos + 2);
                let mut l = std::mem::replace(&mut self.buf, rest);
                l.truncate(l.len() - 2);
                return String::from_utf8(l).expect("utf-8 line");
            }
            match self.fill(deadline) {
                Ok(0) => panic!(
                    "TLS connection closed waiting for a line; have {}",
                    show(&self.buf)
                ),
                Ok(_) => {}
                Err(e) => panic!("no line within 5 s ({e}); have {}", show(&self.buf)),
            }
        }
    }

    /// Next line, answering and skipping server PINGs.
    fn line(&mut self) -> String {
        for _ in 0..100 {
            let l = self.line_raw();
            if l == "PING" {
                self.send(b"PONG\r\n");
            } else {
                return l;
            }
        }
        panic!("100 server PINGs in a row");
    }

    fn sync(&mut self) {
        self.send(b"PING\r\n");
        let l = self.line();
        assert_eq!(l, "PONG", "expected PONG");
    }

    fn read_exact_bytes(&mut self, n: usize) -> Vec<u8> {
        let deadline = Instant::now() + IO;
        while self.buf.len() < n {
            match self.fill(deadline) {
                Ok(0) => panic!("closed after {} of {n} bytes", self.buf.len()),
                Ok(_) => {}
                Err(e) => panic!("only {} of {n} bytes ({e})", self.buf.len()),
            }
        }
        let rest = self.buf.split_off(n);
        std::mem::replace(&mut self.buf, rest)
    }

    /// Everything received until the server closes (clean close, EOF or TLS alert);
    /// panics if still open after `limit`.
    fn read_until_closed(&mut self, limit: Duration) -> Vec<u8> {
        let deadline = Instant::now() + limit;
        loop {
            match self.fill(deadline) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                    panic!(
                        "TLS connection still open after {limit:?}; got {}",
                        show(&self.buf)
                    )
                }
                Err(_) => break,
            }
        }
        std::mem::take(&mut self.buf)
    }

    /// Assert nothing arrives (and no close) for `ms` milliseconds.
    fn expect_nothing(&mut self, ms: u64) {
        let deadline = Instant::now() + Duration::from_millis(ms);
        loop {
            let got = strip_pings(&self.buf);
            assert!(got.is_empty(), "expected silence, got {got}");
            self.buf.clear();
            match self.fill(deadline) {
                Ok(0) => panic!("expected silence, but the connection was closed"),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                    return
                }
                Err(e) => panic!("expected silence, got error {e}"),
            }
        }
    }
}

/// The server must refuse this TLS client: the handshake fails, or (TLS 1.3, where the
/// client finishes before the server has checked its certificate) the connection ends
/// without a PONG. Returns what the client observed, for messages.
fn assert_tls_refused(port: u16, cfg: Arc<rustls::ClientConfig>, what: &str) -> String {
    match TlsRaw::connect(port, cfg) {
        Err(e) => e,
        Ok(mut r) => {
            let _ = r.try_send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
            let got = r.read_until_closed(IO);
            assert!(
                !show(&got).contains("PONG"),
                "{what}: server accepted the client: {}",
                show(&got)
            );
            format!("closed after handshake; got {:?}", show(&got))
        }
    }
}

// ---------------------------------------------------------------- async helpers

fn run_async<F: Future<Output = ()> + Send + 'static>(f: F) {
    with_timeout(LIMIT, move || {
        init_crypto();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async move { timeout(LIMIT, f).await.expect("test timed out") });
    });
}

fn opts_tls(ca: &str) -> ConnectOptions {
    ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(PathBuf::from(ca))
        .connection_timeout(Duration::from_secs(5))
}

fn opts_mtls(ca: &str, cert_key: &(String, String)) -> ConnectOptions {
    opts_tls(ca).add_client_certificate(PathBuf::from(&cert_key.0), PathBuf::from(&cert_key.1))
}

async fn try_connect(url: &str, opts: ConnectOptions) -> Result<Client, async_nats::ConnectError> {
    timeout(Duration::from_secs(10), opts.connect(url))
        .await
        .expect("connect did not finish within 10 s")
}

async fn connect_ok(url: &str, opts: ConnectOptions) -> Client {
    try_connect(url, opts)
        .await
        .unwrap_or_else(|e| panic!("TLS connect failed: {e} ({:?})", e.kind()))
}

async fn connect_fails(url: &str, opts: ConnectOptions, what: &str) -> async_nats::ConnectError {
    match try_connect(url, opts).await {
        Ok(_) => panic!("{what}: connect succeeded"),
        Err(e) => e,
    }
}

/// pub/sub and request/reply through one TLS client (`c` may publish/subscribe to `sub.>`).
async fn pub_sub_request(c: &Client, prefix: &str) {
    let mut sub = c.subscribe(format!("{prefix}.data")).await.unwrap();
    let mut svc = c.subscribe(format!("{prefix}.svc")).await.unwrap();
    c.flush().await.unwrap();
    c.publish(format!("{prefix}.data"), "hello over tls".into())
        .await
        .unwrap();
    let m = timeout(IO, sub.next()).await.expect("no message").unwrap();
    assert_eq!(&m.payload[..], b"hello over tls");

    let c2 = c.clone();
    let responder = tokio::spawn(async move {
        let m = timeout(IO, svc.next()).await.expect("no request").unwrap();
        let mut body = b"re:".to_vec();
        body.extend_from_slice(&m.payload);
        c2.publish(m.reply.unwrap(), body.into()).await.unwrap();
        c2.flush().await.unwrap();
    });
    let resp = timeout(IO, c.request(format!("{prefix}.svc"), "ping".into()))
        .await
        .expect("request timed out")
        .expect("request");
    assert_eq!(&resp.payload[..], b"re:ping");
    responder.await.unwrap();
}

// ---------------------------------------------------------------- tls { cert_file, key_file }

#[test]
fn info_is_sent_in_clear_with_only_tls_required() {
    with_timeout(LIMIT, || {
        let p = pki();
        let srv = Server::with_config(&tls_conf(&p.cert, &p.key, ""), &[]);
        let r = Raw::connect(srv.port());
        assert_eq!(
            r.info["tls_required"],
            serde_json::json!(true),
            "INFO {}",
            r.info
        );
        // The reference omits false booleans: no tls_verify, tls_available or auth_required.
        for k in ["tls_verify", "tls_available", "auth_required"] {
            assert!(r.info.get(k).is_none(), "INFO has {k}: {}", r.info);
        }
    });
}

#[test]
fn async_nats_pub_sub_request_over_tls() {
    run_async(async {
        let p = pki();
        let srv = Server::with_config(&tls_conf(&p.cert, &p.key, ""), &[]);
        let c = connect_ok(&srv.url(), opts_tls(&p.ca_path)).await;
        assert!(c.server_info().tls_required, "{:?}", c.server_info());
        pub_sub_request(&c, "tls").await;

        // A second client sees the first one's messages (routing is not per connection).
        let c2 = connect_ok(&srv.url(), opts_tls(&p.ca_path)).await;
        let mut sub = c2.subscribe("cross").await.unwrap();
        // async-nats 0.42's flush() is no round trip; a request nobody
        // answers is: its 503 proves the server processed the SUB.
        c2.flush().await.unwrap();
        let r = timeout(IO, c2.request("_itest.barrier", bytes::Bytes::new()))
            .await
            .expect("barrier request timed out");
        assert!(
            matches!(&r, Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders),
            "barrier: {r:?}"
        );
        c.publish("cross", "x".into()).await.unwrap();
        c.flush().await.unwrap();
        let m = timeout(IO, sub.next())
            .await
            .expect("no cross message")
            .unwrap();
        assert_eq!(&m.payload[..], b"x");
    });
}

#[test]
fn raw_protocol_over_tls_including_large_payload() {
    with_timeout(LIMIT, || {
        let p = pki();
        let srv = Server::with_config(&tls_conf(&p.cert, &p.key, ""), &[]);
        let cfg = client_cfg(&[p.ca.der()], None);
        let mut r = TlsRaw::connect_ok(srv.port(), cfg.clone());
        assert_eq!(r.info["tls_required"], serde_json::json!(true));
        r.send(b"SUB foo 1\r\nPUB foo reply 5\r\nhello\r\n");
        assert_eq!(r.line(), "MSG foo 1 reply 5");
        assert_eq!(r.read_exact_bytes(7), b"hello\r\n");

        // 200 KB spans many TLS records in both directions.
        let big: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut msg = format!("PUB foo {}\r\n", big.len()).into_bytes();
        msg.extend_from_slice(&big);
        msg.extend_from_slice(b"\r\n");
        r.send(&msg);
        assert_eq!(r.line(), format!("MSG foo 1 {}", big.len()));
        let body = r.read_exact_bytes(big.len() + 2);
        assert!(
            body[..big.len()] == big[..] && body.ends_with(b"\r\n"),
            "payload corrupted"
        );

        // Another TLS client receives from this one.
        let mut other = TlsRaw::connect_ok(srv.port(), cfg);
        other.send(b"SUB bar 7\r\n");
        other.sync();
        r.send(b"PUB bar 2\r\nok\r\n");
        assert_eq!(other.line(), "MSG bar 7 2");
        assert_eq!(other.read_exact_bytes(4), b"ok\r\n");
    });
}

// ---------------------------------------------------------------- rate limit, curves

#[test]
fn connection_rate_limit_refuses_tls_connections_past_the_limit_in_the_clear() {
    with_timeout(LIMIT, || {
        let p = pki();
        let srv = Server::with_config(
            &tls_conf(&p.cert, &p.key, "  connection_rate_limit: 2"),
            &[],
        );
        // Two connections within the second are let through to the
        // handshake; the third gets INFO, then the refusal, in the clear.
        // The window is a second of the server's clock from the first
        // connection: on a loaded machine the three may not reach the
        // server within it, and then the third is rightly let through (and
        // closed when its handshake times out). So a burst is tried up to
        // three times, each after the last window has passed; a server
        // that does not limit fails all three.
        let refusal = show(b"-ERR 'Connection throttling is active. Please try again later.'\r\n");
        let mut got = Vec::new();
        for attempt in 0..3 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(1100));
            }
            let socks: Vec<Raw> = (0..2).map(|_| Raw::connect(srv.port())).collect();
            let mut third = Raw::connect(srv.port());
            let rest = show(&third.read_until_closed(IO));
            drop(socks);
            let refused = rest == refusal;
            got.push(rest);
            if refused {
                break;
            }
        }
        assert_eq!(got.last(), Some(&refusal), "every burst: {got:?}");
        let cfg = client_cfg(&[p.ca.der()], None);
        assert!(
            wait_until(Duration::from_secs(3), || srv
                .log()
                .contains("[WRN] Rejected 1 connections due to TLS rate limiting")),
            "no rate-limit report in the log:\n{}",
            srv.log()
        );
        // A second later the window has passed: a new client connects.
        std::thread::sleep(Duration::from_millis(1100));
        TlsRaw::connect_ok(srv.port(), cfg);
    });
}

/// A client config offering only the key exchange `group`.
fn client_cfg_kx(
    roots: &[CertificateDer<'static>],
    group: &'static dyn rustls::crypto::SupportedKxGroup,
) -> Arc<rustls::ClientConfig> {
    let mut prov = rustls::crypto::ring::default_provider();
    prov.kx_groups = vec![group];
    client_cfg_with(Arc::new(prov), roots, None)
}

#[test]
fn curve_preferences_limit_the_key_exchange() {
    with_timeout(LIMIT, || {
        use rustls::crypto::ring::kx_group;
        let p = pki();
        let srv = Server::with_config(
            &tls_conf(&p.cert, &p.key, "  curve_preferences: [\"CurveP384\"]"),
            &[],
        );
        let mut r = TlsRaw::connect_ok(
            srv.port(),
            client_cfg_kx(&[p.ca.der()], kx_group::SECP384R1),
        );
        r.sync();
        let refused = TlsRaw::connect(srv.port(), client_cfg_kx(&[p.ca.der()], kx_group::X25519));
        assert!(refused.is_err(), "an X25519-only client got through");
    });
}

/// `allow_non_tls: true`: INFO offers TLS (`tls_available`) without
/// requiring it; a plain client and a TLS client both connect.
#[test]
fn allow_non_tls_serves_plain_and_tls_clients() {
    with_timeout(LIMIT, || {
        let p = pki();
        let srv = Server::with_config(
            &format!("allow_non_tls: true\n{}", tls_conf(&p.cert, &p.key, "")),
            &[],
        );
        let mut plain = Raw::connect(srv.port());
        assert_eq!(
            plain.info["tls_available"],
            serde_json::json!(true),
            "{}",
            plain.info
        );
        assert!(plain.info.get("tls_required").is_none(), "{}", plain.info);
        plain.send(common::CONNECT_QUIET);
        plain.send(b"SUB mixed 1\r\n");
        plain.sync();
        let mut secure = TlsRaw::connect_ok(srv.port(), client_cfg(&[p.ca.der()], None));
        secure.send(b"PUB mixed 2\r\nok\r\n");
        secure.sync();
        plain.expect(b"MSG mixed 1 2\r\nok\r\n");
    });
}

// ---------------------------------------------------------------- handshake_first
// nats-server 2.10's `tls { handshake_first }`; 2.9.10 refuses the key, so
// these run against natrix only.

#[test]
fn natrix_only_handshake_first_sends_info_only_after_the_handshake() {
    with_timeout(LIMIT, || {
        let p = pki();
        let srv = Server::with_config(&tls_conf(&p.cert, &p.key, "  handshake_first: true"), &[]);
        let cfg = client_cfg(&[p.ca.der()], None);
        let mut r = TlsRaw::connect_tls_first(srv.port(), cfg.clone());
        assert_eq!(
            r.info["tls_required"],
            serde_json::json!(true),
            "{}",
            r.info
        );
        r.send(common::CONNECT_QUIET);
        r.send(b"SUB hf 1\r\nPUB hf 2\r\nok\r\n");
        assert_eq!(r.line(), "MSG hf 1 2");
        assert_eq!(r.read_exact_bytes(4), b"ok\r\n");

        // Without a fallback, a client that waits for INFO gets nothing.
        let got = Raw::connect_no_info(srv.port()).read_for(300);
        assert!(got.is_empty(), "INFO sent in the clear: {}", show(&got));
        assert!(
            srv.log().contains(
                "[WRN] Clients that are not using \"TLS Handshake First\" option will fail to connect"
            ),
            "no start-up warning; log:\n{}",
            srv.log()
        );
    });
}

#[test]
fn natrix_only_handshake_first_auto_serves_both_kinds_of_client() {
    with_timeout(LIMIT, || {
        let p = pki();
        let srv = Server::with_config(&tls_conf(&p.cert, &p.key, "  handshake_first: auto"), &[]);
        let cfg = client_cfg(&[p.ca.der()], None);
        // A client that starts with the handshake gets INFO after it...
        let mut first = TlsRaw::connect_tls_first(srv.port(), cfg.clone());
        first.send(common::CONNECT_QUIET);
        first.send(b"SUB both 1\r\n");
        first.sync();
        // ...and one that waits gets INFO in the clear after the fallback
        // delay (50 ms), then upgrades as without handshake_first.
        let mut classic = TlsRaw::connect_ok(srv.port(), cfg);
        assert_eq!(classic.info["tls_required"], serde_json::json!(true));
        classic.send(b"PUB both 3\r\nhi!\r\n");
        assert_eq!(first.line(), "MSG both 1 3");
        assert_eq!(first.read_exact_bytes(5), b"hi!\r\n");
        assert!(
            !srv.log().contains("TLS Handshake First"),
            "warning logged with a fallback:\n{}",
            srv.log()
        );
    });
}

/// A client that ends the session with close_notify gets the server's close_notify
/// and the socket closed at once, so a client waiting for the TLS shutdown (nats.py's
/// close()) returns promptly instead of after its own timeout.
#[test]
fn client_close_notify_is_answered_and_the_connection_closed_at_once() {
    with_timeout(LIMIT, || {
        let p = pki();
        let srv = Server::with_config(&tls_conf(&p.cert, &p.key, ""), &[]);
        let cfg = client_cfg(&[p.ca.der()], None);
        let mut r = TlsRaw::connect_ok(srv.port(), cfg);
        // Data sent just before close_notify still takes effect.
        r.send(b"SUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\n");
        assert_eq!(r.line(), "MSG foo 1 2");
        assert_eq!(r.read_exact_bytes(4), b"hi\r\n");
        assert_eq!(r.line(), "PONG");
        let start = Instant::now();
        r.tls.conn.send_close_notify();
        r.tls.flush().expect("flush close_notify");
        let deadline = start + Duration::from_secs(3);
        // Ok(0) from rustls means the server's close_notify arrived (a bare EOF
        // would read as an UnexpectedEof error).
        let got = loop {
            match r.fill(deadline) {
                Ok(0) => break Ok(()),
                Ok(_) => continue,
                Err(e) => break Err(e),
            }
        };
        assert!(
            got.is_ok(),
            "no close_notify from the server within 3 s: {got:?}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "close took {:?}",
            start.elapsed()
        );
        // And the socket itself is closed: the next read sees EOF at once.
        r.tls
            .sock
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut b = [0u8; 16];
        let n = r.tls.sock.read(&mut b);
        assert!(
            matches!(n, Ok(0))
                || n.as_ref()
                    .is_err_and(|e| e.kind() == ErrorKind::ConnectionReset),
            "socket still open after close_notify: {n:?}"
        );
    });
}

#[test]
fn client_not_trusting_the_ca_fails_to_connect() {
    run_async(async {
        let p = pki();
        let other = Ca::new("Other CA");
        let other_path = p.files.ca("other-ca", &other);
        let srv = Server::with_config(&tls_conf(&p.cert, &p.key, ""), &[]);

        connect_fails(
            &srv.url(),
            opts_tls(&other_path),
            "client trusting another CA",
        )
        .await;
        let port = srv.port();
        let cfg = client_cfg(&[other.der()], None);
        let err = tokio::task::spawn_blocking(move || TlsRaw::connect(port, cfg).err())
            .await
            .unwrap();
        assert!(
            err.is_some(),
            "raw handshake with an untrusted server cert succeeded"
        );

        // The server is unaffected and serves a trusting client.
        let c = connect_ok(&srv.url(), opts_tls(&p.ca_path)).await;
        pub_sub_request(&c, "after").await;
    });
}

#[test]
fn plain_client_sending_connect_in_clear_is_closed_without_reply() {
    with_timeout(LIMIT, || {
        let p = pki();
        let srv = Server::with_config(&tls_conf(&p.cert, &p.key, ""), &[]);
        // The reference logs "TLS handshake error: tls: first record does not look like a
        // TLS handshake" and closes: the client gets nothing after INFO (no -ERR, no PONG).
        let mut r = Raw::connect(srv.port());
        assert_eq!(r.info["tls_required"], serde_json::json!(true));
        r.send(b"CONNECT {\"verbose\":false,\"tls_required\":false}\r\nPING\r\n");
        let got = r.read_until_closed(IO);
        assert!(
            got.is_empty(),
            "plain client got {}; log:\n{}",
            show(&got),
            srv.log()
        );

        // The server still serves TLS clients.
        let mut t = TlsRaw::connect_ok(srv.port(), client_cfg(&[p.ca.der()], None));
        t.send(b"SUB x 1\r\nPUB x 1\r\n!\r\n");
        assert_eq!(t.line(), "MSG x 1 1");
    });
}

#[test]
fn plain_client_that_never_starts_tls_is_closed_after_the_default_timeout() {
    with_timeout(LIMIT, || {
        let p = pki();
        let srv = Server::with_config(&tls_conf(&p.cert, &p.key, ""), &[]);
        // Default TLS handshake timeout is 2 s; the client sees nothing but the close.
        let mut r = Raw::connect(srv.port());
        let start = Instant::now();
        let got = r.read_until_closed(Duration::from_secs(6));
        let waited = start.elapsed();
        assert!(got.is_empty(), "idle plain client got {}", show(&got));
        assert!(
            waited >= Duration::from_millis(1500),
            "closed after only {waited:?} (default TLS timeout is 2 s)"
        );
    });
}

// ---------------------------------------------------------------- mutual TLS (verify)

struct Mtls {
    p: Pki,
    other: Ca,
    srv: Server,
    alice: Leaf,
    alice_files: (String, String),
}

fn alice_spec(expired: bool) -> Spec<'static> {
    Spec {
        subject: &[("O", "Acme"), ("CN", "alice")],
        emails: &["alice@example.com"],
        expired,
        ..Spec::default()
    }
}

fn mtls() -> Mtls {
    let p = pki();
    let other = Ca::new("Other CA");
    let alice = p.ca.issue(&alice_spec(false));
    let alice_files = p.files.leaf("alice", &alice);
    let conf = tls_conf(
        &p.cert,
        &p.key,
        &format!("  ca_file: \"{}\"\n  verify: true", p.ca_path),
    );
    let srv = Server::with_config(&conf, &[]);
    Mtls {
        p,
        other,
        srv,
        alice,
        alice_files,
    }
}

#[test]
fn verify_info_has_tls_verify() {
    with_timeout(LIMIT, || {
        let m = mtls();
        let r = Raw::connect(m.srv.port());
        assert_eq!(
            r.info["tls_required"],
            serde_json::json!(true),
            "INFO {}",
            r.info
        );
        assert_eq!(
            r.info["tls_verify"],
            serde_json::json!(true),
            "INFO {}",
            r.info
        );
        for k in ["tls_available", "auth_required"] {
            assert!(r.info.get(k).is_none(), "INFO has {k}: {}", r.info);
        }
    });
}

#[test]
fn verify_accepts_client_cert_from_the_ca() {
    run_async(async {
        let m = mtls();
        let c = connect_ok(&m.srv.url(), opts_mtls(&m.p.ca_path, &m.alice_files)).await;
        assert!(c.server_info().tls_required, "{:?}", c.server_info());
        pub_sub_request(&c, "mtls").await;

        let port = m.srv.port();
        let cfg = client_cfg(&[m.p.ca.der()], Some(&m.alice));
        tokio::task::spawn_blocking(move || {
            let mut r = TlsRaw::connect_ok(port, cfg);
            r.send(b"SUB a 1\r\nPUB a 2\r\nhi\r\n");
            assert_eq!(r.line(), "MSG a 1 2");
        })
        .await
        .unwrap();
    });
}

#[test]
fn verify_refuses_missing_foreign_and_expired_client_certs() {
    run_async(async {
        let m = mtls();
        let url = m.srv.url();
        let rogue = m.other.issue(&alice_spec(false));
        let rogue_files = m.p.files.leaf("rogue", &rogue);
        let expired = m.p.ca.issue(&alice_spec(true));
        let expired_files = m.p.files.leaf("expired", &expired);

        // async-nats: every one of these fails to connect.
        connect_fails(&url, opts_tls(&m.p.ca_path), "no client certificate").await;
        connect_fails(
            &url,
            opts_mtls(&m.p.ca_path, &rogue_files),
            "cert from another CA",
        )
        .await;
        connect_fails(
            &url,
            opts_mtls(&m.p.ca_path, &expired_files),
            "expired cert",
        )
        .await;

        // Raw: refused at or right after the handshake, never a PONG.
        let port = m.srv.port();
        let roots = vec![m.p.ca.der()];
        tokio::task::spawn_blocking(move || {
            assert_tls_refused(port, client_cfg(&roots, None), "no client certificate");
            assert_tls_refused(
                port,
                client_cfg(&roots, Some(&rogue)),
                "cert from another CA",
            );
            assert_tls_refused(port, client_cfg(&roots, Some(&expired)), "expired cert");
        })
        .await
        .unwrap();

        // A good client still works afterwards.
        let c = connect_ok(&url, opts_mtls(&m.p.ca_path, &m.alice_files)).await;
        pub_sub_request(&c, "still").await;
    });
}

// ---------------------------------------------------------------- verify_and_map

/// Users by email SAN, DNS SAN and RFC 2253 DN. The alice cert carries both her email and
/// the DN `CN=alice,O=Acme`; dave's email is unknown but his DNS SAN and DN both name users.
const MAP_USERS: &str = r#"
authorization {
  users: [
    {user: "alice@example.com", permissions: {publish: "allowed.>", subscribe: "_INBOX.>"}}
    {user: "CN=alice,O=Acme", permissions: {publish: "dn.>", subscribe: "dn.>"}}
    {user: "dave.example.com", permissions: {publish: "dns.>", subscribe: "dns.>"}}
    {user: "CN=dave,O=Acme", permissions: {publish: "dn.>", subscribe: "dn.>"}}
    {user: "CN=bob,O=Acme"}
  ]
}
"#;

struct Mapped {
    p: Pki,
    srv: Server,
}

fn mapped() -> Mapped {
    let p = pki();
    let conf = format!(
        "{}{MAP_USERS}",
        tls_conf(
            &p.cert,
            &p.key,
            &format!("  ca_file: \"{}\"\n  verify_and_map: true", p.ca_path)
        )
    );
    let srv = Server::with_config(&conf, &[]);
    Mapped { p, srv }
}

fn pub_violation(subject: &str) -> String {
    format!("-ERR 'Permissions Violation for Publish to \"{subject}\"'")
}

fn sub_violation(subject: &str) -> String {
    format!("-ERR 'Permissions Violation for Subscription to \"{subject}\"'")
}

#[test]
fn verify_and_map_info_requires_auth_and_verify() {
    with_timeout(LIMIT, || {
        let m = mapped();
        let r = Raw::connect(m.srv.port());
        for k in ["tls_required", "tls_verify", "auth_required"] {
            assert_eq!(r.info[k], serde_json::json!(true), "INFO {k}: {}", r.info);
        }
    });
}

#[test]
fn verify_and_map_email_san_wins_and_its_permissions_apply() {
    with_timeout(LIMIT, || {
        let m = mapped();
        let alice = m.p.ca.issue(&alice_spec(false));
        let mut r = TlsRaw::connect_ok(m.srv.port(), client_cfg(&[m.p.ca.der()], Some(&alice)));
        // Mapped to "alice@example.com" (email SAN) rather than "CN=alice,O=Acme".
        r.send(b"PUB denied.x 1\r\nx\r\n");
        assert_eq!(r.line(), pub_violation("denied.x"));
        r.send(b"PUB dn.x 1\r\nx\r\n");
        assert_eq!(r.line(), pub_violation("dn.x"));
        r.send(b"SUB dn.y 1\r\n");
        assert_eq!(r.line(), sub_violation("dn.y"));
        // Allowed: no error, the connection stays up.
        r.send(b"SUB _INBOX.abc 2\r\nPUB allowed.x 1\r\nx\r\n");
        r.sync();
        r.expect_nothing(150);
        r.send(b"PUB _INBOX.abc 1\r\nx\r\n");
        assert_eq!(r.line(), pub_violation("_INBOX.abc"));
    });
}

#[test]
fn verify_and_map_dns_san_before_dn_and_dn_when_no_san_matches() {
    with_timeout(LIMIT, || {
        let m = mapped();
        let roots = [m.p.ca.der()];
        // dave: unknown email, DNS SAN user "dave.example.com" wins over DN user.
        let dave = m.p.ca.issue(&Spec {
            subject: &[("O", "Acme"), ("CN", "dave")],
            emails: &["dave@example.com"],
            dns: &["dave.example.com"],
            ..Spec::default()
        });
        let mut r = TlsRaw::connect_ok(m.srv.port(), client_cfg(&roots, Some(&dave)));
        r.send(b"SUB dns.a 1\r\nPUB dns.a 1\r\nx\r\n");
        assert_eq!(r.line(), "MSG dns.a 1 1");
        assert_eq!(r.line(), "x");
        r.send(b"PUB dn.a 1\r\nx\r\n");
        assert_eq!(r.line(), pub_violation("dn.a"));

        // alice without any SAN: falls back to the DN, written RFC 2253 style.
        let alice_dn = m.p.ca.issue(&Spec {
            subject: &[("O", "Acme"), ("CN", "alice")],
            ..Spec::default()
        });
        let mut r = TlsRaw::connect_ok(m.srv.port(), client_cfg(&roots, Some(&alice_dn)));
        r.send(b"SUB dn.b 1\r\nPUB dn.b 1\r\nx\r\n");
        assert_eq!(r.line(), "MSG dn.b 1 1");
        assert_eq!(r.line(), "x");
        r.send(b"PUB allowed.x 1\r\nx\r\n");
        assert_eq!(r.line(), pub_violation("allowed.x"));

        // bob: email and DNS SAN name no user, DN does; that user has no permissions set.
        let bob = m.p.ca.issue(&Spec {
            subject: &[("O", "Acme"), ("CN", "bob")],
            emails: &["bob@example.com"],
            dns: &["bob.example.com"],
            ..Spec::default()
        });
        let mut r = TlsRaw::connect_ok(m.srv.port(), client_cfg(&roots, Some(&bob)));
        r.send(b"SUB anything.at.all 1\r\nPUB anything.at.all 1\r\nx\r\n");
        assert_eq!(r.line(), "MSG anything.at.all 1 1");
        assert_eq!(r.line(), "x");
    });
}

#[test]
fn verify_and_map_cert_naming_no_user_is_refused() {
    run_async(async {
        let m = mapped();
        let carol_spec = Spec {
            subject: &[("O", "Acme"), ("CN", "carol")],
            emails: &["carol@example.com"],
            dns: &["carol.example.com"],
            ..Spec::default()
        };
        let carol = m.p.ca.issue(&carol_spec);
        let carol_files = m.p.files.leaf("carol", &carol);

        // Raw: the handshake succeeds, CONNECT gets the authorization error, then close.
        let port = m.srv.port();
        let cfg = client_cfg(&[m.p.ca.der()], Some(&carol));
        tokio::task::spawn_blocking(move || {
            let mut r = TlsRaw::open(port, cfg);
            r.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
            let got = r.read_until_closed(IO);
            assert_eq!(show(&got), show(b"-ERR 'Authorization Violation'\r\n"));
        })
        .await
        .unwrap();

        let e = connect_fails(
            &m.srv.url(),
            opts_mtls(&m.p.ca_path, &carol_files),
            "cert mapping to no user",
        )
        .await;
        assert_eq!(e.kind(), ConnectErrorKind::AuthorizationViolation, "{e}");

        // No certificate at all: refused at the TLS level (verify is implied).
        let port = m.srv.port();
        let roots = vec![m.p.ca.der()];
        tokio::task::spawn_blocking(move || {
            assert_tls_refused(port, client_cfg(&roots, None), "no client certificate")
        })
        .await
        .unwrap();
    });
}

#[test]
fn verify_and_map_with_async_nats_request_and_permission_error_event() {
    run_async(async {
        let m = mapped();
        let url = m.srv.url();
        let alice = p_leaf(&m.p, "alice", &alice_spec(false));
        let bob = p_leaf(
            &m.p,
            "bob",
            &Spec {
                subject: &[("O", "Acme"), ("CN", "bob")],
                ..Spec::default()
            },
        );

        let responder = connect_ok(&url, opts_mtls(&m.p.ca_path, &bob)).await;
        let mut svc = responder.subscribe("allowed.svc").await.unwrap();
        responder.flush().await.unwrap();
        let r2 = responder.clone();
        let task = tokio::spawn(async move {
            let m = timeout(IO, svc.next()).await.expect("no request").unwrap();
            r2.publish(m.reply.unwrap(), "pong".into()).await.unwrap();
            r2.flush().await.unwrap();
        });

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let opts = opts_mtls(&m.p.ca_path, &alice).event_callback(move |ev| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(ev);
            }
        });
        let c = connect_ok(&url, opts).await;
        let resp = timeout(IO, c.request("allowed.svc", "ping".into()))
            .await
            .expect("request timed out")
            .expect("request");
        assert_eq!(&resp.payload[..], b"pong");
        task.await.unwrap();

        c.publish("denied.x", "x".into()).await.unwrap();
        c.flush().await.unwrap();
        let deadline = Instant::now() + IO;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = timeout(left, rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no permission error event; saw {seen:?}"))
                .expect("event channel closed");
            if let Event::ServerError(ServerError::Other(msg)) = &ev {
                let lower = msg.to_lowercase();
                if lower.contains("permissions violation for publish") && msg.contains("denied.x") {
                    break;
                }
            }
            seen.push(ev.to_string());
        }
    });
}

/// Users named by DNs that differ from the certificates' subjects in
/// spelling or order: an equal DN (types in any case, spaces after commas)
/// is preferred, then one with the same RDNs in another order; a value
/// differing in case matches nothing.
const DN_ORDER_USERS: &str = r#"
authorization {
  users: [
    {user: "C=US,O=Acme,OU=eng,CN=erin", permissions: {publish: "erin.>", subscribe: "erin.>"}}
    {user: "O=Acme,CN=frank", permissions: {publish: "reordered.>", subscribe: "reordered.>"}}
    {user: "CN=frank,O=Acme", permissions: {publish: "exact.>", subscribe: "exact.>"}}
    {user: "cn=gina, o=Acme", permissions: {publish: "gina.>", subscribe: "gina.>"}}
    {user: "CN=hal,O=acme"}
  ]
}
"#;

#[test]
fn verify_and_map_dn_equal_first_then_same_rdns_in_any_order() {
    with_timeout(LIMIT, || {
        let p = pki();
        let conf = format!(
            "{}{DN_ORDER_USERS}",
            tls_conf(
                &p.cert,
                &p.key,
                &format!("  ca_file: \"{}\"\n  verify_and_map: true", p.ca_path)
            )
        );
        let srv = Server::with_config(&conf, &[]);
        let roots = [p.ca.der()];
        let cert = |subject: &'static [(&'static str, &'static str)]| {
            p.ca.issue(&Spec {
                subject,
                ..Spec::default()
            })
        };
        // Subject CN=erin,OU=eng,O=Acme,C=US: only a reordered user exists.
        let erin = cert(&[("C", "US"), ("O", "Acme"), ("OU", "eng"), ("CN", "erin")]);
        let mut r = TlsRaw::connect_ok(srv.port(), client_cfg(&roots, Some(&erin)));
        r.send(b"SUB erin.a 1\r\nPUB erin.a 1\r\nx\r\n");
        assert_eq!(r.line(), "MSG erin.a 1 1");
        assert_eq!(r.line(), "x");
        r.send(b"PUB other 1\r\nx\r\n");
        assert_eq!(r.line(), pub_violation("other"));

        // CN=frank,O=Acme: the equal DN wins over the reordered one listed first.
        let frank = cert(&[("O", "Acme"), ("CN", "frank")]);
        let mut r = TlsRaw::connect_ok(srv.port(), client_cfg(&roots, Some(&frank)));
        r.send(b"SUB exact.a 1\r\nPUB exact.a 1\r\nx\r\n");
        assert_eq!(r.line(), "MSG exact.a 1 1");
        assert_eq!(r.line(), "x");
        r.send(b"PUB reordered.a 1\r\nx\r\n");
        assert_eq!(r.line(), pub_violation("reordered.a"));

        // CN=gina,O=Acme equals "cn=gina, o=Acme".
        let gina = cert(&[("O", "Acme"), ("CN", "gina")]);
        let mut r = TlsRaw::connect_ok(srv.port(), client_cfg(&roots, Some(&gina)));
        r.send(b"SUB gina.a 1\r\nPUB gina.a 1\r\nx\r\n");
        assert_eq!(r.line(), "MSG gina.a 1 1");
        assert_eq!(r.line(), "x");

        // CN=hal,O=Acme: values compare exactly, so "O=acme" is no match.
        let hal = cert(&[("O", "Acme"), ("CN", "hal")]);
        let mut r = TlsRaw::open(srv.port(), client_cfg(&roots, Some(&hal)));
        r.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
        let got = r.read_until_closed(IO);
        assert_eq!(show(&got), show(b"-ERR 'Authorization Violation'\r\n"));
    });
}

fn p_leaf(p: &Pki, name: &str, spec: &Spec) -> (String, String) {
    p.files.leaf(name, &p.ca.issue(spec))
}

// ---------------------------------------------------------------- config errors

#[test]
fn missing_cert_key_or_ca_file_fails_startup_naming_the_file() {
    with_timeout(LIMIT, || {
        let p = pki();
        let missing = |name: &str| p.files.path(name).to_string_lossy().into_owned();
        let cases = [
            tls_conf(&missing("no-such-cert.pem"), &p.key, ""),
            tls_conf(&p.cert, &missing("no-such-key.pem"), ""),
            tls_conf(
                &p.cert,
                &p.key,
                &format!(
                    "  ca_file: \"{}\"\n  verify: true",
                    missing("no-such-ca.pem")
                ),
            ),
        ];
        for (conf, file) in
            cases
                .iter()
                .zip(["no-such-cert.pem", "no-such-key.pem", "no-such-ca.pem"])
        {
            let e = run_to_exit("tls.conf", conf, &[], &[], EXIT_LIMIT);
            assert!(!e.success(), "started with missing {file}:\n{}", e.output);
            assert!(
                e.output.contains(file),
                "output does not name {file}:\n{}",
                e.output
            );
        }
    });
}

#[test]
fn tls_timeout_is_accepted_in_all_forms_and_applied() {
    with_timeout(LIMIT, || {
        let p = pki();
        for t in ["2", "0.5", "\"1s\""] {
            let conf = tls_conf(&p.cert, &p.key, &format!("  timeout: {t}"));
            let e = run_to_exit("tls.conf", &conf, &[], &["-t"], EXIT_LIMIT);
            assert!(e.success(), "timeout: {t} refused:\n{}", e.output);
        }

        // A timeout above the 2 s default keeps a silent client open past 2 s.
        let conf = tls_conf(&p.cert, &p.key, "  timeout: 3.5");
        let srv = Server::with_config(&conf, &[]);
        let mut r = Raw::connect(srv.port());
        let start = Instant::now();
        r.expect_nothing(2600);
        let got = r.read_until_closed(Duration::from_secs(5));
        let waited = start.elapsed();
        assert!(got.is_empty(), "idle client got {}", show(&got));
        assert!(
            waited >= Duration::from_millis(3000),
            "closed after {waited:?}, before the configured 3.5 s"
        );
        // And TLS clients still connect normally.
        TlsRaw::connect_ok(srv.port(), client_cfg(&[p.ca.der()], None));
    });
}

// ---------------------------------------------------------------- reload (SIGHUP)

/// Poll until a fresh TLS client trusting only `root` completes PING/PONG.
fn wait_trusted(port: u16, root: &Ca) -> bool {
    let cfg = client_cfg(&[root.der()], None);
    wait_until(Duration::from_secs(10), || {
        let Ok(mut r) = TlsRaw::connect(port, cfg.clone()) else {
            return false;
        };
        if !r.try_send(b"CONNECT {\"verbose\":false}\r\nPING\r\n") {
            return false;
        }
        // PONG (or a keepalive PING first) means the server accepted us.
        let deadline = Instant::now() + IO;
        loop {
            if let Some(pos) = r.buf.windows(2).position(|w| w == b"\r\n") {
                return &r.buf[..pos] == b"PONG" || &r.buf[..pos] == b"PING";
            }
            match r.fill(deadline) {
                Ok(n) if n > 0 => {}
                _ => return false,
            }
        }
    })
}

fn handshake_fails(port: u16, root: &Ca) -> bool {
    TlsRaw::connect(port, client_cfg(&[root.der()], None)).is_err()
}

#[test]
fn reload_with_new_cert_files_applies_to_new_connections() {
    with_timeout(LIMIT, || {
        let p = pki();
        let ca2 = Ca::new("Natrix Test CA 2");
        let (cert2, key2) = p.files.leaf("server2", &ca2.server());
        let srv = Server::with_config(&tls_conf(&p.cert, &p.key, ""), &[]);
        assert!(
            wait_trusted(srv.port(), &p.ca),
            "old CA not trusted at start"
        );
        assert!(
            handshake_fails(srv.port(), &ca2),
            "new CA trusted before reload"
        );
        let mut old = TlsRaw::connect_ok(srv.port(), client_cfg(&[p.ca.der()], None));
        old.send(b"SUB keep 1\r\n");
        old.sync();

        srv.reload_with(&tls_conf(&cert2, &key2, ""));
        assert!(
            wait_trusted(srv.port(), &ca2),
            "client trusting the new CA never got in after reload; log:\n{}",
            srv.log()
        );
        assert!(
            handshake_fails(srv.port(), &p.ca),
            "old certificate still served"
        );

        // A connection made before the reload keeps working.
        old.send(b"PUB keep 2\r\nok\r\n");
        assert_eq!(old.line(), "MSG keep 1 2");
        assert_eq!(old.line(), "ok");
    });
}

#[test]
fn reload_rereads_cert_files_rewritten_in_place() {
    with_timeout(LIMIT, || {
        let p = pki();
        let ca2 = Ca::new("Natrix Test CA 2");
        let conf = tls_conf(&p.cert, &p.key, "");
        let srv = Server::with_config(&conf, &[]);
        assert!(
            wait_trusted(srv.port(), &p.ca),
            "old CA not trusted at start"
        );

        // Same config text, new file contents (certificate rotation).
        p.files.leaf("server", &ca2.server());
        srv.reload();
        assert!(
            wait_trusted(srv.port(), &ca2),
            "rewritten certificate not picked up on SIGHUP; log:\n{}",
            srv.log()
        );
        assert!(
            handshake_fails(srv.port(), &p.ca),
            "old certificate still served"
        );
    });
}

#[test]
fn reload_pointing_to_missing_cert_keeps_serving_old_certs() {
    with_timeout(LIMIT, || {
        let p = pki();
        let srv = Server::with_config(&tls_conf(&p.cert, &p.key, ""), &[]);
        let mut before = TlsRaw::connect_ok(srv.port(), client_cfg(&[p.ca.der()], None));
        before.send(b"SUB keep 1\r\n");
        before.sync();

        let missing = p.files.path("missing-cert.pem");
        srv.reload_with(&tls_conf(&missing.to_string_lossy(), &p.key, ""));
        // The reference logs "Failed to reload server configuration: ...: error parsing
        // X509 certificate/key pair: open .../missing-cert.pem: no such file or directory".
        assert!(
            srv.wait_for_log("missing-cert.pem", Duration::from_secs(10)),
            "failed reload not reported naming the file; log:\n{}",
            srv.log()
        );
        let mut srv = srv;
        assert!(srv.is_running(), "server exited after a bad reload");
        assert!(
            wait_trusted(srv.port(), &p.ca),
            "old certificate no longer served"
        );
        let mut after = TlsRaw::connect_ok(srv.port(), client_cfg(&[p.ca.der()], None));
        after.send(b"PUB keep 2\r\nok\r\n");
        assert_eq!(before.line(), "MSG keep 1 2");
        assert_eq!(before.line(), "ok");
    });
}

#[test]
fn tls_flags_enable_tls_without_a_config_file() {
    with_timeout(LIMIT, || {
        let p = pki();
        let srv = Server::start(&["--tls", "--tlscert", &p.cert, "--tlskey", &p.key]);
        assert!(
            wait_trusted(srv.port(), &p.ca),
            "TLS client could not connect; log:\n{}",
            srv.log()
        );
        let mut r = TlsRaw::connect_ok(srv.port(), client_cfg(&[p.ca.der()], None));
        assert_eq!(r.info["tls_required"], serde_json::json!(true));
        r.send(b"SUB f 1\r\nPUB f 2\r\nok\r\n");
        assert_eq!(r.line(), "MSG f 1 2");
    });
}
