//! Configuration files: the config language, flags vs file, `-t` checking, refusal at
//! start, and live reload (SIGHUP) with its effect on connected clients.
//! Expected behaviour is that of the reference nats-server 2.9.10.

mod common;

use common::{run_to_exit, show, strip_pings, wait_until, with_timeout, Exit, Launch, Raw, Server};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);
const EXIT_LIMIT: Duration = Duration::from_secs(10);

/// INFO of a fresh connection.
fn info(srv: &Server) -> serde_json::Value {
    Raw::connect(srv.port()).info
}

/// Raw client that sent a quiet CONNECT with extra JSON fields (e.g. `"user":"a","pass":"b"`)
/// and got its PONG.
fn login(port: u16, fields: &str) -> Raw {
    let mut r = Raw::connect(port);
    r.send(
        format!("CONNECT {{\"verbose\":false,\"pedantic\":false,\"headers\":true,{fields}}}\r\n")
            .as_bytes(),
    );
    r.sync();
    r
}

/// Raw client whose CONNECT with `fields` must be refused with the auth -ERR and closed.
fn login_refused(port: u16, fields: &str) {
    let mut r = Raw::connect(port);
    r.send(format!("CONNECT {{\"verbose\":false,{fields}}}\r\nPING\r\n").as_bytes());
    r.expect(b"-ERR 'Authorization Violation'\r\n");
    r.expect_closed();
}

fn pub_bytes(subject: &str, n: usize) -> Vec<u8> {
    let mut m = format!("PUB {subject} {n}\r\n").into_bytes();
    m.extend(std::iter::repeat_n(b'x', n));
    m.extend_from_slice(b"\r\n");
    m
}

/// True if `out` points at line `line`: either `FILE:LINE:` (the reference's form for
/// semantic errors, `server.conf:3:1: unknown field ...`) or the words `line LINE`
/// (its form for syntax errors, `Parse error on line 2: ...`).
fn names_line(out: &str, file: &str, line: u32) -> bool {
    if out.contains(&format!("{file}:{line}:")) {
        return true;
    }
    let needle = format!("line {line}");
    out.match_indices(&needle).any(|(i, _)| {
        !out[i + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

fn check(conf_name: &str, text: &str, files: &[(&str, &str)]) -> Exit {
    run_to_exit(conf_name, text, files, &["-t"], EXIT_LIMIT)
}

fn assert_failed_naming_line(e: &Exit, file: &str, line: u32) {
    assert!(
        !e.success() && e.code.is_some(),
        "expected a non-zero exit, got {:?}; output:\n{}",
        e.code,
        e.output
    );
    assert!(
        names_line(&e.output, file, line),
        "output does not point at {file} line {line}:\n{}",
        e.output
    );
}

// ---------------------------------------------------------------- applying a config file

const REALISTIC: &str = r#"
# Edge server for the orders system.
server_name: "edge-1"
port: 4222          # the harness passes -p -1, which overrides this
host: "0.0.0.0"     # and -a 127.0.0.1 overrides this
max_payload: 64KB
max_connections: 100
max_control_line: 4KB
max_pending: 10MB
ping_interval: "2m"
ping_max: 2
write_deadline: "10s"
debug: false
trace: false
logtime: true

authorization {
  timeout: 2
  users: [
    {user: app, password: "app-pw", permissions: {publish: "app.>", subscribe: ["app.>", "_INBOX.>"]}}
    {user: ops, password: "ops-pw"}
  ]
}
"#;

#[test]
fn realistic_config_is_applied_and_flags_override_listen() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(REALISTIC, &[]);
        assert_ne!(srv.port(), 4222, "-p -1 must override the file's port");
        let i = info(&srv);
        assert_eq!(i["server_name"], "edge-1", "INFO: {i}");
        assert_eq!(i["max_payload"], 65536, "INFO: {i}");
        assert_eq!(i["auth_required"], true, "INFO: {i}");
        assert_eq!(
            i["host"], "127.0.0.1",
            "-a must override the file's host: {i}"
        );
        assert_eq!(i["port"], srv.port() as u64, "INFO: {i}");

        let mut app = login(srv.port(), r#""user":"app","pass":"app-pw""#);
        app.send(b"SUB app.events 1\r\nPUB app.events 2\r\nhi\r\n");
        assert_eq!(app.next_line(), "MSG app.events 1 2");
        assert_eq!(app.next_line(), "hi");
        app.send(b"PUB ops.x 0\r\n\r\n");
        assert_eq!(
            app.next_line(),
            "-ERR 'Permissions Violation for Publish to \"ops.x\"'"
        );
        app.sync();
        let mut ops = login(srv.port(), r#""user":"ops","pass":"ops-pw""#);
        ops.send(b"SUB ops.x 1\r\n");
        ops.sync();
        login_refused(srv.port(), r#""user":"ops","pass":"app-pw""#);
    });
}

#[test]
fn command_line_flags_override_file_values() {
    with_timeout(LIMIT, || {
        let conf = "server_name: from-file\nmax_payload: 1000\n";
        // No flag for max_payload: the file's value applies.
        let srv = Server::with_config(conf, &[]);
        let i = info(&srv);
        assert_eq!(i["server_name"], "from-file", "INFO: {i}");
        assert_eq!(i["max_payload"], 1000, "INFO: {i}");
        drop(srv);
        // --name beats server_name from the file; the rest of the file still applies.
        let srv = Server::with_config(conf, &["--name", "from-flag"]);
        let i = info(&srv);
        assert_eq!(i["server_name"], "from-flag", "INFO: {i}");
        assert_eq!(i["max_payload"], 1000, "INFO: {i}");
        drop(srv);
        // --auth on the command line with a config that has no authorization block.
        let srv = Server::with_config(conf, &["--auth", "flag-token"]);
        assert_eq!(info(&srv)["auth_required"], true);
        login(srv.port(), r#""auth_token":"flag-token""#);
        login_refused(srv.port(), r#""auth_token":"other""#);
    });
}

// ---------------------------------------------------------------- the language

#[test]
fn separators_comments_variables_and_size_suffixes() {
    with_timeout(LIMIT, || {
        let conf = r#"
# hash comment
// slash comment
NAME: "from-variable"      # a variable defined in the file
server_name = $NAME        // '=' separator and a variable reference
max_payload 2KB            # whitespace separator, size suffix (1024-based)
"max_control_line": 512; max_connections: 10
"#;
        let srv = Server::with_config(conf, &[]);
        let i = info(&srv);
        assert_eq!(i["server_name"], "from-variable", "INFO: {i}");
        assert_eq!(i["max_payload"], 2048, "INFO: {i}");
        // max_control_line from the quoted key after a ';' on the same line as another pair.
        let mut bad = Raw::connect_ok(srv.port());
        bad.send(format!("SUB {} 1\r\n", "a".repeat(600)).as_bytes());
        bad.expect(b"-ERR 'maximum control line exceeded'\r\n");
        bad.expect_closed();
    });
}

#[test]
fn size_suffix_single_letter_is_power_of_1000() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config("max_payload: 3k\n", &[]);
        assert_eq!(info(&srv)["max_payload"], 3000);
        drop(srv);
        let srv = Server::with_config("max_payload: 1MB\n", &[]);
        assert_eq!(info(&srv)["max_payload"], 1048576);
    });
}

#[test]
fn variable_from_environment_and_file_variable_wins() {
    with_timeout(LIMIT, || {
        // Not defined in the file: taken from the environment.
        let srv = Server::start_with(&Launch {
            conf: Some("server_name: $ITEST_SERVER_NAME\n"),
            env: &[("ITEST_SERVER_NAME", "from-env")],
            ..Launch::default()
        });
        assert_eq!(info(&srv)["server_name"], "from-env");
        drop(srv);
        // Defined in the file: the file's value is used, not the environment's.
        let srv = Server::start_with(&Launch {
            conf: Some("ITEST_SERVER_NAME: from-file\nserver_name: $ITEST_SERVER_NAME\n"),
            env: &[("ITEST_SERVER_NAME", "from-env")],
            ..Launch::default()
        });
        assert_eq!(info(&srv)["server_name"], "from-file");
    });
}

#[test]
fn include_is_relative_to_the_including_file() {
    with_timeout(LIMIT, || {
        // server.conf includes sub/auth.conf, which includes more.conf from its own dir
        // (sub/more.conf), which uses a variable from the environment. The server's
        // working directory is not the config's directory.
        let srv = Server::start_with(&Launch {
            conf: Some("server_name: inc\ninclude \"sub/auth.conf\"\nmax_payload: 4KB\n"),
            files: &[
                ("sub/auth.conf", "include more.conf\n"),
                (
                    "sub/more.conf",
                    "authorization {\n  token: $ITEST_TOKEN\n}\n",
                ),
            ],
            env: &[("ITEST_TOKEN", "tok-from-env")],
            ..Launch::default()
        });
        let i = info(&srv);
        assert_eq!(i["auth_required"], true, "INFO: {i}");
        assert_eq!(i["max_payload"], 4096, "INFO: {i}");
        login(srv.port(), r#""auth_token":"tok-from-env""#);
        login_refused(srv.port(), r#""auth_token":"$ITEST_TOKEN""#);
    });
}

#[test]
fn duration_string_for_ping_interval() {
    with_timeout(LIMIT, || {
        // With ping_interval "1s" and ping_max 1 a silent client is pinged after ~1 s and
        // closed as stale ~1 s later; with the default 2 m interval nothing would happen.
        let srv = Server::with_config("ping_interval: \"1s\"\nping_max: 1\n", &[]);
        let mut r = Raw::connect(srv.port());
        r.send(b"CONNECT {\"verbose\":false}\r\n");
        let start = Instant::now();
        let got = r.read_until_closed(Duration::from_secs(5));
        let took = start.elapsed();
        assert!(
            got.ends_with(b"-ERR 'Stale Connection'\r\n") && got.starts_with(b"PING\r\n"),
            "got: {}",
            show(&got)
        );
        assert!(
            took >= Duration::from_millis(1500),
            "closed too early ({took:?})"
        );
        // Bare integer seconds are accepted too.
        drop(srv);
        let srv = Server::with_config("ping_interval: 1\nping_max: 1\n", &[]);
        let mut r = Raw::connect(srv.port());
        r.send(b"CONNECT {\"verbose\":false}\r\n");
        let got = r.read_until_closed(Duration::from_secs(5));
        assert!(
            got.ends_with(b"-ERR 'Stale Connection'\r\n"),
            "{}",
            show(&got)
        );
    });
}

// ---------------------------------------------------------------- -t and refused starts

#[test]
fn check_flag_accepts_a_good_file() {
    with_timeout(LIMIT, || {
        let e = check("good.conf", REALISTIC, &[]);
        assert!(e.success(), "-t on a good file: {:?}\n{}", e.code, e.output);
        // With includes and an env-free variable too.
        let e = check(
            "main.conf",
            "N: 5\nping_max: $N\ninclude \"extra.conf\"\n",
            &[("extra.conf", "max_payload: 2KB\n")],
        );
        assert!(e.success(), "-t with include: {:?}\n{}", e.code, e.output);
    });
}

#[test]
fn check_flag_syntax_error_names_the_line() {
    with_timeout(LIMIT, || {
        // Two values for one key on line 3.
        let e = check(
            "syntax.conf",
            "server_name: a\nmax_payload: 1024\nping_max: 2 3\ndebug: false\n",
            &[],
        );
        assert_failed_naming_line(&e, "syntax.conf", 3);
        // A key separator with no key on line 2.
        let e = check("sep.conf", "server_name: a\n= 5\nping_max: 3\n", &[]);
        assert_failed_naming_line(&e, "sep.conf", 2);
    });
}

#[test]
fn check_flag_unknown_top_level_key_names_file_line_and_key() {
    with_timeout(LIMIT, || {
        let e = check(
            "typo.conf",
            "server_name: a\nmax_payload: 1024\nmax_paylod: 2048\n",
            &[],
        );
        assert!(!e.success(), "unknown key accepted:\n{}", e.output);
        assert!(
            e.output.contains("typo.conf:3:"),
            "output does not name typo.conf:3:\n{}",
            e.output
        );
        assert!(
            e.output.contains("max_paylod"),
            "key not named:\n{}",
            e.output
        );
        // A typo inside authorization is refused as well.
        let e = check(
            "authtypo.conf",
            "authorization {\n  user: a\n  pasword: b\n}\n",
            &[],
        );
        assert!(
            !e.success(),
            "unknown authorization key accepted:\n{}",
            e.output
        );
        assert!(
            e.output.contains("authtypo.conf:3:") && e.output.contains("pasword"),
            "{}",
            e.output
        );
    });
}

#[test]
fn check_flag_undefined_variable_names_the_line() {
    with_timeout(LIMIT, || {
        let e = check(
            "undef.conf",
            "server_name: a\nmax_payload: $ITEST_SURELY_UNDEFINED_VAR\n",
            &[],
        );
        assert_failed_naming_line(&e, "undef.conf", 2);
        assert!(
            e.output.contains("ITEST_SURELY_UNDEFINED_VAR"),
            "variable not named:\n{}",
            e.output
        );
    });
}

#[test]
fn check_flag_missing_include_fails() {
    with_timeout(LIMIT, || {
        let e = check("inc.conf", "server_name: a\ninclude \"nope.conf\"\n", &[]);
        assert!(!e.success(), "missing include accepted:\n{}", e.output);
        assert!(e.output.contains("nope.conf"), "{}", e.output);
    });
}

#[test]
fn start_with_bad_config_exits_naming_file_and_line() {
    with_timeout(LIMIT, || {
        // Unknown key: the reference names `file:line:col`.
        let e = run_to_exit(
            "bad.conf",
            "server_name: a\n\nno_such_key: 1\n",
            &[],
            &[],
            EXIT_LIMIT,
        );
        assert!(
            !e.success(),
            "server started with a bad config:\n{}",
            e.output
        );
        assert!(e.output.contains("bad.conf:3:"), "{}", e.output);
        assert!(e.output.contains("no_such_key"), "{}", e.output);
        // Syntax error: non-zero, line named.
        let e = run_to_exit(
            "broken.conf",
            "server_name: a\nping_max: 2 3\n",
            &[],
            &[],
            EXIT_LIMIT,
        );
        assert_failed_naming_line(&e, "broken.conf", 2);
    });
}

// ---------------------------------------------------------------- reload (SIGHUP)

/// Reload `srv` with `text` and wait until a fresh connection's INFO satisfies `pred`.
fn reload_until<F: Fn(&serde_json::Value) -> bool>(srv: &Server, text: &str, pred: F) {
    srv.reload_with(text);
    assert!(
        wait_until(Duration::from_secs(10), || pred(&info(srv))),
        "reload never took effect; INFO now {}; log:\n{}",
        info(srv),
        srv.log()
    );
}

#[test]
fn reload_lowering_max_payload_applies_to_connected_clients() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config("max_payload: 2048\n", &[]);
        let mut a = Raw::connect_ok(srv.port());
        let mut b = Raw::connect_ok(srv.port());
        a.send(b"SUB big 1\r\n");
        a.send(&pub_bytes("big", 1500));
        assert_eq!(a.next_line(), "MSG big 1 1500");
        a.read_exact_bytes(1502);
        a.sync();

        reload_until(&srv, "max_payload: 1024\n", |i| i["max_payload"] == 1024);
        // `a` connected before the reload and never reconnected (its INFO said 2048).
        a.send(&pub_bytes("big", 1500));
        assert_eq!(a.next_line(), "-ERR 'Maximum Payload Violation'");
        a.expect_closed();
        // Within the new limit is still fine for the other old client.
        b.send(b"SUB small 1\r\n");
        b.send(&pub_bytes("small", 1000));
        assert_eq!(b.next_line(), "MSG small 1 1000");
        b.read_exact_bytes(1002);
        b.sync();
    });
}

#[test]
fn reload_raising_max_payload_allows_bigger_payloads() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config("max_payload: 1024\n", &[]);
        let mut a = Raw::connect_ok(srv.port());
        a.send(b"SUB big 1\r\n");
        a.sync();
        reload_until(&srv, "max_payload: 4KB\n", |i| i["max_payload"] == 4096);
        a.send(&pub_bytes("big", 3000));
        assert_eq!(a.next_line(), "MSG big 1 3000");
        a.read_exact_bytes(3002);
        a.sync();
    });
}

#[test]
fn reload_with_syntax_error_keeps_serving_with_old_values() {
    with_timeout(LIMIT, || {
        let good = "server_name: stay\nmax_payload: 2048\n";
        let srv = Server::with_config(good, &[]);
        let mut a = Raw::connect_ok(srv.port());
        a.send(b"SUB s 1\r\n");
        a.sync();

        srv.reload_with("server_name: stay\nmax_payload: 1024\nping_max: 2 3\n");
        // Nothing observable marks a failed reload, so watch the old values for a while.
        let until = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < until {
            a.sync();
            let i = info(&srv);
            assert_eq!(
                i["max_payload"], 2048,
                "bad reload changed max_payload: {i}"
            );
            assert_eq!(i["server_name"], "stay", "INFO: {i}");
            std::thread::sleep(Duration::from_millis(100));
        }
        // The existing client still may publish up to the old limit.
        a.send(&pub_bytes("s", 1500));
        assert_eq!(a.next_line(), "MSG s 1 1500");
        a.read_exact_bytes(1502);
        // New clients connect.
        Raw::connect_ok(srv.port()).sync();
        // And a later, valid reload still works.
        reload_until(&srv, "server_name: stay\nmax_payload: 1024\n", |i| {
            i["max_payload"] == 1024
        });
        a.sync();
    });
}

const USERS_BEFORE: &str = r#"
authorization {
  users = [
    {user: alice, password: a1}
    {user: bob, password: b1}
    {user: carol, password: c1, permissions: {publish: ["out.>", "x", "y"], subscribe: ["x", "y", "q.>"]}}
  ]
}
"#;

#[test]
fn reload_removing_a_user_closes_its_connection() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(USERS_BEFORE, &[]);
        let mut alice = login(srv.port(), r#""user":"alice","pass":"a1""#);
        let mut bob = login(srv.port(), r#""user":"bob","pass":"b1""#);
        srv.reload_with("authorization {\n  users = [\n    {user: alice, password: a1}\n  ]\n}\n");
        // The reference closes a removed user's connection without any -ERR.
        let got = bob.read_until_closed(Duration::from_secs(10));
        assert_eq!(strip_pings(&got), "", "removed user got: {}", show(&got));
        alice.sync();
        login_refused(srv.port(), r#""user":"bob","pass":"b1""#);
        login(srv.port(), r#""user":"alice","pass":"a1""#).sync();
    });
}

#[test]
fn reload_changing_a_password_closes_with_authorization_violation() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(USERS_BEFORE, &[]);
        let mut alice = login(srv.port(), r#""user":"alice","pass":"a1""#);
        let mut bob = login(srv.port(), r#""user":"bob","pass":"b1""#);
        srv.reload_with(&USERS_BEFORE.replace("password: b1", "password: b2"));
        let got = bob.read_until_closed(Duration::from_secs(10));
        assert_eq!(
            strip_pings(&got),
            "-ERR 'Authorization Violation'\\r\\n",
            "bob got: {}",
            show(&got)
        );
        alice.sync();
        login(srv.port(), r#""user":"bob","pass":"b2""#).sync();
        login_refused(srv.port(), r#""user":"bob","pass":"b1""#);
    });
}

#[test]
fn reload_permission_change_removes_now_forbidden_subscriptions() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(USERS_BEFORE, &[]);
        let mut alice = login(srv.port(), r#""user":"alice","pass":"a1""#);
        let mut carol = login(srv.port(), r#""user":"carol","pass":"c1""#);
        carol.send(b"SUB x 1\r\nSUB y 2\r\nSUB q.> qq 3\r\n");
        carol.sync();
        alice.send(b"PUB x 1\r\n1\r\n");
        assert_eq!(carol.next_line(), "MSG x 1 1");
        assert_eq!(carol.next_line(), "1");

        srv.reload_with(&USERS_BEFORE.replace(
            r#"permissions: {publish: ["out.>", "x", "y"], subscribe: ["x", "y", "q.>"]}"#,
            r#"permissions: {publish: ["x", "y"], subscribe: ["y"]}"#,
        ));
        // The reference tells the client which subscription went, naming the
        // sid; it walks its subscriptions in map order, so either may be first.
        let mut got = vec![carol.next_line(), carol.next_line()];
        got.sort();
        assert_eq!(
            got,
            vec![
                "-ERR 'Permissions Violation for Subscription to \"q.>\" (sid \"3\")'".to_string(),
                "-ERR 'Permissions Violation for Subscription to \"x\" (sid \"1\")'".to_string(),
            ]
        );
        carol.sync();
        // Messages on x and q.* stop; y keeps flowing.
        alice.send(b"PUB x 1\r\n1\r\nPUB q.a 1\r\n3\r\nPUB y 1\r\n2\r\n");
        alice.sync();
        assert_eq!(carol.next_line(), "MSG y 2 1");
        assert_eq!(carol.next_line(), "2");
        carol.sync();
        // A new SUB on x is refused with the ordinary text; the connection stays.
        carol.send(b"SUB x 5\r\n");
        assert_eq!(
            carol.next_line(),
            "-ERR 'Permissions Violation for Subscription to \"x\"'"
        );
        // Publish permissions changed too: out.> is now forbidden.
        carol.send(b"PUB out.a 0\r\n\r\n");
        assert_eq!(
            carol.next_line(),
            "-ERR 'Permissions Violation for Publish to \"out.a\"'"
        );
        carol.sync();
        alice.sync();
    });
}
