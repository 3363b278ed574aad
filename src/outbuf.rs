//! A connection's outbound buffer: a chain of chunks, not one growing
//! vector.
//!
//! A consumer that falls behind collects megabytes before its producers are
//! told to wait. In one vector every doubling copies all of it again, and a
//! buffer that big cannot be kept between bursts without holding memory
//! (and cache) that the next burst may not need. A chain grows without
//! copying: the first chunk grows as a vector does, up to [`CHUNK`]; past
//! that, full-size chunks are appended, taken from a small per-thread pool
//! of recently written ones, so they are still warm in cache.
//!
//! Invariants: only the last chunk is ever appended to; an empty buffer
//! holds at most one (empty) chunk of at most [`CHUNK`] bytes, which a
//! connection keeps between writes, as it kept its vector before.

use std::cell::RefCell;

/// Size of the chunks a long buffer is made of, and the most the first
/// chunk grows to.
pub const CHUNK: usize = 64 * 1024;

/// Written chunks each thread keeps for reuse: 1 MiB. Past that they go
/// back to the allocator, so memory follows the load down.
const POOL_MAX: usize = 16;

thread_local! {
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

fn pooled_chunk() -> Vec<u8> {
    POOL.with(|p| p.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(CHUNK))
}

fn recycle_chunk(mut c: Vec<u8>) {
    if c.capacity() != CHUNK {
        return;
    }
    c.clear();
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_MAX {
            p.push(c);
        }
    });
}

#[derive(Default)]
pub struct OutBuf {
    /// Earlier chunks, in order, each no longer appended to.
    full: Vec<Vec<u8>>,
    /// Bytes in `full`.
    full_len: usize,
    /// The chunk appended to; it comes after `full`.
    cur: Vec<u8>,
}

impl OutBuf {
    #[inline]
    pub fn len(&self) -> usize {
        self.full_len + self.cur.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.append(bytes.len(), |v| v.extend_from_slice(bytes));
    }

    /// Appends with `f`, which writes about `need` bytes (more only costs
    /// a reallocation) to the end of the last chunk.
    #[inline]
    pub fn append(&mut self, need: usize, f: impl FnOnce(&mut Vec<u8>)) {
        let want = self.cur.len() + need;
        if want > self.cur.capacity() {
            self.make_room(need);
        }
        f(&mut self.cur);
    }

    /// Makes room for `need` more bytes in `cur`: it may grow as a vector
    /// would up to a chunk's size; past that a new chunk is started.
    #[cold]
    fn make_room(&mut self, need: usize) {
        let want = self.cur.len() + need;
        if want <= CHUNK {
            let target = (self.cur.capacity() * 2).clamp(want, CHUNK);
            self.cur.reserve_exact(target - self.cur.len());
            return;
        }
        let next = if need <= CHUNK {
            pooled_chunk()
        } else {
            // An oversized message gets a chunk of its own size.
            Vec::with_capacity(need)
        };
        let done = std::mem::replace(&mut self.cur, next);
        if done.is_empty() {
            recycle_chunk(done);
        } else {
            self.full_len += done.len();
            self.full.push(done);
        }
    }

    /// How many chunks [`chunk`](Self::chunk) numbers; some may be empty.
    pub fn chunk_count(&self) -> usize {
        self.full.len() + 1
    }

    /// Chunk `i` in write order.
    pub fn chunk(&self, i: usize) -> &[u8] {
        match self.full.get(i) {
            Some(c) => c,
            None => &self.cur,
        }
    }

    /// The non-empty chunks in order, for writing.
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.chunk_count())
            .map(|i| self.chunk(i))
            .filter(|c| !c.is_empty())
    }

    /// Empties the buffer (after a write, or when it will not be sent),
    /// keeping the chunk appended to last if it is no bigger than a chunk,
    /// and pooling the others.
    pub fn clear(&mut self) {
        for c in self.full.drain(..) {
            recycle_chunk(c);
        }
        self.full_len = 0;
        if self.cur.capacity() > CHUNK {
            self.cur = Vec::new();
        } else {
            self.cur.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(b: &OutBuf) -> Vec<u8> {
        b.chunks().flat_map(|c| c.iter().copied()).collect()
    }

    #[test]
    fn keeps_bytes_in_order_across_chunks() {
        let mut b = OutBuf::default();
        let mut want = Vec::new();
        for i in 0..5000u32 {
            let piece: Vec<u8> = (0..(i % 97) as u8 + 1).map(|k| k ^ i as u8).collect();
            b.extend_from_slice(&piece);
            want.extend_from_slice(&piece);
        }
        assert_eq!(b.len(), want.len());
        assert_eq!(contents(&b), want);
        assert!(b.full.len() > 1, "{} bytes fit one chunk", want.len());
        for c in b.full.iter().chain([&b.cur]) {
            assert!(c.capacity() <= CHUNK);
        }
    }

    #[test]
    fn an_oversized_message_gets_its_own_chunk_and_is_not_kept() {
        let mut b = OutBuf::default();
        b.extend_from_slice(b"MSG a 1 3\r\n");
        let big = vec![7u8; 3 * CHUNK];
        b.extend_from_slice(&big);
        b.extend_from_slice(b"\r\n");
        assert_eq!(b.len(), 11 + 3 * CHUNK + 2);
        let mut want = b"MSG a 1 3\r\n".to_vec();
        want.extend_from_slice(&big);
        want.extend_from_slice(b"\r\n");
        assert_eq!(contents(&b), want);
        b.clear();
        assert!(b.is_empty());
        assert!(b.full.is_empty());
        assert!(b.cur.capacity() <= CHUNK);
        assert_eq!(contents(&b), b"");
    }

    #[test]
    fn an_oversized_first_chunk_is_given_back() {
        let mut b = OutBuf::default();
        b.extend_from_slice(&vec![1u8; 2 * CHUNK]);
        b.clear();
        assert_eq!(b.cur.capacity(), 0);
        b.extend_from_slice(b"PONG\r\n");
        assert_eq!(contents(&b), b"PONG\r\n");
    }

    #[test]
    fn append_counts_what_was_written() {
        let mut b = OutBuf::default();
        b.append(4, |v| v.extend_from_slice(b"longer than said"));
        assert_eq!(b.len(), 16);
        b.clear();
        assert_eq!(b.len(), 0);
        assert_eq!(contents(&b), b"");
    }
}
