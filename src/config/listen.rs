//! [`ListenAddr`]: a server's `listen` address, read with a message that says what is wrong
//! (serde's own for `SocketAddr` is "invalid socket address syntax" whatever the mistake).

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::net::SocketAddr;

/// `IP:port` (`0.0.0.0:8080`, `[::]:8080`); port 0 picks a free port.
pub(super) struct ListenAddr(pub(super) SocketAddr);

/// For `#[serde(deserialize_with)]` on a `SocketAddr` field.
pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    ListenAddr::deserialize(d).map(|l| l.0)
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(AddrVisitor)
    }
}

struct AddrVisitor;

impl Visitor<'_> for AddrVisitor {
    type Value = ListenAddr;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an IP address and port such as \"0.0.0.0:8080\" or \"[::]:8080\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ListenAddr, E> {
        if let Ok(addr) = v.parse() {
            return Ok(ListenAddr(addr));
        }
        let port = v.rsplit_once(':').map_or("", |(_, p)| p);
        if !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_err()
        {
            return Err(E::custom(format!(
                "port must be between 0 and 65535 (got {port})"
            )));
        }
        Err(E::custom(format!(
            "expected an IP address and port such as \"0.0.0.0:8080\" or \"[::]:8080\" (got {v:?})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_value: &str) -> Result<SocketAddr, String> {
        #[derive(Deserialize)]
        struct T {
            #[serde(deserialize_with = "deserialize")]
            listen: SocketAddr,
        }
        toml::from_str::<T>(&format!("listen = {toml_value}"))
            .map(|t| t.listen)
            .map_err(|e| e.message().to_owned())
    }

    #[test]
    fn says_what_is_wrong() {
        assert_eq!(parse("\"[::]:0\""), Ok(SocketAddr::from(([0u16; 8], 0))));
        assert_eq!(
            parse("\"0.0.0.0:99999\""),
            Err("port must be between 0 and 65535 (got 99999)".into())
        );
        assert_eq!(
            parse("\"localhost:8080\""),
            Err("expected an IP address and port such as \"0.0.0.0:8080\" or \"[::]:8080\" (got \"localhost:8080\")".into())
        );
        assert!(parse("8080").is_err_and(|e| e.starts_with("invalid type: integer `8080`")));
    }
}
