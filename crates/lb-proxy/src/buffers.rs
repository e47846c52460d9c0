//! A worker's free list of I/O buffers.
//!
//! Connections borrow buffers only while an exchange is in progress and give them back when they go
//! idle, so 10,000 idle keep-alive connections hold no buffers, and a busy worker allocates none in
//! steady state. A bodiless request gives its input buffer back as soon as its head is consumed
//! (`h1`), so a connection waiting for its answer holds two buffers, not three.

use std::cell::RefCell;

/// Capacity of every pooled buffer: large enough for typical heads and a useful body chunk.
pub(crate) const BUF_SIZE: usize = 16 * 1024;
/// Buffers kept on the free list; beyond this, returned buffers are freed.
const MAX_FREE: usize = 1024;

/// The free list (single-threaded: one per worker).
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    free: RefCell<Vec<Vec<u8>>>,
}

impl BufferPool {
    /// An empty buffer with at least [`BUF_SIZE`] capacity.
    pub(crate) fn take(&self) -> Vec<u8> {
        self.free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BUF_SIZE))
    }

    /// Returns a buffer. Buffers that grew far beyond the usual size (a large head) are freed
    /// rather than kept, so one odd request does not pin memory forever.
    pub(crate) fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() < BUF_SIZE || buf.capacity() > 4 * BUF_SIZE {
            return;
        }
        buf.clear();
        let mut free = self.free.borrow_mut();
        if free.len() < MAX_FREE {
            free.push(buf);
        }
    }
}
