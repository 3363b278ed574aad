//! `--scaling`: the `scale_*` scenarios at several core counts. natrix runs
//! with `--shards K`, the reference with `GOMAXPROCS=K`, and both under
//! `taskset -c` on the same K CPUs. The report shows throughput against
//! cores for both servers, with ratios and speed-ups, a plot, and each
//! run's server CPU time (per shard for natrix, so imbalance shows).

use std::fmt::Write;
use std::fs;
use std::path::PathBuf;

use crate::error::{Context, Result};
use crate::pin::Pinner;
use crate::plot::{self, LineSeries, PALETTE};
use crate::report::{self, Record, RunData, NATRIX, REFERENCE};
use crate::runner;
use crate::scenarios::{Better, Scenario};
use crate::selftest;
use crate::server::ServerSpec;
use crate::stats::{fmt_ratio, fmt_summary, ratio, summarize};

pub struct ScalingPlan {
    pub scenarios: Vec<Scenario>,
    /// natrix (or a stand-in), without `--shards`; the first server.
    pub natrix: ServerSpec,
    pub reference: Option<ServerSpec>,
    pub core_counts: Vec<usize>,
    pub cpu_base: usize,
    /// CPUs this process may run on (the servers' CPU sets come from these).
    pub available_cpus: Vec<usize>,
    pub client_cpus: Option<Vec<usize>>,
    pub rounds: usize,
    pub out_dir: PathBuf,
    pub pinner: Pinner,
    pub meta: Vec<(String, String)>,
}

/// The servers' CPUs for one core count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuSet {
    pub cores: usize,
    /// Sorted; fewer than `cores` when the machine has fewer CPUs.
    pub cpus: Vec<usize>,
}

impl CpuSet {
    pub fn oversubscribed(&self) -> bool {
        self.cpus.len() < self.cores
    }

    /// `taskset -c` list: "0-3", "2,5".
    pub fn list(&self) -> String {
        fmt_cpu_list(&self.cpus)
    }
}

/// `cores` CPUs from the available ones, starting at the first at or above
/// `base` and wrapping around; all of them if there are fewer than `cores`
/// (oversubscribed: the server gets more shards or Go procs than CPUs).
pub fn cpu_set(cores: usize, base: usize, available: &[usize]) -> CpuSet {
    let mut avail = available.to_vec();
    avail.sort_unstable();
    avail.dedup();
    if avail.is_empty() {
        return CpuSet {
            cores,
            cpus: Vec::new(),
        };
    }
    let start = avail.iter().position(|&c| c >= base).unwrap_or(0);
    let take = cores.min(avail.len());
    let mut cpus: Vec<usize> = (0..take)
        .map(|i| avail[(start + i) % avail.len()])
        .collect();
    cpus.sort_unstable();
    CpuSet { cores, cpus }
}

/// Compact CPU list: [0,1,2,3,6] → "0-3,6".
pub fn fmt_cpu_list(cpus: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        parts.push(if j > i + 1 {
            format!("{}-{}", cpus[i], cpus[j])
        } else if j == i + 1 {
            format!("{},{}", cpus[i], cpus[j])
        } else {
            cpus[i].to_string()
        });
        i = j + 1;
    }
    parts.join(",")
}

/// Server specs for one core count: natrix with `--shards K` (a stand-in
/// that does not take the flag gets `GOMAXPROCS=K`, like the reference),
/// both pinned to `set`.
pub fn specs_for(plan: &ScalingPlan, set: &CpuSet) -> Vec<ServerSpec> {
    let k = set.cores;
    let pinned = |spec: &ServerSpec| ServerSpec {
        cpus: (!set.cpus.is_empty()).then(|| set.list()),
        ..spec.clone()
    };
    let gomaxprocs = |spec: ServerSpec| {
        let mut spec = spec;
        spec.env.retain(|(key, _)| key != "GOMAXPROCS");
        spec.env.push(("GOMAXPROCS".into(), k.to_string()));
        spec
    };
    let natrix = if plan.natrix.takes_shards {
        pinned(&plan.natrix.with_shards(k))
    } else {
        gomaxprocs(pinned(&plan.natrix))
    };
    let mut specs = vec![natrix];
    if let Some(r) = &plan.reference {
        specs.push(gomaxprocs(pinned(r)));
    }
    specs
}

/// One run in scaling mode.
#[derive(Clone, Debug)]
pub struct ScalingRecord {
    pub scenario: String,
    pub cores: usize,
    pub server: &'static str,
    pub round: usize,
    pub result: Result<RunData, String>,
}

/// Returns whether every run succeeded.
pub fn execute(plan: &ScalingPlan) -> Result<bool> {
    let out = &plan.out_dir;
    runner::create_dirs(out)?;
    let sets: Vec<CpuSet> = plan
        .core_counts
        .iter()
        .map(|&k| cpu_set(k, plan.cpu_base, &plan.available_cpus))
        .collect();
    let labels: Vec<&str> = std::iter::once(plan.natrix.label)
        .chain(plan.reference.as_ref().map(|r| r.label))
        .collect();
    println!(
        "natrix-bench --scaling: {} scenarios × cores {:?} × {} rounds × {} → {}",
        plan.scenarios.len(),
        plan.core_counts,
        plan.rounds,
        labels.join(" + "),
        out.display()
    );
    for set in &sets {
        println!(
            "  {} core(s): servers on CPUs {}{}",
            set.cores,
            set.list(),
            if set.oversubscribed() {
                " (oversubscribed)"
            } else {
                ""
            }
        );
    }
    let selftest = selftest::run(std::time::Duration::from_millis(100), false);
    runner::print_selftest(&selftest);

    let mut records = Vec::new();
    let total = plan.scenarios.len() * sets.len();
    let mut step = 0;
    for sc in &plan.scenarios {
        let config = out.join("configs").join(format!("{}.conf", sc.name));
        // Scaling scenarios carry no natrix-only settings: one config for both.
        fs::write(&config, sc.config().render(&sc.name, false))
            .context(format_args!("write {}", config.display()))?;
        for set in &sets {
            step += 1;
            let specs = specs_for(plan, set);
            for round in 1..=plan.rounds {
                for spec in &specs {
                    let log = out.join("logs").join(format!(
                        "{}.c{}.{}.r{round}.log",
                        sc.name, set.cores, spec.label
                    ));
                    let result = runner::run_one(
                        sc,
                        spec,
                        &config,
                        &log,
                        &plan.pinner,
                        runner::RunMaterial::default(),
                    );
                    let line = runner::summary_line(&result);
                    let cpu = result
                        .as_ref()
                        .ok()
                        .and_then(|o| o.cpu.as_ref())
                        .map(|c| {
                            if c.shards.is_empty() {
                                format!("  [CPU {:.2} s]", c.process)
                            } else {
                                format!("  [shard CPU s: {}]", c.shards_line())
                            }
                        })
                        .unwrap_or_default();
                    println!(
                        "[{step:>2}/{total}] {:<14} {} core(s)  round {round}/{}  {:<9}  {line}{cpu}",
                        sc.name, set.cores, plan.rounds, spec.label
                    );
                    records.push(ScalingRecord {
                        scenario: sc.name.clone(),
                        cores: set.cores,
                        server: spec.label,
                        round,
                        result: result
                            .map(|o| RunData {
                                metrics: o.metrics,
                                diagnostics: o.diagnostics,
                                cpu: o.cpu,
                            })
                            .map_err(|e| e.0),
                    });
                }
            }
        }
    }

    let infos: Vec<(String, String)> = plan
        .scenarios
        .iter()
        .map(|s| (s.name.clone(), s.summary.clone()))
        .collect();
    let svg_name = "scaling.svg";
    fs::write(
        out.join(svg_name),
        scaling_plot(&infos, &plan.core_counts, &labels, &records),
    )?;
    let notes = cpu_notes(&sets, plan.client_cpus.as_deref(), plan.natrix.takes_shards);
    let input = ScalingInput {
        meta: plan.meta.clone(),
        scenarios: &infos,
        core_counts: &plan.core_counts,
        servers: &labels,
        records: &records,
        cpu_sets: &sets,
        notes: &notes,
        svg: Some(svg_name),
    };
    fs::write(out.join("report.md"), render(&input))?;
    fs::write(
        out.join("results.tsv"),
        report::results_tsv(&flat_records(&records)),
    )?;

    println!("\n{}", throughput_table(&input));
    for n in &notes {
        println!("note: {n}");
    }
    let failures = records.iter().filter(|r| r.result.is_err()).count();
    if failures > 0 {
        println!("{failures} run(s) FAILED; see the Failures section of the report.");
    }
    println!("report: {}", out.join("report.md").display());
    Ok(failures == 0)
}

/// Scenario names carry the core count (`scale_pairs@4`) in results.tsv.
fn flat_records(records: &[ScalingRecord]) -> Vec<Record> {
    records
        .iter()
        .map(|r| Record {
            scenario: format!("{}@{}", r.scenario, r.cores),
            server: r.server,
            round: r.round,
            result: r.result.clone(),
        })
        .collect()
}

/// Caveats about where servers and clients ran.
pub fn cpu_notes(
    sets: &[CpuSet],
    client_cpus: Option<&[usize]>,
    natrix_takes_shards: bool,
) -> Vec<String> {
    let mut notes = Vec::new();
    let over: Vec<String> = sets
        .iter()
        .filter(|s| s.oversubscribed())
        .map(|s| format!("{} on CPUs {}", s.cores, s.list()))
        .collect();
    if !over.is_empty() {
        notes.push(format!(
            "oversubscribed: this machine has fewer CPUs than some core counts, so those runs \
             put more shards (natrix) or Go procs (reference) than CPUs: {}. Their numbers \
             show contention, not scaling.",
            over.join("; ")
        ));
    }
    match client_cpus {
        None => notes.push(
            "clients were not pinned (--client-cpus), so they may have shared CPUs with the \
             servers."
                .into(),
        ),
        Some(c) => {
            let shared: Vec<String> = sets
                .iter()
                .filter(|s| s.cpus.iter().any(|x| c.contains(x)))
                .map(|s| s.cores.to_string())
                .collect();
            if !shared.is_empty() {
                notes.push(format!(
                    "clients (CPUs {}) shared CPUs with the servers at {} core(s).",
                    fmt_cpu_list(c),
                    shared.join(", ")
                ));
            }
        }
    }
    if !natrix_takes_shards {
        notes.push(
            "the natrix binary does not take --shards (a nats-server stand-in?); it ran with \
             GOMAXPROCS=K like the reference."
                .into(),
        );
    }
    notes
}

pub struct ScalingInput<'a> {
    pub meta: Vec<(String, String)>,
    /// (name, summary) in report order.
    pub scenarios: &'a [(String, String)],
    pub core_counts: &'a [usize],
    pub servers: &'a [&'a str],
    pub records: &'a [ScalingRecord],
    pub cpu_sets: &'a [CpuSet],
    pub notes: &'a [String],
    pub svg: Option<&'a str>,
}

fn ok_runs<'r>(
    records: &'r [ScalingRecord],
    scenario: &'r str,
    cores: usize,
    server: &'r str,
) -> impl Iterator<Item = &'r RunData> + 'r {
    records
        .iter()
        .filter(move |r| r.scenario == scenario && r.cores == cores && r.server == server)
        .filter_map(|r| r.result.as_ref().ok())
}

fn failed_runs(records: &[ScalingRecord], scenario: &str, cores: usize, server: &str) -> usize {
    records
        .iter()
        .filter(|r| r.scenario == scenario && r.cores == cores && r.server == server)
        .filter(|r| r.result.is_err())
        .count()
}

fn metric_values(
    records: &[ScalingRecord],
    scenario: &str,
    cores: usize,
    server: &str,
    metric: &str,
) -> Vec<f64> {
    ok_runs(records, scenario, cores, server)
        .flat_map(|d| {
            d.metrics
                .iter()
                .filter(|m| m.name == metric)
                .map(|m| m.value)
        })
        .collect()
}

/// Metric names of a scenario, in first-seen order.
fn metric_names(records: &[ScalingRecord], scenario: &str) -> Vec<(&'static str, Better)> {
    let mut out: Vec<(&'static str, Better)> = Vec::new();
    for d in records
        .iter()
        .filter(|r| r.scenario == scenario)
        .filter_map(|r| r.result.as_ref().ok())
    {
        for m in &d.metrics {
            if !out.iter().any(|(n, _)| *n == m.name) {
                out.push((m.name, m.better));
            }
        }
    }
    out
}

fn median(
    records: &[ScalingRecord],
    scenario: &str,
    cores: usize,
    server: &str,
    metric: &str,
) -> Option<f64> {
    summarize(&metric_values(records, scenario, cores, server, metric)).map(|s| s.median)
}

fn cell(
    records: &[ScalingRecord],
    scenario: &str,
    cores: usize,
    server: &str,
    metric: &str,
    ran: bool,
) -> String {
    if !ran {
        return "—".into();
    }
    let failed = failed_runs(records, scenario, cores, server);
    match summarize(&metric_values(records, scenario, cores, server, metric)) {
        Some(s) if failed > 0 => format!("{} ⚠ {failed} failed", fmt_summary(&s)),
        Some(s) => fmt_summary(&s),
        None if failed > 0 => "FAIL".into(),
        None => "—".into(),
    }
}

/// Throughput and latency against cores, both servers, with the ratio
/// and each server's speed-up over the smallest core count.
pub fn throughput_table(input: &ScalingInput<'_>) -> String {
    let has_ref = input.servers.contains(&REFERENCE);
    let first = input.core_counts.first().copied().unwrap_or(1);
    let mut out = format!(
        "| Scenario | Metric | Cores | natrix median (min–max) | reference median (min–max) \
         | natrix/reference | natrix vs {first} core(s) | reference vs {first} core(s) |\n\
         |---|---|--:|--:|--:|--:|--:|--:|\n"
    );
    for (name, _) in input.scenarios {
        let mut metrics = metric_names(input.records, name);
        if metrics.is_empty() {
            metrics.push(("(no result)", Better::Higher));
        }
        for (metric, better) in metrics {
            for &k in input.core_counts {
                let n = median(input.records, name, k, NATRIX, metric);
                let r = median(input.records, name, k, REFERENCE, metric);
                let ratio_cell = match (n, r) {
                    (Some(n), Some(r)) => ratio(n, r).map_or("—".into(), fmt_ratio),
                    _ => "—".into(),
                };
                let speedup = |server: &str, now: Option<f64>| match better {
                    Better::Higher => {
                        match (now, median(input.records, name, first, server, metric)) {
                            (Some(v), Some(base)) => ratio(v, base).map_or("—".into(), fmt_ratio),
                            _ => "—".into(),
                        }
                    }
                    Better::Lower => "—".into(),
                };
                let _ = writeln!(
                    out,
                    "| {name} | {metric} ({}) | {k} | {} | {} | {ratio_cell} | {} | {} |",
                    better.phrase(),
                    cell(input.records, name, k, NATRIX, metric, true),
                    cell(input.records, name, k, REFERENCE, metric, has_ref),
                    speedup(NATRIX, n),
                    if has_ref {
                        speedup(REFERENCE, r)
                    } else {
                        "—".into()
                    },
                );
            }
        }
    }
    out
}

/// Every run's server CPU time: natrix per shard, both as a process.
pub fn cpu_table(input: &ScalingInput<'_>) -> String {
    let mut out = String::from(
        "| Scenario | Cores | Round | natrix shard CPU s (shard 0 / 1 / …) | natrix busiest/mean shard \
         | natrix process CPU s | reference process CPU s |\n|---|--:|--:|---|--:|--:|--:|\n",
    );
    let rounds = input.records.iter().map(|r| r.round).max().unwrap_or(0);
    for (name, _) in input.scenarios {
        for &k in input.core_counts {
            for round in 1..=rounds {
                let find = |server: &str| {
                    input.records.iter().find(|r| {
                        r.scenario == *name
                            && r.cores == k
                            && r.server == server
                            && r.round == round
                    })
                };
                let (n, r) = (find(NATRIX), find(REFERENCE));
                if n.is_none() && r.is_none() {
                    continue;
                }
                let usage = |rec: Option<&ScalingRecord>| {
                    rec.and_then(|x| x.result.as_ref().ok())
                        .and_then(|d| d.cpu.clone())
                };
                let failed = |rec: Option<&ScalingRecord>| rec.is_some_and(|x| x.result.is_err());
                let nu = usage(n);
                let process = |u: &Option<crate::procstat::CpuUsage>, failed: bool| match u {
                    Some(u) => format!("{:.2}", u.process),
                    None if failed => "failed".into(),
                    None => "—".into(),
                };
                let _ = writeln!(
                    out,
                    "| {name} | {k} | {round} | {} | {} | {} | {} |",
                    nu.as_ref().map_or_else(
                        || if failed(n) {
                            "failed".into()
                        } else {
                            "—".into()
                        },
                        |u| u.shards_line()
                    ),
                    nu.as_ref()
                        .and_then(|u| u.imbalance())
                        .map_or("—".into(), |x| format!("{x:.2}")),
                    process(&nu, failed(n)),
                    process(&usage(r), failed(r)),
                );
            }
        }
    }
    out
}

pub fn render(input: &ScalingInput<'_>) -> String {
    let mut out = String::from("# natrix scaling report\n\n| | |\n|---|---|\n");
    for (k, v) in &input.meta {
        let _ = writeln!(out, "| {k} | {v} |");
    }
    out.push_str("\n## CPU sets\n\n");
    out.push_str(
        "At each core count K both servers run under `taskset -c` on the same K CPUs: natrix \
         with `--shards K`, the reference with `GOMAXPROCS=K`.\n\n\
         | Cores | server CPUs | |\n|--:|---|---|\n",
    );
    for s in input.cpu_sets {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            s.cores,
            if s.cpus.is_empty() {
                "unpinned".into()
            } else {
                s.list()
            },
            if s.oversubscribed() {
                format!(
                    "⚠ oversubscribed: {} CPU(s) for {} cores",
                    s.cpus.len(),
                    s.cores
                )
            } else {
                String::new()
            }
        );
    }
    if !input.notes.is_empty() {
        out.push('\n');
        for n in input.notes {
            let _ = writeln!(out, "- ⚠ {n}");
        }
    }

    out.push_str("\n## Throughput vs cores\n\n");
    out.push_str(
        "Medians over rounds with the range across rounds. The ratio is natrix's median over \
         the reference's at the same core count; the speed-up columns divide each server's \
         median by its own at the smallest core count (ideal: the core count ratio).\n\n",
    );
    out.push_str(&throughput_table(input));
    if let Some(svg) = input.svg {
        let _ = writeln!(
            out,
            "\n![throughput against cores]({svg})\n\nSolid lines: natrix; dashed: reference; \
             one color per scenario; log scale; medians over rounds; a gap is a core count \
             where every round failed."
        );
    }

    out.push_str("\n## Server CPU per run\n\n");
    out.push_str(
        "CPU seconds (user + system) the server used during each run, from \
         `/proc/PID/task/TID/stat` sampled just before and after the scenario: for natrix per \
         shard (all threads named `natrix-shard-<i>…`) and for the process; for the reference \
         the process total. \"busiest/mean\" is the busiest shard's CPU over the mean: 1.00 is \
         even, K means one shard did all the work.\n\n",
    );
    out.push_str(&cpu_table(input));

    let failed: Vec<&ScalingRecord> = input.records.iter().filter(|r| r.result.is_err()).collect();
    if !failed.is_empty() {
        out.push_str("\n## Failures\n\n");
        for r in failed {
            let msg = r
                .result
                .as_ref()
                .err()
                .map(|e| e.replace('\n', " ⏎ "))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- `{}` at {} core(s) on {} (round {}): {}",
                r.scenario, r.cores, r.server, r.round, msg
            );
        }
    }

    out.push_str("\n## Scenarios\n\n");
    for (name, summary) in input.scenarios {
        let _ = writeln!(out, "- `{name}`: {summary}");
    }
    out
}

/// Throughput (each scenario's first higher-is-better metric) against
/// cores: one line per server per scenario.
pub fn scaling_plot(
    scenarios: &[(String, String)],
    core_counts: &[usize],
    servers: &[&str],
    records: &[ScalingRecord],
) -> String {
    let mut series = Vec::new();
    for (i, (name, _)) in scenarios.iter().enumerate() {
        let Some((metric, _)) = metric_names(records, name)
            .into_iter()
            .find(|(_, b)| *b == Better::Higher)
        else {
            continue;
        };
        for server in servers {
            let points: Vec<(usize, f64)> = core_counts
                .iter()
                .filter_map(|&k| median(records, name, k, server, metric).map(|v| (k, v)))
                .collect();
            series.push(LineSeries {
                label: format!("{name} {server}"),
                color: PALETTE[i % PALETTE.len()],
                dashed: *server != NATRIX,
                points,
            });
        }
    }
    plot::scaling_svg(
        "throughput against cores (medians over rounds)",
        "cores (natrix shards / reference GOMAXPROCS, pinned)",
        "msgs/s (scale_reqrep: requests/s), log scale",
        core_counts,
        &series,
    )
}

/// For the metadata table.
pub fn describe(plan_counts: &[usize], base: usize) -> String {
    format!(
        "scaling: core counts {}, server CPU sets from CPU {base}",
        plan_counts
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procstat::CpuUsage;
    use crate::scenarios::{Diagnostic, Metric};

    #[test]
    fn cpu_sets_start_at_base_and_oversubscribe_small_machines() {
        let eight: Vec<usize> = (0..8).collect();
        let s = cpu_set(4, 0, &eight);
        assert_eq!(
            (s.cpus.clone(), s.list(), s.oversubscribed()),
            (vec![0, 1, 2, 3], "0-3".into(), false)
        );
        assert_eq!(cpu_set(2, 4, &eight).list(), "4,5");
        assert_eq!(cpu_set(4, 6, &eight).list(), "0,1,6,7");
        let two = [0, 1];
        let s = cpu_set(8, 0, &two);
        assert_eq!(s.list(), "0,1");
        assert!(s.oversubscribed());
        assert_eq!(cpu_set(1, 1, &two).list(), "1");
        assert_eq!(cpu_set(2, 0, &[]).cpus, Vec::<usize>::new());
        assert_eq!(fmt_cpu_list(&[0, 1, 2, 3, 6, 8, 9]), "0-3,6,8,9");
    }

    fn rec(
        scenario: &str,
        cores: usize,
        server: &'static str,
        round: usize,
        value: Option<f64>,
    ) -> ScalingRecord {
        ScalingRecord {
            scenario: scenario.into(),
            cores,
            server,
            round,
            result: match value {
                Some(v) => Ok(RunData {
                    metrics: vec![Metric {
                        name: "delivered msgs/s",
                        unit: "msgs/s",
                        better: Better::Higher,
                        value: v,
                    }],
                    diagnostics: vec![Diagnostic {
                        name: "elapsed (s)",
                        value: 1.0,
                    }],
                    cpu: Some(CpuUsage {
                        process: 2.5,
                        shards: if server == NATRIX {
                            (0..cores).map(|i| i as f64).collect()
                        } else {
                            Vec::new()
                        },
                    }),
                }),
                None => Err("LOSS: subscriber 1: got seq 9 after 7".into()),
            },
        }
    }

    #[test]
    fn report_tables_throughput_ratios_speedups_and_cpu() {
        let records = vec![
            rec("scale_pairs", 1, NATRIX, 1, Some(1.0e6)),
            rec("scale_pairs", 1, REFERENCE, 1, Some(0.5e6)),
            rec("scale_pairs", 4, NATRIX, 1, Some(3.0e6)),
            rec("scale_pairs", 4, REFERENCE, 1, None),
        ];
        let scenarios = [("scale_pairs".to_string(), "8 pairs".to_string())];
        let sets = [cpu_set(1, 0, &[0, 1]), cpu_set(4, 0, &[0, 1])];
        let notes = cpu_notes(&sets, None, true);
        let input = ScalingInput {
            meta: vec![("date".into(), "today".into())],
            scenarios: &scenarios,
            core_counts: &[1, 4],
            servers: &[NATRIX, REFERENCE],
            records: &records,
            cpu_sets: &sets,
            notes: &notes,
            svg: Some("scaling.svg"),
        };
        let t = throughput_table(&input);
        assert!(
            t.contains("| natrix vs 1 core(s) | reference vs 1 core(s) |"),
            "{t}"
        );
        assert!(
            t.contains("| scale_pairs | delivered msgs/s (higher is better) | 1 | 1.00M | 500k | 2.00× | 1.00× | 1.00× |"),
            "{t}"
        );
        assert!(
            t.contains("| scale_pairs | delivered msgs/s (higher is better) | 4 | 3.00M | FAIL | — | 3.00× | — |"),
            "{t}"
        );
        let md = render(&input);
        assert!(
            md.contains("| 4 | 0,1 | ⚠ oversubscribed: 2 CPU(s) for 4 cores |"),
            "{md}"
        );
        assert!(md.contains("⚠ oversubscribed: this machine has fewer CPUs"));
        assert!(md.contains("clients were not pinned"));
        assert!(md.contains("![throughput against cores](scaling.svg)"));
        assert!(
            md.contains(
                "| scale_pairs | 4 | 1 | 0.00 / 1.00 / 2.00 / 3.00 | 2.00 | 2.50 | failed |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| scale_pairs | 1 | 1 | 0.00 | — | 2.50 | 2.50 |"),
            "{md}"
        );
        assert!(
            md.contains("- `scale_pairs` at 4 core(s) on reference (round 1): LOSS: subscriber 1")
        );
        let svg = scaling_plot(&scenarios, &[1, 4], &[NATRIX, REFERENCE], &records);
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 3, "{svg}");
        let flat = flat_records(&records);
        assert_eq!(flat[2].scenario, "scale_pairs@4");
    }

    #[test]
    fn notes_on_client_overlap_and_stand_ins() {
        let sets = [
            cpu_set(2, 0, &(0..8).collect::<Vec<_>>()),
            cpu_set(4, 0, &(0..8).collect::<Vec<_>>()),
        ];
        let notes = cpu_notes(&sets, Some(&[4, 5, 6, 7]), true);
        assert!(notes.is_empty(), "{notes:?}");
        let notes = cpu_notes(&sets, Some(&[2, 3]), false);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("at 4 core(s)"));
        assert!(notes[1].contains("GOMAXPROCS"));
    }

    #[test]
    fn specs_pin_both_servers_to_the_same_cpus() {
        let base = ServerSpec {
            label: NATRIX,
            path: "/x/natrix".into(),
            extra_args: Vec::new(),
            cpus: None,
            env: Vec::new(),
            takes_shards: true,
        };
        let reference = ServerSpec {
            label: REFERENCE,
            path: "/usr/sbin/nats-server".into(),
            takes_shards: false,
            ..base.clone()
        };
        let plan = ScalingPlan {
            scenarios: Vec::new(),
            natrix: base.clone(),
            reference: Some(reference.clone()),
            core_counts: vec![1, 4],
            cpu_base: 0,
            available_cpus: (0..8).collect(),
            client_cpus: None,
            rounds: 1,
            out_dir: "/tmp/x".into(),
            pinner: Pinner::default(),
            meta: Vec::new(),
        };
        let specs = specs_for(&plan, &cpu_set(4, 0, &plan.available_cpus));
        assert_eq!(specs[0].extra_args, ["--shards", "4"]);
        assert!(specs[0].env.is_empty());
        assert_eq!(specs[1].env, [("GOMAXPROCS".to_string(), "4".to_string())]);
        assert!(specs[1].extra_args.is_empty());
        assert_eq!(specs[0].cpus.as_deref(), Some("0-3"));
        assert_eq!(specs[1].cpus.as_deref(), Some("0-3"));
        // A nats-server standing in for natrix gets GOMAXPROCS, not --shards.
        let plan = ScalingPlan {
            natrix: ServerSpec {
                label: NATRIX,
                ..reference
            },
            ..plan
        };
        let specs = specs_for(&plan, &cpu_set(2, 0, &plan.available_cpus));
        assert!(specs[0].extra_args.is_empty());
        assert_eq!(specs[0].env, [("GOMAXPROCS".to_string(), "2".to_string())]);
    }
}
