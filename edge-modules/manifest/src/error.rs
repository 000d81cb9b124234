//! Why a playlist was refused.

/// Why [`rewrite`](crate::rewrite) refused a playlist or its options.
///
/// Nothing is written when an error is returned (see
/// [`rewrite_into`](crate::rewrite_into)). Line numbers are 1-based and
/// count `LF`-terminated lines of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The first line (after an optional UTF-8 byte order mark) is not the
    /// `#EXTM3U` tag (RFC 8216bis §4.4.1.1: "It MUST be the first line of
    /// every Media Playlist and every Multivariant Playlist").
    #[error("not an HLS playlist: the first line is not #EXTM3U")]
    NotAPlaylist,
    /// The input is longer than
    /// [`RewriteOptions::max_input_bytes`](crate::RewriteOptions::max_input_bytes).
    #[error("playlist is {len} bytes, above the limit of {max} bytes")]
    TooLarge {
        /// Input length in bytes.
        len: usize,
        /// The configured limit in bytes.
        max: usize,
    },
    /// The playlist stops in the middle of something: most likely an
    /// upstream response cut short. Rewriting it would propagate (and let
    /// caches keep) a broken playlist, so it is refused.
    #[error("truncated playlist at line {line}: {reason}")]
    Truncated {
        /// The line where the input ended or the broken line.
        line: usize,
        /// What was cut.
        reason: Truncation,
    },
    /// A line the rewriter has to interpret breaks the playlist syntax.
    #[error("malformed playlist at line {line}: {reason}")]
    Malformed {
        /// The offending line.
        line: usize,
        /// What is wrong with it.
        reason: Malformation,
    },
    /// A [`RewriteOptions`](crate::RewriteOptions) field cannot be written
    /// into a playlist safely (names the field and the rule). This is a
    /// configuration error of the edge, not of the playlist.
    #[error("invalid rewrite options: {0}")]
    InvalidOptions(&'static str),
}

/// How a playlist was cut short. See [`ManifestError::Truncated`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Truncation {
    /// The last line has no line terminator. RFC 8216bis §4.1: "Lines are
    /// terminated by either a single line feed character or a carriage
    /// return character followed by a line feed character", the last line
    /// included; a missing one is how a cut-off body looks (for example a
    /// media segment URI line that stops mid-name).
    #[error("the last line has no line terminator")]
    MissingLineTerminator,
    /// A quoted-string attribute value has no closing `"` (RFC 8216bis
    /// §4.2: quoted-strings cannot contain line feeds, so it cannot be
    /// continued on the next line).
    #[error("a quoted attribute value has no closing quote")]
    UnterminatedQuote,
    /// An `EXT-X-STREAM-INF` tag is the last thing in the playlist: the URI
    /// line that must follow it (RFC 8216bis §4.4.6.2) is missing.
    #[error("EXT-X-STREAM-INF is not followed by its URI line")]
    MissingVariantUri,
}

/// How a line is malformed. See [`ManifestError::Malformed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformation {
    /// A URI contains a control character (U+0000–U+001F or U+007F, for
    /// example a bare carriage return), which RFC 3986 does not allow and
    /// which some clients treat as a line break.
    #[error("a URI contains a control character")]
    ControlCharacter,
    /// An attribute needed for variant filtering is missing or does not
    /// parse: `BANDWIDTH` (decimal-integer, REQUIRED by RFC 8216bis
    /// §4.4.6.2) or `RESOLUTION` (decimal-resolution, §4.2). Only checked
    /// while a filter that needs it is enabled.
    #[error("attribute {0} is missing or invalid")]
    InvalidAttribute(&'static str),
    /// An `EXT-X-STREAM-INF` tag is followed by another one before its URI
    /// line (RFC 8216bis §4.4.6.2: "the URI line that follows").
    #[error("EXT-X-STREAM-INF is not followed by its URI line")]
    VariantWithoutUri,
}
