//! `natrix jwt push`: account JWTs to a running server's resolver, as nsc
//! pushes them: a NATS request on `$SYS.REQ.CLAIMS.UPDATE` by a system
//! account user, one per account, each reply printed.
//!
//! The client is the smallest NATS client that does this, over std TCP
//! with blocking reads bounded by a timeout (no async runtime in the
//! binary): INFO, CONNECT with the user JWT and the INFO nonce signed by
//! the user's seed, PING/PONG to learn whether the server accepted it,
//! then per request a SUB on a unique `_INBOX.` subject, a PUB with it as
//! the reply subject, and the first MSG on it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::args::{many, opt, CliError, Command, Parsed};
use super::claims::parse_duration;
use super::make::{SYS_ACCOUNT, SYS_USER};
use super::store::read_secret;
use super::Ctx;
use crate::security::auth::{base64_url_encode, new_nonce};
use crate::security::jwt::{self, Creds};

pub const PUSH: Command = Command {
    path: "jwt push",
    about: "Send account JWTs to a running server's full resolver over $SYS.REQ.CLAIMS.UPDATE, and print each reply.",
    positional: None,
    flags: &[
        opt("server", "URL", "the server (default: nats://127.0.0.1:4222)"),
        opt("creds", "FILE", "a system account user's creds (default: the store's SYS/sys creds)"),
        many("account", "NAME|KEY", "push this account (default: every account of the operator)"),
        many("jwt", "FILE", "push this account JWT file instead of store accounts"),
        opt("operator", "NAME", "the operator (default: the only one in the store)"),
        opt("timeout", "DUR", "how long to wait for each reply (default: 5s)"),
    ],
};

/// The claims update subject of the reference's resolvers.
pub const CLAIMS_UPDATE: &str = "$SYS.REQ.CLAIMS.UPDATE";

/// A connected client.
pub struct Client {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    timeout: Duration,
    sid: u64,
}

/// `nats://host:port`, `host:port` or `host` (port 4222) to an address.
fn address(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("nats://")
        .or_else(|| url.strip_prefix("tcp://"))
        .unwrap_or(url);
    if url.contains("://") && !url.starts_with("nats://") && !url.starts_with("tcp://") {
        return Err(format!(
            "--server {url:?}: only nats:// URLs (no TLS) are supported"
        ));
    }
    let rest = rest
        .rsplit('@')
        .next()
        .unwrap_or(rest)
        .trim_end_matches('/');
    if rest.is_empty() {
        return Err(format!("--server {url:?}: no host"));
    }
    Ok(
        if rest
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            rest.to_string()
        } else {
            format!("{rest}:4222")
        },
    )
}

impl Client {
    /// Connects and authenticates with `creds` (a user JWT and its seed).
    pub fn connect(url: &str, creds: &Creds, timeout: Duration) -> Result<Client, String> {
        let addr = address(url)?;
        let sock = std::net::ToSocketAddrs::to_socket_addrs(&addr)
            .map_err(|e| format!("{addr}: {e}"))?
            .next()
            .ok_or_else(|| format!("{addr}: no address"))?;
        let stream = TcpStream::connect_timeout(&sock, timeout)
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        let reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        let mut c = Client {
            stream,
            reader,
            timeout,
            sid: 0,
        };
        let info = c.line()?;
        let info: Value = info
            .strip_prefix("INFO ")
            .and_then(|j| serde_json::from_str(j).ok())
            .ok_or_else(|| format!("{addr}: not a NATS server (first line {info:?})"))?;
        if info["tls_required"].as_bool() == Some(true) {
            return Err(format!(
                "{addr}: the server requires TLS, which natrix jwt does not speak"
            ));
        }
        let kp = nkeys::KeyPair::from_seed(&creds.seed).map_err(|e| format!("creds seed: {e}"))?;
        let nonce = info["nonce"].as_str().unwrap_or("");
        let sig = kp.sign(nonce.as_bytes()).map_err(|e| e.to_string())?;
        let connect = json!({
            "verbose": false, "pedantic": false, "protocol": 1, "lang": "rust",
            "version": env!("CARGO_PKG_VERSION"), "name": "natrix jwt",
            "jwt": creds.jwt, "sig": base64_url_encode(&sig),
        });
        c.send(format!("CONNECT {connect}\r\nPING\r\n").as_bytes())?;
        loop {
            let l = c.line()?;
            match l.as_str() {
                "PONG" => return Ok(c),
                "+OK" => {}
                l if l.starts_with("-ERR") => {
                    return Err(format!("{addr} refused the connection: {l}"))
                }
                _ => {}
            }
        }
    }

    fn send(&mut self, b: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(b)
            .map_err(|e| format!("writing: {e}"))
    }

    fn line(&mut self) -> Result<String, String> {
        let mut l = String::new();
        match self.reader.read_line(&mut l) {
            Ok(0) => Err("the server closed the connection".into()),
            Ok(_) => Ok(l.trim_end().to_string()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err(format!("no answer within {:?}", self.timeout))
            }
            Err(e) => Err(format!("reading: {e}")),
        }
    }

    /// Sends `payload` to `subject` and waits for the first reply.
    pub fn request(&mut self, subject: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
        self.sid += 1;
        let sid = self.sid;
        let inbox = format!("_INBOX.{}", new_nonce().replace(['-', '_'], "x"));
        let mut msg = format!(
            "SUB {inbox} {sid}\r\nPUB {subject} {inbox} {}\r\n",
            payload.len()
        )
        .into_bytes();
        msg.extend_from_slice(payload);
        msg.extend_from_slice(b"\r\nPING\r\n");
        self.send(&msg)?;
        let deadline = Instant::now() + self.timeout;
        while Instant::now() < deadline {
            let l = self.line()?;
            if l == "PING" {
                self.send(b"PONG\r\n")?;
            } else if l.starts_with("-ERR") {
                return Err(format!("the server answered {l}"));
            } else if let Some(args) = l.strip_prefix("MSG ") {
                let parts: Vec<&str> = args.split_whitespace().collect();
                let len: usize = parts
                    .last()
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| format!("bad MSG line {l:?}"))?;
                let mut body = vec![0; len + 2];
                self.reader
                    .read_exact(&mut body)
                    .map_err(|e| format!("reading a reply: {e}"))?;
                body.truncate(len);
                if parts.get(1) == Some(&sid.to_string().as_str()) {
                    self.send(format!("UNSUB {sid}\r\n").as_bytes())?;
                    return Ok(body);
                }
            }
        }
        Err(format!("no reply on {subject} within {:?}", self.timeout))
    }
}

/// Reads a creds file (warning when others may read it).
pub fn read_creds(path: &Path) -> Result<Creds, String> {
    let text = read_secret(path)?;
    jwt::parse_creds(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The system user's creds: `--creds`, else the store's.
pub fn system_creds(ctx: &Ctx, p: &Parsed, op: Option<&str>) -> Result<Creds, CliError> {
    let path = match (p.get("creds"), op) {
        (Some(f), _) => f.into(),
        (None, Some(op)) => ctx.store.creds_path(op, SYS_ACCOUNT, SYS_USER),
        (None, None) => return Err(p.usage("--creds is required without a store operator")),
    };
    Ok(read_creds(&path).map_err(|e| format!("--creds: {e}"))?)
}

pub fn timeout(p: &Parsed) -> Result<Duration, CliError> {
    let secs = match p.get("timeout") {
        Some(t) => parse_duration(t).map_err(|e| p.usage(format!("--timeout: {e}")))?,
        None => 5,
    };
    Ok(Duration::from_secs(secs.max(1) as u64))
}

/// Whether a claims update reply says the JWT was taken.
fn accepted(reply: &Value) -> bool {
    reply["data"]["code"].as_i64() == Some(200)
}

pub fn push(ctx: &Ctx, p: &Parsed) -> Result<(), CliError> {
    let mut jwts: Vec<(String, String)> = Vec::new();
    for f in p.all("jwt") {
        let text = std::fs::read_to_string(f).map_err(|e| format!("--jwt {f}: {e}"))?;
        let token = jwt::parse_decorated_jwt(&text);
        let c = jwt::decode(&token).map_err(|e| format!("--jwt {f}: {e}"))?;
        if c.kind() != jwt::Kind::Account {
            return Err(CliError::Failed(format!(
                "--jwt {f}: {:?} claims, not an account",
                c.kind()
            )));
        }
        jwts.push((f.clone(), token));
    }
    let op = if jwts.is_empty() || !p.has("creds") {
        Some(ctx.store.pick_operator(p.get("operator"))?)
    } else {
        None
    };
    if jwts.is_empty() {
        let op = op.as_deref().expect("picked");
        if p.has("account") {
            for a in p.all("account") {
                let e = ctx.store.account(op, a)?;
                jwts.push((e.name, e.token));
            }
        } else {
            jwts.extend(
                ctx.store
                    .accounts(op)
                    .into_iter()
                    .map(|e| (e.name, e.token)),
            );
        }
    }
    if jwts.is_empty() {
        return Err(CliError::Failed("no accounts to push".into()));
    }
    let creds = system_creds(ctx, p, op.as_deref())?;
    let url = p.get("server").unwrap_or("nats://127.0.0.1:4222");
    let mut client = Client::connect(url, &creds, timeout(p)?)?;
    let mut failed = 0;
    for (name, token) in &jwts {
        let key = jwt::peek(token).map(|c| c.sub).unwrap_or_default();
        match client.request(CLAIMS_UPDATE, token.as_bytes()) {
            Ok(body) => {
                let text = String::from_utf8_lossy(&body).to_string();
                let ok = serde_json::from_str::<Value>(&text).is_ok_and(|v| accepted(&v));
                if !ok {
                    failed += 1;
                }
                println!("{name} {key}: {text}");
            }
            Err(e) => {
                failed += 1;
                println!("{name} {key}: ERROR {e}");
            }
        }
    }
    if failed > 0 {
        return Err(CliError::Failed(format!(
            "{failed} of {} accounts not accepted by {url}",
            jwts.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses() {
        assert_eq!(address("nats://127.0.0.1:4333").unwrap(), "127.0.0.1:4333");
        assert_eq!(address("localhost").unwrap(), "localhost:4222");
        assert_eq!(address("nats://u:p@h:1").unwrap(), "h:1");
        assert!(address("tls://h:1").is_err());
    }
}
