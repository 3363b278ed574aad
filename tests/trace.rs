//! Protocol tracing (`-V`, `trace: true`, `max_traced_msg_len`): the
//! `[TRC]` lines a user reads to see what each client sent and was sent.

mod common;

use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(30);

/// The trace lines of the log, each from its direction marker on
/// (`<<- `, `->> ` or `<-> `), without the client's prefix.
fn traced(srv: &Server) -> Vec<String> {
    srv.log()
        .lines()
        .filter(|l| l.contains("[TRC]"))
        .filter_map(|l| {
            ["<<- ", "->> ", "<-> "]
                .iter()
                .filter_map(|m| l.find(m))
                .min()
                .map(|at| l[at..].to_string())
        })
        .collect()
}

/// Waits until the trace holds `last`, then returns it.
fn trace_through(srv: &Server, last: &str) -> Vec<String> {
    let mut got = Vec::new();
    let seen = wait_until(Duration::from_secs(5), || {
        got = traced(srv);
        got.iter().any(|l| l == last)
    });
    assert!(seen, "no {last:?} in the trace:\n{}", got.join("\n"));
    got
}

fn args<'a>(extra: &'a [&'a str], flags: &'a [String]) -> Vec<&'a str> {
    extra
        .iter()
        .copied()
        .chain(flags.iter().map(String::as_str))
        .collect()
}

#[test]
fn trace_shows_every_operation_in_and_out_with_the_password_redacted() {
    with_timeout(LIMIT, || {
        let flags = shard_flags(1);
        let srv = Server::start(&args(&["-V", "--user", "x", "--pass", "secretpw"], &flags));
        let mut c = Raw::connect(srv.port());
        c.send(
            b"CONNECT {\"verbose\":true,\"headers\":true,\"user\":\"x\",\"pass\":\"secretpw\"}\r\n\
              SUB foo q 1\r\n\
              HPUB foo  reply 12 17\r\nNATS/1.0\r\n\r\nhello\r\n\
              PUB  foo   2\r\n\x01\xff\r\n\
              PING\r\n",
        );
        c.expect(b"+OK\r\n+OK\r\n+OK\r\nHMSG foo 1 reply 12 17\r\nNATS/1.0\r\n\r\nhello\r\n");
        c.expect(b"+OK\r\nMSG foo 1 2\r\n\x01\xff\r\nPONG\r\n");
        c.send(b"UNSUB 1 3\r\nPUB foo 0\r\n\r\nSUB bar 2\r\nBOGUS\r\n");
        let rest = c.read_until_closed(Duration::from_secs(5));
        assert!(
            rest.ends_with(b"-ERR 'Unknown Protocol Operation'\r\n"),
            "{}",
            show(&rest)
        );
        let mut got = trace_through(&srv, "<-> [DELSUB 2]");
        // The reference pings a new client about 2 s after CONNECT; on a
        // slow machine that may fall inside this test.
        got.retain(|l| l != "->> [PING]");
        let want = [
            r#"<<- [CONNECT {"verbose":true,"headers":true,"user":"x","pass":"[REDACTED]"}]"#,
            "->> [OK]",
            "<<- [SUB foo q 1]",
            "->> [OK]",
            "<<- [HPUB foo  reply 12 17]",
            r#"<<- MSG_PAYLOAD: ["NATS/1.0\r\n\r\nhello"]"#,
            "->> [OK]",
            "->> [HMSG foo 1 reply 12 17]",
            "<<- [PUB foo   2]",
            r#"<<- MSG_PAYLOAD: ["\x01\xff"]"#,
            "->> [OK]",
            "->> [MSG foo 1 2]",
            "<<- [PING]",
            "->> [PONG]",
            "<<- [UNSUB 1 3]",
            "->> [OK]",
            "<<- [PUB foo 0]",
            r#"<<- MSG_PAYLOAD: [""]"#,
            "->> [OK]",
            "->> [MSG foo 1 0]",
            "<-> [DELSUB 1]",
            "<<- [SUB bar 2]",
            "->> [OK]",
            "->> [-ERR Unknown Protocol Operation]",
            "<-> [DELSUB 2]",
        ];
        assert_eq!(got, want, "trace:\n{}", got.join("\n"));
        assert!(!srv.log().contains("secretpw"), "the password was logged");
    });
}

#[test]
fn a_delivery_is_traced_on_the_subscriber_and_refusals_as_err() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(
            "trace: true\n\
             authorization { users = [ {user: u, password: p, permissions: { publish: { deny: [denied] } } } ] }\n",
            &[],
        );
        let connect = b"CONNECT {\"verbose\":false,\"user\":\"u\",\"pass\":\"p\"}\r\n";
        let mut sub = Raw::connect(srv.port());
        sub.send(connect);
        sub.send(b"SUB in.> 7\r\n");
        sub.sync();
        let mut publ = Raw::connect(srv.port());
        publ.send(connect);
        publ.send(b"PUB in.x r.1 2\r\nhi\r\nPUB denied 1\r\nx\r\n");
        publ.expect(b"-ERR 'Permissions Violation for Publish to \"denied\"'\r\n");
        assert_eq!(sub.expect_line(), "MSG in.x 7 r.1 2");
        let got = trace_through(&srv, "->> [MSG in.x 7 r.1 2]");
        // The delivery line carries the subscriber's prefix, not the
        // publisher's.
        let log = srv.log();
        let delivery = log
            .lines()
            .find(|l| l.ends_with("->> [MSG in.x 7 r.1 2]"))
            .expect("delivery traced");
        let sub_line = log
            .lines()
            .find(|l| l.ends_with("<<- [SUB in.> 7]"))
            .expect("SUB traced");
        let prefix = |l: &str| {
            l[l.find(" - cid:").expect("client prefix")..]
                .split(" - ")
                .nth(1)
                .map(str::to_string)
        };
        assert_eq!(prefix(delivery), prefix(sub_line), "{delivery}\n{sub_line}");
        for line in [
            "<<- [PUB in.x r.1 2]",
            r#"<<- MSG_PAYLOAD: ["hi"]"#,
            "<<- [PUB denied 1]",
            "->> [-ERR Permissions Violation for Publish to \"denied\"]",
        ] {
            assert!(
                got.iter().any(|l| l == line),
                "no {line:?} in:\n{}",
                got.join("\n")
            );
        }
        // A wrong password: the CONNECT (redacted) and the refusal.
        let mut bad = Raw::connect(srv.port());
        bad.send(b"CONNECT {\"verbose\":false,\"user\":\"u\",\"pass\":\"nope\"}\r\nPING\r\n");
        bad.read_until_closed(Duration::from_secs(5));
        let got = trace_through(&srv, "->> [-ERR Authorization Violation]");
        assert!(
            got.iter()
                .any(|l| l == r#"<<- [CONNECT {"verbose":false,"user":"u","pass":"[REDACTED]"}]"#),
            "{}",
            got.join("\n")
        );
    });
}

#[test]
fn max_traced_msg_len_cuts_traced_payloads_as_the_reference() {
    with_timeout(LIMIT, || {
        let flags = shard_flags(1);
        for (conf, extra) in [
            ("trace: true\nmax_traced_msg_len: 4\n", &[][..]),
            ("trace: true\n", &["--max_traced_msg_len", "4"][..]),
        ] {
            let srv = Server::with_config(conf, &args(extra, &flags));
            let mut c = Raw::connect(srv.port());
            c.send(CONNECT_QUIET);
            c.send(b"PUB a 3\r\nabc\r\nPUB a 5\r\nhello\r\nPUB a 7\r\n\r\n\t\"\\\x80a\r\n");
            c.sync();
            let got = trace_through(&srv, "->> [PONG]");
            let payloads: Vec<&str> = got
                .iter()
                .filter(|l| l.starts_with("<<- MSG_PAYLOAD"))
                .map(String::as_str)
                .collect();
            assert_eq!(
                payloads,
                [
                    r#"<<- MSG_PAYLOAD: ["abc"]"#,
                    r#"<<- MSG_PAYLOAD: ["hell..."]"#,
                    // The cut falls in the quoted text, escapes counted.
                    r#"<<- MSG_PAYLOAD: ["\r\n..."]"#,
                ],
                "{conf} {extra:?}"
            );
        }
    });
}

#[test]
fn nothing_is_traced_until_a_reload_turns_trace_on() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config("debug: true\n", &[]);
        let mut c = Raw::connect(srv.port());
        c.send(CONNECT_QUIET);
        c.send(b"SUB a 1\r\nPUB b 2\r\nhi\r\n");
        c.sync();
        assert!(
            srv.wait_for_log("Client connection created", Duration::from_secs(5)),
            "{}",
            srv.log()
        );
        assert!(
            !srv.log().contains("[TRC]"),
            "traced without trace:\n{}",
            srv.log()
        );
        srv.reload_with("debug: true\ntrace: true\n");
        let traced_now = wait_until(Duration::from_secs(5), || {
            c.send(b"PING\r\n");
            c.expect(b"PONG\r\n");
            traced(&srv).iter().any(|l| l == "->> [PONG]")
        });
        assert!(traced_now, "reload did not turn trace on:\n{}", srv.log());
    });
}
