//! TSIG secrets: where they come from, and a type that never prints them.

use std::fmt;
use std::path::{Path, PathBuf};

/// Secret bytes. `Debug` and `Display` print a placeholder, never the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a secret could not be had; no variant carries secret material.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read key file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "key file {} is readable by every user (mode {mode:o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    WorldReadable { path: PathBuf, mode: u32 },
    #[error("key file {} has no key named \"{name}\" (it has: {found})", path.display())]
    NoSuchKey {
        path: PathBuf,
        name: String,
        found: String,
    },
    #[error("key file {}: {problem}", path.display())]
    Malformed { path: PathBuf, problem: String },
    #[error("environment variable {name} is not set")]
    EnvUnset { name: String },
    #[error("{origin}: the secret is not valid base64")]
    NotBase64 { origin: String },
    #[error("the topology names neither secret_file nor secret_env for the TSIG key")]
    NoSource,
}

/// A TSIG key ready to sign with.
#[derive(Debug, Clone)]
pub struct TsigKey {
    pub name: String,
    pub algorithm: String,
    pub secret: Secret,
}

/// Where a TSIG key's secret comes from, as the topology names it.
#[derive(Debug, Clone, Copy)]
pub struct KeySource<'a> {
    pub name: &'a str,
    pub algorithm: &'a str,
    /// A key file as `tsig-keygen` writes it.
    pub file: Option<&'a Path>,
    /// An environment variable holding the base64 secret.
    pub env: Option<&'a str>,
}

/// Load the TSIG key `source` describes.
pub fn load_tsig(source: KeySource<'_>) -> Result<TsigKey, SecretError> {
    let secret = if let Some(path) = source.file {
        read_key_file(path, source.name)?
    } else if let Some(var) = source.env {
        let value = std::env::var(var).map_err(|_| SecretError::EnvUnset {
            name: var.to_string(),
        })?;
        decode(value.trim(), &format!("environment variable {var}"))?
    } else {
        return Err(SecretError::NoSource);
    };
    Ok(TsigKey {
        name: source.name.to_string(),
        algorithm: source.algorithm.to_string(),
        secret,
    })
}

/// Refuse key files any user may read: a leaked TSIG key lets anyone
/// rewrite the zone.
pub fn check_key_file_mode(path: &Path) -> Result<(), SecretError> {
    let meta = std::fs::metadata(path).map_err(|source| SecretError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    match crate::platform::world_readable(&meta) {
        Some(mode) => Err(SecretError::WorldReadable {
            path: path.to_path_buf(),
            mode,
        }),
        None => Ok(()),
    }
}

/// Read `key "name" { algorithm ...; secret "..."; };` as tsig-keygen and
/// ddns-confgen write it, and return the secret of the key named `name`.
pub fn read_key_file(path: &Path, name: &str) -> Result<Secret, SecretError> {
    check_key_file_mode(path)?;
    let text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let keys = parse_key_file(&text).map_err(|problem| SecretError::Malformed {
        path: path.to_path_buf(),
        problem,
    })?;
    let wanted = name.trim_end_matches('.');
    match keys
        .iter()
        .find(|(n, _)| n.trim_end_matches('.').eq_ignore_ascii_case(wanted))
    {
        Some((_, secret)) => decode(secret, &format!("key file {}", path.display())),
        None => Err(SecretError::NoSuchKey {
            path: path.to_path_buf(),
            name: name.to_string(),
            found: if keys.is_empty() {
                "none".into()
            } else {
                keys.iter()
                    .map(|(n, _)| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        }),
    }
}

/// (name, base64 secret) of every key block; comments (`#`, `//`) ignored.
fn parse_key_file(text: &str) -> Result<Vec<(String, String)>, String> {
    let cleaned: String = text
        .lines()
        .map(without_comment)
        .collect::<Vec<_>>()
        .join("\n");
    let mut keys = Vec::new();
    let mut rest = cleaned.as_str();
    while let Some(at) = find_word(rest, "key") {
        rest = &rest[at + 3..];
        let name = quoted(rest).ok_or("a `key` statement without a quoted name")?;
        let open = rest.find('{').ok_or("a `key` statement without `{`")?;
        let close = rest[open..]
            .find('}')
            .map(|c| c + open)
            .ok_or("a `key` block without `}`")?;
        let body = &rest[open + 1..close];
        let secret = body
            .split(';')
            .map(str::trim)
            .find_map(|stmt| stmt.strip_prefix("secret"))
            .and_then(quoted)
            .ok_or_else(|| format!("key \"{name}\" has no `secret \"...\";` line"))?;
        keys.push((name, secret));
        rest = &rest[close + 1..];
    }
    Ok(keys)
}

/// The line up to a `#` or `//` comment outside quotes: a base64 secret
/// may itself contain `//`.
fn without_comment(line: &str) -> &str {
    let mut quoted = false;
    let mut prev = '\0';
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return &line[..i],
            '/' if !quoted && prev == '/' => return &line[..i - 1],
            _ => {}
        }
        prev = c;
    }
    line
}

fn find_word(hay: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = hay[from..].find(word) {
        let at = from + i;
        let before_ok = at == 0 || !hay[..at].ends_with(|c: char| c.is_alphanumeric() || c == '-');
        let after = &hay[at + word.len()..];
        if before_ok && after.starts_with(char::is_whitespace) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

fn quoted(s: &str) -> Option<String> {
    let start = s.find('"')?;
    let end = s[start + 1..].find('"')? + start + 1;
    Some(s[start + 1..end].to_string())
}

fn decode(b64: &str, origin: &str) -> Result<Secret, SecretError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map(Secret::new)
        .map_err(|_| SecretError::NotBase64 {
            origin: origin.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tsig_keygen_output() {
        let text = "key \"edgefail\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0\";\n};\n";
        let keys = parse_key_file(text).unwrap();
        assert_eq!(keys, vec![("edgefail".to_string(), "c2VjcmV0".to_string())]);
    }

    #[test]
    fn a_secret_with_slashes_is_not_a_comment() {
        let text = "// made by tsig-keygen\nkey \"k\" { # the key\n\talgorithm hmac-sha256;\n\tsecret \"ab//cd#e+/==\"; // here\n};\n";
        let keys = parse_key_file(text).unwrap();
        assert_eq!(keys, vec![("k".to_string(), "ab//cd#e+/==".to_string())]);
    }

    #[test]
    fn never_prints() {
        let s = Secret::new(b"topsecret".to_vec());
        assert!(!format!("{s:?} {s}").contains("topsecret"));
    }
}
