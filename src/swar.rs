//! Word-at-a-time byte tests ("SIMD within a register") for the short byte
//! strings of hot paths: the parser's string scan, state keys.

/// `0x01` in every byte.
pub(crate) const ONES: u64 = 0x0101_0101_0101_0101;
/// `0x80` in every byte.
pub(crate) const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` that equals `b`. Non-zero exactly
/// when some byte does; only the lowest marked byte is exact (a borrow can
/// mark bytes above a real match).
#[inline]
pub(crate) fn bytes_equal(word: u64, b: u8) -> u64 {
    let x = word ^ (ONES * u64::from(b));
    x.wrapping_sub(ONES) & !x & HIGH
}

/// The eight bytes of `s` from `at`, little-endian (`at + 8 <= s.len()`).
#[inline]
pub(crate) fn load(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(w)
}

/// The four bytes of `s` from `at` as the low half of a word.
#[inline]
pub(crate) fn load_half(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&s[at..at + 4]);
    u64::from(u32::from_le_bytes(w))
}

/// Asks the CPU to bring the cache line at `p` closer (a hint: it never
/// faults, whatever `p` points to, and changes nothing observable).
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it does not dereference `p` in the
    // language's sense and cannot fault.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn bytes_equal_finds_the_lowest_match_exactly(
            bytes in proptest::prelude::any::<[u8; 8]>(),
            b in proptest::prelude::any::<u8>(),
        ) {
            let mask = bytes_equal(u64::from_le_bytes(bytes), b);
            let first = bytes.iter().position(|&x| x == b);
            proptest::prop_assert_eq!(mask != 0, first.is_some());
            if let Some(i) = first {
                proptest::prop_assert_eq!((mask.trailing_zeros() / 8) as usize, i);
            }
        }
    }
}
