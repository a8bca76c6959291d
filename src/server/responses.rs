//! The plain responses every HTTP handler of the server gives: text, and Engine.IO's JSON errors.

use super::connections::{Busy, Event};
use super::engine::OpenError;
use crate::engineio::RequestError;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;

pub(super) fn text_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    resp
}

/// Engine.IO's JSON error bodies (code numbers as in the reference server).
pub(super) fn engine_error(status: StatusCode, code: u8, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    let mut resp = text_response(status, body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The answer to a request the session refused.
pub(super) fn refused(e: &RequestError) -> Response<Full<Bytes>> {
    match e {
        RequestError::Closed => engine_error(StatusCode::BAD_REQUEST, 1, "Session ID unknown"),
        _ => engine_error(StatusCode::BAD_REQUEST, 3, "Bad request"),
    }
}

/// `resp` with `Connection: close`: the request was not read to its end, the connection ends.
pub(super) fn closing(mut resp: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// The answer to a handshake the endpoint refused: 503 when it has the most sessions allowed.
pub(super) fn session_refused(e: &OpenError, busy: &Busy) -> Response<Full<Bytes>> {
    match e {
        OpenError::Full => {
            busy.connections().count(Event::RefusedSession);
            tracing::debug!("refused an Engine.IO session: {e}");
            engine_error(StatusCode::SERVICE_UNAVAILABLE, 3, "Server full")
        }
        OpenError::Random(_) => {
            tracing::error!("{e}");
            engine_error(StatusCode::INTERNAL_SERVER_ERROR, 3, "Bad request")
        }
    }
}
