//! One TCP connection to a DNS server: length-prefixed messages (RFC 1035
//! 4.2.2), every connect, write and read under the topology's timeout.
//!
//! TCP and not UDP: an update resent over UDP after a lost answer can be
//! applied twice, and only the raw answer bytes let edgefail read the TSIG
//! error that hickory's client turns into a misleading protocol error.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::{Action, DnsError};

pub struct Connection {
    server: SocketAddr,
    timeout: Duration,
    stream: TcpStream,
}

impl Connection {
    pub async fn open(server: SocketAddr, timeout: Duration) -> Result<Connection, DnsError> {
        let secs = timeout.as_secs();
        match tokio::time::timeout(timeout, TcpStream::connect(server)).await {
            Err(_) => Err(DnsError::ConnectTimeout { server, secs }),
            Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => {
                Err(DnsError::ConnectRefused { server })
            }
            Ok(Err(source)) => Err(DnsError::Connect { server, source }),
            Ok(Ok(stream)) => {
                // Small messages, one at a time: don't let Nagle delay them.
                let _ = stream.set_nodelay(true);
                Ok(Connection {
                    server,
                    timeout,
                    stream,
                })
            }
        }
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// Send one message and read the answer whose id is `id`.
    pub async fn exchange(
        &mut self,
        request: &[u8],
        id: u16,
        action: &Action,
    ) -> Result<Vec<u8>, DnsError> {
        let server = self.server;
        let secs = self.timeout.as_secs();
        let io = |source: std::io::Error| DnsError::Io {
            server,
            action: action.clone(),
            source,
        };
        let Ok(len) = u16::try_from(request.len()) else {
            return Err(DnsError::Malformed {
                server,
                action: action.clone(),
                problem: format!(
                    "the request is {} bytes, over the 65535 of TCP DNS",
                    request.len()
                ),
            });
        };
        let work = async {
            let mut framed = Vec::with_capacity(request.len() + 2);
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(request);
            self.stream.write_all(&framed).await.map_err(io)?;
            loop {
                let mut prefix = [0u8; 2];
                self.stream.read_exact(&mut prefix).await.map_err(|e| {
                    if e.kind() == ErrorKind::UnexpectedEof {
                        DnsError::Malformed {
                            server,
                            action: action.clone(),
                            problem: "the server closed the connection without answering".into(),
                        }
                    } else {
                        io(e)
                    }
                })?;
                let mut answer = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
                self.stream.read_exact(&mut answer).await.map_err(io)?;
                if answer.len() < 12 {
                    return Err(DnsError::Malformed {
                        server,
                        action: action.clone(),
                        problem: format!(
                            "a {}-byte answer is shorter than a DNS header",
                            answer.len()
                        ),
                    });
                }
                // A stray answer to an earlier request on this connection is
                // not ours: skip it rather than misread it.
                if u16::from_be_bytes([answer[0], answer[1]]) == id {
                    return Ok(answer);
                }
                tracing::debug!(%server, "skipping an answer with another message id");
            }
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(DnsError::Timeout {
                server,
                action: action.clone(),
                secs,
            }),
        }
    }
}
