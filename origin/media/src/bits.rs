//! MSB-first bit reading with Exp-Golomb codes, and RBSP extraction.
//!
//! Implements the `u(n)`, `ue(v)` and `se(v)` descriptors of ITU-T H.264
//! §7.2 / §9.1 (identical in H.265 §9.2), and the removal of
//! `emulation_prevention_three_byte` (H.264 §7.4.1, H.265 §7.4.2). Reading
//! past the end is an [`BitsError::Eof`], never a panic.

/// Errors of the [`BitReader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BitsError {
    /// The data ended before the requested bits could be read.
    #[error("bitstream ended early")]
    Eof,
    /// An Exp-Golomb code had more than 31 leading zero bits, so its value
    /// does not fit the 32-bit range the specs allow (H.264 §9.1).
    #[error("exp-golomb code too long")]
    ExpGolombTooLong,
}

/// Reads bits most-significant first from a byte slice.
///
/// Feed it RBSP bytes (see [`rbsp_from_nal`]), not raw NAL bytes, when
/// parsing parameter sets.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// Starts reading at the first bit of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// Number of bits not read yet.
    pub fn bits_left(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    /// Position in bits from the start.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Reads one bit (`u(1)`).
    ///
    /// # Errors
    /// [`BitsError::Eof`] at the end of the data.
    pub fn read_bit(&mut self) -> Result<bool, BitsError> {
        let byte = self.data.get(self.pos / 8).ok_or(BitsError::Eof)?;
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// Reads a flag (`u(1)`) as a bool; alias of [`BitReader::read_bit`].
    ///
    /// # Errors
    /// [`BitsError::Eof`] at the end of the data.
    pub fn read_flag(&mut self) -> Result<bool, BitsError> {
        self.read_bit()
    }

    /// Reads `n` bits (`u(n)`), `n <= 64`, as an unsigned value.
    ///
    /// # Errors
    /// [`BitsError::Eof`] if fewer than `n` bits remain; nothing is consumed
    /// then.
    pub fn read_bits(&mut self, n: u32) -> Result<u64, BitsError> {
        debug_assert!(n <= 64, "read_bits supports at most 64 bits");
        let n = n.min(64);
        if self.bits_left() < n as usize {
            return Err(BitsError::Eof);
        }
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.read_bit()?);
        }
        Ok(v)
    }

    /// Reads `n <= 8` bits as a `u8`.
    ///
    /// # Errors
    /// [`BitsError::Eof`] if fewer than `n` bits remain.
    pub fn read_u8(&mut self, n: u32) -> Result<u8, BitsError> {
        Ok(self.read_bits(n.min(8))? as u8)
    }

    /// Reads `n <= 32` bits as a `u32`.
    ///
    /// # Errors
    /// [`BitsError::Eof`] if fewer than `n` bits remain.
    pub fn read_u32(&mut self, n: u32) -> Result<u32, BitsError> {
        Ok(self.read_bits(n.min(32))? as u32)
    }

    /// Skips `n` bits.
    ///
    /// # Errors
    /// [`BitsError::Eof`] if fewer than `n` bits remain; nothing is skipped
    /// then.
    pub fn skip_bits(&mut self, n: usize) -> Result<(), BitsError> {
        if self.bits_left() < n {
            return Err(BitsError::Eof);
        }
        self.pos += n;
        Ok(())
    }

    /// Reads an unsigned Exp-Golomb code `ue(v)` (H.264 §9.1).
    ///
    /// # Errors
    /// [`BitsError::Eof`] on truncation, [`BitsError::ExpGolombTooLong`] for
    /// more than 31 leading zeros.
    pub fn read_ue(&mut self) -> Result<u32, BitsError> {
        let mut leading_zeros = 0u32;
        while !self.read_bit()? {
            leading_zeros += 1;
            if leading_zeros > 31 {
                return Err(BitsError::ExpGolombTooLong);
            }
        }
        let rest = self.read_bits(leading_zeros)?;
        // 2^lz - 1 + rest <= 2^32 - 2 for lz <= 31.
        Ok(((1u64 << leading_zeros) - 1 + rest) as u32)
    }

    /// Reads a signed Exp-Golomb code `se(v)` (H.264 §9.1.1, Table 9-3):
    /// code k maps to (−1)^(k+1) · ⌈k ÷ 2⌉.
    ///
    /// # Errors
    /// As [`BitReader::read_ue`].
    pub fn read_se(&mut self) -> Result<i32, BitsError> {
        let k = i64::from(self.read_ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        Ok(v as i32)
    }
}

/// Extracts the RBSP from a NAL unit's bytes by removing every
/// `emulation_prevention_three_byte`, i.e. the `03` in each `00 00 03`
/// sequence (H.264 §7.3.1 / §7.4.1).
///
/// Pass the NAL without start code; the header bytes pass through unchanged
/// (they cannot contain `00 00`).
pub fn rbsp_from_nal(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0usize;
    for &b in nal {
        if zeros >= 2 && b == 0x03 {
            zeros = 0;
            continue;
        }
        if b == 0 {
            zeros += 1;
        } else {
            zeros = 0;
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Table 9-2 of H.264 §9.1: bit strings and their codeNum.
    #[test]
    fn ue_table_9_2() {
        // 1 | 010 | 011 | 00100 | 00101 | 00110 | 00111 | 0001000 -> 0..=7
        // Concatenated: 1010 0110 0100 0010 1001 1000 1110 0010 00(pad 000000)
        let data = [
            0b1010_0110,
            0b0100_0010,
            0b1001_1000,
            0b1110_0010,
            0b0000_0000,
        ];
        let mut r = BitReader::new(&data);
        for expected in 0..=7 {
            assert_eq!(r.read_ue(), Ok(expected));
        }
    }

    /// Table 9-3 of H.264 §9.1.1: codeNum → se(v).
    #[test]
    fn se_table_9_3() {
        // codeNums 0,1,2,3,4 → 0, 1, -1, 2, -2
        let data = [0b1010_0110, 0b0100_0010, 0b1000_0000];
        let mut r = BitReader::new(&data);
        for expected in [0, 1, -1, 2, -2] {
            assert_eq!(r.read_se(), Ok(expected));
        }
    }

    #[test]
    fn ue_max_and_overlong() {
        // 31 zeros, 1, 31 ones: 2^32 - 2.
        let mut data = vec![0u8; 3];
        data.extend_from_slice(&[0b0000_0001, 0xFF, 0xFF, 0xFF, 0xFE]);
        let mut r = BitReader::new(&data);
        assert_eq!(r.read_ue(), Ok(u32::MAX - 1));
        let zeros = [0u8; 5];
        assert_eq!(
            BitReader::new(&zeros).read_ue(),
            Err(BitsError::ExpGolombTooLong)
        );
    }

    #[test]
    fn eof_is_an_error() {
        let mut r = BitReader::new(&[0xA5]);
        assert_eq!(r.read_bits(4), Ok(0xA));
        assert_eq!(r.read_bits(5), Err(BitsError::Eof));
        assert_eq!(r.read_bits(4), Ok(0x5));
        assert_eq!(r.read_bit(), Err(BitsError::Eof));
        assert_eq!(BitReader::new(&[]).read_ue(), Err(BitsError::Eof));
        assert_eq!(BitReader::new(&[0x00, 0x01]).read_ue(), Err(BitsError::Eof));
        assert_eq!(r.skip_bits(1), Err(BitsError::Eof));
    }

    #[test]
    fn emulation_prevention_removed() {
        assert_eq!(
            rbsp_from_nal(&[0x67, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x03, 0x00, 0x03]),
            vec![0x67, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03]
        );
        // `00 03` without the second zero is data.
        assert_eq!(rbsp_from_nal(&[0x00, 0x03, 0x00]), vec![0x00, 0x03, 0x00]);
    }
}
