//! natrix-bench: A/B benchmark harness for natrix against the reference
//! nats-server. See perf/README.md.

mod accounts;
mod cli;
mod client;
mod error;
#[cfg(test)]
mod fake;
mod hgrm;
mod jwt;
mod pin;
mod plot;
mod procstat;
mod proto;
mod report;
mod rlimit;
mod runner;
mod scaling;
mod scenarios;
mod selftest;
mod server;
mod stats;
mod tls;

use std::path::{Path, PathBuf};
use std::process::{Command as Process, ExitCode, Stdio};
use std::time::{Duration, SystemTime};

use cli::{Args, Command};
use error::{bail, Result};
use pin::Pinner;
use report::{NATRIX, REFERENCE};
use scenarios::Profile;
use server::ServerSpec;

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("natrix-bench: {e}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let args = match cli::parse(std::env::args().skip(1))? {
        Command::Help => {
            print!("{}", cli::USAGE);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Run(args) => *args,
    };
    if args.self_test {
        print_self_test();
        return Ok(ExitCode::SUCCESS);
    }
    let catalog = scenarios::catalog(args.profile, args.rate, args.scale_n)
        .into_iter()
        .filter(|s| !args.scaling || s.scaling)
        .collect();
    let scenarios = scenarios::select(catalog, &args.scenarios)?;
    if args.list {
        for s in &scenarios {
            println!("{:<20} {}", s.name, s.summary);
        }
        return Ok(ExitCode::SUCCESS);
    }

    let servers = server_specs(&args)?;
    let pinner = client_pinner(&args)?;
    rlimit::raise_memlock();
    let need = scenarios.iter().map(|s| s.fds_needed()).max().unwrap_or(0) as u64 + 1024;
    // Ask for more than the client needs: servers started from here inherit
    // the limit and hold one descriptor per client connection too.
    let got = rlimit::raise_nofile(need.max(65_536))?;
    if got < need {
        eprintln!("natrix-bench: warning: open-file limit is {got}, scenarios need {need}");
    }

    let out_dir = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("results")
            .join(runner::timestamp(SystemTime::now()))
    });
    if args.scaling {
        let mut servers = servers.into_iter();
        let natrix = servers.next().expect("natrix spec");
        let plan = scaling::ScalingPlan {
            meta: meta(
                &args,
                &[natrix.clone()]
                    .into_iter()
                    .chain(servers.clone())
                    .collect::<Vec<_>>(),
            ),
            scenarios,
            natrix,
            reference: servers.next(),
            core_counts: args.scaling_shards.clone(),
            cpu_base: args.server_cpus_base,
            available_cpus: available_cpus(),
            client_cpus: args.client_cpus.clone(),
            rounds: args.rounds(),
            out_dir,
            pinner,
        };
        let all_ok = scaling::execute(&plan)?;
        return Ok(if all_ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let plan = runner::Plan {
        meta: meta(&args, &servers),
        scenarios,
        servers,
        rounds: args.rounds(),
        out_dir,
        pinner,
    };
    let all_ok = runner::execute(&plan)?;
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_self_test() {
    println!("client self-test: in-memory rates per thread, no server, no syscalls");
    println!(
        "{:>8} {:>16} {:>16} {:>20} {:>20}",
        "payload", "encode msgs/s", "parse msgs/s", "TLS encode+encrypt", "TLS decrypt+parse"
    );
    for r in selftest::run(Duration::from_millis(300), true) {
        let (te, tp) = r.tls.map_or(("—".into(), "—".into()), |t| {
            (stats::fmt_num(t.encode_rate), stats::fmt_num(t.parse_rate))
        });
        println!(
            "{:>6} B {:>16} {:>16} {:>20} {:>20}",
            r.payload,
            stats::fmt_num(r.encode_rate),
            stats::fmt_num(r.parse_rate),
            te,
            tp
        );
    }
}

fn server_specs(args: &Args) -> Result<Vec<ServerSpec>> {
    if (args.server_cpus.is_some() || args.scaling) && !command_works("taskset", &["--version"]) {
        bail!("--server-cpus and --scaling need taskset (util-linux)");
    }
    let natrix = executable(
        &args.natrix,
        "natrix",
        "build it with `cargo build --release` in the repo root, or pass --natrix PATH",
    )?;
    let takes_shards = server::takes_shards(&natrix);
    if args.shards.is_some() && !takes_shards {
        bail!(
            "--shards: {} does not take --shards (a nats-server standing in for natrix?); drop --shards",
            natrix.display()
        );
    }
    let mut specs = vec![ServerSpec {
        label: NATRIX,
        path: natrix,
        extra_args: args
            .shards
            .map(|n| vec!["--shards".into(), n.to_string()])
            .unwrap_or_default(),
        cpus: args.server_cpus.clone(),
        env: Vec::new(),
        takes_shards,
    }];
    if !args.natrix_only {
        let reference = executable(
            &args.reference,
            "reference server",
            "install it with `apt-get install -y nats-server` (scripts/bench does), pass --reference PATH, or use --natrix-only",
        )?;
        let takes_shards = server::takes_shards(&reference);
        specs.push(ServerSpec {
            label: REFERENCE,
            path: reference,
            extra_args: Vec::new(),
            cpus: args.server_cpus.clone(),
            env: Vec::new(),
            takes_shards,
        });
    }
    Ok(specs)
}

fn executable(path: &Path, what: &str, hint: &str) -> Result<PathBuf> {
    match path.canonicalize() {
        Ok(p) if p.is_file() => Ok(p),
        _ => bail!("{what} not found at {}; {hint}", path.display()),
    }
}

/// CPUs this process may run on.
fn available_cpus() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

fn client_pinner(args: &Args) -> Result<Pinner> {
    let Some(cpus) = &args.client_cpus else {
        return Ok(Pinner::default());
    };
    let available = available_cpus();
    if let Some(bad) = cpus.iter().find(|c| !available.contains(c)) {
        bail!("--client-cpus: CPU {bad} is not available (have {available:?})");
    }
    Ok(Pinner::new(cpus.clone()))
}

fn command_works(cmd: &str, args: &[&str]) -> bool {
    Process::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn meta(args: &Args, servers: &[ServerSpec]) -> Vec<(String, String)> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu_model = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let profile = match args.profile {
        Profile::Full => "full",
        Profile::Quick => "quick",
        Profile::Smoke => "smoke",
    };
    let load: f64 = read("/proc/loadavg")
        .split_whitespace()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0.0);
    let busy = if load > 0.5 * cpus as f64 {
        " — busy machine, expect noisy numbers"
    } else {
        ""
    };
    let mut meta = vec![
        ("date (UTC)".into(), runner::timestamp(SystemTime::now())),
        (
            "host".into(),
            format!(
                "{cpus} CPUs ({cpu_model}), Linux {}",
                read("/proc/sys/kernel/osrelease").trim()
            ),
        ),
        ("load average at start".into(), format!("{load:.2}{busy}")),
        (
            "profile".into(),
            format!(
                "{profile}, {} round(s), runs interleaved per round",
                args.rounds()
            ),
        ),
    ];
    for s in servers {
        let extra = if s.extra_args.is_empty() {
            String::new()
        } else {
            format!(" {}", s.extra_args.join(" "))
        };
        meta.push((
            s.label.into(),
            format!(
                "`{}`{extra} ({})",
                s.path.display(),
                server::probe_version(&s.path)
            ),
        ));
    }
    meta.push((
        "server CPUs".into(),
        if args.scaling {
            scaling::describe(&args.scaling_shards, args.server_cpus_base)
        } else {
            args.server_cpus
                .clone()
                .unwrap_or_else(|| "unpinned".into())
        },
    ));
    meta.push((
        "client CPUs".into(),
        args.client_cpus
            .as_ref()
            .map_or("unpinned".into(), |c| format!("{c:?}")),
    ));
    let argv: Vec<String> = std::env::args().skip(1).collect();
    meta.push((
        "command".into(),
        format!(
            "`{}`",
            ["natrix-bench".to_string()]
                .into_iter()
                .chain(argv)
                .collect::<Vec<_>>()
                .join(" ")
        ),
    ));
    meta
}
