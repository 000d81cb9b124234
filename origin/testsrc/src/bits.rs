//! MSB-first bit writer with the H.264 Exp-Golomb descriptors
//! (ITU-T H.264 §7.2 `u(n)`, `ue(v)`, `se(v)`; §9.1).

/// Writes bits most significant first into a growing byte buffer.
#[derive(Debug, Default)]
pub(crate) struct BitWriter {
    bytes: Vec<u8>,
    acc: u8,
    nbits: u32,
}

impl BitWriter {
    /// An empty writer.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Writes one bit (`b` must be 0 or 1).
    pub(crate) fn bit(&mut self, b: bool) {
        self.acc = (self.acc << 1) | u8::from(b);
        self.nbits += 1;
        if self.nbits == 8 {
            self.bytes.push(self.acc);
            self.acc = 0;
            self.nbits = 0;
        }
    }

    /// `u(n)`: the low `n` bits of `v`, most significant first.
    pub(crate) fn u(&mut self, n: u32, v: u64) {
        assert!(n <= 64, "u(n) with n = {n} > 64");
        for i in (0..n).rev() {
            self.bit((v >> i) & 1 == 1);
        }
    }

    /// `ue(v)`: unsigned Exp-Golomb (§9.1): `leadingZeroBits` zeros, then
    /// `v + 1` in `leadingZeroBits + 1` bits.
    pub(crate) fn ue(&mut self, v: u32) {
        let x = u64::from(v) + 1;
        let len = 64 - x.leading_zeros();
        self.u(len - 1, 0);
        self.u(len, x);
    }

    /// `se(v)`: signed Exp-Golomb, mapped per §9.1.1 Table 9-3
    /// (k > 0 → 2k − 1, k ≤ 0 → −2k).
    pub(crate) fn se(&mut self, v: i32) {
        let mapped = if v > 0 {
            2 * i64::from(v) - 1
        } else {
            -2 * i64::from(v)
        };
        self.ue(u32::try_from(mapped).expect("se(v) value out of the 32-bit code range"));
    }

    /// True at a byte boundary (`byte_aligned()`, §7.2).
    pub(crate) fn byte_aligned(&self) -> bool {
        self.nbits == 0
    }

    /// Zero bits up to the next byte boundary (e.g. `pcm_alignment_zero_bit`).
    pub(crate) fn align_zero(&mut self) {
        while !self.byte_aligned() {
            self.bit(false);
        }
    }

    /// Appends whole bytes; the writer must be byte aligned.
    pub(crate) fn bytes(&mut self, data: &[u8]) {
        assert!(
            self.byte_aligned(),
            "BitWriter::bytes while not byte aligned"
        );
        self.bytes.extend_from_slice(data);
    }

    /// `rbsp_trailing_bits()` (§7.3.2.11): a one bit, then zeros to alignment.
    pub(crate) fn rbsp_trailing_bits(&mut self) {
        self.bit(true);
        self.align_zero();
    }

    /// The written bytes; the writer must be byte aligned.
    pub(crate) fn finish(self) -> Vec<u8> {
        assert!(
            self.byte_aligned(),
            "BitWriter::finish while not byte aligned"
        );
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits_of(f: impl FnOnce(&mut BitWriter)) -> String {
        let mut w = BitWriter::new();
        f(&mut w);
        let mut s = String::new();
        for b in &w.bytes {
            s.push_str(&format!("{b:08b}"));
        }
        for i in (0..w.nbits).rev() {
            s.push(if (w.acc >> i) & 1 == 1 { '1' } else { '0' });
        }
        s
    }

    /// ITU-T H.264 Table 9-2 (bit strings for codeNum 0..8) and 9-3.
    #[test]
    fn exp_golomb_table_9_2_and_9_3() {
        let ue = [
            "1", "010", "011", "00100", "00101", "00110", "00111", "0001000", "0001001",
        ];
        for (v, want) in ue.iter().enumerate() {
            assert_eq!(bits_of(|w| w.ue(v as u32)), *want, "ue({v})");
        }
        assert_eq!(bits_of(|w| w.ue(25)), "000011010");
        assert_eq!(bits_of(|w| w.ue(30)), "000011111");
        assert_eq!(bits_of(|w| w.se(0)), "1");
        assert_eq!(bits_of(|w| w.se(1)), "010");
        assert_eq!(bits_of(|w| w.se(-1)), "011");
        assert_eq!(bits_of(|w| w.se(2)), "00100");
        assert_eq!(bits_of(|w| w.se(-2)), "00101");
    }

    #[test]
    fn trailing_bits_align() {
        let mut w = BitWriter::new();
        w.u(3, 0b101);
        w.rbsp_trailing_bits();
        assert_eq!(w.finish(), vec![0b1011_0000]);
    }
}
