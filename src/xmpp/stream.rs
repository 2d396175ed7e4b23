//! A small reader for the XMPP server-to-server stream, on quick-xml: the
//! header a partner sends, the answer's header, `<stream:features>`,
//! `<stream:error>` and the STARTTLS exchange. The root element never
//! closes, so it reads element by element against a deadline, and it caps
//! how much it reads and how deep elements nest.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::time::Instant;

pub const NS_STREAM: &str = "http://etherx.jabber.org/streams";
pub const NS_SERVER: &str = "jabber:server";
pub const NS_DIALBACK: &str = "jabber:server:dialback";
pub const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
pub const NS_DIALBACK_FEATURE: &str = "urn:xmpp:features:dialback";
pub const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
pub const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";

/// Most bytes read from one stream: features and errors are small, and a
/// peer that sends more is not an XMPP server we can judge.
pub const MAX_BYTES: usize = 256 * 1024;
/// Deepest element nesting accepted below the stream root.
pub const MAX_DEPTH: usize = 16;
/// How much of the first bytes is kept to quote a non-XMPP answer.
const HEAD_BYTES: usize = 120;

/// Why a stream exchange failed; reads well after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("talk to {peer}: {source}")]
    Io {
        peer: String,
        source: std::io::Error,
    },
    #[error(
        "hear from {peer} within {ms} ms of sending the stream header: it accepted the connection and said nothing"
    )]
    Silent { peer: String, ms: u128 },
    #[error("finish the exchange with {peer} within {ms} ms (stalled while {doing})")]
    Deadline {
        peer: String,
        ms: u128,
        doing: &'static str,
    },
    #[error("read an answer from {peer}: it closed the connection {when}")]
    Closed { peer: String, when: &'static str },
    #[error("read XML from {peer}: it answered {excerpt}, which is not an XMPP stream")]
    NotXml { peer: String, excerpt: String },
    #[error("parse the answer of {peer}: {reason} (it began {excerpt})")]
    BadXml {
        peer: String,
        reason: String,
        excerpt: String,
    },
    #[error("open a stream with {peer}: it answered with {got} where {expected} was due")]
    Unexpected {
        peer: String,
        got: String,
        expected: &'static str,
    },
    #[error("open a stream with {peer}: it sent the stream error <{condition}>{}", text_suffix(.text))]
    StreamError {
        peer: String,
        condition: String,
        text: Option<String>,
    },
    #[error("start TLS with {peer}: it answered <failure/> to <starttls/>")]
    TlsRefused { peer: String },
    #[error("read from {peer}: it sent more than {MAX_BYTES} bytes without finishing")]
    TooMuch { peer: String },
    #[error("read from {peer}: elements nested deeper than {MAX_DEPTH} levels")]
    TooDeep { peer: String },
    #[error(
        "start TLS with {peer}: it sent {count} byte(s) after <proceed/> before the TLS handshake"
    )]
    DataAfterProceed { peer: String, count: usize },
}

fn text_suffix(text: &Option<String>) -> String {
    match text {
        Some(t) if !t.is_empty() => format!(": {t}"),
        _ => String::new(),
    }
}

impl StreamError {
    /// The stream error condition, when the peer sent one.
    pub fn condition(&self) -> Option<&str> {
        match self {
            StreamError::StreamError { condition, .. } => Some(condition),
            _ => None,
        }
    }
}

/// Quote bytes from a peer: printable, short, never raw control bytes.
pub fn excerpt(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(HEAD_BYTES)];
    let text: String = String::from_utf8_lossy(cut)
        .chars()
        .flat_map(char::escape_default)
        .collect();
    let more = if bytes.len() > HEAD_BYTES { "..." } else { "" };
    format!("\"{text}{more}\"")
}

/// The opening a federating server sends (RFC 6120 4.7, with dialback).
pub fn opening(to: &str, from: &str) -> String {
    use quick_xml::escape::escape;
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='{NS_SERVER}' xmlns:stream='{NS_STREAM}' xmlns:db='{NS_DIALBACK}' to='{}' from='{}' version='1.0'>",
        escape(to),
        escape(from)
    )
}

/// The answer's stream header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StreamHeader {
    /// The default namespace (jabber:server for server-to-server).
    pub content_ns: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub id: Option<String>,
    pub version: Option<String>,
}

/// One element below the stream root, read whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub ns: String,
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// `<name xmlns='ns'>` as a peer would have written it, for messages.
    pub fn tag(&self) -> String {
        if self.ns.is_empty() {
            format!("<{}>", self.name)
        } else {
            format!("<{} xmlns='{}'>", self.name, self.ns)
        }
    }
}

/// What `<stream:features>` offered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Features {
    pub starttls: bool,
    pub starttls_required: bool,
    pub dialback: bool,
    /// SASL mechanisms (EXTERNAL after TLS with a trusted certificate).
    pub sasl: Vec<String>,
    /// Every other feature, as `{namespace}name`.
    pub other: Vec<String>,
}

impl Features {
    pub fn from_element(e: &Element) -> Features {
        let mut f = Features::default();
        for c in &e.children {
            if c.is(NS_TLS, "starttls") {
                f.starttls = true;
                f.starttls_required = c.child(NS_TLS, "required").is_some();
            } else if c.is(NS_DIALBACK_FEATURE, "dialback") {
                f.dialback = true;
            } else if c.is(NS_SASL, "mechanisms") {
                f.sasl = c
                    .children
                    .iter()
                    .filter(|m| m.name == "mechanism")
                    .map(|m| m.text.trim().to_string())
                    .collect();
            } else {
                f.other.push(format!("{{{}}}{}", c.ns, c.name));
            }
        }
        f
    }

    /// "starttls (required), dialback" for reports.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.starttls {
            parts.push(if self.starttls_required {
                "starttls (required)".to_string()
            } else {
                "starttls (optional)".to_string()
            });
        }
        if self.dialback {
            parts.push("dialback".into());
        }
        if !self.sasl.is_empty() {
            parts.push(format!("sasl ({})", self.sasl.join(", ")));
        }
        parts.extend(self.other.iter().cloned());
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(", ")
        }
    }
}

/// A `<stream:error>`: its condition and optional text.
pub fn stream_error(e: &Element) -> Option<(String, Option<String>)> {
    if !e.is(NS_STREAM, "error") {
        return None;
    }
    let condition = e
        .children
        .iter()
        .find(|c| c.ns == NS_STREAM_ERRORS && c.name != "text")
        .map(|c| c.name.clone())
        .unwrap_or_else(|| "undefined-condition".into());
    let text = e
        .child(NS_STREAM_ERRORS, "text")
        .map(|t| t.text.trim().to_string())
        .filter(|t| !t.is_empty());
    Some((condition, text))
}

/// Counts what is read, keeps the first bytes to quote, and refuses to go
/// past `MAX_BYTES`.
struct Capped<S> {
    inner: S,
    total: usize,
    head: Vec<u8>,
    over: bool,
}

impl<S: AsyncRead + Unpin> AsyncRead for Capped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.total >= MAX_BYTES {
            self.over = true;
            return Poll::Ready(Err(std::io::Error::other("read limit reached")));
        }
        let before = buf.filled().len();
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &poll {
            let fresh = &buf.filled()[before..];
            this.total += fresh.len();
            let room = HEAD_BYTES.saturating_sub(this.head.len());
            this.head.extend_from_slice(&fresh[..fresh.len().min(room)]);
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Capped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What the event loop hands on, owned (quick-xml's events borrow its
/// buffer and resolver).
enum Owned {
    Start(Element),
    Empty(Element),
    End,
    Text(String),
    Skip,
    Eof,
}

fn ns_of(r: &ResolveResult<'_>) -> String {
    match r {
        ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.as_ref()).into_owned(),
        _ => String::new(),
    }
}

fn element(ns: &ResolveResult<'_>, e: &BytesStart<'_>) -> Element {
    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
    let attrs = e
        .attributes()
        .filter_map(Result::ok)
        .map(|a| {
            let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
            let value = a
                .unescape_value()
                .map(|v| v.into_owned())
                .unwrap_or_else(|_| String::from_utf8_lossy(&a.value).into_owned());
            (key, value)
        })
        .collect();
    Element {
        ns: ns_of(ns),
        name,
        attrs,
        ..Element::default()
    }
}

/// The five predefined entities and character references.
fn resolve_ref(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// One side of an XMPP stream over any byte stream (TCP, then TLS).
pub struct XmppStream<S> {
    reader: NsReader<BufReader<Capped<S>>>,
    buf: Vec<u8>,
    peer: String,
    deadline: Instant,
    budget: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> XmppStream<S> {
    /// `budget` is the time the whole exchange may take from `deadline`'s
    /// start; it only appears in messages.
    pub fn new(io: S, peer: impl Into<String>, deadline: Instant, budget: Duration) -> Self {
        let capped = Capped {
            inner: io,
            total: 0,
            head: Vec::new(),
            over: false,
        };
        let mut reader = NsReader::from_reader(BufReader::new(capped));
        let config = reader.config_mut();
        config.trim_text(false);
        config.check_end_names = true;
        config.expand_empty_elements = false;
        XmppStream {
            reader,
            buf: Vec::new(),
            peer: peer.into(),
            deadline,
            budget,
        }
    }

    pub fn peer(&self) -> &str {
        &self.peer
    }

    fn capped(&self) -> &Capped<S> {
        self.reader.get_ref().get_ref()
    }

    fn head(&self) -> String {
        excerpt(&self.capped().head)
    }

    fn deadline_error(&self, doing: &'static str) -> StreamError {
        StreamError::Deadline {
            peer: self.peer.clone(),
            ms: self.budget.as_millis(),
            doing,
        }
    }

    fn io_error(&self, source: std::io::Error) -> StreamError {
        if self.capped().over {
            StreamError::TooMuch {
                peer: self.peer.clone(),
            }
        } else {
            StreamError::Io {
                peer: self.peer.clone(),
                source,
            }
        }
    }

    /// Write and flush, within the deadline.
    pub async fn send(&mut self, text: &str) -> Result<(), StreamError> {
        let io = &mut self.reader.get_mut().get_mut().inner;
        let write = async {
            io.write_all(text.as_bytes()).await?;
            io.flush().await
        };
        match tokio::time::timeout_at(self.deadline, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.io_error(e)),
            Err(_) => Err(self.deadline_error("sending")),
        }
    }

    /// Wait for the answer's first byte; a silent peer fails here with its
    /// own message, and an answer that is plainly not XML fails at once
    /// instead of waiting for markup that never comes.
    pub async fn first_byte(&mut self, timeout: Duration) -> Result<(), StreamError> {
        // Past what the clock holds: the exchange's own deadline rules.
        let until = Instant::now()
            .checked_add(timeout)
            .unwrap_or(self.deadline)
            .min(self.deadline);
        let filled = tokio::time::timeout_at(until, self.reader.get_mut().fill_buf()).await;
        let bytes = match filled {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(e)) => return Err(self.io_error(e)),
            Err(_) if until < self.deadline => {
                return Err(StreamError::Silent {
                    peer: self.peer.clone(),
                    ms: timeout.as_millis(),
                });
            }
            Err(_) => return Err(self.deadline_error("waiting for the first byte")),
        };
        if bytes.is_empty() {
            return Err(StreamError::Closed {
                peer: self.peer.clone(),
                when: "without answering the stream header",
            });
        }
        let bom = b"\xEF\xBB\xBF";
        let body = bytes.strip_prefix(bom).unwrap_or(bytes);
        if let Some(first) = body.iter().find(|b| !b.is_ascii_whitespace())
            && *first != b'<'
        {
            return Err(StreamError::NotXml {
                peer: self.peer.clone(),
                excerpt: excerpt(bytes),
            });
        }
        Ok(())
    }

    async fn next(&mut self, doing: &'static str) -> Result<Owned, StreamError> {
        self.buf.clear();
        let read = tokio::time::timeout_at(
            self.deadline,
            self.reader.read_resolved_event_into_async(&mut self.buf),
        )
        .await;
        let (ns, event) = match read {
            Err(_) => return Err(self.deadline_error(doing)),
            Ok(Ok(pair)) => pair,
            Ok(Err(quick_xml::Error::Io(e))) => {
                let e = std::sync::Arc::try_unwrap(e).unwrap_or_else(|shared| {
                    std::io::Error::new(shared.kind(), shared.to_string())
                });
                return Err(self.io_error(e));
            }
            Ok(Err(e)) => {
                let reason = e.to_string();
                return Err(StreamError::BadXml {
                    peer: self.peer.clone(),
                    reason,
                    excerpt: self.head(),
                });
            }
        };
        Ok(match event {
            Event::Start(e) => Owned::Start(element(&ns, &e)),
            Event::Empty(e) => Owned::Empty(element(&ns, &e)),
            Event::End(_) => Owned::End,
            Event::Text(t) => Owned::Text(
                t.decode()
                    .map(|s| s.into_owned())
                    .unwrap_or_else(|_| String::from_utf8_lossy(&t).into_owned()),
            ),
            Event::CData(t) => Owned::Text(String::from_utf8_lossy(&t).into_owned()),
            Event::GeneralRef(r) => {
                let name = String::from_utf8_lossy(&r).into_owned();
                Owned::Text(resolve_ref(&name).map(String::from).unwrap_or_default())
            }
            Event::Eof => Owned::Eof,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => Owned::Skip,
        })
    }

    /// Read up to the answer's `<stream:stream>` start tag.
    pub async fn read_header(&mut self) -> Result<StreamHeader, StreamError> {
        loop {
            match self.next("reading the stream header").await? {
                Owned::Skip => continue,
                Owned::Text(t) if t.trim().is_empty() => continue,
                Owned::Text(_) => {
                    return Err(StreamError::NotXml {
                        peer: self.peer.clone(),
                        excerpt: self.head(),
                    });
                }
                Owned::Start(e) if e.is(NS_STREAM, "stream") => {
                    let attr = |k: &str| {
                        e.attrs
                            .iter()
                            .find(|(key, _)| key == k)
                            .map(|(_, v)| v.clone())
                    };
                    return Ok(StreamHeader {
                        content_ns: attr("xmlns"),
                        from: attr("from"),
                        to: attr("to"),
                        id: attr("id"),
                        version: attr("version"),
                    });
                }
                Owned::Empty(e) if e.is(NS_STREAM, "stream") => {
                    return Err(StreamError::Closed {
                        peer: self.peer.clone(),
                        when: "right in its stream header (an empty <stream:stream/>)",
                    });
                }
                Owned::Start(e) | Owned::Empty(e) => {
                    return Err(StreamError::Unexpected {
                        peer: self.peer.clone(),
                        got: e.tag(),
                        expected: "a <stream:stream> header",
                    });
                }
                Owned::End => {
                    return Err(StreamError::Unexpected {
                        peer: self.peer.clone(),
                        got: "a closing tag".into(),
                        expected: "a <stream:stream> header",
                    });
                }
                Owned::Eof => {
                    return Err(StreamError::Closed {
                        peer: self.peer.clone(),
                        when: "without answering the stream header",
                    });
                }
            }
        }
    }

    /// Read the next whole element below the stream root. Whitespace
    /// between elements (keep-alives) is skipped.
    pub async fn read_element(&mut self, doing: &'static str) -> Result<Element, StreamError> {
        let mut stack: Vec<Element> = Vec::new();
        loop {
            match self.next(doing).await? {
                Owned::Skip => {}
                Owned::Text(t) => {
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&t);
                    }
                }
                Owned::Start(e) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(StreamError::TooDeep {
                            peer: self.peer.clone(),
                        });
                    }
                    stack.push(e);
                }
                Owned::Empty(e) => match stack.last_mut() {
                    Some(top) => top.children.push(e),
                    None => return Ok(e),
                },
                Owned::End => match stack.pop() {
                    Some(done) => match stack.last_mut() {
                        Some(top) => top.children.push(done),
                        None => return Ok(done),
                    },
                    None => {
                        return Err(StreamError::Closed {
                            peer: self.peer.clone(),
                            when: "by closing the stream (</stream:stream>)",
                        });
                    }
                },
                Owned::Eof => {
                    return Err(StreamError::Closed {
                        peer: self.peer.clone(),
                        when: if stack.is_empty() {
                            "after its stream header"
                        } else {
                            "in the middle of an element"
                        },
                    });
                }
            }
        }
    }

    fn error_from(&self, e: &Element) -> Option<StreamError> {
        stream_error(e).map(|(condition, text)| StreamError::StreamError {
            peer: self.peer.clone(),
            condition,
            text,
        })
    }

    /// The answer's `<stream:features>`; a `<stream:error>` fails with its
    /// condition and text.
    pub async fn read_features(&mut self) -> Result<Features, StreamError> {
        let e = self.read_element("waiting for <stream:features>").await?;
        if let Some(err) = self.error_from(&e) {
            return Err(err);
        }
        if !e.is(NS_STREAM, "features") {
            return Err(StreamError::Unexpected {
                peer: self.peer.clone(),
                got: e.tag(),
                expected: "<stream:features>",
            });
        }
        Ok(Features::from_element(&e))
    }

    /// Send `<starttls/>` and wait for `<proceed/>`.
    pub async fn starttls(&mut self) -> Result<(), StreamError> {
        self.send(&format!("<starttls xmlns='{NS_TLS}'/>")).await?;
        let e = self.read_element("waiting for <proceed/>").await?;
        if let Some(err) = self.error_from(&e) {
            return Err(err);
        }
        if e.is(NS_TLS, "proceed") {
            Ok(())
        } else if e.is(NS_TLS, "failure") {
            Err(StreamError::TlsRefused {
                peer: self.peer.clone(),
            })
        } else {
            Err(StreamError::Unexpected {
                peer: self.peer.clone(),
                got: e.tag(),
                expected: "<proceed/>",
            })
        }
    }

    /// The byte stream back, for the TLS handshake; nothing may be left
    /// unread (after `<proceed/>` the next bytes belong to TLS).
    pub fn into_inner(self) -> Result<S, StreamError> {
        let buffered = self.reader.get_ref().buffer().len();
        if buffered > 0 {
            return Err(StreamError::DataAfterProceed {
                peer: self.peer,
                count: buffered,
            });
        }
        Ok(self.reader.into_inner().into_inner().inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(bytes: &'static [u8]) -> (Result<StreamHeader, StreamError>, Vec<u8>) {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let serve = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut seen = vec![0u8; 4096];
            let n = server.read(&mut seen).await.unwrap_or(0);
            let _ = server.write_all(bytes).await;
            seen.truncate(n);
            (server, seen)
        });
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut s = XmppStream::new(client, "test", deadline, Duration::from_secs(2));
        let mut result = s.send(&opening("contoso.com", "partner.example")).await;
        if result.is_ok() {
            result = s.first_byte(Duration::from_secs(1)).await;
        }
        let header = match result {
            Ok(()) => s.read_header().await,
            Err(e) => Err(e),
        };
        let (_server, seen) = serve.await.expect("server task");
        (header, seen)
    }

    #[tokio::test]
    async fn header_attributes_in_any_order() {
        let (h, seen) = answer(
            b"<?xml version='1.0'?><stream:stream version='1.0' id='abc' xmlns:stream='http://etherx.jabber.org/streams' from='contoso.com' xmlns='jabber:server' xmlns:db='jabber:server:dialback'>",
        )
        .await;
        let h = h.expect("header");
        assert_eq!(h.from.as_deref(), Some("contoso.com"));
        assert_eq!(h.id.as_deref(), Some("abc"));
        assert_eq!(h.content_ns.as_deref(), Some(NS_SERVER));
        let seen = String::from_utf8(seen).expect("utf8");
        assert!(seen.contains("to='contoso.com'") && seen.contains("xmlns:db="));
    }

    #[tokio::test]
    async fn non_xml_is_quoted() {
        let (h, _) = answer(b"SSH-2.0-OpenSSH_9.6\r\n").await;
        let e = h.expect_err("not xml");
        assert!(matches!(e, StreamError::NotXml { .. }), "{e}");
        assert!(e.to_string().contains("SSH-2.0"), "{e}");
    }

    #[tokio::test]
    async fn other_root_is_unexpected() {
        let (h, _) = answer(b"<html><body>hi</body></html>").await;
        let e = h.expect_err("html");
        assert!(e.to_string().contains("<html>"), "{e}");
    }

    #[tokio::test]
    async fn features_and_errors() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let _ = server
                .write_all(
                    b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>\n \
                      <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>\
                      <dialback xmlns='urn:xmpp:features:dialback'/></stream:features>\
                      <stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
                      <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no &amp; such &#x41;</text></stream:error>",
                )
                .await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut s = XmppStream::new(client, "test", deadline, Duration::from_secs(2));
        s.read_header().await.expect("header");
        let f = s.read_features().await.expect("features");
        assert!(f.starttls && f.starttls_required && f.dialback);
        let e = s.read_features().await.expect_err("error");
        assert_eq!(e.condition(), Some("host-unknown"));
        assert!(
            e.to_string().ends_with("<host-unknown>: no & such A"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn endless_nesting_and_floods_are_capped() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let _ = server
                .write_all(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>")
                .await;
            for _ in 0..100 {
                let _ = server.write_all(b"<a>").await;
            }
        });
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut s = XmppStream::new(client, "test", deadline, Duration::from_secs(2));
        s.read_header().await.expect("header");
        let e = s.read_element("x").await.expect_err("too deep");
        assert!(matches!(e, StreamError::TooDeep { .. }), "{e}");

        let (client, mut server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let _ = server
                .write_all(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><x>")
                .await;
            let chunk = vec![b'a'; 8192];
            for _ in 0..100 {
                if server.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        });
        let mut s = XmppStream::new(client, "test", deadline, Duration::from_secs(2));
        s.read_header().await.expect("header");
        let e = s.read_element("x").await.expect_err("too much");
        assert!(matches!(e, StreamError::TooMuch { .. }), "{e}");
    }
}
