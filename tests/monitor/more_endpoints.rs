//! `/jsz`, `/stacksz`, `/ipqueuesz`, the index's links and `/connz`'s
//! `mqtt_client` filter, as 2.9.10 answers them without JetStream or MQTT.

use super::*;

#[test]
fn jsz_without_jetstream() {
    with_timeout(LIMIT, || {
        let srv = start(&[]);
        let port = srv.monitor_port();
        let r = get(port, "/jsz");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v = r.json();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec![
            "server_id",
            "now",
            "disabled",
            "config",
            "memory",
            "storage",
            "reserved_memory",
            "reserved_storage",
            "accounts",
            "ha_assets",
            "api",
            "streams",
            "consumers",
            "messages",
            "bytes",
        ];
        let mut got = keys.clone();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "{v}");
        assert_eq!(v["disabled"], true);
        assert_eq!(
            v["config"],
            serde_json::json!({"max_memory": 0, "max_storage": 0})
        );
        assert_eq!(v["api"], serde_json::json!({"total": 0, "errors": 0}));
        for k in [
            "memory",
            "storage",
            "accounts",
            "streams",
            "consumers",
            "messages",
            "bytes",
        ] {
            assert_eq!(v[k], 0, "{k}");
        }
        assert_eq!(s(&v, "server_id"), s(&get_json(port, "/varz"), "server_id"));
        assert_time(&v, "now");
        // Options are decoded (and refused) even though nothing uses them.
        assert_eq!(
            get_json(port, "/jsz?accounts=1&streams=true&limit=5")["disabled"],
            true
        );
        let r = get(port, "/jsz?limit=x");
        assert_eq!(r.status, 400);
        assert_eq!(
            r.text(),
            r#"Error decoding int for 'limit': strconv.Atoi: parsing "x": invalid syntax"#
        );
        // Only a JetStream leader answers leader-only requests.
        let r = get(port, "/jsz?leader-only=true");
        assert_eq!(r.status, 400);
        assert_eq!(r.text(), "filtered response: not leader");
        let r = get(port, "/healthz?js-enabled-only=x");
        assert_eq!(r.status, 400);
        assert_eq!(
            r.text(),
            r#"Error decoding boolean for 'js-enabled-only': strconv.ParseBool: parsing "x": invalid syntax"#
        );
        assert_eq!(
            get(port, "/healthz?js-enabled-only=true&js-server-only=1").text(),
            r#"{"status":"ok"}"#
        );
        let stats = get_json(port, "/varz")["http_req_stats"].clone();
        assert!(u(&stats, "/jsz") >= 4, "{stats}");
    });
}

#[test]
fn index_links_what_the_reference_lists() {
    with_timeout(LIMIT, || {
        let srv = start(&[]);
        let text = get(srv.monitor_port(), "/").text();
        // In the reference's order; /stacksz and /ipqueuesz are served
        // but not listed.
        let at = |p: &str| {
            text.find(&format!("href=./{p}>"))
                .or_else(|| text.find(&format!("href=./{p} ")))
                .unwrap_or_else(|| panic!("no link to {p}: {text}"))
        };
        let order = [
            "varz", "jsz", "connz", "accountz", "accstatz", "subsz", "routez", "leafz", "gatewayz",
            "healthz",
        ];
        for w in order.windows(2) {
            assert!(at(w[0]) < at(w[1]), "{} before {}", w[0], w[1]);
        }
        assert!(text.contains(">JetStream</a>") && text.contains(">LeafNodes</a>"));
        assert!(!text.contains("stacksz") && !text.contains("ipqueuesz"));
    });
}

#[test]
fn stacksz_is_a_text_dump_of_what_runs() {
    with_timeout(LIMIT, || {
        let srv = start(&[]);
        let r = get(srv.monitor_port(), "/stacksz");
        assert_eq!(r.status, 200);
        // The reference sends its goroutine dump as application/json.
        assert_eq!(r.header("content-type"), Some("application/json"));
        let t = r.text();
        let first = t.lines().next().unwrap_or_default();
        let word = if common::is_natrix() {
            "thread "
        } else {
            "goroutine "
        };
        assert!(first.starts_with(word) && first.ends_with("]:"), "{first}");
        assert!(serde_json::from_str::<Value>(&t).is_err(), "text, not JSON");
        // One paragraph per thread (goroutine), the HTTP handler's own
        // among them.
        assert!(
            t.split("\n\n").filter(|p| p.starts_with(word)).count() >= 2,
            "{t}"
        );
    });
}

#[test]
fn natrix_only_stacksz_names_each_thread_and_its_state() {
    with_timeout(LIMIT, || {
        let srv = start(&[]);
        let t = get(srv.monitor_port(), "/stacksz").text();
        let task = format!("/proc/{}/task", srv.pid());
        let tids: Vec<String> = std::fs::read_dir(&task)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(tids.len() >= 3, "shards, main and HTTP threads: {tids:?}");
        for tid in &tids {
            let Ok(comm) = std::fs::read_to_string(format!("{task}/{tid}/comm")) else {
                continue;
            };
            // Threads that started after the dump (an HTTP connection's) may
            // be missing; the long-lived ones are there with their names.
            if let Some(at) = t.find(&format!("thread {tid} [")) {
                let para = &t[at..t[at..].find("\n\n").map_or(t.len(), |e| at + e)];
                assert!(
                    para.contains(&format!("\tname: {}\n", comm.trim())),
                    "{para}"
                );
                assert!(para.contains("\tcpu: user "), "{para}");
            }
        }
        assert!(
            t.contains(&format!("thread {} [", srv.pid())),
            "main thread: {t}"
        );
    });
}

#[test]
fn ipqueuesz_lists_nonempty_queues_or_all() {
    with_timeout(LIMIT, || {
        let srv = start(&[]);
        let port = srv.monitor_port();
        let r = get(port, "/ipqueuesz");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        // An idle server has nothing queued: every queue is left out.
        assert_eq!(r.text(), "{}");
        let all = get_json(port, "/ipqueuesz?all=1");
        let all = all.as_object().expect("an object of queues");
        assert!(!all.is_empty(), "all=1 lists the empty queues too");
        for (name, q) in all {
            assert_eq!(q["pending"], 0, "{name}: {q}");
            assert!(q.get("in_progress").is_none(), "omitted when 0: {q}");
        }
        // `queues` keeps the names containing it.
        let name = all.keys().next().unwrap().clone();
        let one = get_json(
            port,
            &format!("/ipqueuesz?all=true&queues={}", name.replace(' ', "+")),
        );
        assert!(one.as_object().unwrap().contains_key(&name), "{one}");
        assert_eq!(get(port, "/ipqueuesz?all=1&queues=nope-nope").text(), "{}");
        let r = get(port, "/ipqueuesz?all=x");
        assert_eq!(r.status, 400);
        assert_eq!(
            r.text(),
            r#"Error decoding boolean for 'all': strconv.ParseBool: parsing "x": invalid syntax"#
        );
    });
}

#[test]
fn natrix_only_ipqueuesz_reports_each_shards_mesh_queues() {
    with_timeout(LIMIT, || {
        let srv = start(&[]); // three shards
        let all = get_json(srv.monitor_port(), "/ipqueuesz?all=1");
        let mut names: Vec<&String> = all.as_object().unwrap().keys().collect();
        names.sort();
        let want: Vec<String> = (0..3)
            .flat_map(|a| {
                (0..3)
                    .filter(move |b| *b != a)
                    .map(move |b| format!("Shard {a} mesh to shard {b}"))
            })
            .collect();
        assert_eq!(names, want.iter().collect::<Vec<_>>());
        let one = get_json(srv.monitor_port(), "/ipqueuesz?all=1&queues=Shard+2");
        assert_eq!(one.as_object().unwrap().len(), 2, "{one}");
    });
}

#[test]
fn connz_mqtt_client_filter_matches_no_plain_client() {
    with_timeout(LIMIT, || {
        let srv = start(&[]);
        let port = srv.monitor_port();
        let (_a, _) = client(&srv, "a");
        let (_b, _) = client(&srv, "b");
        let all = get_json(port, "/connz");
        assert_eq!(u(&all, "num_connections"), 2);
        for c in conns(&all) {
            // Empty for a NATS client, so omitted.
            assert!(c.get("mqtt_client").is_none(), "{c}");
        }
        let v = get_json(port, "/connz?mqtt_client=some-id");
        assert_eq!(u(&v, "num_connections"), 0);
        assert_eq!(u(&v, "total"), 2, "the total is not filtered by it");
        assert_eq!(v["connections"], serde_json::json!([]));
        let v = get_json(port, "/connz?mqtt_client=some-id&state=all");
        assert_eq!(u(&v, "num_connections"), 0);
    });
}
