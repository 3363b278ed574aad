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

/// The flags async-nats's own test helper starts every server with:
/// `--store_dir` (JetStream's directory, unused without `-js`), `-l` and
/// `-P`. The server runs, logs where it listens (the helper reads the port
/// from that line) and writes its pid.
#[test]
fn store_dir_log_and_pid_flags_as_the_client_test_helpers_pass_them() {
    with_timeout(LIMIT, || {
        let dir = TempDir::new("flags");
        let (log, pid) = (dir.path().join("s.log"), dir.path().join("s.pid"));
        let store = dir.path().join("store");
        let srv = Server::start(&[
            "--store_dir",
            store.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-P",
            pid.to_str().unwrap(),
        ]);
        let mut c = Raw::connect(srv.port());
        c.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
        assert_eq!(c.next_line(), "PONG");
        let pid_text = std::fs::read_to_string(&pid).expect("pid file");
        assert_eq!(pid_text.trim(), srv.pid().to_string());
        let text = std::fs::read_to_string(&log).expect("log file");
        assert!(
            text.contains(&format!(
                "Listening for client connections on 127.0.0.1:{}",
                srv.port()
            )),
            "{text}"
        );
    });
}

/// `log_size_limit`: once the log file passes the limit it is kept under a
/// dated backup name and a new file starts, saying where the old one went.
#[test]
fn log_size_limit_rotates_the_log_file() {
    with_timeout(LIMIT, || {
        let dir = TempDir::new("logrot");
        let log = dir.path().join("server.log");
        let srv = Server::with_config(
            &format!(
                "logfile: \"{}\"\nlog_size_limit: 2000\ndebug: true\n",
                log.display()
            ),
            &[],
        );
        // Each connection writes a few debug lines.
        for _ in 0..40 {
            let mut c = Raw::connect_ok(srv.port());
            c.sync();
        }
        let backups = || {
            std::fs::read_dir(dir.path())
                .expect("read dir")
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("server.log."))
                .collect::<Vec<_>>()
        };
        assert!(
            wait_until(Duration::from_secs(5), || !backups().is_empty()),
            "no rotated log in {}",
            dir.path().display()
        );
        let name = backups().remove(0);
        // server.log.YYYY.MM.DD.hh.mm.ss.nnnnnnnnn
        let stamp: Vec<&str> = name["server.log.".len()..].split('.').collect();
        assert_eq!(stamp.len(), 7, "backup name {name}");
        assert!(
            stamp.iter().all(|p| p.chars().all(|c| c.is_ascii_digit())),
            "{name}"
        );
        let current = std::fs::read_to_string(&log).expect("current log");
        assert!(
            current.contains("Rotated log, backup saved as"),
            "new log does not say where the old one went:\n{current}"
        );
        assert!(
            std::fs::metadata(dir.path().join(&name))
                .expect("backup")
                .len()
                > 2000,
            "backup smaller than the limit"
        );
    });
}
