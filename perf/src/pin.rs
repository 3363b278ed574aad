//! CPU pinning for client threads (servers are pinned with `taskset`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Hands out CPUs from `--client-cpus` round-robin, one per thread that asks.
/// With no list configured, pinning is a no-op and the scheduler decides.
#[derive(Clone, Debug, Default)]
pub struct Pinner {
    cpus: Arc<Vec<usize>>,
    next: Arc<AtomicUsize>,
}

impl Pinner {
    pub fn new(cpus: Vec<usize>) -> Self {
        Pinner {
            cpus: Arc::new(cpus),
            next: Arc::default(),
        }
    }

    /// Pins the calling thread to the next CPU in the list.
    pub fn pin_current(&self) {
        if self.cpus.is_empty() {
            return;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.cpus.len();
        // Failure only means the thread stays unpinned; the runner validated
        // the list against the machine's CPUs up front.
        core_affinity::set_for_current(core_affinity::CoreId { id: self.cpus[i] });
    }
}
