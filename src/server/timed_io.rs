//! A connection's stream with the deadlines of an idle connection: [`ConnLimits::idle_timeout`]
//! while no byte of a next request has arrived (the connection is then closed quietly, as
//! nginx and Node close idle keep-alive connections), [`ConnLimits::header_timeout`] from the
//! first byte until the request's headers are complete (then `408 Request Timeout` and close,
//! as Node's `headersTimeout`). While a request is in progress or the connection carries a
//! WebSocket (its [`Slot`] is busy) no deadline applies: the body has its own
//! ([`ConnLimits::body_timeout`], in `polling`), a WebSocket the Engine.IO heartbeat.
//!
//! [`ConnLimits::idle_timeout`]: super::ConnLimits::idle_timeout
//! [`ConnLimits::header_timeout`]: super::ConnLimits::header_timeout
//! [`ConnLimits::body_timeout`]: super::ConnLimits::body_timeout

use super::connections::{Event, Slot};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// What a client whose headers time out is told before the connection closes.
const REQUEST_TIMEOUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// A stream whose reads end when an idle connection's deadline passes (see the module docs).
pub(crate) struct TimedIo<S> {
    io: S,
    slot: Arc<Slot>,
    deadline: Pin<Box<Sleep>>,
    /// The idle period the deadline was set for (0: none yet).
    period: u64,
    /// A byte of the next request arrived in this idle period: the header deadline applies.
    head_started: bool,
    /// The deadline passed: reads end.
    expired: bool,
    /// The idle period a write woke the task for (see `poll_flush`).
    woken_for: u64,
}

impl<S> TimedIo<S> {
    /// `io`, the stream of the connection admitted as `slot`.
    pub(crate) fn new(io: S, slot: Arc<Slot>) -> Self {
        TimedIo {
            io,
            slot,
            deadline: Box::pin(tokio::time::sleep_until(Instant::now())),
            period: 0,
            head_started: false,
            expired: false,
            woken_for: 0,
        }
    }

    /// The stream, for a WebSocket that takes it over (it keeps its connection busy itself).
    pub(crate) fn into_inner(self) -> S {
        self.io
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TimedIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
        }
        let Some(period) = this.slot.idle_period() else {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        };
        let limits = *this.slot.table().limits();
        if period != this.period {
            this.period = period;
            this.head_started = false;
            let at = Instant::now() + limits.idle_timeout;
            this.deadline.as_mut().reset(at);
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Pending => {}
            Poll::Ready(Ok(())) if buf.filled().len() > before && !this.head_started => {
                this.head_started = true;
                let at = Instant::now() + limits.header_timeout;
                this.deadline.as_mut().reset(at);
                return Poll::Ready(Ok(()));
            }
            ready => return ready,
        }
        if this.deadline.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.expired = true;
        let table = this.slot.table();
        if this.head_started {
            table.count(Event::HeaderTimeout);
            // Best effort: the socket's buffer is empty unless the client stopped reading.
            if let Poll::Ready(Ok(_)) = Pin::new(&mut this.io).poll_write(cx, REQUEST_TIMEOUT) {
                let _ = Pin::new(&mut this.io).poll_flush(cx);
            }
            tracing::debug!(
                "request headers not complete in {:?}",
                limits.header_timeout
            );
        } else {
            // Closed quietly, as an idle keep-alive connection.
            table.count(Event::IdleTimeout);
        }
        Poll::Ready(Err(io::ErrorKind::TimedOut.into()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TimedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    /// Also arms the idle deadline after a response: hyper flushes it, then waits for the next
    /// request without reading while its last read found nothing (it relies on the socket's
    /// wake-up). Waking the task once per idle period makes it read, and so start the clock.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.io).poll_flush(cx);
        if flushed.is_ready()
            && let Some(period) = self.slot.idle_period()
            && period != self.period
            && period != self.woken_for
        {
            self.woken_for = period;
            cx.waker().wake_by_ref();
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
