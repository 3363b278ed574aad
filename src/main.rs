use std::process::ExitCode;

use natrix::cli::{self, Flags};
use natrix::options::Options;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Applies command-line flags over `opts` (flags win over the config file).
fn apply_flags(opts: &mut Options, f: &Flags) -> Result<(), String> {
    if let Some(u) = f.unsupported.first() {
        return Err(format!(
            "{u}: this nats-server feature is not supported by natrix"
        ));
    }
    if let Some(p) = f.http_port {
        opts.http_port = p;
    }
    if let Some(p) = f.https_port {
        opts.https_port = p;
    }
    if let Some(b) = &f.http_base_path {
        opts.http_base_path = b.clone();
    }
    if f.user.is_some() || f.pass.is_some() || f.auth.is_some() {
        let sec = std::sync::Arc::make_mut(&mut opts.security);
        sec.auth
            .apply_flags(f.user.as_deref(), f.pass.as_deref(), f.auth.as_deref());
    }
    if let Some(h) = &f.host {
        opts.host = h.clone();
    }
    if let Some(p) = f.port {
        opts.port = p;
    }
    if let Some(n) = &f.server_name {
        opts.server_name = Some(n.clone());
    }
    if let Some(a) = &f.client_advertise {
        opts.client_advertise = Some(a.clone());
    }
    if let Some(d) = f.debug {
        opts.debug = d;
    }
    if let Some(t) = f.trace {
        opts.trace = t;
    }
    if let Some(n) = f.max_traced_msg_len {
        opts.max_traced_msg_len = n;
    }
    if let Some(t) = f.logtime {
        opts.logtime = t;
    }
    if let Some(l) = &f.log_file {
        opts.log_file = Some(l.clone());
    }
    if let Some(n) = f.log_size_limit {
        opts.log_size_limit = n;
    }
    if let Some(p) = &f.pid_file {
        opts.pid_file = Some(p.clone());
    }
    if let Some(d) = &f.ports_file_dir {
        opts.ports_file_dir = Some(d.clone());
    }
    if f.tls || f.tls_verify {
        // As the reference: the flags replace the file's tls block.
        let t = natrix::config::TlsConfig {
            cert_file: f.tls_cert.clone(),
            key_file: f.tls_key.clone(),
            ca_file: f.tls_ca.clone(),
            verify: f.tls_verify,
            ..Default::default()
        };
        opts.tls = Some(std::sync::Arc::new(
            natrix::security::tls::TlsSettings::from_config(&t)?,
        ));
    }
    if let Some(s) = f.shards {
        if s == 0 {
            return Err("--shards must be at least 1".into());
        }
        opts.shards = s;
    }
    Ok(())
}

/// Defaults, then the config file (if any), then the flags.
fn load_options(flags: &Flags) -> Result<Options, String> {
    let mut opts = match &flags.config {
        Some(path) => {
            let cfg = natrix::config::load(path).map_err(|e| e.to_string())?;
            for w in &cfg.warnings {
                natrix::warn!("{w}");
            }
            Options::from_config(&cfg, path)?
        }
        None => Options::default(),
    };
    for w in &flags.warnings {
        natrix::warn!("{w}");
    }
    apply_flags(&mut opts, flags)?;
    opts.validate()?;
    Ok(opts)
}

/// `--signal CMD[=PID]`: sends the matching signal to a running natrix.
fn send_signal(spec: &str) -> Result<(), String> {
    let (cmd, pid) = match spec.split_once('=') {
        Some((c, p)) => (
            c,
            Some(p.parse::<i32>().map_err(|_| format!("invalid pid: {p}"))?),
        ),
        None => (spec, None),
    };
    let sig = match cmd {
        "stop" => libc::SIGKILL,
        "quit" => libc::SIGINT,
        "term" => libc::SIGTERM,
        "reopen" => libc::SIGUSR1,
        "reload" => libc::SIGHUP,
        "ldm" => libc::SIGUSR2,
        _ => return Err(format!("unknown signal {cmd:?}")),
    };
    let pids = match pid {
        Some(p) => vec![p],
        None => find_pids()?,
    };
    match pids.as_slice() {
        [] => Err("no natrix process running".into()),
        [p] => {
            // SAFETY: kill(2) with a pid and a valid signal number.
            if unsafe { libc::kill(*p, sig) } != 0 {
                return Err(format!(
                    "sending signal to {p}: {}",
                    std::io::Error::last_os_error()
                ));
            }
            Ok(())
        }
        many => Err(format!(
            "multiple natrix processes running:\n{}",
            many.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )),
    }
}

/// Other processes running this executable's name.
fn find_pids() -> Result<Vec<i32>, String> {
    let me = std::process::id() as i32;
    let name = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "natrix".into());
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc")
        .map_err(|e| e.to_string())?
        .flatten()
    {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(comm) = std::fs::read_to_string(e.path().join("comm")) {
            if comm.trim_end() == name.chars().take(15).collect::<String>() {
                out.push(pid);
            }
        }
    }
    Ok(out)
}

fn main() -> ExitCode {
    // No transparent huge pages for this process: the allocator marks its
    // arenas for them, so each thread's first small allocation made a
    // whole 2 MiB page resident (an idle one-shard server held 20 MB, 14
    // of them in such pages, against 7 MB without). A broker's memory is
    // many small per-connection buffers, which gain nothing from them.
    // SAFETY: prctl with PR_SET_THP_DISABLE takes plain integers and only
    // sets a flag on this process.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("explain") {
        return natrix::security::explain::run(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("jwt") {
        return natrix::jwtcli::run(&args[1..]);
    }
    let flags = match cli::parse(&args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}\n{}", cli::USAGE);
            return ExitCode::from(1);
        }
    };
    if flags.show_help {
        print!("{}", cli::USAGE);
        return ExitCode::SUCCESS;
    }
    if flags.show_version {
        println!(
            "natrix: v{} (nats-server protocol level {})",
            env!("CARGO_PKG_VERSION"),
            natrix::options::SERVER_VERSION
        );
        return ExitCode::SUCCESS;
    }
    if let Some(s) = &flags.signal {
        return match send_signal(s) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("natrix: {e}");
                ExitCode::from(1)
            }
        };
    }
    if flags.check_config {
        let Some(path) = &flags.config else {
            eprintln!("natrix: must specify [-c, --config] option to check configuration file(s)");
            return ExitCode::from(1);
        };
        return match load_options(&flags) {
            Ok(_) => {
                eprintln!("natrix: configuration file {} is valid", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("natrix: {e}");
                ExitCode::from(1)
            }
        };
    }
    let opts = match load_options(&flags) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("natrix: {e}");
            return ExitCode::from(1);
        }
    };
    let reload_flags = flags.clone();
    let reload = move || load_options(&reload_flags);
    match natrix::server::run(opts, reload) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            natrix::fatal!("{e}");
            ExitCode::from(1)
        }
    }
}
