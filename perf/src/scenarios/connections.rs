//! Connection handling: how fast a server accepts full handshakes, and how
//! much memory it spends per idle connection.

use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::client::{Auth, Conn, ConnectOpts, SMALL_BUF};
use crate::error::{bail, Context, Error, Result};
use crate::pin::Pinner;

use super::{new_latency_histogram, Better, Diagnostic, Metric, Outcome, Target};

#[derive(Clone, Debug)]
pub struct StormSpec {
    pub connections: usize,
    pub threads: usize,
    /// JWT storms: every connect takes the next user in turn over all
    /// threads (connect `k` overall authenticates as user `k % users`),
    /// instead of each thread keeping its own user. With one user per
    /// account this spreads the connects over the accounts round-robin.
    pub rotate_users: bool,
}

#[derive(Clone, Debug)]
pub struct IdleSpec {
    pub connections: usize,
    pub threads: usize,
}

/// Lets the server finish start-up work (and the Go runtime its first GC
/// cycles) before the baseline RSS sample, and settle after the last
/// connection before the second.
const SETTLE: Duration = Duration::from_millis(500);

/// A storm thread stops after this many failed connects: every failure is
/// counted and fails the run, and a server refusing everyone would
/// otherwise be hammered for the whole time limit.
const MAX_FAILURES_PER_THREAD: usize = 20;

/// What one storm thread did.
struct StormTally {
    ok: usize,
    failed: usize,
    first_error: Option<String>,
    /// Connect latency in nanoseconds, TCP connect to `PONG`.
    latency: Histogram<u64>,
    timed_out: bool,
}

/// Each iteration: connect, read `INFO`, send `CONNECT`+`PING` (a JWT
/// scenario's `CONNECT` carries the user JWT and the signature over
/// `INFO`'s nonce), wait for `PONG`, close. A connect counts only when its
/// `PONG` arrived; a `-ERR` or anything else is a failure, counted, and
/// fails the run. Each connect is timed from the TCP connect to the
/// `PONG`. JWT scenarios give each client thread its own user, as each
/// client process of a real deployment has its own credentials and keeps
/// them across reconnects, unless the spec rotates users over connects.
pub fn storm(spec: &StormSpec, target: &mut Target<'_>) -> Result<Outcome> {
    let users = target.jwt_users.clone();
    let (rotate, threads) = (spec.rotate_users, spec.threads.max(1));
    let start = Instant::now();
    let tallies = fan_out(
        spec.connections,
        spec.threads,
        &target.pinner,
        &target.opts,
        move |t, opts, n, deadline| {
            let mut opts = opts.clone();
            let user = |i: usize| {
                let k = if rotate { i * threads + t } else { t };
                Auth::Jwt(users[k % users.len()].clone())
            };
            if !users.is_empty() {
                opts.auth = user(0);
            }
            let mut tally = StormTally {
                ok: 0,
                failed: 0,
                first_error: None,
                latency: new_latency_histogram(),
                timed_out: false,
            };
            for i in 0..n {
                if Instant::now() >= deadline {
                    tally.timed_out = true;
                    break;
                }
                if rotate && !users.is_empty() && i > 0 {
                    opts.auth = user(i);
                }
                let began = Instant::now();
                match Conn::connect(&opts, SMALL_BUF, deadline) {
                    Ok(conn) => {
                        let took = began.elapsed().as_nanos().max(1) as u64;
                        tally.latency.saturating_record(took);
                        tally.ok += 1;
                        drop(conn);
                    }
                    Err(e) => {
                        tally.failed += 1;
                        tally
                            .first_error
                            .get_or_insert_with(|| format!("connection {i}: {e}"));
                        if tally.failed >= MAX_FAILURES_PER_THREAD {
                            break;
                        }
                    }
                }
            }
            Ok(tally)
        },
        target.deadline,
    )?;
    let secs = start.elapsed().as_secs_f64();
    storm_outcome(spec.connections, &tallies, secs)
}

/// Sums the threads' tallies: any failed connect, or fewer connects than
/// asked for, fails the run.
fn storm_outcome(wanted: usize, tallies: &[StormTally], secs: f64) -> Result<Outcome> {
    let ok: usize = tallies.iter().map(|t| t.ok).sum();
    let failed: usize = tallies.iter().map(|t| t.failed).sum();
    if failed > 0 {
        let (t, first) = tallies
            .iter()
            .enumerate()
            .find_map(|(t, x)| x.first_error.as_ref().map(|e| (t, e)))
            .expect("a failed connect records its error");
        bail!(
            "{failed} of {} connects failed (first: thread {t}, {first})",
            ok + failed
        );
    }
    if ok < wanted {
        let why = if tallies.iter().any(|t| t.timed_out) {
            "the time limit ran out"
        } else {
            "threads stopped early"
        };
        bail!("only {ok} of {wanted} connects completed: {why}");
    }
    let mut latency = new_latency_histogram();
    for t in tallies {
        latency.add(&t.latency).expect("histograms share bounds");
    }
    let us = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    Ok(Outcome {
        metrics: vec![
            Metric {
                name: "connects/s",
                unit: "conn/s",
                better: Better::Higher,
                value: ok as f64 / secs,
            },
            Metric {
                name: "connect p50",
                unit: "µs",
                better: Better::Lower,
                value: us(0.5),
            },
            Metric {
                name: "connect p99",
                unit: "µs",
                better: Better::Lower,
                value: us(0.99),
            },
        ],
        diagnostics: vec![Diagnostic {
            name: "elapsed (s)",
            value: secs,
        }],
        latency: None,
        cpu: None,
    })
}

/// Server RSS growth divided by the number of idle, fully handshaken
/// connections held open.
pub fn idle(spec: &IdleSpec, target: &mut Target<'_>) -> Result<Outcome> {
    check_nofile(spec.connections)?;
    thread::sleep(SETTLE);
    let before = target.server.rss_bytes()?;
    let groups = open_idle(spec.connections, spec.threads, target)?;
    thread::sleep(SETTLE);
    let after = target.server.rss_bytes()?;
    target.server.check_alive()?;

    // Every connection must still be served, or the number is meaningless.
    let alive = verify_alive(groups, &target.pinner, target.deadline)?;
    if alive != spec.connections {
        bail!(
            "only {alive} of {} connections answered PING",
            spec.connections
        );
    }
    let per_conn = after.saturating_sub(before) as f64 / spec.connections as f64;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    Ok(Outcome {
        metrics: vec![Metric {
            name: "RSS per idle conn",
            unit: "KiB",
            better: Better::Lower,
            value: per_conn / 1024.0,
        }],
        diagnostics: vec![
            Diagnostic {
                name: "RSS before (MiB)",
                value: mib(before),
            },
            Diagnostic {
                name: "RSS after (MiB)",
                value: mib(after),
            },
        ],
        latency: None,
        cpu: None,
    })
}

/// PINGs every connection, then closes them all with RST so ten thousand
/// client ports are not left in TIME_WAIT for the next run.
fn verify_alive(groups: Vec<Vec<Conn>>, pinner: &Pinner, deadline: Instant) -> Result<usize> {
    let handles: Vec<_> = groups
        .into_iter()
        .map(|conns| {
            let pinner = pinner.clone();
            thread::spawn(move || -> Result<usize> {
                pinner.pin_current();
                let mut ok = 0;
                let mut first_err = None;
                for mut c in conns {
                    match c.flush(deadline) {
                        Ok(()) => ok += 1,
                        Err(e) => {
                            first_err.get_or_insert(e);
                        }
                    }
                    c.abort();
                }
                match first_err {
                    Some(e) if ok == 0 => Err(e),
                    _ => Ok(ok),
                }
            })
        })
        .collect();
    let mut alive = 0;
    for h in handles {
        alive += h.join().expect("verify thread panicked")?;
    }
    Ok(alive)
}

/// Fails when the descriptor limit cannot hold `connections` clients.
pub(super) fn check_nofile(connections: usize) -> Result<()> {
    let limit = crate::rlimit::nofile()?;
    if limit < connections as u64 + 256 {
        bail!("RLIMIT_NOFILE is {limit}; {connections} connections need more (ulimit -n)");
    }
    Ok(())
}

/// Opens `total` connections (CONNECT and PING each) from `threads`
/// threads and keeps them, grouped by thread.
pub(super) fn open_idle(
    total: usize,
    threads: usize,
    target: &Target<'_>,
) -> Result<Vec<Vec<Conn>>> {
    fan_out(
        total,
        threads,
        &target.pinner,
        &target.opts,
        |_, opts, n, deadline| {
            (0..n)
                .map(|i| {
                    Conn::connect(opts, SMALL_BUF, deadline).context(format_args!("connection {i}"))
                })
                .collect::<Result<Vec<Conn>>>()
        },
        target.deadline,
    )
}

/// Splits `total` connections over `threads` threads, each running `work`
/// with its index, its options (named after it) and its share, and gathers
/// the results in thread order.
pub(super) fn fan_out<T, F>(
    total: usize,
    threads: usize,
    pinner: &Pinner,
    opts: &ConnectOpts,
    work: F,
    deadline: Instant,
) -> Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize, &ConnectOpts, usize, Instant) -> Result<T> + Send + Sync + Clone + 'static,
{
    let threads = threads.clamp(1, total.max(1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let share = total / threads + usize::from(t < total % threads);
            let (pinner, opts, work) = (
                pinner.clone(),
                opts.named(format!("bench-conn-{t}")),
                work.clone(),
            );
            thread::spawn(move || {
                pinner.pin_current();
                work(t, &opts, share, deadline)
            })
        })
        .collect();
    let mut out = Vec::with_capacity(threads);
    let mut errors = Vec::new();
    for (t, h) in handles.into_iter().enumerate() {
        match h.join().expect("connection thread panicked") {
            Ok(v) => out.push(v),
            Err(e) => errors.push(format!("thread {t}: {e}")),
        }
    }
    if !errors.is_empty() {
        return Err(Error(errors.join("; ")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::jwt::{self, Material};
    use crate::proto::json_string_field;
    use crate::server::Server;

    /// An operator-mode stand-in: sends a fresh nonce in `INFO`, checks the
    /// `CONNECT`'s user JWT (signed by its issuer) and `sig` (the nonce,
    /// signed by the JWT's subject), refuses users in `deny` with the
    /// reference's `-ERR`, and answers `PING` once authenticated.
    fn jwt_server(deny: Vec<String>) -> SocketAddr {
        jwt_server_seen(deny).0
    }

    /// [`jwt_server`], also recording the user key of every accepted
    /// `CONNECT`.
    fn jwt_server_seen(deny: Vec<String>) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        thread::spawn(move || {
            for (id, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { continue };
                let (deny, log) = (deny.clone(), log.clone());
                thread::spawn(move || serve(id, stream, &deny, &log));
            }
        });
        (addr, seen)
    }

    fn serve(
        id: usize,
        mut out: TcpStream,
        deny: &[String],
        seen: &Mutex<Vec<String>>,
    ) -> Option<()> {
        let nonce = format!("n0nce-{id}_x");
        let info = format!(
            "INFO {{\"server_id\":\"fake\",\"auth_required\":true,\"nonce\":\"{nonce}\"}}\r\n"
        );
        out.write_all(info.as_bytes()).ok()?;
        let mut r = BufReader::new(out.try_clone().ok()?);
        let mut line = String::new();
        let mut authed = false;
        loop {
            line.clear();
            if r.read_line(&mut line).ok()? == 0 {
                return Some(());
            }
            if let Some(json) = line.strip_prefix("CONNECT ") {
                let verdict = (|| {
                    let token = json_string_field(json.as_bytes(), "jwt")?;
                    let sig = json_string_field(json.as_bytes(), "sig")?;
                    let claims = jwt::decode(&token).ok()?.claims;
                    let sub = json_string_field(claims.as_bytes(), "sub")?;
                    let key = nkeys::KeyPair::from_public_key(&sub).ok()?;
                    key.verify(nonce.as_bytes(), &jwt::b64url_decode(&sig)?)
                        .ok()?;
                    (!deny.contains(&sub)).then_some(sub)
                })();
                let Some(sub) = verdict else {
                    out.write_all(b"-ERR 'Authorization Violation'\r\n").ok()?;
                    return Some(());
                };
                seen.lock().unwrap().push(sub);
                authed = true;
            } else if line.starts_with("PING") && authed {
                out.write_all(b"PONG\r\n").ok()?;
            }
        }
    }

    fn run_storm(addr: SocketAddr, users: Vec<Arc<jwt::User>>, spec: StormSpec) -> Result<Outcome> {
        let mut server = Server::stand_in(addr);
        let mut target = Target {
            server: &mut server,
            opts: ConnectOpts {
                addr,
                auth: users.first().map_or(Auth::None, |u| Auth::Jwt(u.clone())),
                name: "storm-test".into(),
                tls: None,
            },
            pinner: Pinner::default(),
            deadline: Instant::now() + Duration::from_secs(20),
            jwt_users: users,
        };
        storm(&spec, &mut target)
    }

    #[test]
    fn jwt_storm_signs_every_nonce_and_times_every_connect() {
        let m = Material::mint(2).unwrap();
        let out = run_storm(
            jwt_server(Vec::new()),
            m.users.clone(),
            StormSpec {
                connections: 60,
                threads: 2,
                rotate_users: false,
            },
        )
        .unwrap();
        let names: Vec<&str> = out.metrics.iter().map(|m| m.name).collect();
        assert_eq!(names, ["connects/s", "connect p50", "connect p99"]);
        assert!(
            out.metrics.iter().all(|m| m.value > 0.0),
            "{:?}",
            out.metrics
        );
        assert!(out.metrics[1].value <= out.metrics[2].value);
    }

    #[test]
    fn rotating_storm_spreads_connects_over_all_users() {
        // One user per account, as the URL resolver storms mint them.
        let m = Material::mint_accounts(5, 5).unwrap();
        let (addr, seen) = jwt_server_seen(Vec::new());
        run_storm(
            addr,
            m.users.clone(),
            StormSpec {
                connections: 20,
                threads: 2,
                rotate_users: true,
            },
        )
        .unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 20);
        for u in &m.users {
            let n = seen.iter().filter(|s| **s == u.public_key()).count();
            assert_eq!(n, 4, "{u:?}");
        }
        // Without rotation each thread keeps its own user.
        let (addr, seen) = jwt_server_seen(Vec::new());
        run_storm(
            addr,
            m.users.clone(),
            StormSpec {
                connections: 20,
                threads: 2,
                rotate_users: false,
            },
        )
        .unwrap();
        let mut users = seen.lock().unwrap().clone();
        users.sort();
        users.dedup();
        assert_eq!(users.len(), 2);
    }

    #[test]
    fn refused_connects_are_counted_and_fail_the_storm() {
        let m = Material::mint(2).unwrap();
        // Thread 1 connects as the refused user; thread 0 is fine.
        let e = run_storm(
            jwt_server(vec![m.users[1].public_key()]),
            m.users.clone(),
            StormSpec {
                connections: 10,
                threads: 2,
                rotate_users: false,
            },
        )
        .unwrap_err();
        assert_eq!(
            e.0,
            "5 of 10 connects failed (first: thread 1, connection 0: server error: \
             'Authorization Violation')"
        );
        // A refusing server is not hammered for the whole run: each thread
        // gives up after a bounded number of failures.
        let e = run_storm(
            jwt_server(vec![m.users[0].public_key(), m.users[1].public_key()]),
            m.users.clone(),
            StormSpec {
                connections: 1000,
                threads: 2,
                rotate_users: false,
            },
        )
        .unwrap_err();
        assert!(
            e.0.starts_with(&format!(
                "{} of {} connects failed",
                2 * MAX_FAILURES_PER_THREAD,
                2 * MAX_FAILURES_PER_THREAD
            )),
            "{e}"
        );
    }

    #[test]
    fn jwt_connect_needs_a_nonce() {
        let m = Material::mint(1).unwrap();
        let plain = crate::fake::start(crate::fake::Fault::None).addr;
        let e = run_storm(
            plain,
            m.users.clone(),
            StormSpec {
                connections: 1,
                threads: 1,
                rotate_users: false,
            },
        )
        .unwrap_err();
        assert!(e.0.contains("no nonce in INFO"), "{e}");
        // Without JWT users the same server is a plain storm's target.
        run_storm(
            plain,
            Vec::new(),
            StormSpec {
                connections: 5,
                threads: 1,
                rotate_users: false,
            },
        )
        .unwrap();
    }
}
