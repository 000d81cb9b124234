//! Annex B byte streams ↔ length-prefixed NAL units.
//!
//! MPEG-TS carries H.264/H.265 as an Annex B byte stream (ITU-T H.264
//! Annex B, H.265 Annex B): NAL units separated by start codes `00 00 01`
//! or `00 00 00 01`. ISO BMFF samples instead prefix each NAL unit with its
//! length (ISO/IEC 14496-15 §4.3); we always use 4-byte lengths
//! (`lengthSizeMinusOne = 3`).

/// Iterator over the NAL units of an Annex B byte stream, see
/// [`split_annexb`].
#[derive(Debug, Clone)]
pub struct NalUnits<'a> {
    data: &'a [u8],
    /// Start of the next NAL unit's payload (after its start code), or
    /// `None` when done.
    next: Option<usize>,
}

/// Splits an Annex B byte stream into NAL units (without start codes).
///
/// Bytes before the first start code are ignored, as are trailing zero
/// bytes (`trailing_zero_8bits`, and the leading zero of a 4-byte start
/// code) and empty NAL units.
pub fn split_annexb(data: &[u8]) -> NalUnits<'_> {
    NalUnits {
        data,
        next: find_start_code(data, 0).map(|(_, payload)| payload),
    }
}

/// Finds the next `00 00 01` at or after `from`; returns the index of its
/// first byte and the index just after it.
fn find_start_code(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i + 3 <= data.len() {
        // Skip fast: the third byte must be 1 and the second 0.
        match data.get(i + 2) {
            Some(1) => {
                if data.get(i) == Some(&0) && data.get(i + 1) == Some(&0) {
                    return Some((i, i + 3));
                }
                i += 3;
            }
            Some(0) => i += 1,
            _ => i += 3,
        }
    }
    None
}

impl<'a> Iterator for NalUnits<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let start = self.next?;
            let (end, following) = match find_start_code(self.data, start) {
                Some((sc, after)) => (sc, Some(after)),
                None => (self.data.len(), None),
            };
            self.next = following;
            // Bounded slicing: an out-of-range NAL is empty and skipped as malformed.
            let mut nal = self.data.get(start..end).unwrap_or_default();
            while let [rest @ .., 0] = nal {
                nal = rest;
            }
            if !nal.is_empty() {
                return Some(nal);
            }
        }
    }
}

/// Writes NAL units in the 4-byte length-prefixed format of ISO/IEC 14496-15
/// §4.3 (`lengthSizeMinusOne = 3`).
///
/// NAL units longer than `u32::MAX` bytes cannot be represented and are
/// skipped (they cannot occur with our 8 MiB PES cap).
pub fn to_length_prefixed<'a>(nals: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for nal in nals {
        let Ok(len) = u32::try_from(nal.len()) else {
            continue;
        };
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(nal);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let data = [
            0xFF, 0x00, 0x00, 0x00, 0x01, 0x09, 0xF0, 0x00, 0x00, 0x01, 0x67, 0x42, 0x00, 0x00,
            0x00, 0x01, 0x68, 0xCE, 0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0x65, 0x88, 0x00,
        ];
        let nals: Vec<&[u8]> = split_annexb(&data).collect();
        assert_eq!(
            nals,
            vec![
                &[0x09, 0xF0][..],
                &[0x67, 0x42],
                &[0x68, 0xCE],
                &[0x65, 0x88]
            ]
        );
    }

    #[test]
    fn no_start_code_means_no_nal() {
        assert_eq!(split_annexb(&[1, 2, 3, 0, 0]).count(), 0);
        assert_eq!(split_annexb(&[]).count(), 0);
        assert_eq!(split_annexb(&[0, 0, 1]).count(), 0);
        assert_eq!(split_annexb(&[0, 0, 1, 0, 0, 1]).count(), 0);
    }

    #[test]
    fn emulation_prevented_payload_is_not_split() {
        let data = [0, 0, 1, 0x41, 0x00, 0x00, 0x03, 0x01, 0x7F];
        let nals: Vec<&[u8]> = split_annexb(&data).collect();
        assert_eq!(nals, vec![&[0x41, 0x00, 0x00, 0x03, 0x01, 0x7F][..]]);
    }

    #[test]
    fn length_prefixed() {
        let out = to_length_prefixed([&[0x65, 0x88][..], &[0x06]]);
        assert_eq!(out, vec![0, 0, 0, 2, 0x65, 0x88, 0, 0, 0, 1, 0x06]);
    }
}
