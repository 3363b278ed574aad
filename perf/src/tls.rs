//! TLS for the TLS scenarios: a throwaway CA and server certificate written
//! once per run, the client configuration that trusts that CA, and a
//! buffered client stream over rustls.
//!
//! The client offers exactly one protocol version and cipher suite
//! ([`SUITE`]), so both servers are measured doing the same cryptography.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use crate::client::{is_timeout, remaining};
use crate::error::{bail, Context, Error, Result};

/// The only cipher suite the client offers (TLS 1.3).
pub const SUITE: &str = "TLS13_AES_128_GCM_SHA256";

/// Ciphertext read from the socket per `read(2)` at most. rustls takes it
/// in record-sized pieces from memory, so one large read serves many
/// records.
const MAX_CIPHER_BUF: usize = 256 << 10;
/// One full TLS record plus header and tag.
const MIN_CIPHER_BUF: usize = 16 * 1024 + 512;

/// Certificate and key files the servers are configured with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerCerts {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// What a run needs for its TLS scenarios.
#[derive(Clone, Debug)]
pub struct Material {
    pub server: ServerCerts,
    pub client: Arc<ClientConfig>,
}

/// An in-memory CA and a server certificate it signed (SAN 127.0.0.1 and
/// localhost), all PEM or DER as the consumer needs.
pub struct Generated {
    pub ca_pem: String,
    pub ca_der: CertificateDer<'static>,
    pub cert_pem: String,
    pub cert_der: CertificateDer<'static>,
    pub key_pem: String,
    pub key_der: Vec<u8>,
}

pub fn generate_certs() -> Result<Generated> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let tls_err = |e: rcgen::Error| Error(format!("certificate generation: {e}"));

    let ca_key = KeyPair::generate().map_err(tls_err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    ca.distinguished_name
        .push(DnType::CommonName, "natrix-bench throwaway CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).map_err(tls_err)?;

    let key = KeyPair::generate().map_err(tls_err)?;
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .map_err(tls_err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "natrix-bench server");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca_cert, &ca_key).map_err(tls_err)?;

    Ok(Generated {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().clone(),
        cert_pem: cert.pem(),
        cert_der: cert.der().clone(),
        key_pem: key.serialize_pem(),
        key_der: key.serialize_der(),
    })
}

/// Generates the certificates into `dir` (`ca.pem`, `server-cert.pem`,
/// `server-key.pem`) and builds the client configuration trusting the CA.
pub fn prepare(dir: &Path) -> Result<Material> {
    std::fs::create_dir_all(dir).context(format_args!("create {}", dir.display()))?;
    let g = generate_certs()?;
    let server = ServerCerts {
        cert_file: dir.join("server-cert.pem"),
        key_file: dir.join("server-key.pem"),
    };
    for (path, text) in [
        (dir.join("ca.pem"), &g.ca_pem),
        (server.cert_file.clone(), &g.cert_pem),
        (server.key_file.clone(), &g.key_pem),
    ] {
        std::fs::write(&path, text).context(format_args!("write {}", path.display()))?;
    }
    Ok(Material {
        server,
        client: client_config(g.ca_der)?,
    })
}

fn provider() -> rustls::crypto::CryptoProvider {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites = vec![rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256];
    p
}

pub fn client_config(ca: CertificateDer<'static>) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots.add(ca).map_err(|e| Error(format!("trust CA: {e}")))?;
    let config = ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error(format!("client TLS config: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A server configuration for the in-memory self-test.
pub fn server_config(g: &Generated) -> Result<Arc<rustls::ServerConfig>> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(g.key_der.clone()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error(format!("server TLS config: {e}")))?
        .with_no_client_auth()
        .with_single_cert(vec![g.cert_der.clone()], key)
        .map_err(|e| Error(format!("server TLS config: {e}")))?;
    Ok(Arc::new(config))
}

/// Renders a path as a double-quoted NATS configuration string.
pub fn conf_string(path: &Path) -> String {
    let mut out = String::from("\"");
    for c in path.display().to_string().chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Size of the ciphertext buffer for a connection whose plaintext frame
/// buffer is `plain` bytes.
pub fn cipher_buf_len(plain: usize) -> usize {
    plain.clamp(MIN_CIPHER_BUF, MAX_CIPHER_BUF)
}

/// A client TLS session over `S` with batched I/O: reads take as much
/// ciphertext as the socket has (up to the buffer) and decrypt all of it
/// before reading again; a write encrypts the whole batch and hands it to
/// the socket in one `write_all`.
///
/// The session sits behind a mutex so a connection can be split into a
/// reading and a writing half on different threads (the latency scenario).
/// Only writers touch the socket's send side: TLS data the read path queues
/// (e.g. a key update answer) goes out with the next write.
pub struct TlsStream<S> {
    sock: S,
    session: Arc<Mutex<ClientConnection>>,
    cipher: Vec<u8>,
    start: usize,
    end: usize,
    sealed: Vec<u8>,
}

impl<S: Read + Write> TlsStream<S> {
    /// Wraps an established session; `cipher_len` sizes the read buffer.
    pub fn new(sock: S, session: ClientConnection, cipher_len: usize) -> Self {
        let mut session = session;
        // Whole batches are encrypted at once; the caller bounds their size.
        session.set_buffer_limit(None);
        TlsStream {
            sock,
            session: Arc::new(Mutex::new(session)),
            cipher: vec![0; cipher_len],
            start: 0,
            end: 0,
            sealed: Vec::new(),
        }
    }

    pub fn sock(&self) -> &S {
        &self.sock
    }
}

fn lock(session: &Mutex<ClientConnection>) -> io::Result<MutexGuard<'_, ClientConnection>> {
    session
        .lock()
        .map_err(|_| io::Error::other("TLS session lock poisoned"))
}

impl TlsStream<TcpStream> {
    /// Performs the TLS handshake on a socket whose `INFO` has been read.
    pub fn connect(
        sock: TcpStream,
        config: Arc<ClientConfig>,
        cipher_len: usize,
        deadline: Instant,
    ) -> Result<Self> {
        let name = ServerName::IpAddress(sock.peer_addr()?.ip().into());
        let mut session =
            ClientConnection::new(config, name).map_err(|e| Error(format!("TLS client: {e}")))?;
        let mut io = &sock;
        while session.is_handshaking() {
            match session.complete_io(&mut io) {
                Ok(_) => {}
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => bail!("TLS handshake: {e}"),
            }
            if session.is_handshaking() && remaining(deadline).is_zero() {
                bail!("timed out in the TLS handshake");
            }
        }
        Ok(TlsStream::new(sock, session, cipher_len))
    }

    /// A second handle on the same session for writing from another thread.
    pub fn try_clone_writer(&self) -> io::Result<Self> {
        Ok(TlsStream {
            sock: self.sock.try_clone()?,
            session: self.session.clone(),
            cipher: Vec::new(),
            start: 0,
            end: 0,
            sealed: Vec::new(),
        })
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
    /// Fills `buf` with as much plaintext as the buffered ciphertext yields;
    /// reads the socket only when nothing at all is ready. A socket timeout
    /// surfaces as the socket's error, like a plain stream's.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut filled = 0;
        loop {
            {
                let mut session = lock(&self.session)?;
                loop {
                    match session.reader().read(&mut buf[filled..]) {
                        // close_notify: the server closed the session.
                        Ok(0) => return Ok(filled),
                        Ok(n) => {
                            filled += n;
                            if filled == buf.len() {
                                return Ok(filled);
                            }
                            continue;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) if filled > 0 => return Ok(filled),
                        Err(e) => return Err(e),
                    }
                    if self.start == self.end {
                        break;
                    }
                    let n = session.read_tls(&mut &self.cipher[self.start..self.end])?;
                    self.start += n;
                    session
                        .process_new_packets()
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                }
            }
            if filled > 0 {
                return Ok(filled);
            }
            self.start = 0;
            self.end = 0;
            match self.sock.read(&mut self.cipher) {
                // TCP EOF without close_notify: report it as EOF all the same.
                Ok(0) => return Ok(0),
                Ok(n) => self.end = n,
                Err(e) => return Err(e),
            }
        }
    }
}

impl<S: Read + Write> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    /// Encrypts all of `buf` under the session lock, then writes the
    /// records outside it, so a reader on another thread never waits for
    /// the socket.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        {
            let mut session = lock(&self.session)?;
            if !buf.is_empty() {
                session.writer().write_all(buf)?;
            }
            while session.wants_write() {
                session.write_tls(&mut self.sealed)?;
            }
        }
        let r = self.sock.write_all(&self.sealed);
        self.sealed.clear();
        r
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_all(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client and server session joined in memory, handshake done.
    pub(crate) fn pair() -> (ClientConnection, rustls::ServerConnection) {
        let g = generate_certs().unwrap();
        let mut client = ClientConnection::new(
            client_config(g.ca_der.clone()).unwrap(),
            ServerName::try_from("127.0.0.1").unwrap(),
        )
        .unwrap();
        let mut server = rustls::ServerConnection::new(server_config(&g).unwrap()).unwrap();
        crate::selftest::handshake_in_memory(&mut client, &mut server).unwrap();
        (client, server)
    }

    #[test]
    fn generated_certificate_verifies_for_loopback() {
        let (client, _server) = pair();
        assert!(!client.is_handshaking());
        assert_eq!(
            client.negotiated_cipher_suite().unwrap().suite(),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
        );
        assert_eq!(
            format!("{:?}", client.negotiated_cipher_suite().unwrap().suite()),
            SUITE
        );
    }

    #[test]
    fn pem_files_are_written() {
        let dir = std::env::temp_dir().join(format!("natrix-bench-tls-{}", std::process::id()));
        let m = prepare(&dir).unwrap();
        let cert = std::fs::read_to_string(&m.server.cert_file).unwrap();
        let key = std::fs::read_to_string(&m.server.key_file).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(dir.join("ca.pem").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Server records arrive in arbitrary pieces; the stream hands out the
    /// exact plaintext, and writes come out as records the server decrypts.
    #[test]
    fn stream_round_trips_through_a_server_session() {
        let (client, mut server) = pair();
        let plain: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        server.set_buffer_limit(None);
        server.writer().write_all(&plain).unwrap();
        let mut wire = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut wire).unwrap();
        }
        let sock = Pipe {
            input: crate::selftest::Chunked {
                data: &wire,
                chunk: 7000,
            },
            output: Vec::new(),
        };
        let mut s = TlsStream::new(sock, client, cipher_buf_len(20_000));
        let mut got = Vec::new();
        let mut buf = vec![0; 50_000];
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, plain);

        s.write_all(b"PUB a 2\r\nhi\r\n").unwrap();
        s.write_all(&plain).unwrap();
        let out = std::mem::take(&mut s.sock.output);
        let mut rest = &out[..];
        let mut echoed = Vec::new();
        while !rest.is_empty() {
            let n = server.read_tls(&mut rest).unwrap();
            assert!(n > 0);
            server.process_new_packets().unwrap();
            let mut chunk = vec![0; 1 << 20];
            if let Ok(n) = server.reader().read(&mut chunk) {
                echoed.extend_from_slice(&chunk[..n]);
            }
        }
        let mut want = b"PUB a 2\r\nhi\r\n".to_vec();
        want.extend_from_slice(&plain);
        assert_eq!(echoed, want);
    }

    struct Pipe<'a> {
        input: crate::selftest::Chunked<'a>,
        output: Vec<u8>,
    }

    impl Read for Pipe<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Pipe<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn config_strings_are_quoted_and_escaped() {
        assert_eq!(conf_string(Path::new("/a b/c.pem")), "\"/a b/c.pem\"");
        assert_eq!(conf_string(Path::new("/x\"y\\z")), "\"/x\\\"y\\\\z\"");
    }

    #[test]
    fn cipher_buffer_is_clamped() {
        assert_eq!(cipher_buf_len(8 << 10), MIN_CIPHER_BUF);
        assert_eq!(cipher_buf_len(100_000), 100_000);
        assert_eq!(cipher_buf_len(1 << 20), MAX_CIPHER_BUF);
    }
}
