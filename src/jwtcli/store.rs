//! The nsc store, read and written as nsc lays it out, so a store made by
//! nsc works here and the other way round.
//!
//! - JWTs under the stores directory (`$NSC_HOME`, else
//!   `$XDG_DATA_HOME/nats/nsc/stores`, else
//!   `~/.local/share/nats/nsc/stores`): `<operator>/<operator>.jwt`, a
//!   `.nsc` file describing the store, `<operator>/accounts/<account>/
//!   <account>.jwt` and `<operator>/accounts/<account>/users/<user>.jwt`.
//! - Seeds under the keys directory (`$NKEYS_PATH`, else
//!   `.../nats/nsc/keys`): `keys/<first letter>/<2nd and 3rd letters>/
//!   <public key>.nk`, and creds files at `creds/<operator>/<account>/
//!   <user>.creds` (nsc's `CalcUserCredsPath`).
//!
//! Invariant: nothing holding a seed is ever world- or group-readable:
//! files are created 0600 and directories 0700, and a key file found with
//! wider permissions draws a warning on stderr when read.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nkeys::KeyPair;

use crate::security::jwt::{self, Claims};

/// A JWT read from the store (or elsewhere), with its decoded claims.
#[derive(Debug, Clone)]
pub struct Entity {
    /// The store name (the directory / file name).
    pub name: String,
    pub token: String,
    pub claims: Claims,
    pub path: PathBuf,
}

/// Where the JWTs and the keys live.
#[derive(Debug, Clone)]
pub struct Store {
    pub stores_dir: PathBuf,
    pub keys_dir: PathBuf,
}

fn data_home() -> PathBuf {
    match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/".into()))
            .join(".local/share"),
    }
    .join("nats/nsc")
}

impl Store {
    /// The directories the environment names, or nsc's defaults.
    pub fn from_env() -> Store {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        Store {
            stores_dir: env("NSC_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_home().join("stores")),
            keys_dir: env("NKEYS_PATH")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_home().join("keys")),
        }
    }

    pub fn operator_dir(&self, op: &str) -> PathBuf {
        self.stores_dir.join(op)
    }

    pub fn operator_path(&self, op: &str) -> PathBuf {
        self.operator_dir(op).join(format!("{op}.jwt"))
    }

    pub fn account_path(&self, op: &str, acc: &str) -> PathBuf {
        self.operator_dir(op)
            .join("accounts")
            .join(acc)
            .join(format!("{acc}.jwt"))
    }

    pub fn user_path(&self, op: &str, acc: &str, user: &str) -> PathBuf {
        self.operator_dir(op)
            .join("accounts")
            .join(acc)
            .join("users")
            .join(format!("{user}.jwt"))
    }

    pub fn creds_path(&self, op: &str, acc: &str, user: &str) -> PathBuf {
        self.keys_dir
            .join("creds")
            .join(op)
            .join(acc)
            .join(format!("{user}.creds"))
    }

    pub fn key_path(&self, public: &str) -> Option<PathBuf> {
        (public.len() > 3 && public.is_ascii()).then(|| {
            self.keys_dir
                .join("keys")
                .join(&public[..1])
                .join(&public[1..3])
                .join(format!("{public}.nk"))
        })
    }

    /// Operator names (directories holding `<name>/<name>.jwt`), sorted.
    pub fn operators(&self) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(&self.stores_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| self.operator_path(n).is_file())
            .collect();
        out.sort();
        out
    }

    /// The operator named, or the only one in the store.
    pub fn pick_operator(&self, named: Option<&str>) -> Result<String, String> {
        let ops = self.operators();
        match named {
            Some(n) if ops.iter().any(|o| o == n) => Ok(n.to_string()),
            Some(n) => Err(format!(
                "--operator {n:?}: no such operator in {} (have: {})",
                self.stores_dir.display(),
                list_or_none(&ops)
            )),
            None => match ops.as_slice() {
                [one] => Ok(one.clone()),
                [] => Err(format!(
                    "no operator in {} (run natrix jwt init, or set NSC_HOME)",
                    self.stores_dir.display()
                )),
                many => Err(format!(
                    "several operators in {}: name one with --operator ({})",
                    self.stores_dir.display(),
                    many.join(", ")
                )),
            },
        }
    }

    pub fn operator(&self, op: &str) -> Result<Entity, String> {
        read_entity(op, &self.operator_path(op))
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        out.sort();
        out
    }

    pub fn accounts(&self, op: &str) -> Vec<Entity> {
        Self::names_in(&self.operator_dir(op).join("accounts"))
            .into_iter()
            .filter_map(|n| read_entity(&n, &self.account_path(op, &n)).ok())
            .collect()
    }

    /// An account by name or by public key.
    pub fn account(&self, op: &str, name_or_key: &str) -> Result<Entity, String> {
        let p = self.account_path(op, name_or_key);
        if p.is_file() {
            return read_entity(name_or_key, &p);
        }
        self.accounts(op)
            .into_iter()
            .find(|a| a.claims.sub == name_or_key)
            .ok_or_else(|| {
                let names: Vec<String> = self.accounts(op).into_iter().map(|a| a.name).collect();
                format!(
                    "account {name_or_key:?} is not in operator {op}'s store (have: {})",
                    list_or_none(&names)
                )
            })
    }

    pub fn users(&self, op: &str, acc: &str) -> Vec<Entity> {
        let dir = self
            .operator_dir(op)
            .join("accounts")
            .join(acc)
            .join("users");
        Self::names_in(&dir)
            .into_iter()
            .filter_map(|f| f.strip_suffix(".jwt").map(String::from))
            .filter_map(|n| read_entity(&n, &self.user_path(op, acc, &n)).ok())
            .collect()
    }

    /// A user by name or by public key.
    pub fn user(&self, op: &str, acc: &str, name_or_key: &str) -> Result<Entity, String> {
        let p = self.user_path(op, acc, name_or_key);
        if p.is_file() {
            return read_entity(name_or_key, &p);
        }
        self.users(op, acc)
            .into_iter()
            .find(|u| u.claims.sub == name_or_key)
            .ok_or_else(|| format!("user {name_or_key:?} is not in account {acc} of {op}"))
    }

    /// Writes a new operator's store: its JWT and the `.nsc` description.
    pub fn create_operator(&self, op: &str, token: &str) -> Result<PathBuf, String> {
        check_name("operator", op)?;
        let dir = self.operator_dir(op);
        if self.operator_path(op).exists() {
            return Err(format!(
                "operator {op:?} already exists in {}",
                self.stores_dir.display()
            ));
        }
        let info =
            serde_json::json!({"managed": false, "name": op, "kind": "operator", "version": "1"});
        write_private(&dir.join(".nsc"), info.to_string().as_bytes())?;
        make_dirs(&dir.join("accounts"))?;
        let p = self.operator_path(op);
        write_private(&p, token.as_bytes())?;
        Ok(p)
    }

    pub fn write_operator(&self, op: &str, token: &str) -> Result<PathBuf, String> {
        let p = self.operator_path(op);
        write_private(&p, token.as_bytes())?;
        Ok(p)
    }

    pub fn write_account(&self, op: &str, acc: &str, token: &str) -> Result<PathBuf, String> {
        check_name("account", acc)?;
        let p = self.account_path(op, acc);
        write_private(&p, token.as_bytes())?;
        Ok(p)
    }

    pub fn write_user(
        &self,
        op: &str,
        acc: &str,
        user: &str,
        token: &str,
    ) -> Result<PathBuf, String> {
        check_name("user", user)?;
        let p = self.user_path(op, acc, user);
        write_private(&p, token.as_bytes())?;
        Ok(p)
    }

    /// Keeps a seed in the key store (0600, directories 0700).
    pub fn store_key(&self, kp: &KeyPair) -> Result<PathBuf, String> {
        let public = kp.public_key();
        let p = self.key_path(&public).ok_or("bad public key")?;
        let seed = kp.seed().map_err(|e| format!("{public}: {e}"))?;
        write_private(&p, seed.as_bytes())?;
        Ok(p)
    }

    /// The key pair behind a public key, from the key store.
    pub fn load_key(&self, public: &str) -> Result<KeyPair, String> {
        let p = self
            .key_path(public)
            .ok_or_else(|| format!("{public:?} is not a public key"))?;
        if !p.is_file() {
            return Err(format!(
                "no seed for {public} in the key store ({} does not exist; set NKEYS_PATH?)",
                p.display()
            ));
        }
        let kp = read_seed_file(&p)?;
        if kp.public_key() != public {
            return Err(format!(
                "{}: holds the seed of {}, not of {public}",
                p.display(),
                kp.public_key()
            ));
        }
        Ok(kp)
    }

    pub fn has_key(&self, public: &str) -> bool {
        self.key_path(public).is_some_and(|p| p.is_file())
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Names become file and directory names: no separators, no dot names.
fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.trim().is_empty()
        || name.contains('/')
        || name.contains('\0')
        || name == "."
        || name == ".."
        || name != name.trim()
    {
        return Err(format!(
            "{what} name {name:?} cannot be used (it becomes a file name: no '/', no surrounding spaces, not empty)"
        ));
    }
    Ok(())
}

/// Reads a JWT file (bare or decorated) and decodes it.
pub fn read_entity(name: &str, path: &Path) -> Result<Entity, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let token = jwt::parse_decorated_jwt(&text);
    let claims = jwt::decode(&token).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Entity {
        name: name.to_string(),
        token,
        claims,
        path: path.to_path_buf(),
    })
}

/// Creates `dir` and its missing parents with mode 0700.
pub fn make_dirs(dir: &Path) -> Result<(), String> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))
}

/// Writes `data` to `path` with mode 0600 (also when the file existed
/// with wider permissions), creating parents 0700.
pub fn write_private(path: &Path, data: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        make_dirs(parent)?;
    }
    let err = |e: std::io::Error| format!("writing {}: {e}", path.display());
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(err)?;
    f.write_all(data).map_err(err)
}

/// Reads a file that holds a secret, warning on stderr when group or
/// others may read it.
pub fn read_secret(path: &Path) -> Result<String, String> {
    let meta = fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        eprintln!(
            "warning: {} holds a seed and has mode {mode:04o}: group or others may read it (chmod 600 it)",
            path.display()
        );
    }
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A key pair from a file holding a seed (a `.nk` file, or a creds file).
pub fn read_seed_file(path: &Path) -> Result<KeyPair, String> {
    let text = read_secret(path)?;
    let seed = match jwt::parse_creds(&text) {
        Ok(c) => c.seed,
        Err(_) => text.trim().to_string(),
    };
    KeyPair::from_seed(&seed).map_err(|e| format!("{}: not a seed: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_modes() {
        let dir = std::env::temp_dir().join(format!("natrix-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let s = Store {
            stores_dir: dir.join("stores"),
            keys_dir: dir.join("keys"),
        };
        let kp = KeyPair::new_account();
        let p = s.store_key(&kp).unwrap();
        let pk = kp.public_key();
        assert_eq!(p, dir.join(format!("keys/keys/A/{}/{pk}.nk", &pk[1..3])));
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(p.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        assert_eq!(s.load_key(&pk).unwrap().public_key(), pk);
        assert!(s.load_key(&KeyPair::new_account().public_key()).is_err());
        assert_eq!(
            s.creds_path("O", "A", "u"),
            dir.join("keys/creds/O/A/u.creds")
        );
        assert!(check_name("user", "a/b").is_err());
        assert!(check_name("user", "..").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
