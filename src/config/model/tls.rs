//! `tls` blocks: the client listener's, `resolver_tls`, and those of the
//! subsystems natrix refuses (validated the same way).
//!
//! Invariants: `cert_file` and `key_file` come together, and every file
//! named is readable when the configuration is loaded. Cipher suites and
//! curves are the reference's Go names, checked against its lists;
//! `min_version` is "1.2" or "1.3"; pinned certs are lower-case hex SHA-256.
//! `verify_and_map` and `verify_cert_and_check_known_urls` imply `verify`,
//! and the latter is refused in a client context (`tls(_, true)`).

use std::path::PathBuf;
use std::time::Duration;

use super::{duration_str, seconds, Node, DEFAULT_TLS_TIMEOUT};
use crate::config::{ConfigError, Value};
/// A `tls` block.
#[derive(Clone, Debug, PartialEq)]
pub struct TlsConfig {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    /// Require and verify client certificates (`verify_and_map` sets it too).
    pub verify: bool,
    /// Map the client certificate identity to a configured user.
    pub verify_and_map: bool,
    pub verify_cert_and_check_known_urls: bool,
    pub insecure: bool,
    pub timeout: Duration,
    /// Go cipher suite names; empty means the reference's defaults.
    pub cipher_suites: Vec<String>,
    /// Curve names (`X25519`, `CurveP256`, ...); empty means the defaults.
    pub curve_preferences: Vec<String>,
    /// `"1.2"` or `"1.3"`; `None` means TLS 1.2.
    pub min_version: Option<String>,
    /// Lower-case hex SHA-256 of certificates' SubjectPublicKeyInfo.
    pub pinned_certs: Vec<String>,
    /// TLS before INFO (nats-server 2.10 `handshake_first`).
    pub handshake_first: bool,
    /// With `handshake_first: "auto"` or a duration: how long to wait for
    /// a TLS ClientHello before falling back to INFO first.
    pub handshake_first_fallback: Option<Duration>,
    /// New TLS connections per second; 0 means unlimited.
    pub connection_rate_limit: i64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_file: None,
            key_file: None,
            ca_file: None,
            verify: false,
            verify_and_map: false,
            verify_cert_and_check_known_urls: false,
            insecure: false,
            timeout: DEFAULT_TLS_TIMEOUT,
            cipher_suites: Vec::new(),
            curve_preferences: Vec::new(),
            min_version: None,
            pinned_certs: Vec::new(),
            handshake_first: false,
            handshake_first_fallback: None,
            connection_rate_limit: 0,
        }
    }
}

const CIPHER_SUITES: &[&str] = &[
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

const CURVES: &[&str] = &["X25519", "CurveP256", "CurveP384", "CurveP521"];

pub(super) fn tls(n: &Node<'_>, client_ctx: bool) -> Result<TlsConfig, ConfigError> {
    const KEYS: &[&str] = &[
        "cert_file",
        "key_file",
        "ca_file",
        "insecure",
        "verify",
        "verify_and_map",
        "verify_cert_and_check_known_urls",
        "cipher_suites",
        "curve_preferences",
        "timeout",
        "connection_rate_limit",
        "pinned_certs",
        "min_version",
        "handshake_first",
    ];
    if !matches!(n.value(), Value::Map(_)) {
        return Err(n.expected("a tls map {cert_file, key_file, ...}"));
    }
    let mut t = TlsConfig::default();
    let mut file_nodes = Vec::new();
    for field in n.entries()? {
        let v = &field.node;
        let flag = || {
            v.bool()
                .map_err(|_| v.expected(&format!("{} to be a boolean", field.name)))
        };
        match field.name.as_str() {
            "cert_file" | "key_file" | "ca_file" => {
                let path: PathBuf = v
                    .str()
                    .map_err(|_| v.expected(&format!("{} to be a file name", field.name)))?
                    .into();
                file_nodes.push((field.name.clone(), path.clone(), v.clone()));
                match field.name.as_str() {
                    "cert_file" => t.cert_file = Some(path),
                    "key_file" => t.key_file = Some(path),
                    _ => t.ca_file = Some(path),
                }
            }
            "insecure" => t.insecure = flag()?,
            "verify" => t.verify = flag()?,
            "verify_and_map" => {
                t.verify_and_map = flag()?;
                t.verify |= t.verify_and_map;
            }
            "verify_cert_and_check_known_urls" => {
                let on = flag()?;
                if on && client_ctx {
                    return Err(v.err(
                        "verify_cert_and_check_known_urls is only valid for cluster and gateway TLS",
                    ));
                }
                t.verify_cert_and_check_known_urls = on;
                t.verify |= on;
            }
            "cipher_suites" => {
                let names = named_list(v, "cipher_suites", CIPHER_SUITES)?;
                t.cipher_suites = names;
            }
            "curve_preferences" => {
                t.curve_preferences = named_list(v, "curve_preferences", CURVES)?;
            }
            "timeout" => t.timeout = seconds(v, "tls timeout")?,
            "connection_rate_limit" => t.connection_rate_limit = v.int()?,
            "pinned_certs" => {
                for item in v.items()? {
                    let s = item.str()?.to_ascii_lowercase();
                    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(item.err(format!(
                            "pinned cert {s:?} is not a hex-encoded SHA-256 (64 hex digits) of a SubjectPublicKeyInfo"
                        )));
                    }
                    t.pinned_certs.push(s);
                }
            }
            "min_version" => {
                let version = match v.value() {
                    Value::String(s) => s.trim().to_string(),
                    Value::Float(f) => format!("{f}"),
                    _ => return Err(v.expected("a TLS version: \"1.2\" or \"1.3\"")),
                };
                if version != "1.2" && version != "1.3" {
                    return Err(v.err(format!(
                        "unsupported TLS min_version {version:?}: expected \"1.2\" or \"1.3\""
                    )));
                }
                t.min_version = Some(version);
            }
            "handshake_first" => match v.value() {
                Value::Bool(b) => t.handshake_first = *b,
                Value::String(s) if s.eq_ignore_ascii_case("auto") => {
                    t.handshake_first = true;
                    t.handshake_first_fallback = Some(Duration::from_millis(50));
                }
                Value::String(_) => {
                    t.handshake_first = true;
                    t.handshake_first_fallback = Some(duration_str(v)?);
                }
                _ => return Err(v.expected("true, false, \"auto\" or a fallback duration")),
            },
            _ => field.unknown(KEYS)?,
        }
    }
    match (&t.cert_file, &t.key_file) {
        (Some(_), None) => {
            return Err(n.err("missing key_file in TLS configuration (cert_file is set)"))
        }
        (None, Some(_)) => {
            return Err(n.err("missing cert_file in TLS configuration (key_file is set)"))
        }
        _ => {}
    }
    for (name, path, node) in file_nodes {
        if let Err(e) = std::fs::File::open(&path) {
            return Err(node.err(format!("cannot read {name} {}: {e}", path.display())));
        }
    }
    Ok(t)
}

fn named_list(n: &Node<'_>, what: &str, known: &[&str]) -> Result<Vec<String>, ConfigError> {
    let items = n.items()?;
    if items.is_empty() {
        return Err(n.err(format!("{what} cannot be empty")));
    }
    items
        .iter()
        .map(|item| {
            let s = item.str()?;
            if known.contains(&s) {
                Ok(s.to_string())
            } else {
                Err(item.err(format!(
                    "unrecognized {what} entry {s:?}; expected one of: {}",
                    known.join(", ")
                )))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::test_support::{err, ok, secs};
    use crate::config::test_util::TempDir;

    #[test]
    fn tls_blocks() {
        let dir = TempDir::new("tls");
        let cert = dir.write("server.pem", "cert");
        let key = dir.write("server-key.pem", "key");
        let ca = dir.write("ca.pem", "ca");
        let c = ok(&format!(
            r#"
            tls {{
              cert_file: "{}"
              key_file: "{}"
              ca_file: "{}"
              verify_and_map: true
              timeout: 3
              cipher_suites: ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"]
              curve_preferences: ["X25519", "CurveP256"]
              min_version: "1.3"
              pinned_certs: ["{}"]
              handshake_first: true
            }}
            "#,
            cert.display(),
            key.display(),
            ca.display(),
            "AB".repeat(32)
        ));
        let t = c.tls.as_ref().unwrap();
        assert_eq!(t.cert_file.as_deref(), Some(cert.as_path()));
        assert_eq!(t.key_file.as_deref(), Some(key.as_path()));
        assert_eq!(t.ca_file.as_deref(), Some(ca.as_path()));
        assert!(t.verify && t.verify_and_map && t.handshake_first && !t.insecure);
        assert_eq!(t.timeout, secs(3));
        assert_eq!(t.cipher_suites.len(), 2);
        assert_eq!(t.curve_preferences, ["X25519", "CurveP256"]);
        assert_eq!(t.min_version.as_deref(), Some("1.3"));
        assert_eq!(t.pinned_certs, ["ab".repeat(32)]);
        // With TLS and no explicit auth timeout: TLS timeout plus a second.
        assert_eq!(c.authorization.timeout, secs(4));

        let t = ok("tls { timeout: \"500ms\", handshake_first: \"auto\" }")
            .tls
            .unwrap();
        assert_eq!(t.timeout, Duration::from_millis(500));
        assert_eq!(t.handshake_first_fallback, Some(Duration::from_millis(50)));

        assert_eq!(
            err("tls { cert_file: \"/nonexistent/cert.pem\", key_file: \"/nonexistent/key.pem\" }"),
            "<string>:1:18: tls.cert_file: cannot read cert_file /nonexistent/cert.pem: No such file or directory (os error 2)"
        );
        assert_eq!(
            err(&format!("tls {{ cert_file: \"{}\" }}", cert.display())),
            "<string>:1:5: tls: missing key_file in TLS configuration (cert_file is set)"
        );
        assert_eq!(
            err("tls { verify: 1 }"),
            "<string>:1:15: tls.verify: expected verify to be a boolean, found an integer"
        );
        assert_eq!(
            err("tls { cipher_suites: [] }"),
            "<string>:1:22: tls.cipher_suites: cipher_suites cannot be empty"
        );
        assert!(err("tls { cipher_suites: [\"BOGUS\"] }")
            .starts_with("<string>:1:23: tls.cipher_suites[0]: unrecognized cipher_suites entry \"BOGUS\"; expected one of: TLS_RSA_WITH_RC4_128_SHA,"));
        assert!(err("tls { pinned_certs: [\"abc\"] }").contains("is not a hex-encoded SHA-256"));
        assert!(err("tls { min_version: \"1.1\" }").contains("expected \"1.2\" or \"1.3\""));
        assert!(err("tls { verify_cert_and_check_known_urls: true }")
            .contains("only valid for cluster and gateway TLS"));
    }
}
