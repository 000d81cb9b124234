//! What to rewrite.

use crate::ManifestError;

/// Default of [`RewriteOptions::max_input_bytes`]: 1 MiB. A live LL-HLS
/// Media Playlist is a few KiB; a very long DVR window or a large
/// Multivariant Playlist stays far below this.
pub const DEFAULT_MAX_INPUT_BYTES: usize = 1 << 20;

/// Rewrites absolute URIs that point at the origin so they point at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseRewrite {
    /// Prefix of the absolute URIs to rewrite, compared byte for byte
    /// (case-sensitive), e.g. `"http://origin:8080/live/"`. Must be non-empty
    /// and contain no `?`, `#`, `"`, whitespace or control character.
    pub from: String,
    /// What replaces [`from`](Self::from), e.g. `"https://edge.example/live/"`.
    /// Same character rules as `from`; may be empty (the URI becomes relative
    /// to the playlist).
    pub to: String,
}

/// What [`rewrite`](crate::rewrite) changes in a playlist.
///
/// Build it from [`Default`] (which changes nothing) with struct-update
/// syntax:
///
/// ```
/// # use livestack_manifest::RewriteOptions;
/// let opts = RewriteOptions {
///     token_query: Some("token=abc".into()),
///     max_height: Some(720),
///     ..RewriteOptions::default()
/// };
/// # let _ = opts;
/// ```
///
/// # Which URIs get the token
///
/// | URI | base rewrite | token |
/// |---|---|---|
/// | relative (`seg1.m4s`, `/live/a.m3u8`, `../k.key`) | no | yes |
/// | absolute, starts with [`BaseRewrite::from`] | yes | yes |
/// | other `http:`/`https:` or network-path (`//host/…`) | no | only with [`token_foreign_uris`](Self::token_foreign_uris) |
/// | any other scheme (`data:`, `skd:`, `urn:`, …) | no | no (opaque: a key system identifier or inline data, RFC 8216bis §4.4.4.4) |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteOptions {
    /// Query parameter(s) appended to every URI the table above selects,
    /// already percent-encoded, without a leading `?` or `&`, e.g.
    /// `"token=abc"` or `"token=abc&exp=1700000000"`. It goes after an
    /// existing query with `&` (or directly after a trailing `?`/`&`) and
    /// before a fragment: `a.m4s?x=1#t=5` becomes `a.m4s?x=1&token=abc#t=5`.
    /// Must contain only RFC 3986 query characters (`pchar / "/" / "?"`,
    /// §3.4): no `"`, `#`, whitespace or control character. `None` (the
    /// default) appends nothing.
    pub token_query: Option<String>,
    /// Also append [`token_query`](Self::token_query) to absolute `http:`,
    /// `https:` and network-path URIs that [`base`](Self::base) does not
    /// rewrite. Default `false`: such URIs point at a third party (a key
    /// server, an ad server) that must not receive the viewer's token.
    pub token_foreign_uris: bool,
    /// Base rewriting of absolute URIs; `None` (the default) keeps them.
    /// Relative URIs are never changed by it.
    pub base: Option<BaseRewrite>,
    /// Multivariant Playlists: drop `EXT-X-STREAM-INF` and
    /// `EXT-X-I-FRAME-STREAM-INF` variants whose `BANDWIDTH` (bits per
    /// second, RFC 8216bis §4.4.6.2) is above this. Default `None`.
    pub max_bandwidth: Option<u64>,
    /// Drop variants whose `RESOLUTION` height (pixels) is above this.
    /// Variants without `RESOLUTION` are kept. Default `None`.
    pub max_height: Option<u32>,
    /// If non-empty, drop variants whose `CODECS` list (RFC 6381 strings)
    /// has a codec that does not start with one of these prefixes, e.g.
    /// `["avc1", "mp4a"]` keeps `CODECS="avc1.64001f,mp4a.40.2"` and drops
    /// `CODECS="hvc1.2.4.L123.B0,mp4a.40.2"`. Comparison is case-sensitive
    /// (sample entry four-character codes are). Variants without `CODECS`
    /// are kept. Default empty.
    pub allowed_codecs: Vec<String>,
    /// Inputs longer than this many bytes are refused with
    /// [`ManifestError::TooLarge`] before any work. Default
    /// [`DEFAULT_MAX_INPUT_BYTES`]. The output is at most the input plus one
    /// token (and one base-prefix growth) per URI.
    pub max_input_bytes: usize,
}

impl Default for RewriteOptions {
    fn default() -> Self {
        Self {
            token_query: None,
            token_foreign_uris: false,
            base: None,
            max_bandwidth: None,
            max_height: None,
            allowed_codecs: Vec::new(),
            max_input_bytes: DEFAULT_MAX_INPUT_BYTES,
        }
    }
}

impl RewriteOptions {
    /// True if any variant filter is enabled.
    pub(crate) fn filters(&self) -> bool {
        self.max_bandwidth.is_some() || self.max_height.is_some() || !self.allowed_codecs.is_empty()
    }

    /// Checks the character rules documented on each field.
    ///
    /// # Errors
    ///
    /// [`ManifestError::InvalidOptions`] naming the first violated rule.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if let Some(token) = &self.token_query {
            if token.is_empty() {
                return Err(ManifestError::InvalidOptions("token_query is empty"));
            }
            if token.starts_with(['?', '&']) {
                return Err(ManifestError::InvalidOptions(
                    "token_query starts with '?' or '&'",
                ));
            }
            if !token.bytes().all(is_query_byte) {
                return Err(ManifestError::InvalidOptions(
                    "token_query has a character outside RFC 3986 query",
                ));
            }
        }
        if let Some(base) = &self.base {
            if base.from.is_empty() {
                return Err(ManifestError::InvalidOptions("base.from is empty"));
            }
            if !is_safe_prefix(&base.from) || !is_safe_prefix(&base.to) {
                return Err(ManifestError::InvalidOptions(
                    "base prefixes must not contain '?', '#', '\"', whitespace or controls",
                ));
            }
        }
        Ok(())
    }
}

/// RFC 3986 §3.4 `query = *( pchar / "/" / "?" )`, with `pct-encoded` seen
/// byte by byte (`%` allowed).
fn is_query_byte(b: u8) -> bool {
    QUERY_BYTES[usize::from(b)]
}

/// [`is_query_byte`] as a table: validated on every call, so one lookup
/// per byte.
static QUERY_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
                    | b'?'
            );
        b += 1;
    }
    table
};

fn is_safe_prefix(s: &str) -> bool {
    s.bytes()
        .all(|b| b > b' ' && b != 0x7f && !matches!(b, b'?' | b'#' | b'"'))
}
