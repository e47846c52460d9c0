//! Body fingerprints and the deterministic byte pattern big test bodies are made of.
//!
//! A 64 MiB body is never kept in memory by the kit: the sender generates it from [`Pattern`] and
//! the receiver folds it into a [`Checksum`] as it arrives, so a test compares two `u64`s and a
//! length. FNV-1a is not cryptographic, but any lost, duplicated or reordered block changes it,
//! which is all a proxy test needs. The pattern repeats with a prime period (65,521 bytes) so that
//! no power-of-two buffer boundary inside lb lines up with it: a block swapped or repeated by a
//! buffer bug is visible in the checksum.

use std::sync::OnceLock;

/// Incremental FNV-1a 64 over a byte stream.
#[derive(Debug, Clone, Copy)]
pub struct Checksum {
    state: u64,
    len: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Default for Checksum {
    fn default() -> Self {
        Self::new()
    }
}

impl Checksum {
    /// An empty checksum.
    pub fn new() -> Self {
        Checksum {
            state: FNV_OFFSET,
            len: 0,
        }
    }

    /// Folds `bytes` in.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut state = self.state;
        for &b in bytes {
            state ^= u64::from(b);
            state = state.wrapping_mul(FNV_PRIME);
        }
        self.state = state;
        self.len += bytes.len() as u64;
    }

    /// The checksum of everything folded in so far.
    pub fn value(&self) -> u64 {
        self.state
    }

    /// How many bytes were folded in.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing was folded in.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Checksum of a whole slice.
    pub fn of(bytes: &[u8]) -> u64 {
        let mut c = Checksum::new();
        c.update(bytes);
        c.value()
    }
}

/// Period of the pattern; prime, so it never aligns with lb's buffer sizes.
pub const PATTERN_PERIOD: usize = 65_521;

fn pattern_block() -> &'static [u8] {
    static BLOCK: OnceLock<Vec<u8>> = OnceLock::new();
    BLOCK.get_or_init(|| {
        // xorshift64: cheap, deterministic, and no byte value dominates.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..PATTERN_PERIOD)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    })
}

/// Produces the first `len` bytes of the test pattern piece by piece, without holding them all.
#[derive(Debug, Clone)]
pub struct Pattern {
    offset: u64,
    len: u64,
}

impl Pattern {
    /// The first `len` bytes of the pattern.
    pub fn new(len: u64) -> Self {
        Pattern { offset: 0, len }
    }

    /// Total length of this pattern body.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty pattern body.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Next piece of at most `max` bytes; `None` when the body is exhausted.
    pub fn next_piece(&mut self, max: usize) -> Option<&'static [u8]> {
        if self.offset >= self.len {
            return None;
        }
        let block = pattern_block();
        let at = (self.offset % PATTERN_PERIOD as u64) as usize;
        let remaining = self.len - self.offset;
        let n = (PATTERN_PERIOD - at)
            .min(max.max(1))
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        self.offset += n as u64;
        Some(&block[at..at + n])
    }

    /// Checksum of the first `len` bytes of the pattern: what a receiver must arrive at.
    pub fn checksum(len: u64) -> u64 {
        let mut p = Pattern::new(len);
        let mut c = Checksum::new();
        while let Some(piece) = p.next_piece(usize::MAX) {
            c.update(piece);
        }
        c.value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_known_values() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(Checksum::of(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Checksum::of(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Checksum::of(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn incremental_equals_whole() {
        let mut c = Checksum::new();
        c.update(b"foo");
        c.update(b"bar");
        assert_eq!(c.value(), Checksum::of(b"foobar"));
        assert_eq!(c.len(), 6);
    }

    #[test]
    fn pattern_pieces_cover_exact_length_and_do_not_depend_on_piece_size() {
        let len = 3 * PATTERN_PERIOD as u64 + 17;
        for max in [1usize, 1000, 4096, 65_536, usize::MAX] {
            let mut p = Pattern::new(len);
            let mut c = Checksum::new();
            let mut pieces = 0u64;
            while let Some(piece) = p.next_piece(max) {
                assert!(!piece.is_empty() && piece.len() <= max);
                c.update(piece);
                pieces += 1;
                if max == 1 && pieces > 2000 {
                    break;
                }
            }
            if max != 1 {
                assert_eq!(c.len(), len);
                assert_eq!(c.value(), Pattern::checksum(len));
            }
        }
    }

    #[test]
    fn a_swapped_block_changes_the_checksum() {
        let mut p = Pattern::new(2 * PATTERN_PERIOD as u64);
        let a = p.next_piece(1024).expect("piece");
        let b = p.next_piece(1024).expect("piece");
        let mut straight = Checksum::new();
        straight.update(a);
        straight.update(b);
        let mut swapped = Checksum::new();
        swapped.update(b);
        swapped.update(a);
        assert_ne!(straight.value(), swapped.value());
    }
}
