//! Starting and stopping the server: listeners, shard threads, process
//! files and signals.
//!
//! Every shard gets its own SO_REUSEPORT listener on the client port, so the
//! kernel spreads new connections across shards and no accept is shared.
//! The listeners are bound here, before the shards start, so a random port
//! (`-p -1`) is chosen once and the ports file is right when written.
//!
//! Signals are blocked in every thread and taken synchronously by the main
//! thread with `sigwait`, which then acts on the process as a whole.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::IntoRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement, PoolPlacement};
use socket2::{Domain, Protocol, Socket, Type};

use crate::monitor::Monitor;
use crate::options::{self, Options};
use crate::plane::{Plane, ShardLink};
use crate::proto::encode::ServerInfo;
use crate::shard::{self, Control, Global, ShardSpec};

/// Threads per shard for blocking work (account resolver fetches).
const BLOCKING_THREADS: usize = 4;

/// Capacity, in batches, of each shard-to-shard channel.
const MESH_CHANNEL: usize = 1024;

/// Binds one listener per shard on the same address. The first bind picks
/// the port when a random one was asked for; the rest reuse it.
pub fn bind_listeners(host: &str, port: i32, n: usize) -> io::Result<(Vec<Socket>, SocketAddr)> {
    let want = if port < 0 { 0 } else { port as u16 };
    let mut addr: SocketAddr = (host, want).to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot resolve {host}"),
        )
    })?;
    let mut socks = Vec::with_capacity(n);
    for _ in 0..n {
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        s.bind(&addr.into())?;
        s.listen(1024)?;
        if addr.port() == 0 {
            addr = s.local_addr()?.as_socket().expect("inet socket");
        }
        socks.push(s);
    }
    Ok((socks, addr))
}

/// Raises the descriptor limit to its hard maximum (the reference's Go
/// runtime does the same) and, as root, the locked-memory limit glommio
/// needs for its rings.
fn raise_limits() {
    // SAFETY: plain getrlimit/setrlimit on valid structs.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
        let inf = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        libc::setrlimit(libc::RLIMIT_MEMLOCK, &inf);
    }
}

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local value.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGQUIT,
        ] {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// The CPUs this process may run on (its affinity mask).
fn usable_cpus() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

/// The shard count and the CPU each shard is pinned to (None: unpinned),
/// given the CPUs the process may run on.
fn placement(opts: &Options, cores: &[usize]) -> Vec<Option<usize>> {
    let n = if opts.shards > 0 {
        opts.shards
    } else {
        cores.len().max(1)
    };
    // Unless told, pin only where a CPU is left to spare: with a shard on
    // every CPU, anything else running on the machine (clients, above all)
    // shares a pinned shard's CPU, and the shard waits for its turn there
    // while other CPUs may be idle. A SUB it has not read yet is then
    // missed by a message another shard routes meanwhile, where the
    // reference, unpinned, would have read it (see the README).
    let pin = match opts.shard_pin {
        Some(p) => p,
        None => !opts.shard_cpus.is_empty() || n < cores.len(),
    };
    (0..n)
        .map(|i| {
            if !pin {
                None
            } else if !opts.shard_cpus.is_empty() {
                opts.shard_cpus.get(i).copied()
            } else if n <= cores.len() {
                Some(cores[i])
            } else {
                None
            }
        })
        .collect()
}

/// Writes `{"nats":["nats://HOST:PORT"]}` to `<dir>/<exe>_<pid>.ports`,
/// with the monitoring URLs under `"monitoring"` when it listens.
fn write_ports_file(dir: &Path, addr: SocketAddr, monitoring: &[String]) -> io::Result<PathBuf> {
    let exe = std::env::args()
        .next()
        .and_then(|a| {
            Path::new(&a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "natrix".into());
    let path = dir.join(format!("{exe}_{}.ports", std::process::id()));
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    let host = if addr.is_ipv6() && !addr.ip().is_unspecified() {
        format!("[{host}]")
    } else {
        host
    };
    let mut body = serde_json::json!({ "nats": [format!("nats://{host}:{}", addr.port())] });
    if !monitoring.is_empty() {
        body["monitoring"] = serde_json::json!(monitoring);
    }
    std::fs::write(&path, body.to_string())?;
    Ok(path)
}

pub fn server_info(opts: &Options, server_id: &str, port: u16) -> ServerInfo {
    let mut info = ServerInfo {
        server_id: server_id.to_string(),
        server_name: opts
            .server_name
            .clone()
            .unwrap_or_else(|| server_id.to_string()),
        version: options::SERVER_VERSION.to_string(),
        proto: 1,
        go: concat!("natrix-", env!("CARGO_PKG_VERSION")).to_string(),
        host: opts.host.clone(),
        port,
        // Set from the options just below.
        headers: false,
        auth_required: false,
        tls_required: false,
        tls_verify: false,
        tls_available: false,
        max_payload: 0,
    };
    opts.apply_to_info(&mut info);
    info
}

/// Applies the logging options (at start and on reload).
fn configure_log(o: &Options) -> std::io::Result<()> {
    crate::log::set_max_traced_msg_len(o.max_traced_msg_len);
    crate::log::configure(
        o.debug,
        o.trace,
        o.logtime,
        o.log_file.clone(),
        o.log_size_limit,
    )
}

/// Runs the server until a stop signal. Returns an error message for
/// start-up failures.
pub fn run(opts: Options, reload: impl Fn() -> Result<Options, String>) -> Result<(), String> {
    raise_limits();
    configure_log(&opts).map_err(|e| format!("error opening log file: {e}"))?;
    let sigs = signal_set();
    // SAFETY: blocking signals in this thread before any other starts, so
    // every shard inherits the mask and only `sigwait` below sees them.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &sigs, std::ptr::null_mut()) };

    let cores = usable_cpus();
    let places = placement(&opts, &cores);
    let n = places.len();
    let (socks, addr) = bind_listeners(&opts.host, opts.port, n)
        .map_err(|e| format!("Error listening on port: {}:{}, {e}", opts.host, opts.port))?;
    let server_id = nkeys::KeyPair::new_server().public_key();
    let info = server_info(&opts, &server_id, addr.port());

    crate::info!("Starting nats-server");
    crate::info!(
        "  Version:  {} (natrix {})",
        options::SERVER_VERSION,
        env!("CARGO_PKG_VERSION")
    );
    crate::info!("  Name:     {}", info.server_name);
    crate::info!("  ID:       {}", server_id);
    crate::info!("  Shards:   {n}");
    let cpus = cores.len().max(1);
    if n > cpus {
        crate::warn!(
            "{n} shards on {cpus} CPUs: shards will wait for one another's CPU, and \
             traffic between shards for the scheduler; at most {cpus} shards is usually faster"
        );
    }
    if let Some(c) = &opts.config_file {
        crate::info!("Using configuration file: {}", c.display());
    }

    let global = Arc::new(Global::new(
        n,
        opts.tls.as_ref().map_or(0, |t| t.rate_limit),
    ));
    // The system account's events and requests: shards publish events
    // themselves and hand requests to the service thread started below.
    let (sys_tx, sys_rx) = std::sync::mpsc::channel();
    let system = opts.security.system_account.as_ref().map(|acc| {
        Arc::new(crate::system::System::new(
            acc,
            &server_id,
            &info.server_name,
            &info.host,
            sys_tx,
        ))
    });
    if let Some(sys) = &opts.security.system_account {
        let importers: Vec<_> = crate::system::system_importers(&opts.security, sys)
            .map(|(name, _)| crate::security::account::account_id(name))
            .collect();
        global.reserve_internal_cids(crate::security::account::account_id(sys), &importers);
    }
    let mesh = MeshBuilder::full(n, MESH_CHANNEL);
    let mut handles = Vec::with_capacity(n);
    let mut controls = Vec::with_capacity(n);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    for (i, (sock, cpu)) in socks.into_iter().zip(places).enumerate() {
        let (ctl_tx, ctl_rx) = std::sync::mpsc::channel();
        let (wake_tx, wake_rx) = std::os::unix::net::UnixStream::pair()
            .map_err(|e| format!("cannot create shard control socket: {e}"))?;
        wake_rx
            .set_nonblocking(true)
            .map_err(|e| format!("cannot create shard control socket: {e}"))?;
        controls.push(ShardLink {
            tx: ctl_tx,
            wake: wake_tx,
        });
        let spec = ShardSpec {
            listener_fd: sock.into_raw_fd(),
            opts: opts.clone(),
            info: info.clone(),
            global: global.clone(),
            mesh: mesh.clone(),
            nshards: n,
            control: ctl_rx,
            control_wake_fd: wake_rx.into_raw_fd(),
            serve: crate::conn::serve_boxed,
            ready: ready_tx.clone(),
            system: system.clone(),
        };
        let place = match cpu {
            Some(c) => Placement::Fixed(c),
            None => Placement::Unbound,
        };
        let mut builder = LocalExecutorBuilder::new(place).name(&format!("natrix-shard-{i}"));
        if !opts.shard_spin.is_zero() {
            builder = builder.spin_before_park(opts.shard_spin);
        }
        let h = builder
            // Blocking work of a shard (asking an account resolver, see
            // conn.rs connect): a few threads, so one slow account server
            // answer does not hold up the next CONNECT's.
            .blocking_thread_pool_placement(PoolPlacement::Unbound(BLOCKING_THREADS))
            .io_memory(opts.io_memory)
            .spawn(move || shard::run(spec))
            .map_err(|e| format!("cannot start shard {i}: {e}"))?;
        handles.push(h);
    }

    // Clients that connect now would wait in the listen backlog until their
    // shard runs; announce readiness (ports file, log) only once every
    // shard has joined the mesh and is accepting.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    for _ in 0..n {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if ready_rx.recv_timeout(left).is_err() {
            return Err("shards did not start within 30s".into());
        }
    }

    let plane = Arc::new(Plane::new(controls, opts.clone()));
    let _ = global.plane.set(plane.clone());
    let (monitor, monitoring) = start_monitoring(&opts, &info, &plane, system.is_some())?;
    if let Some(m) = &monitor {
        plane.set_monitor(m.clone());
    }
    if let (Some(sys), Some(m)) = (&system, &monitor) {
        crate::system::service::start(sys.clone(), m.clone(), plane.clone(), sys_rx)?;
    }

    if let Some(p) = &opts.pid_file {
        std::fs::write(p, std::process::id().to_string())
            .map_err(|e| format!("Could not write pidfile: {e}"))?;
    }
    let ports_file = match &opts.ports_file_dir {
        Some(d) => Some(
            write_ports_file(d, addr, &monitoring)
                .map_err(|e| format!("Error writing ports file: {e}"))?,
        ),
        None => None,
    };
    crate::info!("Listening for client connections on {}", addr);
    if let Some(t) = &opts.tls {
        crate::info!("TLS required for client connections");
        if t.handshake_first && t.handshake_first_fallback.is_none() {
            crate::warn!(
                "Clients that are not using \"TLS Handshake First\" option will fail to connect"
            );
        }
    }
    crate::info!("Server is ready");

    loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: waiting on the set blocked above.
        let rc = unsafe { libc::sigwait(&sigs, &mut sig) };
        if rc != 0 {
            continue;
        }
        match sig {
            libc::SIGHUP => {
                crate::info!("Reloading server configuration");
                let res = plane.apply(|current| {
                    let new = reload()
                        .and_then(|new| current.reload_refusal(&new).map_or(Ok(new), Err))?;
                    configure_log(&new).map_err(|e| format!("log file: {e}"))?;
                    Ok::<_, String>(new)
                });
                match res {
                    Ok((acked, all)) if acked == all => {
                        crate::info!("Reloaded server configuration")
                    }
                    Ok((acked, all)) => crate::warn!(
                        "Reloaded server configuration; {acked} of {all} shards confirmed"
                    ),
                    Err(e) => crate::error!("Failed to reload server configuration: {e}"),
                }
            }
            libc::SIGUSR1 => {
                if let Err(e) = crate::log::reopen() {
                    crate::error!("Error reopening log file: {e}");
                } else {
                    crate::info!("Reopened log file");
                }
            }
            libc::SIGUSR2 => {
                crate::info!("Entering lame duck mode, stop accepting new clients");
                plane.broadcast(|| Control::LameDuck);
                let current = plane.current();
                let total = current.lame_duck_duration;
                let files = (current.pid_file.clone(), ports_file.clone());
                // The process ends once the duration has passed; shards
                // close their clients over it.
                std::thread::spawn(move || {
                    std::thread::sleep(total + std::time::Duration::from_millis(200));
                    crate::info!("Lame duck mode over, shutting down");
                    for p in [files.0, files.1].into_iter().flatten() {
                        let _ = std::fs::remove_file(p);
                    }
                    crate::info!("Server Exiting..");
                    std::process::exit(0);
                });
            }
            libc::SIGQUIT => std::process::exit(1),
            _ => {
                crate::info!("Trapped {:?} signal", signal_name(sig));
                crate::info!("Initiating Shutdown...");
                // Each shard stops accepting and closes its clients after
                // flushing what is queued to them; wait for that, bounded.
                if let Some(sys) = &system {
                    // The shutdown event goes out before the clients go.
                    let (ack_tx, ack_rx) = std::sync::mpsc::channel();
                    sys.send(crate::system::SysIn::Shutdown(ack_tx));
                    let _ = ack_rx.recv_timeout(std::time::Duration::from_secs(1));
                }
                let (ack_tx, ack_rx) = std::sync::mpsc::channel();
                let asked = plane.broadcast(|| Control::Shutdown(ack_tx.clone()));
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
                for _ in 0..asked {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if ack_rx.recv_timeout(left).is_err() {
                        break;
                    }
                }
                if let Some(p) = &opts.pid_file {
                    let _ = std::fs::remove_file(p);
                }
                if let Some(p) = &ports_file {
                    let _ = std::fs::remove_file(p);
                }
                crate::info!("Server Exiting..");
                std::process::exit(0);
            }
        }
    }
}

/// Binds the HTTP and HTTPS monitoring listeners that are configured and
/// starts their threads. Returns the monitor and its URLs for the ports
/// file.
fn start_monitoring(
    opts: &Options,
    info: &ServerInfo,
    plane: &Plane,
    system: bool,
) -> Result<(Option<Arc<Monitor>>, Vec<String>), String> {
    if opts.http_port == 0 && opts.https_port == 0 && !system {
        return Ok((None, Vec::new()));
    }
    let host = opts.monitor_host();
    let bind = |port: i32| -> Result<std::net::TcpListener, String> {
        let want = if port < 0 { 0 } else { port as u16 };
        std::net::TcpListener::bind((host.as_str(), want))
            .map_err(|e| format!("Can't listen to the monitor port: listen tcp {host}:{port}: {e}"))
    };
    let mut links = Vec::with_capacity(plane.links.len());
    for c in &plane.links {
        links.push(
            c.try_clone()
                .map_err(|e| format!("cannot set up monitoring: {e}"))?,
        );
    }
    let mut mon = Monitor::new(links, info.clone(), opts.clone());
    let mut listeners = Vec::new();
    let mut urls = Vec::new();
    let url_host = if host == "0.0.0.0" || host == "::" {
        "127.0.0.1".to_string()
    } else {
        host.clone()
    };
    if opts.http_port != 0 {
        let l = bind(opts.http_port)?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        mon.http_port = port;
        crate::info!("Starting http monitor on {host}:{port}");
        urls.push(format!("http://{url_host}:{port}"));
        listeners.push((l, None));
    }
    if opts.https_port != 0 {
        let tls = opts
            .tls
            .as_ref()
            .ok_or("https_port: HTTPS monitoring needs TLS configured")?;
        let l = bind(opts.https_port)?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        mon.https_port = port;
        crate::info!("Starting https monitor on {host}:{port}");
        urls.push(format!("https://{url_host}:{port}"));
        listeners.push((l, Some(tls.monitor_config.clone())));
    }
    let mon = Arc::new(mon);
    for (l, tls) in listeners {
        let m = mon.clone();
        std::thread::Builder::new()
            .name("natrix-monitor".into())
            .spawn(move || crate::monitor::http::run_listener(m, l, tls))
            .map_err(|e| format!("cannot start the monitoring thread: {e}"))?;
    }
    Ok((Some(mon), urls))
}

fn signal_name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGINT => "interrupt",
        libc::SIGTERM => "terminated",
        _ => "signal",
    }
}
