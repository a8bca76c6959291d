//! The plain responses every HTTP handler of the server gives: text, and Engine.IO's JSON errors.

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
