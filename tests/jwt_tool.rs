//! `natrix jwt`: the tool is the `natrix` binary cargo built; the server it
//! secures is the one under test (`NATRIX_TEST_BIN`, e.g.
//! `/usr/sbin/nats-server`, else natrix). Every test that starts a server
//! runs against both; the others run only the tool.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use async_nats::ConnectOptions;
use common::{Server, TempDir};
use futures::StreamExt;
use tokio::time::timeout;

const TOOL: &str = env!("CARGO_BIN_EXE_natrix");

/// A private store (NSC_HOME, NKEYS_PATH) and working directory.
struct Env {
    dir: TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: TempDir::new("jwt"),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(TOOL)
            .args(args)
            .current_dir(self.dir.path())
            .env("NSC_HOME", self.path("stores"))
            .env("NKEYS_PATH", self.path("keys"))
            .env("TZ", "UTC")
            .output()
            .expect("run natrix")
    }

    /// Runs `natrix jwt ARGS`, which must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let mut all = vec!["jwt"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "natrix {all:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `natrix jwt ARGS`, which must fail; (status, stdout, stderr).
    fn fail(&self, args: &[&str]) -> (i32, String, String) {
        let mut all = vec!["jwt"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert!(!out.status.success(), "natrix {all:?} succeeded");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn block_on<F: std::future::Future<Output = ()>>(f: F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            timeout(Duration::from_secs(60), f)
                .await
                .expect("test timed out")
        });
}

async fn connect(url: &str, creds: &Path) -> Result<async_nats::Client, async_nats::ConnectError> {
    let opts = ConnectOptions::with_credentials_file(creds)
        .await
        .expect("read creds");
    timeout(Duration::from_secs(10), opts.connect(url))
        .await
        .expect("connect within 10s")
}

/// Subscribes on `sub` with one creds file and publishes on `subject`
/// with another; the message must arrive.
async fn pub_sub(url: &str, creds_sub: &Path, creds_pub: &Path, sub: &str, subject: &str) {
    let a = connect(url, creds_sub).await.expect("subscriber connects");
    let mut s = a.subscribe(sub.to_string()).await.unwrap();
    a.flush().await.unwrap();
    let b = connect(url, creds_pub).await.expect("publisher connects");
    b.publish(subject.to_string(), "hi".into()).await.unwrap();
    b.flush().await.unwrap();
    let m = timeout(Duration::from_secs(5), s.next())
        .await
        .expect("message within 5s")
        .unwrap();
    assert_eq!(m.subject.as_str(), subject);
    assert_eq!(&m.payload[..], b"hi");
}

#[test]
fn help_for_the_tool_and_each_command() {
    let e = Env::new();
    let top = e.ok(&["--help"]);
    for cmd in [
        "init",
        "add operator",
        "add account",
        "add user",
        "add export",
        "add import",
        "issue",
        "edit operator",
        "edit account",
        "edit user",
        "edit signing-key",
        "generate activation",
        "generate config",
        "creds",
        "describe",
        "push",
        "lint",
    ] {
        assert!(
            top.contains(&format!("  {cmd} ")),
            "{cmd} missing in:\n{top}"
        );
        let mut args: Vec<&str> = cmd.split(' ').collect();
        args.push("--help");
        let h = e.ok(&args);
        assert!(h.contains(&format!("Usage: natrix jwt {cmd}")), "{h}");
        assert!(h.contains("-h, --help"), "{h}");
    }
    let h = e.ok(&["issue", "--help"]);
    assert!(
        h.contains("--allow-pub <SUBJECT>") && h.contains("--allow-pub-response[=<MAX>]"),
        "{h}"
    );
    // Bad input names the flag.
    let (code, _, err) = e.fail(&["issue", "--bogus"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown flag --bogus"), "{err}");
    let (code, _, err) = e.fail(&["frobnicate"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown command"), "{err}");
    // The server's own usage still works and mentions the tool.
    let out = e.run(&["--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("natrix jwt <COMMAND>"));
}

#[test]
fn init_writes_a_private_store_and_a_config() {
    let e = Env::new();
    let conf = e.ok(&["init", "--name", "demo"]);
    let op_jwt = e.read("stores/demo/demo.jwt");
    assert!(conf.contains(&format!("operator: {op_jwt}")), "{conf}");
    assert!(
        conf.contains("resolver: MEMORY") && conf.contains("resolver_preload"),
        "{conf}"
    );
    let info: serde_json::Value = serde_json::from_str(&e.read("stores/demo/.nsc")).unwrap();
    assert_eq!(info["name"], "demo");
    assert_eq!(info["kind"], "operator");
    for f in [
        "stores/demo/demo.jwt",
        "stores/demo/accounts/SYS/SYS.jwt",
        "stores/demo/accounts/SYS/users/sys.jwt",
        "keys/creds/demo/SYS/sys.creds",
    ] {
        assert_eq!(mode(&e.path(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&e.path("keys/creds/demo/SYS")), 0o700);
    // Every key the store made is in the key store, 0600, under its shard.
    let op = natrix::security::jwt::decode(&op_jwt).unwrap();
    let nk = e.path(&format!("keys/keys/O/{}/{}.nk", &op.sub[1..3], op.sub));
    assert_eq!(mode(&nk), 0o600);
    let seed = std::fs::read_to_string(&nk).unwrap();
    assert_eq!(
        nkeys::KeyPair::from_seed(&seed).unwrap().public_key(),
        op.sub
    );
    let oc: natrix::security::jwt::OperatorClaims = op.typed().unwrap();
    assert!(
        conf.contains(&format!("system_account: {}", oc.system_account)),
        "{conf}"
    );
    // The creds frames are the Go library's, byte for byte.
    let creds = e.read("keys/creds/demo/SYS/sys.creds");
    let c = natrix::security::jwt::parse_creds(&creds).unwrap();
    assert_eq!(creds, natrix::security::jwt::format_creds(&c.jwt, &c.seed));
    assert!(creds.starts_with("-----BEGIN NATS USER JWT-----\n"));
    assert!(creds.contains("\n------END NATS USER JWT------\n\n************************* IMPORTANT *************************\nNKEY Seed printed below can be used to sign and prove identity.\nNKEYs are sensitive and should be treated as secrets.\n\n-----BEGIN USER NKEY SEED-----\nSU"));
    assert!(creds.ends_with("\n------END USER NKEY SEED------\n\n*************************************************************\n"));
    // A second init of the same name is refused.
    let (code, _, err) = e.fail(&["init", "--name", "demo"]);
    assert_eq!(code, 1);
    assert!(err.contains("operator \"demo\" already exists"), "{err}");
    let (code, _, err) = e.fail(&["init", "--name", "x", "--resolver", "ldap"]);
    assert_eq!(code, 2);
    assert!(err.contains("--resolver \"ldap\""), "{err}");
}

/// The config `init` prints runs as it is, on the server under test, and
/// a user issued afterwards connects (memory resolver: regenerate).
#[test]
fn init_config_runs_and_issued_users_connect() {
    let e = Env::new();
    let conf = e.ok(&["init", "--name", "op1"]);
    // As printed: the system user connects.
    let srv = Server::with_config(&conf, &[]);
    let sys = e.path("keys/creds/op1/SYS/sys.creds");
    block_on(async {
        connect(&srv.url(), &sys).await.expect("sys connects");
    });
    drop(srv);
    e.ok(&["add", "account", "--name", "APP"]);
    let path = e.ok(&[
        "issue",
        "--account",
        "APP",
        "--name",
        "alice",
        "--exp",
        "24h",
        "--allow-pub",
        "data.>",
        "--allow-sub",
        "data.>,_INBOX.>",
    ]);
    let creds = PathBuf::from(path.trim());
    assert_eq!(creds, e.path("keys/creds/op1/APP/alice.creds"));
    assert_eq!(mode(&creds), 0o600);
    e.ok(&[
        "issue",
        "--account",
        "APP",
        "--allow-pub",
        "data.in",
        "--out",
        "bob.creds",
    ]);
    assert_eq!(mode(&e.path("bob.creds")), 0o600);
    let conf = e.ok(&["generate", "config"]);
    let srv = Server::with_config(&conf, &[]);
    block_on(async {
        pub_sub(
            &srv.url(),
            &creds,
            &e.path("bob.creds"),
            "data.>",
            "data.in",
        )
        .await;
        // Permissions hold: bob may not publish elsewhere (the server
        // closes or ignores; alice never sees it).
        let alice = connect(&srv.url(), &creds).await.unwrap();
        let mut s = alice.subscribe("data.>").await.unwrap();
        alice.flush().await.unwrap();
        let bob = connect(&srv.url(), &e.path("bob.creds")).await.unwrap();
        let _ = bob.publish("data.other", "no".into()).await;
        let _ = bob.flush().await;
        bob.publish("data.in", "yes".into()).await.unwrap();
        bob.flush().await.unwrap();
        let m = timeout(Duration::from_secs(5), s.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.subject.as_str(), "data.in");
    });
}

#[test]
fn full_resolver_config_and_push() {
    let e = Env::new();
    let dir = e.path("jwtdir");
    std::fs::create_dir_all(&dir).unwrap();
    let conf = e.ok(&[
        "init",
        "--name",
        "op2",
        "--resolver",
        "full",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert!(conf.contains("type: full"), "{conf}");
    e.ok(&["add", "account", "--name", "APP"]);
    e.ok(&["add", "user", "--account", "APP", "--name", "u1"]);
    let srv = Server::with_config(&conf, &[]);
    // Not pushed yet: the user is refused, and lint says why.
    let creds = e.path("keys/creds/op2/APP/u1.creds");
    block_on(async {
        assert!(
            connect(&srv.url(), &creds).await.is_err(),
            "account not pushed yet"
        );
    });
    let (_, out, _) = e.fail(&["lint", "--resolver-dir", dir.to_str().unwrap()]);
    assert!(
        out.contains("account APP: not pushed to the resolver"),
        "{out}"
    );
    let out = e.ok(&["push", "--server", &srv.url(), "--account", "APP"]);
    let app = natrix::security::jwt::decode(&e.read("stores/op2/accounts/APP/APP.jwt")).unwrap();
    assert!(out.starts_with(&format!("APP {}: {{", app.sub)), "{out}");
    let reply: serde_json::Value =
        serde_json::from_str(out.split_once(": ").unwrap().1.trim()).unwrap();
    assert_eq!(reply["data"]["code"], 200, "{out}");
    assert_eq!(reply["data"]["account"], app.sub.as_str(), "{out}");
    assert!(
        reply["data"]["message"]
            .as_str()
            .unwrap()
            .contains("jwt updated"),
        "{out}"
    );
    block_on(async {
        pub_sub(&srv.url(), &creds, &creds, "x", "x").await;
    });
    let out = e.ok(&["lint", "--resolver-dir", dir.to_str().unwrap()]);
    assert!(out.contains("no findings"), "{out}");
    // The running server's resolver holds what the store holds ...
    let out = e.ok(&["lint", "--server", &srv.url()]);
    assert!(out.contains("no findings"), "{out}");
    // ... until the account changes and is not pushed again.
    e.ok(&["edit", "account", "--name", "APP", "--conns", "3"]);
    let (_, out, _) = e.fail(&["lint", "--server", &srv.url()]);
    assert!(
        out.contains("account APP: the server's resolver holds another version"),
        "{out}"
    );
}

#[test]
fn cache_and_url_resolver_configs_check() {
    let e = Env::new();
    let dir = e.path("cache");
    std::fs::create_dir_all(&dir).unwrap();
    let conf = e.ok(&[
        "init",
        "--name",
        "c",
        "--resolver",
        "cache",
        "--dir",
        dir.to_str().unwrap(),
        "--config-out",
        "c.conf",
    ]);
    assert_eq!(conf, e.read("c.conf"));
    let srv = Server::with_config(&conf, &[]);
    block_on(async {
        connect(&srv.url(), &e.path("keys/creds/c/SYS/sys.creds"))
            .await
            .expect("sys connects");
    });
    // A url resolver: a minimal account server on loopback answering
    // every lookup with the system account's JWT (bounded: a few
    // connections, each with a timeout).
    let sys_jwt = e.read("stores/c/accounts/SYS/SYS.jwt");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for conn in listener.incoming().take(8).flatten() {
            let mut conn = conn;
            conn.set_read_timeout(Some(Duration::from_secs(2))).ok();
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{sys_jwt}",
                sys_jwt.len()
            );
        }
    });
    let url = format!("http://127.0.0.1:{port}/jwt/v1/accounts/");
    let conf = e.ok(&["generate", "config", "--resolver", "url", "--url", &url]);
    assert!(conf.contains(&format!("resolver: URL({url})")), "{conf}");
    std::fs::write(e.path("u.conf"), &conf).unwrap();
    let out = Command::new(common::server_bin())
        .args(["-t", "-c"])
        .arg(e.path("u.conf"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, _, err) = e.fail(&["generate", "config", "--resolver", "url"]);
    assert!(err.contains("--resolver url needs --url"), "{err}");
}

#[test]
fn edit_user_permissions_limits_and_validity() {
    let e = Env::new();
    e.ok(&["init", "--name", "o"]);
    e.ok(&["add", "account", "--name", "A"]);
    e.ok(&[
        "add",
        "user",
        "--account",
        "A",
        "--name",
        "u",
        "--allow-pub",
        "a.>",
    ]);
    e.ok(&[
        "edit",
        "user",
        "--account",
        "A",
        "--name",
        "u",
        "--allow-pub",
        "b.>",
        "--deny-pub",
        "a.secret",
        "--allow-sub",
        "_INBOX.>",
        "--allow-pub-response=3",
        "--response-ttl",
        "5s",
        "--bearer",
        "--src",
        "127.0.0.0/8",
        "--time",
        "08:00:00-18:00:00",
        "--locale",
        "UTC",
        "--subs",
        "10",
        "--payload",
        "1024",
        "--data",
        "4096",
        "--exp",
        "2030-01-01",
    ]);
    let u = natrix::security::jwt::decode(&e.read("stores/o/accounts/A/users/u.jwt")).unwrap();
    let n = &u.nats;
    assert_eq!(n["pub"]["allow"], serde_json::json!(["a.>", "b.>"]));
    assert_eq!(n["pub"]["deny"], serde_json::json!(["a.secret"]));
    assert_eq!(
        n["resp"],
        serde_json::json!({"max": 3, "ttl": 5_000_000_000i64})
    );
    assert_eq!(n["bearer_token"], true);
    assert_eq!(n["src"], serde_json::json!(["127.0.0.0/8"]));
    assert_eq!(
        n["times"],
        serde_json::json!([{"start": "08:00:00", "end": "18:00:00"}])
    );
    assert_eq!(
        (
            n["subs"].as_i64(),
            n["payload"].as_i64(),
            n["data"].as_i64()
        ),
        (Some(10), Some(1024), Some(4096))
    );
    assert_eq!(u.exp, Some(1_893_456_000));
    // The creds file follows the edit.
    let c = natrix::security::jwt::parse_creds(&e.read("keys/creds/o/A/u.creds")).unwrap();
    assert_eq!(c.jwt, e.read("stores/o/accounts/A/users/u.jwt"));
    // Removals.
    e.ok(&[
        "edit",
        "user",
        "--account",
        "A",
        "--name",
        "u",
        "--rm",
        "a.>",
        "--bearer=false",
        "--rm-response-perms",
        "--rm-src",
        "127.0.0.0/8",
        "--rm-time",
        "08:00:00-18:00:00",
    ]);
    let u = natrix::security::jwt::decode(&e.read("stores/o/accounts/A/users/u.jwt")).unwrap();
    assert_eq!(u.nats["pub"]["allow"], serde_json::json!(["b.>"]));
    for k in ["bearer_token", "resp", "src", "times"] {
        assert!(u.nats.get(k).is_none(), "{k} left: {}", u.nats);
    }
    // Bad values name the flag.
    let (code, _, err) = e.fail(&[
        "edit",
        "user",
        "--account",
        "A",
        "--name",
        "u",
        "--src",
        "nonsense",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--src \"nonsense\""), "{err}");
    let (_, _, err) = e.fail(&[
        "edit",
        "user",
        "--account",
        "A",
        "--name",
        "u",
        "--allow-pub",
        "a..b",
    ]);
    assert!(
        err.contains("--allow-pub \"a..b\" is not a valid subject"),
        "{err}"
    );
    let (_, _, err) = e.fail(&[
        "edit",
        "user",
        "--account",
        "A",
        "--name",
        "u",
        "--exp",
        "tomorrow",
    ]);
    assert!(err.contains("--exp"), "{err}");
    let (_, _, err) = e.fail(&["edit", "user", "--account", "A", "--name", "nobody"]);
    assert!(err.contains("user \"nobody\" is not in account A"), "{err}");
}

#[test]
fn edit_account_limits_signing_keys_and_revocations() {
    let e = Env::new();
    e.ok(&["init", "--name", "o"]);
    e.ok(&["add", "account", "--name", "A", "--signing-key"]);
    let acc =
        |e: &Env| natrix::security::jwt::decode(&e.read("stores/o/accounts/A/A.jwt")).unwrap();
    let a = acc(&e);
    let sk = a.nats["signing_keys"][0].as_str().unwrap().to_string();
    e.ok(&[
        "edit",
        "account",
        "--name",
        "A",
        "--conns",
        "5",
        "--subs",
        "100",
        "--payload",
        "2048",
        "--data",
        "-1",
        "--imports",
        "3",
        "--exports",
        "4",
        "--wildcard-exports",
        "false",
        "--disallow-bearer",
        "--default-deny-pub",
        "secret.>",
    ]);
    let a = acc(&e);
    let l = &a.nats["limits"];
    assert_eq!(
        (
            l["conn"].as_i64(),
            l["subs"].as_i64(),
            l["payload"].as_i64()
        ),
        (Some(5), Some(100), Some(2048))
    );
    assert_eq!(
        (l["imports"].as_i64(), l["exports"].as_i64()),
        (Some(3), Some(4))
    );
    assert_eq!(l["wildcards"], false);
    assert_eq!(l["disallow_bearer"], true);
    assert_eq!(
        a.nats["default_permissions"]["pub"]["deny"],
        serde_json::json!(["secret.>"])
    );
    // A user issued by the signing key carries issuer_account.
    e.ok(&[
        "add",
        "user",
        "--account",
        "A",
        "--name",
        "s",
        "--issuer",
        &sk,
    ]);
    let u = natrix::security::jwt::decode(&e.read("stores/o/accounts/A/users/s.jwt")).unwrap();
    assert_eq!(u.iss, sk);
    assert_eq!(u.nats["issuer_account"], a.sub.as_str());
    // A key that is not the account's is refused, naming the fix.
    let other = nkeys::KeyPair::new_account();
    let (_, _, err) = e.fail(&[
        "add",
        "user",
        "--account",
        "A",
        "--name",
        "t",
        "--issuer",
        &other.seed().unwrap(),
    ]);
    assert!(
        err.contains("neither account A nor one of its signing keys"),
        "{err}"
    );
    // Scoped signing key: its template rules; users may carry none.
    let scoped = e.ok(&[
        "edit",
        "signing-key",
        "--account",
        "A",
        "--sk",
        "generate",
        "--role",
        "dev",
        "--allow-pub",
        "dev.>",
    ]);
    let scoped = scoped.trim();
    let a = acc(&e);
    let entry = a.nats["signing_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == scoped)
        .unwrap()
        .clone();
    assert_eq!(entry["kind"], "user_scope");
    assert_eq!(entry["role"], "dev");
    assert_eq!(
        entry["template"]["pub"]["allow"],
        serde_json::json!(["dev.>"])
    );
    let (_, _, err) = e.fail(&[
        "add",
        "user",
        "--account",
        "A",
        "--name",
        "d",
        "--issuer",
        scoped,
        "--allow-pub",
        "x",
    ]);
    assert!(err.contains("scoped signing key"), "{err}");
    e.ok(&[
        "add",
        "user",
        "--account",
        "A",
        "--name",
        "d",
        "--issuer",
        scoped,
    ]);
    // Revocations by name, key and '*', with a time.
    e.ok(&[
        "edit",
        "account",
        "--name",
        "A",
        "--revoke",
        "s",
        "--revoke",
        "*",
        "--revoke-at",
        "2020-01-01",
    ]);
    let a = acc(&e);
    assert_eq!(a.nats["revocations"][u.sub.as_str()], 1_577_836_800);
    assert_eq!(a.nats["revocations"]["*"], 1_577_836_800);
    e.ok(&[
        "edit",
        "account",
        "--name",
        "A",
        "--rm-revoke",
        "*",
        "--rm-sk",
        &sk,
    ]);
    let a = acc(&e);
    assert!(a.nats["revocations"].get("*").is_none());
    assert!(!a.nats["signing_keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k == sk.as_str()));
    // Now the user issued by the removed key is flagged by lint.
    let (_, out, _) = e.fail(&["lint"]);
    assert!(
        out.contains(&format!(
            "user s of account A: issued by {sk}, which is not a signing key"
        )),
        "{out}"
    );
}

/// A revoked user is refused by the server under test; the others are not.
#[test]
fn revoked_users_are_refused() {
    let e = Env::new();
    e.ok(&["init", "--name", "o"]);
    e.ok(&["add", "account", "--name", "A"]);
    e.ok(&["add", "user", "--account", "A", "--name", "bad"]);
    e.ok(&["add", "user", "--account", "A", "--name", "good"]);
    let bad = natrix::security::jwt::decode(&e.read("stores/o/accounts/A/users/bad.jwt")).unwrap();
    e.ok(&["edit", "account", "--name", "A", "--revoke", &bad.sub]);
    let srv = Server::with_config(&e.ok(&["generate", "config"]), &[]);
    block_on(async {
        assert!(connect(&srv.url(), &e.path("keys/creds/o/A/bad.creds"))
            .await
            .is_err());
        connect(&srv.url(), &e.path("keys/creds/o/A/good.creds"))
            .await
            .expect("good connects");
    });
}

#[test]
fn edit_operator_signing_keys_and_system_account() {
    let e = Env::new();
    e.ok(&["add", "operator", "--name", "o", "--sys"]);
    e.ok(&[
        "edit",
        "operator",
        "--sk",
        "generate",
        "--service-url",
        "nats://127.0.0.1:4222",
        "--exp",
        "1y",
    ]);
    let o = natrix::security::jwt::decode(&e.read("stores/o/o.jwt")).unwrap();
    let sk = o.nats["signing_keys"][0].as_str().unwrap().to_string();
    assert_eq!(
        o.nats["operator_service_urls"],
        serde_json::json!(["nats://127.0.0.1:4222"])
    );
    assert!(o.exp.unwrap() > o.iat + 364 * 86_400);
    // Accounts signed by the signing key are trusted.
    e.ok(&["add", "account", "--name", "B", "--issuer", &sk]);
    let b = e.ok(&["describe", "stores/o/accounts/B/B.jwt", "--operator", "o"]);
    assert!(
        b.contains("trusted:     yes, issued by operator") && b.contains("a signing key"),
        "{b}"
    );
    let (_, _, err) = e.fail(&["edit", "operator", "--system-account", "NOPE"]);
    assert!(err.contains("--system-account"), "{err}");
}

#[test]
fn describe_shows_claims_and_hides_seeds() {
    let e = Env::new();
    e.ok(&["init", "--name", "o"]);
    e.ok(&["add", "account", "--name", "A"]);
    e.ok(&[
        "add",
        "user",
        "--account",
        "A",
        "--name",
        "u",
        "--allow-pub",
        "orders.>",
        "--exp",
        "2030-01-01",
    ]);
    let creds = e.read("keys/creds/o/A/u.creds");
    let seed = natrix::security::jwt::parse_creds(&creds).unwrap().seed;
    let d = e.ok(&["describe", "keys/creds/o/A/u.creds", "--operator", "o"]);
    assert!(d.contains("kind:        user JWT (version 2)"), "{d}");
    assert!(d.contains("name:        u"), "{d}");
    assert!(d.contains("signature:   valid"), "{d}");
    assert!(
        d.contains("expires:     2030-01-01 00:00:00 +00:00 (2030-01-01T00:00:00Z)"),
        "{d}"
    );
    assert!(d.contains("trusted:     yes, account A"), "{d}");
    assert!(d.contains("pub.allow: orders.>"), "{d}");
    assert!(d.contains("seed match:  yes"), "{d}");
    assert!(!d.contains(&seed), "seed printed without --show-seed:\n{d}");
    let d = e.ok(&["describe", "keys/creds/o/A/u.creds", "--show-seed"]);
    assert!(d.contains(&format!("seed:        {seed}")), "{d}");
    // A seed given directly: its public key only.
    let d = e.ok(&["describe", &seed]);
    assert!(
        d.contains("seed of:     user key U") && !d.contains(&seed),
        "{d}"
    );
    let kp = nkeys::KeyPair::from_seed(&seed).unwrap();
    let d = e.ok(&["describe", &kp.public_key()]);
    assert!(d.contains("key:         user public key"), "{d}");
    // A tampered JWT is shown, with the signature named invalid.
    let t = e.read("stores/o/accounts/A/A.jwt");
    let mut parts: Vec<&str> = t.split('.').collect();
    let sig = e.read("stores/o/accounts/SYS/SYS.jwt");
    parts[2] = sig.split('.').nth(2).unwrap();
    let d = e.ok(&["describe", &parts.join(".")]);
    assert!(d.contains("signature:   INVALID"), "{d}");
    // Trust against another operator fails.
    e.ok(&["add", "operator", "--name", "other"]);
    let d = e.ok(&[
        "describe",
        "stores/o/accounts/A/A.jwt",
        "--operator",
        "other",
    ]);
    assert!(d.contains("trusted:     NO"), "{d}");
    // A seed file readable by others draws a warning.
    let p = e.path("keys/creds/o/A/u.creds");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = e.run(&["jwt", "describe", p.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("has mode 0644: group or others may read it"),
        "{err}"
    );
    let (_, _, err) = e.fail(&["describe", "not-a-thing"]);
    assert!(err.contains("not a file, nor a JWT"), "{err}");
}

#[test]
fn go_library_tokens_describe() {
    let e = Env::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gojwt");
    let d = e.ok(&[
        "describe",
        dir.join("operator.jwt").to_str().unwrap(),
        "--operator",
        dir.join("operator.jwt").to_str().unwrap(),
    ]);
    assert!(
        d.contains("kind:        operator JWT (version 2)") && d.contains("name:        GO_OP"),
        "{d}"
    );
    assert!(
        d.contains("issuer:      O")
            && d.contains("(self-signed)")
            && d.contains("signature:   valid"),
        "{d}"
    );
    assert!(d.contains("trusted:     yes, this is operator"), "{d}");
    let d = e.ok(&["describe", dir.join("worker.creds").to_str().unwrap()]);
    assert!(
        d.contains("kind:        user JWT") && d.contains("a signing key of account A"),
        "{d}"
    );
    assert!(
        d.contains("seed match:  yes") && d.contains("subs: 3"),
        "{d}"
    );
    let d = e.ok(&["describe", dir.join("bearer.jwt").to_str().unwrap()]);
    assert!(
        d.contains("bearer_token: true") && d.contains("signature:   valid"),
        "{d}"
    );
}

/// Copies the Go-made nsc store with nsc's modes.
fn nsc_fixture(e: &Env) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).unwrap();
        for entry in std::fs::read_dir(from).unwrap().flatten() {
            let t = to.join(entry.file_name());
            if entry.path().is_dir() {
                copy(&entry.path(), &t);
            } else {
                std::fs::copy(entry.path(), &t).unwrap();
                std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nscstore/store");
    copy(&src.join("stores"), &e.path("stores"));
    copy(&src.join("keys"), &e.path("keys"));
}

#[test]
fn a_store_made_by_the_go_library_is_read() {
    let e = Env::new();
    nsc_fixture(&e);
    // Described by name, trusted through the store.
    let d = e.ok(&[
        "describe",
        "keys/creds/GoOp/Shop/bob.creds",
        "--operator",
        "GoOp",
    ]);
    assert!(
        d.contains("name:        bob") && d.contains("trusted:     yes, account Shop"),
        "{d}"
    );
    // Edited and extended in place: keys come from the Go-written key store.
    e.ok(&["edit", "account", "--name", "Shop", "--conns", "7"]);
    let shop =
        natrix::security::jwt::decode(&e.read("stores/GoOp/accounts/Shop/Shop.jwt")).unwrap();
    assert_eq!(shop.nats["limits"]["conn"], 7);
    assert_eq!(
        shop.nats["exports"][0]["subject"], "orders.>",
        "the Go export survives the edit"
    );
    e.ok(&[
        "add",
        "user",
        "--account",
        "Shop",
        "--name",
        "carol",
        "--allow-pub",
        "orders.new",
    ]);
    e.ok(&[
        "creds",
        "--account",
        "Shop",
        "--name",
        "bob",
        "--out",
        "bob.creds",
    ]);
    assert_eq!(
        e.read("bob.creds"),
        e.read("keys/creds/GoOp/Shop/bob.creds"),
        "same frames as the Go library"
    );
    let out = e.ok(&["lint"]);
    assert!(out.contains("no findings in operator GoOp"), "{out}");
    // A seed file others may read still works, with a warning on stderr.
    let op = natrix::security::jwt::decode(&e.read("stores/GoOp/GoOp.jwt")).unwrap();
    let nk = e.path(&format!("keys/keys/O/{}/{}.nk", &op.sub[1..3], op.sub));
    std::fs::set_permissions(&nk, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = e.run(&["jwt", "edit", "account", "--name", "Shop", "--subs", "50"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{} holds a seed and has mode 0640", nk.display())),
        "{err}"
    );
    // The server under test accepts the users of the Go store and ours.
    let srv = Server::with_config(&e.ok(&["generate", "config"]), &[]);
    block_on(async {
        pub_sub(
            &srv.url(),
            &e.path("bob.creds"),
            &e.path("keys/creds/GoOp/Shop/carol.creds"),
            "orders.>",
            "orders.new",
        )
        .await;
    });
}

#[test]
fn creds_command_writes_mode_0600() {
    let e = Env::new();
    e.ok(&["init", "--name", "o"]);
    e.ok(&["add", "account", "--name", "A"]);
    e.ok(&["add", "user", "--account", "A", "--name", "u"]);
    std::fs::remove_file(e.path("keys/creds/o/A/u.creds")).unwrap();
    let out = e.ok(&["creds", "--account", "A", "--name", "u"]);
    let p = e.path("keys/creds/o/A/u.creds");
    assert_eq!(out.trim(), p.to_str().unwrap());
    assert_eq!(mode(&p), 0o600);
    let c = natrix::security::jwt::parse_creds(&e.read("keys/creds/o/A/u.creds")).unwrap();
    assert_eq!(c.jwt, e.read("stores/o/accounts/A/users/u.jwt"));
    // Overwriting a world-readable file leaves it 0600.
    std::fs::write(e.path("x.creds"), "old").unwrap();
    std::fs::set_permissions(e.path("x.creds"), std::fs::Permissions::from_mode(0o644)).unwrap();
    e.ok(&["creds", "--account", "A", "--name", "u", "--out", "x.creds"]);
    assert_eq!(mode(&e.path("x.creds")), 0o600);
    let (_, _, err) = e.fail(&["creds", "--account", "A"]);
    assert!(err.contains("--name is required"), "{err}");
}

/// A private stream export, imported with an activation token.
#[test]
fn exports_imports_and_activations() {
    let e = Env::new();
    e.ok(&["init", "--name", "o"]);
    e.ok(&["add", "account", "--name", "P"]);
    e.ok(&["add", "account", "--name", "C"]);
    e.ok(&[
        "add",
        "export",
        "--account",
        "P",
        "--subject",
        "feed.>",
        "--private",
    ]);
    let (_, _, err) = e.fail(&[
        "add",
        "import",
        "--account",
        "C",
        "--src-account",
        "P",
        "--remote-subject",
        "feed.>",
    ]);
    assert!(
        err.contains("is private: pass --token") && err.contains("generate activation"),
        "{err}"
    );
    e.ok(&[
        "generate",
        "activation",
        "--account",
        "P",
        "--subject",
        "feed.>",
        "--target-account",
        "C",
        "--out",
        "act.jwt",
    ]);
    let act = natrix::security::jwt::decode(&natrix::security::jwt::parse_decorated_jwt(
        &e.read("act.jwt"),
    ))
    .unwrap();
    assert_eq!(act.kind(), natrix::security::jwt::Kind::Activation);
    e.ok(&[
        "add",
        "import",
        "--account",
        "C",
        "--src-account",
        "P",
        "--remote-subject",
        "feed.>",
        "--token",
        "act.jwt",
    ]);
    let c = natrix::security::jwt::decode(&e.read("stores/o/accounts/C/C.jwt")).unwrap();
    assert_eq!(c.nats["imports"][0]["subject"], "feed.>");
    assert_eq!(c.nats["imports"][0]["type"], "stream");
    e.ok(&["add", "user", "--account", "P", "--name", "prod"]);
    e.ok(&["add", "user", "--account", "C", "--name", "cons"]);
    let srv = Server::with_config(&e.ok(&["generate", "config"]), &[]);
    block_on(async {
        pub_sub(
            &srv.url(),
            &e.path("keys/creds/o/C/cons.creds"),
            &e.path("keys/creds/o/P/prod.creds"),
            "feed.>",
            "feed.one",
        )
        .await;
    });
    let (_, _, err) = e.fail(&[
        "add",
        "import",
        "--account",
        "C",
        "--src-account",
        "P",
        "--remote-subject",
        "nothing.here",
    ]);
    assert!(err.contains("has no stream export covering it"), "{err}");
}

#[test]
fn lint_finds_permission_mistakes_and_expiry() {
    let e = Env::new();
    e.ok(&["init", "--name", "o"]);
    e.ok(&[
        "add",
        "account",
        "--name",
        "A",
        "--default-deny-pub",
        "admin.>",
    ]);
    e.ok(&["add", "user", "--account", "A", "--name", "bare"]);
    e.ok(&[
        "add",
        "user",
        "--account",
        "A",
        "--name",
        "shadow",
        "--allow-pub",
        "orders.new",
        "--deny-pub",
        "orders.>",
    ]);
    e.ok(&[
        "add",
        "user",
        "--account",
        "A",
        "--name",
        "noinbox",
        "--allow-pub",
        "svc.>",
        "--allow-sub",
        "events.>",
    ]);
    e.ok(&[
        "add",
        "user",
        "--account",
        "A",
        "--name",
        "soon",
        "--exp",
        "3d",
    ]);
    e.ok(&[
        "add",
        "user",
        "--account",
        "A",
        "--name",
        "fine",
        "--allow-pub",
        "svc.>",
        "--allow-sub",
        "_INBOX.>",
    ]);
    let (code, out, err) = e.fail(&["lint", "--expiring-days", "7"]);
    assert_eq!(code, 1);
    assert!(err.contains("5 findings"), "{err}\n{out}");
    assert!(out.contains("user bare of account A: has no permissions of its own, so the account's default_permissions apply, and they deny (publish deny: [admin.>]"), "{out}");
    assert!(
        out.contains(
            "user shadow of account A: publish deny \"orders.>\" shadows allow \"orders.new\""
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "user noinbox of account A: may publish to svc.> but not subscribe to \"_INBOX.>\""
        ),
        "{out}"
    );
    assert!(
        out.contains("user soon of account A: expires at") && out.contains("within 7 days"),
        "{out}"
    );
    assert!(!out.contains("user fine"), "{out}");
    assert!(!out.contains("user fine of"), "{out}");
    let (_, out, _) = e.fail(&["lint", "--expiring-days", "1"]);
    assert!(!out.contains("user soon of account A: expires"), "{out}");
}

/// The README's walk-through, run line by line: `natrix jwt ...` with the
/// tool, `natrix -c FILE` as the server under test, `nats --creds F sub S`
/// and `nats --creds F pub S MSG` with async-nats.
#[test]
fn readme_walk_through() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let block = readme
        .split_once("<!-- jwt-quickstart:begin -->")
        .and_then(|(_, r)| r.split_once("<!-- jwt-quickstart:end -->"))
        .expect("README has the jwt-quickstart markers")
        .0;
    let lines: Vec<Vec<String>> = block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("```"))
        .map(words)
        .collect();
    assert!(lines.len() >= 5, "{block}");
    let e = Env::new();
    let mut srv: Option<Server> = None;
    let mut sub: Option<(String, String)> = None;
    for w in &lines {
        match w.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["natrix", "jwt", rest @ ..] => {
                e.ok(rest);
            }
            ["natrix", "-c", file] => srv = Some(Server::with_config(&e.read(file), &[])),
            ["nats", "--creds", creds, "sub", subject] => {
                sub = Some((creds.to_string(), subject.to_string()))
            }
            ["nats", "--creds", creds, "pub", subject, _msg] => {
                let srv = srv.as_ref().expect("the server runs before clients");
                let (sc, ss) = sub.clone().expect("a subscriber before the publisher");
                block_on(pub_sub(
                    &srv.url(),
                    &e.path(&sc),
                    &e.path(creds),
                    &ss,
                    subject,
                ));
            }
            other => panic!("README walk-through line not understood: {other:?}"),
        }
    }
    assert!(
        srv.is_some() && sub.is_some(),
        "the walk-through runs a server and a client"
    );
}

/// Shell words: spaces split, double quotes group.
fn words(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for ch in line.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `natrix explain --creds` on what the tool made: every step of the chain,
/// PASS or FAIL with the cause and the fix (the tool only; no server).
#[test]
fn explain_walks_the_chain_for_tool_made_creds() {
    let e = Env::new();
    e.ok(&["init", "--name", "o", "--config-out", "server.conf"]);
    e.ok(&["add", "account", "--name", "A"]);
    e.ok(&[
        "issue",
        "--account",
        "A",
        "--name",
        "u",
        "--allow-pub",
        "data.>",
        "--out",
        "u.creds",
    ]);
    e.ok(&["generate", "config", "--config-out", "server.conf"]);
    let out = e.run(&[
        "explain",
        "--creds",
        "u.creds",
        "-c",
        "server.conf",
        "--pub",
        "data.x",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("ALLOWED\n"), "{text}");
    for step in [
        "PASS user JWT",
        "PASS account:",
        "PASS operator:",
        "PASS issuer: the account key",
        "PASS revocation",
        "PASS signature",
        "PASS permission: publish to \"data.x\"",
    ] {
        assert!(text.contains(step), "{step}:\n{text}");
    }
    let out = e.run(&[
        "explain",
        "--creds",
        "u.creds",
        "-c",
        "server.conf",
        "--pub",
        "other",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("  FAIL permission\n       cause: publish to \"other\""),
        "{text}"
    );
    // Revoked: the chain fails at the revocation, naming the fix.
    let u = natrix::security::jwt::decode(&e.read("stores/o/accounts/A/users/u.jwt")).unwrap();
    e.ok(&["edit", "account", "--name", "A", "--revoke", "u"]);
    e.ok(&["generate", "config", "--config-out", "server.conf"]);
    let out = e.run(&[
        "explain",
        "--creds",
        "u.creds",
        "-c",
        "server.conf",
        "--connect",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("  FAIL revocation\n       cause: revoked at"),
        "{text}"
    );
    assert!(text.contains(&format!("--rm-revoke {}", u.sub)), "{text}");
}
