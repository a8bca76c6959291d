//! Binding the listening socket, and the URL to print for it.

use std::net::SocketAddr;

/// The listen address of the gateway or the relay is unavailable.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The configured address.
    pub addr: SocketAddr,
    /// The OS error.
    pub source: std::io::Error,
}

/// Binds the server's listener; returns it with the address actually bound (port 0 picks one).
pub async fn listen(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), BindError> {
    let bound = async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        Ok((listener, local))
    };
    bound.await.map_err(|source| BindError { addr, source })
}

/// The URL to print for a listen address (an unspecified IP is reachable on loopback too).
pub fn viewer_url(addr: SocketAddr, tls: bool) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{ip}:{}/", addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewer_url_is_reachable() {
        assert_eq!(
            viewer_url("0.0.0.0:8080".parse().unwrap(), false),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            viewer_url("192.168.1.5:80".parse().unwrap(), false),
            "http://192.168.1.5:80/"
        );
        assert_eq!(
            viewer_url("[::]:9".parse().unwrap(), true),
            "https://[::1]:9/"
        );
    }
}
