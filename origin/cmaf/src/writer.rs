//! A tiny ISOBMFF box writer: write a header with a placeholder size, write
//! the body, patch the size once the body is known (ISO/IEC 14496-12 §4.2).

use bytes::Bytes;

/// Appends big-endian fields and boxes to a growable buffer.
#[derive(Debug, Default)]
pub(crate) struct BoxWriter {
    buf: Vec<u8>,
}

impl BoxWriter {
    /// An empty writer with room for `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }

    /// Bytes written so far; also the offset of the next byte.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A 24-bit big-endian integer; the top byte of `v` is dropped.
    pub(crate) fn u24(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes()[1..]);
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    pub(crate) fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }

    /// Overwrites four bytes at `at` (a position returned by [`Self::len`]).
    pub(crate) fn patch_i32(&mut self, at: usize, v: i32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }

    /// A `Box` (ISO/IEC 14496-12 §4.2): 32-bit size, type, then `body`.
    ///
    /// A box that outgrows 32 bits is rewritten with `size = 1` and a 64-bit
    /// `largesize`.
    pub(crate) fn boxed(&mut self, kind: &[u8; 4], body: impl FnOnce(&mut Self)) {
        let start = self.buf.len();
        self.u32(0);
        self.bytes(kind);
        body(self);
        patch_size(&mut self.buf, start, u32::MAX.into());
    }

    /// A `FullBox` (ISO/IEC 14496-12 §4.2): a box whose body starts with an
    /// 8-bit version and 24-bit flags.
    pub(crate) fn full_box(
        &mut self,
        kind: &[u8; 4],
        version: u8,
        flags: u32,
        body: impl FnOnce(&mut Self),
    ) {
        self.boxed(kind, |w| {
            w.u8(version);
            w.u24(flags);
            body(w);
        });
    }

    pub(crate) fn finish(self) -> Bytes {
        Bytes::from(self.buf)
    }
}

/// Writes the size of the box starting at `start` and ending at the end of
/// `buf`. When it exceeds `max_compact` it switches the header to the
/// `size = 1` + `largesize` form (ISO/IEC 14496-12 §4.2), shifting the body
/// by 8 bytes. `max_compact` is `u32::MAX` outside of tests.
fn patch_size(buf: &mut Vec<u8>, start: usize, max_compact: u64) {
    let size = (buf.len() - start) as u64;
    if size <= max_compact {
        // `size <= max_compact <= u32::MAX`.
        buf[start..start + 4].copy_from_slice(&(size as u32).to_be_bytes());
    } else {
        let large = size + 8;
        buf[start..start + 4].copy_from_slice(&1u32.to_be_bytes());
        let at = start + 8;
        buf.splice(at..at, large.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_size_is_patched() {
        let mut w = BoxWriter::default();
        w.boxed(b"free", |w| w.bytes(&[1, 2, 3]));
        assert_eq!(&w.finish()[..], b"\0\0\0\x0bfree\x01\x02\x03");
    }

    #[test]
    fn nested_full_box() {
        let mut w = BoxWriter::default();
        w.boxed(b"moov", |w| w.full_box(b"mvhd", 1, 0x02_0003, |w| w.u16(7)));
        assert_eq!(
            &w.finish()[..],
            b"\0\0\0\x16moov\0\0\0\x0emvhd\x01\x02\x00\x03\x00\x07"
        );
    }

    #[test]
    fn u24_drops_top_byte() {
        let mut w = BoxWriter::default();
        w.u24(0xAA12_3456);
        assert_eq!(&w.finish()[..], &[0x12, 0x34, 0x56]);
    }

    #[test]
    fn oversize_box_uses_largesize() {
        // 8-byte header + 5-byte body = 13 > 12: switch to largesize.
        let mut buf = vec![0xEE, 0, 0, 0, 0, b'm', b'd', b'a', b't', 1, 2, 3, 4, 5];
        patch_size(&mut buf, 1, 12);
        assert_eq!(
            buf,
            [
                0xEE, 0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0, 0, 0, 0, 0, 0, 21, 1, 2, 3, 4, 5
            ]
        );
    }
}
