//! The simulated Edge servers' XMPP side: a server-to-server listener per
//! Edge server, answering the stream header with features, STARTTLS with a
//! certificate made for the rehearsal, and the stream again over TLS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::xmpp::stream::{NS_DIALBACK, NS_SERVER, NS_STREAM};

/// Why the rehearsal's certificate could not be made.
#[derive(Debug, thiserror::Error)]
#[error("make the rehearsal's self-signed certificate: {0}")]
pub struct CertError(String);

/// A TLS server configuration with a self-signed certificate for `names`.
pub fn tls_config(names: &[String]) -> Result<Arc<rustls::ServerConfig>, CertError> {
    let certified =
        rcgen::generate_simple_self_signed(names.to_vec()).map_err(|e| CertError(e.to_string()))?;
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CertError(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| CertError(e.to_string()))?;
    Ok(Arc::new(config))
}

/// What one Edge server's listener answers as.
#[derive(Clone)]
pub struct Persona {
    pub domain: String,
    pub tls: Arc<rustls::ServerConfig>,
}

/// Listen on `addr` and answer partners until the task is aborted (which
/// closes the port: a connection is then refused, as with the services
/// stopped).
pub async fn listen(addr: SocketAddr, persona: Persona) -> std::io::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(addr).await?;
    Ok(tokio::spawn(async move {
        let mut id = 0u64;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            id += 1;
            let persona = persona.clone();
            tokio::spawn(async move {
                let session = serve(stream, &persona, id);
                let _ = tokio::time::timeout(Duration::from_secs(30), session).await;
            });
        }
    }))
}

/// A port whose connections are dropped, as behind a filtering firewall: a
/// listener that never accepts, with its one-slot backlog already full, so
/// further SYNs go unanswered.
pub async fn listen_filtered(addr: SocketAddr) -> std::io::Result<JoinHandle<()>> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(0)?;
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await
        {
            fillers.push(s);
        }
    }
    Ok(tokio::spawn(async move {
        let _keep = (listener, fillers);
        std::future::pending::<()>().await;
    }))
}

/// Read until `until` has been seen; what was read.
async fn read_until<S: AsyncRead + Unpin>(s: &mut S, until: &[&str]) -> std::io::Result<String> {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        // One byte at a time: after <starttls/> the next bytes belong to TLS.
        if s.read(&mut byte).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.push(byte[0]);
        let text = String::from_utf8_lossy(&got);
        if until.iter().any(|u| text.ends_with(u)) || got.len() > 16_384 {
            return Ok(text.into_owned());
        }
    }
}

/// The stream header's `to`, by either quote.
fn attribute(header: &str, name: &str) -> Option<String> {
    let start = header.find("<stream:stream")?;
    let tag = &header[start..];
    for q in ['\'', '"'] {
        let key = format!(" {name}={q}");
        if let Some(at) = tag.find(&key) {
            let rest = &tag[at + key.len()..];
            return rest.find(q).map(|end| rest[..end].to_string());
        }
    }
    None
}

async fn open_stream<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    persona: &Persona,
    id: &str,
    features: &str,
) -> std::io::Result<bool> {
    let mut header = read_until(s, &["<stream:stream"]).await?;
    header.push_str(&read_until(s, &[">"]).await?);
    let reply = format!(
        "<?xml version='1.0'?><stream:stream xmlns='{NS_SERVER}' xmlns:stream='{NS_STREAM}' xmlns:db='{NS_DIALBACK}' from='{}' id='{id}' version='1.0'>",
        persona.domain
    );
    let to = attribute(&header, "to").unwrap_or_default();
    if !to.eq_ignore_ascii_case(&persona.domain) {
        s.write_all(format!("{reply}<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>").as_bytes()).await?;
        return Ok(false);
    }
    s.write_all(format!("{reply}<stream:features>{features}</stream:features>").as_bytes())
        .await?;
    Ok(true)
}

async fn serve(mut tcp: TcpStream, persona: &Persona, n: u64) -> std::io::Result<()> {
    let id = format!("rehearsal-{n}");
    let before = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><dialback xmlns='urn:xmpp:features:dialback'/>";
    if !open_stream(&mut tcp, persona, &id, before).await? {
        return Ok(());
    }
    let asked = read_until(&mut tcp, &["/>", "</starttls>"]).await?;
    if !asked.contains("starttls") {
        tcp.write_all(b"<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>").await?;
        return Ok(());
    }
    tcp.write_all(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        .await?;
    let mut tls = TlsAcceptor::from(persona.tls.clone()).accept(tcp).await?;
    let after = "<dialback xmlns='urn:xmpp:features:dialback'/>";
    if open_stream(&mut tls, persona, &format!("{id}-tls"), after).await? {
        let _ = read_until(&mut tls, &["</stream:stream>"]).await;
        let _ = tls.write_all(b"</stream:stream>").await;
    }
    let _ = tls.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_to_by_either_quote() {
        assert_eq!(
            attribute("<?xml?><stream:stream to='a.com' from=\"b\">", "to").as_deref(),
            Some("a.com")
        );
        assert_eq!(
            attribute("<stream:stream from='x' to=\"c.org\">", "to").as_deref(),
            Some("c.org")
        );
        assert_eq!(attribute("<stream:stream>", "to"), None);
    }

    fn probe_options(domain: &str) -> crate::xmpp::probe::ProbeOptions {
        crate::xmpp::probe::ProbeOptions {
            domain: domain.into(),
            partner: "partner.example".into(),
            timeouts: crate::xmpp::Timeouts::default(),
            accept_untrusted: true,
            accept_flag: "the test",
        }
    }

    #[tokio::test]
    async fn a_partner_gets_starttls_the_certificate_and_host_unknown_elsewhere() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        let persona = Persona {
            domain: "example.test".into(),
            tls: tls_config(&["example.test".into()]).unwrap(),
        };
        let handle = listen(addr, persona).await.unwrap();
        let ok =
            crate::xmpp::probe::probe_addr(addr, "example.test", &probe_options("example.test"))
                .await;
        assert!(ok.passed, "{:#?}", ok.lines());
        assert!(ok.features_after_tls.is_some());
        let other =
            crate::xmpp::probe::probe_addr(addr, "other.test", &probe_options("other.test")).await;
        assert!(!other.passed);
        assert!(
            other.lines().iter().any(|l| l.contains("host-unknown")),
            "{:#?}",
            other.lines()
        );
        handle.abort();
    }
}
