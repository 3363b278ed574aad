//! In-memory measurement of the client's own per-message cost, with no
//! server and no sockets: the encode loop publishers run and the
//! read/parse/check loop subscribers run. If these rates are far above the
//! rates measured against a server, the client is not the bottleneck.
//!
//! With TLS the same loops also run through the client's [`TlsStream`]:
//! publishers encode and seal (encrypt) batches, subscribers open
//! (decrypt) records sealed by an in-memory rustls server and parse them.

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ServerConnection};

use crate::client::{FrameReader, ReadOutcome, BIG_BUF};
use crate::error::{bail, Error, Result};
use crate::proto::{PubTemplate, Stamp};
use crate::scenarios::Tally;
use crate::tls::{self, TlsStream};

/// Payload sizes the throughput scenarios use.
pub const PAYLOADS: [usize; 4] = [16, 128, 256, 4096];

#[derive(Clone, Debug, PartialEq)]
pub struct SelfTestRow {
    pub payload: usize,
    /// Messages per second one publisher thread can encode into batches.
    pub encode_rate: f64,
    /// Messages per second one subscriber thread can parse and check.
    pub parse_rate: f64,
    /// The same over TLS, when measured.
    pub tls: Option<TlsRates>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TlsRates {
    /// Messages per second one publisher thread can encode and encrypt.
    pub encode_rate: f64,
    /// Messages per second one subscriber thread can decrypt, parse and check.
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

/// Writes vanish, as into a socket nobody reads.
impl Write for Chunked<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        black_box(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Each rate is the best of three trials of `per_trial`: capacity is what
/// the code can do, and a busy machine only ever makes a trial slower.
/// `with_tls` adds the TLS rates (if TLS setup fails, they stay absent and
/// a warning is printed).
pub fn run(per_trial: Duration, with_tls: bool) -> Vec<SelfTestRow> {
    let best = |f: &dyn Fn() -> f64| (0..3).map(|_| f()).fold(0.0, f64::max);
    let tls = if with_tls {
        match TlsPair::configs() {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("natrix-bench: warning: TLS self-test skipped: {e}");
                None
            }
        }
    } else {
        None
    };
    PAYLOADS
        .iter()
        .map(|&payload| SelfTestRow {
            payload,
            encode_rate: best(&|| encode_rate(payload, per_trial)),
            parse_rate: best(&|| parse_rate(payload, per_trial)),
            tls: tls.as_ref().and_then(|pair| {
                let rates = || -> Result<TlsRates> {
                    let mut encode = 0.0f64;
                    let mut parse = 0.0f64;
                    for _ in 0..3 {
                        encode = encode.max(tls_encode_rate(pair, payload, per_trial)?);
                        parse = parse.max(tls_parse_rate(pair, payload, per_trial)?);
                    }
                    Ok(TlsRates {
                        encode_rate: encode,
                        parse_rate: parse,
                    })
                };
                rates()
                    .map_err(|e| eprintln!("natrix-bench: warning: TLS self-test: {e}"))
                    .ok()
            }),
        })
        .collect()
}

/// Client and server configurations for sessions joined in memory.
pub struct TlsPair {
    client: Arc<ClientConfig>,
    server: Arc<rustls::ServerConfig>,
}

impl TlsPair {
    pub fn configs() -> Result<TlsPair> {
        let g = tls::generate_certs()?;
        Ok(TlsPair {
            client: tls::client_config(g.ca_der.clone())?,
            server: tls::server_config(&g)?,
        })
    }

    /// A fresh client and server session with the handshake done.
    pub fn connect(&self) -> Result<(ClientConnection, ServerConnection)> {
        let name = ServerName::try_from("127.0.0.1").expect("valid IP server name");
        let tls_err = |e: rustls::Error| Error(format!("TLS: {e}"));
        let mut client = ClientConnection::new(self.client.clone(), name).map_err(tls_err)?;
        let mut server = ServerConnection::new(self.server.clone()).map_err(tls_err)?;
        handshake_in_memory(&mut client, &mut server)?;
        Ok((client, server))
    }
}

/// Passes handshake records between two sessions until both are done.
pub fn handshake_in_memory(
    client: &mut ClientConnection,
    server: &mut ServerConnection,
) -> Result<()> {
    let tls_err = |e: rustls::Error| Error(format!("TLS: {e}"));
    let mut wire = Vec::new();
    for _ in 0..10 {
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
        while client.wants_write() {
            client.write_tls(&mut wire)?;
        }
        let mut rest = &wire[..];
        while !rest.is_empty() {
            server.read_tls(&mut rest)?;
            server.process_new_packets().map_err(tls_err)?;
        }
        wire.clear();
        while server.wants_write() {
            server.write_tls(&mut wire)?;
        }
        let mut rest = &wire[..];
        while !rest.is_empty() {
            client.read_tls(&mut rest)?;
            client.process_new_packets().map_err(tls_err)?;
        }
        wire.clear();
    }
    bail!("in-memory TLS handshake did not finish")
}

/// The publisher's inner loop: fill a 64 KiB batch, hand it off, repeat.
fn encode_rate(payload: usize, budget: Duration) -> f64 {
    encode_loop(payload, budget, |batch| {
        black_box(batch);
        Ok(())
    })
    .expect("in-memory hand-off cannot fail")
}

/// [`encode_rate`] with every batch encrypted by the client's TLS stream
/// (into a sink; nothing decrypts it).
fn tls_encode_rate(pair: &TlsPair, payload: usize, budget: Duration) -> Result<f64> {
    let (client, _server) = pair.connect()?;
    let sink = Chunked {
        data: &[],
        chunk: 0,
    };
    let mut stream = TlsStream::new(sink, client, tls::cipher_buf_len(0));
    encode_loop(payload, budget, |batch| Ok(stream.write_all(batch)?))
}

fn encode_loop(
    payload: usize,
    budget: Duration,
    mut hand_off: impl FnMut(&[u8]) -> Result<()>,
) -> Result<f64> {
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
            hand_off(&out)?;
            out.clear();
        }
    }
    Ok(seq as f64 / start.elapsed().as_secs_f64())
}

fn stream_msgs(payload: usize) -> u64 {
    ((8 << 20) / (payload + 32)).max(1000) as u64
}

/// The subscriber's inner loop over what a server would send: read into the
/// frame buffer, parse each `MSG`, check its stamp.
fn parse_rate(payload: usize, budget: Duration) -> f64 {
    let msgs = stream_msgs(payload);
    let wire = server_stream(payload, msgs);
    let start = Instant::now();
    let mut total = 0u64;
    while start.elapsed() < budget {
        let reader = FrameReader::new(
            Chunked {
                data: &wire,
                chunk: 256 << 10,
            },
            BIG_BUF,
        );
        total += parse_all(reader, payload, msgs).expect("self-test stream is well formed");
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// [`parse_rate`] with the stream sealed by an in-memory server session and
/// opened by the client's TLS stream. Only the client side is timed; each
/// pass needs a fresh session since records can be opened only once.
fn tls_parse_rate(pair: &TlsPair, payload: usize, budget: Duration) -> Result<f64> {
    let msgs = stream_msgs(payload);
    let plain = server_stream(payload, msgs);
    let mut wire = Vec::with_capacity(plain.len() + plain.len() / 64 + 4096);
    let (mut busy, mut total) = (Duration::ZERO, 0u64);
    while busy < budget {
        let (client, mut server) = pair.connect()?;
        server.set_buffer_limit(None);
        server.writer().write_all(&plain)?;
        wire.clear();
        while server.wants_write() {
            server.write_tls(&mut wire)?;
        }
        let start = Instant::now();
        let sock = Chunked {
            data: &wire,
            chunk: 256 << 10,
        };
        let reader = FrameReader::new(
            TlsStream::new(sock, client, tls::cipher_buf_len(BIG_BUF)),
            BIG_BUF,
        );
        total += parse_all(reader, payload, msgs)?;
        busy += start.elapsed();
    }
    Ok(total as f64 / busy.as_secs_f64())
}

/// Reads `reader` to its end, checking every message; returns the count.
fn parse_all<R: Read>(mut reader: FrameReader<R>, payload: usize, msgs: u64) -> Result<u64> {
    let mut tally = Tally::new(1, true, payload);
    loop {
        let out = reader.read_frames(|f| match f {
            crate::proto::Frame::Msg(m) => tally.on_msg(m.payload),
            _ => Ok(()),
        })?;
        if out == ReadOutcome::Eof {
            break;
        }
    }
    if tally.count != msgs {
        bail!("self-test parser saw {} of {msgs} messages", tally.count);
    }
    Ok(tally.count)
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
        let rows = run(Duration::from_millis(5), false);
        assert_eq!(rows.len(), PAYLOADS.len());
        for r in rows {
            assert!(r.encode_rate > 0.0 && r.parse_rate > 0.0, "{r:?}");
            assert!(r.tls.is_none());
        }
    }

    #[test]
    fn measures_tls_rates_through_the_tls_stream() {
        let rows = run(Duration::from_millis(5), true);
        for r in rows {
            let t = r.tls.expect("TLS rates measured");
            assert!(t.encode_rate > 0.0 && t.parse_rate > 0.0, "{r:?}");
        }
    }
}
