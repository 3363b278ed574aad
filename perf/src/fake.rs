//! A tiny in-process NATS server for tests of the harness itself: enough
//! protocol for the scenarios (INFO, CONNECT, PING/PONG, SUB with queue
//! groups, UNSUB, PUB with reply subjects; literal subjects only), plus
//! injected faults, so the tests can check that loss and slow-consumer cuts
//! are reported as such.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::proto::Stamp;

/// What goes wrong, counted in data messages (probes are not counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Message `n` (1-based) is dropped for every subscriber.
    DropNth(u64),
    /// Only the first `n` messages are delivered.
    StopAfter(u64),
    /// After `n` messages every subscriber's connection is shut down.
    CloseSubscribersAfter(u64),
    /// After `n` messages subscribers get `-ERR 'Slow Consumer'` and are
    /// shut down.
    SlowConsumerErrAfter(u64),
}

struct Sub {
    conn: usize,
    sid: String,
    subject: String,
    queue: Option<String>,
    out: Arc<Mutex<TcpStream>>,
}

struct State {
    subs: Vec<Sub>,
    data_msgs: u64,
    next_member: HashMap<String, usize>,
    fault: Fault,
    tripped: bool,
}

pub struct FakeServer {
    pub addr: SocketAddr,
}

/// Serves until the test process exits.
pub fn start(fault: Fault) -> FakeServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake server");
    let addr = listener.local_addr().expect("fake server address");
    let state = Arc::new(Mutex::new(State {
        subs: Vec::new(),
        data_msgs: 0,
        next_member: HashMap::new(),
        fault,
        tripped: false,
    }));
    thread::spawn(move || {
        for (id, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { continue };
            let state = state.clone();
            thread::spawn(move || {
                let _ = serve(id, stream, &state);
            });
        }
    });
    FakeServer { addr }
}

fn serve(id: usize, stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let out = Arc::new(Mutex::new(stream.try_clone()?));
    out.lock()
        .unwrap()
        .write_all(b"INFO {\"server_id\":\"fake\",\"max_payload\":1048576}\r\n")?;
    let mut r = BufReader::with_capacity(1 << 16, stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            state.lock().unwrap().subs.retain(|s| s.conn != id);
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let args: Vec<&str> = text.split_whitespace().collect();
        let Some(op) = args.first() else { continue };
        match op.to_ascii_uppercase().as_str() {
            "PING" => out.lock().unwrap().write_all(b"PONG\r\n")?,
            "SUB" => {
                let (subject, queue, sid) = match args.len() {
                    3 => (args[1], None, args[2]),
                    _ => (args[1], Some(args[2].to_string()), args[3]),
                };
                state.lock().unwrap().subs.push(Sub {
                    conn: id,
                    sid: sid.to_string(),
                    subject: subject.to_string(),
                    queue,
                    out: out.clone(),
                });
            }
            "UNSUB" => {
                let sid = args.get(1).copied().unwrap_or_default();
                state
                    .lock()
                    .unwrap()
                    .subs
                    .retain(|s| !(s.conn == id && s.sid == sid));
            }
            "PUB" => {
                let (subject, reply, len) = match args.len() {
                    3 => (args[1], None, args[2]),
                    _ => (args[1], Some(args[2]), args[3]),
                };
                let len: usize = len.parse().unwrap_or(0);
                let mut payload = vec![0u8; len + 2];
                r.read_exact(&mut payload)?;
                payload.truncate(len);
                deliver(state, subject, reply, &payload);
            }
            _ => {}
        }
    }
}

fn deliver(state: &Mutex<State>, subject: &str, reply: Option<&str>, payload: &[u8]) {
    let mut targets: Vec<(String, Arc<Mutex<TcpStream>>)> = Vec::new();
    {
        let mut st = state.lock().unwrap();
        if Stamp::read(payload).is_some_and(|s| !s.is_probe()) {
            st.data_msgs += 1;
            let n = st.data_msgs;
            let cut = |st: &mut State, err: bool| {
                if !st.tripped {
                    st.tripped = true;
                    for s in &st.subs {
                        let mut o = s.out.lock().unwrap();
                        if err {
                            let _ = o.write_all(b"-ERR 'Slow Consumer'\r\n");
                        }
                        let _ = o.shutdown(Shutdown::Both);
                    }
                }
            };
            match st.fault {
                Fault::DropNth(k) if n == k => return,
                Fault::StopAfter(k) if n > k => return,
                Fault::CloseSubscribersAfter(k) if n > k => return cut(&mut st, false),
                Fault::SlowConsumerErrAfter(k) if n > k => return cut(&mut st, true),
                _ => {}
            }
        }
        let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, s) in st.subs.iter().enumerate() {
            if s.subject != subject {
                continue;
            }
            match &s.queue {
                Some(q) => groups.entry(q.clone()).or_default().push(i),
                None => targets.push((s.sid.clone(), s.out.clone())),
            }
        }
        for (q, members) in groups {
            let next = st.next_member.entry(q).or_insert(0);
            let pick = members[*next % members.len()];
            *next += 1;
            let s = &st.subs[pick];
            targets.push((s.sid.clone(), s.out.clone()));
        }
    }
    for (sid, out) in targets {
        let mut frame = match reply {
            Some(r) => format!("MSG {subject} {sid} {r} {}\r\n", payload.len()),
            None => format!("MSG {subject} {sid} {}\r\n", payload.len()),
        }
        .into_bytes();
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        let _ = out.lock().unwrap().write_all(&frame);
    }
}
