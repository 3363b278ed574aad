//! Blocking raw-protocol NATS client.
//!
//! A connection is a [`FrameReader`] over a [`Stream`] (the socket, or a
//! TLS session on it); writes go through the same stream, so an idle
//! connection costs one file descriptor. Reads go into one large buffer and
//! every complete frame in it is handled before the next `read(2)`; writes
//! are whole batches built by the caller. [`Conn::split`] gives a writer
//! handle for reading and writing on different threads.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{bail, Context, Error, Result};
use crate::jwt;
use crate::proto::{self, parse_frame, ConnectAuth, Frame};
use crate::tls::{self, TlsStream};

/// Read buffer size for connections that carry message traffic.
pub const BIG_BUF: usize = 1 << 20;
/// Read buffer size for handshakes, probes and idle connections.
pub const SMALL_BUF: usize = 8 << 10;

/// How long one blocking write may make no progress before it fails.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a blocking read waits before the caller gets a chance to check
/// its deadline and stop flag.
pub const POLL: Duration = Duration::from_millis(100);

pub struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// What a single [`FrameReader::read_frames`] call did.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The stream delivered this many bytes (all complete frames handled).
    Data(usize),
    /// The read timed out with nothing to deliver.
    Idle,
    Eof,
}

impl<R: Read> FrameReader<R> {
    pub fn new(inner: R, capacity: usize) -> Self {
        FrameReader {
            inner,
            buf: vec![0; capacity.max(64)],
            start: 0,
            end: 0,
        }
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Bytes received but not yet handed out as frames.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Swaps the stream underneath, keeping the buffer and anything in it.
    pub fn map_inner<S>(self, f: impl FnOnce(R) -> Result<S>) -> Result<FrameReader<S>> {
        Ok(FrameReader {
            inner: f(self.inner)?,
            buf: self.buf,
            start: self.start,
            end: self.end,
        })
    }

    /// Performs one read and hands every complete frame to `on_frame`, in
    /// order. A partial trailing frame stays buffered for the next call.
    /// Stops at the first error from `on_frame` or from the parser.
    pub fn read_frames<F>(&mut self, mut on_frame: F) -> Result<ReadOutcome>
    where
        F: FnMut(Frame<'_>) -> Result<()>,
    {
        self.make_room();
        let n = match self.inner.read(&mut self.buf[self.end..]) {
            Ok(0) => return Ok(ReadOutcome::Eof),
            Ok(n) => n,
            Err(e) if is_timeout(&e) => return Ok(ReadOutcome::Idle),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(ReadOutcome::Idle),
            // A reset is the server closing on us too (it may not have read
            // everything we sent first, as when it cuts a slow consumer).
            Err(e) if is_closed(&e) => return Ok(ReadOutcome::Eof),
            Err(e) => return Err(e.into()),
        };
        self.end += n;
        while self.start < self.end {
            match parse_frame(&self.buf[self.start..self.end]).map_err(|e| Error(e.to_string()))? {
                Some((frame, used)) => {
                    on_frame(frame)?;
                    self.start += used;
                }
                None => break,
            }
        }
        Ok(ReadOutcome::Data(n))
    }

    /// Guarantees free space after `end`: rewinds when empty, compacts a
    /// partial frame to the front, and grows only when one frame is larger
    /// than the whole buffer.
    fn make_room(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end < self.buf.len() {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        } else {
            let len = self.buf.len();
            self.buf.resize(len * 2, 0);
        }
    }
}

/// The peer closed or reset the connection.
pub fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// How a connection authenticates.
#[derive(Clone, Debug, Default)]
pub enum Auth {
    #[default]
    None,
    UserPass(String, String),
    /// Operator mode: the user JWT in `CONNECT`, with the server's `INFO`
    /// nonce signed by the user's key.
    Jwt(Arc<jwt::User>),
}

#[derive(Clone, Debug)]
pub struct ConnectOpts {
    pub addr: SocketAddr,
    pub auth: Auth,
    pub name: String,
    /// Upgrade to TLS after the server's `INFO`, as NATS clients do.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl ConnectOpts {
    pub fn named(&self, name: impl Into<String>) -> ConnectOpts {
        ConnectOpts {
            name: name.into(),
            ..self.clone()
        }
    }
}

/// A connection's byte stream: plain TCP or TLS over it.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => t.sock(),
        }
    }

    /// A handle for writing from another thread while this one reads.
    pub fn try_clone_writer(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Plain(s) => Stream::Plain(s.try_clone()?),
            Stream::Tls(t) => Stream::Tls(Box::new(t.try_clone_writer()?)),
        })
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(buf),
            Stream::Tls(t) => t.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}

pub struct Conn {
    pub reader: FrameReader<Stream>,
    pings_sent: u64,
    pongs_seen: u64,
}

impl Conn {
    /// Connects and completes the handshake: read `INFO`, (with TLS: do the
    /// TLS handshake,) send `CONNECT` (with a JWT: and the signature over
    /// `INFO`'s nonce) and `PING`, wait for `PONG`. A `-ERR` (e.g. bad
    /// credentials) fails it.
    pub fn connect(opts: &ConnectOpts, read_buf: usize, deadline: Instant) -> Result<Conn> {
        let timeout = remaining(deadline).max(Duration::from_millis(1));
        let stream = TcpStream::connect_timeout(&opts.addr, timeout)
            .context(format_args!("connect {}", opts.addr))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(POLL))?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let mut reader = FrameReader::new(Stream::Plain(stream), read_buf);
        let want_nonce = matches!(opts.auth, Auth::Jwt(_));
        let nonce = read_info(&mut reader, want_nonce, deadline)?;
        if let Some(config) = &opts.tls {
            // INFO is the only clear-text frame; what follows is TLS.
            if reader.buffered() > 0 {
                bail!("server sent data after INFO before the TLS handshake");
            }
            reader = reader.map_inner(|s| {
                let Stream::Plain(tcp) = s else {
                    unreachable!("connections start in clear text")
                };
                let t = TlsStream::connect(
                    tcp,
                    config.clone(),
                    tls::cipher_buf_len(read_buf),
                    deadline,
                )?;
                Ok(Stream::Tls(Box::new(t)))
            })?;
        }
        let mut conn = Conn {
            reader,
            pings_sent: 0,
            pongs_seen: 0,
        };
        let sig;
        let auth = match &opts.auth {
            Auth::None => ConnectAuth::None,
            Auth::UserPass(u, p) => ConnectAuth::UserPass(u, p),
            Auth::Jwt(user) => {
                let Some(nonce) = nonce else {
                    bail!("server sent no nonce in INFO to sign (not in operator mode?)");
                };
                sig = jwt::sign_nonce(&user.key, &nonce)?;
                ConnectAuth::Jwt {
                    jwt: &user.jwt,
                    sig: &sig,
                }
            }
        };
        let connect = proto::encode_connect(&opts.name, auth, opts.tls.is_some());
        conn.send(connect.as_bytes())?;
        conn.flush(deadline)?;
        Ok(conn)
    }
}

/// Reads the server's greeting, and with `want_nonce` returns its `nonce`
/// (none if it has none). With TLS it is the only clear-text frame, so
/// nothing else may follow it before the client speaks.
fn read_info<R: Read>(
    reader: &mut FrameReader<R>,
    want_nonce: bool,
    deadline: Instant,
) -> Result<Option<String>> {
    let mut got_info = false;
    let mut nonce = None;
    while !got_info {
        let outcome = reader.read_frames(|f| match f {
            Frame::Info(json) => {
                got_info = true;
                if want_nonce {
                    nonce = proto::json_string_field(json, "nonce");
                }
                Ok(())
            }
            // Anything after INFO in the same read would be a protocol
            // violation by the server: it speaks only after CONNECT.
            other if got_info => bail!("unexpected frame before CONNECT: {other:?}"),
            other => bail!("expected INFO, got {other:?}"),
        })?;
        if got_info {
            break;
        }
        if outcome == ReadOutcome::Eof {
            bail!("connection closed before INFO");
        }
        if Instant::now() >= deadline {
            bail!("timed out waiting for INFO");
        }
    }
    Ok(nonce)
}

impl Conn {
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.reader.get_mut().write_all(bytes).context("write")
    }

    /// [`Conn::send`] for publishers that never wait for the server: a
    /// write that cannot proceed for the socket's write timeout, or a
    /// closed connection, is said so plainly.
    pub fn send_unpaced(&mut self, bytes: &[u8]) -> Result<()> {
        match self.reader.get_mut().write_all(bytes) {
            Ok(()) => Ok(()),
            Err(e) if is_timeout(&e) => bail!(
                "write blocked for {WRITE_TIMEOUT:?}: the server stopped reading this connection"
            ),
            Err(e) if is_closed(&e) => bail!("server closed the connection ({e})"),
            Err(e) => bail!("write: {e}"),
        }
    }

    /// Separates reading from writing, for a reader thread and a writer
    /// thread on one connection.
    pub fn split(self) -> Result<(FrameReader<Stream>, Stream)> {
        let writer = self.reader.get_ref().try_clone_writer()?;
        Ok((self.reader, writer))
    }

    /// Appends a `PING` to `batch` and counts it, so a later
    /// [`Conn::wait_pongs`] can tell which batches the server has processed.
    pub fn push_ping(&mut self, batch: &mut Vec<u8>) {
        batch.extend_from_slice(proto::PING);
        self.pings_sent += 1;
    }

    pub fn pings_sent(&self) -> u64 {
        self.pings_sent
    }

    /// Subscribes and waits until the server has processed the `SUB`.
    pub fn subscribe(
        &mut self,
        subject: &str,
        queue: Option<&str>,
        sid: u64,
        deadline: Instant,
    ) -> Result<()> {
        self.send(proto::encode_sub(subject, queue, sid).as_bytes())?;
        self.flush(deadline)
    }

    /// Sends `PING` and waits for its `PONG`: every op sent before has been
    /// processed by the server.
    pub fn flush(&mut self, deadline: Instant) -> Result<()> {
        let mut ping = Vec::with_capacity(proto::PING.len());
        self.push_ping(&mut ping);
        self.send(&ping)?;
        self.wait_pongs(self.pings_sent, deadline)
    }

    /// Reads until `target` `PONG`s have arrived in total, answering server
    /// `PING`s. Messages are an error: only publishers and connections in
    /// setup call this, and neither has subscriptions with traffic.
    pub fn wait_pongs(&mut self, target: u64, deadline: Instant) -> Result<()> {
        self.wait_pongs_unless(target, deadline, || false)
    }

    /// [`Conn::wait_pongs`] that also gives up as soon as `abort` returns
    /// true (checked at least every [`POLL`]).
    pub fn wait_pongs_unless(
        &mut self,
        target: u64,
        deadline: Instant,
        abort: impl Fn() -> bool,
    ) -> Result<()> {
        while self.pongs_seen < target {
            if abort() {
                bail!("stopped while waiting for PONG");
            }
            let mut pongs = 0;
            let mut pings = 0;
            let outcome = self.reader.read_frames(|f| match f {
                Frame::Pong => {
                    pongs += 1;
                    Ok(())
                }
                Frame::Ping => {
                    pings += 1;
                    Ok(())
                }
                Frame::Ok | Frame::Info(_) => Ok(()),
                Frame::Err(e) => bail!("server error: {}", String::from_utf8_lossy(e)),
                Frame::Msg(m) => bail!("unexpected MSG on {}", String::from_utf8_lossy(m.subject)),
            })?;
            self.pongs_seen += pongs;
            for _ in 0..pings {
                self.send(proto::PONG)?;
            }
            if outcome == ReadOutcome::Eof {
                bail!("connection closed while waiting for PONG");
            }
            if self.pongs_seen < target && Instant::now() >= deadline {
                bail!(
                    "timed out waiting for PONG ({} of {target})",
                    self.pongs_seen
                );
            }
        }
        Ok(())
    }

    /// Closes with RST instead of FIN so no TIME_WAIT entry is left on the
    /// client side; used where thousands of sockets are torn down at once.
    pub fn abort(self) {
        set_linger_zero(self.reader.get_ref().tcp());
    }
}

fn set_linger_zero(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: valid socket fd and a correctly sized, initialised linger struct.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

pub fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::selftest::Chunked;

    fn collect(data: &[u8], chunk: usize, buf: usize) -> Vec<Vec<u8>> {
        let mut r = FrameReader::new(Chunked { data, chunk }, buf);
        let mut payloads = Vec::new();
        // Each read makes progress, so EOF comes within len + 1 reads.
        for _ in 0..=data.len() {
            let out = r
                .read_frames(|f| {
                    if let Frame::Msg(m) = f {
                        payloads.push(m.payload.to_vec());
                    }
                    Ok(())
                })
                .unwrap();
            if out == ReadOutcome::Eof {
                return payloads;
            }
        }
        panic!("reader did not reach EOF");
    }

    #[test]
    fn reassembles_frames_split_across_reads() {
        let mut data = Vec::new();
        let mut want = Vec::new();
        for i in 0..200usize {
            let payload = vec![b'a' + (i % 26) as u8; i * 7];
            data.extend_from_slice(format!("MSG s.{i} 1 {}\r\n", payload.len()).as_bytes());
            data.extend_from_slice(&payload);
            data.extend_from_slice(b"\r\nPING\r\n");
            want.push(payload);
        }
        for chunk in [1, 3, 64, 1000, 1 << 20] {
            // A 64-byte buffer forces both compaction and growth.
            assert_eq!(collect(&data, chunk, 64), want, "chunk {chunk}");
            assert_eq!(collect(&data, chunk, 1 << 16), want, "chunk {chunk}");
        }
    }

    #[test]
    fn stops_on_handler_error() {
        let data = b"PING\r\nPONG\r\n";
        let mut r = FrameReader::new(Chunked { data, chunk: 100 }, 64);
        let err = r.read_frames(|f| {
            if f == Frame::Pong {
                Err("boom".into())
            } else {
                Ok(())
            }
        });
        assert_eq!(err, Err(Error("boom".into())));
    }
}
