//! Byte search for short spans.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The first `needle` in `bytes[from..end]`, as an offset in `bytes`;
/// `None` if absent or if the range is out of bounds.
///
/// Eight bytes per step with the "has zero byte" trick on `u64` words
/// (Mycroft; Anderson, "Bit Twiddling Hacks"): `(w − 0x01…01) & !w &
/// 0x80…80` flags the first zero byte of `w` exactly (false positives can
/// only appear above a true zero, i.e. later in little-endian order). Lines
/// and quoted values are a few dozen bytes, where this beats both a
/// byte-by-byte loop and `memchr`'s alignment set-up, and it compiles to
/// the same plain integer code on every target, WebAssembly included.
pub(crate) fn find_byte(bytes: &[u8], from: usize, end: usize, needle: u8) -> Option<usize> {
    let hay = bytes.get(from..end)?;
    let pattern = LO.wrapping_mul(u64::from(needle));
    let mut chunks = hay.chunks_exact(8);
    let mut offset = from;
    for chunk in &mut chunks {
        let word =
            u64::from_le_bytes(chunk.try_into().expect("chunks_exact(8) yields 8 bytes")) ^ pattern;
        let found = word.wrapping_sub(LO) & !word & HI;
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|i| offset + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_a_naive_search() {
        let text: Vec<u8> = (0..200u32)
            .map(|i| match i % 37 {
                0 => b'\n',
                5 => b'"',
                _ => (i * 7 % 251) as u8,
            })
            .collect();
        for needle in [b'\n', b'"', 0x00, 0x80, 0xff, b'a'] {
            for from in 0..text.len() {
                for end in [from, from + 1, from + 9, from + 40, text.len()] {
                    let end = end.min(text.len());
                    let naive = text[from..end]
                        .iter()
                        .position(|&b| b == needle)
                        .map(|i| from + i);
                    assert_eq!(
                        find_byte(&text, from, end, needle),
                        naive,
                        "{needle} {from}..{end}"
                    );
                }
            }
        }
        assert_eq!(find_byte(b"abc", 2, 5, b'c'), None, "out of bounds");
        assert_eq!(find_byte(b"abc", 4, 3, b'c'), None);
    }
}
