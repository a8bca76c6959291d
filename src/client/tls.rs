//! The rustls client configuration (ring provider): system roots, the bundled Mozilla roots as a
//! fallback, an optional private CA, or — explicitly and loudly — no verification at all.

use crate::config::{Escaped, TlsOptions};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClientTlsError {
    /// The CA file could not be read or holds no certificate.
    #[error("tls.ca_file {path}: {why}")]
    CaFile {
        /// The configured path.
        path: String,
        /// What went wrong.
        why: String,
    },
    /// rustls refused the configuration.
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Builds the client configuration for `opts`.
pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, ClientTlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = if opts.insecure_skip_verify {
        tracing::warn!(
            "tls.insecure_skip_verify is on: the relay's certificate is NOT verified; anyone on the network path can read and alter the stream"
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(root_store(opts)?)
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

fn root_store(opts: &TlsOptions) -> Result<RootCertStore, ClientTlsError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!("system CA store: {e}");
    }
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        tracing::info!("no usable system CA certificates; using the bundled Mozilla roots");
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(path) = &opts.ca_file {
        let err = |why: String| ClientTlsError::CaFile {
            path: Escaped(&path.display().to_string()).to_string(),
            why,
        };
        // A regular file of at most 1 MiB: a whole system bundle fits (about 220 KB on Debian).
        let pem = crate::files::read(path).map_err(|e| err(e.problem.to_string()))?;
        let mut count = 0;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| err(format!("invalid PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| err(format!("unusable certificate: {e}")))?;
            count += 1;
        }
        if count == 0 {
            return Err(err("no CERTIFICATE block found".into()));
        }
    }
    Ok(roots)
}

/// Accepts every certificate but still checks handshake signatures (so the session keys are
/// bound to *some* key). Only installed by `insecure_skip_verify`.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_file_is_read_with_a_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = dir.path().join("ca.pem");
        std::fs::File::create(&big)
            .and_then(|f| f.set_len(2 << 20))
            .expect("sparse file");
        for (file, why) in [
            (big, "larger than 1 MiB"),
            ("/dev/zero".into(), "not a regular file (character device)"),
        ] {
            let opts = TlsOptions {
                ca_file: Some(file.clone()),
                insecure_skip_verify: false,
            };
            let e = client_config(&opts).expect_err("refused");
            assert_eq!(
                e.to_string(),
                format!("tls.ca_file {}: {why}", file.display())
            );
        }
    }
}
