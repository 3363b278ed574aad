//! The control plane: how threads outside the shards (the main thread,
//! monitoring, the system account's service) reach them. Each shard has a
//! control channel plus a socket whose readable byte wakes its executor;
//! nothing here touches the message path.

use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::monitor::Monitor;
use crate::options::Options;
use crate::security::resolver::lock;
use crate::shard::Control;

/// A way to one shard's control channel.
pub struct ShardLink {
    pub tx: Sender<Control>,
    pub wake: std::os::unix::net::UnixStream,
}

impl ShardLink {
    /// Queues `msg` and wakes the shard to take it; false once the shard
    /// is gone.
    pub fn send(&self, msg: Control) -> bool {
        use std::io::Write;
        self.tx.send(msg).is_ok() && (&self.wake).write(&[1]).is_ok()
    }

    pub fn try_clone(&self) -> std::io::Result<ShardLink> {
        Ok(ShardLink {
            tx: self.tx.clone(),
            wake: self.wake.try_clone()?,
        })
    }
}

/// The shards' links and the options they run with. Options change only
/// through [`Plane::apply`], one change at a time, whoever asks (a reload,
/// an account claim update).
pub struct Plane {
    pub links: Vec<ShardLink>,
    current: Mutex<Options>,
    monitor: Mutex<Option<Arc<Monitor>>>,
}

/// How long an options change waits for every shard to confirm it.
const APPLY_WAIT: Duration = Duration::from_secs(5);

impl Plane {
    pub fn new(links: Vec<ShardLink>, opts: Options) -> Plane {
        Plane {
            links,
            current: Mutex::new(opts),
            monitor: Mutex::new(None),
        }
    }

    /// Monitoring, told of every options change.
    pub fn set_monitor(&self, m: Arc<Monitor>) {
        *lock(&self.monitor) = Some(m);
    }

    /// The options the shards run with now.
    pub fn current(&self) -> Options {
        lock(&self.current).clone()
    }

    /// Sends every shard `make()`; the number of shards reached.
    pub fn broadcast(&self, make: impl Fn() -> Control) -> usize {
        self.links.iter().filter(|l| l.send(make())).count()
    }

    /// Makes the options `change` returns from the current ones take
    /// effect on every shard (each re-binds its clients); returns how many
    /// shards confirmed within the wait. `change` runs under the plane's
    /// lock, so two changes never interleave; an `Err` changes nothing.
    pub fn apply<E>(
        &self,
        change: impl FnOnce(&Options) -> Result<Options, E>,
    ) -> Result<(usize, usize), E> {
        let mut current = lock(&self.current);
        let new = change(&current)?;
        let (ack_tx, ack_rx) = std::sync::mpsc::channel();
        let asked = self.broadcast(|| Control::Reload(Box::new(new.clone()), ack_tx.clone()));
        let deadline = Instant::now() + APPLY_WAIT;
        let acked = (0..asked)
            .take_while(|_| {
                let left = deadline.saturating_duration_since(Instant::now());
                ack_rx.recv_timeout(left).is_ok()
            })
            .count();
        if let Some(m) = lock(&self.monitor).as_ref() {
            m.reloaded(new.clone());
        }
        *current = new;
        Ok((acked, self.links.len()))
    }
}
