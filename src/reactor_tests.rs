//! Checks of the vendored glommio's reactor changes (vendor/glommio/NATRIX.md)
//! as natrix depends on them: a shard that parks must still be woken by
//! every message another shard sends it.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use glommio::channels::shared_channel;
use glommio::{LocalExecutorBuilder, Placement};

use crate::options::IO_MEMORY;

/// A producer streams numbers into a one-slot channel with a jittered pause
/// before each send, so its pushes land at every point of the consumer's way
/// to sleep, including between "notify me" and the last sweep of its
/// channels: the window the fence pair in glommio's `SleepNotifier` closes.
/// If the consumer slept through a push, the producer would find the slot
/// still full and wait for room, and both would sleep forever (no timers
/// run here); the deadline turns that into a failure instead of a hang.
///
/// This guards the wake path as a whole. It cannot prove the fences
/// themselves: on x86 it also passed in three runs with the parking
/// side's fence taken out, as the window is nanoseconds wide and other
/// locked instructions on the way to sleep may close it too.
#[test]
fn parked_executors_never_miss_a_wake_up() {
    const ITEMS: u64 = 20_000;
    let (tx, rx) = shared_channel::new_bounded::<u64>(1);
    let (done_tx, done_rx) = mpsc::channel();

    let consumer = LocalExecutorBuilder::new(Placement::Unbound)
        .name("wake-consumer")
        .io_memory(IO_MEMORY)
        .spawn(move || async move {
            let rx = rx.connect().await;
            let mut sum = 0;
            while let Some(n) = rx.recv().await {
                sum += n;
            }
            let _ = done_tx.send(sum);
        })
        .expect("consumer executor");
    let producer = LocalExecutorBuilder::new(Placement::Unbound)
        .name("wake-producer")
        .io_memory(IO_MEMORY)
        .spawn(move || async move {
            let tx = tx.connect().await;
            let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
            for n in 0..ITEMS {
                // xorshift: a pause of 0 to ~4 µs, busy so the thread keeps
                // its CPU and the push time is what the pause says.
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let until = Instant::now() + Duration::from_nanos(seed % 4_096);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                tx.send(n).await.expect("consumer gone");
            }
        })
        .expect("producer executor");

    let sum = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("not done within 60 s: an executor slept through a message");
    assert_eq!(sum, ITEMS * (ITEMS - 1) / 2);
    producer.join().expect("producer executor");
    consumer.join().expect("consumer executor");
}
