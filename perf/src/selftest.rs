//! In-memory measurement of the client's own per-message cost, with no
//! server and no sockets: the encode loop publishers run and the
//! read/parse/check loop subscribers run. If these rates are far above the
//! rates measured against a server, the client is not the bottleneck.

use std::hint::black_box;
use std::io::{self, Read};
use std::time::{Duration, Instant};

use crate::client::{FrameReader, ReadOutcome, BIG_BUF};
use crate::proto::{PubTemplate, Stamp};
use crate::scenarios::Tally;

/// Payload sizes the throughput scenarios use.
pub const PAYLOADS: [usize; 4] = [16, 128, 256, 4096];

#[derive(Clone, Debug, PartialEq)]
pub struct SelfTestRow {
    pub payload: usize,
    /// Messages per second one publisher thread can encode into batches.
    pub encode_rate: f64,
    /// Messages per second one subscriber thread can parse and check.
    pub parse_rate: f64,
}

/// Delivers at most `chunk` bytes per read, like a socket under load.
pub struct Chunked<'a> {
    pub data: &'a [u8],
    pub chunk: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.data.len().min(self.chunk).min(out.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Each rate is the best of three trials of `per_trial`: capacity is what
/// the code can do, and a busy machine only ever makes a trial slower.
pub fn run(per_trial: Duration) -> Vec<SelfTestRow> {
    let best = |f: &dyn Fn() -> f64| (0..3).map(|_| f()).fold(0.0, f64::max);
    PAYLOADS
        .iter()
        .map(|&payload| SelfTestRow {
            payload,
            encode_rate: best(&|| encode_rate(payload, per_trial)),
            parse_rate: best(&|| parse_rate(payload, per_trial)),
        })
        .collect()
}

/// The publisher's inner loop: fill a 64 KiB batch, hand it off, repeat.
fn encode_rate(payload: usize, budget: Duration) -> f64 {
    let template = PubTemplate::new("bench.data", None, payload);
    let per_batch = ((64 << 10) / template.wire_len()).max(1) as u64;
    let mut out = Vec::with_capacity(per_batch as usize * template.wire_len());
    let start = Instant::now();
    let mut seq = 0u64;
    while start.elapsed() < budget {
        for _ in 0..64 {
            for s in seq..seq + per_batch {
                template.encode(
                    &mut out,
                    Stamp {
                        publisher: 0,
                        seq: s,
                    },
                );
            }
            seq += per_batch;
            black_box(&out);
            out.clear();
        }
    }
    seq as f64 / start.elapsed().as_secs_f64()
}

/// The subscriber's inner loop over what a server would send: read into the
/// frame buffer, parse each `MSG`, check its stamp.
fn parse_rate(payload: usize, budget: Duration) -> f64 {
    let msgs = ((8 << 20) / (payload + 32)).max(1000) as u64;
    let wire = server_stream(payload, msgs);
    let start = Instant::now();
    let mut total = 0u64;
    while start.elapsed() < budget {
        let mut reader = FrameReader::new(
            Chunked {
                data: &wire,
                chunk: 256 << 10,
            },
            BIG_BUF,
        );
        let mut tally = Tally::new(1, true, payload);
        loop {
            let out = reader
                .read_frames(|f| match f {
                    crate::proto::Frame::Msg(m) => tally.on_msg(m.payload),
                    _ => Ok(()),
                })
                .expect("self-test stream is well formed");
            if out == ReadOutcome::Eof {
                break;
            }
        }
        assert_eq!(tally.count, msgs, "self-test parser lost messages");
        total += tally.count;
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// `MSG` frames exactly as a server delivers `msgs` stamped messages.
fn server_stream(payload: usize, msgs: u64) -> Vec<u8> {
    let header = format!("MSG bench.data 1 {payload}\r\n");
    let mut body = vec![b'x'; payload];
    let mut wire = Vec::with_capacity((header.len() + payload + 2) * msgs as usize);
    for seq in 0..msgs {
        Stamp { publisher: 0, seq }.write(&mut body);
        wire.extend_from_slice(header.as_bytes());
        wire.extend_from_slice(&body);
        wire.extend_from_slice(b"\r\n");
    }
    wire
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_positive_rates_for_every_payload() {
        let rows = run(Duration::from_millis(5));
        assert_eq!(rows.len(), PAYLOADS.len());
        for r in rows {
            assert!(r.encode_rate > 0.0 && r.parse_rate > 0.0, "{r:?}");
        }
    }
}
