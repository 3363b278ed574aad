//! The benchmark scenarios: what each one measures, its size per profile,
//! and the server configuration it needs.

mod connections;
mod latency;
mod throughput;

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::client::ConnectOpts;
use crate::error::Result;
use crate::pin::Pinner;
use crate::server::{Permissions, Server, ServerConfig, BENCH_PASS, BENCH_USER};

pub use connections::{IdleSpec, StormSpec};
pub use latency::{new_latency_histogram, LatencySpec, LATENCY_SUBJECTS};
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
}

/// What a scenario runs against.
pub struct Target<'a> {
    pub server: &'a mut Server,
    pub opts: ConnectOpts,
    pub pinner: Pinner,
    /// Every loop in a scenario gives up (with an error) at this instant.
    pub deadline: Instant,
}

#[derive(Clone, Debug)]
pub enum Kind {
    Throughput(ThroughputSpec),
    Latency(LatencySpec),
    Storm(StormSpec),
    Idle(IdleSpec),
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub summary: String,
    pub auth: bool,
    /// Clients connect over TLS; the server requires it.
    pub tls: bool,
    pub kind: Kind,
    pub time_limit: Duration,
}

impl Scenario {
    pub fn config(&self) -> ServerConfig {
        let subjects: &[&str] = match &self.kind {
            Kind::Latency(_) => &LATENCY_SUBJECTS,
            _ => &[THROUGHPUT_SUBJECT],
        };
        ServerConfig {
            auth: self.auth.then(|| Permissions::bench_set(subjects)),
            // The certificate files are per run; the runner fills them in.
            tls: None,
        }
    }

    pub fn credentials(&self) -> Option<(String, String)> {
        self.auth
            .then(|| (BENCH_USER.to_string(), BENCH_PASS.to_string()))
    }

    pub fn run(&self, target: &mut Target<'_>) -> Result<Outcome> {
        let outcome = match &self.kind {
            Kind::Throughput(spec) => throughput::run(spec, target),
            Kind::Latency(spec) => latency::run(spec, target),
            Kind::Storm(spec) => connections::storm(spec, target),
            Kind::Idle(spec) => connections::idle(spec, target),
        };
        // A crash explains any client-side error better than the error does.
        target.server.check_alive()?;
        outcome
    }

    /// Largest number of file descriptors the client needs at once.
    pub fn fds_needed(&self) -> usize {
        match &self.kind {
            Kind::Idle(spec) => spec.connections,
            Kind::Throughput(spec) => spec.publishers + spec.subscribers,
            _ => 64,
        }
    }
}

/// Every scenario, in report order, sized for `profile`.
pub fn catalog(profile: Profile, latency_rate: Option<u64>) -> Vec<Scenario> {
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
                kind: Kind::Throughput(spec.clone()),
                time_limit: limit,
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
            kind: Kind::Throughput(spec.clone()),
            time_limit: limit,
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
            kind: Kind::Latency(LatencySpec {
                rate,
                duration: Duration::from_secs(secs),
                payload: 16,
            }),
            time_limit: Duration::from_secs(secs) + limit,
        });
    }

    let storm = n(20_000, 10_000, 300) as usize;
    out.push(Scenario {
        name: "conn_storm".into(),
        summary: format!("{storm} connects: INFO, CONNECT+PING, PONG, close; 4 client threads"),
        auth: false,
        tls: false,
        kind: Kind::Storm(StormSpec {
            connections: storm,
            threads: 4,
        }),
        time_limit: limit,
    });

    let idle = n(10_000, 10_000, 300) as usize;
    out.push(Scenario {
        name: format!("idle_mem_{}", human_count(idle)),
        summary: format!("server RSS growth per idle connection with {idle} connections open"),
        auth: false,
        tls: false,
        kind: Kind::Idle(IdleSpec {
            connections: idle,
            threads: 4,
        }),
        time_limit: limit,
    });
    out
}

fn human_count(n: usize) -> String {
    if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// Resolves `--scenarios`: exact names, `prefix*` globs, or `all`.
pub fn select(all: Vec<Scenario>, patterns: &[String]) -> Result<Vec<Scenario>> {
    if patterns.is_empty() || patterns.iter().any(|p| p == "all") {
        return Ok(all);
    }
    let matches = |name: &str, pat: &str| match pat.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pat,
    };
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
        let names: Vec<String> = catalog(Profile::Quick, None)
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
            "idle_mem_10k",
        ] {
            assert!(names.iter().any(|n| n == want), "missing {want}");
        }
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
    }

    #[test]
    fn auth_scenarios_get_permissions_for_their_subjects() {
        let all = catalog(Profile::Smoke, None);
        let auth = all.iter().find(|s| s.name == "queue_1to4_auth").unwrap();
        let cfg = auth.config();
        assert_eq!(
            cfg.auth.unwrap().publish.last().unwrap(),
            THROUGHPUT_SUBJECT
        );
        assert!(auth.credentials().is_some());
        let plain = all.iter().find(|s| s.name == "queue_1to4").unwrap();
        assert_eq!(plain.config(), ServerConfig::default());
        assert!(plain.credentials().is_none());
    }

    #[test]
    fn tls_scenarios_mirror_their_plain_counterparts() {
        for profile in [Profile::Smoke, Profile::Quick, Profile::Full] {
            let all = catalog(profile, None);
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
    fn selects_by_name_and_prefix() {
        let all = catalog(Profile::Smoke, None);
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
    }
}
