//! The request URL model and the CTA-5007 `catu` (URI restriction) claim.

use std::fmt;

use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

use crate::{ResourceMismatch, TokenError};

/// The path prefix under which streams live: `/live/NAME/...`.
pub const STREAM_PATH_PREFIX: &str = "/live/";
/// Maximum stream name length in bytes.
pub const MAX_STREAM_NAME_LEN: usize = 128;

/// Whether `name` is a valid stream name: 1 to [`MAX_STREAM_NAME_LEN`]
/// bytes of `A-Z a-z 0-9 . _ ~ -`, not `.` or `..`. Such a name needs no
/// percent-encoding in a URL path (RFC 3986 §2.3), so a prefix match on the
/// raw path is exact.
pub fn is_valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_STREAM_NAME_LEN
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

/// The URL path prefix of a stream, `/live/NAME/` (used as the `catu` path
/// prefix of minted tokens).
pub fn stream_path_prefix(name: &str) -> String {
    format!("{STREAM_PATH_PREFIX}{name}/")
}

/// A request URL split into the parts `catu` matches on.
///
/// Built by [`RequestUrl::parse`], which lowercases scheme and host and
/// refuses paths that a prefix match could be fooled by. Strip the token's
/// own query parameter (if it travels in the query) before parsing: the
/// `query` component is matched as-is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestUrl {
    scheme: String,
    host: String,
    port: Option<u16>,
    path: String,
    query: Option<String>,
}

/// Maximum URL length accepted by [`RequestUrl::parse`], in bytes.
pub const MAX_URL_LEN: usize = 8192;

impl RequestUrl {
    /// Parse an absolute `scheme://[userinfo@]host[:port][/path][?query][#fragment]`
    /// URL (RFC 3986 §3). The fragment is dropped; an empty path becomes `/`.
    ///
    /// Refused: relative URLs, an empty host, a bad port, and paths with dot
    /// segments (`/./`, `/../`), backslashes, or percent-encoded `/`, `\`,
    /// `.` or `%` (`%2F %5C %2E %25`), which origin servers may decode into a
    /// different path than the one matched.
    pub fn parse(url: &str) -> Result<RequestUrl, TokenError> {
        if url.len() > MAX_URL_LEN {
            return Err(TokenError::InvalidUrl("too long"));
        }
        if url.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(TokenError::InvalidUrl("control character or space"));
        }
        let (scheme, rest) = url
            .split_once("://")
            .ok_or(TokenError::InvalidUrl("not an absolute URL"))?;
        if scheme.is_empty()
            || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return Err(TokenError::InvalidUrl("bad scheme"));
        }
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(authority_end);
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (rest, None),
        };
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or(TokenError::InvalidUrl("bad IPv6 host"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or(TokenError::InvalidUrl("bad port"))?,
                ),
            };
            (format!("[{addr}]"), port)
        } else {
            match host_port.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (host_port.to_owned(), None),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err(TokenError::InvalidUrl("empty host"));
        }
        let port = match port {
            None | Some("") => None,
            Some(p) => {
                if !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(TokenError::InvalidUrl("bad port"));
                }
                Some(
                    p.parse::<u16>()
                        .map_err(|_| TokenError::InvalidUrl("bad port"))?,
                )
            }
        };
        let path = if path.is_empty() { "/" } else { path };
        check_path(path)?;
        Ok(RequestUrl {
            scheme: scheme.to_ascii_lowercase(),
            host: host.to_ascii_lowercase(),
            port,
            path: path.to_owned(),
            query,
        })
    }

    /// The scheme, lowercase (`https`).
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The host, lowercase; IPv6 literals keep their brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The explicit port, else the scheme's default (`http`/`ws` 80,
    /// `https`/`wss` 443), else `None`.
    pub fn port(&self) -> Option<u16> {
        self.port.or(match self.scheme.as_str() {
            "http" | "ws" => Some(80),
            "https" | "wss" => Some(443),
            _ => None,
        })
    }

    /// The path, as sent (still percent-encoded), starting with `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query without `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// True when the path is under `/live/`: a request for a stream's
    /// playlists or media, whose stream [`stream`](Self::stream) reads.
    pub fn is_stream_path(&self) -> bool {
        self.path.starts_with(STREAM_PATH_PREFIX)
    }

    /// The stream this URL is for, if its path is `/live/NAME/...` with a
    /// valid stream name ([`is_valid_stream_name`]: a percent-encoded
    /// spelling is not one; a bare `/live/NAME` is not a stream resource).
    pub fn stream(&self) -> Option<&str> {
        let rest = self.path.strip_prefix(STREAM_PATH_PREFIX)?;
        let (name, _) = rest.split_once('/')?;
        is_valid_stream_name(name).then_some(name)
    }

    /// The text of one `catu` component (CTA-5007 `catu`; parent path,
    /// filename, stem and extension as node-cat splits them: the extension
    /// starts at the first `.` of the filename and includes it).
    pub fn component(&self, component: UriComponent) -> String {
        let (parent, filename) = self.path.rsplit_once('/').unwrap_or(("", &self.path));
        let (stem, extension) = match filename.find('.') {
            Some(i) => filename.split_at(i),
            None => (filename, ""),
        };
        match component {
            UriComponent::Scheme => self.scheme.clone(),
            UriComponent::Host => self.host.clone(),
            // An absent URI component matches as the empty string (CTA-5007 catu).
            UriComponent::Port => self.port().map(|p| p.to_string()).unwrap_or_default(),
            UriComponent::Path => self.path.clone(),
            // An absent URI component matches as the empty string (CTA-5007 catu).
            UriComponent::Query => self.query.clone().unwrap_or_default(),
            UriComponent::ParentPath => parent.to_owned(),
            UriComponent::Filename => filename.to_owned(),
            UriComponent::Stem => stem.to_owned(),
            UriComponent::Extension => extension.to_owned(),
        }
    }
}

fn check_path(path: &str) -> Result<(), TokenError> {
    if !path.starts_with('/') {
        return Err(TokenError::InvalidUrl("path must start with /"));
    }
    if path.contains('\\') {
        return Err(TokenError::InvalidUrl("backslash in path"));
    }
    let lower = path.to_ascii_lowercase();
    if ["%2f", "%5c", "%2e", "%25"]
        .iter()
        .any(|e| lower.contains(e))
    {
        return Err(TokenError::InvalidUrl("encoded / \\ . or % in path"));
    }
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(TokenError::InvalidUrl("dot segment in path"));
    }
    Ok(())
}

/// A `catu` URI component key (CTA-5007 `catu` claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UriComponent {
    /// 0: scheme.
    Scheme,
    /// 1: host.
    Host,
    /// 2: port, as decimal text.
    Port,
    /// 3: path.
    Path,
    /// 4: query.
    Query,
    /// 5: parent path (the path up to, not including, its last `/`).
    ParentPath,
    /// 6: filename (after the last `/`).
    Filename,
    /// 7: stem (filename before its first `.`).
    Stem,
    /// 8: extension (filename from its first `.`, included).
    Extension,
}

impl UriComponent {
    /// The CBOR key.
    pub fn key(self) -> i64 {
        match self {
            UriComponent::Scheme => 0,
            UriComponent::Host => 1,
            UriComponent::Port => 2,
            UriComponent::Path => 3,
            UriComponent::Query => 4,
            UriComponent::ParentPath => 5,
            UriComponent::Filename => 6,
            UriComponent::Stem => 7,
            UriComponent::Extension => 8,
        }
    }

    /// The component for a CBOR key.
    pub fn from_key(key: i128) -> Option<UriComponent> {
        Some(match key {
            0 => UriComponent::Scheme,
            1 => UriComponent::Host,
            2 => UriComponent::Port,
            3 => UriComponent::Path,
            4 => UriComponent::Query,
            5 => UriComponent::ParentPath,
            6 => UriComponent::Filename,
            7 => UriComponent::Stem,
            8 => UriComponent::Extension,
            _ => return None,
        })
    }
}

impl fmt::Display for UriComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UriComponent::Scheme => "scheme",
            UriComponent::Host => "host",
            UriComponent::Port => "port",
            UriComponent::Path => "path",
            UriComponent::Query => "query",
            UriComponent::ParentPath => "parent-path",
            UriComponent::Filename => "filename",
            UriComponent::Stem => "stem",
            UriComponent::Extension => "extension",
        })
    }
}

/// One match of a `catu` component (CTA-5007 match types).
///
/// Regular-expression match (type 4) is refused when parsing
/// ([`TokenError::Unsupported`]): its dialect is not portable and its cost
/// is unbounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UriMatch {
    /// 0: the component equals the text.
    Exact(String),
    /// 1: the component starts with the text.
    Prefix(String),
    /// 2: the component ends with the text.
    Suffix(String),
    /// 3: the component contains the text.
    Contains(String),
    /// -1: SHA-256 of the component equals these 32 bytes.
    Sha256([u8; 32]),
    /// -2: SHA-512/256 (FIPS 180-4) of the component equals these 32 bytes.
    Sha512_256([u8; 32]),
}

impl UriMatch {
    /// The CBOR key of the match type.
    pub fn key(&self) -> i64 {
        match self {
            UriMatch::Exact(_) => 0,
            UriMatch::Prefix(_) => 1,
            UriMatch::Suffix(_) => 2,
            UriMatch::Contains(_) => 3,
            UriMatch::Sha256(_) => -1,
            UriMatch::Sha512_256(_) => -2,
        }
    }

    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            UriMatch::Exact(t) => value == t,
            UriMatch::Prefix(t) => value.starts_with(t.as_str()),
            UriMatch::Suffix(t) => value.ends_with(t.as_str()),
            UriMatch::Contains(t) => value.contains(t.as_str()),
            UriMatch::Sha256(h) => {
                let d = sha2::Sha256::digest(value.as_bytes());
                bool::from(d[..].ct_eq(h))
            }
            UriMatch::Sha512_256(h) => {
                let d = sha2::Sha512_256::digest(value.as_bytes());
                bool::from(d[..].ct_eq(h))
            }
        }
    }
}

/// The `catu` claim (CTA-5007, claim key 312): for each listed URI
/// component, every listed match must hold; unlisted components are free.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Catu {
    /// The restrictions, one entry per component.
    pub rules: Vec<(UriComponent, Vec<UriMatch>)>,
}

impl Catu {
    /// A `catu` restricting the path to a prefix.
    pub fn path_prefix(prefix: impl Into<String>) -> Catu {
        Catu {
            rules: vec![(UriComponent::Path, vec![UriMatch::Prefix(prefix.into())])],
        }
    }

    /// Check a request URL; the first failing component is the error.
    pub fn check(&self, url: &RequestUrl) -> Result<(), TokenError> {
        for (component, matches) in &self.rules {
            let value = url.component(*component);
            if !matches.iter().all(|m| m.matches(&value)) {
                return Err(TokenError::WrongResource(ResourceMismatch::Uri(*component)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_splits() {
        let u =
            RequestUrl::parse("HTTPS://User@Edge.Example:8443/live/cam1/seg_12.m4s?a=1#f").unwrap();
        assert_eq!(u.scheme(), "https");
        assert_eq!(u.host(), "edge.example");
        assert_eq!(u.port(), Some(8443));
        assert_eq!(u.stream(), Some("cam1"));
        assert_eq!(u.component(UriComponent::Path), "/live/cam1/seg_12.m4s");
        assert_eq!(u.component(UriComponent::Query), "a=1");
        assert_eq!(u.component(UriComponent::ParentPath), "/live/cam1");
        assert_eq!(u.component(UriComponent::Filename), "seg_12.m4s");
        assert_eq!(u.component(UriComponent::Stem), "seg_12");
        assert_eq!(u.component(UriComponent::Extension), ".m4s");
        let d = RequestUrl::parse("http://[::1]/x").unwrap();
        assert_eq!(d.host(), "[::1]");
        assert_eq!(d.port(), Some(80));
        assert_eq!(d.stream(), None);
        assert_eq!(RequestUrl::parse("https://h").unwrap().path(), "/");
        assert_eq!(
            RequestUrl::parse("https://h/live/cam1").unwrap().stream(),
            None
        );
    }

    #[test]
    fn refuses_unsafe_urls() {
        for bad in [
            "/live/a/x",
            "https:///live/a/",
            "https://h:99999/",
            "https://h:8o/",
            "https://h/live/a/../b/index.m3u8",
            "https://h/live/a/%2e%2e/b/index.m3u8",
            "https://h/live/a%2Fb/",
            "https://h/live/a\\..\\b/",
            "https://h/live/a/ x",
            "1http://h/",
        ] {
            assert!(RequestUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn catu_matches() {
        let u = RequestUrl::parse("https://edge.example/live/cam1/index.m3u8").unwrap();
        assert!(Catu::path_prefix("/live/cam1/").check(&u).is_ok());
        assert_eq!(
            Catu::path_prefix("/live/cam2/").check(&u),
            Err(TokenError::WrongResource(ResourceMismatch::Uri(
                UriComponent::Path
            )))
        );
        let host_hash: [u8; 32] = sha2::Sha256::digest(b"edge.example").into();
        let catu = Catu {
            rules: vec![
                (UriComponent::Scheme, vec![UriMatch::Exact("https".into())]),
                (
                    UriComponent::Host,
                    vec![
                        UriMatch::Sha256(host_hash),
                        UriMatch::Suffix(".example".into()),
                    ],
                ),
                (
                    UriComponent::Extension,
                    vec![UriMatch::Exact(".m3u8".into())],
                ),
                (
                    UriComponent::Filename,
                    vec![UriMatch::Contains("dex".into())],
                ),
            ],
        };
        assert!(catu.check(&u).is_ok());
        let other = RequestUrl::parse("https://edge.example/live/cam1/index.m4s").unwrap();
        assert!(catu.check(&other).is_err());
        // SHA-512/256 of "abc" (FIPS 180-4 example).
        let abc = [
            0x53, 0x04, 0x8e, 0x26, 0x81, 0x94, 0x1e, 0xf9, 0x9b, 0x2e, 0x29, 0xb7, 0x6b, 0x4c,
            0x7d, 0xab, 0xe4, 0xc2, 0xd0, 0xc6, 0x34, 0xfc, 0x6d, 0x46, 0xe0, 0xe2, 0xf1, 0x31,
            0x07, 0xe7, 0xaf, 0x23,
        ];
        assert!(UriMatch::Sha512_256(abc).matches("abc"));
    }

    #[test]
    fn stream_names() {
        assert!(is_valid_stream_name("cam-1_a.b~"));
        for bad in ["", ".", "..", "a/b", "a b", "ä", &"x".repeat(129)] {
            assert!(!is_valid_stream_name(bad), "{bad}");
        }
    }
}
