//! report.md and results.tsv from the per-round records. Pure functions of
//! their inputs, so the layout is unit-tested.

use std::fmt::Write;

use crate::procstat::CpuUsage;
use crate::scenarios::{Better, Diagnostic, Metric};
use crate::selftest::SelfTestRow;
#[cfg(test)]
use crate::selftest::TlsRates;
use crate::stats::{fmt_num, fmt_ratio, fmt_summary, ratio, summarize};

/// What one (scenario, server, round) run produced.
#[derive(Clone, Debug)]
pub struct Record {
    pub scenario: String,
    pub server: &'static str,
    pub round: usize,
    pub result: Result<RunData, String>,
}

#[derive(Clone, Debug, Default)]
pub struct RunData {
    pub metrics: Vec<Metric>,
    pub diagnostics: Vec<Diagnostic>,
    /// Server CPU time during the run, per shard for natrix.
    pub cpu: Option<CpuUsage>,
}

/// The shape of a throughput scenario, for the client-headroom estimate.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub payload: usize,
    pub publishers: usize,
    pub subscribers: usize,
    pub queue: bool,
    /// Publisher i → subscriber i on its own subject.
    pub pairs: bool,
}

#[derive(Clone, Debug)]
pub struct ScenarioInfo {
    pub name: String,
    pub summary: String,
    pub shape: Option<Shape>,
    /// Clients used TLS: headroom is measured against the TLS rates.
    pub tls: bool,
    /// The same load without authentication, set against this scenario
    /// in the report's authentication-cost table.
    pub baseline: Option<String>,
}

/// Plot and distribution files written for a latency scenario.
#[derive(Clone, Debug)]
pub struct LatencyFiles {
    pub scenario: String,
    pub svg: String,
    /// (server, file name)
    pub hgrm: Vec<(&'static str, String)>,
}

pub struct ReportInput<'a> {
    pub meta: Vec<(String, String)>,
    /// Server labels in column order; the first is natrix.
    pub servers: Vec<&'static str>,
    pub scenarios: &'a [ScenarioInfo],
    pub records: &'a [Record],
    pub selftest: &'a [SelfTestRow],
    pub latency: &'a [LatencyFiles],
}

pub const NATRIX: &str = "natrix";
pub const REFERENCE: &str = "reference";

/// One line of the results table.
#[derive(Clone, Debug, PartialEq)]
pub struct TableRow {
    pub scenario: String,
    pub metric: String,
    pub natrix: String,
    pub reference: String,
    pub ratio: String,
}

fn values<'r>(
    records: &'r [Record],
    scenario: &'r str,
    server: &'r str,
) -> impl Iterator<Item = &'r RunData> + 'r {
    records
        .iter()
        .filter(move |r| r.scenario == scenario && r.server == server)
        .filter_map(|r| r.result.as_ref().ok())
}

fn failures(records: &[Record], scenario: &str, server: &str) -> usize {
    records
        .iter()
        .filter(|r| r.scenario == scenario && r.server == server && r.result.is_err())
        .count()
}

/// Metric names and their direction, in first-seen order for a scenario.
fn metric_names(records: &[Record], scenario: &str) -> Vec<(&'static str, Better)> {
    let mut out: Vec<(&'static str, Better)> = Vec::new();
    for data in records
        .iter()
        .filter(|r| r.scenario == scenario)
        .filter_map(|r| r.result.as_ref().ok())
    {
        for m in &data.metrics {
            if !out.iter().any(|(n, _)| *n == m.name) {
                out.push((m.name, m.better));
            }
        }
    }
    out
}

fn metric_values(records: &[Record], scenario: &str, server: &str, metric: &str) -> Vec<f64> {
    values(records, scenario, server)
        .flat_map(|d| {
            d.metrics
                .iter()
                .filter(|m| m.name == metric)
                .map(|m| m.value)
        })
        .collect()
}

fn cell(
    records: &[Record],
    scenario: &str,
    server: &str,
    metric: &str,
    ran: bool,
) -> (String, Option<f64>) {
    if !ran {
        return ("—".into(), None);
    }
    let failed = failures(records, scenario, server);
    match summarize(&metric_values(records, scenario, server, metric)) {
        Some(s) if failed > 0 => (
            format!("{} ⚠ {failed} failed", fmt_summary(&s)),
            Some(s.median),
        ),
        Some(s) => (fmt_summary(&s), Some(s.median)),
        None if failed > 0 => ("FAIL".into(), None),
        None => ("—".into(), None),
    }
}

pub fn table_rows(input: &ReportInput<'_>) -> Vec<TableRow> {
    let has_reference = input.servers.contains(&REFERENCE);
    let mut rows = Vec::new();
    for sc in input.scenarios {
        let mut names = metric_names(input.records, &sc.name);
        if names.is_empty() {
            // Every round failed: still give the scenario a visible row.
            names.push(("(no result)", Better::Higher));
        }
        for (metric, better) in names {
            let (natrix, n_med) = cell(input.records, &sc.name, NATRIX, metric, true);
            let (reference, r_med) =
                cell(input.records, &sc.name, REFERENCE, metric, has_reference);
            let ratio = match (n_med, r_med) {
                (Some(n), Some(r)) => ratio(n, r).map_or("—".into(), fmt_ratio),
                _ => "—".into(),
            };
            rows.push(TableRow {
                scenario: sc.name.clone(),
                metric: format!("{metric} ({})", better.phrase()),
                natrix,
                reference,
                ratio,
            });
        }
    }
    rows
}

pub fn markdown_table(rows: &[TableRow]) -> String {
    let mut out = String::from(
        "| Scenario | Metric | natrix median (min–max) | reference median (min–max) | natrix/reference |\n\
         |---|---|--:|--:|--:|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            r.scenario, r.metric, r.natrix, r.reference, r.ratio
        );
    }
    out
}

pub fn render(input: &ReportInput<'_>) -> String {
    let mut out = String::from("# natrix benchmark report\n\n");
    out.push_str("| | |\n|---|---|\n");
    for (k, v) in &input.meta {
        let _ = writeln!(out, "| {k} | {v} |");
    }

    out.push_str("\n## Results\n\n");
    out.push_str(
        "Each cell is the median over rounds, with the range across rounds in parentheses. \
         The ratio is natrix's median over the reference's: above 1.00× is better for \
         \"higher is better\" metrics, below 1.00× for \"lower is better\" ones.\n\n",
    );
    out.push_str(&markdown_table(&table_rows(input)));
    render_auth_cost(&mut out, input);

    let failed: Vec<&Record> = input.records.iter().filter(|r| r.result.is_err()).collect();
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
                "- `{}` on {} (round {}): {}",
                r.scenario, r.server, r.round, msg
            );
        }
    }

    for lat in input.latency {
        let _ = write!(
            out,
            "\n## Latency: {}\n\n![{} percentile plot]({})\n\n",
            lat.scenario, lat.scenario, lat.svg
        );
        out.push_str("Full distributions, all rounds merged, in HdrHistogram percentile-distribution format (values in µs): ");
        let links: Vec<String> = lat
            .hgrm
            .iter()
            .map(|(s, f)| format!("[{s}]({f})"))
            .collect();
        out.push_str(&links.join(", "));
        out.push_str(".\n");
    }

    render_headroom(&mut out, input);
    render_diagnostics(&mut out, input);

    out.push_str("\n## Scenarios\n\n");
    for sc in input.scenarios {
        let _ = writeln!(out, "- `{}`: {}", sc.name, sc.summary);
    }
    out
}

/// One row per authenticated scenario with a baseline, metric and server:
/// the baseline's median, the scenario's, and their ratio.
pub fn auth_cost_rows(input: &ReportInput<'_>) -> Vec<[String; 6]> {
    let mut rows = Vec::new();
    for sc in input.scenarios {
        let Some(base) = &sc.baseline else { continue };
        for (metric, better) in metric_names(input.records, &sc.name) {
            for &server in &input.servers {
                let med = |scenario: &str| {
                    summarize(&metric_values(input.records, scenario, server, metric))
                        .map(|s| s.median)
                };
                let (b, a) = (med(base), med(&sc.name));
                let show = |v: Option<f64>| v.map_or("—".into(), fmt_num);
                let r = match (a, b) {
                    (Some(a), Some(b)) => ratio(a, b).map_or("—".into(), fmt_ratio),
                    _ => "—".into(),
                };
                rows.push([
                    sc.name.clone(),
                    format!("{metric} ({})", better.phrase()),
                    server.to_string(),
                    format!("{} ({base})", show(b)),
                    show(a),
                    r,
                ]);
            }
        }
    }
    rows
}

fn render_auth_cost(out: &mut String, input: &ReportInput<'_>) {
    let rows = auth_cost_rows(input);
    if rows.is_empty() {
        return;
    }
    out.push_str("\n## Authentication cost\n\n");
    out.push_str(
        "Each authenticated scenario against the same load without authentication, per server \
         (medians over rounds; — where the baseline did not run). The last column is the \
         authenticated median over the unauthenticated one: for \"higher is better\" metrics \
         below 1.00× is what authentication costs, for \"lower is better\" ones above 1.00×.\n\n",
    );
    out.push_str(
        "| Scenario | Metric | Server | without auth (baseline) | with auth | with/without |\n\
         |---|---|---|--:|--:|--:|\n",
    );
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
}

fn render_headroom(out: &mut String, input: &ReportInput<'_>) {
    if input.selftest.is_empty() {
        return;
    }
    out.push_str("\n## Client headroom\n\n");
    out.push_str(
        "The client's own per-thread cost, measured in memory with no server (`--self-test`): \
         encoding is the publisher's batch loop, parsing is the subscriber's read/parse/check loop.\n\n",
    );
    let with_tls = input.selftest.iter().any(|r| r.tls.is_some());
    if with_tls {
        out.push_str(
            "With TLS, the same loops run through the client's TLS stream: publishers encode and \
             encrypt, subscribers decrypt, parse and check.\n\n",
        );
        out.push_str(
            "| Payload | encode msgs/s per thread | parse msgs/s per thread \
             | TLS encode+encrypt | TLS decrypt+parse |\n|--:|--:|--:|--:|--:|\n",
        );
    } else {
        out.push_str(
            "| Payload | encode msgs/s per thread | parse msgs/s per thread |\n|--:|--:|--:|\n",
        );
    }
    for r in input.selftest {
        let tls = match (with_tls, r.tls) {
            (false, _) => String::new(),
            (true, Some(t)) => format!(" {} | {} |", fmt_num(t.encode_rate), fmt_num(t.parse_rate)),
            (true, None) => " — | — |".into(),
        };
        let _ = writeln!(
            out,
            "| {} B | {} | {} |{tls}",
            r.payload,
            fmt_num(r.encode_rate),
            fmt_num(r.parse_rate)
        );
    }
    let lines: Vec<String> = input
        .scenarios
        .iter()
        .filter_map(|sc| headroom_line(input, sc))
        .collect();
    if lines.is_empty() {
        return;
    }
    out.push_str(
        "\nPer-thread rates in each throughput scenario at the faster server's median, as a share \
         of that capacity (well under 100% means the client was not the limit):\n\n",
    );
    out.push_str("| Scenario | per publisher thread | per subscriber thread |\n|---|--:|--:|\n");
    for l in lines {
        out.push_str(&l);
    }
}

/// Per-thread (publisher, subscriber) capacity for a scenario: the TLS
/// rates for TLS scenarios (none if they were not measured).
fn capacity(row: &SelfTestRow, tls: bool) -> Option<(f64, f64)> {
    if tls {
        row.tls.map(|t| (t.encode_rate, t.parse_rate))
    } else {
        Some((row.encode_rate, row.parse_rate))
    }
}

fn headroom_line(input: &ReportInput<'_>, sc: &ScenarioInfo) -> Option<String> {
    let shape = sc.shape?;
    let row = input.selftest.iter().find(|r| r.payload == shape.payload)?;
    let (encode_cap, parse_cap) = capacity(row, sc.tls)?;
    let (metric, _) = *metric_names(input.records, &sc.name).first()?;
    let best = input
        .servers
        .iter()
        .filter_map(|s| summarize(&metric_values(input.records, &sc.name, s, metric)))
        .map(|s| s.median)
        .fold(f64::NAN, f64::max);
    if !best.is_finite() {
        return None;
    }
    let copies = match (shape.subscribers, shape.queue || shape.pairs) {
        (0, _) | (_, true) => 1.0,
        (n, false) => n as f64,
    };
    let per_pub = best / copies / shape.publishers as f64;
    let share =
        |rate: f64, capacity: f64| format!("{} ({:.1}%)", fmt_num(rate), 100.0 * rate / capacity);
    let sub = if shape.subscribers == 0 {
        "—".to_string()
    } else {
        share(best / shape.subscribers as f64, parse_cap)
    };
    Some(format!(
        "| {} | {} | {} |\n",
        sc.name,
        share(per_pub, encode_cap),
        sub
    ))
}

fn render_diagnostics(out: &mut String, input: &ReportInput<'_>) {
    let mut lines = String::new();
    for sc in input.scenarios {
        let mut names: Vec<&'static str> = Vec::new();
        for d in input
            .records
            .iter()
            .filter(|r| r.scenario == sc.name)
            .filter_map(|r| r.result.as_ref().ok())
        {
            for diag in &d.diagnostics {
                if !names.contains(&diag.name) {
                    names.push(diag.name);
                }
            }
        }
        for name in names {
            let med = |server: &str| {
                let v: Vec<f64> = values(input.records, &sc.name, server)
                    .flat_map(|d| {
                        d.diagnostics
                            .iter()
                            .filter(|x| x.name == name)
                            .map(|x| x.value)
                    })
                    .collect();
                summarize(&v).map_or("—".into(), |s| fmt_num(s.median))
            };
            let _ = writeln!(
                lines,
                "| {} | {} | {} | {} |",
                sc.name,
                name,
                med(NATRIX),
                med(REFERENCE)
            );
        }
    }
    if !lines.is_empty() {
        out.push_str("\n## Diagnostics\n\nSide measurements (medians over rounds), not server comparisons.\n\n");
        out.push_str("| Scenario | Measurement | natrix | reference |\n|---|---|--:|--:|\n");
        out.push_str(&lines);
    }
}

/// Every number from every round, one per line, for further analysis.
pub fn results_tsv(records: &[Record]) -> String {
    let mut out = String::from("scenario\tserver\tround\tkind\tname\tvalue\terror\n");
    for r in records {
        match &r.result {
            Ok(d) => {
                for m in &d.metrics {
                    let _ = writeln!(
                        out,
                        "{}\t{}\t{}\tmetric\t{} ({})\t{}\t",
                        r.scenario, r.server, r.round, m.name, m.unit, m.value
                    );
                }
                for x in &d.diagnostics {
                    let _ = writeln!(
                        out,
                        "{}\t{}\t{}\tdiagnostic\t{}\t{}\t",
                        r.scenario, r.server, r.round, x.name, x.value
                    );
                }
                for (i, s) in d.cpu.iter().flat_map(|c| c.shards.iter().enumerate()) {
                    let _ = writeln!(
                        out,
                        "{}\t{}\t{}\tdiagnostic\tshard {i} CPU (s)\t{s}\t",
                        r.scenario, r.server, r.round
                    );
                }
            }
            Err(e) => {
                let e = e.replace(['\t', '\n'], " ");
                let _ = writeln!(
                    out,
                    "{}\t{}\t{}\terror\t\t\t{e}",
                    r.scenario, r.server, r.round
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(scenario: &str, server: &'static str, round: usize, value: f64) -> Record {
        Record {
            scenario: scenario.into(),
            server,
            round,
            result: Ok(RunData {
                metrics: vec![Metric {
                    name: "sent msgs/s",
                    unit: "msgs/s",
                    better: Better::Higher,
                    value,
                }],
                diagnostics: vec![Diagnostic {
                    name: "elapsed (s)",
                    value: 1.0,
                }],
                cpu: None,
            }),
        }
    }

    fn failed(scenario: &str, server: &'static str, round: usize) -> Record {
        Record {
            scenario: scenario.into(),
            server,
            round,
            result: Err("timed out\nlog".into()),
        }
    }

    fn info(name: &str) -> ScenarioInfo {
        ScenarioInfo {
            name: name.into(),
            summary: "1 publisher".into(),
            shape: Some(Shape {
                payload: 16,
                publishers: 1,
                subscribers: 0,
                queue: false,
                pairs: false,
            }),
            tls: false,
            baseline: None,
        }
    }

    #[test]
    fn table_shows_median_range_and_ratio() {
        let records = vec![
            ok("pub_16b", NATRIX, 1, 4.0e6),
            ok("pub_16b", REFERENCE, 1, 2.0e6),
            ok("pub_16b", NATRIX, 2, 5.0e6),
            ok("pub_16b", REFERENCE, 2, 2.5e6),
            ok("pub_16b", NATRIX, 3, 6.0e6),
            ok("pub_16b", REFERENCE, 3, 3.0e6),
        ];
        let scenarios = [info("pub_16b")];
        let input = ReportInput {
            meta: vec![],
            servers: vec![NATRIX, REFERENCE],
            scenarios: &scenarios,
            records: &records,
            selftest: &[],
            latency: &[],
        };
        let rows = table_rows(&input);
        assert_eq!(
            rows,
            vec![TableRow {
                scenario: "pub_16b".into(),
                metric: "sent msgs/s (higher is better)".into(),
                natrix: "5.00M (4.00M–6.00M)".into(),
                reference: "2.50M (2.00M–3.00M)".into(),
                ratio: "2.00×".into(),
            }]
        );
        let md = markdown_table(&rows);
        assert!(md.starts_with("| Scenario | Metric | natrix median (min–max) | reference median (min–max) | natrix/reference |\n|---|"));
        assert!(md.contains("| pub_16b | sent msgs/s (higher is better) | 5.00M (4.00M–6.00M) | 2.50M (2.00M–3.00M) | 2.00× |"));
    }

    #[test]
    fn auth_cost_sets_scenarios_against_their_baselines() {
        let records = vec![
            ok("pubsub_1to1", NATRIX, 1, 2.0e6),
            ok("pubsub_1to1", REFERENCE, 1, 1.0e6),
            ok("pubsub_1to1_jwt", NATRIX, 1, 1.9e6),
            ok("pubsub_1to1_jwt", REFERENCE, 1, 1.0e6),
            failed("pub_16b_jwt", NATRIX, 1),
            ok("pub_16b_jwt", REFERENCE, 1, 3.0e6),
        ];
        let mut jwt = info("pubsub_1to1_jwt");
        jwt.baseline = Some("pubsub_1to1".into());
        let mut lone = info("pub_16b_jwt");
        lone.baseline = Some("pub_16b".into());
        let scenarios = [info("pubsub_1to1"), jwt, lone];
        let input = ReportInput {
            meta: vec![],
            servers: vec![NATRIX, REFERENCE],
            scenarios: &scenarios,
            records: &records,
            selftest: &[],
            latency: &[],
        };
        let rows = auth_cost_rows(&input);
        assert_eq!(
            rows[0],
            [
                "pubsub_1to1_jwt",
                "sent msgs/s (higher is better)",
                "natrix",
                "2.00M (pubsub_1to1)",
                "1.90M",
                "0.95×"
            ]
            .map(String::from)
        );
        assert_eq!(
            rows[1][2..],
            ["reference", "1.00M (pubsub_1to1)", "1.00M", "1.00×"]
        );
        // The baseline did not run; the natrix run failed.
        assert_eq!(rows[2][2..], ["natrix", "— (pub_16b)", "—", "—"]);
        assert_eq!(rows[3][2..], ["reference", "— (pub_16b)", "3.00M", "—"]);
        assert_eq!(rows.len(), 4);
        let md = render(&input);
        assert!(md.contains("## Authentication cost"));
        assert!(md.contains(
            "| pubsub_1to1_jwt | sent msgs/s (higher is better) | natrix | 2.00M (pubsub_1to1) | 1.90M | 0.95× |"
        ));
        // Without baselines there is no such section.
        let plain = [info("pubsub_1to1")];
        let md = render(&ReportInput {
            scenarios: &plain,
            ..input
        });
        assert!(!md.contains("Authentication cost"));
    }

    #[test]
    fn failures_are_visible_in_table_and_list() {
        let records = vec![
            ok("a", NATRIX, 1, 10.0),
            failed("a", NATRIX, 2),
            failed("a", REFERENCE, 1),
            failed("b", NATRIX, 1),
        ];
        let scenarios = [info("a"), info("b")];
        let input = ReportInput {
            meta: vec![("date".into(), "today".into())],
            servers: vec![NATRIX, REFERENCE],
            scenarios: &scenarios,
            records: &records,
            selftest: &[],
            latency: &[],
        };
        let rows = table_rows(&input);
        assert_eq!(rows[0].natrix, "10.0 ⚠ 1 failed");
        assert_eq!(rows[0].reference, "FAIL");
        assert_eq!(rows[0].ratio, "—");
        assert_eq!(rows[1].scenario, "b");
        assert_eq!(rows[1].natrix, "FAIL");
        let md = render(&input);
        assert!(md.contains("## Failures"));
        assert!(md.contains("- `a` on natrix (round 2): timed out ⏎ log"));
        assert!(md.contains("| date | today |"));
    }

    #[test]
    fn natrix_only_leaves_reference_empty() {
        let records = vec![ok("a", NATRIX, 1, 10.0)];
        let scenarios = [info("a")];
        let input = ReportInput {
            meta: vec![],
            servers: vec![NATRIX],
            scenarios: &scenarios,
            records: &records,
            selftest: &[],
            latency: &[],
        };
        let rows = table_rows(&input);
        assert_eq!(
            (rows[0].reference.as_str(), rows[0].ratio.as_str()),
            ("—", "—")
        );
    }

    #[test]
    fn report_links_latency_files_and_headroom() {
        let records = vec![
            ok("pub_16b", NATRIX, 1, 1.0e6),
            ok("pub_16b", REFERENCE, 1, 2.0e6),
        ];
        let scenarios = [info("pub_16b")];
        let selftest = [SelfTestRow {
            payload: 16,
            encode_rate: 40.0e6,
            parse_rate: 20.0e6,
            tls: None,
        }];
        let latency = [LatencyFiles {
            scenario: "reqrep_latency".into(),
            svg: "reqrep_latency.svg".into(),
            hgrm: vec![(NATRIX, "reqrep_latency.natrix.hgrm".into())],
        }];
        let input = ReportInput {
            meta: vec![],
            servers: vec![NATRIX, REFERENCE],
            scenarios: &scenarios,
            records: &records,
            selftest: &selftest,
            latency: &latency,
        };
        let md = render(&input);
        assert!(md.contains("![reqrep_latency percentile plot](reqrep_latency.svg)"));
        assert!(md.contains("[natrix](reqrep_latency.natrix.hgrm)"));
        assert!(md.contains("| 16 B | 40.0M | 20.0M |"));
        // Headroom uses the faster server: 2M/s of a 40M/s encoder.
        assert!(md.contains("| pub_16b | 2.00M (5.0%) | — |"), "{md}");
        assert!(md.contains("| pub_16b | elapsed (s) | 1.00 | 1.00 |"));
        assert!(md.contains("- `pub_16b`: 1 publisher"));
    }

    #[test]
    fn tls_scenarios_use_tls_capacity() {
        let records = vec![
            ok("pub_16b", NATRIX, 1, 2.0e6),
            ok("pub_16b_tls", NATRIX, 1, 1.0e6),
        ];
        let mut tls_info = info("pub_16b_tls");
        tls_info.tls = true;
        let scenarios = [info("pub_16b"), tls_info];
        let selftest = [SelfTestRow {
            payload: 16,
            encode_rate: 40.0e6,
            parse_rate: 20.0e6,
            tls: Some(TlsRates {
                encode_rate: 10.0e6,
                parse_rate: 5.0e6,
            }),
        }];
        let input = ReportInput {
            meta: vec![],
            servers: vec![NATRIX],
            scenarios: &scenarios,
            records: &records,
            selftest: &selftest,
            latency: &[],
        };
        let md = render(&input);
        assert!(
            md.contains("| 16 B | 40.0M | 20.0M | 10.0M | 5.00M |"),
            "{md}"
        );
        assert!(md.contains("| pub_16b | 2.00M (5.0%) | — |"), "{md}");
        assert!(md.contains("| pub_16b_tls | 1.00M (10.0%) | — |"), "{md}");

        // Without TLS rates a TLS scenario gets no headroom line.
        let selftest = [SelfTestRow {
            tls: None,
            ..selftest[0].clone()
        }];
        let md = render(&ReportInput {
            selftest: &selftest,
            ..input
        });
        assert!(!md.contains("| pub_16b_tls | 1.00M ("), "{md}");
        assert!(!md.contains("TLS encode+encrypt"));
    }

    #[test]
    fn tsv_lists_shard_cpu() {
        let mut r = ok("a", NATRIX, 1, 2.5);
        if let Ok(d) = &mut r.result {
            d.cpu = Some(CpuUsage {
                process: 3.0,
                shards: vec![1.0, 2.0],
            });
        }
        let tsv = results_tsv(&[r]);
        assert!(
            tsv.contains("a\tnatrix\t1\tdiagnostic\tshard 1 CPU (s)\t2\t\n"),
            "{tsv}"
        );
    }

    #[test]
    fn tsv_has_one_line_per_number() {
        let tsv = results_tsv(&[ok("a", NATRIX, 1, 2.5), failed("a", REFERENCE, 1)]);
        let lines: Vec<&str> = tsv.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[1],
            "a\tnatrix\t1\tmetric\tsent msgs/s (msgs/s)\t2.5\t"
        );
        assert_eq!(lines[3], "a\treference\t1\terror\t\t\ttimed out log");
    }
}
