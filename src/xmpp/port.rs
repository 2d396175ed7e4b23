//! What a TCP connect to a port says about it: open, closed (nothing
//! listens), filtered (dropped on the way) or unreachable.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::TcpStream;

/// A port's state as one connection attempt saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PortState {
    /// A connection was accepted.
    Open,
    /// Refused at once: the host answered, nothing listens on the port.
    Closed,
    /// No answer before the connect timeout: something drops the packets.
    Filtered,
    /// The host or network is unreachable, or the attempt failed otherwise.
    Unreachable,
}

impl PortState {
    pub fn as_str(self) -> &'static str {
        match self {
            PortState::Open => "open",
            PortState::Closed => "closed",
            PortState::Filtered => "filtered",
            PortState::Unreachable => "unreachable",
        }
    }

    /// Whether the path from outside reaches the host. Closed counts: a
    /// refusal comes from the host itself (or a firewall that rejects with a
    /// reset, which a connect cannot tell apart).
    pub fn path_open(self) -> bool {
        matches!(self, PortState::Open | PortState::Closed)
    }

    /// What the state means while the pool's services are stopped (step 6).
    pub fn meaning_before_start(self) -> &'static str {
        match self {
            PortState::Open => {
                "something already accepts connections (the services were stopped in step 2: check what listens)"
            }
            PortState::Closed => {
                "the path is open and nothing listens yet, as expected before step 7 starts the services"
            }
            PortState::Filtered => "no answer at all: a firewall drops the connection",
            PortState::Unreachable => "no route to the host",
        }
    }
}

impl std::fmt::Display for PortState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One connection attempt and what came of it.
#[derive(Debug, Clone, Serialize)]
pub struct PortProbe {
    pub addr: SocketAddr,
    pub state: PortState,
    pub elapsed_ms: u64,
    /// The system's error, when the attempt failed.
    pub error: Option<String>,
}

impl PortProbe {
    /// "closed (refused after 0.0s)" and the like.
    pub fn describe(&self) -> String {
        let secs = self.elapsed_ms as f64 / 1000.0;
        match self.state {
            PortState::Open => format!("open (accepted after {secs:.1}s)"),
            PortState::Closed => format!("closed (refused after {secs:.1}s)"),
            PortState::Filtered => format!("filtered (no answer in {secs:.1}s)"),
            PortState::Unreachable => format!(
                "unreachable ({} after {secs:.1}s)",
                self.error.as_deref().unwrap_or("failed")
            ),
        }
    }
}

fn state_of(error: &std::io::Error) -> PortState {
    match error.kind() {
        ErrorKind::ConnectionRefused => PortState::Closed,
        // The kernel gave up on its own (shorter than our timeout).
        ErrorKind::TimedOut => PortState::Filtered,
        _ => PortState::Unreachable,
    }
}

/// Connect with a deadline; the stream when open, else the classified failure.
pub async fn connect(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<(TcpStream, PortProbe), PortProbe> {
    let started = Instant::now();
    let result = tokio::time::timeout(timeout, TcpStream::connect(addr)).await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(Ok(stream)) => Ok((
            stream,
            PortProbe {
                addr,
                state: PortState::Open,
                elapsed_ms,
                error: None,
            },
        )),
        Ok(Err(e)) => Err(PortProbe {
            addr,
            state: state_of(&e),
            elapsed_ms,
            error: Some(e.to_string().to_lowercase()),
        }),
        Err(_) => Err(PortProbe {
            addr,
            state: PortState::Filtered,
            elapsed_ms,
            error: Some(format!("no answer within {} ms", timeout.as_millis())),
        }),
    }
}

/// Classify a port; an accepted connection is closed again at once.
pub async fn classify(addr: SocketAddr, timeout: Duration) -> PortProbe {
    match connect(addr, timeout).await {
        Ok((_stream, probe)) => probe,
        Err(probe) => probe,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_is_closed_and_passes() {
        let e = std::io::Error::from(ErrorKind::ConnectionRefused);
        assert_eq!(state_of(&e), PortState::Closed);
        assert!(PortState::Closed.path_open());
        assert!(!PortState::Filtered.path_open());
        let e = std::io::Error::from(ErrorKind::HostUnreachable);
        assert_eq!(state_of(&e), PortState::Unreachable);
    }
}
