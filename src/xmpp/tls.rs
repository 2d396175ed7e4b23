//! The TLS half of STARTTLS, with rustls (ring): complete the handshake,
//! then judge the certificate the way a partner's server does, keeping two
//! questions apart: do its names cover the XMPP domain, and does a CA the
//! world trusts vouch for its chain.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Why the TLS handshake could not be done; reads well after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("start TLS for {domain}: it is not a DNS name a certificate can carry")]
    BadName { domain: String },
    #[error("set up TLS: {0}")]
    Setup(rustls::Error),
    #[error("complete a TLS handshake with {peer}: {source}")]
    Handshake {
        peer: String,
        source: std::io::Error,
    },
    #[error("complete a TLS handshake with {peer}: it presented no certificate")]
    NoCertificate { peer: String },
}

/// Whether the chain leads to a trusted root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainTrust {
    Trusted,
    Untrusted,
}

/// What the handshake and the certificate showed.
#[derive(Debug, Clone, Serialize)]
pub struct CertReport {
    pub protocol: String,
    pub cipher: String,
    /// The leaf's subjectAltName dNSName entries (wildcards included).
    pub dns_names: Vec<String>,
    /// Whether those names cover the XMPP domain (RFC 6125 rules, by webpki).
    pub covers_domain: bool,
    pub chain: ChainTrust,
    /// Why the chain is not trusted.
    pub chain_problem: Option<String>,
    /// Certificates the server sent, leaf first.
    pub chain_length: usize,
}

/// Lets any certificate through the handshake (the handshake signatures are
/// still checked against it) and leaves the verdict to `judge`, so that an
/// untrusted certificate can be described instead of just refused.
#[derive(Debug)]
struct JudgeLater(Arc<CryptoProvider>);

impl ServerCertVerifier for JudgeLater {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
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

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_name(domain: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(domain.to_string()).map_err(|_| TlsError::BadName {
        domain: crate::names::printable(domain),
    })
}

/// Do the handshake with SNI set to the XMPP domain (as partners do) and
/// judge the certificate. The caller bounds the time.
pub async fn handshake<S>(
    io: S,
    domain: &str,
    peer: &str,
) -> Result<(TlsStream<S>, CertReport), TlsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = server_name(domain)?;
    let provider = provider();
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(JudgeLater(provider.clone())))
        .with_no_client_auth();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name.clone(), io)
        .await
        .map_err(|source| TlsError::Handshake {
            peer: peer.to_string(),
            source,
        })?;
    let (_, conn) = tls.get_ref();
    let certs = conn
        .peer_certificates()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| TlsError::NoCertificate {
            peer: peer.to_string(),
        })?;
    let protocol = conn
        .protocol_version()
        .and_then(|v| v.as_str())
        .unwrap_or("unknown")
        .to_string();
    let cipher = conn
        .negotiated_cipher_suite()
        .and_then(|c| c.suite().as_str())
        .unwrap_or("unknown")
        .to_string();
    let report = judge(certs, &name, provider, &webpki_roots(), peer)?;
    Ok((
        tls,
        CertReport {
            protocol,
            cipher,
            ..report
        },
    ))
}

fn webpki_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// Judge a chain (leaf first) for `name` against `roots`.
fn judge(
    certs: &[CertificateDer<'static>],
    name: &ServerName<'static>,
    provider: Arc<CryptoProvider>,
    roots: &RootCertStore,
    peer: &str,
) -> Result<CertReport, TlsError> {
    let Some((leaf, intermediates)) = certs.split_first() else {
        return Err(TlsError::NoCertificate {
            peer: peer.to_string(),
        });
    };
    let (dns_names, covers_domain) = match webpki::EndEntityCert::try_from(leaf) {
        Ok(ee) => (
            ee.valid_dns_names().map(str::to_string).collect(),
            ee.verify_is_valid_for_subject_name(name).is_ok(),
        ),
        Err(_) => (Vec::new(), false),
    };
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots.clone()), provider)
        .build()
        .map_err(|e| TlsError::Setup(rustls::Error::General(e.to_string())))?;
    let verdict = verifier.verify_server_cert(leaf, intermediates, name, &[], UnixTime::now());
    let chain_problem = match verdict {
        Ok(_) => None,
        // webpki checks the chain before the name: a name error means the
        // chain itself was good.
        Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => None,
        Err(rustls::Error::InvalidCertificate(e)) => Some(describe(&e)),
        Err(e) => Some(e.to_string()),
    };
    Ok(CertReport {
        protocol: String::new(),
        cipher: String::new(),
        dns_names,
        covers_domain,
        chain: if chain_problem.is_none() {
            ChainTrust::Trusted
        } else {
            ChainTrust::Untrusted
        },
        chain_problem,
        chain_length: certs.len(),
    })
}

fn describe(e: &CertificateError) -> String {
    match e {
        CertificateError::UnknownIssuer => {
            "no trusted CA issued it (self-signed, or a private CA partners do not know)".into()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "it has expired".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet".into()
        }
        CertificateError::Revoked => "it is revoked".into(),
        CertificateError::BadSignature => "a signature in the chain does not verify".into(),
        CertificateError::BadEncoding => "the certificate cannot be parsed".into(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "it is not valid for TLS servers (extended key usage)".into()
        }
        other => format!("it does not verify against the trusted roots: {other:?}"),
    }
}
