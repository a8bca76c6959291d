//! The viewer page, embedded in the binary so `cargo build` alone gives a complete gateway or relay
//! (no CDN, no npm at build time, works with no internet).
//!
//! The page (plain HTML/JS/CSS, no build step) speaks the event contract over a small hand-written
//! Socket.IO v5 client (WebSocket transport only). It decodes H.264/Opus with WebCodecs on secure
//! origins, muxes fragmented MP4 for Media Source Extensions on plain-HTTP origins, and draws MJPEG
//! with `createImageBitmap` everywhere. The server only has to serve these files.

/// Every embedded file: request path, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_bytes!("index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("app.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_bytes!("style.css"),
    ),
];

/// Looks up an embedded viewer file by its request path (query string ignored); `/index.html` is an
/// alias of `/`. Returns the content type and the bytes, or `None` so the server can answer 404.
pub fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, ctype, body)| (*ctype, *body))
}

/// Total size in bytes of the embedded page (HTML + JS + CSS), reported by the tests and docs/viewer.md.
pub fn page_weight() -> usize {
    ASSETS.iter().map(|(_, _, body)| body.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_index_and_assets() {
        let (ctype, body) = asset("/").expect("index");
        assert!(ctype.starts_with("text/html"));
        assert!(std::str::from_utf8(body).expect("utf-8").contains("app.js"));
        assert_eq!(asset("/index.html").map(|a| a.1), Some(body));
        assert_eq!(asset("/?watch=cam0").map(|a| a.1), Some(body));
        assert!(
            asset("/app.js")
                .expect("js")
                .0
                .starts_with("text/javascript")
        );
        assert!(asset("/style.css").expect("css").0.starts_with("text/css"));
        assert!(asset("/nope.js").is_none());
        assert!(asset("/../Cargo.toml").is_none());
    }

    #[test]
    fn page_stays_small() {
        let w = page_weight();
        assert!(w > 1000 && w < 80_000, "page weight {w} bytes");
    }
}
