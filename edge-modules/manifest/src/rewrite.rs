//! The single pass over the playlist's lines.

use crate::attrs::AttrList;
use crate::scan::find_byte;
use crate::uri::{Out, UriRules};
use crate::variant::VariantAttrs;
use crate::{Malformation, ManifestError, RewriteOptions, Truncation};

/// Rewrites `input` per `opts` and returns the new playlist.
///
/// See [`rewrite_into`] for the contract; this allocates the output.
///
/// # Errors
///
/// See [`rewrite_into`].
pub fn rewrite(input: &str, opts: &RewriteOptions) -> Result<String, ManifestError> {
    let mut out = String::new();
    rewrite_into(input, opts, &mut out)?;
    Ok(out)
}

/// Rewrites `input` per `opts`, **appending** the result to `out` (reuse
/// one buffer across requests: `out.clear()` then call this).
///
/// One pass over the lines, no allocation besides growing `out` (reserved
/// up front to `input.len()` plus the token for one URI per 48 input
/// bytes; a denser playlist grows it once more). Every byte that is not a
/// rewritten URI is copied unchanged: line terminators (LF or CRLF),
/// unknown tags, comments, blank lines, attribute order and spacing.
///
/// URIs rewritten (see [`RewriteOptions`] for which get the token and the
/// base rewrite): every URI line (RFC 8216bis §4.1: a non-blank line not
/// starting with `#`; surrounding spaces and tabs are kept outside the
/// URI), and the quoted-string `URI` attribute of `EXT-X-KEY`,
/// `EXT-X-MAP`, `EXT-X-PART`, `EXT-X-PRELOAD-HINT`,
/// `EXT-X-RENDITION-REPORT`, `EXT-X-MEDIA`, `EXT-X-I-FRAME-STREAM-INF`,
/// `EXT-X-SESSION-DATA` and `EXT-X-SESSION-KEY`, and `SERVER-URI` of
/// `EXT-X-CONTENT-STEERING` (§4.4.4–§4.4.6). Empty URIs, and URI
/// attributes that are not quoted-strings (which the RFC does not allow),
/// are left alone. Other tags, including `EXT-X-DATERANGE` client
/// attributes such as `X-ASSET-URI`, are not touched.
///
/// Variant filtering ([`RewriteOptions::max_bandwidth`],
/// [`max_height`](RewriteOptions::max_height),
/// [`allowed_codecs`](RewriteOptions::allowed_codecs)): a dropped
/// `EXT-X-STREAM-INF` is removed together with everything up to and
/// including its URI line (tags between them apply to that URI); a dropped
/// `EXT-X-I-FRAME-STREAM-INF` is one line. If every `EXT-X-STREAM-INF`
/// variant would be dropped, the one with the lowest `BANDWIDTH` (the
/// first of equals) is kept where it was, so the client still has
/// something to play; I-frame variants have no such fallback (they are
/// only for trick play). `EXT-X-MEDIA` renditions are never dropped.
///
/// Nothing here looks at `_HLS_msn`/`_HLS_part`/`_HLS_skip`: those are
/// request parameters (RFC 8216bis §6.2.5), not playlist content; a URI
/// that already has a query gets the token after `&`.
///
/// # Errors
///
/// [`ManifestError`]; then `out` is left as it was.
pub fn rewrite_into(
    input: &str,
    opts: &RewriteOptions,
    out: &mut String,
) -> Result<(), ManifestError> {
    let mark = out.len();
    let result = rewrite_checked(input, opts, out);
    if result.is_err() {
        out.truncate(mark);
    }
    result
}

/// Bytes of input per URI assumed when reserving the output: an
/// `EXT-X-PART` line with its URI is about 60 bytes.
const BYTES_PER_URI_ESTIMATE: usize = 48;

fn rewrite_checked(
    input: &str,
    opts: &RewriteOptions,
    buf: &mut String,
) -> Result<(), ManifestError> {
    if input.len() > opts.max_input_bytes {
        return Err(ManifestError::TooLarge {
            len: input.len(),
            max: opts.max_input_bytes,
        });
    }
    opts.validate()?;
    let body = header(input)?;
    let rules = UriRules::new(opts);
    buf.reserve(input.len() + rules.growth_per_uri() * (input.len() / BYTES_PER_URI_ESTIMATE + 1));

    let mut out = Out::new(input, buf, 0);
    let mut pass = Pass::new(input, &rules, opts.filters().then_some(opts));
    pass.run(&mut out, body, input.len(), 2)?;
    out.copy_to(input.len());

    if pass.variants > 0
        && pass.kept == 0
        && let Some(fallback) = pass.lowest_dropped
    {
        let mut kept = String::with_capacity(fallback.end - fallback.start + 64);
        let mut kept_out = Out::new(input, &mut kept, fallback.start);
        Pass::new(input, &rules, None).run(
            &mut kept_out,
            fallback.start,
            fallback.end,
            fallback.line,
        )?;
        kept_out.copy_to(fallback.end);
        buf.insert_str(fallback.out_pos, &kept);
    }
    Ok(())
}

/// Checks the `#EXTM3U` first line (RFC 8216bis §4.4.1.1; a UTF-8 BOM and
/// trailing spaces or tabs are tolerated) and returns the offset of the
/// second line.
fn header(input: &str) -> Result<usize, ManifestError> {
    let body = input.strip_prefix('\u{feff}').unwrap_or(input);
    let (line, terminated) = match body.find('\n') {
        Some(nl) => (&body[..nl], true),
        None => (body, false),
    };
    if line.trim_end_matches([' ', '\t', '\r']) != "#EXTM3U" {
        return Err(ManifestError::NotAPlaylist);
    }
    if !terminated {
        return Err(ManifestError::Truncated {
            line: 1,
            reason: Truncation::MissingLineTerminator,
        });
    }
    Ok(input.len() - body.len() + line.len() + 1)
}

/// A dropped `EXT-X-STREAM-INF` variant that may have to come back.
#[derive(Debug, Clone, Copy)]
struct Dropped {
    bandwidth: u64,
    /// Input range: the tag line through the URI line terminator.
    start: usize,
    end: usize,
    /// Where it would have been in the output buffer.
    out_pos: usize,
    /// Line number of the tag.
    line: usize,
}

/// State of one pass over a range of lines.
struct Pass<'i, 'o> {
    input: &'i str,
    rules: &'o UriRules<'o>,
    /// `Some` when variant filtering is on.
    filter: Option<&'o RewriteOptions>,
    /// `EXT-X-STREAM-INF` tags seen and kept.
    variants: usize,
    kept: usize,
    /// Line of the `EXT-X-STREAM-INF` whose URI line comes next.
    pending_variant: Option<usize>,
    /// The variant being dropped, until its URI line.
    dropping: Option<Dropped>,
    lowest_dropped: Option<Dropped>,
}

impl<'i, 'o> Pass<'i, 'o> {
    fn new(input: &'i str, rules: &'o UriRules<'o>, filter: Option<&'o RewriteOptions>) -> Self {
        Self {
            input,
            rules,
            filter,
            variants: 0,
            kept: 0,
            pending_variant: None,
            dropping: None,
            lowest_dropped: None,
        }
    }

    /// Processes the lines in `start..end`; `first_line` is the number of
    /// the line at `start`.
    fn run(
        &mut self,
        out: &mut Out<'i, '_>,
        start: usize,
        end: usize,
        first_line: usize,
    ) -> Result<(), ManifestError> {
        let mut pos = start;
        let mut line = first_line;
        while pos < end {
            let Some(newline) = find_byte(self.input.as_bytes(), pos, end, b'\n') else {
                return Err(ManifestError::Truncated {
                    line,
                    reason: Truncation::MissingLineTerminator,
                });
            };
            let next = newline + 1;
            let mut content_end = newline;
            if content_end > pos && self.input.as_bytes()[content_end - 1] == b'\r' {
                content_end -= 1;
            }
            self.line(out, pos, content_end, next, line)
                .map_err(|reason| reason.at(line))?;
            pos = next;
            line += 1;
        }
        if let Some(variant_line) = self.pending_variant {
            return Err(ManifestError::Truncated {
                line: variant_line,
                reason: Truncation::MissingVariantUri,
            });
        }
        Ok(())
    }

    /// One line: `start..content_end` is its text, `next` the start of
    /// the next line.
    fn line(
        &mut self,
        out: &mut Out<'i, '_>,
        start: usize,
        content_end: usize,
        next: usize,
        line: usize,
    ) -> Result<(), LineError> {
        let text = &self.input[start..content_end];
        if text.starts_with('#') {
            if self.dropping.is_some() || !text.starts_with("#EXT") {
                // A comment, or a tag inside a dropped variant.
                if self.dropping.is_some() && is_stream_inf(text) {
                    return Err(Malformation::VariantWithoutUri.into());
                }
                return Ok(());
            }
            return self.tag(out, start, text, next, line);
        }
        let Some((uri_start, uri_end)) = trim_blank(text) else {
            return Ok(());
        };
        if self.pending_variant.take().is_some()
            && let Some(mut dropped) = self.dropping.take()
        {
            out.skip_to(next);
            dropped.end = next;
            if self
                .lowest_dropped
                .is_none_or(|lowest| dropped.bandwidth < lowest.bandwidth)
            {
                self.lowest_dropped = Some(dropped);
            }
            return Ok(());
        }
        out.uri(start + uri_start, start + uri_end, self.rules)?;
        Ok(())
    }

    fn tag(
        &mut self,
        out: &mut Out<'i, '_>,
        start: usize,
        text: &'i str,
        next: usize,
        line: usize,
    ) -> Result<(), LineError> {
        let (name, list_offset) = match find_byte(text.as_bytes(), 0, text.len(), b':') {
            Some(colon) => (&text[1..colon], colon + 1),
            None => (&text[1..], text.len()),
        };
        let list = AttrList::new(&text[list_offset..], start + list_offset);
        let (list_start, list_end) = (start + list_offset, start + text.len());
        match name {
            "EXT-X-KEY"
            | "EXT-X-MAP"
            | "EXT-X-PART"
            | "EXT-X-PRELOAD-HINT"
            | "EXT-X-RENDITION-REPORT"
            | "EXT-X-MEDIA"
            | "EXT-X-SESSION-DATA"
            | "EXT-X-SESSION-KEY" => self.uri_attribute(out, list_start, list_end, b"URI"),
            "EXT-X-CONTENT-STEERING" => {
                self.uri_attribute(out, list_start, list_end, b"SERVER-URI")
            }
            "EXT-X-STREAM-INF" => {
                if self.pending_variant.is_some() {
                    return Err(Malformation::VariantWithoutUri.into());
                }
                let attrs = VariantAttrs::parse(list)?;
                self.variants += 1;
                self.pending_variant = Some(line);
                match self.filter {
                    Some(opts) if !attrs.keep(opts)? => {
                        out.copy_to(start);
                        self.dropping = Some(Dropped {
                            bandwidth: attrs.bandwidth()?,
                            start,
                            end: next,
                            out_pos: out.buf.len(),
                            line,
                        });
                    }
                    _ => self.kept += 1,
                }
                Ok(())
            }
            "EXT-X-I-FRAME-STREAM-INF" => {
                let attrs = VariantAttrs::parse(list)?;
                match self.filter {
                    Some(opts) if !attrs.keep(opts)? => {
                        out.copy_to(start);
                        out.skip_to(next);
                    }
                    _ => {
                        if let Some((uri_start, uri_end)) = attrs.uri {
                            out.uri(uri_start, uri_end, self.rules)?;
                        }
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Rewrites the quoted-string value of every attribute called `name`
    /// (normally one) in the attribute list `list_start..list_end`.
    ///
    /// AttributeValues other than quoted-strings cannot contain `"`
    /// (RFC 8216bis §4.2), so the quotes of a line pair up: one scan for
    /// quotes finds every quoted value, and a value is `name`'s when the
    /// bytes before its opening quote are `name=` at the start of the list
    /// or after a comma. An odd quote is an unterminated quoted-string. A
    /// URI that is not a quoted-string (which §4.4.4 and §4.4.5 do not
    /// allow) is left alone.
    fn uri_attribute(
        &mut self,
        out: &mut Out<'i, '_>,
        list_start: usize,
        list_end: usize,
        name: &[u8],
    ) -> Result<(), LineError> {
        let bytes = self.input.as_bytes();
        let mut pos = list_start;
        while let Some(open) = find_byte(bytes, pos, list_end, b'"') {
            let Some(close) = find_byte(bytes, open + 1, list_end, b'"') else {
                return Err(Truncation::UnterminatedQuote.into());
            };
            let named = open
                .checked_sub(name.len() + 1)
                .filter(|&start| start >= list_start)
                .is_some_and(|start| {
                    bytes[open - 1] == b'='
                        && &bytes[start..open - 1] == name
                        && (start == list_start || bytes[start - 1] == b',')
                });
            if named {
                out.uri(open + 1, close, self.rules)?;
            }
            pos = close + 1;
        }
        Ok(())
    }
}

fn is_stream_inf(text: &str) -> bool {
    text.strip_prefix("#EXT-X-STREAM-INF")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
}

/// The non-blank part of a line as offsets, or `None` for a blank line
/// (RFC 8216bis §4.1: blank lines are ignored).
fn trim_blank(text: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let start = bytes.iter().position(|&b| b != b' ' && b != b'\t')?;
    let end = bytes.iter().rposition(|&b| b != b' ' && b != b'\t')? + 1;
    Some((start, end))
}

/// A line-level error before its line number is known.
enum LineError {
    Truncated(Truncation),
    Malformed(Malformation),
}

impl LineError {
    fn at(self, line: usize) -> ManifestError {
        match self {
            Self::Truncated(reason) => ManifestError::Truncated { line, reason },
            Self::Malformed(reason) => ManifestError::Malformed { line, reason },
        }
    }
}

impl From<Truncation> for LineError {
    fn from(reason: Truncation) -> Self {
        Self::Truncated(reason)
    }
}

impl From<Malformation> for LineError {
    fn from(reason: Malformation) -> Self {
        Self::Malformed(reason)
    }
}
