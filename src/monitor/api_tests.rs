//! `Monitor::api_data` against a scripted shard: a thread on the shard's
//! control channel that records each query and answers with fixed
//! connections and account counters, so what is checked is the request
//! side: options decoding, the account filtering, the server filter and
//! the error answers.

use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::monitor::snapshot::{
    AccountCounters, ConnInfo, ConnSelect, Query, ShardSnapshot, SubInfo,
};
use crate::monitor::{Monitor, ShardLink};
use crate::options::Options;
use crate::proto::encode::ServerInfo;
use crate::shard::Control;

fn conn(cid: u64, account: &str, subject: &str) -> ConnInfo {
    let t = SystemTime::now() - Duration::from_secs(60);
    ConnInfo {
        cid,
        ip: "127.0.0.1".into(),
        port: 40000 + cid as u16,
        start: t,
        last_activity: t,
        stop: None,
        reason: None,
        rtt: Duration::from_micros(50),
        pending: 0,
        in_msgs: cid,
        out_msgs: 0,
        in_bytes: 0,
        out_bytes: 0,
        name: Some(format!("c{cid}")),
        lang: None,
        version: None,
        tls_version: None,
        tls_cipher: None,
        tls_peer_certs: Vec::new(),
        user: String::new(),
        account: account.into(),
        connect_user: String::new(),
        jwt: None,
        issuer_key: None,
        name_tag: None,
        tags: Vec::new(),
        subs: vec![SubInfo {
            account: account.into(),
            subject: subject.into(),
            queue: None,
            sid: "1".into(),
            msgs: 0,
            max: 0,
            cid,
        }],
        num_subs: 1,
        shard: 0,
    }
}

/// A monitor over one scripted shard holding connections 1 and 2 in
/// account `APIA` and 3 in `APIB` (account `APIC` exists, unused), and
/// the queries that shard received.
fn monitor() -> (Monitor, Arc<Mutex<Vec<Query>>>) {
    for a in ["APIA", "APIB", "APIC"] {
        crate::security::account::account_id(a);
    }
    let (tx, rx) = channel::<Control>();
    let (wake, keep) = std::os::unix::net::UnixStream::pair().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || serve(rx, keep, log));
    let info = ServerInfo {
        server_id: "NTESTSERVERID".into(),
        server_name: "api-test-server".into(),
        version: "2.9.10".into(),
        proto: 1,
        go: "test".into(),
        host: "127.0.0.1".into(),
        port: 4222,
        headers: true,
        auth_required: false,
        tls_required: false,
        tls_verify: false,
        tls_available: false,
        max_payload: 1024,
    };
    let opts = Options {
        server_tags: vec!["az:1".into(), "ssd".into()],
        ..Options::default()
    };
    (Monitor::new(vec![ShardLink { tx, wake }], info, opts), seen)
}

fn serve(
    rx: Receiver<Control>,
    _wake: std::os::unix::net::UnixStream,
    log: Arc<Mutex<Vec<Query>>>,
) {
    let all = [
        conn(1, "APIA", "a.x"),
        conn(2, "APIA", "a.y"),
        conn(3, "APIB", "b.x"),
    ];
    while let Ok(msg) = rx.recv_timeout(Duration::from_secs(30)) {
        let Control::Snapshot(q, reply) = msg else {
            continue;
        };
        // As a shard: a page's candidates as figures, then the page's
        // connections by id.
        let in_page = |c: &&ConnInfo| match &q.open {
            ConnSelect::Page { filter, .. } => filter.acc.is_empty() || c.account == filter.acc,
            _ => false,
        };
        let briefs: Vec<_> = all.iter().filter(in_page).map(ConnInfo::brief).collect();
        let conns: Vec<ConnInfo> = match &q.open {
            ConnSelect::All => all.to_vec(),
            ConnSelect::Cids { cids, .. } => all
                .iter()
                .filter(|c| cids.contains(&c.cid))
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        let counters = |name: &str, conns: u64| AccountCounters {
            name: name.into(),
            conns,
            total_conns: conns,
            subscriptions: conns,
            ..AccountCounters::default()
        };
        let snap = ShardSnapshot {
            num_conns: all.len(),
            matched: briefs.len(),
            briefs,
            conns,
            accounts: vec![
                counters("APIA", 2),
                counters("APIB", 1),
                counters("APIC", 0),
            ],
            ..ShardSnapshot::default()
        };
        log.lock().unwrap().push(q);
        let _ = reply.send(snap);
    }
}

fn ok(m: &Monitor, endpoint: &str, account: Option<&str>, body: &str) -> Value {
    match m.api_data(endpoint, account, body.as_bytes()) {
        Ok(Some(v)) => v,
        other => panic!("{endpoint} {account:?} {body}: {other:?}"),
    }
}

#[test]
fn server_requests_decode_their_options() {
    let (m, seen) = monitor();
    let v = ok(&m, "CONNZ", None, "");
    assert_eq!(
        (v["limit"].clone(), v["total"].clone()),
        (json!(1024), json!(3))
    );
    assert_eq!(v["server_id"], "NTESTSERVERID");
    let v = ok(
        &m,
        "CONNZ",
        None,
        r#"{"sort":"msgs_from","limit":2,"subscriptions":true}"#,
    );
    assert_eq!(v["limit"], 2);
    let cids: Vec<&Value> = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["cid"])
        .collect();
    assert_eq!(cids, [&json!(3), &json!(2)], "most messages in first: {v}");
    assert_eq!(v["connections"][0]["subscriptions_list"], json!(["b.x"]));
    let v = ok(
        &m,
        "CONNZ",
        None,
        r#"{"subscriptions_detail":true,"offset":2}"#,
    );
    assert_eq!(
        v["connections"][0]["subscriptions_list_detail"][0]["subject"],
        "b.x"
    );
    let v = ok(&m, "CONNZ", None, r#"{"state":1}"#);
    assert_eq!(v["total"], 0, "no closed connections: {v}");
    assert!(matches!(
        seen.lock().unwrap().last().unwrap().open,
        ConnSelect::None
    ));
    let v = ok(&m, "SUBSZ", None, r#"{"subscriptions":true,"test":"a.y"}"#);
    assert_eq!(v["total"], 1);
    assert_eq!(v["subscriptions_list"][0]["cid"], 2);
    // Without subscriptions the whole Subsz still comes back (HTTP trims
    // it to the statistics).
    let v = ok(&m, "SUBSZ", None, "");
    assert_eq!(
        (v["total"].clone(), v["limit"].clone()),
        (json!(0), json!(1024))
    );
    assert!(v.get("subscriptions_list").is_none());
    let v = ok(&m, "VARZ", None, "");
    assert_eq!(
        (v["connections"].clone(), v["server_id"].clone()),
        (json!(3), json!("NTESTSERVERID"))
    );
    let v = ok(&m, "ACCOUNTZ", None, r#"{"account":"APIA"}"#);
    assert_eq!(v["account_detail"]["client_connections"], 2);
    assert!(ok(&m, "ACCOUNTZ", None, "")["accounts"]
        .as_array()
        .unwrap()
        .contains(&json!("APIC")));
    assert_eq!(
        ok(&m, "HEALTHZ", None, r#"{"js-enabled-only":true}"#),
        json!({"status": "ok"})
    );
    assert_eq!(ok(&m, "JSZ", None, "{}")["disabled"], true);
    assert_eq!(
        m.api_data("JSZ", None, br#"{"leader_only":true}"#),
        Ok(None)
    );
    assert_eq!(ok(&m, "ROUTEZ", None, "")["num_routes"], 0);
    assert_eq!(ok(&m, "GATEWAYZ", None, "")["outbound_gateways"], json!({}));
    assert_eq!(ok(&m, "LEAFZ", None, "")["leafnodes"], 0);
    // The reference serves no STATZ-like INFO for the server, nor
    // unknown endpoints: no reply.
    assert_eq!(m.api_data("INFO", None, b""), Ok(None));
    assert_eq!(m.api_data("NOPE", None, b""), Ok(None));
}

#[test]
fn account_requests_are_confined_to_their_account() {
    let (m, seen) = monitor();
    let v = ok(&m, "CONNZ", Some("APIA"), r#"{"acc":"APIB"}"#);
    assert_eq!(v["total"], 2, "{v}");
    let cids: Vec<&Value> = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["cid"])
        .collect();
    assert_eq!(cids, [&json!(1), &json!(2)]);
    // The page is chosen within the account, then fetched by id.
    let queries = seen.lock().unwrap();
    match &queries[queries.len() - 2].open {
        ConnSelect::Page { filter, .. } => assert_eq!(filter.acc, "APIA"),
        other => panic!("{other:?}"),
    }
    match &queries[queries.len() - 1].open {
        ConnSelect::Cids { cids, .. } => assert_eq!(cids, &[1, 2]),
        other => panic!("{other:?}"),
    }
    drop(queries);
    // SUBSZ lists the account's subscriptions, asked for or not.
    let v = ok(&m, "SUBSZ", Some("APIB"), "");
    let subs: Vec<&Value> = v["subscriptions_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["subject"])
        .collect();
    assert_eq!(subs, [&json!("b.x")]);
    assert_eq!(v["subscriptions_list"][0]["account"], "APIB");
    let v = ok(&m, "INFO", Some("APIA"), "");
    assert_eq!(
        (v["account_name"].clone(), v["client_connections"].clone()),
        (json!("APIA"), json!(2))
    );
    assert_eq!(
        m.api_data("INFO", Some("NOSUCH"), b""),
        Err((500, "Account NOSUCH does not exist".into()))
    );
    assert_eq!(
        m.api_data("JSZ", Some("APIA"), b""),
        Err((500, "jetstream not enabled".into()))
    );
    assert_eq!(ok(&m, "LEAFZ", Some("APIA"), "")["leafnodes"], 0);
    // STATZ: only the account; none for an unused one unless asked.
    let v = ok(&m, "STATZ", Some("APIB"), "");
    assert_eq!(
        v["account_statz"],
        json!([{
            "acc": "APIB", "conns": 1, "leafnodes": 0, "total_conns": 1,
            "sent": {"msgs": 0, "bytes": 0}, "received": {"msgs": 0, "bytes": 0},
            "slow_consumers": 0,
        }])
    );
    assert_eq!(m.api_data("STATZ", Some("APIC"), b""), Ok(None));
    let v = ok(&m, "STATZ", Some("APIC"), r#"{"include_unused":true}"#);
    assert_eq!(v["account_statz"][0]["acc"], "APIC");
    // The account ping: the accounts the body names.
    let v = ok(
        &m,
        "STATZ",
        Some("PING"),
        r#"{"accounts":["APIA","NOSUCH"]}"#,
    );
    let accs: Vec<&Value> = v["account_statz"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["acc"])
        .collect();
    assert_eq!(accs, [&json!("APIA")]);
    assert_eq!(
        m.api_data("STATZ", Some("PING"), br#"{"accounts":["APIC"]}"#),
        Ok(None)
    );
    // No account request for these endpoints.
    assert_eq!(m.api_data("VARZ", Some("APIA"), b""), Ok(None));
    assert_eq!(m.api_data("ACCOUNTZ", Some("APIA"), b""), Ok(None));
}

#[test]
fn event_filter_decides_whether_this_server_answers() {
    let (m, seen) = monitor();
    for body in [
        r#"{"server_name":"api-test"}"#,
        r#"{"host":"127.0.0"}"#,
        r#"{"tags":["SSD"]}"#,
        r#"{"tags":["ssd","az:1"],"limit":1}"#,
    ] {
        assert!(
            m.api_data("CONNZ", None, body.as_bytes())
                .unwrap()
                .is_some(),
            "{body}"
        );
    }
    for body in [
        r#"{"server_name":"other"}"#,
        r#"{"host":"10.0.0.1"}"#,
        r#"{"cluster":"c1"}"#,
        r#"{"tags":["ssd","gpu"]}"#,
        r#"{"domain":"hub"}"#,
    ] {
        let asked = seen.lock().unwrap().len();
        assert_eq!(
            m.api_data("CONNZ", None, body.as_bytes()),
            Ok(None),
            "{body}"
        );
        assert_eq!(
            seen.lock().unwrap().len(),
            asked,
            "nothing built for {body}"
        );
        assert_eq!(
            m.api_data("VARZ", None, body.as_bytes()),
            Ok(None),
            "{body}"
        );
        assert_eq!(
            m.api_data("STATZ", Some("APIA"), body.as_bytes()),
            Ok(None),
            "{body}"
        );
    }
}

#[test]
fn bad_options_get_the_references_400_and_endpoint_errors_500() {
    let (m, _) = monitor();
    let err = |e: &str, acc: Option<&str>, body: &str| m.api_data(e, acc, body.as_bytes());
    assert_eq!(
        err("CONNZ", None, r#"{"limit":"x"}"#),
        Err((400, "json: cannot unmarshal string into Go struct field ConnzEventOptions.limit of type int".into()))
    );
    assert_eq!(
        err("CONNZ", Some("APIA"), r#"{"state":"open"}"#),
        Err((400, "json: cannot unmarshal string into Go struct field ConnzEventOptions.state of type server.ConnState".into()))
    );
    assert_eq!(
        err("SUBSZ", None, r#"{"subscriptions":"yes"}"#),
        Err((400, "json: cannot unmarshal string into Go struct field SubszEventOptions.subscriptions of type bool".into()))
    );
    assert_eq!(
        err("STATZ", Some("APIA"), r#"{"accounts":"APIA"}"#),
        Err((400, "json: cannot unmarshal string into Go struct field AccountStatzEventOptions.accounts of type []string".into()))
    );
    assert_eq!(
        err("VARZ", None, r#"{"tags":"x"}"#),
        Err((400, "json: cannot unmarshal string into Go struct field VarzEventOptions.tags of type []string".into()))
    );
    assert_eq!(
        err("HEALTHZ", None, "{"),
        Err((400, "unexpected end of JSON input".into()))
    );
    assert_eq!(
        err("JSZ", None, "xyz"),
        Err((
            400,
            "invalid character 'x' looking for beginning of value".into()
        ))
    );
    // A body that does not decode is refused even when the filter would
    // leave this server out.
    assert_eq!(
        err("CONNZ", None, r#"{"server_name":"other","limit":"x"}"#)
            .unwrap_err()
            .0,
        400
    );
    // Endpoint errors: the builder's text, as 500.
    assert_eq!(
        err("CONNZ", None, r#"{"sort":"bogus"}"#),
        Err((500, "invalid sorting option: bogus".into()))
    );
    assert_eq!(
        err("CONNZ", None, r#"{"sort":"stop"}"#),
        Err((500, "sort by stop only valid on closed connections".into()))
    );
    assert_eq!(
        err("CONNZ", None, r#"{"filter_subject":"a.*"}"#),
        Err((
            500,
            "filter by subject only valid with account filtering".into()
        ))
    );
    assert_eq!(
        err("SUBSZ", None, r#"{"test":"a.*"}"#),
        Err((
            500,
            "invalid test subject, must be valid publish subject: a.*".into()
        ))
    );
    assert_eq!(
        err("ACCOUNTZ", None, r#"{"account":"NOSUCH"}"#),
        Err((500, "Account NOSUCH does not exist".into()))
    );
}
