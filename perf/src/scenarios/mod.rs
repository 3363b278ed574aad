//! The benchmark scenarios: what each one measures, its size per profile,
//! and the server configuration it needs.

mod connections;
#[cfg(test)]
mod fault_tests;
mod latency;
mod memory;
mod monitoring;
mod reqrep;
mod throughput;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::client::{Auth, ConnectOpts};
use crate::error::{Error, Result};
use crate::jwt;
use crate::pin::Pinner;
use crate::procstat::CpuUsage;
use crate::server::{Permissions, Server, ServerConfig, BENCH_PASS, BENCH_USER};

pub use connections::{IdleSpec, StormSpec};
pub use latency::{new_latency_histogram, LatencySpec, LATENCY_SUBJECTS};
pub use memory::BurstSpec;
pub use monitoring::ConnzPollSpec;
pub use reqrep::ReqRepSpec;
pub use throughput::{Tally, ThroughputSpec, THROUGHPUT_SUBJECT};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// CI check: natrix only, tiny counts, every delivery asserted.
    Smoke,
    /// A few minutes in total.
    Quick,
    /// Longer runs for numbers worth publishing.
    Full,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

impl Better {
    pub fn phrase(self) -> &'static str {
        match self {
            Better::Higher => "higher is better",
            Better::Lower => "lower is better",
        }
    }
}

/// One number a scenario run produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: &'static str,
    pub better: Better,
    pub value: f64,
}

/// Side numbers that explain a result but are not a server comparison
/// (e.g. how late the client's own sends were).
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub name: &'static str,
    pub value: f64,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub metrics: Vec<Metric>,
    pub diagnostics: Vec<Diagnostic>,
    /// Latency scenarios: the round's full distribution, in nanoseconds.
    pub latency: Option<Histogram<u64>>,
    /// Server CPU time during the run (filled in by the runner).
    pub cpu: Option<CpuUsage>,
}

/// Failure classes: a failed run's reason starts with one of these when it
/// is one, so the report's Failures list says what happened at a glance.
pub const LOSS: &str = "LOSS";
pub const SLOW_CONSUMER: &str = "SLOW CONSUMER";
pub const ORDER: &str = "ORDER";
const CLASSES: [&str; 3] = [LOSS, SLOW_CONSUMER, ORDER];

/// `"<class>: <msg>"`.
pub fn classified(class: &str, msg: impl std::fmt::Display) -> Error {
    Error(format!("{class}: {msg}"))
}

/// A subscriber cut off by the server.
pub fn slow_consumer(msg: impl std::fmt::Display) -> Error {
    classified(SLOW_CONSUMER, msg)
}

/// A `-ERR` line from the server; `'Slow Consumer'` (or any mention of a
/// slow consumer) is classified as such.
pub fn server_error(text: &[u8], received: u64) -> Error {
    let text = String::from_utf8_lossy(text);
    if text.to_ascii_lowercase().contains("slow consumer") {
        slow_consumer(format!("server sent -ERR {text} after {received} messages"))
    } else {
        Error(format!("server error: {text}"))
    }
}

/// Names the failing client while keeping the class first:
/// `("subscriber 3", "LOSS: x")` → `"LOSS: subscriber 3: x"`.
pub fn attribute(who: &str, e: &Error) -> String {
    for class in CLASSES {
        if let Some(rest) = e.0.strip_prefix(class).and_then(|r| r.strip_prefix(": ")) {
            return format!("{class}: {who}: {rest}");
        }
    }
    format!("{who}: {e}")
}

/// What a scenario runs against.
pub struct Target<'a> {
    pub server: &'a mut Server,
    pub opts: ConnectOpts,
    pub pinner: Pinner,
    /// Every loop in a scenario gives up (with an error) at this instant.
    pub deadline: Instant,
    /// JWT scenarios: the minted users, one per connecting client thread
    /// of a connection storm (`opts` authenticates as the first).
    pub jwt_users: Vec<Arc<jwt::User>>,
}

#[derive(Clone, Debug)]
pub enum Kind {
    Throughput(ThroughputSpec),
    Latency(LatencySpec),
    Storm(StormSpec),
    Idle(IdleSpec),
    ReqRep(ReqRepSpec),
    Burst(BurstSpec),
    ConnzPoll(ConnzPollSpec),
}

/// The URL resolver scenarios' accounts: the runner mints `accounts`
/// accounts with one user each and serves them with
/// [`crate::accounts::AccountServer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UrlResolver {
    pub accounts: usize,
    /// natrix keeps its default `resolver_cache`; `false` turns it off
    /// (natrix only: the reference has no such setting).
    pub natrix_cache: bool,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub summary: String,
    pub auth: bool,
    /// Clients connect over TLS; the server requires it.
    pub tls: bool,
    /// Operator mode: the server trusts the run's minted operator and
    /// clients connect with user JWTs.
    pub jwt: bool,
    /// Operator mode with `resolver: URL(...)` in front of an account
    /// server the runner starts for the scenario (needs `jwt`).
    pub url_resolver: Option<UrlResolver>,
    /// The same load without authentication, which the report sets this
    /// scenario's numbers against.
    pub baseline: Option<String>,
    pub kind: Kind,
    pub time_limit: Duration,
    /// Run natrix with `--shards N` for this scenario (overrides
    /// `--shards`; ignored for a binary that does not take the flag).
    pub natrix_shards: Option<usize>,
    /// One of the `scale_*` scenarios that `--scaling` runs.
    pub scaling: bool,
}

impl Scenario {
    pub fn config(&self) -> ServerConfig {
        let subjects: &[&str] = match &self.kind {
            Kind::Latency(_) => &LATENCY_SUBJECTS,
            _ => &[THROUGHPUT_SUBJECT],
        };
        ServerConfig {
            auth: self.auth.then(|| Permissions::bench_set(subjects)),
            // The certificate files and the operator's JWTs are per run;
            // the runner fills them in.
            tls: None,
            operator: None,
        }
    }

    /// How clients authenticate: user/password for `*_auth`, the first
    /// minted user for JWT scenarios (given the run's users), else not.
    pub fn auth(&self, jwt_users: &[Arc<jwt::User>]) -> Result<Auth> {
        if self.jwt {
            return match jwt_users.first() {
                Some(u) => Ok(Auth::Jwt(u.clone())),
                None => Err(Error(format!("{}: no JWT users minted", self.name))),
            };
        }
        Ok(if self.auth {
            Auth::UserPass(BENCH_USER.to_string(), BENCH_PASS.to_string())
        } else {
            Auth::None
        })
    }

    pub fn run(&self, target: &mut Target<'_>) -> Result<Outcome> {
        let outcome = match &self.kind {
            Kind::Throughput(spec) => throughput::run(spec, target),
            Kind::Latency(spec) => latency::run(spec, target),
            Kind::Storm(spec) => connections::storm(spec, target),
            Kind::Idle(spec) => connections::idle(spec, target),
            Kind::ReqRep(spec) => reqrep::run(spec, target),
            Kind::Burst(spec) => memory::run(spec, target),
            Kind::ConnzPoll(spec) => monitoring::run(spec, target),
        };
        // A crash explains any client-side error better than the error does.
        target.server.check_alive()?;
        outcome
    }

    /// Largest number of file descriptors the client needs at once.
    /// The server must serve HTTP monitoring for this scenario.
    pub fn needs_monitor(&self) -> bool {
        matches!(self.kind, Kind::ConnzPoll(_))
    }

    pub fn fds_needed(&self) -> usize {
        match &self.kind {
            Kind::Idle(spec) => spec.connections,
            Kind::ConnzPoll(spec) => spec.connections + 64,
            Kind::Throughput(spec) => spec.publishers + spec.subscribers,
            Kind::ReqRep(spec) => spec.requesters + spec.responders,
            _ => 64,
        }
    }
}

/// Every scenario, in report order, sized for `profile`; `scale_n` is N of
/// the `scale_*` scenarios.
pub fn catalog(profile: Profile, latency_rate: Option<u64>, scale_n: usize) -> Vec<Scenario> {
    use Profile::*;
    // Messages per publisher: (full, quick, smoke). Quick is sized for about
    // half a second per run on a small machine, full for a few seconds.
    let n = |full: u64, quick: u64, smoke: u64| match profile {
        Full => full,
        Quick => quick,
        Smoke => smoke,
    };
    let limit = match profile {
        Full => Duration::from_secs(180),
        Quick => Duration::from_secs(60),
        Smoke => Duration::from_secs(10),
    };
    let tp = |publishers, subscribers, queue, payload, msgs| ThroughputSpec {
        payload,
        publishers,
        subscribers,
        queue,
        msgs_per_publisher: msgs,
        paced: true,
        pairs: false,
    };
    let unpaced = |publishers, subscribers, queue, payload, msgs| ThroughputSpec {
        paced: false,
        ..tp(publishers, subscribers, queue, payload, msgs)
    };

    let throughput: Vec<(&str, String, ThroughputSpec)> = vec![
        (
            "pub_16b",
            "1 publisher, no subscribers, 16 B payloads".into(),
            tp(1, 0, false, 16, n(40_000_000, 5_000_000, 200_000)),
        ),
        (
            "pub_256b",
            "1 publisher, no subscribers, 256 B payloads".into(),
            tp(1, 0, false, 256, n(16_000_000, 2_000_000, 100_000)),
        ),
        (
            "pub_4k",
            "1 publisher, no subscribers, 4 KiB payloads".into(),
            tp(1, 0, false, 4096, n(2_000_000, 250_000, 20_000)),
        ),
        (
            "pubsub_1to1",
            "1 publisher → 1 subscriber, 128 B".into(),
            tp(1, 1, false, 128, n(8_000_000, 1_000_000, 100_000)),
        ),
        (
            "fanout_1to10",
            "1 publisher → 10 subscribers, 128 B".into(),
            tp(1, 10, false, 128, n(1_500_000, 200_000, 20_000)),
        ),
        (
            "fanout_1to100",
            "1 publisher → 100 subscribers, 128 B".into(),
            tp(1, 100, false, 128, n(150_000, 20_000, 2_000)),
        ),
        (
            "queue_1to4",
            "1 publisher → queue group of 4, 128 B".into(),
            tp(1, 4, true, 128, n(8_000_000, 1_000_000, 100_000)),
        ),
        (
            "manypub_4to1",
            "4 publishers → 1 subscriber, 128 B".into(),
            tp(4, 1, false, 128, n(2_000_000, 250_000, 25_000)),
        ),
    ];

    // How the TLS scenarios' summaries describe the transport.
    let tls_note = format!("TLS 1.3, {}", crate::tls::SUITE);
    let mut out = Vec::new();
    for auth in [false, true] {
        for (name, summary, spec) in &throughput {
            let (name, summary) = if auth {
                (
                    format!("{name}_auth"),
                    format!("{summary}; user/password auth + 20-rule permissions"),
                )
            } else {
                (name.to_string(), summary.clone())
            };
            out.push(Scenario {
                name,
                summary,
                auth,
                tls: false,
                jwt: false,
                url_resolver: None,
                baseline: None,
                kind: Kind::Throughput(spec.clone()),
                time_limit: limit,
                natrix_shards: None,
                scaling: false,
            });
        }
    }
    for base in ["pubsub_1to1", "pub_256b"] {
        let (_, summary, spec) = throughput
            .iter()
            .find(|(name, _, _)| *name == base)
            .expect("TLS scenarios derive from catalog entries");
        out.push(Scenario {
            name: format!("{base}_tls"),
            summary: format!("{summary}; {tls_note}"),
            auth: false,
            tls: true,
            jwt: false,
            url_resolver: None,
            baseline: None,
            kind: Kind::Throughput(spec.clone()),
            time_limit: limit,
            natrix_shards: None,
            scaling: false,
        });
    }

    // Throughput with every publisher and subscriber authenticated by a
    // user JWT (operator mode), to set against the same load without auth.
    for base in ["pubsub_1to1", "pub_256b"] {
        let (_, summary, spec) = throughput
            .iter()
            .find(|(name, _, _)| *name == base)
            .expect("JWT scenarios derive from catalog entries");
        out.push(Scenario {
            name: format!("{base}_jwt"),
            summary: format!("{summary}; clients authenticate with a user JWT (operator mode)"),
            auth: false,
            tls: false,
            jwt: true,
            url_resolver: None,
            baseline: Some(base.to_string()),
            kind: Kind::Throughput(spec.clone()),
            time_limit: limit,
            natrix_shards: None,
            scaling: false,
        });
    }

    const UNPACED_NOTE: &str =
        "unpaced: publishers write as fast as the socket takes, one PING at the end";
    let unpaced_runs: Vec<(&str, &str, ThroughputSpec)> = vec![
        (
            "pubsub_16b_unpaced",
            "1 publisher → 1 subscriber, 16 B",
            unpaced(1, 1, false, 16, n(8_000_000, 1_000_000, 100_000)),
        ),
        (
            "pubsub_4k_unpaced",
            "1 publisher → 1 subscriber, 4 KiB",
            unpaced(1, 1, false, 4096, n(1_000_000, 125_000, 30_000)),
        ),
        (
            "fanout_1to10_unpaced",
            "1 publisher → 10 subscribers, 128 B",
            unpaced(1, 10, false, 128, n(1_500_000, 200_000, 20_000)),
        ),
        (
            "queue_1to4_unpaced",
            "1 publisher → queue group of 4, 128 B",
            unpaced(1, 4, true, 128, n(8_000_000, 1_000_000, 100_000)),
        ),
        (
            "manypub_4to1_unpaced",
            "4 publishers → 1 subscriber, 128 B",
            unpaced(4, 1, false, 128, n(2_000_000, 250_000, 25_000)),
        ),
    ];
    for (name, summary, spec) in unpaced_runs {
        out.push(Scenario {
            name: name.into(),
            summary: format!("{summary}; {UNPACED_NOTE}"),
            auth: false,
            tls: false,
            jwt: false,
            url_resolver: None,
            baseline: None,
            kind: Kind::Throughput(spec),
            time_limit: limit,
            natrix_shards: None,
            scaling: false,
        });
    }

    let rate = latency_rate.unwrap_or(match profile {
        Full => 10_000,
        Quick => 5_000,
        Smoke => 1_000,
    });
    let secs = match profile {
        Full => 30,
        Quick => 5,
        Smoke => 1,
    };
    for tls in [false, true] {
        let summary =
            format!("request/reply round trip at a fixed {rate} req/s for {secs} s, 16 B");
        out.push(Scenario {
            name: if tls {
                "reqrep_latency_tls"
            } else {
                "reqrep_latency"
            }
            .into(),
            summary: if tls {
                format!("{summary}; {tls_note}")
            } else {
                summary
            },
            auth: false,
            tls,
            jwt: false,
            url_resolver: None,
            baseline: None,
            kind: Kind::Latency(LatencySpec {
                rate,
                duration: Duration::from_secs(secs),
                payload: 16,
            }),
            time_limit: Duration::from_secs(secs) + limit,
            natrix_shards: None,
            scaling: false,
        });
    }

    let storm = n(20_000, 10_000, 300) as usize;
    out.push(Scenario {
        name: "conn_storm".into(),
        summary: format!("{storm} connects: INFO, CONNECT+PING, PONG, close; 4 client threads"),
        auth: false,
        tls: false,
        jwt: false,
        url_resolver: None,
        baseline: None,
        kind: Kind::Storm(StormSpec {
            connections: storm,
            threads: 4,
            rotate_users: false,
        }),
        time_limit: limit,
        natrix_shards: None,
        scaling: false,
    });

    let jwt_storm = n(20_000, 5_000, 300) as usize;
    out.push(Scenario {
        name: "conn_storm_jwt".into(),
        summary: format!(
            "{jwt_storm} connects with a user JWT (operator mode): INFO with nonce, \
             CONNECT with jwt and the nonce's signature, PING, PONG, close; \
             4 client threads, one user each"
        ),
        auth: false,
        tls: false,
        jwt: true,
        url_resolver: None,
        baseline: Some("conn_storm".into()),
        kind: Kind::Storm(StormSpec {
            connections: jwt_storm,
            threads: 4,
            rotate_users: false,
        }),
        time_limit: limit,
        natrix_shards: None,
        scaling: false,
    });

    // Connects whose account the server must first fetch from a URL
    // resolver (an HTTP account server the harness runs), spread over many
    // accounts so each is fetched at its first use and later connects of
    // the same account meet whatever the server kept. Without natrix's
    // cache every connect asks the account server; the reference runs
    // unchanged in both (it keeps a fetched account until an update).
    let url_storm = n(20_000, 5_000, 300) as usize;
    const URL_ACCOUNTS: usize = 200;
    for natrix_cache in [true, false] {
        out.push(Scenario {
            name: if natrix_cache {
                "conn_storm_url"
            } else {
                "conn_storm_url_nocache"
            }
            .into(),
            summary: format!(
                "{url_storm} connects with user JWTs of {URL_ACCOUNTS} accounts, round-robin, \
                 fetched by resolver: URL(...) from a local HTTP account server; \
                 natrix {}; 4 client threads",
                if natrix_cache {
                    "with its default resolver_cache"
                } else {
                    "with resolver_cache: false"
                }
            ),
            auth: false,
            tls: false,
            jwt: true,
            url_resolver: Some(UrlResolver {
                accounts: URL_ACCOUNTS,
                natrix_cache,
            }),
            baseline: None,
            kind: Kind::Storm(StormSpec {
                connections: url_storm,
                threads: 4,
                rotate_users: true,
            }),
            time_limit: limit,
            natrix_shards: None,
            scaling: false,
        });
    }

    let idle = n(10_000, 10_000, 300) as usize;
    out.push(Scenario {
        name: format!("idle_mem_{}", human_count(idle)),
        summary: format!("server RSS growth per idle connection with {idle} connections open"),
        auth: false,
        tls: false,
        jwt: false,
        url_resolver: None,
        baseline: None,
        kind: Kind::Idle(IdleSpec {
            connections: idle,
            threads: 4,
        }),
        time_limit: limit,
        natrix_shards: None,
        scaling: false,
    });

    let burst = BurstSpec {
        subscribers: 4,
        msgs: n(20_000, 20_000, 2_000),
        payload: 1024,
        bursts: n(5, 3, 2) as usize,
        settle: match profile {
            Smoke => Duration::from_millis(100),
            _ => Duration::from_secs(1),
        },
    };
    out.push(Scenario {
        name: "rss_after_burst".into(),
        summary: format!(
            "server RSS after each of {} unpaced bursts of {} × 1 KiB to {} subscribers, \
             once delivered plus {:?} to settle; natrix with --shards 1",
            burst.bursts, burst.msgs, burst.subscribers, burst.settle
        ),
        auth: false,
        tls: false,
        jwt: false,
        url_resolver: None,
        baseline: None,
        kind: Kind::Burst(burst),
        time_limit: limit,
        natrix_shards: Some(1),
        scaling: false,
    });

    // Request/reply p99 with 10k idle connections, quiet and while a
    // client polls /connz's default page: tens of seconds, so not in the
    // smoke run.
    let poll_rate = latency_rate.unwrap_or(2_000);
    let poll_secs = match profile {
        Full => 20,
        _ => 5,
    };
    out.push(Scenario {
        name: "connz_poll_10k".into(),
        summary: format!(
            "p99 that polling /connz?limit=1024 {CONNZ_POLLS} times a second adds to \
             request/reply ({poll_rate} req/s, {poll_secs} s per phase) with 10000 idle \
             connections"
        ),
        auth: false,
        tls: false,
        jwt: false,
        url_resolver: None,
        baseline: None,
        kind: Kind::ConnzPoll(ConnzPollSpec {
            connections: 10_000,
            threads: 4,
            latency: LatencySpec {
                rate: poll_rate,
                duration: Duration::from_secs(poll_secs),
                payload: 16,
            },
            page: 1024,
            polls_per_sec: CONNZ_POLLS,
        }),
        time_limit: Duration::from_secs(2 * poll_secs) + limit,
        natrix_shards: None,
        scaling: false,
    });

    out.extend(scaling_scenarios(profile, scale_n, limit));
    // The CI smoke run checks JWT connects end to end, with the memory and
    // the URL resolver; the JWT throughput twins and the cache-off storm
    // only matter in measured runs. Monitoring needs 10k connections.
    if profile == Smoke {
        out.retain(|s| {
            (!s.jwt || s.name == "conn_storm_jwt" || s.name == "conn_storm_url")
                && !s.needs_monitor()
        });
    }
    out
}

/// `/connz` polls a second in `connz_poll_10k`: well within what either
/// server answers with 10k connections on two cores (the reference takes
/// ~30 ms a poll there), so both do the same work.
const CONNZ_POLLS: u32 = 10;

/// The `scale_*` scenarios: several connections per role, all unpaced, so
/// a server that spreads work over cores can use them.
fn scaling_scenarios(profile: Profile, k: usize, limit: Duration) -> Vec<Scenario> {
    use Profile::*;
    let n = |full: u64, quick: u64, smoke: u64| match profile {
        Full => full,
        Quick => quick,
        Smoke => smoke,
    };
    let spec = |publishers, subscribers, queue, pairs, payload, msgs| ThroughputSpec {
        payload,
        publishers,
        subscribers,
        queue,
        msgs_per_publisher: msgs,
        paced: false,
        pairs,
    };
    let scenario = |name: &str, summary: String, kind| Scenario {
        name: name.into(),
        summary: format!("{summary}; unpaced"),
        auth: false,
        tls: false,
        jwt: false,
        url_resolver: None,
        baseline: None,
        kind,
        time_limit: limit,
        natrix_shards: None,
        scaling: true,
    };
    let pub_msgs = n(4_000_000, 500_000, 20_000);
    let pair_msgs = n(1_000_000, 125_000, 10_000);
    let fan_msgs = n(150_000, 30_000, 1_000);
    let queue_msgs = n(1_000_000, 125_000, 10_000);
    let requests = n(200_000, 25_000, 1_000);
    let window = 8;
    vec![
        scenario(
            "scale_pub",
            format!("{k} publishers, no subscribers, 16 B, {pub_msgs} msgs each"),
            Kind::Throughput(spec(k, 0, false, false, 16, pub_msgs)),
        ),
        scenario(
            "scale_pairs",
            format!(
                "{k} independent publisher → subscriber pairs, one subject each, 128 B, \
                 {pair_msgs} msgs each"
            ),
            Kind::Throughput(spec(k, k, false, true, 128, pair_msgs)),
        ),
        scenario(
            "scale_fanout",
            format!("{k} publishers → {k} subscribers on one subject, 128 B, {fan_msgs} msgs each"),
            Kind::Throughput(spec(k, k, false, false, 128, fan_msgs)),
        ),
        scenario(
            "scale_queue",
            format!("{k} publishers → queue group of {k}, 128 B, {queue_msgs} msgs each"),
            Kind::Throughput(spec(k, k, true, false, 128, queue_msgs)),
        ),
        scenario(
            "scale_reqrep",
            format!(
                "{k} requesters with {window} requests outstanding each → queue group of {k} \
                 responders, 128 B, {requests} requests each; throughput and p99 round trip"
            ),
            Kind::ReqRep(ReqRepSpec {
                requesters: k,
                responders: k,
                payload: 128,
                requests_per_requester: requests,
                window,
            }),
        ),
    ]
}

fn human_count(n: usize) -> String {
    if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// Whether `name` matches `pat`, where `*` stands for any run of characters.
pub fn glob_match(name: &str, pat: &str) -> bool {
    let Some((first, rest)) = pat.split_once('*') else {
        return name == pat;
    };
    let Some(mut tail) = name.strip_prefix(first) else {
        return false;
    };
    let mut parts: Vec<&str> = rest.split('*').collect();
    let last = parts.pop().unwrap_or("");
    for part in parts {
        match tail.find(part) {
            Some(i) => tail = &tail[i + part.len()..],
            None => return false,
        }
    }
    tail.len() >= last.len() && tail.ends_with(last)
}

/// Resolves `--scenarios`: exact names, `*` globs (`pub_*`, `*_unpaced`),
/// or `all`.
pub fn select(all: Vec<Scenario>, patterns: &[String]) -> Result<Vec<Scenario>> {
    if patterns.is_empty() || patterns.iter().any(|p| p == "all") {
        return Ok(all);
    }
    let matches = |name: &str, pat: &str| glob_match(name, pat);
    for pat in patterns {
        if !all.iter().any(|s| matches(&s.name, pat)) {
            let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
            crate::error::bail!("no scenario matches {pat:?}; known: {}", names.join(", "));
        }
    }
    Ok(all
        .into_iter()
        .filter(|s| patterns.iter().any(|p| matches(&s.name, p)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_covers_required_scenarios() {
        let names: Vec<String> = catalog(Profile::Quick, None, 8)
            .into_iter()
            .map(|s| s.name)
            .collect();
        for want in [
            "pub_16b",
            "pub_256b",
            "pub_4k",
            "pubsub_1to1",
            "fanout_1to10",
            "fanout_1to100",
            "queue_1to4",
            "manypub_4to1",
            "pub_16b_auth",
            "manypub_4to1_auth",
            "reqrep_latency",
            "pubsub_1to1_tls",
            "pub_256b_tls",
            "reqrep_latency_tls",
            "conn_storm",
            "conn_storm_url",
            "conn_storm_url_nocache",
            "idle_mem_10k",
            "pubsub_16b_unpaced",
            "pubsub_4k_unpaced",
            "fanout_1to10_unpaced",
            "queue_1to4_unpaced",
            "manypub_4to1_unpaced",
            "rss_after_burst",
            "scale_pub",
            "scale_pairs",
            "scale_fanout",
            "scale_queue",
            "scale_reqrep",
        ] {
            assert!(names.iter().any(|n| n == want), "missing {want}");
        }
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
    }

    #[test]
    fn auth_scenarios_get_permissions_for_their_subjects() {
        let all = catalog(Profile::Smoke, None, 8);
        let auth = all.iter().find(|s| s.name == "queue_1to4_auth").unwrap();
        let cfg = auth.config();
        assert_eq!(
            cfg.auth.unwrap().publish.last().unwrap(),
            THROUGHPUT_SUBJECT
        );
        assert!(
            matches!(auth.auth(&[]), Ok(Auth::UserPass(u, p)) if u == BENCH_USER && p == BENCH_PASS)
        );
        let plain = all.iter().find(|s| s.name == "queue_1to4").unwrap();
        assert_eq!(plain.config(), ServerConfig::default());
        assert!(matches!(plain.auth(&[]), Ok(Auth::None)));
    }

    #[test]
    fn tls_scenarios_mirror_their_plain_counterparts() {
        for profile in [Profile::Smoke, Profile::Quick, Profile::Full] {
            let all = catalog(profile, None, 8);
            let get = |n: &str| all.iter().find(|s| s.name == n).unwrap();
            for base in ["pubsub_1to1", "pub_256b", "reqrep_latency"] {
                let (plain, tls) = (get(base), get(&format!("{base}_tls")));
                assert!(tls.tls && !plain.tls && !tls.auth);
                assert_eq!(format!("{:?}", tls.kind), format!("{:?}", plain.kind));
                assert!(tls.summary.starts_with(&plain.summary));
                assert!(tls.summary.contains("TLS 1.3"));
                assert_eq!(tls.config(), plain.config());
            }
            assert_eq!(all.iter().filter(|s| s.tls).count(), 3);
        }
    }

    #[test]
    fn jwt_scenarios_mirror_their_baselines_and_only_connects_are_smoked() {
        let users = jwt::Material::mint(2).unwrap().users;
        for profile in [Profile::Quick, Profile::Full] {
            let all = catalog(profile, None, 8);
            let jwt: Vec<&Scenario> = all
                .iter()
                .filter(|s| s.jwt && s.url_resolver.is_none())
                .collect();
            let names: Vec<&str> = jwt.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, ["pubsub_1to1_jwt", "pub_256b_jwt", "conn_storm_jwt"]);
            for sc in jwt {
                let base = sc.baseline.as_deref().unwrap();
                assert_eq!(sc.name, format!("{base}_jwt"));
                let base = all.iter().find(|s| s.name == base).unwrap();
                assert!(!base.jwt && !base.auth && !base.tls && !sc.auth && !sc.tls);
                assert_eq!(sc.config(), base.config(), "the runner adds the operator");
                match (&sc.kind, &base.kind) {
                    (Kind::Storm(a), Kind::Storm(b)) => assert_eq!(a.threads, b.threads),
                    (a, b) => assert_eq!(format!("{a:?}"), format!("{b:?}")),
                }
                match sc.auth(&users) {
                    Ok(Auth::Jwt(u)) => assert!(Arc::ptr_eq(&u, &users[0])),
                    other => panic!("{other:?}"),
                }
                assert!(sc.auth(&[]).is_err());
            }
            assert!(all.iter().filter(|s| !s.jwt).all(|s| s.baseline.is_none()));
        }
        let smoke: Vec<String> = catalog(Profile::Smoke, None, 8)
            .into_iter()
            .filter(|s| s.jwt)
            .map(|s| s.name)
            .collect();
        assert_eq!(smoke, ["conn_storm_jwt", "conn_storm_url"]);
    }

    #[test]
    fn url_resolver_storms_differ_only_in_natrix_cache() {
        for profile in [Profile::Quick, Profile::Full] {
            let all = catalog(profile, None, 8);
            let get = |n: &str| all.iter().find(|s| s.name == n).unwrap();
            let (cached, nocache) = (get("conn_storm_url"), get("conn_storm_url_nocache"));
            let jwt = get("conn_storm_jwt");
            for (sc, cache) in [(cached, true), (nocache, false)] {
                assert!(sc.jwt && !sc.auth && !sc.tls && sc.baseline.is_none());
                assert_eq!(
                    sc.url_resolver,
                    Some(UrlResolver {
                        accounts: 200,
                        natrix_cache: cache
                    })
                );
                match (&sc.kind, &jwt.kind) {
                    (Kind::Storm(a), Kind::Storm(b)) => {
                        assert!(a.rotate_users && !b.rotate_users);
                        assert_eq!((a.connections, a.threads), (b.connections, b.threads));
                    }
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(all.iter().filter(|s| s.url_resolver.is_some()).count(), 2);
        }
        let smoke = catalog(Profile::Smoke, None, 8);
        let url: Vec<&Scenario> = smoke.iter().filter(|s| s.url_resolver.is_some()).collect();
        assert_eq!(url.len(), 1);
        assert!(matches!(&url[0].kind, Kind::Storm(s) if s.connections == 300));
    }

    #[test]
    fn selects_by_name_and_prefix() {
        let all = catalog(Profile::Smoke, None, 8);
        let pick = |p: &[&str]| {
            let p: Vec<String> = p.iter().map(|s| s.to_string()).collect();
            select(all.clone(), &p).map(|v| v.into_iter().map(|s| s.name).collect::<Vec<_>>())
        };
        assert_eq!(pick(&["conn_storm"]).unwrap(), ["conn_storm"]);
        assert_eq!(
            pick(&["pub_*"]).unwrap(),
            [
                "pub_16b",
                "pub_256b",
                "pub_4k",
                "pub_16b_auth",
                "pub_256b_auth",
                "pub_4k_auth",
                "pub_256b_tls"
            ]
        );
        assert_eq!(pick(&[]).unwrap().len(), all.len());
        assert_eq!(pick(&["all"]).unwrap().len(), all.len());
        assert!(pick(&["nope"]).is_err());
        assert_eq!(pick(&["*_unpaced"]).unwrap().len(), 5);
        assert_eq!(pick(&["scale_*"]).unwrap().len(), 5);
    }

    #[test]
    fn globs() {
        assert!(glob_match("pub_16b", "pub_16b"));
        assert!(glob_match("pub_16b", "pub_*"));
        assert!(glob_match("pub_16b_auth", "*_auth"));
        assert!(glob_match("pub_16b_auth", "pub*auth"));
        assert!(glob_match("x", "*"));
        assert!(!glob_match("pub_16b", "*_auth"));
        assert!(!glob_match("ab", "a*b*b"));
        assert!(glob_match("abb", "a*b*b"));
    }

    #[test]
    fn new_scenarios_are_unpaced_and_flagged() {
        for profile in [Profile::Smoke, Profile::Quick, Profile::Full] {
            let all = catalog(profile, None, 8);
            let scale: Vec<&Scenario> = all.iter().filter(|s| s.scaling).collect();
            assert_eq!(scale.len(), 5);
            assert!(scale.iter().all(|s| s.name.starts_with("scale_")));
            for s in all
                .iter()
                .filter(|s| s.name.ends_with("_unpaced") || s.scaling)
            {
                match &s.kind {
                    Kind::Throughput(t) => assert!(!t.paced, "{}", s.name),
                    Kind::ReqRep(r) => assert_eq!((r.requesters, r.responders), (8, 8)),
                    other => panic!("{}: {other:?}", s.name),
                }
            }
            let pairs = all.iter().find(|s| s.name == "scale_pairs").unwrap();
            assert!(matches!(&pairs.kind, Kind::Throughput(t) if t.pairs && t.publishers == 8));
            let rss = all.iter().find(|s| s.name == "rss_after_burst").unwrap();
            assert_eq!(rss.natrix_shards, Some(1));
            assert!(matches!(&rss.kind, Kind::Burst(b) if b.subscribers == 4 && b.payload == 1024));
            assert!(all
                .iter()
                .filter(|s| s.name != "rss_after_burst")
                .all(|s| s.natrix_shards.is_none()));
            let paced = all.iter().find(|s| s.name == "pubsub_1to1").unwrap();
            assert!(matches!(&paced.kind, Kind::Throughput(t) if t.paced));
        }
        let four = catalog(Profile::Quick, None, 4);
        let fan = four.iter().find(|s| s.name == "scale_fanout").unwrap();
        assert!(
            matches!(&fan.kind, Kind::Throughput(t) if t.publishers == 4 && t.subscribers == 4)
        );
    }
}
