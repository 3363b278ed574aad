//! Operator-mode (JWT) credentials, minted at run time.
//!
//! A run that has JWT scenarios mints one operator, one account issued by
//! it and a few users issued by the account, in the NATS JWT v2 format:
//! `base64url(header) . base64url(claims) . base64url(signature)`, no
//! padding, where the header is `{"typ":"JWT","alg":"ed25519-nkey"}` and
//! the signature is the issuer's ed25519 signature (an nkey) over the first
//! two parts joined by the dot. Both servers get the same operator JWT and
//! the account JWT preloaded into a memory resolver (or, for the URL
//! resolver scenarios, many accounts served over HTTP by
//! [`crate::accounts`]); clients present a user
//! JWT in `CONNECT` with `sig`, their signature over the `nonce` of the
//! server's `INFO` (see [`sign_nonce`]).
//!
//! Nothing here expires (`exp` is absent) and every limit is -1
//! (unlimited), so the servers do the full validation work on every
//! connect and nothing else.

use std::fmt;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use nkeys::KeyPair;

use crate::error::{Context, Error, Result};

/// The JOSE header of every NATS v2 JWT.
pub const HEADER: &str = r#"{"typ":"JWT","alg":"ed25519-nkey"}"#;

/// A user the clients connect as: its JWT (issued by the account) and the
/// key pair whose seed signs the server's nonce.
pub struct User {
    pub jwt: String,
    pub key: KeyPair,
}

impl User {
    pub fn public_key(&self) -> String {
        self.key.public_key()
    }

    /// The `.creds` file text the NATS clients read.
    pub fn creds(&self) -> Result<String> {
        let seed = self
            .key
            .seed()
            .map_err(|e| Error(format!("user seed: {e}")))?;
        Ok(format!(
            "-----BEGIN NATS USER JWT-----\n{}\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n",
            self.jwt
        ))
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the seed.
        write!(f, "User({})", self.public_key())
    }
}

/// Everything one run needs for operator mode.
#[derive(Debug)]
pub struct Material {
    pub operator_public: String,
    pub operator_jwt: String,
    /// (account public key, account JWT), all issued by the operator.
    pub accounts: Vec<(String, String)>,
    /// User `i` is issued by account `i % accounts.len()`.
    pub users: Vec<Arc<User>>,
}

/// Where a server in operator mode looks accounts up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolver {
    /// `resolver: MEMORY` with these (account public key, JWT) in
    /// `resolver_preload`.
    Memory(Vec<(String, String)>),
    /// `resolver: URL(base)`: every account is fetched from `base` on
    /// first use. `natrix_cache: false` gives natrix (only: the reference
    /// refuses the block) `resolver_cache: false`, so it asks the URL on
    /// every `CONNECT`.
    Url { base: String, natrix_cache: bool },
}

/// What a server's configuration needs to trust the minted chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorConfig {
    pub operator_jwt: String,
    /// `system_account`, if one is named (the harness names none).
    pub system_account: Option<String>,
    pub resolver: Resolver,
}

impl Material {
    /// Fresh operator, one account and `users` user identities.
    pub fn mint(users: usize) -> Result<Material> {
        Material::mint_accounts(1, users)
    }

    /// Fresh operator, `accounts` accounts and `users` users spread over
    /// them round-robin (user `i` belongs to account `i % accounts`).
    pub fn mint_accounts(accounts: usize, users: usize) -> Result<Material> {
        let now = unix_now();
        let operator = KeyPair::new_operator();
        let operator_jwt = encode(
            &claims(
                now,
                &operator.public_key(),
                &operator.public_key(),
                "natrix-bench-operator",
                r#"{"type":"operator","version":2}"#,
            ),
            &operator,
        )?;
        let account_keys: Vec<KeyPair> = (0..accounts.max(1))
            .map(|_| KeyPair::new_account())
            .collect();
        let accounts = account_keys
            .iter()
            .enumerate()
            .map(|(i, account)| {
                let name = if account_keys.len() == 1 {
                    "natrix-bench-account".to_string()
                } else {
                    format!("natrix-bench-account-{i}")
                };
                let jwt = encode(
                    &claims(
                        now,
                        &operator.public_key(),
                        &account.public_key(),
                        &name,
                        concat!(
                            r#"{"limits":{"subs":-1,"data":-1,"payload":-1,"imports":-1,"#,
                            r#""exports":-1,"wildcards":true,"conn":-1,"leaf":-1},"#,
                            r#""default_permissions":{"pub":{},"sub":{}},"#,
                            r#""type":"account","version":2}"#
                        ),
                    ),
                    &operator,
                )?;
                Ok((account.public_key(), jwt))
            })
            .collect::<Result<Vec<_>>>()?;
        let users = (0..users)
            .map(|i| {
                let account = &account_keys[i % account_keys.len()];
                let key = KeyPair::new_user();
                let jwt = encode(
                    &claims(
                        now,
                        &account.public_key(),
                        &key.public_key(),
                        &format!("natrix-bench-user-{i}"),
                        concat!(
                            r#"{"pub":{},"sub":{},"subs":-1,"data":-1,"payload":-1,"#,
                            r#""type":"user","version":2}"#
                        ),
                    ),
                    account,
                )?;
                Ok(Arc::new(User { jwt, key }))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Material {
            operator_public: operator.public_key(),
            operator_jwt,
            accounts,
            users,
        })
    }

    /// Writes the chain for inspection and for reproducing a run by hand
    /// (`nats --creds user-0.creds …`): `operator.jwt`, `account.jwt` (or
    /// `account-<i>.jwt` per account when there are several) and a
    /// `user-<i>.creds` per user. The seeds are throwaway.
    pub fn write(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).context(format_args!("create {}", dir.display()))?;
        let put = |name: &str, text: &str| {
            let path = dir.join(name);
            fs::write(&path, text).context(format_args!("write {}", path.display()))
        };
        put("operator.jwt", &format!("{}\n", self.operator_jwt))?;
        for (i, (_, jwt)) in self.accounts.iter().enumerate() {
            let name = if self.accounts.len() == 1 {
                "account.jwt".to_string()
            } else {
                format!("account-{i}.jwt")
            };
            put(&name, &format!("{jwt}\n"))?;
        }
        for (i, u) in self.users.iter().enumerate() {
            put(&format!("user-{i}.creds"), &u.creds()?)?;
        }
        Ok(())
    }

    /// Every account preloaded into a memory resolver.
    pub fn server_config(&self) -> OperatorConfig {
        self.with_resolver(Resolver::Memory(self.accounts.clone()))
    }

    pub fn with_resolver(&self, resolver: Resolver) -> OperatorConfig {
        OperatorConfig {
            operator_jwt: self.operator_jwt.clone(),
            system_account: None,
            resolver,
        }
    }
}

/// Unique per process and run: `jti` only has to be unique.
static JTI: AtomicU64 = AtomicU64::new(0);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The claims JSON: the registered fields NATS uses plus `nats`, the
/// kind-specific object (already JSON). Keys are base32 and names are
/// the harness's own ASCII, so nothing needs escaping.
fn claims(iat: u64, iss: &str, sub: &str, name: &str, nats: &str) -> String {
    let seq = JTI.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let jti = format!("NB{nanos:X}{:X}{seq:X}", std::process::id());
    format!(
        r#"{{"jti":"{jti}","iat":{iat},"iss":"{iss}","name":"{name}","sub":"{sub}","nats":{nats}}}"#
    )
}

/// Signs `claims` (JSON) with `issuer` into a compact JWT.
pub fn encode(claims: &str, issuer: &KeyPair) -> Result<String> {
    let mut token = format!(
        "{}.{}",
        b64url(HEADER.as_bytes()),
        b64url(claims.as_bytes())
    );
    let sig = issuer
        .sign(token.as_bytes())
        .map_err(|e| Error(format!("sign JWT: {e}")))?;
    token.push('.');
    token.push_str(&b64url(&sig));
    Ok(token)
}

/// A decoded and verified JWT: its header and claims JSON.
#[cfg(test)]
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    pub header: String,
    pub claims: String,
}

/// Splits a JWT, decodes its parts and verifies the signature with the
/// public key in the claims' `iss`. (Tests only: the harness never needs
/// to read a JWT back.)
#[cfg(test)]
pub fn decode(token: &str) -> Result<Decoded> {
    let bad = |why: &str| Error(format!("malformed JWT: {why}"));
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not three parts"));
    };
    let text = |part: &str, what: &str| -> Result<String> {
        let bytes = b64url_decode(part).ok_or_else(|| bad(&format!("{what} is not base64url")))?;
        String::from_utf8(bytes).map_err(|_| bad(&format!("{what} is not UTF-8")))
    };
    let header = text(h, "header")?;
    let claims = text(c, "claims")?;
    let sig = b64url_decode(s).ok_or_else(|| bad("signature is not base64url"))?;
    let iss =
        crate::proto::json_string_field(claims.as_bytes(), "iss").ok_or_else(|| bad("no iss"))?;
    let issuer = KeyPair::from_public_key(&iss)
        .map_err(|e| Error(format!("issuer {iss:?} is not a public nkey: {e}")))?;
    issuer
        .verify(&token.as_bytes()[..h.len() + 1 + c.len()], &sig)
        .map_err(|_| Error(format!("JWT signature does not verify with issuer {iss}")))?;
    Ok(Decoded { header, claims })
}

/// The `sig` of a `CONNECT`: the user's ed25519 signature over the nonce
/// string's bytes, base64url without padding (what the Go and Rust clients
/// send).
pub fn sign_nonce(key: &KeyPair, nonce: &str) -> Result<String> {
    key.sign(nonce.as_bytes())
        .map(|s| b64url(&s))
        .map_err(|e| Error(format!("sign nonce: {e}")))
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding (RFC 4648 §5).
pub fn b64url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(B64URL[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Decodes base64url with or without padding; `None` on anything else.
#[cfg(test)]
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = B64URL.iter().position(|&x| x == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::json_string_field;

    #[test]
    fn base64url_round_trips_and_matches_rfc4648() {
        // RFC 4648 §10 vectors, padding stripped.
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(b64url(plain.as_bytes()), enc);
            assert_eq!(b64url_decode(enc).unwrap(), plain.as_bytes());
        }
        // The URL alphabet, not the standard one.
        assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(b64url_decode("-_8=").unwrap(), [0xfb, 0xff]);
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(b64url_decode(&b64url(&all)).unwrap(), all);
        assert_eq!(b64url_decode("a"), None);
        assert_eq!(b64url_decode("ab+c"), None);
        assert_eq!(
            b64url(HEADER.as_bytes()),
            "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ"
        );
    }

    fn field(claims: &str, key: &str) -> String {
        json_string_field(claims.as_bytes(), key).unwrap_or_else(|| panic!("no {key} in {claims}"))
    }

    #[test]
    fn minted_chain_decodes_and_verifies() {
        let m = Material::mint(3).unwrap();
        assert!(m.operator_public.starts_with('O'));
        let (account_public, account_jwt) = &m.accounts[0];
        assert!(account_public.starts_with('A'));

        let op = decode(&m.operator_jwt).unwrap();
        assert_eq!(op.header, HEADER);
        assert_eq!(field(&op.claims, "iss"), m.operator_public);
        assert_eq!(field(&op.claims, "sub"), m.operator_public);
        assert!(op
            .claims
            .contains(r#""nats":{"type":"operator","version":2}"#));

        let acc = decode(account_jwt).unwrap();
        assert_eq!(field(&acc.claims, "iss"), m.operator_public);
        assert_eq!(field(&acc.claims, "sub"), *account_public);
        assert!(acc.claims.contains(r#""type":"account","version":2"#));
        assert!(acc.claims.contains(
            r#""limits":{"subs":-1,"data":-1,"payload":-1,"imports":-1,"exports":-1,"wildcards":true,"conn":-1,"leaf":-1}"#
        ));

        assert_eq!(m.users.len(), 3);
        let mut jtis = vec![field(&op.claims, "jti"), field(&acc.claims, "jti")];
        for u in &m.users {
            let d = decode(&u.jwt).unwrap();
            assert_eq!(field(&d.claims, "iss"), *account_public);
            assert_eq!(field(&d.claims, "sub"), u.public_key());
            assert!(u.public_key().starts_with('U'));
            assert!(d.claims.contains(
                r#""nats":{"pub":{},"sub":{},"subs":-1,"data":-1,"payload":-1,"type":"user","version":2}"#
            ));
            jtis.push(field(&d.claims, "jti"));
        }
        jtis.sort();
        jtis.dedup();
        assert_eq!(jtis.len(), 5, "jti must be unique");

        let cfg = m.server_config();
        assert_eq!(cfg.operator_jwt, m.operator_jwt);
        assert_eq!(cfg.resolver, Resolver::Memory(m.accounts.clone()));
    }

    #[test]
    fn users_spread_over_accounts_round_robin() {
        let m = Material::mint_accounts(3, 7).unwrap();
        assert_eq!((m.accounts.len(), m.users.len()), (3, 7));
        let mut keys: Vec<&str> = m.accounts.iter().map(|(k, _)| k.as_str()).collect();
        keys.dedup();
        assert_eq!(keys.len(), 3);
        for (i, u) in m.users.iter().enumerate() {
            let claims = decode(&u.jwt).unwrap().claims;
            assert_eq!(field(&claims, "iss"), m.accounts[i % 3].0, "user {i}");
        }
        for (key, jwt) in &m.accounts {
            let claims = decode(jwt).unwrap().claims;
            assert_eq!(field(&claims, "iss"), m.operator_public);
            assert_eq!(field(&claims, "sub"), *key);
        }
    }

    #[test]
    fn decode_rejects_tampering() {
        let m = Material::mint(1).unwrap();
        let jwt = &m.users[0].jwt;
        let parts: Vec<&str> = jwt.split('.').collect();
        // Claims changed after signing.
        let claims = String::from_utf8(b64url_decode(parts[1]).unwrap()).unwrap();
        let forged = claims.replace("natrix-bench-user-0", "natrix-bench-user-9");
        let token = format!("{}.{}.{}", parts[0], b64url(forged.as_bytes()), parts[2]);
        assert!(decode(&token).unwrap_err().0.contains("does not verify"));
        // Signed by someone other than the issuer it names.
        let other = KeyPair::new_account();
        let token = encode(&claims, &other).unwrap();
        assert!(decode(&token).is_err());
        assert!(decode("a.b").is_err());
        assert!(decode(&format!("{jwt}.x")).is_err());
    }

    #[test]
    fn nonce_signature_verifies_with_the_user_key() {
        let m = Material::mint(1).unwrap();
        let user = &m.users[0];
        let nonce = "kmn7Vb4W6Ls0eSg";
        let sig = sign_nonce(&user.key, nonce).unwrap();
        assert!(!sig.contains('=') && !sig.contains('+') && !sig.contains('/'));
        let public = KeyPair::from_public_key(&user.public_key()).unwrap();
        let raw = b64url_decode(&sig).unwrap();
        assert_eq!(raw.len(), 64);
        public.verify(nonce.as_bytes(), &raw).unwrap();
        assert!(public.verify(b"other nonce", &raw).is_err());
        assert_eq!(format!("{user:?}"), format!("User({})", user.public_key()));
    }

    #[test]
    fn creds_file_holds_jwt_and_seed() {
        let m = Material::mint(1).unwrap();
        let user = &m.users[0];
        let creds = user.creds().unwrap();
        let lines: Vec<&str> = creds.lines().collect();
        assert_eq!(lines[0], "-----BEGIN NATS USER JWT-----");
        assert_eq!(lines[1], user.jwt);
        assert_eq!(lines[4], "-----BEGIN USER NKEY SEED-----");
        let key = KeyPair::from_seed(lines[5]).unwrap();
        assert_eq!(key.public_key(), user.public_key());
    }
}
