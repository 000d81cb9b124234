//! SRT `streamid` parsing in the SRT Access Control syntax.
//!
//! Implements the "Standard Access Control Keys" of the SRT Access Control
//! guidelines (Haivision `srt/docs/features/access-control.md`): a streamid
//! that starts with `#!::` is a comma-separated list of `key=value` pairs
//! with the standard keys `u` (user), `r` (resource), `h` (host), `s`
//! (session id), `t` (type: `stream`, `file` or `auth`) and `m` (mode:
//! `request`, `publish` or `bidirectional`), plus custom keys.
//!
//! Two deviations for our clients, both documented on [`StreamId`]:
//! - our publish URLs use `t=TOKEN` for the credential. When `t` is not one
//!   of the spec's types it is taken as the token; explicit custom keys
//!   `token=` or `k=` are accepted too;
//! - the plain form `live/NAME` (no `#!::`) is accepted as the resource with
//!   no mode given.
//!
//! The resource must be `live/NAME` with NAME 1..=128 characters of
//! `[A-Za-z0-9_.-]`, not `.` and without `..`.

use std::fmt;
use std::str::FromStr;

/// Maximum streamid length in bytes (SRT limits `SRTO_STREAMID` to 512).
pub const MAX_STREAMID_LEN: usize = 512;
/// Maximum broadcast name length in characters.
pub const MAX_NAME_LEN: usize = 128;
/// The only resource prefix we serve.
pub const RESOURCE_PREFIX: &str = "live/";

/// The `m` key: what the caller wants to do with the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// `m=request`: play (the spec's default).
    Request,
    /// `m=publish`: send a stream.
    Publish,
    /// `m=bidirectional`: both.
    Bidirectional,
}

/// The `t` key when it has one of the spec's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionType {
    /// `t=stream`: live streaming (the spec's default).
    Stream,
    /// `t=file`: file transfer.
    File,
    /// `t=auth`: authentication only.
    Auth,
}

/// Errors parsing a streamid. Each rejects the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamIdError {
    /// The streamid is longer than [`MAX_STREAMID_LEN`] bytes.
    #[error("streamid is {0} bytes, more than 512")]
    TooLong(usize),
    /// The streamid is empty.
    #[error("empty streamid")]
    Empty,
    /// The streamid contains a control character.
    #[error("control character in streamid")]
    ControlCharacter,
    /// An element of the `#!::` list is not `key=value` or has an empty key
    /// or value.
    #[error("malformed key=value pair {0:?}")]
    MalformedPair(String),
    /// A key appears twice (for the credential: `t`, `token` and `k`
    /// together count as one key).
    #[error("duplicate key {0:?}")]
    DuplicateKey(String),
    /// `m` is not `request`, `publish` or `bidirectional`.
    #[error("unknown mode {0:?}")]
    InvalidMode(String),
    /// No `r` key in the `#!::` form.
    #[error("no resource (r=) in streamid")]
    MissingResource,
    /// The resource is not `live/NAME` with a valid NAME.
    #[error("invalid resource {0:?}: expected live/NAME with NAME of 1-128 [A-Za-z0-9_.-]")]
    InvalidResource(String),
}

/// A parsed SRT streamid.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamId {
    /// `r`: the resource, always `live/NAME` (validated).
    pub resource: String,
    /// `m`: the requested mode; `None` when not given (the plain form, or
    /// `#!::` without `m`). The spec's default is [`Mode::Request`]; a
    /// publish-only listener may default to [`Mode::Publish`], see
    /// [`StreamId::mode_or`].
    pub mode: Option<Mode>,
    /// `t` when it is `stream`, `file` or `auth`.
    pub connection_type: Option<ConnectionType>,
    /// The credential: `token=`, `k=`, or `t=` with a value that is not a
    /// connection type.
    pub token: Option<String>,
    /// `u`: user name.
    pub user: Option<String>,
    /// `s`: session id.
    pub session: Option<String>,
    /// `h`: host name.
    pub host: Option<String>,
    /// Other keys, in order of appearance.
    pub extra: Vec<(String, String)>,
}

impl fmt::Debug for StreamId {
    /// Like the derived `Debug`, but the token is redacted so it never
    /// reaches logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamId")
            .field("resource", &self.resource)
            .field("mode", &self.mode)
            .field("connection_type", &self.connection_type)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("user", &self.user)
            .field("session", &self.session)
            .field("host", &self.host)
            .field("extra", &self.extra)
            .finish()
    }
}

impl StreamId {
    /// Parses a streamid, either `#!::key=value,...` or plain `live/NAME`.
    ///
    /// # Errors
    /// [`StreamIdError`]: too long, empty, control characters, malformed or
    /// duplicate pairs, unknown mode, missing or invalid resource.
    pub fn parse(s: &str) -> Result<StreamId, StreamIdError> {
        if s.len() > MAX_STREAMID_LEN {
            return Err(StreamIdError::TooLong(s.len()));
        }
        if s.is_empty() {
            return Err(StreamIdError::Empty);
        }
        if s.chars().any(char::is_control) {
            return Err(StreamIdError::ControlCharacter);
        }
        let mut id = StreamId {
            resource: String::new(),
            mode: None,
            connection_type: None,
            token: None,
            user: None,
            session: None,
            host: None,
            extra: Vec::new(),
        };
        let Some(list) = s.strip_prefix("#!::") else {
            validate_resource(s)?;
            id.resource = s.to_owned();
            return Ok(id);
        };
        let mut resource = None;
        for pair in list.split(',') {
            let (key, value) = pair
                .split_once('=')
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                .ok_or_else(|| StreamIdError::MalformedPair(redacted(pair)))?;
            let dup = || StreamIdError::DuplicateKey(key.to_owned());
            let set = |slot: &mut Option<String>| {
                if slot.is_some() {
                    return Err(dup());
                }
                *slot = Some(value.to_owned());
                Ok(())
            };
            match key {
                "r" => set(&mut resource)?,
                "u" => set(&mut id.user)?,
                "s" => set(&mut id.session)?,
                "h" => set(&mut id.host)?,
                "token" | "k" => set(&mut id.token)?,
                "m" => {
                    if id.mode.is_some() {
                        return Err(dup());
                    }
                    id.mode = Some(match value {
                        "request" => Mode::Request,
                        "publish" => Mode::Publish,
                        "bidirectional" => Mode::Bidirectional,
                        _ => return Err(StreamIdError::InvalidMode(redacted(value))),
                    });
                }
                "t" => {
                    let ty = match value {
                        "stream" => Some(ConnectionType::Stream),
                        "file" => Some(ConnectionType::File),
                        "auth" => Some(ConnectionType::Auth),
                        _ => None,
                    };
                    match ty {
                        Some(_) if id.connection_type.is_some() => return Err(dup()),
                        Some(ty) => id.connection_type = Some(ty),
                        None => set(&mut id.token)?,
                    }
                }
                _ => {
                    if id.extra.iter().any(|(k, _)| k == key) {
                        return Err(dup());
                    }
                    id.extra.push((key.to_owned(), value.to_owned()));
                }
            }
        }
        let resource = resource.ok_or(StreamIdError::MissingResource)?;
        validate_resource(&resource)?;
        id.resource = resource;
        Ok(id)
    }

    /// NAME of the `live/NAME` resource.
    pub fn broadcast_name(&self) -> &str {
        self.resource
            .strip_prefix(RESOURCE_PREFIX)
            .unwrap_or(&self.resource)
    }

    /// The mode, or `default` when the streamid did not give one (use
    /// [`Mode::Request`] per the spec, [`Mode::Publish`] on a publish-only
    /// listener).
    pub fn mode_or(&self, default: Mode) -> Mode {
        self.mode.unwrap_or(default)
    }
}

impl FromStr for StreamId {
    type Err = StreamIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StreamId::parse(s)
    }
}

/// Longest piece of a refused streamid that an error repeats, in
/// characters.
const MAX_ECHO_CHARS: usize = 64;

/// `text` as an error may repeat it in a log: the value of every
/// credential-looking `key=value` (`t`, `token`, `k`, `passphrase`, `pass`,
/// `password`, `secret`; separated by `,` `&` `?` `;` or a space) is
/// replaced by `<redacted>`, and the rest is cut at [`MAX_ECHO_CHARS`].
/// A malformed streamid is often a URL-style `live/cam?t=SECRET`, and the
/// log must not carry the secret.
fn redacted(text: &str) -> String {
    const SECRET_KEYS: [&str; 7] = [
        "t",
        "token",
        "k",
        "passphrase",
        "pass",
        "password",
        "secret",
    ];
    let is_sep = |c: char| matches!(c, ',' | '&' | '?' | ';' | ' ');
    let mut out = String::with_capacity(text.len().min(MAX_ECHO_CHARS + 16));
    for piece in text.split_inclusive(is_sep) {
        let (body, sep) = match piece.chars().last() {
            Some(c) if is_sep(c) => (&piece[..piece.len() - c.len_utf8()], Some(c)),
            _ => (piece, None),
        };
        match body.split_once('=') {
            Some((key, _)) if SECRET_KEYS.iter().any(|k| key.eq_ignore_ascii_case(k)) => {
                out.push_str(key);
                out.push_str("=<redacted>");
            }
            _ => out.push_str(body),
        }
        if let Some(c) = sep {
            out.push(c);
        }
    }
    if out.chars().count() > MAX_ECHO_CHARS {
        out = out.chars().take(MAX_ECHO_CHARS).collect();
        out.push('…');
    }
    out
}

/// Checks `live/NAME`: NAME is 1..=128 of `[A-Za-z0-9_.-]`, not `.`, and
/// contains no `..` (so it is safe as a path segment).
fn validate_resource(resource: &str) -> Result<(), StreamIdError> {
    let invalid = || StreamIdError::InvalidResource(redacted(resource));
    let name = resource.strip_prefix(RESOURCE_PREFIX).ok_or_else(invalid)?;
    let ok = (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && name != "."
        && !name.contains("..");
    if ok { Ok(()) } else { Err(invalid()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_with_t_token() {
        let id = StreamId::parse("#!::r=live/cam1,m=publish,t=s3cr3t").expect("valid");
        assert_eq!(id.resource, "live/cam1");
        assert_eq!(id.broadcast_name(), "cam1");
        assert_eq!(id.mode, Some(Mode::Publish));
        assert_eq!(id.token.as_deref(), Some("s3cr3t"));
        assert_eq!(id.connection_type, None);
        assert!(!format!("{id:?}").contains("s3cr3t"));
    }

    #[test]
    fn spec_keys_and_custom() {
        let id = StreamId::parse("#!::u=admin,r=live/a.b-c_d,h=example.com,s=abc123,t=stream,m=bidirectional,token=tk,x=1")
            .expect("valid");
        assert_eq!(id.user.as_deref(), Some("admin"));
        assert_eq!(id.host.as_deref(), Some("example.com"));
        assert_eq!(id.session.as_deref(), Some("abc123"));
        assert_eq!(id.connection_type, Some(ConnectionType::Stream));
        assert_eq!(id.mode, Some(Mode::Bidirectional));
        assert_eq!(id.token.as_deref(), Some("tk"));
        assert_eq!(id.extra, vec![("x".to_owned(), "1".to_owned())]);
        let id = StreamId::parse("#!::r=live/x,k=key").expect("valid");
        assert_eq!(id.token.as_deref(), Some("key"));
        assert_eq!(id.mode_or(Mode::Request), Mode::Request);
    }

    #[test]
    fn plain_form() {
        let id: StreamId = "live/show".parse().expect("valid");
        assert_eq!(id.broadcast_name(), "show");
        assert_eq!(id.mode, None);
        assert_eq!(id.mode_or(Mode::Publish), Mode::Publish);
    }

    #[test]
    fn rejections() {
        use StreamIdError as E;
        let long = format!("#!::r=live/a,x={}", "y".repeat(600));
        let cases: &[(&str, E)] = &[
            ("", E::Empty),
            ("#!::m=publish", E::MissingResource),
            ("#!::r=live/a,r=live/b", E::DuplicateKey("r".into())),
            ("#!::r=live/a,t=x,token=y", E::DuplicateKey("token".into())),
            ("#!::r=live/a,m=push", E::InvalidMode("push".into())),
            ("#!::r=live/a,novalue", E::MalformedPair("novalue".into())),
            ("#!::r=live/a,u=", E::MalformedPair("u=".into())),
            ("#!::r=live/a,", E::MalformedPair("".into())),
            ("#!::r=live/a\n", E::ControlCharacter),
            ("live/", E::InvalidResource("live/".into())),
            ("live/..", E::InvalidResource("live/..".into())),
            ("live/a..b", E::InvalidResource("live/a..b".into())),
            ("live/.", E::InvalidResource("live/.".into())),
            ("live/a/b", E::InvalidResource("live/a/b".into())),
            ("vod/a", E::InvalidResource("vod/a".into())),
            ("live/ä", E::InvalidResource("live/ä".into())),
            ("#!::r=cam", E::InvalidResource("cam".into())),
        ];
        for (input, err) in cases {
            assert_eq!(
                StreamId::parse(input).as_ref().err(),
                Some(err),
                "{input:?}"
            );
        }
        assert_eq!(StreamId::parse(&long), Err(E::TooLong(long.len())));
        // Issue 9: a refused streamid never repeats a credential.
        for (input, err) in [
            (
                "live/cam?t=SECRET-123",
                E::InvalidResource("live/cam?t=<redacted>".into()),
            ),
            (
                "#!::r=live/cam?token=SECRET-123,m=publish",
                E::InvalidResource("live/cam?token=<redacted>".into()),
            ),
            (
                "live/a b&passphrase=SECRET-123&x=1",
                E::InvalidResource("live/a b&passphrase=<redacted>&x=1".into()),
            ),
        ] {
            let got = StreamId::parse(input).unwrap_err();
            assert_eq!(got, err, "{input:?}");
            assert!(!got.to_string().contains("SECRET"), "{got}");
        }
        let echoed = StreamId::parse(&format!("live/{}", "ä".repeat(100))).unwrap_err();
        assert!(echoed.to_string().chars().count() < 150, "{echoed}");
        let max = format!("live/{}", "n".repeat(128));
        assert!(StreamId::parse(&max).is_ok());
        let over = format!("live/{}", "n".repeat(129));
        assert!(StreamId::parse(&over).is_err());
    }
}
