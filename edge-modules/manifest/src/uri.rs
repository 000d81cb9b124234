//! One URI: classify it, base-rewrite it, append the token.

use crate::{Malformation, RewriteOptions};

/// The options a URI rewrite needs, borrowed once per call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UriRules<'o> {
    token: Option<&'o str>,
    token_foreign: bool,
    base: Option<(&'o str, &'o str)>,
}

impl<'o> UriRules<'o> {
    pub(crate) fn new(opts: &'o RewriteOptions) -> Self {
        Self {
            token: opts.token_query.as_deref(),
            token_foreign: opts.token_foreign_uris,
            base: opts.base.as_ref().map(|b| (b.from.as_str(), b.to.as_str())),
        }
    }

    /// Upper bound of the bytes one URI rewrite adds.
    pub(crate) fn growth_per_uri(&self) -> usize {
        self.token.map_or(0, |t| t.len() + 1)
            + self
                .base
                .map_or(0, |(from, to)| to.len().saturating_sub(from.len()))
    }
}

/// What a URI is, for the table on [`RewriteOptions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Relative,
    Base,
    Foreign,
    Opaque,
}

/// Classifies a URI from the results of [`scan`].
fn classify(uri: &str, colon: Option<usize>, base: Option<(&str, &str)>) -> Kind {
    if base.is_some_and(|(from, _)| uri.starts_with(from)) {
        return Kind::Base;
    }
    if uri.starts_with("//") {
        return Kind::Foreign;
    }
    match colon.map(|end| &uri[..end]).filter(|s| is_scheme(s)) {
        None => Kind::Relative,
        Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {
            Kind::Foreign
        }
        Some(_) => Kind::Opaque,
    }
}

/// RFC 3986 §3.1 `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// The bytes the URI scan stops at: controls (U+0000–U+001F, U+007F),
/// `#`, `?` and `:`.
fn is_special(b: u8) -> bool {
    b < 0x20 || matches!(b, 0x7f | b'#' | b'?' | b':')
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Non-zero if `word` may contain a byte for which [`is_special`] holds
/// (never zero when one does): the "has zero byte" and "has byte less
/// than n" tricks of "Bit Twiddling Hacks" (S. E. Anderson), OR-ed.
fn may_have_special(word: u64) -> u64 {
    let zero = |w: u64| w.wrapping_sub(LO) & !w & HI;
    let below_space = word.wrapping_sub(LO.wrapping_mul(0x20)) & !word & HI;
    below_space
        | zero(word ^ LO.wrapping_mul(0x7f))
        | zero(word ^ LO.wrapping_mul(u64::from(b'#')))
        | zero(word ^ LO.wrapping_mul(u64::from(b'?')))
        | zero(word ^ LO.wrapping_mul(u64::from(b':')))
}

/// What one pass over a URI finds (offsets in the URI).
#[derive(Debug, Default)]
struct Scan {
    /// The first `#`: the fragment starts here.
    fragment: Option<usize>,
    /// The first `?` before the fragment: the query starts here.
    query: Option<usize>,
    /// The first `:`: a scheme ends here if what precedes it is one
    /// (a `/`, `?` or `#` before it is not a scheme character).
    colon: Option<usize>,
}

/// One pass over a URI, eight bytes at a time where none is special.
fn scan(uri: &[u8]) -> Result<Scan, Malformation> {
    let mut found = Scan::default();
    let mut i = 0;
    while i < uri.len() {
        if let Some(chunk) = uri.get(i..i + 8) {
            let word = u64::from_le_bytes(chunk.try_into().expect("an 8-byte slice"));
            if may_have_special(word) == 0 {
                i += 8;
                continue;
            }
        }
        let end = (i + 8).min(uri.len());
        for (j, &b) in uri[i..end].iter().enumerate() {
            if !is_special(b) {
                continue;
            }
            let at = i + j;
            match b {
                b'#' if found.fragment.is_none() => found.fragment = Some(at),
                b'?' if found.fragment.is_none() && found.query.is_none() => found.query = Some(at),
                b':' if found.colon.is_none() => found.colon = Some(at),
                b'#' | b'?' | b':' => {}
                _ => return Err(Malformation::ControlCharacter),
            }
        }
        i = end;
    }
    Ok(found)
}

/// Copies the input to an output buffer lazily: untouched bytes are copied
/// in one `push_str` per rewrite, not per line.
pub(crate) struct Out<'i, 'b> {
    input: &'i str,
    pub(crate) buf: &'b mut String,
    /// Input offset up to which the input has been copied or skipped.
    copied: usize,
}

impl<'i, 'b> Out<'i, 'b> {
    pub(crate) fn new(input: &'i str, buf: &'b mut String, from: usize) -> Self {
        Self {
            input,
            buf,
            copied: from,
        }
    }

    /// Copies the input up to `pos`.
    pub(crate) fn copy_to(&mut self, pos: usize) {
        debug_assert!(pos >= self.copied, "rewrites go forward");
        self.buf.push_str(&self.input[self.copied..pos]);
        self.copied = pos;
    }

    /// Drops the input up to `pos` (which must be copied up to where the
    /// dropped part starts).
    pub(crate) fn skip_to(&mut self, pos: usize) {
        debug_assert!(pos >= self.copied, "rewrites go forward");
        self.copied = pos;
    }

    /// Rewrites the URI at `start..end` of the input.
    pub(crate) fn uri(
        &mut self,
        start: usize,
        end: usize,
        rules: &UriRules<'_>,
    ) -> Result<(), Malformation> {
        let uri = &self.input[start..end];
        let Scan {
            fragment,
            query,
            colon,
        } = scan(uri.as_bytes())?;
        if uri.is_empty() {
            return Ok(());
        }
        let kind = classify(uri, colon, rules.base);
        match kind {
            Kind::Opaque => return Ok(()),
            Kind::Base => {
                if let Some((from, to)) = rules.base {
                    self.copy_to(start);
                    self.buf.push_str(to);
                    self.skip_to(start + from.len());
                }
            }
            Kind::Relative | Kind::Foreign => {}
        }
        let Some(token) = rules.token else {
            return Ok(());
        };
        if kind == Kind::Foreign && !rules.token_foreign {
            return Ok(());
        }
        let insert = fragment.unwrap_or(uri.len());
        self.copy_to(start + insert);
        match query {
            None => self.buf.push('?'),
            Some(_) if matches!(uri.as_bytes()[insert - 1], b'?' | b'&') => {}
            Some(_) => self.buf.push('&'),
        }
        self.buf.push_str(token);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BaseRewrite;

    fn one(uri: &str, opts: &RewriteOptions) -> Result<String, Malformation> {
        let mut buf = String::new();
        let mut out = Out::new(uri, &mut buf, 0);
        out.uri(0, uri.len(), &UriRules::new(opts))?;
        out.copy_to(uri.len());
        Ok(buf)
    }

    #[test]
    fn token_placement() {
        let opts = RewriteOptions {
            token_query: Some("token=abc".into()),
            ..RewriteOptions::default()
        };
        let table = [
            ("seg1.m4s", "seg1.m4s?token=abc"),
            ("seg1.m4s?x=1", "seg1.m4s?x=1&token=abc"),
            ("seg1.m4s?", "seg1.m4s?token=abc"),
            ("seg1.m4s?x=1&", "seg1.m4s?x=1&token=abc"),
            ("seg1.m4s#t=5", "seg1.m4s?token=abc#t=5"),
            ("seg1.m4s?x=1#t=5", "seg1.m4s?x=1&token=abc#t=5"),
            ("seg1.m4s#frag?notquery", "seg1.m4s?token=abc#frag?notquery"),
            ("/live/a.m3u8", "/live/a.m3u8?token=abc"),
            ("../k.key", "../k.key?token=abc"),
            ("a:b/c", "a:b/c"),           // has a scheme "a": opaque
            ("./a:b", "./a:b?token=abc"), // RFC 3986 §4.2 dot-segment form
            ("1a:b", "1a:b?token=abc"),   // not a scheme
            ("data:text/plain,hi", "data:text/plain,hi"),
            ("skd://key-id", "skd://key-id"),
            ("https://cdn.example/x.m4s", "https://cdn.example/x.m4s"),
            ("//cdn.example/x.m4s", "//cdn.example/x.m4s"),
            ("", ""),
        ];
        for (uri, want) in table {
            assert_eq!(one(uri, &opts).unwrap(), want, "{uri}");
        }
    }

    #[test]
    fn base_rewrite_then_token() {
        let opts = RewriteOptions {
            token_query: Some("t=1".into()),
            base: Some(BaseRewrite {
                from: "http://origin:8080/live/".into(),
                to: "https://edge.example/live/".into(),
            }),
            ..RewriteOptions::default()
        };
        assert_eq!(
            one("http://origin:8080/live/s/seg1.m4s?x#f", &opts).unwrap(),
            "https://edge.example/live/s/seg1.m4s?x&t=1#f"
        );
        assert_eq!(
            one("http://origin:8080/other/seg1.m4s", &opts).unwrap(),
            "http://origin:8080/other/seg1.m4s"
        );
        assert_eq!(one("seg1.m4s", &opts).unwrap(), "seg1.m4s?t=1");
        let foreign = RewriteOptions {
            token_foreign_uris: true,
            ..opts
        };
        assert_eq!(
            one("HTTPS://keys.example/k", &foreign).unwrap(),
            "HTTPS://keys.example/k?t=1"
        );
    }

    #[test]
    fn control_characters_are_refused() {
        let opts = RewriteOptions::default();
        for uri in ["a\rb", "a\0", "a\tb", "a\x7f"] {
            assert_eq!(
                one(uri, &opts),
                Err(Malformation::ControlCharacter),
                "{uri:?}"
            );
        }
        assert_eq!(one("é.m4s", &opts).unwrap(), "é.m4s");
    }
}
