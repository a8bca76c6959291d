//! The URL fields (`[[relay]] url`, `cors_origins`, `adapter`, and the URL paths): one check of
//! scheme, host and port, so that a port out of range is refused where it is written instead of
//! being dropped by the URL parser (`http::Uri` accepts `wss://host:99999` and then has no port,
//! and a client falls back to the scheme's default).

use std::fmt;

/// Why a URL field was refused; its `Display` is the problem's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum UrlError {
    /// Not parsable at all.
    NotUrl { text: String, why: String },
    /// A scheme other than the expected ones.
    Scheme {
        expected: &'static [&'static str],
        got: String,
    },
    /// No host, as in `wss://:8080`.
    NoHost(String),
    /// A port that is not a number in 1..=65535 (its text as written).
    Port(String),
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::NotUrl { text, why } => write!(f, "not a URL ({text:?}): {why}"),
            UrlError::Scheme { expected, got } => {
                let (last, rest) = expected.split_last().unwrap_or((&"", &[]));
                write!(
                    f,
                    "scheme must be {} or {last} (got {got:?})",
                    rest.join(", ")
                )
            }
            UrlError::NoHost(text) => write!(f, "no host in {text:?}"),
            UrlError::Port(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                write!(f, "port must be between 1 and 65535 (got {p})")
            }
            UrlError::Port(p) => write!(f, "port must be between 1 and 65535 (got {p:?})"),
        }
    }
}

/// `text` as an absolute URL with one of `schemes`, a host and, when it has one, a port in
/// 1..=65535 written in decimal digits.
pub(super) fn parse(text: &str, schemes: &'static [&'static str]) -> Result<http::Uri, UrlError> {
    let uri: http::Uri = text
        .parse()
        .map_err(|e: http::uri::InvalidUri| UrlError::NotUrl {
            text: text.to_owned(),
            why: e.to_string(),
        })?;
    let scheme = uri.scheme_str().unwrap_or_default();
    if !schemes.contains(&scheme) {
        return Err(UrlError::Scheme {
            expected: schemes,
            got: scheme.to_owned(),
        });
    }
    let Some(authority) = uri
        .authority()
        .filter(|_| uri.host().is_some_and(|h| !h.is_empty()))
    else {
        return Err(UrlError::NoHost(text.to_owned()));
    };
    // After the user info and the host (IPv6 in brackets): nothing, or `:` and the port.
    let host_port = authority.as_str().rsplit('@').next().unwrap_or_default();
    let after_host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(_, rest)| rest),
        None => host_port.find(':').map_or("", |i| &host_port[i..]),
    };
    if let Some(port) = after_host.strip_prefix(':') {
        let ok = (1..=5).contains(&port.len())
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p != 0);
        if !ok {
            return Err(UrlError::Port(port.to_owned()));
        }
    }
    Ok(uri)
}

/// Whether `text` is a URL path alone (no space, control character, query or fragment), as a
/// request line carries it.
pub(super) fn is_path(text: &str) -> bool {
    text.parse::<http::uri::PathAndQuery>()
        .is_ok_and(|p| p.query().is_none() && p.as_str() == text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WS: &[&str] = &["http", "https", "ws", "wss"];

    #[test]
    fn ports_must_be_decimal_and_in_range() {
        for ok in [
            "wss://relay.example.com",
            "wss://relay.example.com:443/",
            "ws://[::1]:8080",
            "https://u:p@h:1?x=1",
            "http://h:65535",
        ] {
            assert!(parse(ok, WS).is_ok(), "{ok}");
        }
        for (bad, port) in [
            ("wss://h:99999", "99999"),
            ("wss://h:0", "0"),
            ("wss://h:", ""),
            ("wss://h:+80", "+80"),
            ("wss://h:8a", "8a"),
            ("wss://[::1]:65536", "65536"),
            ("wss://u:p@h:123456", "123456"),
        ] {
            assert_eq!(parse(bad, WS), Err(UrlError::Port(port.into())), "{bad}");
        }
        assert_eq!(
            UrlError::Port("99999".into()).to_string(),
            "port must be between 1 and 65535 (got 99999)"
        );
        assert_eq!(
            UrlError::Port("8a".into()).to_string(),
            "port must be between 1 and 65535 (got \"8a\")"
        );
    }

    #[test]
    fn scheme_and_host_are_required() {
        assert_eq!(
            parse("ftp://h", WS).map_err(|e| e.to_string()),
            Err("scheme must be http, https, ws or wss (got \"ftp\")".into())
        );
        assert_eq!(
            parse("wss://:80", WS),
            Err(UrlError::NoHost("wss://:80".into()))
        );
        assert!(matches!(
            parse("/relative", WS),
            Err(UrlError::Scheme { .. })
        ));
        assert!(matches!(
            parse("wss://a b", WS),
            Err(UrlError::NotUrl { .. })
        ));
    }

    #[test]
    fn a_path_is_a_path_alone() {
        assert!(is_path("/socket.io/"));
        for bad in ["/a b", "/a\r\nX: 1", "/a?b", "/a#b", "a"] {
            assert!(!is_path(bad), "{bad:?}");
        }
    }
}
