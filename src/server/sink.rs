//! The write side of a WebSocket: gathering queued frames into vectored writes, and the
//! plain-TCP write half that the connection's producers may write to directly.
//!
//! Why a direct path: a live viewer's queue is empty nearly all the time, so handing each
//! broadcast frame to the connection's writer task costs a wake-up, a task switch and a second
//! lock per receiver, all for one `writev`. When the writer task is idle, whoever queued the frame
//! writes it with a non-blocking `writev` under the connection's lock (so order holds); what the
//! socket does not take goes to the writer task, which waits for the socket to drain. A reader
//! dispatching messages that are already buffered *corks* ([`super::engine::corked`]): its
//! broadcasts queue, and each connection gets one batched write when the reader would wait.
//! TLS streams need `&mut` access and keep the task path.

use super::encoded::EncodedPacket;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;

/// Most buffers handed to one vectored write: Linux's `IOV_MAX` (more is `EINVAL`). With two
/// buffers per frame that is 512 frames, more than a batch holds.
pub(crate) const MAX_SLICES: usize = 1024;

/// How far a batch of packets has been written: the next packet, frame buffer and byte.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Cursor {
    packet: usize,
    buf: usize,
    offset: usize,
}

impl Cursor {
    /// Points `slices` at the unwritten bytes of `packets` (this cursor's position on), at most
    /// [`MAX_SLICES`] buffers and no more buffers once `max_bytes` are gathered; returns the bytes
    /// gathered. No bytes are copied.
    pub(crate) fn gather<'a>(
        &self,
        packets: impl IntoIterator<Item = &'a Arc<EncodedPacket>>,
        slices: &mut Vec<IoSlice<'a>>,
        max_bytes: usize,
    ) -> usize {
        let mut gathered = 0;
        for (i, packet) in packets.into_iter().enumerate().skip(self.packet) {
            let bufs = packet.ws_bufs();
            let from = if i == self.packet { self.buf } else { 0 };
            for (j, buf) in bufs.iter().enumerate().skip(from) {
                if slices.len() == MAX_SLICES || gathered >= max_bytes {
                    return gathered;
                }
                let rest = if i == self.packet && j == self.buf {
                    &buf[self.offset..]
                } else {
                    &buf[..]
                };
                if !rest.is_empty() {
                    slices.push(IoSlice::new(rest));
                    gathered += rest.len();
                }
            }
        }
        gathered
    }

    /// Moves past `written` bytes; true once all of `packets` is written.
    pub(crate) fn advance(&mut self, mut written: usize, packets: &[Arc<EncodedPacket>]) -> bool {
        while self.packet < packets.len() {
            let bufs = packets[self.packet].ws_bufs();
            let Some(buf) = bufs.get(self.buf) else {
                (self.packet, self.buf) = (self.packet + 1, 0);
                continue;
            };
            let left = buf.len() - self.offset;
            if written < left {
                self.offset += written;
                return false;
            }
            written -= left;
            (self.buf, self.offset) = (self.buf + 1, 0);
        }
        true
    }
}

/// A plain-TCP WebSocket's write half, shared by its writer task and direct writers.
#[derive(Debug)]
pub(crate) struct TcpSink(OwnedWriteHalf);

impl TcpSink {
    /// Wraps the write half of an accepted connection.
    pub(crate) fn new(half: OwnedWriteHalf) -> Arc<Self> {
        Arc::new(TcpSink(half))
    }

    /// Writes what the socket takes now, without waiting (`WouldBlock` when it takes nothing).
    pub(crate) fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn stream(&self) -> &TcpStream {
        self.0.as_ref()
    }
}

/// The writer task's handle on a [`TcpSink`]: waits for the socket to drain.
pub(crate) struct SharedTcpSink(pub(crate) Arc<TcpSink>);

impl AsyncWrite for SharedTcpSink {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let stream = self.0.stream();
        loop {
            ready!(stream.poll_write_ready(cx))?;
            match stream.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The session may still hold the sink: shut the socket itself down.
        let sock = socket2::SockRef::from(self.0.stream());
        Poll::Ready(sock.shutdown(std::net::Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engineio::Packet;
    use bytes::Bytes;

    fn packets() -> Vec<Arc<EncodedPacket>> {
        vec![
            Arc::new(EncodedPacket::message(
                "451-[\"f\",{\"_placeholder\":true,\"num\":0}]".into(),
                vec![Bytes::from(vec![7u8; 300])],
            )),
            Arc::new(EncodedPacket::new(vec![Packet::Ping])),
        ]
    }

    fn rest(cursor: &Cursor, packets: &[Arc<EncodedPacket>]) -> Vec<u8> {
        let mut slices = Vec::new();
        cursor.gather(packets, &mut slices, usize::MAX);
        slices.iter().flat_map(|s| s.iter().copied()).collect()
    }

    #[test]
    fn every_split_point_resumes_at_the_right_byte() {
        let packets = packets();
        let whole = rest(&Cursor::default(), &packets);
        let expected: Vec<u8> = packets
            .iter()
            .flat_map(|p| p.ws_bufs().iter().flat_map(|b| b.iter().copied()))
            .collect();
        assert_eq!(whole, expected);
        for first in 0..=whole.len() {
            for second in [0, 1, 5, 300] {
                let mut c = Cursor::default();
                assert_eq!(c.advance(first, &packets), first == whole.len());
                let at = (first + second).min(whole.len());
                assert_eq!(c.advance(at - first, &packets), at == whole.len());
                assert_eq!(rest(&c, &packets), whole[at..], "after {first}+{second}");
            }
        }
    }

    #[test]
    fn gather_stops_at_the_slice_limit_and_after_the_byte_budget() {
        // A ping is one 3-byte buffer (header and payload laid out together).
        let ping = packets()[1].clone();
        assert_eq!(ping.ws_bufs().len(), 1);
        let many: Vec<_> = (0..MAX_SLICES + 10).map(|_| ping.clone()).collect();
        let mut slices = Vec::new();
        assert_eq!(
            Cursor::default().gather(&many, &mut slices, usize::MAX),
            3 * MAX_SLICES
        );
        assert_eq!(slices.len(), MAX_SLICES);
        let mut c = Cursor::default();
        assert!(!c.advance(3 * MAX_SLICES, &many));
        slices.clear();
        assert_eq!(c.gather(&many, &mut slices, usize::MAX), 30);
        slices.clear();
        // The budget is checked before each buffer: the one that crosses it is still taken.
        assert_eq!(Cursor::default().gather(&many, &mut slices, 7), 9);
    }
}
