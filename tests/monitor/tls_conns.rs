//! `/connz` for TLS clients: the negotiated version and cipher suite, and
//! with `auth` the client's certificate chain (`tls_peer_certs`).

use super::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::io::{Read, Write};
use std::sync::Arc;

struct Pki {
    _dir: common::TempDir,
    conf: String,
    ca_der: CertificateDer<'static>,
    client_der: CertificateDer<'static>,
    client_key: Vec<u8>,
}

/// A CA, a server certificate for localhost and a client certificate
/// (O=Natrix Tests, CN=mon client), and a config requiring client
/// certificates.
fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, "mon test CA");
    let ca = p.self_signed(&ca_key).unwrap();
    let leaf = |names: Vec<String>, cn: &str| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name
            .push(DnType::OrganizationName, "Natrix Tests");
        p.distinguished_name.push(DnType::CommonName, cn);
        (p.signed_by(&key, &ca, &ca_key).unwrap(), key)
    };
    let (srv, srv_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()], "localhost");
    let (cli, cli_key) = leaf(Vec::new(), "mon client");
    let dir = common::TempDir::new("mon-connz-tls");
    let put = |n: &str, t: String| {
        let p = dir.path().join(n);
        std::fs::write(&p, t).unwrap();
        p.display().to_string()
    };
    let conf = format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify: true }}\n",
        put("server.pem", srv.pem()),
        put("server-key.pem", srv_key.serialize_pem()),
        put("ca.pem", ca.pem()),
    );
    Pki {
        _dir: dir,
        conf,
        ca_der: ca.der().clone(),
        client_der: cli.der().clone(),
        client_key: cli_key.serialize_der(),
    }
}

/// Go's name for a suite rustls negotiated (TLS 1.3 suites without "13").
fn go_suite(s: rustls::SupportedCipherSuite) -> String {
    let n = format!("{:?}", s.suite());
    n.strip_prefix("TLS13_")
        .map_or(n.clone(), |r| format!("TLS_{r}"))
}

/// A TLS client (INFO in clear, then the handshake) that sent CONNECT
/// and got its PONG; and the suite it negotiated.
type TlsStream = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

fn tls_client(port: u16, pki: &Pki, name: &str) -> (TlsStream, String) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![pki.client_der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.client_key.clone())),
        )
        .unwrap();
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut info = Vec::new();
    let mut b = [0u8; 1];
    while !info.ends_with(b"\r\n") && info.len() < 65536 {
        assert_eq!(sock.read(&mut b).unwrap(), 1, "INFO");
        info.push(b[0]);
    }
    let conn =
        rustls::ClientConnection::new(Arc::new(cfg), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(
        format!("CONNECT {{\"verbose\":false,\"name\":\"{name}\",\"lang\":\"rust\"}}\r\nPING\r\n")
            .as_bytes(),
    )
    .unwrap();
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("PONG\r\n") && got.len() < 65536 {
        let n = tls.read(&mut b).unwrap();
        assert_eq!(n, 1, "PONG");
        got.push(b[0]);
    }
    let suite = go_suite(tls.conn.negotiated_cipher_suite().unwrap());
    (tls, suite)
}

fn sha256_hex(b: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[test]
fn connz_shows_tls_version_cipher_and_peer_certs_with_auth() {
    with_timeout(LIMIT, || {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pki = pki();
        let srv = start_conf(&pki.conf);
        let port = srv.monitor_port();
        let (_c, suite) = tls_client(srv.port(), &pki, "tls-mon");
        let v = get_json(port, "/connz");
        let c = &conns(&v)[0];
        assert_eq!(c["name"], "tls-mon");
        assert_eq!(s(c, "tls_version"), "1.3");
        assert_eq!(s(c, "tls_cipher_suite"), suite);
        assert!(c.get("tls_peer_certs").is_none(), "only with auth: {c}");

        let v = get_json(port, "/connz?auth=1");
        let certs = conns(&v)[0]["tls_peer_certs"]
            .as_array()
            .expect("tls_peer_certs with auth")
            .clone();
        assert_eq!(certs.len(), 1, "{certs:?}");
        let cert = &certs[0];
        assert_eq!(s(cert, "subject"), "CN=mon client,O=Natrix Tests");
        assert_eq!(s(cert, "cert_sha256"), sha256_hex(&pki.client_der));
        use x509_parser::prelude::{FromDer, X509Certificate};
        let (_, x) = X509Certificate::from_der(&pki.client_der).unwrap();
        assert_eq!(
            s(cert, "spki_sha256"),
            sha256_hex(x.tbs_certificate.subject_pki.raw)
        );
        let keys: Vec<&String> = cert.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 3, "{cert}");
    });
}

#[test]
fn closed_tls_connection_keeps_version_and_cipher_but_not_certs() {
    with_timeout(LIMIT, || {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pki = pki();
        let srv = start_conf(&pki.conf);
        let port = srv.monitor_port();
        let (c, suite) = tls_client(srv.port(), &pki, "tls-gone");
        drop(c);
        let mut v = Value::Null;
        common::wait_until(Duration::from_secs(10), || {
            v = get_json(port, "/connz?state=closed&auth=1");
            conns(&v).iter().any(|c| c["name"] == "tls-gone")
        });
        let c = conns(&v)
            .iter()
            .find(|c| c["name"] == "tls-gone")
            .unwrap_or_else(|| panic!("closed TLS client not listed: {v}"));
        assert_eq!(s(c, "tls_version"), "1.3");
        assert_eq!(s(c, "tls_cipher_suite"), suite);
        assert!(c.get("tls_peer_certs").is_none(), "{c}");
    });
}
