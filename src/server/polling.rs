//! Engine.IO long-polling: the GET that waits for packets and the POST that brings them, each
//! reported to the session however it ends (answered, aborted, too large).

use super::engine::{Conn, Engine, PollStep};
use super::responses::{engine_error, refused, text_response};
use bytes::Bytes;
use bytes::BytesMut;
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use std::sync::Arc;

pub(super) async fn polling(
    engine: Arc<Engine>,
    method: Method,
    sid: Option<String>,
    body: Incoming,
) -> Response<Full<Bytes>> {
    match (method, sid) {
        (Method::GET, None) => match engine.open_polling() {
            Ok(conn) => poll(conn, engine.config.max_payload).await,
            Err(e) => {
                tracing::error!("no randomness for a session id: {e}");
                engine_error(StatusCode::INTERNAL_SERVER_ERROR, 3, "Bad request")
            }
        },
        (Method::GET, Some(sid)) => match engine.get(&sid) {
            Some(conn) => poll(conn, engine.config.max_payload).await,
            None => engine_error(StatusCode::BAD_REQUEST, 1, "Session ID unknown"),
        },
        (Method::POST, Some(sid)) => match engine.get(&sid) {
            Some(conn) => post(conn, body, engine.config.max_payload).await,
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

async fn post(conn: Arc<Conn>, body: Incoming, max_payload: usize) -> Response<Full<Bytes>> {
    if let Err(e) = conn.session(|s, now| s.handle_post_request(now)) {
        return refused(&e);
    }
    let mut guard = PostGuard { conn, done: false };
    let body = Limited::new(body, max_payload).collect().await;
    guard.done = true;
    let body = match body {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let too_big = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            guard
                .conn
                .session(|s, now| s.handle_post_aborted(too_big, now));
            return if too_big {
                engine_error(StatusCode::PAYLOAD_TOO_LARGE, 3, "Payload too large")
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
