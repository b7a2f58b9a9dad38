//! Deterministic bucketing (PRODUCT.md section 1.5): `murmur3_x86_32(salt + ":" + value, seed 0)`
//! scaled into `[0, 100000)`. This is part of the public contract: changing it moves users
//! between variants.

/// The number of buckets: one per thousandth of a percent.
pub const BUCKETS: u32 = 100_000;

/// MurmurHash3, x86 32-bit variant, fed in pieces so that `salt:value` needs no allocation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Murmur3 {
    h: u32,
    tail: [u8; 4],
    tail_len: usize,
    total: usize,
}

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

fn mix_k(mut k: u32) -> u32 {
    k = k.wrapping_mul(C1);
    k = k.rotate_left(15);
    k.wrapping_mul(C2)
}

impl Murmur3 {
    fn new(seed: u32) -> Self {
        Murmur3 {
            h: seed,
            tail: [0; 4],
            tail_len: 0,
            total: 0,
        }
    }

    fn block(&mut self, k: u32) {
        self.h ^= mix_k(k);
        self.h = self.h.rotate_left(13);
        self.h = self.h.wrapping_mul(5).wrapping_add(0xe654_6b64);
    }

    fn write(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len();
        if self.tail_len > 0 {
            while self.tail_len < 4 {
                let Some((&b, rest)) = bytes.split_first() else {
                    return;
                };
                self.tail[self.tail_len] = b;
                self.tail_len += 1;
                bytes = rest;
            }
            self.block(u32::from_le_bytes(self.tail));
            self.tail_len = 0;
        }
        let mut chunks = bytes.chunks_exact(4);
        for chunk in &mut chunks {
            self.block(u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
        }
        for &b in chunks.remainder() {
            self.tail[self.tail_len] = b;
            self.tail_len += 1;
        }
    }

    fn finish(mut self) -> u32 {
        if self.tail_len > 0 {
            let mut k = 0u32;
            for i in (0..self.tail_len).rev() {
                k = (k << 8) | u32::from(self.tail[i]);
            }
            self.h ^= mix_k(k);
        }
        // The length is mixed in modulo 2^32, as the reference implementation does.
        self.h ^= self.total as u32;
        self.h ^= self.h >> 16;
        self.h = self.h.wrapping_mul(0x85eb_ca6b);
        self.h ^= self.h >> 13;
        self.h = self.h.wrapping_mul(0xc2b2_ae35);
        self.h ^= self.h >> 16;
        self.h
    }
}

/// `murmur3_x86_32(utf8(salt + ":" + value), seed = 0)`.
pub fn hash(salt: &str, value: &str) -> u32 {
    let mut m = Murmur3::new(0);
    m.write(salt.as_bytes());
    m.write(b":");
    m.write(value.as_bytes());
    m.finish()
}

/// The bucket, in `[0, 100000)`, of `value` for a flag salted with `salt`.
pub fn bucket(salt: &str, value: &str) -> u32 {
    scale(hash(salt, value))
}

fn scale(h: u32) -> u32 {
    ((u64::from(h) * u64::from(BUCKETS)) >> 32) as u32
}

/// The hash state after `salt + ":"`, computed once per rollout when a document is compiled.
pub(crate) fn salted(salt: &str) -> Murmur3 {
    let mut m = Murmur3::new(0);
    m.write(salt.as_bytes());
    m.write(b":");
    m
}

/// [`bucket`] from a precomputed [`salted`] state.
pub(crate) fn bucket_salted(salted: &Murmur3, value: &str) -> u32 {
    let mut m = *salted;
    m.write(value.as_bytes());
    scale(m.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // Reference values of MurmurHash3_x86_32 with seed 0.
        let mut m = Murmur3::new(0);
        m.write(b"");
        assert_eq!(m.finish(), 0);
        let mut m = Murmur3::new(0);
        m.write(b"hello");
        assert_eq!(m.finish(), 0x248b_fa47);
        let mut m = Murmur3::new(0);
        m.write(b"The quick brown fox jumps over the lazy dog");
        assert_eq!(m.finish(), 0x2e4f_f723);
    }

    #[test]
    fn salted_state_matches() {
        for (salt, value) in [("new_checkout", "user-1"), ("a", ""), ("abcd", "xyz12345")] {
            assert_eq!(bucket_salted(&salted(salt), value), bucket(salt, value));
        }
    }

    #[test]
    fn pieces_do_not_matter() {
        let whole = {
            let mut m = Murmur3::new(0);
            m.write(b"new_checkout:user-123");
            m.finish()
        };
        for split in 0..=21 {
            let (a, b) = b"new_checkout:user-123".split_at(split);
            let mut m = Murmur3::new(0);
            m.write(a);
            m.write(b);
            assert_eq!(m.finish(), whole, "split at {split}");
        }
    }
}
