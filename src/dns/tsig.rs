//! TSIG (RFC 8945): signing updates, and reading the server's verdict from
//! the raw answer.
//!
//! BIND answers a wrong secret (BADSIG) or an unknown key (BADKEY) with
//! NOTAUTH and an unsigned TSIG record whose error field says which; hickory
//! 0.26.3's verifier only sees the empty MAC and reports "truncated HMACs".
//! So the error field is read here first, and the MAC verified after.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::TSigner;
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};

use super::error::{Action, DnsError};
use super::fqdn;
use crate::secret::TsigKey;

/// How far apart the two clocks may be; BIND and nsupdate use 300 s.
const FUDGE: u16 = 300;

/// A TSIG key ready to sign with. Never prints the secret.
#[derive(Clone)]
pub struct Signer {
    signer: TSigner,
    name: String,
    algorithm: String,
    /// Seconds added to this machine's clock when signing; 0 except to
    /// rehearse a skewed clock.
    clock_offset: i64,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn new(key: &TsigKey) -> Result<Signer, DnsError> {
        let sign_error = |problem: String| DnsError::Sign {
            key: key.name.clone(),
            problem,
        };
        let algorithm = match key.algorithm.to_ascii_lowercase().as_str() {
            "hmac-sha256" => TsigAlgorithm::HmacSha256,
            "hmac-sha384" => TsigAlgorithm::HmacSha384,
            "hmac-sha512" => TsigAlgorithm::HmacSha512,
            other => {
                return Err(sign_error(format!(
                    "algorithm '{}' is not supported: use hmac-sha256, hmac-sha384 or hmac-sha512",
                    crate::names::printable(other)
                )));
            }
        };
        let name = fqdn(&key.name).map_err(|e| sign_error(e.to_string()))?;
        let signer = TSigner::new(key.secret.expose().to_vec(), algorithm, name, FUDGE)
            // The error names the algorithm only; it never holds the key.
            .map_err(|e| sign_error(e.to_string()))?;
        Ok(Signer {
            signer,
            name: key.name.clone(),
            algorithm: key.algorithm.to_ascii_lowercase(),
            clock_offset: 0,
        })
    }

    /// Sign as if this machine's clock were `seconds` ahead (negative:
    /// behind), to rehearse what a skewed clock does.
    pub fn with_clock_offset(mut self, seconds: i64) -> Signer {
        self.clock_offset = seconds;
        self
    }

    pub fn key_name(&self) -> &str {
        &self.name
    }

    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }

    fn now(&self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        now.saturating_add_signed(self.clock_offset)
    }

    /// Sign `message` in place; returns what checks the answer.
    pub fn sign(&self, message: &mut Message) -> Result<Verifier, DnsError> {
        let signed_at = self.now();
        let verifier = message
            .finalize(&self.signer, signed_at)
            .map_err(|e| DnsError::Sign {
                key: self.name.clone(),
                problem: e.to_string(),
            })?;
        Ok(Verifier {
            inner: verifier,
            signed_at,
        })
    }
}

/// Checks the answer to one signed request.
pub struct Verifier {
    inner: Option<hickory_proto::rr::TSigVerifier>,
    signed_at: u64,
}

impl Verifier {
    /// Parse `raw` and make sure it is the server's signed answer; a TSIG
    /// error in it becomes [`DnsError::Tsig`] with the real reason.
    pub fn check(
        mut self,
        raw: &[u8],
        server: SocketAddr,
        action: &Action,
    ) -> Result<Message, DnsError> {
        let answer = Message::from_vec(raw).map_err(|e| DnsError::Malformed {
            server,
            action: action.clone(),
            problem: e.to_string(),
        })?;
        let rcode = answer.metadata.response_code;
        let Some(signature) = answer.signature.as_deref() else {
            // An unsigned failure is still a failure worth naming (an
            // unsigned update is REFUSED); an unsigned success proves nothing.
            if rcode == ResponseCode::NoError {
                return Err(DnsError::Unsigned {
                    server,
                    action: action.clone(),
                    rcode,
                });
            }
            return Ok(answer);
        };
        if let Some(error) = signature.data.error {
            let skew = (error == TsigError::BadTime)
                .then(|| server_time(&signature.data.other))
                .flatten()
                .map(|t| t as i64 - self.signed_at as i64);
            return Err(DnsError::Tsig {
                server,
                action: action.clone(),
                error,
                skew,
            });
        }
        // hickory's verifier subtracts the fudge from the time unchecked: a
        // hostile answer must not be able to make that overflow.
        if signature.data.time < u64::from(signature.data.fudge) {
            return Err(DnsError::BadAnswerSignature {
                server,
                action: action.clone(),
                problem: "its time is earlier than its fudge".into(),
            });
        }
        if let Some(verifier) = self.inner.as_mut() {
            verifier
                .verify(raw)
                .map_err(|e| DnsError::BadAnswerSignature {
                    server,
                    action: action.clone(),
                    problem: e.to_string(),
                })?;
        }
        Ok(answer)
    }
}

/// BADTIME answers carry the server's clock as 48 bits of seconds.
fn server_time(other: &[u8]) -> Option<u64> {
    let bytes: [u8; 6] = other.try_into().ok()?;
    Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn debug_hides_the_secret() {
        let key = TsigKey {
            name: "k".into(),
            algorithm: "hmac-sha256".into(),
            secret: Secret::new(b"topsecret".to_vec()),
        };
        let signer = Signer::new(&key).unwrap();
        assert!(!format!("{signer:?}").contains("topsecret"));
    }

    #[test]
    fn reads_the_server_clock() {
        assert_eq!(server_time(&[0, 0, 0, 0, 1, 2]), Some(258));
        assert_eq!(server_time(&[1, 2]), None);
    }
}
