//! Configuration files in the nats-server 2.9 configuration language.
//!
//! Three layers, each usable on its own:
//!
//! 1. `lex` scans characters into the language's lexemes. The language is
//!    context sensitive (what ends a bare string, whether a newline may precede
//!    a value, whether `include` is a keyword), so the scanner offers one
//!    routine per lexeme and the parser picks the routine for its context,
//!    mirroring the reference lexer's state machine.
//! 2. `parse` builds a [`Value`] tree. Includes and `$variables` are resolved
//!    here, so the tree is self-contained: every node carries the [`Pos`] it
//!    came from (an included file's nodes point into that file; a variable's
//!    use site is the position of the `$name` reference). Map entries keep
//!    file order, a repeated key replaces the earlier value in place (last wins,
//!    as in the reference), and an entry whose key was referenced as a variable
//!    is flagged so the model does not report it as an unknown field.
//! 3. `model` turns the tree into a typed [`ServerConfig`], applying the
//!    reference's defaults and its start-up checks (unknown keys, auth
//!    conflicts, import/export authorization, ...). Anything the reference would
//!    refuse to start with is a [`ConfigError`]; anything it would only log
//!    lands in [`ServerConfig::warnings`].
//!
//! Invariants: no input makes any layer panic; every error names a position
//! and says what was expected; nesting and include depth are bounded so
//! hostile input cannot exhaust the stack. Features natrix does not implement
//! (JetStream, clustering, gateways, leaf nodes, WebSocket, MQTT, subject
//! mappings, OCSP) are parsed and validated like the reference does, then
//! refused unless the block leaves them disabled, so a config never appears
//! to work while silently dropping part of its meaning.

pub(crate) mod check;
mod lex;
mod model;
mod parse;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use model::{
    Account, AccountLimits, Authorization, ConnectionType, DirResolverKind, Export, ExportKind,
    Import, ImportKind, OperatorSource, Permissions, Resolver, ResolverCache, ResponsePermission,
    ResponseType, ServerConfig, ServiceLatency, ShardsConfig, SubjectPermission, TlsConfig, User,
    GLOBAL_ACCOUNT, SYSTEM_ACCOUNT,
};
pub use parse::{parse_value_file, parse_value_str};

/// Where a value (or key) starts: 1-based line and column (in characters).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pos {
    pub file: Arc<Path>,
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// A value together with the position it was written at.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    pub pos: Pos,
    pub value: T,
}

/// One `key: value` pair of a map.
#[derive(Clone, Debug, PartialEq)]
pub struct MapEntry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Spanned<Value>,
    /// The entry was referenced as `$key`; such entries are variable
    /// definitions, so the model skips them instead of calling them unknown.
    pub used_as_variable: bool,
}

/// A node of the configuration tree.
///
/// Durations and ISO 8601 datetimes are strings; the model interprets them
/// per key. Integers already have their size suffix applied (`1MB` is
/// 1048576).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Map(Vec<MapEntry>),
    Array(Vec<Spanned<Value>>),
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

impl Value {
    /// The entry for `key` (exact, case-sensitive match).
    pub fn get(&self, key: &str) -> Option<&Spanned<Value>> {
        match self {
            Value::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.value),
            _ => None,
        }
    }

    /// A short noun for error messages ("a string", "a map", ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Map(_) => "a map",
            Value::Array(_) => "an array",
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Bool(_) => "a boolean",
        }
    }
}

/// A configuration error, located at the offending key or value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: u32,
    pub col: u32,
    /// Dotted path to the offending entry, e.g.
    /// `accounts.ORDERS.users[0].permissions`; empty at top level or when
    /// the error is not about an entry.
    pub key_path: String,
    pub msg: String,
}

impl ConfigError {
    pub(crate) fn at(pos: &Pos, key_path: impl Into<String>, msg: impl Into<String>) -> Self {
        ConfigError {
            file: pos.file.to_path_buf(),
            line: pos.line,
            col: pos.col,
            key_path: key_path.into(),
            msg: msg.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.col)?;
        if !self.key_path.is_empty() {
            write!(f, "{}: ", self.key_path)?;
        }
        f.write_str(&self.msg)
    }
}

impl std::error::Error for ConfigError {}

/// Reads, parses and validates the configuration file at `path`.
/// Includes are resolved relative to the directory of the including file.
pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
    let tree = parse_value_file(path)?;
    model::build(&tree)
}

/// Parses and validates configuration text. Errors name the file
/// `<string>`; includes are resolved relative to the current directory.
pub fn parse_str(text: &str) -> Result<ServerConfig, ConfigError> {
    let tree = parse_value_str(text)?;
    model::build(&tree)
}

#[cfg(test)]
pub(crate) mod test_util {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A directory under the system temp dir, removed on drop.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "natrix-config-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }

        /// Writes `text` to `name` (creating parent directories).
        pub fn write(&self, name: &str, text: &str) -> PathBuf {
            let p = self.0.join(name);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).expect("create dir");
            }
            std::fs::write(&p, text).expect("write temp file");
            p
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod robustness {
    use super::{parse_str, parse_value_str};

    const FIXTURES: &[&str] = &[
        "port: 4222\nhost: 127.0.0.1\ndebug: true\n",
        "listen: 127.0.0.1:4222\nhttp: localhost:8222\nmax_payload: 1MB\nmax_pending: 64MB\n",
        "ping_interval: \"2m\"\nwrite_deadline: 10s\nlame_duck_duration: \"1h30m\"\n",
        "{ \"port\": 4222, \"debug\": true, \"tags\": [\"a\", \"b\"] }\n",
        "authorization {\n  user: derek\n  password: $2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG\n  timeout: 1.5\n}\n",
        "authorization {\n  ADMIN = { publish: \">\", subscribe: \">\" }\n  users = [\n    {user: a, password: b, permissions: $ADMIN}\n    {user: c, password: d, permissions: { publish: { allow: [\"x.*\"], deny: \"x.y\" }, allow_responses: { max: 2, expires: \"1m\" } }}\n  ]\n}\n",
        "accounts {\n  A: { users: [ {user: a, password: a} ], exports: [ {stream: \"pub.>\"}, {service: \"req.*\", response_type: stream, accounts: [B]} ] }\n  B: { users: [ {user: b, password: b} ], imports: [ {stream: {account: A, subject: \"pub.>\"}, prefix: p}, {service: {account: A, subject: \"req.x\"}, to: \"a.req\"} ] }\n}\nsystem_account: A\nno_auth_user: b\n",
        "tls {\n  cert_file: \"c.pem\"\n  key_file: 'k.pem'\n  cipher_suites: [\"TLS_AES_128_GCM_SHA256\"]\n  timeout: 2\n}\n",
        "jetstream { enabled: false, store_dir: /data }\ncluster { name: c }\nresolver: { type: full, dir: ./jwt }\n",
        "x = 5\ny = { a: [1, 2, {b: $x}] }\nz: $y\nshards { count: 2, cpus: [0, 1], io_memory: 64MB }\n",
        "# comment\n// comment\na: (\nraw block\n)\nb: \"esc \\x41 \\t \\\"q\\\"\"\nc: 2020-01-02T03:04:05Z\nd: -1.5\ne: 12kib\n",
        "operator: eyJhIjoiYiJ9.eyJjIjoiZCJ9.c2ln\nresolver: MEMORY\nresolver_preload { ABC: \"a.b.c\" }\n",
    ];

    /// Deterministic xorshift so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            if n == 0 {
                0
            } else {
                (self.next() % n as u64) as usize
            }
        }
    }

    fn mutate(rng: &mut Rng, text: &str) -> String {
        const ALPHABET: &[char] = &[
            '{', '}', '[', ']', '(', ')', '"', '\'', '\\', ':', '=', ',', ';', '#', '/', '$', '\n',
            '\r', ' ', '\t', '0', '9', '.', '-', 'k', 'M', 'b', 'i', 'x', 'e', 'T', 'Z', 'é',
            '\u{feff}', '\0',
        ];
        let mut chars: Vec<char> = text.chars().collect();
        for _ in 0..=rng.below(4) {
            let len = chars.len();
            match rng.below(5) {
                0 if len > 0 => {
                    let at = rng.below(len);
                    let n = 1 + rng.below(4.min(len - at));
                    chars.drain(at..at + n);
                }
                1 => {
                    let c = ALPHABET[rng.below(ALPHABET.len())];
                    chars.insert(rng.below(len + 1), c);
                }
                2 if len > 0 => {
                    let at = rng.below(len);
                    let n = 1 + rng.below(12.min(len - at));
                    let piece: Vec<char> = chars[at..at + n].to_vec();
                    let to = rng.below(len + 1);
                    chars.splice(to..to, piece);
                }
                3 if len > 0 => chars.truncate(rng.below(len)),
                _ if len > 1 => {
                    let (a, b) = (rng.below(len), rng.below(len));
                    chars.swap(a, b);
                }
                _ => {}
            }
        }
        chars.into_iter().collect()
    }

    /// Mutated fixtures must produce a value or an error, never a panic.
    #[test]
    fn mutated_inputs_never_panic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut accepted = 0usize;
        for fixture in FIXTURES {
            for _ in 0..400 {
                let input = mutate(&mut rng, fixture);
                let outcome = std::panic::catch_unwind(|| {
                    let _ = parse_value_str(&input);
                    parse_str(&input).is_ok()
                });
                match outcome {
                    Ok(true) => accepted += 1,
                    Ok(false) => {}
                    Err(_) => panic!("panicked on input {input:?}"),
                }
            }
        }
        // The mutations are mostly, not always, fatal.
        assert!(accepted > 0);
    }

    /// Pathological shapes: deep nesting, long runs, odd characters.
    #[test]
    fn pathological_inputs_never_panic() {
        let inputs = [
            "[".repeat(10_000),
            "{".repeat(10_000),
            format!("a: {}", "{a: ".repeat(10_000)),
            "a: ".repeat(5_000),
            "\"".repeat(1001),
            "$".repeat(100),
            "a: $a".to_string(),
            "a: 99999999999999999999999999999999999999999".to_string(),
            "a: 1.7976931348623157e309".to_string(),
            "a: 1".to_string() + &"0".repeat(400) + ".5",
            "ping_interval: \"9999999999999999999h\"".to_string(),
            "ping_interval: \"0.0000000000000000000000000000000000001s\"".to_string(),
            "authorization { timeout: 1e400 }".to_string(),
            "authorization { timeout: 18446744073709551616.0 }\ntls { timeout: 1.8e19 }"
                .to_string(),
            "\0\0\0".to_string(),
            "a: \"\\x".to_string(),
            "a: \\".to_string(),
            "include".to_string(),
            "include \"\"".to_string(),
            "include .".to_string(),
            "a { include /dev/null }".to_string(),
            "a: (\n)".to_string(),
            "a: (".to_string(),
            "\u{feff}\u{feff}".to_string(),
        ];
        for input in &inputs {
            let r = std::panic::catch_unwind(|| {
                let _ = parse_value_str(input);
                let _ = parse_str(input);
            });
            assert!(
                r.is_ok(),
                "panicked on input {:?}",
                &input[..input.len().min(80)]
            );
        }
    }
}
