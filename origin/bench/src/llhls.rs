//! LL-HLS viewers for the load benchmarks, and what their logs add up to.
//!
//! Two kinds of viewer follow one stream's *video* rendition, each on its
//! own HTTP/1.1 keep-alive connection ([`crate::http1`]):
//!
//! - [`blocking_client`] talks to the origin the way hls.js does: a blocking
//!   `video.m3u8?_HLS_msn=M&_HLS_part=P` for the part after the newest it
//!   has, then a GET of each new part.
//! - [`scheduled_client`] replays a [`Schedule`] captured from the origin
//!   against a plain static file server (nginx), which cannot block a
//!   playlist request: it waits until the moment the captured part became
//!   available (the schedule repeats), then GETs the playlist the origin
//!   answered for that part (same bytes) and the part. All scheduled
//!   clients wake at the same instant, so the server sees the same burst a
//!   blocking origin releases when a part appears.
//!
//! Both only use the origin's outer interface: the URLs
//! `/live/NAME/video.m3u8?_HLS_msn=..&_HLS_part=..` and
//! `/live/NAME/video/SESSION/part{M}.{I}.m4s` (the directory read from
//! the playlist's part URIs). In steady state a viewer allocates
//! nothing per request: paths are written into the connection's request
//! buffer, playlists are scanned in place, bodies of parts are discarded in
//! the kernel and only counted, and its log vectors are reserved up front.

use std::{
    collections::HashMap,
    io::Write as _,
    net::SocketAddr,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{
    http1::{Conn, Response},
    stats::Summary,
};

/// `(media sequence number, part index)` of a part.
pub type PartKey = (u64, u32);

/// A request taking longer than this counts as a timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Added to a replayed part's media sequence number once per repetition of
/// the [`Schedule`], so every repetition's parts are distinct in the logs.
pub const CYCLE_MSN: u64 = 1 << 32;

/// The measurement window of a step.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Requests completing from here on are counted.
    pub from: Instant,
    /// ... until here.
    pub until: Instant,
    /// Clients stop here (a little after `until`, for the window's last
    /// parts).
    pub stop: Instant,
}

impl Window {
    fn contains(&self, at: Instant) -> bool {
        at >= self.from && at < self.until
    }
}

/// What one client saw.
#[derive(Debug, Default)]
pub struct ClientLog {
    /// When a playlist newly listing a part arrived.
    pub listed: Vec<(PartKey, Instant)>,
    /// When the part itself (or, playlists only, its playlist) arrived.
    pub delivered: Vec<(PartKey, Instant)>,
    /// Requests completed within the window.
    pub requests: u64,
    /// Bytes received (heads and bodies) within the window.
    pub wire_bytes: u64,
    /// Non-200 answers, I/O errors, playlists not listing the expected part.
    pub errors: u64,
    /// Requests over [`REQUEST_TIMEOUT`].
    pub timeouts: u64,
}

impl ClientLog {
    /// A log with room for `parts` parts, so logging does not allocate.
    fn with_capacity(parts: usize) -> Self {
        Self {
            listed: Vec::with_capacity(parts),
            delivered: Vec::with_capacity(parts),
            ..Self::default()
        }
    }

    fn count(&mut self, at: Instant, window: &Window, r: &Response) {
        if window.contains(at) {
            self.requests += 1;
            self.wire_bytes += r.wire_len as u64;
        }
    }
}

/// Parts a client logs over a window, with slack (5 parts/s at 200 ms
/// parts, twice over).
fn log_capacity(window: &Window, start: Instant) -> usize {
    let secs = window.stop.saturating_duration_since(start).as_secs() as usize;
    secs * 10 + 64
}

/// `(msn, index)` of a `…part{M}.{I}.m4s` URI.
pub fn part_key(uri: &[u8]) -> Option<PartKey> {
    let name = match uri.iter().rposition(|&b| b == b'/') {
        Some(i) => &uri[i + 1..],
        None => uri,
    };
    let s = name.strip_prefix(b"part")?.strip_suffix(b".m4s")?;
    let dot = s.iter().position(|&b| b == b'.')?;
    Some((
        number(&s[..dot])?,
        u32::try_from(number(&s[dot + 1..])?).ok()?,
    ))
}

/// A decimal number of ASCII digits (no sign, no overflow).
fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if d.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

/// Appends to `out`, oldest first, the keys of the `EXT-X-PART`s of a
/// playlist newer than `have` (only the newest when `have` is `None`: where
/// a new client starts). Scans from the end (playlists list about 60 parts;
/// a client wants the last one or two), in place.
pub fn new_parts(body: &[u8], have: Option<PartKey>, out: &mut Vec<PartKey>) {
    const TAG: &[u8] = b"#EXT-X-PART:";
    const URI: &[u8] = b"URI=\"";
    let first = out.len();
    for line in body.rsplit(|&b| b == b'\n') {
        let Some(attrs) = line.strip_prefix(TAG) else {
            continue;
        };
        let Some(at) = attrs.windows(URI.len()).position(|w| w == URI) else {
            continue;
        };
        let uri = &attrs[at + URI.len()..];
        let Some(end) = uri.iter().position(|&b| b == b'"') else {
            continue;
        };
        let Some(key) = part_key(&uri[..end]) else {
            continue;
        };
        if have.is_some_and(|h| key <= h) {
            break;
        }
        out.push(key);
        if have.is_none() {
            break;
        }
    }
    out[first..].reverse();
}

/// The directory of the newest `EXT-X-PART` URI of a playlist, relative
/// to it (`video/SESSION` for the origin's video playlist), in place.
pub fn part_dir(body: &[u8]) -> Option<&str> {
    const TAG: &[u8] = b"#EXT-X-PART:";
    const URI: &[u8] = b"URI=\"";
    let line = body
        .rsplit(|&b| b == b'\n')
        .find(|line| line.starts_with(TAG))?;
    let at = line.windows(URI.len()).position(|w| w == URI)?;
    let uri = &line[at + URI.len()..];
    let uri = &uri[..uri.iter().position(|&b| b == b'"')?];
    let slash = uri.iter().rposition(|&b| b == b'/')?;
    std::str::from_utf8(&uri[..slash]).ok()
}

/// Keeps `dir` equal to the playlist's part directory; allocates only when
/// it changes (a new publisher session).
fn follow_part_dir(dir: &mut String, body: &[u8]) {
    if let Some(new) = part_dir(body)
        && new != dir
    {
        new.clone_into(dir);
    }
}

/// Writes the path of the video part `key` of stream `name` in `dir`.
fn part_path(req: &mut Vec<u8>, name: &str, dir: &str, (m, i): PartKey) {
    let _ = write!(req, "/live/{name}/{dir}/part{m}.{i}.m4s");
}

/// Outcome of one request with a timeout.
enum Got {
    Ok(Response, Instant),
    /// The connection is broken (I/O error): reconnect.
    Broken,
    TimedOut,
}

async fn request(conn: &mut Conn, path: impl FnOnce(&mut Vec<u8>), keep_body: bool) -> Got {
    match tokio::time::timeout(REQUEST_TIMEOUT, conn.get_with(path, keep_body)).await {
        Ok(Ok(r)) => Got::Ok(r, Instant::now()),
        Ok(Err(_)) => Got::Broken,
        Err(_) => Got::TimedOut,
    }
}

/// Connects, counting failures (and pausing 100 ms after one).
async fn connect(addr: SocketAddr, log: &mut ClientLog) -> Option<Conn> {
    match tokio::time::timeout(REQUEST_TIMEOUT, Conn::connect(addr)).await {
        Ok(Ok(c)) => Some(c),
        _ => {
            log.errors += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            None
        }
    }
}

/// GETs the video part `key` and logs it. `false` when the connection must
/// be replaced.
async fn fetch_part(
    conn: &mut Conn,
    name: &str,
    dir: &str,
    key: PartKey,
    logged_as: PartKey,
    window: &Window,
    log: &mut ClientLog,
) -> bool {
    match request(conn, |req| part_path(req, name, dir, key), false).await {
        Got::Ok(r, at) if r.status == 200 => {
            log.delivered.push((logged_as, at));
            log.count(at, window, &r);
            true
        }
        Got::Ok(..) => {
            log.errors += 1;
            true
        }
        Got::Broken => {
            log.errors += 1;
            false
        }
        Got::TimedOut => {
            log.timeouts += 1;
            false
        }
    }
}

/// One blocking-reload client of stream `name` on the origin at `addr`
/// until `window.stop`. Reconnects at the live edge after an error.
pub async fn blocking_client(
    addr: SocketAddr,
    name: &'static str,
    playlists_only: bool,
    window: Window,
) -> ClientLog {
    let mut log = ClientLog::with_capacity(log_capacity(&window, Instant::now()));
    let mut parts: Vec<PartKey> = Vec::with_capacity(16);
    let mut dir = String::with_capacity(32);
    'connection: while Instant::now() < window.stop {
        let Some(mut conn) = connect(addr, &mut log).await else {
            continue;
        };
        let mut fetched: Option<PartKey> = None;
        while Instant::now() < window.stop {
            let path = |req: &mut Vec<u8>| {
                let _ = match fetched {
                    Some((m, p)) => {
                        write!(
                            req,
                            "/live/{name}/video.m3u8?_HLS_msn={m}&_HLS_part={}",
                            p + 1
                        )
                    }
                    None => write!(req, "/live/{name}/video.m3u8"),
                };
            };
            let (r, at) = match request(&mut conn, path, true).await {
                Got::Ok(r, at) => (r, at),
                Got::Broken => {
                    log.errors += 1;
                    continue 'connection;
                }
                Got::TimedOut => {
                    log.timeouts += 1;
                    continue 'connection;
                }
            };
            log.count(at, &window, &r);
            if r.status != 200 {
                log.errors += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue 'connection;
            }
            parts.clear();
            new_parts(conn.body(), fetched, &mut parts);
            follow_part_dir(&mut dir, conn.body());
            let Some(&last) = parts.last() else {
                continue;
            };
            if fetched.is_none() {
                fetched = Some(last); // start at the live edge
                continue;
            }
            for &key in &parts {
                log.listed.push((key, at));
                if playlists_only {
                    log.delivered.push((key, at));
                } else if !fetch_part(&mut conn, name, &dir, key, key, &window, &mut log).await {
                    continue 'connection;
                }
            }
            fetched = Some(last);
        }
    }
    log
}

/// One captured playlist version: the origin's answer to the blocking
/// request for the part `newest`.
#[derive(Debug, Clone)]
pub struct Entry {
    /// When it arrived, after the schedule's first entry.
    pub at: Duration,
    /// The newest part it lists (its file is `pl/{M}.{I}.m3u8`).
    pub newest: PartKey,
    /// The parts it newly listed, oldest first.
    pub parts: Vec<PartKey>,
}

/// The parts of a stream with the times they became available, captured
/// from the origin by [`capture`]; it repeats every `period`.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Playlist versions, in order.
    pub entries: Vec<Entry>,
    /// Length of one repetition (first entry to the one after the last).
    pub period: Duration,
    /// Directory of the parts relative to the playlists
    /// (`video/SESSION`, see [`part_dir`]).
    pub part_dir: String,
}

impl Schedule {
    /// The first entry due at or after `t` (after the epoch): its
    /// repetition and index.
    fn next_at(&self, t: Duration) -> (u64, usize) {
        let period = self.period.as_nanos();
        let cycle = (t.as_nanos() / period) as u64;
        let within = Duration::from_nanos((t.as_nanos() % period) as u64);
        match self.entries.iter().position(|e| e.at >= within) {
            Some(i) => (cycle, i),
            None => (cycle + 1, 0),
        }
    }

    fn due(&self, epoch: Instant, cycle: u64, i: usize) -> Instant {
        epoch + self.period * u32::try_from(cycle).unwrap_or(u32::MAX) + self.entries[i].at
    }
}

/// Captures `parts` parts of stream `name` from the origin at `addr` with
/// one blocking-reload client: each playlist answer is written to
/// `root/live/NAME/pl/{M}.{I}.m3u8` (`(M, I)` its newest part) and each
/// part to `root/live/NAME/video/SESSION/part{M}.{I}.m4s`, so a static file server
/// rooted at `root` serves the same bytes.
///
/// # Errors
/// HTTP or file errors, or a playlist without parts.
pub async fn capture(addr: SocketAddr, name: &str, parts: usize, root: &Path) -> Result<Schedule> {
    let dir = root.join("live").join(name);
    std::fs::create_dir_all(dir.join("pl"))?;
    let mut conn = Conn::connect(addr).await.context("connect to the origin")?;
    let r = conn.get(&format!("/live/{name}/video.m3u8"), true).await?;
    if r.status != 200 {
        bail!("capture: playlist answered {}", r.status);
    }
    let part_dir = part_dir(conn.body())
        .context("capture: part URIs have no directory")?
        .to_owned();
    if part_dir.split('/').any(|c| c.is_empty() || c == "..") {
        bail!("capture: unexpected part directory {part_dir:?}");
    }
    std::fs::create_dir_all(dir.join(&part_dir))?;
    let mut keys = Vec::new();
    new_parts(conn.body(), None, &mut keys);
    let mut have = *keys.last().context("capture: playlist lists no part")?;
    let mut entries: Vec<Entry> = Vec::new();
    let mut first: Option<Instant> = None;
    let mut count = 0;
    while count < parts {
        let path = format!(
            "/live/{name}/video.m3u8?_HLS_msn={}&_HLS_part={}",
            have.0,
            have.1 + 1
        );
        let r = tokio::time::timeout(REQUEST_TIMEOUT, conn.get(&path, true)).await??;
        let at = Instant::now();
        if r.status != 200 {
            bail!("capture: {path} answered {}", r.status);
        }
        keys.clear();
        new_parts(conn.body(), Some(have), &mut keys);
        let Some(&newest) = keys.last() else {
            continue;
        };
        let (m, i) = newest;
        std::fs::write(dir.join(format!("pl/{m}.{i}.m3u8")), conn.body())?;
        for &(m, i) in &keys {
            let r = conn
                .get(&format!("/live/{name}/{part_dir}/part{m}.{i}.m4s"), true)
                .await?;
            if r.status != 200 {
                bail!("capture: part {m}.{i} answered {}", r.status);
            }
            std::fs::write(dir.join(format!("{part_dir}/part{m}.{i}.m4s")), conn.body())?;
        }
        let t0 = *first.get_or_insert(at);
        entries.push(Entry {
            at: at - t0,
            newest,
            parts: keys.clone(),
        });
        count += keys.len();
        have = newest;
    }
    let span = entries.last().map_or(Duration::ZERO, |e| e.at);
    // One more mean interval, so the last entry is not followed at once by
    // the first.
    let period = span + span / u32::try_from(entries.len().max(2) - 1).unwrap_or(1);
    Ok(Schedule {
        entries,
        period,
        part_dir,
    })
}

/// One client replaying `schedule` (repetitions start at `epoch`) against
/// a static file server at `addr` serving [`capture`]'s files, until
/// `window.stop`. Parts are logged with [`CYCLE_MSN`] × repetition added to
/// their sequence number.
pub async fn scheduled_client(
    addr: SocketAddr,
    name: &'static str,
    schedule: Arc<Schedule>,
    epoch: Instant,
    playlists_only: bool,
    window: Window,
) -> ClientLog {
    let mut log = ClientLog::with_capacity(log_capacity(&window, Instant::now()));
    let mut keys: Vec<PartKey> = Vec::with_capacity(4);
    'connection: while Instant::now() < window.stop {
        let Some(mut conn) = connect(addr, &mut log).await else {
            continue;
        };
        let (mut cycle, mut i) = schedule.next_at(Instant::now().saturating_duration_since(epoch));
        loop {
            let due = schedule.due(epoch, cycle, i);
            if due >= window.stop {
                break 'connection;
            }
            tokio::time::sleep_until(due.into()).await;
            let entry = &schedule.entries[i];
            let (m, p) = entry.newest;
            let path = |req: &mut Vec<u8>| {
                let _ = write!(req, "/live/{name}/pl/{m}.{p}.m3u8");
            };
            let (r, at) = match request(&mut conn, path, true).await {
                Got::Ok(r, at) => (r, at),
                Got::Broken => {
                    log.errors += 1;
                    continue 'connection;
                }
                Got::TimedOut => {
                    log.timeouts += 1;
                    continue 'connection;
                }
            };
            log.count(at, &window, &r);
            keys.clear();
            new_parts(conn.body(), None, &mut keys);
            if r.status != 200 || keys.last() != Some(&entry.newest) {
                log.errors += 1;
            } else {
                for &key in &entry.parts {
                    let logged_as = (key.0 + cycle * CYCLE_MSN, key.1);
                    log.listed.push((logged_as, at));
                    if playlists_only {
                        log.delivered.push((logged_as, at));
                    } else if !fetch_part(
                        &mut conn,
                        name,
                        &schedule.part_dir,
                        key,
                        logged_as,
                        &window,
                        &mut log,
                    )
                    .await
                    {
                        continue 'connection;
                    }
                }
            }
            i += 1;
            if i == schedule.entries.len() {
                (cycle, i) = (cycle + 1, 0);
            }
        }
    }
    log
}

/// What a step's client logs add up to.
#[derive(Debug, Clone, Copy)]
pub struct Traffic {
    /// Delivery delay after availability, milliseconds, over every
    /// (client, part) of the window.
    pub delay: Option<Summary>,
    /// Parts that became available in the window.
    pub parts: usize,
    /// (client, part) pairs of those delivered.
    pub delivered: u64,
    /// (client, part) pairs of those a client never got.
    pub missing: u64,
    /// Requests completed in the window.
    pub requests: u64,
    /// Bytes received in the window (heads and bodies).
    pub bytes: u64,
    /// See [`ClientLog::errors`].
    pub errors: u64,
    /// See [`ClientLog::timeouts`].
    pub timeouts: u64,
}

/// Adds up the logs of a step. A part's **availability** is the earliest
/// moment any client received a playlist listing it; a client's delay for
/// the part is when it had the part's last byte minus that. Parts whose
/// availability falls in the window count.
pub fn analyse(logs: &[ClientLog], window: &Window) -> Traffic {
    let mut avail: HashMap<PartKey, Instant> = HashMap::new();
    for log in logs {
        for &(k, at) in &log.listed {
            avail
                .entry(k)
                .and_modify(|a| *a = (*a).min(at))
                .or_insert(at);
        }
    }
    avail.retain(|_, a| window.contains(*a));
    let mut delays = Vec::new();
    let mut missing = 0u64;
    for log in logs {
        let mut got = 0u64;
        for (k, at) in &log.delivered {
            if let Some(a) = avail.get(k) {
                delays.push(at.saturating_duration_since(*a).as_secs_f64() * 1e3);
                got += 1;
            }
        }
        missing += (avail.len() as u64).saturating_sub(got);
    }
    Traffic {
        delay: Summary::of(&delays),
        parts: avail.len(),
        delivered: delays.len() as u64,
        missing,
        requests: logs.iter().map(|l| l.requests).sum(),
        bytes: logs.iter().map(|l| l.wire_bytes).sum(),
        errors: logs.iter().map(|l| l.errors).sum(),
        timeouts: logs.iter().map(|l| l.timeouts).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_a_playlist() {
        let pl = b"#EXTM3U\n#EXT-X-PART:DURATION=0.20000,URI=\"video/part7.3.m4s\",INDEPENDENT=YES\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"video/part7.4.m4s\"\n";
        let pl = [
            &pl[..],
            &b"#EXT-X-PART:DURATION=0.2,URI=\"video/part8.0.m4s\"\n"[..],
        ]
        .concat();
        let parts = |have| {
            let mut v = Vec::new();
            new_parts(&pl, have, &mut v);
            v
        };
        assert_eq!(parts(None), vec![(8, 0)]);
        assert_eq!(parts(Some((7, 2))), vec![(7, 3), (8, 0)]);
        assert_eq!(parts(Some((8, 0))), vec![]);
        assert_eq!(part_key(b"part12.4.m4s"), Some((12, 4)));
        assert_eq!(part_key(b"video/part1x.4.m4s"), None);
        assert_eq!(part_dir(&pl), Some("video"));
        let session = b"#EXT-X-PART:DURATION=0.2,URI=\"video/19af/part8.0.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"video/19af/part8.1.m4s\"\n";
        assert_eq!(part_dir(session), Some("video/19af"));
        assert_eq!(part_dir(b"#EXT-X-PART:URI=\"part1.0.m4s\"\n"), None);
        let mut dir = String::new();
        follow_part_dir(&mut dir, session);
        assert_eq!(dir, "video/19af");
    }

    #[test]
    fn schedule_repeats() {
        let e = |ms, m| Entry {
            at: Duration::from_millis(ms),
            newest: (m, 0),
            parts: vec![(m, 0)],
        };
        let s = Schedule {
            part_dir: "video/1".into(),
            entries: vec![e(0, 1), e(200, 2), e(400, 3)],
            period: Duration::from_millis(600),
        };
        assert_eq!(s.next_at(Duration::from_millis(0)), (0, 0));
        assert_eq!(s.next_at(Duration::from_millis(150)), (0, 1));
        assert_eq!(s.next_at(Duration::from_millis(500)), (1, 0));
        assert_eq!(s.next_at(Duration::from_millis(650)), (1, 1));
    }
}
