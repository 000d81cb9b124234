//! The raster the encoder codes: 8-bit 4:2:0 planes at the coded
//! (macroblock-aligned) size, plus the drawing of the clock scene.

use crate::font;

/// Luma value of the background. Intra 16x16 DC prediction with no
/// neighbours predicts `1 << (BitDepth − 1)` = 128 (ITU-T H.264 §8.3.3.3), so
/// a background of exactly 128 is coded without any residual.
pub const BACKGROUND_LUMA: u8 = 128;
/// Chroma value of the background (and of every neutral colour).
pub const BACKGROUND_CHROMA: u8 = 128;
/// Luma of the clock glyphs: video white (ITU-R BT.709 nominal range).
pub const TEXT_LUMA: u8 = 235;

/// A Y′CbCr colour with 8-bit nominal-range components.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Colour {
    pub(crate) y: u8,
    pub(crate) cb: u8,
    pub(crate) cr: u8,
}

/// The moving bar: BT.709 orange-ish (Y 150, Cb 60, Cr 190); never 0.
pub(crate) const BAR: Colour = Colour {
    y: 150,
    cb: 60,
    cr: 190,
};

/// One decoded picture: 8-bit planar 4:2:0 at the coded size (a multiple of
/// 16 in both directions), of which the top-left `display_width` ×
/// `display_height` is shown (the rest is removed by SPS frame cropping).
///
/// The encoder is lossless, so this is bit-exactly what a conforming decoder
/// outputs for the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    coded_width: usize,
    coded_height: usize,
    display_width: usize,
    display_height: usize,
    y: Vec<u8>,
    cb: Vec<u8>,
    cr: Vec<u8>,
}

impl Picture {
    /// A picture filled with the background colour.
    pub(crate) fn new(display_width: usize, display_height: usize) -> Self {
        let coded_width = display_width.div_ceil(16) * 16;
        let coded_height = display_height.div_ceil(16) * 16;
        Self {
            coded_width,
            coded_height,
            display_width,
            display_height,
            y: vec![BACKGROUND_LUMA; coded_width * coded_height],
            cb: vec![BACKGROUND_CHROMA; coded_width * coded_height / 4],
            cr: vec![BACKGROUND_CHROMA; coded_width * coded_height / 4],
        }
    }

    /// Coded width in luma samples (a multiple of 16).
    pub fn coded_width(&self) -> usize {
        self.coded_width
    }

    /// Coded height in luma samples (a multiple of 16).
    pub fn coded_height(&self) -> usize {
        self.coded_height
    }

    /// Displayed width after cropping.
    pub fn display_width(&self) -> usize {
        self.display_width
    }

    /// Displayed height after cropping.
    pub fn display_height(&self) -> usize {
        self.display_height
    }

    /// The luma sample at (`x`, `y`) of the coded picture (the display area
    /// is its top-left part).
    ///
    /// # Panics
    /// If the position is outside the coded picture.
    pub fn luma(&self, x: usize, y: usize) -> u8 {
        assert!(
            x < self.coded_width && y < self.coded_height,
            "({x}, {y}) outside the picture"
        );
        self.y[y * self.coded_width + x]
    }

    /// The displayed area as planar I420 (Y, then Cb, then Cr, each cropped
    /// to the display size): the byte layout of FFmpeg's `rawvideo`
    /// `yuv420p` output.
    pub fn display_i420(&self) -> Vec<u8> {
        let (w, h) = (self.display_width, self.display_height);
        let (cw, ch) = (w / 2, h / 2);
        let mut out = Vec::with_capacity(w * h + 2 * cw * ch);
        for row in self.y.chunks(self.coded_width).take(h) {
            out.extend_from_slice(&row[..w]);
        }
        for plane in [&self.cb, &self.cr] {
            for row in plane.chunks(self.coded_width / 2).take(ch) {
                out.extend_from_slice(&row[..cw]);
            }
        }
        out
    }

    /// Macroblock columns.
    pub(crate) fn mb_width(&self) -> usize {
        self.coded_width / 16
    }

    /// Macroblock rows.
    pub(crate) fn mb_height(&self) -> usize {
        self.coded_height / 16
    }

    /// Fills a luma rectangle, clipped to the coded picture.
    pub(crate) fn fill_luma(&mut self, x: usize, y: usize, w: usize, h: usize, v: u8) {
        let x1 = (x + w).min(self.coded_width);
        let y1 = (y + h).min(self.coded_height);
        for row in y.min(y1)..y1 {
            let start = row * self.coded_width;
            self.y[start + x.min(x1)..start + x1].fill(v);
        }
    }

    /// Fills a rectangle in all three planes; `x`, `y`, `w` and `h` must be
    /// even so that the chroma rectangle is exact.
    pub(crate) fn fill_rect(&mut self, x: usize, y: usize, w: usize, h: usize, c: Colour) {
        assert!(
            [x, y, w, h].iter().all(|v| v.is_multiple_of(2)),
            "colour rectangles are chroma aligned"
        );
        self.fill_luma(x, y, w, h, c.y);
        let cstride = self.coded_width / 2;
        let (cx1, cy1) = (
            ((x + w) / 2).min(cstride),
            ((y + h) / 2).min(self.coded_height / 2),
        );
        for row in (y / 2).min(cy1)..cy1 {
            let start = row * cstride;
            self.cb[start + (x / 2).min(cx1)..start + cx1].fill(c.cb);
            self.cr[start + (x / 2).min(cx1)..start + cx1].fill(c.cr);
        }
    }

    /// Draws `text` with the 5x7 font, each font pixel `scale` × `scale`
    /// luma samples, glyph cells 6 font pixels wide.
    pub(crate) fn draw_text(&mut self, x: usize, y: usize, scale: usize, text: &str, luma: u8) {
        for (i, ch) in text.chars().enumerate() {
            let rows = font::glyph(ch);
            let gx = x + i * font::CELL_WIDTH * scale;
            for (r, bits) in rows.iter().enumerate() {
                for c in 0..font::GLYPH_WIDTH {
                    if bits & (1 << (font::GLYPH_WIDTH - 1 - c)) != 0 {
                        self.fill_luma(gx + c * scale, y + r * scale, scale, scale, luma);
                    }
                }
            }
        }
    }

    /// The 16×16 luma, 8×8 Cb and 8×8 Cr samples of macroblock (`mx`, `my`)
    /// in raster order: exactly the `pcm_sample_luma` / `pcm_sample_chroma`
    /// order of an I_PCM macroblock (ITU-T H.264 §7.3.5).
    pub(crate) fn mb_samples(&self, mx: usize, my: usize, out: &mut Vec<u8>) {
        out.clear();
        for row in 0..16 {
            let start = (my * 16 + row) * self.coded_width + mx * 16;
            out.extend_from_slice(&self.y[start..start + 16]);
        }
        let cstride = self.coded_width / 2;
        for plane in [&self.cb, &self.cr] {
            for row in 0..8 {
                let start = (my * 8 + row) * cstride + mx * 8;
                out.extend_from_slice(&plane[start..start + 8]);
            }
        }
    }

    /// True when every sample of macroblock (`mx`, `my`) equals the
    /// co-located sample of `other` (same size).
    pub(crate) fn mb_equal(&self, other: &Picture, mx: usize, my: usize) -> bool {
        let (mut a, mut b) = (Vec::with_capacity(384), Vec::with_capacity(384));
        self.mb_samples(mx, my, &mut a);
        other.mb_samples(mx, my, &mut b);
        a == b
    }

    /// True when the macroblock is entirely background.
    pub(crate) fn mb_is_background(&self, mx: usize, my: usize) -> bool {
        let mut s = Vec::with_capacity(384);
        self.mb_samples(mx, my, &mut s);
        s[..256].iter().all(|&v| v == BACKGROUND_LUMA)
            && s[256..].iter().all(|&v| v == BACKGROUND_CHROMA)
    }

    /// True when the right column of the macroblock (16 luma, 8 + 8 chroma
    /// samples) is background: the samples an Intra 16x16 / chroma DC
    /// prediction of the macroblock to its right reads (§8.3.3, §8.3.4).
    pub(crate) fn mb_right_edge_is_background(&self, mx: usize, my: usize) -> bool {
        let mut s = Vec::with_capacity(384);
        self.mb_samples(mx, my, &mut s);
        (0..16).all(|r| s[r * 16 + 15] == BACKGROUND_LUMA)
            && (0..16).all(|r| s[256 + r * 8 + 7] == BACKGROUND_CHROMA)
    }

    /// True when the bottom row of the macroblock is background: the samples
    /// the DC prediction of the macroblock below it reads.
    pub(crate) fn mb_bottom_edge_is_background(&self, mx: usize, my: usize) -> bool {
        let mut s = Vec::with_capacity(384);
        self.mb_samples(mx, my, &mut s);
        s[240..256].iter().all(|&v| v == BACKGROUND_LUMA)
            && s[256 + 56..256 + 64]
                .iter()
                .all(|&v| v == BACKGROUND_CHROMA)
            && s[320 + 56..320 + 64]
                .iter()
                .all(|&v| v == BACKGROUND_CHROMA)
    }
}
