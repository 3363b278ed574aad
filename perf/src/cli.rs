//! Command-line options.

use std::path::PathBuf;

use crate::error::{bail, Error, Result};
use crate::scenarios::Profile;

pub const USAGE: &str = "\
natrix-bench: A/B benchmark of natrix against the reference nats-server

USAGE:
    natrix-bench [OPTIONS]

PROFILES (default: full, a few seconds per run, 5 rounds):
    --quick               short runs, 3 rounds: a few minutes in total
    --smoke               natrix only, tiny counts, 1 round; exits non-zero
                          unless every scenario delivered every message (CI)

SCALING MODE:
    --scaling             run the scale_* scenarios for natrix at each shard
                          count and the reference at the same core counts,
                          both pinned with taskset to the same CPUs; writes a
                          throughput-vs-cores table, plot and per-shard CPU
    --scaling-shards LIST core counts to compare [default: 1,2,4,8]
    --server-cpus-base N  first CPU of the servers' CPU sets [default: 0]
    --scale-n N           connections per role in scale_* scenarios [default: 8]

OPTIONS:
    --rounds N            A/B rounds per scenario (runs go A B A B ...)
    --scenarios LIST      comma-separated names or globs: pub_*, *_unpaced (see --list)
    --natrix PATH         natrix binary [default: <repo>/target/release/natrix]
    --reference PATH      reference server [default: /usr/sbin/nats-server]
    --natrix-only         do not run the reference
    --shards N            passed to natrix as --shards N (not to the reference)
    --server-cpus LIST    pin servers with taskset -c LIST (e.g. 0 or 0-1)
    --client-cpus LIST    pin client threads round-robin to LIST (e.g. 1,3)
    --rate N              request rate for the latency scenario (req/s)
    --out DIR             output directory [default: perf/results/<timestamp>]
    --list                list scenarios and exit
    --self-test           measure the client's in-memory encode/parse rates and exit
    -h, --help            this text
";

#[derive(Clone, Debug, PartialEq)]
pub struct Args {
    pub profile: Profile,
    pub rounds: Option<usize>,
    pub scenarios: Vec<String>,
    pub natrix: PathBuf,
    pub reference: PathBuf,
    pub natrix_only: bool,
    pub shards: Option<usize>,
    pub server_cpus: Option<String>,
    pub client_cpus: Option<Vec<usize>>,
    pub rate: Option<u64>,
    pub out: Option<PathBuf>,
    pub list: bool,
    pub self_test: bool,
    pub scaling: bool,
    pub scaling_shards: Vec<usize>,
    pub server_cpus_base: usize,
    pub scale_n: usize,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            profile: Profile::Full,
            rounds: None,
            scenarios: Vec::new(),
            natrix: default_natrix(),
            reference: PathBuf::from("/usr/sbin/nats-server"),
            natrix_only: false,
            shards: None,
            server_cpus: None,
            client_cpus: None,
            rate: None,
            out: None,
            list: false,
            self_test: false,
            scaling: false,
            scaling_shards: vec![1, 2, 4, 8],
            server_cpus_base: 0,
            scale_n: 8,
        }
    }
}

impl Args {
    /// Scaling mode runs every scenario at every core count, so it
    /// defaults to fewer rounds.
    pub fn rounds(&self) -> usize {
        self.rounds.unwrap_or(match (self.profile, self.scaling) {
            (Profile::Full, false) => 5,
            (Profile::Full, true) | (Profile::Quick, false) => 3,
            (Profile::Quick, true) => 2,
            (Profile::Smoke, _) => 1,
        })
    }
}

/// The perf crate lives in `<repo>/perf`, so natrix's release binary is
/// `<repo>/target/release/natrix`.
fn default_natrix() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/natrix")
}

pub enum Command {
    Run(Box<Args>),
    Help,
}

pub fn parse<I: IntoIterator<Item = String>>(argv: I) -> Result<Command> {
    let mut args = Args::default();
    let mut it = argv.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| Error(format!("{name} needs a value")))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--quick" => args.profile = Profile::Quick,
            "--smoke" => args.profile = Profile::Smoke,
            "--rounds" => args.rounds = Some(number(&value("--rounds")?, "--rounds", 1)?),
            "--scenarios" => {
                args.scenarios = value("--scenarios")?
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
            "--natrix" => args.natrix = PathBuf::from(value("--natrix")?),
            "--reference" => args.reference = PathBuf::from(value("--reference")?),
            "--natrix-only" => args.natrix_only = true,
            "--shards" => args.shards = Some(number(&value("--shards")?, "--shards", 1)?),
            "--server-cpus" => {
                let list = value("--server-cpus")?;
                parse_cpu_list(&list)?;
                args.server_cpus = Some(list);
            }
            "--client-cpus" => args.client_cpus = Some(parse_cpu_list(&value("--client-cpus")?)?),
            "--rate" => args.rate = Some(number(&value("--rate")?, "--rate", 1)? as u64),
            "--out" => args.out = Some(PathBuf::from(value("--out")?)),
            "--list" => args.list = true,
            "--self-test" => args.self_test = true,
            "--scaling" => args.scaling = true,
            "--scaling-shards" => {
                let list = value("--scaling-shards")?;
                let mut counts = Vec::new();
                for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    counts.push(number(part, "--scaling-shards", 1)?);
                }
                counts.sort_unstable();
                counts.dedup();
                if counts.is_empty() {
                    bail!("--scaling-shards needs at least one count");
                }
                args.scaling_shards = counts;
            }
            "--server-cpus-base" => {
                args.server_cpus_base =
                    number(&value("--server-cpus-base")?, "--server-cpus-base", 0)?
            }
            "--scale-n" => args.scale_n = number(&value("--scale-n")?, "--scale-n", 1)?,
            other => bail!("unknown option {other:?} (see --help)"),
        }
    }
    if args.profile == Profile::Smoke {
        args.natrix_only = true;
    }
    if args.scale_n > 64 {
        bail!("--scale-n is at most 64 (sequence stamps track 64 publishers)");
    }
    if args.scaling {
        if args.shards.is_some() {
            bail!("--scaling sets natrix's shard count itself; use --scaling-shards, not --shards");
        }
        if args.server_cpus.is_some() {
            bail!("--scaling pins the servers itself; use --server-cpus-base, not --server-cpus");
        }
    }
    Ok(Command::Run(Box::new(args)))
}

fn number(s: &str, flag: &str, min: usize) -> Result<usize> {
    match s.parse::<usize>() {
        Ok(n) if n >= min => Ok(n),
        _ => bail!("{flag} expects an integer >= {min}, got {s:?}"),
    }
}

/// Parses `taskset`-style lists: `0`, `0,2`, `1-3,6`.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim) {
        let cpu = |t: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| Error(format!("bad CPU list {s:?}")))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (cpu(a)?, cpu(b)?);
                if a > b {
                    bail!("bad CPU range {part:?} in {s:?}");
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(cpu(part)?),
        }
    }
    cpus.dedup();
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Args> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Command::Run(a) => Ok(*a),
            Command::Help => Err("help".into()),
        }
    }

    #[test]
    fn defaults() {
        let a = run(&[]).unwrap();
        assert_eq!(a.profile, Profile::Full);
        assert_eq!(a.rounds(), 5);
        assert_eq!(a.reference, PathBuf::from("/usr/sbin/nats-server"));
        assert!(a.natrix.ends_with("target/release/natrix"));
        assert!(!a.natrix_only);
    }

    #[test]
    fn parses_all_options() {
        let a = run(&[
            "--quick",
            "--rounds",
            "2",
            "--scenarios=pub_16b, fanout_*",
            "--natrix",
            "/x/natrix",
            "--reference=/y/ref",
            "--shards",
            "4",
            "--server-cpus",
            "0",
            "--client-cpus",
            "1-2",
            "--rate",
            "2000",
            "--out",
            "/tmp/o",
            "--natrix-only",
        ])
        .unwrap();
        assert_eq!(a.profile, Profile::Quick);
        assert_eq!(a.rounds(), 2);
        assert_eq!(a.scenarios, ["pub_16b", "fanout_*"]);
        assert_eq!(a.natrix, PathBuf::from("/x/natrix"));
        assert_eq!(a.reference, PathBuf::from("/y/ref"));
        assert_eq!(a.shards, Some(4));
        assert_eq!(a.server_cpus.as_deref(), Some("0"));
        assert_eq!(a.client_cpus, Some(vec![1, 2]));
        assert_eq!(a.rate, Some(2000));
        assert_eq!(a.out, Some(PathBuf::from("/tmp/o")));
        assert!(a.natrix_only);
    }

    #[test]
    fn smoke_implies_natrix_only_and_one_round() {
        let a = run(&["--smoke"]).unwrap();
        assert!(a.natrix_only);
        assert_eq!(a.rounds(), 1);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(run(&["--rounds"]).is_err());
        assert!(run(&["--rounds", "0"]).is_err());
        assert!(run(&["--frobnicate"]).is_err());
        assert!(run(&["--client-cpus", "3-1"]).is_err());
        assert!(run(&["--server-cpus", "a"]).is_err());
        assert!(run(&["--help"]).is_err(), "help is not a run");
    }

    #[test]
    fn scaling_options() {
        let a = run(&[]).unwrap();
        assert!(!a.scaling);
        assert_eq!(a.scaling_shards, [1, 2, 4, 8]);
        assert_eq!((a.server_cpus_base, a.scale_n), (0, 8));
        let a = run(&[
            "--scaling",
            "--scaling-shards",
            "4,1, 2",
            "--server-cpus-base=2",
            "--scale-n",
            "4",
            "--client-cpus",
            "0-1",
        ])
        .unwrap();
        assert!(a.scaling);
        assert_eq!(a.rounds(), 3);
        assert_eq!(a.scaling_shards, [1, 2, 4]);
        assert_eq!((a.server_cpus_base, a.scale_n), (2, 4));
        assert!(run(&["--scaling", "--shards", "2"]).is_err());
        assert!(run(&["--scaling", "--server-cpus", "0"]).is_err());
        assert!(run(&["--scaling-shards", "0,2"]).is_err());
        assert!(run(&["--scaling-shards", ","]).is_err());
        assert!(run(&["--scale-n", "65"]).is_err());
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0").unwrap(), [0]);
        assert_eq!(parse_cpu_list("0,2").unwrap(), [0, 2]);
        assert_eq!(parse_cpu_list("1-3,6").unwrap(), [1, 2, 3, 6]);
        assert!(parse_cpu_list("").is_err());
        assert!(parse_cpu_list("1-").is_err());
    }
}
