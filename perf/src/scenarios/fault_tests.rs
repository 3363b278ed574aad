//! The harness against a fake server with injected faults: lost messages
//! and cut subscribers must fail the run, classified, and a healthy server
//! must pass.

use std::time::{Duration, Instant};

use crate::client::{Auth, ConnectOpts};
use crate::fake::{self, Fault};
use crate::pin::Pinner;
use crate::server::Server;

use super::*;

fn target_for(fault: Fault) -> Server {
    Server::stand_in(fake::start(fault).addr)
}

fn run_kind(kind: Kind, fault: Fault) -> Result<Outcome> {
    let mut server = target_for(fault);
    let opts = ConnectOpts {
        addr: server.addr,
        auth: Auth::None,
        name: "fault-test".into(),
        tls: None,
    };
    let sc = Scenario {
        name: "t".into(),
        summary: String::new(),
        auth: false,
        tls: false,
        jwt: false,
        url_resolver: None,
        baseline: None,
        kind,
        time_limit: Duration::from_secs(30),
        natrix_shards: None,
        scaling: false,
    };
    let mut target = Target {
        server: &mut server,
        opts,
        pinner: Pinner::default(),
        deadline: Instant::now() + sc.time_limit,
        jwt_users: Vec::new(),
    };
    sc.run(&mut target)
}

fn unpaced(publishers: usize, subscribers: usize, queue: bool, pairs: bool) -> Kind {
    Kind::Throughput(ThroughputSpec {
        payload: 16,
        publishers,
        subscribers,
        queue,
        msgs_per_publisher: 2_000,
        paced: false,
        pairs,
    })
}

fn err(r: Result<Outcome>) -> String {
    match r {
        Ok(o) => panic!("run should have failed: {:?}", o.metrics),
        Err(e) => e.0,
    }
}

#[test]
fn healthy_server_passes_every_shape() {
    for kind in [
        unpaced(1, 0, false, false),
        unpaced(1, 1, false, false),
        unpaced(2, 3, false, false),
        unpaced(2, 3, true, false),
        unpaced(3, 3, false, true),
        Kind::Throughput(ThroughputSpec {
            paced: true,
            ..match unpaced(1, 2, false, false) {
                Kind::Throughput(t) => t,
                _ => unreachable!(),
            }
        }),
        Kind::ReqRep(ReqRepSpec {
            requesters: 3,
            responders: 2,
            payload: 32,
            requests_per_requester: 500,
            window: 4,
        }),
    ] {
        let label = format!("{kind:?}");
        let o = run_kind(kind, Fault::None).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert!(o.metrics[0].value > 0.0, "{label}");
    }
}

#[test]
fn a_gap_is_reported_as_loss() {
    let e = err(run_kind(unpaced(1, 2, false, false), Fault::DropNth(500)));
    assert!(e.starts_with("LOSS: subscriber "), "{e}");
    assert!(
        e.contains("got seq 500 after 498: 1 message(s) missing"),
        "{e}"
    );
}

#[test]
fn missing_tail_is_reported_as_loss_after_the_drain_wait() {
    let started = Instant::now();
    let e = err(run_kind(
        unpaced(1, 1, false, false),
        Fault::StopAfter(1_990),
    ));
    assert!(
        e.starts_with("LOSS: delivered 1990 of 2000 expected"),
        "{e}"
    );
    assert!(
        e.contains("after every publisher's final PING was answered"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    // Queue groups too: only the total can be checked there.
    let e = err(run_kind(
        unpaced(1, 2, true, false),
        Fault::StopAfter(1_000),
    ));
    assert!(
        e.starts_with("LOSS: delivered 1000 of 2000 expected"),
        "{e}"
    );
}

#[test]
fn closed_subscriber_is_a_slow_consumer_cut() {
    let e = err(run_kind(
        unpaced(1, 1, false, false),
        Fault::CloseSubscribersAfter(100),
    ));
    assert!(
        e.starts_with(
            "SLOW CONSUMER: subscriber 0: server closed the connection after 100 of 2000 messages"
        ),
        "{e}"
    );
}

#[test]
fn slow_consumer_err_is_reported() {
    let e = err(run_kind(
        unpaced(1, 1, false, true),
        Fault::SlowConsumerErrAfter(10),
    ));
    assert!(
        e.starts_with(
            "SLOW CONSUMER: subscriber 0: server sent -ERR 'Slow Consumer' after 10 messages"
        ),
        "{e}"
    );
}

#[test]
fn lost_requests_fail_request_reply() {
    let kind = Kind::ReqRep(ReqRepSpec {
        requesters: 2,
        responders: 2,
        payload: 32,
        requests_per_requester: 200,
        window: 4,
    });
    let e = err(run_kind(kind, Fault::DropNth(50)));
    assert!(e.starts_with("LOSS: requester "), "{e}");
    assert!(e.contains("unanswered for 5s"), "{e}");
}

#[test]
fn bursts_report_rss_and_catch_loss() {
    let kind = |bursts| {
        Kind::Burst(BurstSpec {
            subscribers: 2,
            msgs: 500,
            payload: 64,
            bursts,
            settle: Duration::from_millis(10),
        })
    };
    let o = run_kind(kind(2), Fault::None).unwrap();
    let names: Vec<&str> = o.metrics.iter().map(|m| m.name).collect();
    assert_eq!(names, ["RSS after burst 1", "RSS after burst 2"]);
    assert!(o.metrics.iter().all(|m| m.value > 0.0));
    let e = err(run_kind(kind(3), Fault::StopAfter(700)));
    assert!(
        e.starts_with("LOSS: burst 2: subscribers have [700, 700] of 1000"),
        "{e}"
    );
    let e = err(run_kind(kind(2), Fault::CloseSubscribersAfter(10)));
    assert!(e.starts_with("SLOW CONSUMER: burst 1: subscriber "), "{e}");
}
