//! Where the Redis control plane lives: one server, or a Sentinel-watched
//! primary, parsed from a URL.

use std::fmt;
use std::str::FromStr;

use ::redis::IntoConnectionInfo;

/// The default port of a Redis Sentinel.
pub const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// Why a Redis URL was refused by [`RedisTarget::parse`]. The messages never
/// repeat the URL (it may carry a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedisTargetError {
    /// The URL has no `scheme://` part.
    #[error("not a Redis URL: expected redis://, rediss://, redis+unix:// or redis+sentinel://")]
    NotAUrl,
    /// The scheme is none of the supported ones.
    #[error(
        "unsupported scheme {0:?}: expected redis://, rediss://, redis+unix:// or redis+sentinel://"
    )]
    UnknownScheme(String),
    /// The URL has a supported scheme but is malformed (the reason says
    /// which part).
    #[error("invalid Redis URL: {0}")]
    Invalid(String),
}

/// A Redis deployment the control plane connects to.
///
/// Accepted URL forms ([`RedisTarget::parse`], also [`FromStr`]):
///
/// | form | meaning |
/// |---|---|
/// | `redis://[user:pass@]host[:port][/db]` | one server over TCP (port 6379 by default, database 0) |
/// | `rediss://[user:pass@]host[:port][/db]` | the same over TLS (rustls; the server's certificate is verified against the system's roots, or [`RedisOptions::tls_ca_pem`](crate::RedisOptions::tls_ca_pem)) |
/// | `redis+unix:///path/to.sock[?db=N]` (also `unix://`) | one server on a Unix socket; the password, if any, as `?pass=…` |
/// | `redis+sentinel://[user:pass@]host1[:port1][,host2[:port2]…]/SERVICE[/db]` | the primary that the Sentinels at `host1…` name `SERVICE` (port 26379 by default), followed across failovers |
///
/// User name and password are percent-decoded. In the Sentinel form they
/// are those of the Redis servers (primary and replicas); Sentinels that
/// require their own credentials get them through
/// [`SentinelTarget::sentinel_username`] and
/// [`SentinelTarget::sentinel_password`]. TLS to Sentinels
/// (`rediss+sentinel://`) and unverified TLS (`#insecure`) are not
/// supported.
///
/// TLS uses rustls' process-wide crypto provider; when the process
/// installed none, connecting to a `rediss://` target installs `ring`.
///
/// `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisTarget {
    /// One server (`redis://`, `rediss://`, `redis+unix://`): the URL,
    /// already validated, as the `redis` crate reads it.
    Server(String),
    /// A primary found and followed through Sentinel.
    Sentinel(SentinelTarget),
}

/// A primary found through Redis Sentinel (`redis+sentinel://`).
#[derive(Clone, PartialEq, Eq)]
pub struct SentinelTarget {
    /// The Sentinels, `(host, port)`, asked in this order (at least one).
    pub sentinels: Vec<(String, u16)>,
    /// The service (master) name the Sentinels monitor (`sentinel monitor
    /// NAME …`).
    pub service: String,
    /// The database number on the primary.
    pub db: i64,
    /// User name on the Redis servers (ACL), if any.
    pub username: Option<String>,
    /// Password on the Redis servers, if any.
    pub password: Option<String>,
    /// User name on the Sentinels, if they require one.
    pub sentinel_username: Option<String>,
    /// Password on the Sentinels, if they require one.
    pub sentinel_password: Option<String>,
}

impl RedisTarget {
    /// Parses a Redis URL (see the forms in the [type docs](RedisTarget)).
    ///
    /// # Errors
    /// [`RedisTargetError::NotAUrl`], [`RedisTargetError::UnknownScheme`],
    /// or [`RedisTargetError::Invalid`] naming the malformed part (host,
    /// port, database, service name, TLS fragment, …).
    pub fn parse(url: &str) -> Result<Self, RedisTargetError> {
        let url = url.trim();
        let (scheme, rest) = url.split_once("://").ok_or(RedisTargetError::NotAUrl)?;
        match scheme.to_ascii_lowercase().as_str() {
            "rediss" if url.contains('#') => Err(RedisTargetError::Invalid(
                "rediss:// takes no #fragment: unverified TLS (#insecure) is not supported, give a private CA with RedisOptions::tls_ca_pem".into(),
            )),
            "redis" | "rediss" | "redis+unix" | "unix" => {
                // The redis crate's own reader, so that what is accepted here
                // is exactly what it connects to.
                url.into_connection_info()
                    .map_err(|e| RedisTargetError::Invalid(e.to_string()))?;
                Ok(RedisTarget::Server(url.to_owned()))
            }
            "redis+sentinel" => parse_sentinel(rest).map(RedisTarget::Sentinel),
            "rediss+sentinel" => Err(RedisTargetError::Invalid(
                "TLS to Sentinel (rediss+sentinel://) is not supported".into(),
            )),
            other => Err(RedisTargetError::UnknownScheme(other.to_owned())),
        }
    }
}

impl FromStr for RedisTarget {
    type Err = RedisTargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// `[user:pass@]hosts/SERVICE[/db]`, after `redis+sentinel://`.
fn parse_sentinel(rest: &str) -> Result<SentinelTarget, RedisTargetError> {
    let invalid = |m: &str| RedisTargetError::Invalid(m.to_owned());
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(u) => {
            let (user, pass) = match u.split_once(':') {
                Some((user, pass)) => (user, Some(pass)),
                None => (u, None),
            };
            let user = percent_decode(user).ok_or_else(|| invalid("user is not UTF-8"))?;
            let pass = pass
                .map(|p| percent_decode(p).ok_or_else(|| invalid("password is not UTF-8")))
                .transpose()?;
            ((!user.is_empty()).then_some(user), pass)
        }
    };
    let mut sentinels = Vec::new();
    for host in hosts.split(',') {
        sentinels.push(parse_host_port(host)?);
    }
    let path = path.trim_end_matches('/');
    let (service, db) = match path.split_once('/') {
        Some((service, db)) => (
            service,
            db.parse::<i64>()
                .ok()
                .filter(|d| *d >= 0)
                .ok_or_else(|| invalid("the database after the service name must be a number"))?,
        ),
        None => (path, 0),
    };
    let service = percent_decode(service).ok_or_else(|| invalid("service is not UTF-8"))?;
    if service.is_empty() {
        return Err(invalid(
            "missing service name: redis+sentinel://host:port/SERVICE",
        ));
    }
    Ok(SentinelTarget {
        sentinels,
        service,
        db,
        username,
        password,
        sentinel_username: None,
        sentinel_password: None,
    })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn parse_host_port(s: &str) -> Result<(String, u16), RedisTargetError> {
    let invalid = |m: String| RedisTargetError::Invalid(m);
    if s.is_empty() {
        return Err(invalid("empty Sentinel address".into()));
    }
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| invalid("unclosed [ in a Sentinel address".into()))?;
        match after {
            "" => (host, None),
            p => (
                host,
                Some(p.strip_prefix(':').ok_or_else(|| {
                    invalid("expected :port after ] in a Sentinel address".into())
                })?),
            ),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return Err(invalid("a Sentinel address has no valid host".into()));
    }
    let port = match port {
        None => DEFAULT_SENTINEL_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| invalid("a Sentinel port is not a number in 1..=65535".into()))?,
    };
    Ok((host.to_owned(), port))
}

/// RFC 3986 §2.1 percent-decoding of a user name, password or service
/// name, the way the `redis` crate reads the user and password of a
/// `redis://` URL (`percent-encoding`, which it uses too): `%XX` becomes
/// the byte `0xXX`, a `%` without two hex digits is kept as it is, `+` is
/// a `+`. `None` when the result is not UTF-8 (a Redis password is text).
/// So `redis://u:p%40ss@h` and `redis+sentinel://u:p%40ss@h/svc` send the
/// same password.
fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// The URL with the password (between `user:` and `@`) replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let mut out = format!("{scheme}://");
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            out.push_str(user);
            out.push_str(":***@");
            out.push_str(host);
        }
        None => out.push_str(&rest[..authority_end]),
    }
    let path = &rest[authority_end..];
    // A unix socket URL carries its password in the query.
    match path.split_once('?') {
        Some((p, q)) if q.contains("pass") => {
            out.push_str(p);
            out.push_str("?***");
        }
        _ => out.push_str(path),
    }
    out
}

impl fmt::Display for RedisTarget {
    /// The URL, password redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisTarget::Server(url) => f.write_str(&redact(url)),
            RedisTarget::Sentinel(s) => s.fmt(f),
        }
    }
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisTarget({self})")
    }
}

impl fmt::Display for SentinelTarget {
    /// The `redis+sentinel://` URL, password redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("redis+sentinel://")?;
        match (&self.username, &self.password) {
            (Some(u), Some(_)) => write!(f, "{u}:***@")?,
            (Some(u), None) => write!(f, "{u}@")?,
            (None, Some(_)) => f.write_str(":***@")?,
            (None, None) => {}
        }
        for (i, (host, port)) in self.sentinels.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            if host.contains(':') {
                write!(f, "{sep}[{host}]:{port}")?;
            } else {
                write!(f, "{sep}{host}:{port}")?;
            }
        }
        write!(f, "/{}", self.service)?;
        if self.db != 0 {
            write!(f, "/{}", self.db)?;
        }
        Ok(())
    }
}

impl fmt::Debug for SentinelTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SentinelTarget({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentinel(url: &str) -> SentinelTarget {
        match RedisTarget::parse(url) {
            Ok(RedisTarget::Sentinel(s)) => s,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn server_forms() {
        for url in [
            "redis://127.0.0.1",
            "redis://127.0.0.1:6380",
            "redis://127.0.0.1:6380/2",
            "redis://user:p%40ss@cache.internal:6379/0",
            "redis://:secret@[::1]:6379",
            "rediss://cache.example.com:6380",
            "redis+unix:///run/redis/redis.sock",
            "unix:///run/redis/redis.sock?db=3",
        ] {
            assert_eq!(
                RedisTarget::parse(url),
                Ok(RedisTarget::Server(url.into())),
                "{url}"
            );
        }
    }

    #[test]
    fn sentinel_forms() {
        let s = sentinel("redis+sentinel://10.0.0.1:26379,10.0.0.2:26380,[::1]/mymaster/2");
        assert_eq!(
            s.sentinels,
            vec![
                ("10.0.0.1".into(), 26379),
                ("10.0.0.2".into(), 26380),
                ("::1".into(), DEFAULT_SENTINEL_PORT)
            ]
        );
        assert_eq!(s.service, "mymaster");
        assert_eq!(s.db, 2);
        assert_eq!(s.username, None);
        assert_eq!(s.password, None);

        let s = sentinel("redis+sentinel://app:p%40ss@sentinel-a/livestack/");
        assert_eq!(s.sentinels, vec![("sentinel-a".into(), 26379)]);
        assert_eq!(s.service, "livestack");
        assert_eq!(s.db, 0);
        assert_eq!(s.username.as_deref(), Some("app"));
        assert_eq!(s.password.as_deref(), Some("p@ss"));

        let s = sentinel("redis+sentinel://:pw@h:1/svc");
        assert_eq!(s.username, None);
        assert_eq!(s.password.as_deref(), Some("pw"));
    }

    #[test]
    fn bad_urls_say_why() {
        let invalid = |url: &str| match RedisTarget::parse(url) {
            Err(RedisTargetError::Invalid(m)) => m,
            other => panic!("{url}: {other:?}"),
        };
        assert_eq!(
            RedisTarget::parse("localhost:6379"),
            Err(RedisTargetError::NotAUrl)
        );
        assert_eq!(
            RedisTarget::parse("http://localhost"),
            Err(RedisTargetError::UnknownScheme("http".into()))
        );
        assert!(invalid("redis+sentinel://h:26379").contains("service"));
        assert!(invalid("redis+sentinel://h:26379/").contains("service"));
        assert!(invalid("redis+sentinel://h:port/svc").contains("port"));
        assert!(invalid("redis+sentinel://h:0/svc").contains("port"));
        assert!(invalid("redis+sentinel://h:1,,h2/svc").contains("empty"));
        assert!(invalid("redis+sentinel://h/svc/x").contains("database"));
        assert!(invalid("redis+sentinel://[::1/svc").contains('['));
        assert!(invalid("redis+sentinel://u:%ff@h/svc").contains("password"));
        assert!(invalid("rediss+sentinel://h/svc").contains("TLS"));
        assert!(!invalid("redis://127.0.0.1:6379/notadb").is_empty());
        assert!(invalid("rediss://h/#whatever").contains("fragment"));
        assert!(invalid("rediss://h:6380/#insecure").contains("insecure"));
        // The password never shows in an error.
        let e = RedisTarget::parse("redis://u:hunter2@h:99999").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn display_and_debug_redact_the_password() {
        for (url, shown) in [
            ("redis://user:hunter2@h:6379/1", "redis://user:***@h:6379/1"),
            ("redis://:hunter2@h", "redis://:***@h"),
            ("redis://h:6379", "redis://h:6379"),
            ("unix:///s.sock?pass=hunter2", "unix:///s.sock?***"),
            (
                "redis+sentinel://u:hunter2@a:1,b:2/svc/3",
                "redis+sentinel://u:***@a:1,b:2/svc/3",
            ),
        ] {
            let t = RedisTarget::parse(url).unwrap();
            assert_eq!(t.to_string(), shown);
            assert!(!format!("{t:?}").contains("hunter2"));
        }
    }

    #[test]
    fn arbitrary_input_never_panics() {
        // Deterministic pseudo-random strings over URL-ish characters,
        // plus mutations of valid URLs.
        let alphabet: Vec<char> = "redis+sentinl:/@%[],.#?=0123456789abcfé ".chars().collect();
        let seeds = [
            "redis+sentinel://u:p@a:1,[::1]:2/svc/3",
            "rediss://u:p@h:6380/1",
            "redis+unix:///tmp/s.sock?db=2",
        ];
        let mut x: u64 = 0x853C_49E6_748F_EA9B;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            usize::try_from(x % 1_000_003).unwrap_or(0)
        };
        for round in 0..20_000 {
            let mut s: Vec<char> = if round % 2 == 0 {
                seeds[next() % seeds.len()].chars().collect()
            } else {
                Vec::new()
            };
            for _ in 0..next() % 12 {
                let c = alphabet[next() % alphabet.len()];
                match next() % 3 {
                    0 => s.push(c),
                    1 if !s.is_empty() => {
                        let i = next() % s.len();
                        s[i] = c;
                    }
                    _ if !s.is_empty() => {
                        s.remove(next() % s.len());
                    }
                    _ => {}
                }
            }
            let s: String = s.into_iter().collect();
            if let Ok(t) = RedisTarget::parse(&s) {
                let _ = (t.to_string(), format!("{t:?}"));
            }
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%3a").as_deref(), Some("a/b:"));
        assert_eq!(percent_decode("p%35").as_deref(), Some("p5"));
        assert_eq!(percent_decode("a+b").as_deref(), Some("a+b"));
        // A malformed escape is kept, as the redis crate keeps it.
        assert_eq!(percent_decode("%").as_deref(), Some("%"));
        assert_eq!(percent_decode("%4").as_deref(), Some("%4"));
        assert_eq!(percent_decode("%zz").as_deref(), Some("%zz"));
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_decode("é%C3%A9").as_deref(), Some("éé"));
    }
}
