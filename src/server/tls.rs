//! HTTPS and WSS for the server: a rustls (ring) configuration from PEM files, or from a
//! self-signed certificate made on first start and kept for the next ones, and the per-connection
//! handshake (bounded in time, so a slow client never holds anybody else up; a plain-HTTP one is
//! redirected to `https://`).
//!
//! A self-signed certificate is what makes a LAN origin like `https://raspberrypi.local:8443`
//! secure enough for browsers to offer WebCodecs: the user accepts it once (or checks the
//! fingerprint logged at start against the browser's warning page, or trusts the file).

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// How long a client may take to finish the TLS handshake before its connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a generated certificate is valid: Apple platforms refuse server certificates valid for
/// longer than 825 days, even self-signed ones a user trusted. Delete the files to renew.
const SELF_SIGNED_DAYS: i64 = 825;

/// Why the TLS certificate or key cannot be used; each names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum ServerTlsError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file holds no usable certificate or key.
    #[error("{}: {problem}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A generated certificate or key could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The self-signed certificate could not be made.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

impl ServerTlsError {
    /// The file concerned, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ServerTlsError::Read { path, .. }
            | ServerTlsError::Invalid { path, .. }
            | ServerTlsError::Write { path, .. } => Some(path),
            ServerTlsError::Generate(_) => None,
        }
    }
}

/// A server's TLS: the rustls configuration and what to tell the user about its certificate.
#[derive(Clone)]
pub struct TlsConfig {
    acceptor: tokio_rustls::TlsAcceptor,
    /// Shared: the config is cloned into every connection's task.
    fingerprint: Arc<str>,
    generated: bool,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("fingerprint", &self.fingerprint)
            .field("generated", &self.generated)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Loads the PEM certificate chain `cert` and private key `key`.
    pub fn load(cert: &Path, key: &Path) -> Result<TlsConfig, ServerTlsError> {
        let chain = read_chain(cert)?;
        let key_der = read_key(key)?;
        let fingerprint = fingerprint(&chain[0]).into();
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key_der))
        .map_err(|e| ServerTlsError::Invalid {
            path: key.to_owned(),
            problem: format!("does not fit the certificate in {}: {e}", cert.display()),
        })?;
        // The server speaks HTTP/1.1 only (WebSocket upgrades need it).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            fingerprint,
            generated: false,
        })
    }

    /// Loads `cert` and `key`; when neither file exists yet, first generates a self-signed
    /// certificate for this machine's names and addresses ([`self_signed_names`]) and writes
    /// them there (the key with mode 0600), so later starts reuse the same certificate. A
    /// self-signed certificate past its validity is moved aside (`*.expired`) and made anew.
    pub fn load_or_generate(cert: &Path, key: &Path) -> Result<TlsConfig, ServerTlsError> {
        if cert.exists() || key.exists() {
            let loaded = TlsConfig::load(cert, key)?;
            if !expired_self_signed(&read_chain(cert)?[0]) {
                return Ok(loaded);
            }
            tracing::warn!(
                cert = %cert.display(),
                "the self-signed TLS certificate has expired: making a new one (its fingerprint changes)"
            );
            for file in [cert, key] {
                let mut aside = file.as_os_str().to_owned();
                aside.push(".expired");
                std::fs::rename(file, &aside).map_err(|source| ServerTlsError::Write {
                    path: file.to_owned(),
                    source,
                })?;
            }
        }
        generate(cert, key, self_signed_names(), valid_from_now())?;
        Ok(TlsConfig {
            generated: true,
            ..TlsConfig::load(cert, key)?
        })
    }

    /// SHA-256 of the leaf certificate (DER), as browsers show it: `AB:CD:…`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Whether [`TlsConfig::load_or_generate`] made the certificate on this start.
    pub fn generated(&self) -> bool {
        self.generated
    }

    /// Runs the handshake on `stream`, at most [`HANDSHAKE_TIMEOUT`]; `None` (logged at debug
    /// level) when the client fails or stalls. A client that speaks plain HTTP (a browser sent
    /// to `http://` on this port) is redirected to the same URL over `https://`.
    pub(crate) async fn accept(&self, stream: TcpStream) -> Option<TlsStream<TcpStream>> {
        let handshake = async {
            let mut first = [0u8; 1];
            // Every TLS connection starts with a handshake record (content type 22).
            if stream.peek(&mut first).await.ok()? == 1 && first[0] != 22 {
                redirect_to_https(stream).await;
                return None;
            }
            self.acceptor
                .accept(stream)
                .await
                .map_err(|e| tracing::debug!("TLS handshake: {e}"))
                .ok()
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .unwrap_or_else(|_| {
                tracing::debug!("TLS handshake: no progress in {HANDSHAKE_TIMEOUT:?}");
                None
            })
    }
}

/// Answers a plain-HTTP request on the TLS port: `307` to `https://<Host><path>` (temporary:
/// browsers do not cache it, unlike 301/308, so turning TLS off later does not leave them stuck),
/// or `400` when the request head is not usable. Reads at most 8 KiB; the caller bounds the time.
async fn redirect_to_https(mut stream: TcpStream) {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.split("\r\n");
    let target = lines.next().and_then(|l| l.split(' ').nth(1));
    let host = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("host").then(|| value.trim())
    });
    // Only visible ASCII goes back into a header (no header injection, no spaces).
    let clean = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
    let response = match (host, target) {
        (Some(host), Some(path)) if clean(host) && clean(path) && path.starts_with('/') => {
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: https://{host}{path}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
        }
        _ => {
            let body = "This port speaks HTTPS.\n";
            format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            )
        }
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A certificate or key file: a regular file of at most 1 MiB (a FIFO or `/dev/zero` named by
/// mistake is refused, not read).
fn read(path: &Path) -> Result<Vec<u8>, ServerTlsError> {
    crate::files::read(path).map_err(|e| ServerTlsError::Read {
        path: e.path,
        source: e.problem.into(),
    })
}

fn invalid(path: &Path, problem: impl Into<String>) -> ServerTlsError {
    ServerTlsError::Invalid {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServerTlsError> {
    let chain = CertificateDer::pem_slice_iter(&read(path)?)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|e| invalid(path, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(invalid(path, "no CERTIFICATE block found"));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, ServerTlsError> {
    PrivateKeyDer::from_pem_slice(&read(path)?).map_err(|e| match e {
        pem::Error::NoItemsFound => invalid(
            path,
            "no PRIVATE KEY block found (PKCS#8, RSA or EC, in PEM)",
        ),
        e => invalid(path, format!("not a PEM private key: {e}")),
    })
}

/// The SHA-256 fingerprint of a DER certificate, colon-separated upper-case hex.
fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// The names a self-signed certificate covers: the host name, `<hostname>.local` (mDNS),
/// `localhost`, 127.0.0.1, ::1 and every non-loopback interface address up now.
pub fn self_signed_names() -> Vec<String> {
    let mut names = Vec::new();
    if let Some(host) = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .map(|h| h.trim().to_owned())
        // Only what a DNS name may hold (a certificate with anything else would not load).
        .filter(|h| {
            !h.is_empty()
                && h != "localhost"
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
        })
    {
        let short = host.split('.').next().unwrap_or(&host).to_owned();
        names.push(format!("{short}.local"));
        if short != host {
            names.push(short);
        }
        names.push(host);
    }
    names.push("localhost".into());
    let mut ips: Vec<IpAddr> = vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()];
    ips.extend(interface_addresses());
    for ip in ips {
        let text = ip.to_string();
        if !names.contains(&text) {
            names.push(text);
        }
    }
    names
}

/// Non-loopback addresses of this machine's interfaces (getifaddrs(3) through `nix`, which the
/// crate already uses for the privilege drop: no extra dependency).
fn interface_addresses() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|a| a.address)
        .filter_map(|sa| {
            if let Some(v4) = sa.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                sa.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        // A link-local IPv6 address needs a zone (%eth0) in URLs, which browsers do not take.
        .filter(|ip| !matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local()))
        .collect()
}

/// Whether `leaf` is a certificate signed by its own key (one we could have made) that has
/// expired. A certificate issued by a CA is never taken for one, so it is never replaced.
fn expired_self_signed(leaf: &CertificateDer<'_>) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = roots.add(leaf.clone()).ok().and_then(|()| {
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .ok()
    });
    let Some(verifier) = verifier else {
        return false;
    };
    let name = ServerName::from(IpAddr::from([127, 0, 0, 1]));
    matches!(
        verifier.verify_server_cert(leaf, &[], &name, &[], UnixTime::now()),
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. }
        ))
    )
}

/// Unix seconds from a day ago (slack for clocks behind ours; a Pi without RTC before NTP syncs
/// is far behind anyway, and browsers show that as a date error) to [`SELF_SIGNED_DAYS`] ahead.
fn valid_from_now() -> std::ops::Range<i64> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let day = 24 * 3600;
    now - day..now + SELF_SIGNED_DAYS * day
}

/// Makes a self-signed ECDSA P-256 certificate for `names`, valid over `valid` (Unix seconds),
/// and writes it to `cert` and its key to `key` (mode 0600), creating their directories (mode
/// 0700) as needed.
fn generate(
    cert: &Path,
    key: &Path,
    names: Vec<String>,
    valid: std::ops::Range<i64>,
) -> Result<(), ServerTlsError> {
    let mut params = rcgen::CertificateParams::new(names.clone())?;
    let host = names.first().cloned().unwrap_or_else(|| "sioedge".into());
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("sioedge on {host}"));
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let date =
        |secs| time::OffsetDateTime::from_unix_timestamp(secs).map_err(|_| rcgen::Error::Time);
    params.not_before = date(valid.start)?;
    params.not_after = date(valid.end)?;
    let key_pair = rcgen::KeyPair::generate()?;
    let certificate = params.self_signed(&key_pair)?;
    write_file(key, key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_file(cert, certificate.pem().as_bytes(), 0o644)?;
    tracing::info!(
        cert = %cert.display(),
        key = %key.display(),
        "generated a self-signed TLS certificate for {}",
        names.join(", ")
    );
    Ok(())
}

/// Writes a new file with `mode` (never a wider one, whatever the umask), directories first.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ServerTlsError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let err = |source| ServerTlsError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_or_an_oversized_file_is_refused_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.pem");
        std::fs::File::create(&big)
            .and_then(|f| f.set_len(2 << 20))
            .unwrap();
        let e = TlsConfig::load(&big, &big).unwrap_err();
        let want = format!("cannot read {}: larger than 1 MiB", big.display());
        assert_eq!(e.to_string(), want);
        let e = TlsConfig::load(Path::new("/dev/zero"), &big).unwrap_err();
        let want = "cannot read /dev/zero: not a regular file (character device)";
        assert_eq!(e.to_string(), want);
    }

    #[test]
    fn names_cover_loopback_and_no_link_local() {
        let names = self_signed_names();
        for n in ["localhost", "127.0.0.1", "::1"] {
            assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
        }
        assert!(!names.iter().any(|n| n.starts_with("fe80")), "{names:?}");
    }

    #[test]
    fn generated_pair_loads_and_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("a/cert.pem"), dir.path().join("a/key.pem"));
        let first = TlsConfig::load_or_generate(&cert, &key).unwrap();
        assert!(first.generated());
        assert_eq!(first.fingerprint().len(), 32 * 3 - 1);
        let again = TlsConfig::load_or_generate(&cert, &key).unwrap();
        assert!(!again.generated());
        assert_eq!(again.fingerprint(), first.fingerprint());
    }

    #[test]
    fn an_expired_self_signed_pair_is_moved_aside_and_made_anew() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let day = 24 * 3600;
        let start = valid_from_now().start;
        generate(
            &cert,
            &key,
            vec!["localhost".into()],
            start - 10 * day..start - day,
        )
        .unwrap();
        let expired = TlsConfig::load(&cert, &key).unwrap();
        let fresh = TlsConfig::load_or_generate(&cert, &key).unwrap();
        assert!(fresh.generated());
        assert_ne!(fresh.fingerprint(), expired.fingerprint());
        let aside = TlsConfig::load(
            &dir.path().join("cert.pem.expired"),
            &dir.path().join("key.pem.expired"),
        );
        assert_eq!(aside.unwrap().fingerprint(), expired.fingerprint());
        // Valid now: kept.
        let again = TlsConfig::load_or_generate(&cert, &key).unwrap();
        assert_eq!(again.fingerprint(), fresh.fingerprint());
        assert!(!again.generated());
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let missing = TlsConfig::load(&cert, &key).unwrap_err().to_string();
        assert!(missing.starts_with(&format!("cannot read {}", cert.display())));
        std::fs::write(&cert, "hello").unwrap();
        let empty = TlsConfig::load(&cert, &key).unwrap_err().to_string();
        assert_eq!(
            empty,
            format!("{}: no CERTIFICATE block found", cert.display())
        );
        TlsConfig::load_or_generate(&dir.path().join("c2"), &dir.path().join("k2")).unwrap();
        std::fs::copy(dir.path().join("c2"), &cert).unwrap();
        std::fs::copy(dir.path().join("c2"), &key).unwrap();
        let not_key = TlsConfig::load(&cert, &key).unwrap_err().to_string();
        assert!(
            not_key.starts_with(&format!("{}: no PRIVATE KEY block found", key.display())),
            "{not_key}"
        );
    }
}
