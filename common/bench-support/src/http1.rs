//! A minimal HTTP/1.1 keep-alive client for the load generator.
//!
//! One [`Conn`] is one TCP connection issuing one request at a time, like a
//! browser player's connection. It is deliberately small, so the generator
//! spends its core on many connections rather than on client machinery: no
//! request or header allocations, responses parsed in a per-connection
//! buffer, bodies discarded in the kernel (`MSG_TRUNC`, no copy) and counted
//! unless kept. It understands
//! exactly what the origin sends: a status line, headers, and a
//! `Content-Length` body (no chunked encoding, no pipelining).

use std::{cell::RefCell, io, mem::MaybeUninit, net::SocketAddr};

use socket2::SockRef;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt, Interest},
    net::TcpStream,
};

/// Read buffer size of a connection; bodies larger than this stream through
/// it (unless kept).
const BUF: usize = 16 * 1024;
/// Largest response head accepted.
const MAX_HEAD: usize = 8 * 1024;

/// One HTTP/1.1 connection.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    host: String,
    buf: Vec<u8>,
    /// Bytes of `buf` holding data not consumed yet: `buf[start..end]`.
    start: usize,
    end: usize,
    req: Vec<u8>,
}

/// A response's status and sizes; the body is in [`Conn::body`] when kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body length (Content-Length).
    pub body_len: usize,
    /// Bytes on the wire: head plus body.
    pub wire_len: usize,
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

impl Conn {
    /// Connects to `addr` (Nagle off, like the origin's side).
    pub async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            host: addr.to_string(),
            buf: vec![0; BUF],
            start: 0,
            end: 0,
            req: Vec::with_capacity(256),
        })
    }

    /// The body of the last response when it was kept.
    pub fn body(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let len = self.buf.len();
                self.buf.resize(len * 2, 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.end += n;
        Ok(())
    }

    /// GETs `path`. With `keep_body` the body stays readable through
    /// [`body`](Self::body) until the next request; otherwise it is
    /// discarded in the kernel and only counted.
    pub async fn get(&mut self, path: &str, keep_body: bool) -> io::Result<Response> {
        self.get_with(|req| req.extend_from_slice(path.as_bytes()), keep_body)
            .await
    }

    /// Like [`get`](Self::get), with the path written by `path` into the
    /// request buffer (e.g. with `write!`), so a path built from numbers
    /// costs no allocation.
    pub async fn get_with(
        &mut self,
        path: impl FnOnce(&mut Vec<u8>),
        keep_body: bool,
    ) -> io::Result<Response> {
        self.req.clear();
        self.req.extend_from_slice(b"GET ");
        path(&mut self.req);
        self.req.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        self.req.extend_from_slice(self.host.as_bytes());
        self.req.extend_from_slice(b"\r\n\r\n");
        self.stream.write_all(&self.req).await?;
        // Any earlier kept body is consumed now.
        self.start = 0;
        self.end = 0;
        let mut searched: usize = 0;
        let head_end = loop {
            if let Some(i) = find_head_end(&self.buf[searched.saturating_sub(3)..self.end]) {
                break searched.saturating_sub(3) + i + 4;
            }
            searched = self.end;
            if self.end > MAX_HEAD {
                return Err(invalid("response head too large"));
            }
            self.fill().await?;
        };
        let (status, body_len) = parse_head(&self.buf[..head_end])?;
        self.start = head_end;
        if keep_body {
            while self.end - self.start < body_len {
                self.fill().await?;
            }
            self.end = self.start + body_len;
        } else {
            let buffered = (self.end - self.start).min(body_len);
            let mut remaining = body_len - buffered;
            self.start = 0;
            self.end = 0;
            while remaining > 0 {
                remaining -= self.discard(remaining).await?;
            }
        }
        Ok(Response {
            status,
            body_len,
            wire_len: head_end + body_len,
        })
    }

    /// Consumes up to `max` bytes from the socket without copying them
    /// (`recv` with `MSG_TRUNC`, which Linux TCP sockets implement as
    /// "discard"); returns how many were consumed.
    async fn discard(&mut self, max: usize) -> io::Result<usize> {
        loop {
            self.stream.readable().await?;
            let r = self.stream.try_io(Interest::READABLE, || {
                DISCARD.with_borrow_mut(|d| {
                    let len = max.min(d.len());
                    SockRef::from(&self.stream).recv_with_flags(&mut d[..len], libc::MSG_TRUNC)
                })
            });
            match r {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

thread_local! {
    /// The target of discarding reads. With `MSG_TRUNC` the kernel writes
    /// nothing into it (its length only bounds how much one call consumes),
    /// so one buffer per thread serves every connection.
    static DISCARD: RefCell<Vec<MaybeUninit<u8>>> =
        RefCell::new(vec![MaybeUninit::uninit(); DISCARD_LEN]);
}

/// Most bytes one discarding `recv` consumes.
const DISCARD_LEN: usize = 1 << 20;

/// Offset of the `\r\n\r\n` that ends a response head in `buf`, if any.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Status code and Content-Length of a response head.
fn parse_head(head: &[u8]) -> io::Result<(u16, usize)> {
    let text = std::str::from_utf8(head).map_err(|_| invalid("non-UTF-8 head"))?;
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("HTTP/1.1 "))
        .and_then(|l| l.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("bad status line"))?;
    let len = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .ok_or_else(|| invalid("no content-length"))?;
    Ok((status, len))
}

/// Polls `GET path` on `addr` (a fresh connection each time) every
/// `interval` until it answers 200; before each attempt `alive()` may fail
/// the wait (a server process that exited).
///
/// # Errors
/// `alive()`'s error, or a timeout error naming `what` after `limit`.
pub async fn wait_for_200(
    addr: SocketAddr,
    path: &str,
    what: &str,
    limit: std::time::Duration,
    interval: std::time::Duration,
    mut alive: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        alive()?;
        if let Ok(mut c) = Conn::connect(addr).await
            && let Ok(r) = c.get(path, false).await
            && r.status == 200
        {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("{what} did not come up within {limit:?}");
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head() {
        let h = b"HTTP/1.1 200 OK\r\ncontent-type: x\r\nContent-Length: 12\r\n\r\n";
        assert_eq!(parse_head(h).expect("valid"), (200, 12));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
    }
}
