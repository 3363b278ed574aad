//! `/accountz` details beyond exports and imports: the system account
//! (top level and `is_system`), service latency tracking on exports and
//! the imports that inherit it, and JWT revocations of users
//! (`revoked_user`) and of activations (`revoked_activations`).

use super::*;
use serde_json::json;

#[test]
fn accountz_names_the_system_account_and_latency_tracking() {
    with_timeout(LIMIT, || {
        let srv = start_conf(
            r#"
accounts {
  A { users = [ {user: a, password: a} ]
      exports = [ {service: "svc.lat", latency: {sampling: 50, subject: "lat.a"}},
                  {service: "svc.hdr", latency: {sampling: headers, subject: "lat.h"}},
                  {service: "svc.plain"} ] }
  B { users = [ {user: b, password: b} ]
      imports = [ {service: {account: A, subject: "svc.lat"}, to: "lat.svc"},
                  {service: {account: A, subject: "svc.plain"}} ] }
  SYS { users = [ {user: sys, password: sys} ] }
}
system_account: SYS
"#,
        );
        let port = srv.monitor_port();
        let list = get_json(port, "/accountz");
        assert_eq!(s(&list, "system_account"), "SYS");
        let names: Vec<&str> = list["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for a in ["A", "B", "SYS"] {
            assert!(names.contains(&a), "{a} in {names:?}");
        }
        assert!(list.get("account_detail").is_none(), "{list}");

        let sys = get_json(port, "/accountz?acc=SYS");
        assert_eq!(s(&sys, "system_account"), "SYS");
        assert!(sys.get("accounts").is_none(), "{sys}");
        assert_eq!(sys["account_detail"]["is_system"], true);
        let a = get_json(port, "/accountz?acc=A");
        assert_eq!(s(&a, "system_account"), "SYS");
        let a = &a["account_detail"];
        assert!(a.get("is_system").is_none(), "omitted when false: {a}");
        // Subject mappings are refused by natrix and absent here.
        for k in ["mappings", "revoked_user", "responses"] {
            assert!(a.get(k).is_none(), "{k}: {a}");
        }
        let export = |subj: &str| {
            a["exports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["subject"] == subj)
                .unwrap_or_else(|| panic!("no export {subj}: {a}"))
                .clone()
        };
        assert_eq!(
            export("svc.lat")["service_latency"],
            json!({"sampling": 50, "results": "lat.a"})
        );
        assert_eq!(
            export("svc.hdr")["service_latency"],
            json!({"sampling": "headers", "results": "lat.h"})
        );
        assert!(export("svc.plain").get("service_latency").is_none());

        let b = &get_json(port, "/accountz?acc=B")["account_detail"];
        let import = |to: &str| {
            b["imports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["account"] == "A" && i["to"] == to)
                .unwrap_or_else(|| panic!("no import of {to}: {b}"))
                .clone()
        };
        let lat = import("svc.lat");
        assert_eq!(lat["subject"], "lat.svc");
        assert_eq!(lat["latency"], json!({"sampling": 50, "results": "lat.a"}));
        assert!(import("svc.plain").get("latency").is_none());
    });
}

#[test]
fn accountz_detail_of_a_jwt_account_shows_revocations() {
    with_timeout(LIMIT, || {
        use nkeys::KeyPair;
        let setup = jwt::Setup::new();
        let sys = KeyPair::new_account();
        let jsys = jwt::account_jwt_with(&setup.op, &sys, json!({}), jwt::named("SYS"));
        let a = KeyPair::new_account();
        let b = KeyPair::new_account();
        let revoked = KeyPair::new_user().public_key();
        let ja = jwt::account_jwt_with(
            &setup.op,
            &a,
            json!({
                "revocations": {revoked.clone(): 100},
                "exports": [
                    {"name": "priv", "subject": "priv.>", "type": "stream", "token_req": true,
                     "revocations": {b.public_key(): 200}},
                    {"name": "open", "subject": "open.>", "type": "stream"},
                ],
            }),
            jwt::named("ACCA"),
        );
        let conf = setup.config(
            &[(&sys, &jsys), (&a, &ja)],
            &format!("system_account: {}\n", sys.public_key()),
        );
        let srv = start_conf(&conf);
        let port = srv.monitor_port();
        let ua = KeyPair::new_user();
        let _ca = jwt_login(
            srv.port(),
            &jwt::user_jwt_with(&a, &ua, json!({}), jwt::named("ua")),
            &ua,
            "ca",
        );
        let v = get_json(port, &format!("/accountz?acc={}", a.public_key()));
        assert_eq!(s(&v, "system_account"), sys.public_key());
        let d = &v["account_detail"];
        assert!(d.get("is_system").is_none(), "{d}");
        assert_eq!(d["revoked_user"], json!({revoked: "1970-01-01T00:01:40Z"}));
        let priv_export = d["exports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["subject"] == "priv.>")
            .unwrap_or_else(|| panic!("no priv.> export: {d}"));
        assert_eq!(priv_export["token_req"], true);
        assert_eq!(
            priv_export["revoked_activations"],
            json!({b.public_key(): "1970-01-01T00:03:20Z"})
        );
        let open = d["exports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["subject"] == "open.>")
            .unwrap();
        assert!(open.get("revoked_activations").is_none(), "{open}");
    });
}

#[test]
fn accountz_lists_the_responses_an_exporter_still_owes() {
    with_timeout(LIMIT, || {
        let srv = start_conf(
            r#"
accounts {
  A { users = [ {user: a, password: a} ], exports = [ {service: "svc.slow"} ] }
  B { users = [ {user: b, password: b} ]
      imports = [ {service: {account: A, subject: "svc.slow"}} ] }
}
"#,
        );
        let port = srv.monitor_port();
        let mut responder = login(&srv, "a", "a");
        responder.send(b"SUB svc.slow 1\r\n");
        responder.sync();
        let mut requester = login(&srv, "b", "b");
        requester.send(b"SUB inbox.r1 1\r\nPUB svc.slow inbox.r1 2\r\nhi\r\n");
        requester.sync();
        // The responder sees the request with a reply subject of the
        // server's making, and does not answer.
        let line = responder.expect_line();
        let t: Vec<&str> = line.split_whitespace().collect();
        assert!(t[0] == "MSG" || t[0] == "HMSG", "{line}");
        let reply = t[3].to_string();
        let size: usize = t.last().unwrap().parse().unwrap();
        responder.read_exact_bytes(size + 2);
        let d = &get_json(port, "/accountz?acc=A")["account_detail"];
        // "type" is 2, service's number: the reference writes these
        // imports from a map, where jwt.ExportType's JSON method (on the
        // pointer) does not apply.
        assert_eq!(
            d["responses"],
            json!({reply.clone(): {
                "subject": reply, "account": "B", "to": "inbox.r1", "type": 2,
                "invalid": false, "share": false, "tracking": false,
            }}),
            "{d}"
        );
        let b = &get_json(port, "/accountz?acc=B")["account_detail"];
        assert!(
            b.get("responses").is_none(),
            "only the exporter owes it: {b}"
        );
        // Answered, it is no longer owed.
        responder.send(format!("PUB {reply} 2\r\nok\r\n").as_bytes());
        responder.sync();
        let line = requester.expect_line();
        assert!(line.starts_with("MSG inbox.r1 1"), "{line}");
        let d = &get_json(port, "/accountz?acc=A")["account_detail"];
        assert!(d.get("responses").is_none(), "{d}");
    });
}
