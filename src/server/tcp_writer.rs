//! The write half of a plain-TCP WebSocket, written with `sendmsg(2)` on the socket itself.
//!
//! Through tokio's `TcpStream`, vectored writes are `writev(2)`, which goes through the VFS
//! (file-position lock, `rw_verify_area`) before reaching TCP; `sendmsg(2)` goes to the socket
//! directly. A fan-out server makes one such call per viewer per frame, so the difference is paid
//! thousands of times a second. The halves come from `TcpStream::into_split`, so the reader and
//! the writer share no lock either.

use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncWrite, Interest};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;

/// A WebSocket's TCP write half whose (vectored) writes are `sendmsg` calls.
pub(crate) struct TcpWriter(pub(crate) OwnedWriteHalf);

impl AsyncWrite for TcpWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let stream: &TcpStream = self.0.as_ref();
        loop {
            ready!(stream.poll_write_ready(cx))?;
            // `try_io` clears the readiness on WouldBlock, so the next poll waits for the socket.
            match stream.try_io(Interest::WRITABLE, || {
                socket2::SockRef::from(stream).send_vectored(bufs)
            }) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // Nothing is buffered here: every write went to the kernel.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
