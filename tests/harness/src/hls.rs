//! A small, independent LL-HLS client for the tests: an HTTP/1.1 GET, a
//! line parser for media playlists (the m3u8 crates drop LL-HLS tags), and
//! a follower that walks a live media playlist with blocking reloads and
//! downloads every part and segment until EXT-X-ENDLIST.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

/// An HTTP/1.1 client with keep-alive, sending the same extra headers with
/// every request ([`HttpClient::with_header`]).
#[derive(Clone, Debug)]
pub struct HttpClient(
    Client<HttpConnector, Empty<Bytes>>,
    Vec<(http::HeaderName, http::HeaderValue)>,
);

/// A response.
#[derive(Debug)]
pub struct Fetched {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body.
    pub body: Bytes,
    /// When the last body byte arrived.
    pub received: Instant,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A new client.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self(
            Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(64)
                .build(connector),
            Vec::new(),
        )
    }

    /// The same client (sharing its connections), sending `name: value`
    /// with every request as well, e.g. a client-location header.
    pub fn with_header(&self, name: &'static str, value: &str) -> Self {
        let mut headers = self.1.clone();
        headers.push((
            http::HeaderName::from_static(name),
            value.parse().expect("valid header value"),
        ));
        Self(self.0.clone(), headers)
    }

    /// GETs `url`.
    pub async fn get(&self, url: &str) -> Fetched {
        let uri: http::Uri = url.parse().expect("valid url");
        let mut request = http::Request::new(Empty::new());
        *request.uri_mut() = uri;
        for (name, value) in &self.1 {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        let resp = self.0.request(request).await.expect("http request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .expect("http body")
            .to_bytes();
        Fetched {
            status,
            headers,
            body,
            received: Instant::now(),
        }
    }
}

/// One `EXT-X-PART`.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// URI as written.
    pub uri: String,
    /// DURATION, seconds.
    pub duration: f64,
    /// INDEPENDENT=YES.
    pub independent: bool,
}

/// A segment (complete, or the open one with only parts).
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Media sequence number.
    pub msn: u64,
    /// URI, `None` for the open segment at the end.
    pub uri: Option<String>,
    /// EXTINF duration, seconds.
    pub duration: f64,
    /// Its parts, when listed.
    pub parts: Vec<Part>,
    /// EXT-X-PROGRAM-DATE-TIME as written.
    pub program_date_time: Option<String>,
    /// Preceded by EXT-X-DISCONTINUITY.
    pub discontinuity: bool,
    /// The EXT-X-MAP URI in force.
    pub map: Option<String>,
}

/// A parsed media playlist.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaPlaylist {
    /// EXT-X-TARGETDURATION.
    pub target_duration: u64,
    /// PART-TARGET of EXT-X-PART-INF.
    pub part_target: Option<f64>,
    /// The EXT-X-SERVER-CONTROL attribute list as written.
    pub server_control: Option<String>,
    /// EXT-X-MEDIA-SEQUENCE.
    pub media_sequence: u64,
    /// SKIPPED-SEGMENTS of EXT-X-SKIP.
    pub skipped: u64,
    /// Segments in order; the last may be open (`uri` None).
    pub segments: Vec<Segment>,
    /// URI of EXT-X-PRELOAD-HINT TYPE=PART.
    pub preload_hint: Option<String>,
    /// EXT-X-RENDITION-REPORT lines as written.
    pub rendition_reports: Vec<String>,
    /// EXT-X-ENDLIST present.
    pub endlist: bool,
    /// Every URI in the playlist (segments, parts, map, hint, reports).
    pub uris: Vec<String>,
}

fn attr<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    // Attribute lists: NAME=VALUE pairs, quoted strings may hold commas.
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], q[end + 1..].trim_start_matches(','))
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        if key.trim() == name {
            return Some(value);
        }
        rest = next;
    }
    None
}

impl MediaPlaylist {
    /// Parses playlist text; panics with the line on malformed input (tests).
    pub fn parse(text: &str) -> Self {
        let mut p = MediaPlaylist::default();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("#EXTM3U"),
            "playlist must start with #EXTM3U"
        );
        let mut map = None;
        let mut pdt = None;
        let mut disc = false;
        let mut parts: Vec<Part> = Vec::new();
        let mut extinf = None;
        let mut msn = None;
        for line in lines {
            let line = line.trim_end();
            if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
                p.target_duration = v.parse().expect("target duration");
            } else if let Some(v) = line.strip_prefix("#EXT-X-PART-INF:") {
                p.part_target = attr(v, "PART-TARGET").map(|x| x.parse().expect("part target"));
            } else if let Some(v) = line.strip_prefix("#EXT-X-SERVER-CONTROL:") {
                p.server_control = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                p.media_sequence = v.parse().expect("media sequence");
            } else if let Some(v) = line.strip_prefix("#EXT-X-SKIP:") {
                p.skipped = attr(v, "SKIPPED-SEGMENTS")
                    .and_then(|x| x.parse().ok())
                    .expect("skipped segments");
            } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:") {
                let uri = attr(v, "URI").expect("map uri").to_owned();
                p.uris.push(uri.clone());
                map = Some(uri);
            } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
                pdt = Some(v.to_owned());
            } else if line == "#EXT-X-DISCONTINUITY" {
                disc = true;
            } else if let Some(v) = line.strip_prefix("#EXT-X-PART:") {
                let uri = attr(v, "URI").expect("part uri").to_owned();
                p.uris.push(uri.clone());
                parts.push(Part {
                    uri,
                    duration: attr(v, "DURATION")
                        .and_then(|x| x.parse().ok())
                        .expect("part duration"),
                    independent: attr(v, "INDEPENDENT") == Some("YES"),
                });
            } else if let Some(v) = line.strip_prefix("#EXTINF:") {
                extinf = Some(
                    v.trim_end_matches(',')
                        .split(',')
                        .next()
                        .and_then(|x| x.parse::<f64>().ok())
                        .expect("extinf"),
                );
            } else if let Some(v) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
                let uri = attr(v, "URI").expect("hint uri").to_owned();
                p.uris.push(uri.clone());
                p.preload_hint = Some(uri);
            } else if let Some(v) = line.strip_prefix("#EXT-X-RENDITION-REPORT:") {
                if let Some(u) = attr(v, "URI") {
                    p.uris.push(u.to_owned());
                }
                p.rendition_reports.push(v.to_owned());
            } else if line == "#EXT-X-ENDLIST" {
                p.endlist = true;
            } else if !line.starts_with('#') && !line.is_empty() {
                let m = *msn.get_or_insert(p.media_sequence + p.skipped);
                p.uris.push(line.to_owned());
                p.segments.push(Segment {
                    msn: m,
                    uri: Some(line.to_owned()),
                    duration: extinf.take().expect("EXTINF before URI"),
                    parts: std::mem::take(&mut parts),
                    program_date_time: pdt.take(),
                    discontinuity: std::mem::take(&mut disc),
                    map: map.clone(),
                });
                msn = Some(m + 1);
            }
        }
        if !parts.is_empty() {
            let m = msn.unwrap_or(p.media_sequence + p.skipped);
            p.segments.push(Segment {
                msn: m,
                uri: None,
                duration: parts.iter().map(|x| x.duration).sum(),
                parts,
                program_date_time: pdt,
                discontinuity: disc,
                map,
            });
        }
        p
    }

    /// (msn, part index) of the last listed part.
    pub fn last_part(&self) -> Option<(u64, u32)> {
        self.segments
            .iter()
            .rev()
            .find(|s| !s.parts.is_empty())
            .map(|s| (s.msn, s.parts.len() as u32 - 1))
    }
}

/// Everything a follower downloaded from one media playlist.
#[derive(Debug, Default)]
pub struct Followed {
    /// Init segments by URI.
    pub inits: BTreeMap<String, Bytes>,
    /// Complete segments by msn, with the map URI in force.
    pub segments: BTreeMap<u64, (String, Bytes)>,
    /// Parts by (msn, index).
    pub parts: BTreeMap<(u64, u32), Bytes>,
    /// Number of parts each segment had, when seen complete with parts.
    pub part_counts: BTreeMap<u64, u32>,
    /// Every playlist received.
    pub playlists: Vec<MediaPlaylist>,
    /// Raw text of every playlist received.
    pub playlist_texts: Vec<String>,
    /// Blocking requests: (msn, part) asked, and when the answer arrived.
    pub blocking: Vec<((u64, u32), Instant)>,
}

/// Resolves a playlist `uri` against the playlist's `base` URL (its query
/// dropped), as a player does (RFC 3986 §5.2, for the relative paths our
/// playlists use).
pub fn join(base: &str, uri: &str) -> String {
    if uri.starts_with("http://") || uri.starts_with("https://") {
        return uri.to_owned();
    }
    let base = strip_query(base);
    let dir = &base[..=base.rfind('/').expect("base url has a slash")];
    format!("{dir}{uri}")
}

fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

fn part_index(uri: &str) -> Option<(u64, u32)> {
    let name = strip_query(uri).rsplit('/').next()?;
    let s = name.strip_prefix("part")?.strip_suffix(".m4s")?;
    let (m, i) = s.split_once('.')?;
    Some((m.parse().ok()?, i.parse().ok()?))
}

/// Follows the media playlist at `url` (absolute, its query — a token —
/// kept on every reload) until EXT-X-ENDLIST, fetching every segment, part
/// and init section it lists, with blocking reloads for the next part.
/// Panics after `limit`.
pub async fn follow(client: &HttpClient, url: &str, limit: Duration) -> Followed {
    let start = Instant::now();
    let mut f = Followed::default();
    let mut next_url = url.to_owned();
    loop {
        assert!(
            start.elapsed() < limit,
            "following {url} took longer than {limit:?}"
        );
        let resp = client.get(&next_url).await;
        assert_eq!(resp.status, 200, "GET {next_url}: {:?}", resp.body);
        let text = String::from_utf8(resp.body.to_vec()).expect("utf-8 playlist");
        let pl = MediaPlaylist::parse(&text);
        if let Some(q) = next_url.split_once("_HLS_msn=") {
            let msn: u64 =
                q.1.split('&')
                    .next()
                    .and_then(|x| x.parse().ok())
                    .unwrap_or(0);
            let part: u32 = next_url
                .split_once("_HLS_part=")
                .and_then(|x| x.1.split('&').next()?.parse().ok())
                .unwrap_or(0);
            f.blocking.push(((msn, part), resp.received));
        }
        for seg in &pl.segments {
            if let Some(map) = &seg.map {
                let abs = join(url, map);
                if !f.inits.contains_key(map) {
                    let r = client.get(&abs).await;
                    assert_eq!(r.status, 200, "GET {abs}");
                    f.inits.insert(map.clone(), r.body);
                }
            }
            for part in &seg.parts {
                let idx = part_index(&part.uri).expect("part uri names msn.index");
                if let std::collections::btree_map::Entry::Vacant(e) = f.parts.entry(idx) {
                    let abs = join(url, strip_query(&part.uri));
                    let r = client.get(&join(url, &part.uri)).await;
                    assert_eq!(r.status, 200, "GET {abs}");
                    e.insert(r.body);
                }
            }
            if let Some(uri) = &seg.uri {
                if !seg.parts.is_empty() {
                    f.part_counts.insert(seg.msn, seg.parts.len() as u32);
                }
                if let std::collections::btree_map::Entry::Vacant(e) = f.segments.entry(seg.msn) {
                    let r = client.get(&join(url, uri)).await;
                    assert_eq!(r.status, 200, "GET segment {uri}");
                    // A segment listed before any EXT-X-MAP has no init section: recorded as empty.
                    e.insert((seg.map.clone().unwrap_or_default(), r.body));
                }
            }
        }
        let done = pl.endlist;
        let last = pl.last_part();
        f.playlist_texts.push(text);
        f.playlists.push(pl);
        if done {
            return f;
        }
        let (msn, part) = match last {
            Some((m, p)) => (m, p + 1),
            None => (f.playlists.last().map(|p| p.media_sequence).unwrap_or(0), 0),
        };
        next_url = match url.split_once('?') {
            Some((base, q)) => format!("{base}?{q}&_HLS_msn={msn}&_HLS_part={part}"),
            None => format!("{url}?_HLS_msn={msn}&_HLS_part={part}"),
        };
    }
}
