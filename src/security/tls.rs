//! TLS for client connections, with rustls.
//!
//! The handshake and the encryption run on the shard that owns the
//! connection, inside its two tasks: the reader feeds raw socket bytes to
//! the rustls state machine and takes plaintext out; the writer puts
//! plaintext in and sends the records rustls produces. The state machine is
//! shared between them in a `RefCell`, never borrowed across an await, so
//! the design stays lock-free and thread-per-core.
//!
//! [`TlsSettings`] is built from the `tls {}` block at start and on reload
//! (certificate files are re-read then); a connection keeps the settings it
//! was accepted with.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::config::TlsConfig;

/// What the server needs to accept TLS clients.
#[derive(Clone)]
pub struct TlsSettings {
    pub config: Arc<ServerConfig>,
    /// The same certificate without client authentication, for HTTPS
    /// monitoring (as the reference serves it).
    pub monitor_config: Arc<ServerConfig>,
    /// A client certificate signed by the CA is required.
    pub verify: bool,
    /// The client certificate's identity selects the user.
    pub verify_and_map: bool,
    pub timeout: Duration,
    /// The TLS handshake comes before INFO (nats-server 2.10's
    /// `handshake_first`).
    pub handshake_first: bool,
    /// With `handshake_first: "auto"` or a duration: how long to wait for
    /// the client to start the handshake before sending INFO in the clear
    /// as without `handshake_first` (clients of both kinds connect).
    pub handshake_first_fallback: Option<Duration>,
    /// `connection_rate_limit`: new TLS connections allowed per second
    /// (0: no limit).
    pub rate_limit: i64,
    /// SHA-256 hex fingerprints of the only client certificates accepted;
    /// empty accepts any that verifies.
    pub pinned: Vec<String>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("verify", &self.verify)
            .field("verify_and_map", &self.verify_and_map)
            .field("timeout", &self.timeout)
            .field("handshake_first", &self.handshake_first)
            .field("handshake_first_fallback", &self.handshake_first_fallback)
            .finish()
    }
}

fn file_err(what: &str, path: &Path, e: impl std::fmt::Display) -> String {
    format!("tls: error loading {what} {}: {e}", path.display())
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err("certificate file", path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err("certificate file", path, e))?;
    if certs.is_empty() {
        return Err(file_err(
            "certificate file",
            path,
            "no PEM certificate found",
        ));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_err("key file", path, e))
}

/// Protocol versions a `tls` block allows.
type Versions = &'static [&'static rustls::SupportedProtocolVersion];

static TLS13_ONLY: Versions = &[&rustls::version::TLS13];

/// The crypto provider and protocol versions a `tls` block asks for:
/// `cipher_suites`, `curve_preferences` and `min_version`, shared by the
/// client listener and the https account resolver.
fn provider_and_versions(
    t: &TlsConfig,
) -> Result<(rustls::crypto::CryptoProvider, Versions), String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !t.cipher_suites.is_empty() {
        let mut suites = Vec::new();
        for name in &t.cipher_suites {
            suites.push(
                cipher_suite(name)
                    .ok_or_else(|| format!("tls: cipher suite {name:?} is not supported"))?,
            );
        }
        // TLS 1.3 suites are not configurable in the reference; keep them.
        for s in rustls::crypto::ring::DEFAULT_CIPHER_SUITES {
            if matches!(s, rustls::SupportedCipherSuite::Tls13(_)) && !suites.contains(s) {
                suites.push(*s);
            }
        }
        provider.cipher_suites = suites;
    }
    if !t.curve_preferences.is_empty() {
        use rustls::crypto::ring::kx_group;
        let mut groups = Vec::new();
        for name in &t.curve_preferences {
            match name.as_str() {
                "X25519" => groups.push(kx_group::X25519),
                "CurveP256" => groups.push(kx_group::SECP256R1),
                "CurveP384" => groups.push(kx_group::SECP384R1),
                // The reference's Go TLS has P-521; rustls with ring
                // does not. The other curves listed still apply.
                other => crate::warn!(
                    "tls: curve_preferences: {other} is not supported by natrix and is left out"
                ),
            }
        }
        if groups.is_empty() {
            return Err("tls: curve_preferences lists no curve natrix supports \
                        (X25519, CurveP256, CurveP384)"
                .into());
        }
        // In the listed order, which is the order of preference.
        provider.kx_groups = groups;
    }
    let versions: &[&rustls::SupportedProtocolVersion] = match t.min_version.as_deref() {
        None | Some("1.2") | Some("TLS1.2") | Some("tls1.2") => rustls::ALL_VERSIONS,
        Some("1.3") | Some("TLS1.3") | Some("tls1.3") => TLS13_ONLY,
        Some(v) => {
            return Err(format!(
                "tls: min_version {v:?} is not supported (use \"1.2\" or \"1.3\")"
            ))
        }
    };
    Ok((provider, versions))
}

/// The rustls cipher suite for a Go/IANA suite name, if rustls has it.
fn cipher_suite(name: &str) -> Option<rustls::SupportedCipherSuite> {
    use rustls::crypto::ring::cipher_suite as cs;
    Some(match name {
        "TLS_AES_128_GCM_SHA256" => cs::TLS13_AES_128_GCM_SHA256,
        "TLS_AES_256_GCM_SHA384" => cs::TLS13_AES_256_GCM_SHA384,
        "TLS_CHACHA20_POLY1305_SHA256" => cs::TLS13_CHACHA20_POLY1305_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"
        | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        _ => return None,
    })
}

impl TlsSettings {
    /// Loads certificates and keys and builds the rustls configuration.
    /// Errors name the file and the problem.
    pub fn from_config(t: &TlsConfig) -> Result<TlsSettings, String> {
        let cert_file: &PathBuf = t.cert_file.as_ref().ok_or("tls: cert_file is required")?;
        let key_file: &PathBuf = t.key_file.as_ref().ok_or("tls: key_file is required")?;
        let certs = load_certs(cert_file)?;
        let key = load_key(key_file)?;

        let (provider, versions) = provider_and_versions(t)?;
        let provider = Arc::new(provider);
        let monitor_config = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| format!("tls: {e}"))?
            .with_no_client_auth()
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(|e| {
                format!(
                    "tls: certificate {} and key {} do not form a valid pair: {e}",
                    cert_file.display(),
                    key_file.display()
                )
            })?;
        let builder = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| format!("tls: {e}"))?;
        let verify = t.verify || t.verify_and_map;
        let builder = if verify {
            let ca = t.ca_file.as_ref().ok_or("tls: verify requires ca_file")?;
            let mut roots = RootCertStore::empty();
            for c in load_certs(ca)? {
                roots.add(c).map_err(|e| file_err("CA file", ca, e))?;
            }
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(|e| file_err("CA file", ca, e))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            if let Some(ca) = &t.ca_file {
                // The reference loads ca_file even without verify; so do we,
                // so a bad file fails here too.
                load_certs(ca)?;
            }
            builder.with_no_client_auth()
        };
        let config = builder.with_single_cert(certs, key).map_err(|e| {
            format!(
                "tls: certificate {} and key {} do not form a valid pair: {e}",
                cert_file.display(),
                key_file.display()
            )
        })?;
        Ok(TlsSettings {
            config: Arc::new(config),
            monitor_config: Arc::new(monitor_config),
            verify,
            verify_and_map: t.verify_and_map,
            timeout: t.timeout,
            handshake_first: t.handshake_first,
            handshake_first_fallback: t.handshake_first_fallback,
            rate_limit: t.connection_rate_limit,
            pinned: t
                .pinned_certs
                .iter()
                .map(|p| p.to_ascii_lowercase())
                .collect(),
        })
    }
}

/// A connection's TLS state, shared by its reader and writer tasks.
pub struct TlsConn {
    pub conn: rustls::ServerConnection,
}

impl TlsConn {
    pub fn new(settings: &TlsSettings) -> io::Result<TlsConn> {
        let mut conn =
            rustls::ServerConnection::new(settings.config.clone()).map_err(io::Error::other)?;
        // Outbound volume is already bounded by max_pending, and the writer
        // seals a whole batch at once, so rustls's own cap is lifted.
        conn.set_buffer_limit(None);
        Ok(TlsConn { conn })
    }

    /// Feeds raw socket bytes from the front of `raw`, at most one record's
    /// worth, advancing it. Callers drain plaintext between calls, which
    /// keeps rustls's plaintext buffer from filling up. Returns whether the
    /// peer has sent close_notify.
    pub fn feed(&mut self, raw: &mut &[u8]) -> Result<bool, rustls::Error> {
        match self.conn.read_tls(raw) {
            Ok(_) => self.conn.process_new_packets().map(|s| s.peer_has_closed()),
            Err(e) => Err(rustls::Error::General(e.to_string())),
        }
    }

    /// Queues our close_notify alert; the writer sends it.
    pub fn send_close_notify(&mut self) {
        self.conn.send_close_notify();
    }

    /// Moves decrypted bytes into `out`, returning how many; 0 when none
    /// are ready. An orderly close_notify also reads as 0.
    pub fn read_plain(&mut self, out: &mut [u8]) -> usize {
        use std::io::Read;
        self.conn.reader().read(out).unwrap_or_default()
    }

    /// Encrypts `plain` and appends the resulting records to `raw`.
    pub fn encrypt(&mut self, plain: &[u8], raw: &mut Vec<u8>) -> io::Result<()> {
        use std::io::Write;
        if !plain.is_empty() {
            self.conn.writer().write_all(plain)?;
        }
        self.drain(raw)
    }

    /// Appends pending TLS records (handshake, alerts, data) to `raw`.
    pub fn drain(&mut self, raw: &mut Vec<u8>) -> io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(raw)?;
        }
        Ok(())
    }

    /// The verified client certificate's identities, in the order the
    /// reference tries them for verify_and_map: email SANs, DNS SANs, URI
    /// SANs, then the subject DN in RFC 2253 form.
    pub fn peer_identities(&self) -> Vec<String> {
        let Some(cert) = self.conn.peer_certificates().and_then(|c| c.first()) else {
            return Vec::new();
        };
        cert_identities(cert.as_ref())
    }

    /// The verified client certificate's subject DN, as verify_and_map
    /// compares it (`None` where the reference cannot read it).
    pub fn peer_dn(&self) -> Option<crate::security::dn::Dn> {
        let cert = self.conn.peer_certificates()?.first()?;
        crate::security::dn::Dn::of_certificate(cert.as_ref())
    }

    /// SHA-256 of the client certificate, lowercase hex (for pinned_certs).
    pub fn peer_fingerprint(&self) -> Option<String> {
        let cert = self.conn.peer_certificates()?.first()?;
        let d = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
        Some(d.as_ref().iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// Identities of a DER certificate in verify_and_map order.
pub fn cert_identities(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let (mut emails, mut dns, mut uris) = (Vec::new(), Vec::new(), Vec::new());
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::RFC822Name(e) => emails.push(e.to_string()),
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                GeneralName::URI(u) => uris.push(u.to_string()),
                _ => {}
            }
        }
    }
    let mut out = emails;
    out.extend(dns);
    out.extend(uris);
    out.push(rfc2253(cert.subject()));
    out
}

/// A distinguished name in RFC 2253 form: most specific RDN first,
/// `CN=alice,O=Acme,C=US`, with the standard short attribute names.
fn rfc2253(name: &x509_parser::x509::X509Name<'_>) -> String {
    use x509_parser::oid_registry as oids;
    let mut parts: Vec<String> = Vec::new();
    for rdn in name.iter() {
        let attrs: Vec<String> = rdn
            .iter()
            .map(|a| {
                let oid = a.attr_type();
                let key = if *oid == oids::OID_X509_COMMON_NAME {
                    "CN".to_string()
                } else if *oid == oids::OID_X509_ORGANIZATION_NAME {
                    "O".to_string()
                } else if *oid == oids::OID_X509_ORGANIZATIONAL_UNIT {
                    "OU".to_string()
                } else if *oid == oids::OID_X509_COUNTRY_NAME {
                    "C".to_string()
                } else if *oid == oids::OID_X509_LOCALITY_NAME {
                    "L".to_string()
                } else if *oid == oids::OID_X509_STATE_OR_PROVINCE_NAME {
                    "ST".to_string()
                } else if *oid == oids::OID_X509_STREET_ADDRESS {
                    "STREET".to_string()
                } else if *oid == oids::OID_DOMAIN_COMPONENT {
                    "DC".to_string()
                } else if *oid == oids::OID_PKCS9_EMAIL_ADDRESS {
                    "emailAddress".to_string()
                } else {
                    oid.to_id_string()
                };
                let val = a.as_str().map(escape_dn_value).unwrap_or_default();
                format!("{key}={val}")
            })
            .collect();
        parts.push(attrs.join("+"));
    }
    parts.reverse();
    parts.join(",")
}

fn escape_dn_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i + 1 == v.chars().count() && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------
// The client side: an https account resolver

/// Where Linux distributions keep the system's CA bundle, in the order
/// Go's `crypto/x509` looks (it is what the reference trusts for an https
/// account server without `resolver_tls { ca_file }`).
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The system's CA certificates: `$SSL_CERT_FILE` when set, else the
/// first bundle of [`SYSTEM_CA_BUNDLES`] that holds any.
fn system_roots() -> Result<RootCertStore, String> {
    let env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let candidates = env
        .iter()
        .cloned()
        .chain(SYSTEM_CA_BUNDLES.iter().map(PathBuf::from));
    for path in candidates {
        let Ok(iter) = CertificateDer::pem_file_iter(&path) else {
            continue;
        };
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(iter.filter_map(Result::ok));
        if !roots.is_empty() {
            return Ok(roots);
        }
    }
    Err(format!(
        "no CA certificates found in the system's bundles ({}); set resolver_tls {{ ca_file }}",
        SYSTEM_CA_BUNDLES.join(", ")
    ))
}

/// The TLS client configuration for an https account server, from
/// `resolver_tls` as the reference reads it: `ca_file` is the set of
/// trusted roots (the system's without it), `cert_file`/`key_file` a
/// client certificate to present, `insecure` skips verifying the server;
/// `cipher_suites`, `curve_preferences` and `min_version` as for clients.
pub fn resolver_client_config(t: Option<&TlsConfig>) -> Result<Arc<rustls::ClientConfig>, String> {
    let (provider, versions) = match t {
        Some(t) => provider_and_versions(t).map_err(|e| format!("resolver_{e}"))?,
        None => (
            rustls::crypto::ring::default_provider(),
            rustls::ALL_VERSIONS,
        ),
    };
    let provider = Arc::new(provider);
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("resolver_tls: {e}"))?;
    let builder = if t.is_some_and(|t| t.insecure) {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoServerVerification(provider)))
    } else {
        let roots = match t.and_then(|t| t.ca_file.as_ref()) {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for c in load_certs(ca)? {
                    roots.add(c).map_err(|e| file_err("CA file", ca, e))?;
                }
                roots
            }
            None => system_roots()?,
        };
        builder.with_root_certificates(roots)
    };
    let config = match t.map(|t| (&t.cert_file, &t.key_file)) {
        Some((Some(cert), Some(key))) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(|e| file_err("certificate file", cert, e))?,
        Some((Some(_), None)) => return Err("resolver_tls: cert_file needs key_file".into()),
        Some((None, Some(_))) => return Err("resolver_tls: key_file needs cert_file".into()),
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// `resolver_tls { insecure: true }`: any server certificate is taken,
/// as Go's `InsecureSkipVerify`; handshake signatures are still checked.
#[derive(Debug)]
struct NoServerVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoServerVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
