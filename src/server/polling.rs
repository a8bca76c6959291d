//! Engine.IO long-polling: the GET that waits for packets and the POST that brings them, each
//! reported to the session however it ends (answered, aborted, too large).

use super::connections::{Busy, Event};
use super::engine::{Conn, Engine, PollStep};
use super::responses::{closing, engine_error, refused, session_refused, text_response};
use bytes::Bytes;
use bytes::BytesMut;
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Incoming};
use std::sync::Arc;

pub(super) async fn polling(
    engine: Arc<Engine>,
    busy: &Busy,
    method: &Method,
    sid: Option<String>,
    body: Incoming,
) -> Response<Full<Bytes>> {
    let max_payload = engine.config.max_payload;
    match (method, sid) {
        (&Method::GET, None) => match engine.open_polling(busy.address()) {
            Ok(conn) => poll(conn, max_payload).await,
            Err(e) => session_refused(&e, busy),
        },
        (&Method::GET, Some(sid)) => match engine.get(&sid) {
            Some(conn) => poll(conn, max_payload).await,
            None => engine_error(StatusCode::BAD_REQUEST, 1, "Session ID unknown"),
        },
        (&Method::POST, Some(sid)) => match engine.get(&sid) {
            Some(conn) => post(conn, busy, body, max_payload).await,
            None => engine_error(StatusCode::BAD_REQUEST, 1, "Session ID unknown"),
        },
        _ => engine_error(StatusCode::BAD_REQUEST, 2, "Bad handshake method"),
    }
}

/// Tells the session how a poll ended; a request dropped before it was answered means the
/// client went away.
struct PollGuard {
    conn: Arc<Conn>,
    answered: bool,
}

impl Drop for PollGuard {
    fn drop(&mut self) {
        if self.answered {
            self.conn.session(|s, _| s.handle_poll_done());
        } else {
            self.conn.session(|s, now| s.handle_poll_aborted(now));
        }
    }
}

async fn poll(conn: Arc<Conn>, max_payload: usize) -> Response<Full<Bytes>> {
    if let Err(e) = conn.session(|s, now| s.handle_poll_request(now)) {
        return refused(&e);
    }
    let mut guard = PollGuard {
        conn,
        answered: false,
    };
    let mut out = BytesMut::new();
    loop {
        match guard.conn.poll_drain(max_payload, &mut out) {
            PollStep::Answer => break,
            PollStep::Wait => guard.conn.poll_wait().await,
            PollStep::Refuse(e) => {
                guard.answered = true;
                return refused(&e);
            }
        }
    }
    guard.answered = true;
    drop(guard);
    text_response(StatusCode::OK, out.freeze())
}

/// Tells the session a POST ended without a body (the client went away mid-request).
struct PostGuard {
    conn: Arc<Conn>,
    done: bool,
}

impl Drop for PostGuard {
    fn drop(&mut self) {
        if !self.done {
            self.conn
                .session(|s, now| s.handle_post_aborted(false, now));
        }
    }
}

/// Reads a POST body of at most `max_payload` bytes (a larger declared length is refused before
/// reading, with 413) within the body timeout (else 408), and hands it to the session.
async fn post(
    conn: Arc<Conn>,
    busy: &Busy,
    body: Incoming,
    max_payload: usize,
) -> Response<Full<Bytes>> {
    if let Err(e) = conn.session(|s, now| s.handle_post_request(now)) {
        return refused(&e);
    }
    let mut guard = PostGuard { conn, done: false };
    let too_large = || {
        closing(engine_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            3,
            "Payload too large",
        ))
    };
    // The declared Content-Length.
    if body.size_hint().lower() > max_payload as u64 {
        guard.done = true;
        guard
            .conn
            .session(|s, now| s.handle_post_aborted(true, now));
        return too_large();
    }
    let timeout = busy.connections().limits().body_timeout;
    let read = tokio::time::timeout(timeout, Limited::new(body, max_payload).collect()).await;
    let Ok(read) = read else {
        // Dropping the guard reports the abort; the connection closes after the answer.
        busy.connections().count(Event::BodyTimeout);
        tracing::debug!("polling POST body not complete in {timeout:?}");
        return closing(text_response(
            StatusCode::REQUEST_TIMEOUT,
            "request timeout",
        ));
    };
    guard.done = true;
    let body = match read {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let too_big = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            guard
                .conn
                .session(|s, now| s.handle_post_aborted(too_big, now));
            return if too_big {
                too_large()
            } else {
                engine_error(StatusCode::BAD_REQUEST, 3, "Bad request")
            };
        }
    };
    match guard
        .conn
        .session(|s, now| s.handle_polling_body(body, now))
    {
        Ok(()) => text_response(StatusCode::OK, "ok"),
        Err(e) => {
            tracing::debug!(sid = %guard.conn.sid().as_str(), "bad polling payload: {e}");
            refused(&e)
        }
    }
}
