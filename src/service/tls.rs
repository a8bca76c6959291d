//! A server's `tls` section at startup: the certificate and key loaded (or the self-signed pair
//! made on first start), and the same load tried by `check-config`, reload and start before
//! anything runs, so an unusable file is reported as a config problem that names the field.

use crate::config::{Config, ConfigError, ServerTls};
use crate::server::{ServerTlsError, TlsConfig};

/// Loads a server's `tls` section (generating the self-signed pair on first start when asked)
/// and logs the certificate's fingerprint, which a user can compare with the browser's warning.
pub fn load_tls(tls: Option<&ServerTls>) -> Result<Option<TlsConfig>, ServerTlsError> {
    let Some(tls) = tls else { return Ok(None) };
    let (cert, key) = tls.files();
    let loaded = if tls.self_signed {
        TlsConfig::load_or_generate(&cert, &key)?
    } else {
        TlsConfig::load(&cert, &key)?
    };
    tracing::info!(
        cert = %cert.display(),
        self_signed = tls.self_signed,
        "HTTPS on; certificate SHA-256 fingerprint {}",
        loaded.fingerprint()
    );
    Ok(Some(loaded))
}

/// Loads every existing certificate and key pair of the config (`[server.tls]`,
/// `[relay_server.tls]`) as the server will, and reports a file that does not load as a problem
/// at its field, e.g. `server.tls.key: …: no PRIVATE KEY block found`. A self-signed pair not made
/// yet is left to the start, and so is a file this user may not read (the service may run as
/// another user, and a gateway that dropped root still checks its config on SIGHUP).
pub fn check_tls_files(config: &Config) -> Result<(), ConfigError> {
    let sections = [
        ("server.tls", config.server.tls.as_ref()),
        (
            "relay_server.tls",
            config
                .relay_server
                .as_ref()
                .and_then(|r| r.server.tls.as_ref()),
        ),
    ];
    let problems: Vec<_> = sections
        .into_iter()
        .filter_map(|(at, tls)| {
            let (cert, key) = (tls?.cert.as_ref()?, tls?.key.as_ref()?);
            if tls?.self_signed && !cert.exists() && !key.exists() {
                return None;
            }
            let e = TlsConfig::load(cert, key).err()?;
            if let ServerTlsError::Read { source, .. } = &e
                && source.kind() == std::io::ErrorKind::PermissionDenied
            {
                return None;
            }
            let field = if e.path() == Some(cert.as_path()) {
                "cert"
            } else {
                "key"
            };
            Some(config.problem_at(&format!("{at}.{field}"), e.to_string()))
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid(problems))
    }
}
