//! Raw-TCP client protocol tests: exact bytes on the wire.
//! Expected behaviour is that of the reference nats-server 2.9.10.

mod common;

use common::{show, with_timeout, Raw, Server, CONNECT_QUIET};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

fn run<F: FnOnce(&Server) + Send + 'static>(f: F) {
    with_timeout(LIMIT, move || {
        let srv = Server::start(&[]);
        f(&srv);
    });
}

// ---------------------------------------------------------------- INFO / CONNECT / PING

#[test]
fn info_is_first_line_with_required_fields() {
    run(|srv| {
        let r = Raw::connect(srv.port());
        let line = &r.info_line;
        assert!(line.starts_with(b"INFO {"), "{}", show(line));
        // The reference writes `INFO {json} \r\n` (a space before CRLF); accept with or without.
        assert!(
            line.ends_with(b"}\r\n") || line.ends_with(b"} \r\n"),
            "{}",
            show(line)
        );
        let i = &r.info;
        for key in ["server_id", "server_name", "version", "host", "client_ip"] {
            assert!(
                i[key].as_str().is_some_and(|s| !s.is_empty()),
                "INFO.{key} missing or not a non-empty string: {i}"
            );
        }
        assert_eq!(i["proto"], 1, "{i}");
        assert_eq!(i["headers"], true, "{i}");
        assert_eq!(i["max_payload"], 1048576, "{i}");
        assert_eq!(i["port"], srv.port() as u64, "{i}");
        assert_eq!(i["host"], "127.0.0.1", "{i}");
        assert_eq!(i["client_ip"], "127.0.0.1", "{i}");
        assert!(
            i["client_id"].is_u64(),
            "client_id must be an unsigned number: {i}"
        );
        assert!(
            i.get("auth_required").is_none(),
            "auth_required present without auth: {i}"
        );
        assert!(
            i.get("tls_required").is_none(),
            "tls_required present without tls: {i}"
        );
    });
}

#[test]
fn client_ids_differ_per_connection() {
    run(|srv| {
        let a = Raw::connect(srv.port());
        let b = Raw::connect(srv.port());
        assert_ne!(a.info["client_id"], b.info["client_id"]);
        assert_eq!(a.info["server_id"], b.info["server_id"]);
    });
}

#[test]
fn connect_verbose_true_gets_ok_and_ping_gets_pong() {
    run(|srv| {
        let mut r = Raw::connect(srv.port());
        r.send(b"CONNECT {\"verbose\":true}\r\n");
        r.expect(b"+OK\r\n");
        r.send(b"PING\r\n");
        r.expect(b"PONG\r\n");
        r.expect_nothing(200);
    });
}

#[test]
fn connect_verbose_false_is_silent() {
    run(|srv| {
        let mut r = Raw::connect(srv.port());
        r.send(b"CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nPUB bar 0\r\n\r\nUNSUB 1\r\n");
        r.send(b"PING\r\n");
        r.expect(b"PONG\r\n");
        r.expect_nothing(200);
    });
}

#[test]
fn verbose_ok_after_sub_pub_unsub() {
    run(|srv| {
        let mut r = Raw::connect(srv.port());
        r.send(b"CONNECT {\"verbose\":true}\r\n");
        r.expect(b"+OK\r\n");
        r.send(b"SUB foo 1\r\n");
        r.expect(b"+OK\r\n");
        r.send(b"PUB foo 2\r\nhi\r\n");
        // +OK for the PUB is queued before the delivery to our own subscription.
        r.expect(b"+OK\r\nMSG foo 1 2\r\nhi\r\n");
        r.send(b"UNSUB 1\r\n");
        r.expect(b"+OK\r\n");
        r.send(b"PING\r\n");
        r.expect(b"PONG\r\n");
    });
}

#[test]
fn before_connect_client_is_verbose_and_pedantic() {
    // Reference: a client that has not sent CONNECT yet has verbose and pedantic on.
    run(|srv| {
        let mut r = Raw::connect(srv.port());
        r.send(b"SUB foo 1\r\n");
        r.expect(b"+OK\r\n");
        r.send(b"PUB foo.* 0\r\n\r\n");
        // Reference: the pedantic -ERR is followed by the verbose +OK for the same PUB.
        r.expect(b"-ERR 'Invalid Publish Subject'\r\n+OK\r\n");
        // PING is answered with PONG only (no +OK).
        r.send(b"PING\r\n");
        r.expect(b"PONG\r\n");
        r.expect_nothing(200);
    });
}

#[test]
fn connect_without_verbose_field_keeps_verbose_on() {
    // Reference: CONNECT {} does not reset the pre-CONNECT verbose=true, so +OK follows.
    run(|srv| {
        let mut r = Raw::connect(srv.port());
        r.send(b"CONNECT {}\r\n");
        r.expect(b"+OK\r\n");
        r.send(b"PING\r\n");
        r.expect(b"PONG\r\n");
    });
}

#[test]
fn ping_variants_and_pong_from_client() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        // Trailing space before CRLF is tolerated.
        r.send(b"PING \r\n");
        r.expect(b"PONG\r\n");
        // An unsolicited PONG from the client is accepted silently.
        r.send(b"PONG\r\n");
        r.expect_nothing(200);
        r.send(b"PING\r\nPING\r\n");
        r.expect(b"PONG\r\nPONG\r\n");
    });
}

#[test]
fn ops_are_case_insensitive() {
    run(|srv| {
        let mut r = Raw::connect(srv.port());
        r.send(b"connect {\"verbose\":false,\"headers\":true}\r\n");
        r.send(b"sub foo 1\r\npub foo 2\r\nhi\r\nPuB foo 2\r\nyo\r\n");
        r.send(b"hpub foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
        r.send(b"UnSuB 1\r\npub foo 1\r\nx\r\npInG\r\n");
        r.expect(b"MSG foo 1 2\r\nhi\r\nMSG foo 1 2\r\nyo\r\nHMSG foo 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPONG\r\n");
        r.send(b"ping\r\n");
        r.expect(b"PONG\r\n");
    });
}

#[test]
fn args_separated_by_runs_of_spaces_and_tabs() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"SUB\tfoo \t \t1\r\n");
        r.send(b"PUB \t foo \t\t bar\t 2\r\nhi\r\n");
        r.send(b"PUB  foo\t\t2\r\nho\r\n");
        r.send(b"PING\r\n");
        r.expect(b"MSG foo 1 bar 2\r\nhi\r\nMSG foo 1 2\r\nho\r\nPONG\r\n");
    });
}

#[test]
fn bare_lf_line_endings_are_accepted() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"SUB foo 1\nPUB foo 2\nhi\r\nPING\n");
        r.expect(b"MSG foo 1 2\r\nhi\r\nPONG\r\n");
    });
}

#[test]
fn input_split_byte_by_byte_is_reassembled() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        let input = b"SUB foo 1\r\nPUB foo bar 5\r\nhello\r\nHPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n";
        for b in input.iter() {
            r.send(&[*b]);
            std::thread::sleep(Duration::from_millis(1));
        }
        r.expect(b"MSG foo 1 bar 5\r\nhello\r\nHMSG foo 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPONG\r\n");
    });
}

// ---------------------------------------------------------------- PUB / SUB / HPUB

#[test]
fn pub_sub_round_trip_exact_bytes() {
    run(|srv| {
        let mut sub = Raw::connect_ok(srv.port());
        sub.send(b"SUB foo 1\r\n");
        sub.sync();
        let mut p = Raw::connect_ok(srv.port());
        p.send(b"PUB foo 5\r\nhello\r\n");
        p.send(b"PUB foo bar 5\r\nworld\r\n");
        p.sync();
        sub.expect(b"MSG foo 1 5\r\nhello\r\nMSG foo 1 bar 5\r\nworld\r\n");
        sub.expect_nothing(200);
        // The publisher has no subscription and gets nothing.
        p.expect_nothing(100);
    });
}

#[test]
fn zero_length_payload() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"SUB foo 1\r\nPUB foo 0\r\n\r\nPUB foo r 0\r\n\r\nPING\r\n");
        r.expect(b"MSG foo 1 0\r\n\r\nMSG foo 1 r 0\r\n\r\nPONG\r\n");
    });
}

#[test]
fn payload_may_contain_crlf_and_binary() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"SUB foo 1\r\nPUB foo 6\r\na\r\n\x00\xff\n\r\nPING\r\n");
        r.expect(b"MSG foo 1 6\r\na\r\n\x00\xff\n\r\nPONG\r\n");
    });
}

#[test]
fn payload_of_exactly_max_payload_is_delivered() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        let n = 1048576usize;
        r.send(b"SUB big 1\r\n");
        let mut msg = format!("PUB big {n}\r\n").into_bytes();
        msg.extend(std::iter::repeat_n(b'z', n));
        msg.extend_from_slice(b"\r\nPING\r\n");
        r.send(&msg);
        assert_eq!(r.expect_line(), format!("MSG big 1 {n}"));
        let body = r.read_exact_bytes(n + 2);
        assert!(body[..n].iter().all(|&b| b == b'z'));
        assert_eq!(&body[n..], b"\r\n");
        r.expect(b"PONG\r\n");
    });
}

#[test]
fn multiple_subscriptions_each_get_a_copy_with_their_sid() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"SUB foo 1\r\nSUB foo 2\r\nPUB foo 1\r\nx\r\nPING\r\n");
        let a = r.expect_line();
        r.expect(b"x\r\n");
        let b = r.expect_line();
        r.expect(b"x\r\n");
        r.expect(b"PONG\r\n");
        let mut got = vec![a, b];
        got.sort();
        assert_eq!(got, vec!["MSG foo 1 1", "MSG foo 2 1"]);
    });
}

#[test]
fn duplicate_sid_does_not_duplicate_delivery() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"SUB foo 1\r\nSUB foo 1\r\nPUB foo 1\r\nx\r\nPING\r\n");
        r.expect(b"MSG foo 1 1\r\nx\r\nPONG\r\n");
    });
}

#[test]
fn a_repeated_sid_is_acknowledged_without_checking_its_subject() {
    // The reference keeps the first subscription and looks no further.
    run(|srv| {
        let mut r = Raw::connect(srv.port());
        r.send(b"CONNECT {\"verbose\":true}\r\n");
        r.expect(b"+OK\r\n");
        r.send(b"SUB foo 1\r\nSUB foo..bar 1\r\nSUB .x q 1\r\nSUB foo..bar 2\r\nPING\r\n");
        r.expect(b"+OK\r\n+OK\r\n+OK\r\n-ERR 'Invalid Subject'\r\nPONG\r\n");
        r.send(b"PUB foo 1\r\nx\r\nPING\r\n");
        r.expect(b"+OK\r\nMSG foo 1 1\r\nx\r\nPONG\r\n");
    });
}

#[test]
fn a_second_connect_changes_only_the_fields_it_names() {
    // Go's decoder fills the options the client already has: a field left
    // out keeps its value, names match regardless of case, the last wins,
    // and null changes nothing.
    run(|srv| {
        let mut r = Raw::connect(srv.port());
        r.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
        r.expect(b"PONG\r\n");
        r.send(b"CONNECT {\"name\":\"x\"}\r\nSUB a 1\r\nPING\r\n");
        r.expect(b"PONG\r\n");
        r.send(b"CONNECT {\"verbose\":true,\"Verbose\":false}\r\nSUB b 2\r\nPING\r\n");
        r.expect(b"PONG\r\n");
        r.send(b"CONNECT {\"VERBOSE\":true,\"echo\":null}\r\n");
        r.expect(b"+OK\r\n");
        r.send(b"CONNECT null\r\nPUB a 1\r\nx\r\nPING\r\n");
        r.expect(b"+OK\r\n+OK\r\nMSG a 1 1\r\nx\r\nPONG\r\n");
    });
}

#[test]
fn pedantic_publish_subject_is_checked_before_a_malformed_payload() {
    // The reference checks the subject as it reads the PUB line, so the
    // client hears of it before the payload's missing CRLF closes it.
    run(|srv| {
        let mut r = Raw::connect(srv.port());
        r.send(b"CONNECT {\"verbose\":false}\r\nPUB foo.* 5\r\nabcd\r\nPING\r\n");
        let got = r.read_until_closed(Duration::from_secs(5));
        assert_eq!(
            show(&got),
            show(b"-ERR 'Invalid Publish Subject'\r\n-ERR 'Unknown Protocol Operation'\r\n")
        );
    });
}

#[test]
fn sid_may_be_non_numeric() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"SUB foo abc\r\nPUB foo 1\r\nx\r\nUNSUB abc\r\nPUB foo 1\r\ny\r\nPING\r\n");
        r.expect(b"MSG foo abc 1\r\nx\r\nPONG\r\n");
    });
}

#[test]
fn hpub_delivers_hmsg_exact_bytes() {
    run(|srv| {
        let mut sub = Raw::connect_ok(srv.port());
        sub.send(b"SUB foo 1\r\n");
        sub.sync();
        let mut p = Raw::connect_ok(srv.port());
        p.send(b"HPUB foo 18 23\r\nNATS/1.0\r\nA: B\r\n\r\nhello\r\n");
        p.send(b"HPUB foo rep 18 23\r\nNATS/1.0\r\nA: B\r\n\r\nhello\r\n");
        // Header-only message.
        p.send(b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n");
        p.sync();
        sub.expect(b"HMSG foo 1 18 23\r\nNATS/1.0\r\nA: B\r\n\r\nhello\r\n");
        sub.expect(b"HMSG foo 1 rep 18 23\r\nNATS/1.0\r\nA: B\r\n\r\nhello\r\n");
        sub.expect(b"HMSG foo 1 12 12\r\nNATS/1.0\r\n\r\n\r\n");
        sub.expect_nothing(200);
    });
}

#[test]
fn headers_false_subscriber_gets_plain_msg_without_headers() {
    run(|srv| {
        let mut sub = Raw::connect(srv.port());
        sub.send(b"CONNECT {\"verbose\":false,\"headers\":false}\r\nSUB foo 1\r\n");
        sub.sync();
        let mut p = Raw::connect_ok(srv.port());
        p.send(b"HPUB foo 18 23\r\nNATS/1.0\r\nA: B\r\n\r\nhello\r\n");
        p.send(b"HPUB foo rep 12 12\r\nNATS/1.0\r\n\r\n\r\n");
        p.sync();
        sub.expect(b"MSG foo 1 5\r\nhello\r\nMSG foo 1 rep 0\r\n\r\n");
        sub.expect_nothing(200);
    });
}

#[test]
fn subscriber_without_connect_gets_plain_msg_for_hpub() {
    // Headers support defaults to off until CONNECT says otherwise.
    run(|srv| {
        let mut sub = Raw::connect(srv.port());
        sub.send(b"SUB foo 1\r\n");
        sub.expect(b"+OK\r\n"); // pre-CONNECT verbose
        sub.sync();
        let mut p = Raw::connect_ok(srv.port());
        p.send(b"HPUB foo 18 23\r\nNATS/1.0\r\nA: B\r\n\r\nhello\r\n");
        p.sync();
        sub.expect(b"MSG foo 1 5\r\nhello\r\n");
    });
}

#[test]
fn hpub_from_client_without_headers_support_closes_silently() {
    // Reference: closes without any -ERR.
    run(|srv| {
        let mut r = Raw::connect(srv.port());
        r.send(b"CONNECT {\"verbose\":false,\"headers\":false}\r\n");
        r.sync();
        r.send(b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n");
        r.expect_closed();
    });
}

/// `no_header_support: true`: INFO says `headers: false`, a client asking
/// for headers does not get them (so HPUB closes it), and one that also
/// asks for no_responders is refused, as the reference does.
#[test]
fn no_header_support_turns_headers_off_for_every_client() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config("no_header_support: true\n", &[]);
        let mut r = Raw::connect(srv.port());
        assert_eq!(r.info["headers"], serde_json::json!(false), "{}", r.info);
        r.send(b"CONNECT {\"verbose\":false,\"headers\":true}\r\n");
        r.sync();
        r.send(b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n");
        r.expect_closed();

        no_responders_refused(
            &srv,
            b"CONNECT {\"verbose\":false,\"headers\":true,\"no_responders\":true}\r\n",
        );
    });
}

/// `max_sub_tokens`: a subscription with more tokens is refused with a
/// permissions error; the connection and its other subscriptions live on.
#[test]
fn max_sub_tokens_refuses_longer_subscriptions_only() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config("max_sub_tokens: 3\n", &[]);
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"SUB a.b.c 1\r\nSUB a.b.c.d 2\r\nSUB a.> 3\r\n");
        r.expect(
            b"-ERR 'Permissions Violation for Subscription to \"a.b.c.d\", too many tokens'\r\n",
        );
        // Only the wildcard subscription gets it; the refused one never was.
        r.send(b"PUB a.b.c.d 2\r\nhi\r\n");
        r.expect(b"MSG a.b.c.d 3 2\r\nhi\r\n");
        r.sync();
    });
}

#[test]
fn hpub_header_size_larger_than_total_closes_silently() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"HPUB foo 30 23\r\n");
        r.expect_closed();
    });
}

// ---------------------------------------------------------------- subjects

#[test]
fn subjects_with_an_empty_token_reach_no_subscriber() {
    // The reference's index matches nothing for a leading, trailing or
    // doubled dot, not even `>`; a non-pedantic publisher hears nothing.
    run(|srv| {
        let mut sub = Raw::connect_ok(srv.port());
        sub.send(b"SUB > 1\r\nSUB foo.* 2\r\nSUB *.foo 3\r\nSUB foo.> 4\r\n");
        sub.sync();
        let mut p = Raw::connect(srv.port());
        p.send(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n");
        for subj in ["foo.", ".foo", "foo..bar", "."] {
            p.send(format!("PUB {subj} 1\r\nx\r\n").as_bytes());
        }
        p.send(b"PUB foo.ok 1\r\ny\r\nPING\r\n");
        p.expect(b"PONG\r\n");
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(sub.expect_line());
            assert_eq!(sub.expect_line(), "y");
        }
        got.sort();
        assert_eq!(got, ["MSG foo.ok 1 1", "MSG foo.ok 2 1", "MSG foo.ok 4 1"]);
        sub.send(b"PING\r\n");
        sub.expect(b"PONG\r\n");
    });
}

#[test]
fn wildcard_star_and_full_wildcard() {
    run(|srv| {
        let mut sub = Raw::connect_ok(srv.port());
        sub.send(b"SUB foo.* 1\r\nSUB foo.> 2\r\nSUB > 3\r\nSUB *.bar 4\r\nSUB foo.*.baz 5\r\n");
        sub.sync();
        let mut p = Raw::connect_ok(srv.port());
        let cases: &[(&str, &[&str])] = &[
            ("foo.bar", &["1", "2", "3", "4"]),
            ("foo.bar.baz", &["2", "3", "5"]),
            ("foo", &["3"]),
            ("x.bar", &["3", "4"]),
            ("x.y.z", &["3"]),
        ];
        for (subj, sids) in cases {
            p.send(format!("PUB {subj} 1\r\nx\r\n").as_bytes());
            p.sync();
            let mut got = Vec::new();
            for _ in 0..sids.len() {
                got.push(sub.expect_line());
                sub.expect(b"x\r\n");
            }
            got.sort();
            let want: Vec<String> = sids.iter().map(|s| format!("MSG {subj} {s} 1")).collect();
            assert_eq!(got, want, "deliveries for {subj}");
            sub.sync(); // nothing else before PONG
        }
    });
}

#[test]
fn invalid_sub_subjects_get_err_and_connection_stays_open() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        for subj in ["foo..bar", "foo.>.bar", ">.a", "foo.", ".foo", "."] {
            r.send(format!("SUB {subj} 1\r\n").as_bytes());
            r.expect(b"-ERR 'Invalid Subject'\r\n");
            r.sync();
        }
        // The connection still works.
        r.send(b"SUB ok 9\r\nPUB ok 1\r\nx\r\nPING\r\n");
        r.expect(b"MSG ok 9 1\r\nx\r\nPONG\r\n");
    });
}

#[test]
fn wildcard_chars_inside_a_token_are_literal() {
    // Reference: `foo*` / `a.b>` are valid literal subjects, not wildcards.
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"SUB foo* 1\r\nSUB foo 2\r\nSUB a.b> 3\r\n");
        r.sync();
        r.send(b"PUB foo 1\r\nx\r\nPUB fooo 1\r\ny\r\nPUB foo* 1\r\nz\r\nPUB a.b> 1\r\nw\r\nPUB a.bc 1\r\nv\r\nPING\r\n");
        r.expect(b"MSG foo 2 1\r\nx\r\nMSG foo* 1 1\r\nz\r\nMSG a.b> 3 1\r\nw\r\nPONG\r\n");
    });
}

#[test]
fn pedantic_pub_to_wildcard_subject_is_rejected_and_stays_open() {
    run(|srv| {
        let mut r = Raw::connect(srv.port());
        r.send(b"CONNECT {\"verbose\":false,\"pedantic\":true}\r\n");
        r.sync();
        r.send(b"SUB foo.bar 1\r\n");
        for subj in ["foo.*", "foo.>", "*", ">", "foo..bar", "foo."] {
            r.send(format!("PUB {subj} 1\r\nx\r\n").as_bytes());
            r.expect(b"-ERR 'Invalid Publish Subject'\r\n");
            r.sync();
        }
        r.send(b"PUB foo.bar 1\r\nx\r\nPING\r\n");
        r.expect(b"MSG foo.bar 1 1\r\nx\r\nPONG\r\n");
    });
}

#[test]
fn pedantic_invalid_publish_is_only_a_warning_message_still_routed() {
    // Reference: after the pedantic -ERR the message is still delivered to matching subs.
    run(|srv| {
        let mut r = Raw::connect(srv.port());
        r.send(b"CONNECT {\"verbose\":false,\"pedantic\":true}\r\nSUB > 1\r\n");
        r.sync();
        r.send(b"PUB foo.* 1\r\nx\r\nPING\r\n");
        r.expect(b"-ERR 'Invalid Publish Subject'\r\nMSG foo.* 1 1\r\nx\r\nPONG\r\n");
    });
}

#[test]
fn non_pedantic_pub_to_wildcard_subject_is_accepted() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"PUB foo.* 1\r\nx\r\nPUB foo.> 1\r\nx\r\nPING\r\n");
        r.expect(b"PONG\r\n");
        r.expect_nothing(200);
    });
}

// ---------------------------------------------------------------- UNSUB

#[test]
fn unsub_stops_delivery() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"SUB foo 1\r\nPUB foo 1\r\na\r\nUNSUB 1\r\nPUB foo 1\r\nb\r\nPING\r\n");
        r.expect(b"MSG foo 1 1\r\na\r\nPONG\r\n");
        // Unknown sids are ignored without error.
        r.send(b"UNSUB 99\r\nUNSUB 1\r\nPING\r\n");
        r.expect(b"PONG\r\n");
    });
}

#[test]
fn unsub_with_max_auto_unsubscribes_after_n() {
    run(|srv| {
        let mut sub = Raw::connect_ok(srv.port());
        sub.send(b"SUB foo 1\r\nUNSUB 1 3\r\n");
        sub.sync();
        let mut p = Raw::connect_ok(srv.port());
        for i in 0..6 {
            p.send(format!("PUB foo 1\r\n{i}\r\n").as_bytes());
        }
        p.sync();
        sub.expect(b"MSG foo 1 1\r\n0\r\nMSG foo 1 1\r\n1\r\nMSG foo 1 1\r\n2\r\n");
        sub.sync();
        sub.expect_nothing(200);
    });
}

#[test]
fn unsub_max_already_reached_removes_immediately() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"SUB foo 1\r\nPUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nUNSUB 1 2\r\nPUB foo 1\r\nc\r\nPING\r\n");
        r.expect(b"MSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\nPONG\r\n");
    });
}

// ---------------------------------------------------------------- fatal errors

#[test]
fn unknown_op_gets_err_and_close() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"FOO\r\n");
        r.expect(b"-ERR 'Unknown Protocol Operation'\r\n");
        r.expect_closed();
    });
}

#[test]
fn garbage_without_crlf_gets_err_and_close() {
    run(|srv| {
        let mut r = Raw::connect(srv.port());
        r.send(b"xyz");
        r.expect(b"-ERR 'Unknown Protocol Operation'\r\n");
        r.expect_closed();
    });
}

#[test]
fn misspelled_op_prefix_gets_err_and_close() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"PUX foo 1\r\n");
        r.expect(b"-ERR 'Unknown Protocol Operation'\r\n");
        r.expect_closed();
    });
}

#[test]
fn sub_without_arguments_is_unknown_op() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"SUB\r\n");
        r.expect(b"-ERR 'Unknown Protocol Operation'\r\n");
        r.expect_closed();
    });
}

#[test]
fn msg_op_from_client_is_unknown_op() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"MSG foo 1 2\r\nhi\r\n");
        r.expect(b"-ERR 'Unknown Protocol Operation'\r\n");
        r.expect_closed();
    });
}

#[test]
fn payload_longer_than_declared_gets_unknown_op_and_close() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"SUB foo 1\r\nPUB foo 2\r\nhello\r\n");
        r.expect(b"-ERR 'Unknown Protocol Operation'\r\n");
        r.expect_closed();
    });
}

#[test]
fn payload_over_max_payload_gets_err_and_close() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"PUB foo 1048577\r\n");
        r.expect(b"-ERR 'Maximum Payload Violation'\r\n");
        r.expect_closed();
    });
}

#[test]
fn hpub_total_over_max_payload_gets_err_and_close() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"HPUB foo 12 1048577\r\n");
        r.expect(b"-ERR 'Maximum Payload Violation'\r\n");
        r.expect_closed();
    });
}

#[test]
fn control_line_too_long_gets_err_and_close() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        let mut line = b"SUB ".to_vec();
        line.extend(std::iter::repeat_n(b'a', 5000));
        line.extend_from_slice(b" 1\r\n");
        r.send(&line);
        r.expect(b"-ERR 'maximum control line exceeded'\r\n");
        r.expect_closed();
    });
}

#[test]
fn control_line_too_long_without_crlf_gets_err_and_close() {
    // Reference: detected on the partial line, no CRLF needed.
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        let mut line = b"PUB ".to_vec();
        line.extend(std::iter::repeat_n(b'a', 5000));
        r.send(&line);
        r.expect(b"-ERR 'maximum control line exceeded'\r\n");
        r.expect_closed();
    });
}

#[test]
fn control_line_limit_counts_arguments_after_the_op() {
    // Reference: the limit (4096) applies to the argument text after "SUB " (CRLF excluded).
    run(|srv| {
        let mut ok = Raw::connect_ok(srv.port());
        let subj = "a".repeat(4094); // "aaa… 1" = 4096 bytes of arguments
        ok.send(format!("SUB {subj} 1\r\n").as_bytes());
        ok.sync();
        let mut bad = Raw::connect_ok(srv.port());
        let subj = "a".repeat(4095); // 4097 bytes of arguments
        bad.send(format!("SUB {subj} 1\r\n").as_bytes());
        bad.expect(b"-ERR 'maximum control line exceeded'\r\n");
        bad.expect_closed();
    });
}

#[test]
fn connect_protocol_2_is_rejected_and_closed() {
    run(|srv| {
        let mut r = Raw::connect(srv.port());
        r.send(b"CONNECT {\"verbose\":false,\"protocol\":2}\r\n");
        r.expect(b"-ERR 'invalid client protocol'\r\n");
        r.expect_closed();
    });
}

#[test]
fn connect_protocol_negative_is_rejected_and_closed() {
    run(|srv| {
        let mut r = Raw::connect(srv.port());
        r.send(b"CONNECT {\"verbose\":false,\"protocol\":-1}\r\n");
        r.expect(b"-ERR 'invalid client protocol'\r\n");
        r.expect_closed();
    });
}

#[test]
fn connect_protocol_0_and_1_are_accepted() {
    run(|srv| {
        for p in [0, 1] {
            let mut r = Raw::connect(srv.port());
            r.send(format!("CONNECT {{\"verbose\":false,\"protocol\":{p}}}\r\n").as_bytes());
            r.sync();
        }
    });
}

// ---------------------------------------------------------------- no_responders

/// A burst of requests nobody serves, pipelined in one write, gets one 503 each, in
/// order, on each request's own reply subject; at 2 shards too, where natrix first
/// makes sure no other shard has a responder (once for what one read brought).
#[test]
fn a_pipelined_burst_of_unserved_requests_gets_a_503_each_in_order() {
    const N: usize = 3000;
    with_timeout(LIMIT, || {
        let flags = common::shard_flags(2);
        let args: Vec<&str> = flags.iter().map(|s| s.as_str()).collect();
        let srv = Server::start(&args);
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"SUB _INBOX.b.* 1\r\nPING\r\n");
        assert_eq!(r.next_line(), "PONG");
        let burst: Vec<u8> = (0..N)
            .flat_map(|i| format!("PUB nobody.home _INBOX.b.{i} 0\r\n\r\n").into_bytes())
            .collect();
        r.send(&burst);
        for i in 0..N {
            let line = r.next_line();
            let want = format!("HMSG _INBOX.b.{i} 1 16 16");
            assert_eq!(line, want, "request {i}");
            assert_eq!(
                r.read_exact_bytes(18),
                b"NATS/1.0 503\r\n\r\n\r\n",
                "request {i}"
            );
        }
    });
}

#[test]
fn no_responders_sends_503_hmsg_exact_bytes() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"SUB _INBOX.x 5\r\nPUB nobody.home _INBOX.x 2\r\nhi\r\nPING\r\n");
        r.expect(b"HMSG _INBOX.x 5 16 16\r\nNATS/1.0 503\r\n\r\n\r\nPONG\r\n");
    });
}

#[test]
fn no_responders_not_sent_when_someone_listens() {
    run(|srv| {
        let mut svc = Raw::connect_ok(srv.port());
        svc.send(b"SUB svc 1\r\n");
        svc.sync();
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"SUB _INBOX.x 5\r\nPUB svc _INBOX.x 2\r\nhi\r\nPING\r\n");
        r.expect(b"PONG\r\n");
        svc.expect(b"MSG svc 1 _INBOX.x 2\r\nhi\r\n");
        r.expect_nothing(200);
    });
}

#[test]
fn no_responders_not_sent_unless_requested() {
    run(|srv| {
        let mut r = Raw::connect(srv.port());
        r.send(b"CONNECT {\"verbose\":false,\"headers\":true}\r\n");
        r.send(b"SUB _INBOX.x 5\r\nPUB nobody _INBOX.x 2\r\nhi\r\nPING\r\n");
        r.expect(b"PONG\r\n");
        r.expect_nothing(200);
    });
}

/// A client sending `connect` is told no_responders needs headers, and
/// closed.
fn no_responders_refused(srv: &Server, connect: &[u8]) {
    let mut r = Raw::connect(srv.port());
    r.send(connect);
    r.expect(b"-ERR 'no responders requires headers support'\r\n");
    r.expect_closed();
}

#[test]
fn no_responders_without_headers_is_rejected_and_closed() {
    run(|srv| {
        no_responders_refused(
            srv,
            b"CONNECT {\"verbose\":false,\"no_responders\":true}\r\n",
        );
        no_responders_refused(
            srv,
            b"CONNECT {\"verbose\":false,\"headers\":false,\"no_responders\":true}\r\n",
        );
    });
}

// ---------------------------------------------------------------- echo

#[test]
fn echo_default_delivers_own_publishes() {
    run(|srv| {
        let mut r = Raw::connect(srv.port());
        r.send(b"CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nPUB foo 1\r\nx\r\nPING\r\n");
        r.expect(b"MSG foo 1 1\r\nx\r\nPONG\r\n");
    });
}

#[test]
fn echo_false_suppresses_own_publishes_only() {
    run(|srv| {
        let mut r = Raw::connect(srv.port());
        r.send(b"CONNECT {\"verbose\":false,\"echo\":false}\r\nSUB foo 1\r\nPUB foo 1\r\nx\r\nPING\r\n");
        r.expect(b"PONG\r\n");
        // Others' publishes still arrive.
        let mut p = Raw::connect_ok(srv.port());
        p.send(b"PUB foo 1\r\ny\r\n");
        p.sync();
        r.expect(b"MSG foo 1 1\r\ny\r\n");
        r.expect_nothing(200);
    });
}

// ---------------------------------------------------------------- malformed input

#[test]
fn pub_without_size_closes_silently() {
    // Reference: no -ERR, just close.
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"PUB foo\r\n");
        r.expect_closed();
    });
}

#[test]
fn pub_with_non_numeric_size_closes_silently() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"PUB foo abc\r\n");
        r.expect_closed();
    });
}

#[test]
fn pub_with_negative_size_closes_silently() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"PUB foo -1\r\n");
        r.expect_closed();
    });
}

#[test]
fn pub_with_too_many_args_closes_silently() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"PUB foo bar baz 2\r\nhi\r\n");
        r.expect_closed();
    });
}

#[test]
fn sub_with_too_many_args_closes_silently() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"SUB a b c d\r\n");
        r.expect_closed();
    });
}

#[test]
fn sub_with_too_few_args_closes_silently() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"SUB foo\r\n");
        r.expect_closed();
    });
}

#[test]
fn invalid_connect_json_closes_silently() {
    run(|srv| {
        let mut r = Raw::connect(srv.port());
        r.send(b"CONNECT {bad\r\n");
        r.expect_closed();
    });
}

#[test]
fn connect_without_json_closes_silently() {
    run(|srv| {
        let mut r = Raw::connect(srv.port());
        r.send(b"CONNECT\r\n");
        r.expect_closed();
    });
}

#[test]
fn queue_sub_on_one_connection() {
    run(|srv| {
        let mut r = Raw::connect_ok(srv.port());
        r.send(b"SUB foo q 1\r\nSUB foo q 2\r\n");
        for i in 0..10 {
            r.send(format!("PUB foo 1\r\n{i}\r\n").as_bytes());
        }
        r.send(b"PING\r\n");
        for i in 0..10 {
            let l = r.expect_line();
            assert!(l == "MSG foo 1 1" || l == "MSG foo 2 1", "{l}");
            r.expect(format!("{i}\r\n").as_bytes());
        }
        r.expect(b"PONG\r\n");
    });
}

#[test]
fn quiet_connect_constant_is_accepted() {
    run(|srv| {
        let mut r = Raw::connect(srv.port());
        r.send(CONNECT_QUIET);
        r.send(b"PING\r\n");
        r.expect(b"PONG\r\n");
    });
}

// ---------------------------------------------------------------- buffered output

/// A subscriber gets every message back byte for byte and in order, whatever the
/// sizes: tiny ones, ones around 64 KiB, and ones bigger than that, while an unpaced
/// publisher sends more than the kernel's socket buffers hold (about 17 MB). The
/// subscriber's small receive buffer keeps the server's writes short, so its output
/// queues up on the server. Publisher and subscriber are on different shards of a
/// fresh natrix (connection k lands on shard k mod N).
#[test]
fn a_stream_of_mixed_sizes_arrives_byte_exact() {
    const SIZES: [usize; 7] = [0, 1, 100, 4000, 65_000, 70_000, 300_000];
    const COUNT: usize = 40 * SIZES.len();
    fn body(i: usize) -> Vec<u8> {
        let size = SIZES[(i * 3 + i / SIZES.len()) % SIZES.len()];
        (0..size).map(|k| ((k + 31 * i) % 251) as u8).collect()
    }
    with_timeout(LIMIT, || {
        let flags = common::shard_flags(2);
        let args: Vec<&str> = flags.iter().map(|s| s.as_str()).collect();
        let srv = Server::start(&args);
        let mut sub = Raw::connect_small_rcvbuf(srv.port(), 16 * 1024);
        sub.send(CONNECT_QUIET);
        sub.sync();
        let mut publ = Raw::connect_ok(srv.port());
        sub.send(b"SUB mix 1\r\n");
        sub.sync();
        let publisher = std::thread::spawn(move || {
            let mut burst = Vec::new();
            for i in 0..COUNT {
                let b = body(i);
                burst.extend_from_slice(format!("PUB mix {}\r\n", b.len()).as_bytes());
                burst.extend_from_slice(&b);
                burst.extend_from_slice(b"\r\n");
                if burst.len() > 1 << 20 || i + 1 == COUNT {
                    publ.send(&burst);
                    burst.clear();
                }
            }
            publ.sync();
        });
        for i in 0..COUNT {
            let want = body(i);
            let line = sub.next_line();
            assert_eq!(line, format!("MSG mix 1 {}", want.len()), "message {i}");
            let got = sub.read_exact_bytes(want.len() + 2);
            assert!(
                got[..want.len()] == want[..],
                "message {i}: payload differs"
            );
            assert_eq!(&got[want.len()..], b"\r\n", "message {i}");
        }
        publisher.join().expect("publisher");
    });
}
