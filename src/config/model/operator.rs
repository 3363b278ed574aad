//! Decentralized (JWT) authentication: trusted operators and keys, the
//! account resolver, and account JWTs preloaded into it.
//!
//! Invariants: an operator entry is a readable file or an inline JWT
//! (`eyJ...`). Operator mode (any operator) excludes configured accounts,
//! users and `trusted_keys` (`Builder::check_operator_mode`, run once the
//! tree is read) as well as `no_auth_user` (checked in `Builder::finish`).
//! Resolver map keys are matched case-sensitively and unknown ones only
//! warn, as in the reference; a directory resolver needs a `dir` and a
//! `type`, a cache resolver refuses `interval` and `allow_delete`, a full
//! one `ttl`. Preloaded JWTs are only checked for their
//! `header.claims.signature` shape here.

use std::path::PathBuf;
use std::time::Duration;

use super::{duration_str, suggest, Builder, Node, ServerConfig, Spot};
use crate::config::{ConfigError, Value};
/// Where a trusted operator JWT comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperatorSource {
    /// A file holding the JWT (possibly decorated), as written in the
    /// configuration (relative paths are relative to the working directory,
    /// as in the reference).
    File(PathBuf),
    /// The JWT itself, written inline.
    Inline(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolver {
    Memory,
    /// Base URL; the account public key is appended.
    Url(String),
    Dir {
        kind: DirResolverKind,
        dir: PathBuf,
        allow_delete: bool,
        /// Sync interval (full resolver).
        interval: Option<Duration>,
        /// Maximum number of JWTs kept; 0 means the reference's default.
        limit: i64,
        /// Cache entry lifetime (cache resolver).
        ttl: Option<Duration>,
        /// Fetch timeout.
        timeout: Option<Duration>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirResolverKind {
    Full,
    Cache,
}

/// natrix-only `resolver_cache { ttl, negative_ttl, max_entries }`: how
/// long the answers of a URL or directory resolver are kept in memory.
/// The reference has no such block (it keeps a fetched account until an
/// update arrives through the system account, and asks again for every
/// CONNECT of an unknown one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolverCache {
    /// How long an account JWT the resolver gave is used without asking
    /// again; zero turns the cache off.
    pub ttl: Duration,
    /// How long "not found" (or a failure to answer) is remembered, so an
    /// unknown account cannot hammer the account server.
    pub negative_ttl: Duration,
    /// Most accounts remembered (least recently used ones go first).
    pub max_entries: usize,
}

impl Default for ResolverCache {
    fn default() -> Self {
        ResolverCache {
            ttl: Duration::from_secs(120),
            negative_ttl: Duration::from_secs(2),
            max_entries: 10_000,
        }
    }
}

impl Builder {
    pub(super) fn resolver(&mut self, n: &Node<'_>) -> Result<Resolver, ConfigError> {
        const EXPECTED: &str =
            "expected MEMORY, URL(\"http://...\") or a map with dir and type (full or cache)";
        match n.value() {
            Value::String(s) => {
                let t = s.trim();
                if t.eq_ignore_ascii_case("mem") || t.eq_ignore_ascii_case("memory") {
                    return Ok(Resolver::Memory);
                }
                let inner = t
                    .get(..4)
                    .filter(|p| p.eq_ignore_ascii_case("url("))
                    .and_then(|_| t[4..].strip_suffix(')'))
                    .map(|u| u.trim().trim_matches('"').trim());
                match inner {
                    Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                        Ok(Resolver::Url(url.to_string()))
                    }
                    Some(url) => Err(n.err(format!(
                        "resolver URL {url:?} must start with http:// or https://"
                    ))),
                    None => Err(n.err(format!("invalid resolver {s:?}: {EXPECTED}"))),
                }
            }
            Value::Map(_) => {
                const KEYS: &[&str] = &[
                    "dir",
                    "type",
                    "allow_delete",
                    "limit",
                    "ttl",
                    "interval",
                    "timeout",
                ];
                let (mut dir, mut kind) = (None, None);
                let (mut allow_delete, mut limit) = (false, 0);
                let (mut ttl, mut interval, mut timeout) = (None, None, None);
                let mut kind_node = None;
                for field in n.entries()? {
                    let v = &field.node;
                    // The reference looks these keys up case-sensitively and
                    // ignores anything else.
                    match field.entry.key.as_str() {
                        "dir" => dir = Some(v.nonempty("a directory")?),
                        "type" => {
                            kind = Some(match v.str()?.to_ascii_lowercase().as_str() {
                                "full" => DirResolverKind::Full,
                                "cache" => DirResolverKind::Cache,
                                other => {
                                    return Err(v.err(format!(
                                        "unknown resolver type {other:?}: expected full or cache"
                                    )))
                                }
                            });
                            kind_node = Some(Spot::of(v));
                        }
                        "allow_delete" => allow_delete = v.bool()?,
                        "limit" => limit = v.int()?,
                        "ttl" => ttl = Some(duration_str(v)?),
                        "interval" => interval = Some(duration_str(v)?),
                        "timeout" => timeout = Some(duration_str(v)?),
                        _ if field.entry.used_as_variable => {}
                        _ => {
                            let hint = suggest(&field.entry.key, KEYS)
                                .map(|s| format!(" (did you mean {s:?}?)"))
                                .unwrap_or_default();
                            self.warn(
                                field.key_pos(),
                                &v.path,
                                &format!(
                                    "unknown resolver field {:?} ignored{hint}",
                                    field.entry.key
                                ),
                            );
                        }
                    }
                }
                let Some(dir) = dir else {
                    return Err(n.err("resolver needs a dir pointing to a directory"));
                };
                let Some(kind) = kind else {
                    return Err(n.err(format!("resolver needs a type: {EXPECTED}")));
                };
                let kind_spot = kind_node.unwrap_or_else(|| Spot::of(n));
                match kind {
                    DirResolverKind::Cache if interval.is_some() => {
                        return Err(kind_spot.err("a cache resolver does not accept interval"))
                    }
                    DirResolverKind::Cache if allow_delete => {
                        return Err(kind_spot.err("a cache resolver does not accept allow_delete"))
                    }
                    DirResolverKind::Full if ttl.is_some() => {
                        return Err(kind_spot.err("a full resolver does not accept ttl"))
                    }
                    _ => {}
                }
                Ok(Resolver::Dir {
                    kind,
                    dir: dir.into(),
                    allow_delete,
                    interval,
                    limit,
                    ttl,
                    timeout,
                })
            }
            _ => Err(n.err(format!("invalid resolver: {EXPECTED}"))),
        }
    }

    pub(super) fn check_operator_mode(&self, cfg: &ServerConfig) -> Result<(), ConfigError> {
        if cfg.operators.is_empty() {
            return Ok(());
        }
        let spot = self.spot("operator");
        if !cfg.accounts.is_empty() {
            return Err(self.spot("accounts").err(
                "accounts cannot be configured directly in operator mode (they come from JWTs)",
            ));
        }
        if !cfg.users.is_empty() {
            return Err(self.auth_spot.clone().unwrap_or(spot).err(
                "users cannot be configured directly in operator mode (they come from JWTs)",
            ));
        }
        if !cfg.trusted_keys.is_empty() {
            return Err(self
                .spot("trusted_keys")
                .err("trusted_keys conflicts with operator: configure one or the other"));
        }
        Ok(())
    }
}

pub(super) fn operators(n: &Node<'_>) -> Result<Vec<OperatorSource>, ConfigError> {
    let nodes = match n.value() {
        Value::String(_) => vec![n.clone()],
        Value::Array(_) => n.items()?,
        _ => {
            return Err(n.expected("an operator JWT file name, an inline JWT, or an array of them"))
        }
    };
    let mut out = Vec::new();
    for node in nodes {
        let s = node.str()?;
        let path = PathBuf::from(s);
        if std::fs::File::open(&path).is_ok() {
            out.push(OperatorSource::File(path));
        } else if s.starts_with("eyJ") {
            out.push(OperatorSource::Inline(s.to_string()));
        } else {
            let e = std::fs::File::open(&path)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            return Err(node.err(format!(
                "cannot read operator JWT file {s:?}: {e} (an inline JWT starts with eyJ)"
            )));
        }
    }
    Ok(out)
}

pub(super) fn resolver_cache(n: &Node<'_>) -> Result<ResolverCache, ConfigError> {
    const KEYS: &[&str] = &["ttl", "negative_ttl", "max_entries"];
    let mut c = ResolverCache::default();
    if let Value::Bool(on) = n.value() {
        if !on {
            c.ttl = Duration::ZERO;
            c.negative_ttl = Duration::ZERO;
        }
        return Ok(c);
    }
    for field in n.entries()? {
        let v = &field.node;
        match field.name.as_str() {
            "ttl" => c.ttl = duration_str(v)?,
            "negative_ttl" => c.negative_ttl = duration_str(v)?,
            "max_entries" => {
                c.max_entries = v.int_as("resolver_cache max_entries")?;
                if c.max_entries == 0 {
                    return Err(v.err("resolver_cache max_entries must be at least 1"));
                }
            }
            _ => field.unknown(KEYS)?,
        }
    }
    Ok(c)
}

pub(super) fn resolver_preload(n: &Node<'_>) -> Result<Vec<(String, String)>, ConfigError> {
    if !matches!(n.value(), Value::Map(_)) {
        return Err(n.expected("a map of account public key to account JWT"));
    }
    let mut out = Vec::new();
    for field in n.entries()? {
        let v = &field.node;
        let jwt = v
            .str()
            .map_err(|_| v.expected("an account JWT (a string)"))?;
        let parts: Vec<&str> = jwt.split('.').collect();
        let looks_like_jwt = parts.len() == 3
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'='))
            });
        if !looks_like_jwt {
            return Err(v.err("invalid account JWT: expected header.claims.signature in base64url"));
        }
        out.push((field.entry.key.clone(), jwt.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::test_support::{err, ok, secs};
    use crate::config::test_util::TempDir;

    #[test]
    fn operator_mode_and_resolvers() {
        let dir = TempDir::new("operator");
        let op = dir.write(
            "op.jwt",
            "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.sig",
        );
        let jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJzdWIiOiJBIn0.c2ln";
        let c = ok(&format!(
            "operator: \"{}\"\nsystem_account: AB5UKNPVHDWBP5WODG742274I3OGY5FM3CBIFCYI4OFEH7Y23GNZPXFE\nresolver: MEMORY\nresolver_preload: {{\n  AB5UKNPVHDWBP5WODG742274I3OGY5FM3CBIFCYI4OFEH7Y23GNZPXFE: \"{jwt}\"\n}}",
            op.display()
        ));
        assert_eq!(c.operators, vec![OperatorSource::File(op.clone())]);
        assert_eq!(c.resolver, Some(Resolver::Memory));
        assert_eq!(c.resolver_preload.len(), 1);
        assert_eq!(c.resolver_preload[0].1, jwt);

        let c = ok(&format!(
            "operator: {jwt}\nresolver: URL(http://localhost:9090/jwt/v1/accounts/)"
        ));
        assert_eq!(c.operators, vec![OperatorSource::Inline(jwt.to_string())]);
        assert_eq!(
            c.resolver,
            Some(Resolver::Url(
                "http://localhost:9090/jwt/v1/accounts/".into()
            ))
        );

        let c = ok("resolver: {\n  type: full\n  dir: \"./jwt\"\n  allow_delete: true\n  interval: \"2m\"\n  limit: 1000\n}");
        assert_eq!(
            c.resolver,
            Some(Resolver::Dir {
                kind: DirResolverKind::Full,
                dir: "./jwt".into(),
                allow_delete: true,
                interval: Some(secs(120)),
                limit: 1000,
                ttl: None,
                timeout: None,
            })
        );
        let c = ok("resolver: { type: cache, dir: /tmp/jwt, ttl: \"1h\", colour: blue }");
        assert!(matches!(
            c.resolver,
            Some(Resolver::Dir {
                kind: DirResolverKind::Cache,
                ..
            })
        ));
        assert_eq!(
            c.warnings,
            vec!["<string>:1:52: resolver.colour: unknown resolver field \"colour\" ignored"]
        );
        assert_eq!(
            err("resolver: { type: full, dir: /tmp/jwt, ttl: \"1h\" }"),
            "<string>:1:19: resolver.type: a full resolver does not accept ttl"
        );
        assert_eq!(
            err("resolver: { dir: /tmp/jwt }"),
            "<string>:1:11: resolver: resolver needs a type: expected MEMORY, URL(\"http://...\") or a map with dir and type (full or cache)"
        );
        assert!(err("resolver: bogus").contains("invalid resolver \"bogus\""));
        assert!(err("resolver_preload: { A: \"not a jwt\" }").contains("invalid account JWT"));
        assert!(err("operator: /nonexistent/op.jwt").contains("cannot read operator JWT file"));
        assert!(err(&format!("operator: {jwt}\naccounts {{ A {{}} }}")).contains("operator mode"));
        assert!(err(&format!(
            "operator: {jwt}\nauthorization {{ users [ {{user: a}} ] }}"
        ))
        .contains("operator mode"));
        assert!(err(&format!(
            "operator: {jwt}\nauthorization {{ users [ {{user: a}} ] }}\nno_auth_user: a"
        ))
        .contains("operator mode"));

        let c = ok("resolver_cache { ttl: \"10m\", negative_ttl: \"500ms\", max_entries: 5 }");
        assert_eq!(
            c.resolver_cache,
            Some(ResolverCache {
                ttl: secs(600),
                negative_ttl: Duration::from_millis(500),
                max_entries: 5
            })
        );
        let c = ok("resolver_cache: false");
        assert_eq!(c.resolver_cache.unwrap().ttl, Duration::ZERO);
        assert!(err("resolver_cache { ttl: 5 }").contains("duration"));
        assert!(err("resolver_cache { tll: \"1s\" }").contains("did you mean \"ttl\""));

        let c = ok("trusted: [\"OBYEOZQ46VZMFMNETBAW2H6VGDSOBLP67VUEZJ5LPR3PIZBWWRIY4UI4\"]");
        assert_eq!(c.trusted_keys.len(), 1);
        assert!(err("trusted_keys: bogus").contains("not a valid public operator nkey"));
    }
}
