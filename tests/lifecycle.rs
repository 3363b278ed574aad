//! Process lifecycle: lame duck mode, stop signals, process files.

mod common;

use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn lame_duck_announces_refuses_new_clients_and_closes_existing() {
    with_timeout(LIMIT, || {
        let srv = Server::with_config(
            "lame_duck_duration: \"30s\"\nlame_duck_grace_period: \"1s\"\n",
            &[],
        );
        let mut c = Raw::connect(srv.port());
        c.send(b"CONNECT {\"verbose\":false,\"protocol\":1}\r\n");
        c.sync();
        srv.signal("USR2");
        // The client is told with an INFO carrying ldm: true.
        let line = c.next_line();
        assert!(line.starts_with("INFO {"), "got {line}");
        let info: serde_json::Value =
            serde_json::from_str(line["INFO ".len()..].trim()).expect("INFO json");
        assert_eq!(info["ldm"], serde_json::json!(true), "{line}");
        // New clients are refused at once.
        assert!(
            wait_until(Duration::from_secs(5), || std::net::TcpStream::connect(
                srv.addr()
            )
            .is_err()),
            "listener still accepting in lame duck mode"
        );
        // After the grace period the existing client is closed.
        let rest = c.read_until_closed(Duration::from_secs(10));
        assert!(
            strip_pings(&rest).is_empty(),
            "unexpected bytes: {}",
            show(&rest)
        );
    });
}

#[test]
fn sigterm_stops_the_server_and_removes_the_ports_file() {
    with_timeout(LIMIT, || {
        let mut srv = Server::start(&[]);
        let ports: Vec<_> = std::fs::read_dir(srv.dir())
            .expect("temp dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".ports"))
            .collect();
        assert_eq!(ports.len(), 1, "one ports file while running");
        let mut c = Raw::connect(srv.port());
        c.send(b"CONNECT {\"verbose\":false}\r\n");
        c.sync();
        srv.signal("TERM");
        // Connected clients see the connection end.
        let rest = c.read_until_closed(Duration::from_secs(5));
        assert!(
            strip_pings(&rest).is_empty(),
            "unexpected bytes: {}",
            show(&rest)
        );
        assert!(
            wait_until(Duration::from_secs(5), || !srv.is_running()),
            "still running after SIGTERM"
        );
        let left = std::fs::read_dir(srv.dir())
            .expect("temp dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".ports"))
            .count();
        assert_eq!(left, 0, "ports file removed on shutdown");
    });
}
