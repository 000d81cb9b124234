//! Outgoing datagrams, batched with UDP generic segmentation offload
//! (GSO, Linux `UDP_SEGMENT`): consecutive datagrams to one address of one
//! size (the last may be shorter) leave in one `sendmsg`, which the kernel
//! (or the NIC) cuts back into datagrams. A video frame's RTP packets to
//! one viewer are such a run. Without GSO (other systems, or a kernel that
//! refuses it once), each datagram is its own `sendto`.

use std::{io::IoSlice, net::SocketAddr};

use socket2::{MsgHdr, SockAddr, SockRef};
use tokio::net::UdpSocket;
use tracing::debug;

/// Datagrams one batch holds at most (the kernel's limit is 64).
const MAX_SEGMENTS: usize = 64;

/// Bytes one batch holds at most (one IP datagram's worth).
const MAX_BATCH_BYTES: usize = 60_000;

/// Datagrams waiting to leave together.
#[derive(Debug)]
pub(crate) struct Batcher {
    /// GSO is used (until the kernel refuses it once).
    gso: bool,
    buf: Vec<u8>,
    destination: Option<SocketAddr>,
    /// Size of every datagram in the batch but possibly the last.
    segment: usize,
    count: usize,
    /// The last datagram is shorter than `segment`: nothing may follow.
    closed: bool,
}

impl Batcher {
    pub(crate) fn new() -> Self {
        Self {
            gso: cfg!(all(target_os = "linux", target_pointer_width = "64")),
            buf: Vec::with_capacity(MAX_BATCH_BYTES),
            destination: None,
            segment: 0,
            count: 0,
            closed: false,
        }
    }

    /// Queues `data` for `to`, sending what was queued first when it
    /// cannot join it.
    pub(crate) fn push(&mut self, socket: &UdpSocket, data: &[u8], to: SocketAddr) {
        if !self.gso {
            send_one(socket, data, to);
            return;
        }
        let joins = self.destination == Some(to)
            && !self.closed
            && data.len() <= self.segment
            && self.count < MAX_SEGMENTS
            && self.buf.len() + data.len() <= MAX_BATCH_BYTES;
        if !joins {
            self.flush(socket);
            self.destination = Some(to);
            self.segment = data.len();
        }
        self.buf.extend_from_slice(data);
        self.count += 1;
        self.closed = data.len() < self.segment;
    }

    /// Sends what is queued.
    pub(crate) fn flush(&mut self, socket: &UdpSocket) {
        let Some(to) = self.destination.take() else {
            return;
        };
        if self.count == 1 {
            send_one(socket, &self.buf, to);
        } else if let Err(e) = send_segments(socket, &self.buf, self.segment, to) {
            debug!(error = %e, "GSO send refused: sending datagrams one by one from now on");
            self.gso = false;
            for d in self.buf.chunks(self.segment) {
                send_one(socket, d, to);
            }
        }
        self.buf.clear();
        self.count = 0;
        self.closed = false;
    }
}

fn send_one(socket: &UdpSocket, data: &[u8], to: SocketAddr) {
    if let Err(e) = socket.try_send_to(data, to) {
        debug!(error = %e, "WebRTC send dropped");
    }
}

/// `data` cut into datagrams of `segment` bytes (the last may be shorter)
/// in one `sendmsg` with a `UDP_SEGMENT` control message (Linux 4.18+,
/// `udp(7)`). A full socket buffer drops the batch (like a lost packet);
/// any other error is returned.
fn send_segments(
    socket: &UdpSocket,
    data: &[u8],
    segment: usize,
    to: SocketAddr,
) -> std::io::Result<()> {
    let size = u16::try_from(segment).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    // struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; }
    // then a u16, padded to CMSG_SPACE(2) = 24 on 64-bit Linux.
    const SOL_UDP: i32 = 17;
    const UDP_SEGMENT: i32 = 103;
    let mut cmsg = [0u8; 24];
    cmsg[..8].copy_from_slice(&18u64.to_ne_bytes());
    cmsg[8..12].copy_from_slice(&SOL_UDP.to_ne_bytes());
    cmsg[12..16].copy_from_slice(&UDP_SEGMENT.to_ne_bytes());
    cmsg[16..18].copy_from_slice(&size.to_ne_bytes());
    let addr = SockAddr::from(to);
    let bufs = [IoSlice::new(data)];
    let msg = MsgHdr::new()
        .with_addr(&addr)
        .with_buffers(&bufs)
        .with_control(&cmsg);
    match SockRef::from(socket).sendmsg(&msg, 0) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            debug!("WebRTC send dropped: socket buffer full");
            Ok(())
        }
        Err(e) => Err(e),
    }
}
