//! Which server certificates a connection trusts, and what to tell the user when a handshake
//! fails.
//!
//! By default the public web PKI (reqwest's roots). `tls.ca_file` adds the certificates in it
//! as roots; a server whose own certificate is one of them is trusted even when that
//! certificate is marked as a CA — what `openssl req -x509` makes and many appliances present,
//! which the web PKI rules refuse as `CaUsedAsEndEntity`. `tls.pin_sha256` trusts exactly the
//! certificate with that SHA-256 fingerprint, as vCenter operators pin a thumbprint: it
//! replaces the PKI checks (issuer, name, validity), and any other certificate is refused.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::Digest;

use crate::model::TlsConfig;

/// Why a connection's TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read `tls.ca_file` {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("`tls.ca_file` {path} holds no PEM certificate")]
    Empty { path: String },
    #[error("cannot set up TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The client TLS configuration for `tls`, or `None` when reqwest's defaults serve (no
/// `ca_file`, no pin).
pub fn client_config(tls: &TlsConfig) -> Result<Option<rustls::ClientConfig>, TlsSetupError> {
    if tls.ca_file.is_none() && tls.pin_sha256.is_none() {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut own = Vec::new();
    if let Some(path) = &tls.ca_file {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|source| TlsSetupError::Read {
            path: shown.clone(),
            source,
        })?;
        for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
            // A certificate that is no valid root may still be the server's own.
            let _ = roots.add(cert.clone());
            own.push(cert.to_vec());
        }
        if own.is_empty() {
            return Err(TlsSetupError::Empty { path: shown });
        }
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|err| rustls::Error::General(err.to_string()))?;
    let verifier = TrustedServer {
        webpki,
        own,
        pin_sha256: tls.pin_sha256,
        provider: provider.clone(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    // What reqwest offers with its own configuration.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(config))
}

/// The web PKI, plus the certificates of `ca_file` as a server's own, or only a pinned one.
#[derive(Debug)]
struct TrustedServer {
    webpki: Arc<WebPkiServerVerifier>,
    /// DER of every certificate in `tls.ca_file`.
    own: Vec<Vec<u8>>,
    pin_sha256: Option<[u8; 32]>,
    provider: Arc<CryptoProvider>,
}

/// The message of a refused pin, recognised by [`failure_hint`].
const PIN_MISMATCH: &str = "the server's certificate does not match `tls.pin_sha256`";

impl ServerCertVerifier for TrustedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(pin) = &self.pin_sha256 {
            let digest: [u8; 32] = sha2::Sha256::digest(end_entity.as_ref()).into();
            return if &digest == pin {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(rustls::Error::General(PIN_MISMATCH.to_string()))
            };
        }
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(err)
                if is_ca_used_as_end_entity(&err)
                    && self.own.iter().any(|own| own == end_entity.as_ref()) =>
            {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn is_ca_used_as_end_entity(err: &rustls::Error) -> bool {
    matches!(err, rustls::Error::InvalidCertificate(CertificateError::Other(other))
        if other.to_string() == "CaUsedAsEndEntity")
}

/// The rustls error somewhere in the causes of a failed request, if the handshake failed.
fn rustls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut source = Some(err);
    while let Some(cause) = source {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // An I/O error's `source` skips the error it wraps: look inside, however deep.
        let mut io = cause.downcast_ref::<std::io::Error>();
        while let Some(inner) = io.and_then(|io| io.get_ref()) {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return Some(tls);
            }
            io = inner.downcast_ref::<std::io::Error>();
        }
        source = cause.source();
    }
    None
}

/// What to do about a failed handshake, matched to its cause.
pub fn failure_hint(err: &reqwest::Error) -> String {
    let generic = "trust the server's certificate authority with `tls.ca_file`, or pin the server's certificate with `tls.pin_sha256`".to_string();
    let Some(tls) = rustls_error(err) else {
        return generic;
    };
    match tls {
        rustls::Error::InvalidCertificate(cause) => match cause {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired (or this machine's clock is wrong): renew the certificate".to_string()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet (or this machine's clock is wrong)".to_string()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "the server's certificate is not issued for the host in `url`: use the name the certificate names".to_string()
            }
            CertificateError::UnknownIssuer => {
                "the certificate's issuer is not trusted: set `tls.ca_file` to the certificate authority that issued it (or, for a self-signed server, its own certificate), or pin it with `tls.pin_sha256`".to_string()
            }
            other if is_ca_used_as_end_entity(&rustls::Error::InvalidCertificate(other.clone())) => {
                "the server presents a CA certificate as its own (as `openssl req -x509` makes); put exactly that certificate in `tls.ca_file`, or its SHA-256 in `tls.pin_sha256`".to_string()
            }
            _ => generic,
        },
        rustls::Error::General(message) if message == PIN_MISMATCH => {
            "the server's certificate changed, or this is not the server you pinned: compare the fingerprint (`openssl x509 -noout -fingerprint -sha256`) with `tls.pin_sha256`".to_string()
        }
        _ => generic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_read_with_or_without_colons() {
        let plain = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(TlsConfig::parse_pin(&plain), Some([0xab; 32]));
        assert_eq!(TlsConfig::parse_pin(&colons), Some([0xab; 32]));
        assert_eq!(TlsConfig::parse_pin("abcd"), None);
        assert_eq!(TlsConfig::parse_pin(&"zz".repeat(32)), None);
    }

    #[test]
    fn hints_name_the_cause() {
        let ca = rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
            Arc::new(std::io::Error::other("CaUsedAsEndEntity")),
        )));
        assert!(is_ca_used_as_end_entity(&ca));
    }
}
