//! Runs the plan: every scenario, every round, each server in turn on a
//! freshly started process, then writes the report and artifacts.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use crate::accounts::AccountServer;
use crate::client::ConnectOpts;
use crate::error::{Context, Error, Result};
use crate::hgrm;
use crate::jwt;
use crate::pin::Pinner;
use crate::plot::{self, Series};
use crate::procstat;
use crate::report::NATRIX;
use crate::report::{self, LatencyFiles, Record, ReportInput, RunData, ScenarioInfo, Shape};
use crate::scenarios::{
    new_latency_histogram, Diagnostic, Kind, Outcome, Scenario, Target, UrlResolver, LOSS,
    SLOW_CONSUMER,
};
use crate::selftest::{self, SelfTestRow};
use crate::server::{Server, ServerConfig, ServerSpec};
use crate::stats::fmt_num;
use crate::tls;

pub struct Plan {
    pub scenarios: Vec<Scenario>,
    /// In run order within a round; the first is natrix.
    pub servers: Vec<ServerSpec>,
    pub rounds: usize,
    pub out_dir: PathBuf,
    pub pinner: Pinner,
    pub meta: Vec<(String, String)>,
}

/// Returns whether every run succeeded.
pub fn execute(plan: &Plan) -> Result<bool> {
    let out = &plan.out_dir;
    create_dirs(out)?;
    println!(
        "natrix-bench: {} scenarios × {} rounds × {} → {}",
        plan.scenarios.len(),
        plan.rounds,
        plan.servers
            .iter()
            .map(|s| s.label)
            .collect::<Vec<_>>()
            .join(" + "),
        out.display()
    );

    // One throwaway CA and server certificate serve every TLS scenario.
    let tls = if plan.scenarios.iter().any(|s| s.tls) {
        Some(tls::prepare(&out.join("tls")).context("TLS certificates")?)
    } else {
        None
    };

    // One operator, account and set of users serve every JWT scenario
    // with a memory resolver; the URL resolver scenarios mint their own.
    let jwt = if plan
        .scenarios
        .iter()
        .any(|s| s.jwt && s.url_resolver.is_none())
    {
        let m = jwt::Material::mint(JWT_USERS).context("mint JWTs")?;
        m.write(&out.join("jwt"))?;
        println!(
            "JWT: operator {}, account {}, {} users → {}",
            m.operator_public,
            m.accounts[0].0,
            m.users.len(),
            out.join("jwt").display()
        );
        Some(m)
    } else {
        None
    };

    let selftest = selftest::run(Duration::from_millis(100), tls.is_some());
    print_selftest(&selftest);

    let mut records = Vec::new();
    let mut histograms: BTreeMap<(String, &'static str), Histogram<u64>> = BTreeMap::new();
    let total = plan.scenarios.len();
    for (i, sc) in plan.scenarios.iter().enumerate() {
        let mut server_config = sc.config();
        if sc.tls {
            server_config.tls = tls.as_ref().map(|m| m.server.clone());
        }
        // A URL resolver scenario's accounts and the account server that
        // serves them live as long as the scenario's runs.
        let url = match sc.url_resolver {
            Some(u) => Some(UrlRun::start(sc, u, out)?),
            None => None,
        };
        let jwt = match &url {
            Some(u) => Some(&u.material),
            None => jwt.as_ref(),
        };
        if sc.jwt {
            server_config.operator = match (&url, jwt) {
                (Some(u), _) => Some(u.operator_config()),
                (None, m) => m.map(jwt::Material::server_config),
            };
        }
        let configs = write_configs(out, sc, &server_config, &plan.servers)?;
        for round in 1..=plan.rounds {
            for (spec, config) in plan.servers.iter().zip(&configs) {
                let log = out
                    .join("logs")
                    .join(format!("{}.{}.r{round}.log", sc.name, spec.label));
                let material = RunMaterial {
                    tls: tls.as_ref(),
                    jwt,
                    accounts: url.as_ref().map(|u| &u.server),
                };
                let result = run_one(sc, spec, config, &log, &plan.pinner, material);
                println!(
                    "[{:>2}/{total}] {:<20} round {round}/{}  {:<9}  {}",
                    i + 1,
                    sc.name,
                    plan.rounds,
                    spec.label,
                    summary_line(&result)
                );
                if let Some(d) = result
                    .as_ref()
                    .ok()
                    .and_then(|o| o.diagnostics.iter().find(|d| d.name == ACCOUNT_REQUESTS))
                {
                    println!("{:>40}{}: {}", "", d.name, d.value);
                }
                let result = result.map(|mut o| {
                    if let Some(h) = o.latency.take() {
                        let merged = histograms
                            .entry((sc.name.clone(), spec.label))
                            .or_insert_with(new_latency_histogram);
                        merged.add(&h).expect("histograms share bounds");
                    }
                    RunData {
                        metrics: o.metrics,
                        diagnostics: o.diagnostics,
                        cpu: o.cpu,
                    }
                });
                records.push(Record {
                    scenario: sc.name.clone(),
                    server: spec.label,
                    round,
                    result: result.map_err(|e| e.0),
                });
            }
        }
    }

    let latency = write_latency_files(out, plan, &histograms)?;
    let infos: Vec<ScenarioInfo> = plan.scenarios.iter().map(scenario_info).collect();
    let input = ReportInput {
        meta: plan.meta.clone(),
        servers: plan.servers.iter().map(|s| s.label).collect(),
        scenarios: &infos,
        records: &records,
        selftest: &selftest,
        latency: &latency,
    };
    fs::write(out.join("report.md"), report::render(&input))?;
    fs::write(out.join("results.tsv"), report::results_tsv(&records))?;

    println!("\n{}", report::markdown_table(&report::table_rows(&input)));
    let failures = records.iter().filter(|r| r.result.is_err()).count();
    if failures > 0 {
        println!("{failures} run(s) FAILED; see the Failures section of the report.");
    }
    println!("report: {}", out.join("report.md").display());
    Ok(failures == 0)
}

/// Users minted for JWT scenarios: one per client thread of the JWT
/// connection storm (4), with room to spare.
const JWT_USERS: usize = 8;

/// Per-run credentials the scenarios may need.
#[derive(Clone, Copy, Default)]
pub struct RunMaterial<'a> {
    pub tls: Option<&'a tls::Material>,
    pub jwt: Option<&'a jwt::Material>,
    /// URL resolver scenarios: the account server, whose request count
    /// during the run becomes a diagnostic.
    pub accounts: Option<&'a AccountServer>,
}

/// A URL resolver scenario's own operator, accounts (one user each) and
/// the account server serving them.
struct UrlRun {
    material: jwt::Material,
    server: AccountServer,
    natrix_cache: bool,
}

impl UrlRun {
    fn start(sc: &Scenario, u: UrlResolver, out: &Path) -> Result<UrlRun> {
        let material = jwt::Material::mint_accounts(u.accounts, u.accounts)
            .context(format_args!("{}: mint JWTs", sc.name))?;
        let dir = out.join("jwt").join(&sc.name);
        material.write(&dir)?;
        let server = AccountServer::start(&material.accounts)?;
        println!(
            "{}: {} accounts with a user each → {}; account server {}",
            sc.name,
            material.accounts.len(),
            dir.display(),
            server.base_url()
        );
        Ok(UrlRun {
            material,
            server,
            natrix_cache: u.natrix_cache,
        })
    }

    fn operator_config(&self) -> jwt::OperatorConfig {
        self.material.with_resolver(jwt::Resolver::Url {
            base: self.server.base_url(),
            natrix_cache: self.natrix_cache,
        })
    }
}

/// Writes the scenario's configuration: `<name>.conf` when every server
/// gets the same text, else `<name>.<label>.conf` each (natrix-only
/// settings go to a natrix binary only, never to a stand-in). Returns the
/// path for each server, in `servers` order.
fn write_configs(
    out: &Path,
    sc: &Scenario,
    config: &ServerConfig,
    servers: &[ServerSpec],
) -> Result<Vec<PathBuf>> {
    let texts: Vec<String> = servers
        .iter()
        .map(|s| config.render(&sc.name, s.takes_shards))
        .collect();
    let shared = texts.windows(2).all(|w| w[0] == w[1]);
    let mut paths = Vec::with_capacity(servers.len());
    for (spec, text) in servers.iter().zip(&texts) {
        let name = if shared {
            format!("{}.conf", sc.name)
        } else {
            format!("{}.{}.conf", sc.name, spec.label)
        };
        let path = out.join("configs").join(name);
        fs::write(&path, text).context(format_args!("write {}", path.display()))?;
        paths.push(path);
    }
    Ok(paths)
}

/// Starts the server, runs the scenario against it, stops it. The
/// server's CPU time during the run is recorded (per shard for natrix).
/// A server that does not start (e.g. refuses the scenario's config) is
/// this run's failure, with the server's log tail.
pub fn run_one(
    sc: &Scenario,
    spec: &ServerSpec,
    config: &Path,
    log: &Path,
    pinner: &Pinner,
    material: RunMaterial<'_>,
) -> Result<Outcome> {
    let jwt_users = match (sc.jwt, material.jwt) {
        (true, Some(m)) => m.users.clone(),
        _ => Vec::new(),
    };
    let auth = sc.auth(&jwt_users)?;
    let spec = match sc.natrix_shards {
        Some(n) if spec.label == NATRIX => spec.with_shards(n),
        _ => spec.clone(),
    };
    let requests_before = material.accounts.map(AccountServer::requests);
    let mut server = Server::start(&spec, config, log, sc.needs_monitor())
        .context(format_args!("start {}", spec.label))?;
    let cpu_before = procstat::sample(server.pid());
    let opts = ConnectOpts {
        addr: server.addr,
        auth,
        name: "natrix-bench".into(),
        tls: material.tls.filter(|_| sc.tls).map(|m| m.client.clone()),
    };
    let mut target = Target {
        server: &mut server,
        opts,
        pinner: pinner.clone(),
        deadline: Instant::now() + sc.time_limit,
        jwt_users,
    };
    let outcome = sc.run(&mut target);
    let cpu_after = procstat::sample(server.pid());
    server.stop();
    let mut outcome = outcome.map_err(|e| with_server_log(e, log))?;
    if let (Some(accounts), Some(before)) = (material.accounts, requests_before) {
        // From before start (the base URL check at start-up included) to
        // the stop.
        let asked = accounts.requests() - before;
        outcome.diagnostics.push(Diagnostic {
            name: ACCOUNT_REQUESTS,
            value: asked as f64,
        });
    }
    if let (Ok(before), Ok(after)) = (cpu_before, cpu_after) {
        let used = after.since(&before);
        outcome.diagnostics.push(Diagnostic {
            name: SERVER_CPU,
            value: used.process,
        });
        outcome.cpu = Some(used);
    }
    Ok(outcome)
}

/// A loss or slow-consumer failure gets the server's own account of it,
/// if its log mentions a slow consumer.
fn with_server_log(e: Error, log: &Path) -> Error {
    if !(e.0.starts_with(SLOW_CONSUMER) || e.0.starts_with(LOSS)) {
        return e;
    }
    let text = fs::read_to_string(log).unwrap_or_default();
    match text
        .lines()
        .find(|l| l.to_ascii_lowercase().contains("slow consumer"))
    {
        Some(line) => {
            let line: String = line.trim().chars().take(240).collect();
            Error(format!("{} (server log: {line})", e.0))
        }
        None => e,
    }
}

/// Diagnostic: requests the account server answered during a URL
/// resolver run.
pub const ACCOUNT_REQUESTS: &str = "account server requests";

/// Diagnostic: the server's CPU seconds (user + system) during a run.
pub const SERVER_CPU: &str = "server CPU (s)";

/// The output directory with its `configs/` and `logs/`.
pub fn create_dirs(out: &Path) -> Result<()> {
    for dir in [out.to_path_buf(), out.join("configs"), out.join("logs")] {
        fs::create_dir_all(&dir).context(format_args!("create {}", dir.display()))?;
    }
    Ok(())
}

pub fn summary_line(result: &Result<Outcome>) -> String {
    match result {
        Ok(o) => {
            let n = o.metrics.len();
            let latency = o.metrics.iter().any(|m| m.name == "p99.99");
            o.metrics
                .iter()
                .enumerate()
                .filter(|(i, m)| match (n <= 2, latency) {
                    (true, _) => true,
                    (false, true) => matches!(m.name, "p50" | "p99" | "p99.99" | "max"),
                    // e.g. RSS after each burst: the first and the last.
                    (false, false) => *i == 0 || *i == n - 1,
                })
                .map(|(_, m)| format!("{} {} {}", m.name, fmt_num(m.value), m.unit))
                .collect::<Vec<_>>()
                .join(", ")
        }
        Err(e) => {
            let mut lines = e.0.lines();
            let first = lines.next().unwrap_or_default();
            // A server that would not start: its last log line says why.
            match lines.rev().find(|l| !l.trim().is_empty()) {
                Some(last) if first.ends_with("log tail:") => {
                    format!("FAILED: {first} … {}", last.trim())
                }
                _ => format!("FAILED: {first}"),
            }
        }
    }
}

pub fn print_selftest(rows: &[SelfTestRow]) {
    println!("client self-test (in memory, per thread):");
    for r in rows {
        let tls = match r.tls {
            Some(t) => format!(
                "   TLS: encode+seal {:>7} msgs/s   open+parse {:>7} msgs/s",
                fmt_num(t.encode_rate),
                fmt_num(t.parse_rate)
            ),
            None => String::new(),
        };
        println!(
            "  {:>5} B  encode {:>7} msgs/s   parse {:>7} msgs/s{tls}",
            r.payload,
            fmt_num(r.encode_rate),
            fmt_num(r.parse_rate)
        );
    }
}

fn write_latency_files(
    out: &Path,
    plan: &Plan,
    histograms: &BTreeMap<(String, &'static str), Histogram<u64>>,
) -> Result<Vec<LatencyFiles>> {
    const COLORS: [&str; 2] = ["#d9480f", "#1c7ed6"];
    let mut files = Vec::new();
    for sc in plan
        .scenarios
        .iter()
        .filter(|s| matches!(s.kind, Kind::Latency(_)))
    {
        let mut hgrm_files = Vec::new();
        let mut series = Vec::new();
        for (i, spec) in plan.servers.iter().enumerate() {
            let Some(h) = histograms.get(&(sc.name.clone(), spec.label)) else {
                continue;
            };
            let name = format!("{}.{}.hgrm", sc.name, spec.label);
            fs::write(out.join(&name), hgrm::percentile_distribution(h, 1000.0))?;
            hgrm_files.push((spec.label, name));
            series.push(Series {
                label: spec.label,
                color: COLORS[i % COLORS.len()],
                points: hgrm::quantile_points(h)
                    .into_iter()
                    .map(|(q, v)| (q, v as f64 / 1000.0))
                    .collect(),
                count: h.len(),
            });
        }
        if series.is_empty() {
            continue;
        }
        let svg = format!("{}.svg", sc.name);
        let title = format!("{}: {} (all rounds)", sc.name, sc.summary);
        fs::write(out.join(&svg), plot::percentile_svg(&title, &series))?;
        files.push(LatencyFiles {
            scenario: sc.name.clone(),
            svg,
            hgrm: hgrm_files,
        });
    }
    Ok(files)
}

fn scenario_info(sc: &Scenario) -> ScenarioInfo {
    let shape = match &sc.kind {
        Kind::Throughput(t) => Some(Shape {
            payload: t.payload,
            publishers: t.publishers,
            subscribers: t.subscribers,
            queue: t.queue,
            pairs: t.pairs,
        }),
        _ => None,
    };
    ScenarioInfo {
        name: sc.name.clone(),
        summary: sc.summary.clone(),
        shape,
        tls: sc.tls,
        baseline: sc.baseline.clone(),
    }
}

/// UTC `YYYYMMDD-HHMMSS`, for result directory names.
pub fn timestamp(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_quote_the_server_log() {
        let dir = std::env::temp_dir().join(format!("natrix-bench-log-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let log = dir.join("s.log");
        fs::write(
            &log,
            "[1] [INF] ready\n[1] [INF] 127.0.0.1:1 - cid:8 - Slow Consumer Detected: MaxPending of 67108864 Exceeded\n",
        )
        .unwrap();
        let e = with_server_log(Error("SLOW CONSUMER: subscriber 6: closed".into()), &log);
        assert_eq!(
            e.0,
            "SLOW CONSUMER: subscriber 6: closed (server log: [1] [INF] 127.0.0.1:1 - cid:8 - \
             Slow Consumer Detected: MaxPending of 67108864 Exceeded)"
        );
        let e = with_server_log(Error("timed out".into()), &log);
        assert_eq!(e.0, "timed out");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_server_that_would_not_start_says_why_in_one_line() {
        let e: Result<Outcome> = Err(Error(
            "start natrix: server exited during startup (exit status: 1); log tail:\n\
             natrix: x.conf: operator (JWT) mode is not supported\n"
                .into(),
        ));
        assert_eq!(
            summary_line(&e),
            "FAILED: start natrix: server exited during startup (exit status: 1); log tail: … \
             natrix: x.conf: operator (JWT) mode is not supported"
        );
        let e: Result<Outcome> = Err(Error("LOSS: subscriber 1: gap\nmore".into()));
        assert_eq!(summary_line(&e), "FAILED: LOSS: subscriber 1: gap");
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(UNIX_EPOCH), "19700101-000000");
        assert_eq!(
            timestamp(UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_661)),
            "20000229-010101"
        );
        assert_eq!(
            timestamp(UNIX_EPOCH + Duration::from_secs(1_798_761_599)),
            "20261231-235959"
        );
    }
}
