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

/// The largest key file read: a key statement is a few lines.
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Why a secret could not be had; no variant carries secret material, and
/// a key file's problems name the line, never its text.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read key file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "key file {} is larger than {MAX_KEY_FILE_BYTES} bytes: a key file holds a key statement of a few lines; check dns.tsig.secret_file",
        path.display()
    )]
    TooLarge { path: PathBuf },
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
    #[error("key file {}, line {line}: {problem}", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    #[error(
        "key file {}, line {line}: key \"{name}\" uses {found}, but dns.tsig.algorithm says {wanted}",
        path.display()
    )]
    WrongAlgorithm {
        path: PathBuf,
        line: usize,
        name: String,
        found: String,
        wanted: String,
    },
    #[error("environment variable {name} is not set")]
    EnvUnset { name: String },
    #[error("environment variable {name} is empty")]
    EnvEmpty { name: String },
    #[error(
        "environment variable {name} holds an nsupdate -y string (algorithm:name:secret); it must hold the base64 secret alone (the name and algorithm go in dns.tsig)"
    )]
    EnvKeyString { name: String },
    #[error("{origin}: the secret is not valid base64")]
    NotBase64 { origin: String },
    #[error("{origin}: the secret is empty")]
    Empty { origin: String },
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
        let key = read_key_file(path, source.name)?;
        if !same_algorithm(&key.algorithm, source.algorithm) {
            return Err(SecretError::WrongAlgorithm {
                path: path.to_path_buf(),
                line: key.line,
                name: crate::names::printable(source.name),
                found: crate::names::printable(&key.algorithm),
                wanted: crate::names::printable(source.algorithm),
            });
        }
        key.secret
    } else if let Some(var) = source.env {
        secret_from_env(var)?
    } else {
        return Err(SecretError::NoSource);
    };
    Ok(TsigKey {
        name: source.name.to_string(),
        algorithm: source.algorithm.to_string(),
        secret,
    })
}

/// The secret held by environment variable `var`: set, not empty, base64.
pub fn secret_from_env(var: &str) -> Result<Secret, SecretError> {
    let value = std::env::var(var).map_err(|_| SecretError::EnvUnset {
        name: var.to_string(),
    })?;
    if value.trim().is_empty() {
        return Err(SecretError::EnvEmpty {
            name: var.to_string(),
        });
    }
    if value.contains(':') && looks_like_secret(&value) {
        return Err(SecretError::EnvKeyString {
            name: var.to_string(),
        });
    }
    decode(value.trim(), &format!("environment variable {var}"))
}

/// BIND spells `hmac-sha256` in any case; the topology's validation
/// already keeps its side to the three supported names.
fn same_algorithm(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Refuse key files any user may read: a leaked TSIG key lets anyone
/// rewrite the zone.
pub fn check_key_file_mode(path: &Path) -> Result<(), SecretError> {
    let meta = std::fs::metadata(path).map_err(|source| SecretError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    check_mode(path, &meta)
}

fn check_mode(path: &Path, meta: &std::fs::Metadata) -> Result<(), SecretError> {
    match crate::platform::world_readable(meta) {
        Some(mode) => Err(SecretError::WorldReadable {
            path: path.to_path_buf(),
            mode,
        }),
        None => Ok(()),
    }
}

/// A key read from a key file.
#[derive(Debug)]
pub struct FileKey {
    pub algorithm: String,
    pub secret: Secret,
    /// Where its `key` statement starts.
    pub line: usize,
}

/// Read a key file (one or more BIND `key` statements, as tsig-keygen and
/// ddns-confgen write them) and return the key named `name`. The file must
/// be a regular file of at most [`MAX_KEY_FILE_BYTES`], not world-readable.
pub fn read_key_file(path: &Path, name: &str) -> Result<FileKey, SecretError> {
    use std::io::Read as _;
    let read_error = |source| SecretError::Read {
        path: path.to_path_buf(),
        source,
    };
    let (file, meta) = crate::platform::open_regular(path).map_err(read_error)?;
    check_mode(path, &meta)?;
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(SecretError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(SecretError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = e
            .as_bytes()
            .get(..e.utf8_error().valid_up_to())
            .map_or(1, |b| 1 + b.iter().filter(|c| **c == b'\n').count());
        SecretError::Malformed {
            path: path.to_path_buf(),
            line,
            problem: "the file is not UTF-8 text".into(),
        }
    })?;
    let keys = parse_key_file(&text).map_err(|(line, problem)| SecretError::Malformed {
        path: path.to_path_buf(),
        line,
        problem,
    })?;
    let wanted = name.trim_end_matches('.');
    let Some(key) = keys
        .iter()
        .find(|k| k.name.trim_end_matches('.').eq_ignore_ascii_case(wanted))
    else {
        return Err(SecretError::NoSuchKey {
            path: path.to_path_buf(),
            name: crate::names::printable(name),
            found: if keys.is_empty() {
                "none".into()
            } else {
                keys.iter()
                    .map(|k| {
                        if looks_like_secret(&k.name) {
                            format!("a key at line {} whose name looks like a secret", k.line)
                        } else {
                            format!("\"{}\"", crate::names::printable(&k.name))
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        });
    };
    let secret = decode(
        &key.secret,
        &format!("key file {}, line {}", path.display(), key.secret_line),
    )?;
    Ok(FileKey {
        algorithm: key.algorithm.clone(),
        secret,
        line: key.line,
    })
}

/// Does `text` look like a TSIG secret (base64 of 15 bytes or more), alone
/// or as the last part of an nsupdate `-y [algorithm:]name:secret` string?
/// Used to keep a secret written into the wrong field out of messages.
pub fn looks_like_secret(text: &str) -> bool {
    use base64::Engine as _;
    let text = text.trim();
    let last = text.rsplit(':').next().unwrap_or(text).trim();
    if last.len() < 20 || !last.len().is_multiple_of(4) {
        return false;
    }
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(last) else {
        return false;
    };
    let has = |f: fn(&char) -> bool| last.chars().any(|c| f(&c));
    let mixed =
        has(char::is_ascii_uppercase) && has(char::is_ascii_lowercase) && has(char::is_ascii_digit);
    // Padding or `+` marks base64 (tsig-keygen's 32-byte secrets always end
    // in `=`). Without either, only a long mix of cases and digits with no
    // `/` counts, so that a path such as /etc/edgefail/contosokey or a
    // variable such as EdgefailTsigKey2024 is not taken for a secret.
    bytes.len() >= 15
        && (last.ends_with('=')
            || last.contains('+')
            || (last.len() >= 32 && mixed && !last.contains('/')))
}

/// The names of the keys in key-file text, or the line and problem that
/// make it unreadable: what edgefail accepts, for comparing with BIND.
pub fn key_file_names(text: &str) -> Result<Vec<String>, (usize, String)> {
    parse_key_file(text).map(|keys| keys.into_iter().map(|k| k.name).collect())
}

/// One `key` statement of a key file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyDef {
    name: String,
    algorithm: String,
    secret: String,
    line: usize,
    secret_line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A word or a quoted string (BIND takes either where a string goes).
    Str(String),
    Open,
    Close,
    Semi,
    /// `/` or `!`: never part of a key statement.
    Special,
}

/// Split named.conf text into tokens with their lines: `#`, `//` and
/// `/* */` comments dropped, quoted strings unquoted (backslash escapes the
/// next character). Errors name the line only.
fn tokens(text: &str) -> Result<Vec<(Tok, usize)>, (usize, String)> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => skip_line(&mut chars, &mut line),
            '/' if chars.peek() == Some(&'/') => skip_line(&mut chars, &mut line),
            '/' if chars.peek() == Some(&'*') => {
                let opened = line;
                chars.next();
                let mut prev = '\0';
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                    }
                    if prev == '*' && c == '/' {
                        closed = true;
                        break;
                    }
                    prev = c;
                }
                if !closed {
                    return Err((opened, "a /* comment is never closed".into()));
                }
            }
            '{' => out.push((Tok::Open, line)),
            '}' => out.push((Tok::Close, line)),
            ';' => out.push((Tok::Semi, line)),
            '"' => {
                let opened = line;
                let mut s = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => {
                            if let Some(next) = chars.next() {
                                if next == '\n' {
                                    line += 1;
                                }
                                s.push(next);
                            }
                        }
                        '\n' => {
                            line += 1;
                            s.push(c);
                        }
                        c => s.push(c),
                    }
                }
                if !closed {
                    return Err((opened, "a quoted string is never closed".into()));
                }
                out.push((Tok::Str(s), opened));
            }
            c => {
                let mut s = String::from(c);
                // `/` and `!` are tokens of their own in named.conf (address
                // prefixes, negation), and a `#` comment may start inside a
                // word, as in BIND's lexer.
                if matches!(c, '/' | '!') {
                    out.push((Tok::Special, line));
                    continue;
                }
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace()
                        || matches!(next, '{' | '}' | ';' | '"' | '#' | '/' | '!')
                    {
                        break;
                    }
                    s.push(next);
                    chars.next();
                }
                out.push((Tok::Str(s), line));
            }
        }
    }
    Ok(out)
}

fn skip_line(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, line: &mut usize) {
    for c in chars.by_ref() {
        if c == '\n' {
            *line += 1;
            return;
        }
    }
}

/// Could BIND read `name` as a domain name (labels of 1 to 63 bytes, 255
/// in all)? Key names are domain names, but any bytes may stand in a label.
fn dns_name_text(name: &str) -> bool {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    !trimmed.is_empty()
        && name.len() <= 254
        && trimmed.split('.').all(|l| (1..=63).contains(&l.len()))
}

/// The algorithms BIND knows for TSIG, with an optional `-bits` truncation.
fn known_algorithm(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let base = match lower.rsplit_once('-') {
        Some((base, bits)) if bits.chars().all(|c| c.is_ascii_digit()) && base != "hmac" => base,
        _ => lower.as_str(),
    };
    matches!(
        base,
        "hmac-md5" | "hmac-sha1" | "hmac-sha224" | "hmac-sha256" | "hmac-sha384" | "hmac-sha512"
    ) || lower == "hmac-md5.sig-alg.reg.int"
}

/// Every `key` statement of a key file, by named.conf's grammar:
/// `key NAME { algorithm ALG; secret "BASE64"; };`, the name quoted or not,
/// several keys in one file, comments anywhere. Anything else is refused
/// with the line it is on; no message holds the file's text.
fn parse_key_file(text: &str) -> Result<Vec<KeyDef>, (usize, String)> {
    use base64::Engine as _;
    let toks = tokens(text)?;
    let mut keys: Vec<KeyDef> = Vec::new();
    let mut it = toks.into_iter().peekable();
    let last_line = text.lines().count().max(1);
    let expect = |it: &mut std::iter::Peekable<std::vec::IntoIter<(Tok, usize)>>,
                  want: &Tok,
                  what: &str|
     -> Result<usize, (usize, String)> {
        match it.next() {
            Some((t, line)) if &t == want => Ok(line),
            Some((_, line)) => Err((line, format!("expected {what} here"))),
            None => Err((last_line, format!("the file ends where {what} should be"))),
        }
    };
    while let Some((tok, line)) = it.next() {
        match tok {
            Tok::Str(word) if word.eq_ignore_ascii_case("key") => {}
            _ => {
                return Err((
                    line,
                    "expected a `key` statement: a key file holds only key statements".into(),
                ));
            }
        }
        let name = match it.next() {
            Some((Tok::Str(name), _)) => name,
            Some((_, l)) => return Err((l, "expected the key's name after `key`".into())),
            None => return Err((line, "the file ends after `key`".into())),
        };
        if !dns_name_text(&name) {
            return Err((line, "the key's name is not a valid DNS name".into()));
        }
        expect(&mut it, &Tok::Open, "`{` opening the key's clauses")?;
        let mut algorithm: Option<String> = None;
        let mut secret: Option<(String, usize)> = None;
        loop {
            let (tok, l) = it.next().ok_or((
                last_line,
                "the key statement is never closed with `};`".to_string(),
            ))?;
            let clause = match tok {
                Tok::Close => break,
                Tok::Str(word) => word.to_ascii_lowercase(),
                _ => return Err((l, "expected `algorithm` or `secret` here".into())),
            };
            let value = match it.next() {
                Some((Tok::Str(v), _)) => v,
                Some((_, l2)) => return Err((l2, "expected the clause's value here".into())),
                None => return Err((l, "the file ends inside a key statement".into())),
            };
            expect(&mut it, &Tok::Semi, "`;` ending the clause")?;
            match clause.as_str() {
                "algorithm" if algorithm.is_some() => {
                    return Err((l, "`algorithm` is given twice".into()));
                }
                "algorithm" => {
                    if !known_algorithm(&value) {
                        return Err((l, "the algorithm is not one BIND knows (hmac-sha256, hmac-sha384, hmac-sha512, ...)".into()));
                    }
                    algorithm = Some(value);
                }
                "secret" if secret.is_some() => {
                    return Err((l, "`secret` is given twice".into()));
                }
                "secret" => {
                    if base64::engine::general_purpose::STANDARD
                        .decode(value.split_whitespace().collect::<String>())
                        .is_err()
                    {
                        return Err((l, "the secret is not valid base64".into()));
                    }
                    secret = Some((value, l));
                }
                _ => {
                    return Err((
                        l,
                        "a key statement holds only `algorithm` and `secret` clauses".into(),
                    ));
                }
            }
        }
        expect(&mut it, &Tok::Semi, "`;` after the key statement's `}`")?;
        let (Some(algorithm), Some((secret, secret_line))) = (algorithm, secret) else {
            return Err((line, "the key needs both `algorithm` and `secret`".into()));
        };
        if keys.iter().any(|k| {
            k.name
                .trim_end_matches('.')
                .eq_ignore_ascii_case(name.trim_end_matches('.'))
        }) {
            return Err((line, "a key of this name is already defined earlier".into()));
        }
        keys.push(KeyDef {
            name,
            algorithm,
            secret,
            line,
            secret_line,
        });
    }
    Ok(keys)
}

fn decode(b64: &str, origin: &str) -> Result<Secret, SecretError> {
    use base64::Engine as _;
    // named.conf lets a long secret be split by white space.
    let joined: String = b64.split_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(joined)
        .map_err(|_| SecretError::NotBase64 {
            origin: origin.to_string(),
        })?;
    if bytes.is_empty() {
        return Err(SecretError::Empty {
            origin: origin.to_string(),
        });
    }
    Ok(Secret::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_and_secrets(text: &str) -> Vec<(String, String)> {
        parse_key_file(text)
            .unwrap()
            .into_iter()
            .map(|k| (k.name, k.secret))
            .collect()
    }

    #[test]
    fn parses_tsig_keygen_output() {
        let text = "key \"edgefail\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0\";\n};\n";
        assert_eq!(
            names_and_secrets(text),
            vec![("edgefail".to_string(), "c2VjcmV0".to_string())]
        );
    }

    #[test]
    fn a_secret_with_slashes_is_not_a_comment() {
        let text = "// made by tsig-keygen\nkey \"k\" { # the key\n\talgorithm hmac-sha256;\n\tsecret \"ab//cd+/\"; // here\n};\n";
        assert_eq!(
            names_and_secrets(text),
            vec![("k".to_string(), "ab//cd+/".to_string())]
        );
    }

    #[test]
    fn unquoted_names_block_comments_and_several_keys() {
        let text = "/* two\nkeys */ key a { algorithm hmac-sha256; secret \"YWFhYQ==\"; };\nkey \"b.\" {algorithm \"hmac-sha512\";secret \"YmJiYg==\";};";
        let keys = parse_key_file(text).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!((keys[0].name.as_str(), keys[0].line), ("a", 2));
        assert_eq!((keys[1].name.as_str(), keys[1].line), ("b.", 3));
    }

    #[test]
    fn errors_name_the_line_never_the_text() {
        let secret = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0";
        for text in [
            format!("key k {{ algorithm hmac-sha256; secret {secret} }};"),
            format!("key k {{\n algorithm hmac-sha256;\n {secret};\n}};"),
            format!("{secret}\n"),
            format!("key k {{ algorithm {secret}; secret \"{secret}\"; }};"),
        ] {
            let (line, problem) = parse_key_file(&text).expect_err(&text);
            assert!(line >= 1);
            assert!(!problem.contains(secret), "{problem}");
        }
    }

    #[test]
    fn spots_secrets_in_the_wrong_place() {
        assert!(looks_like_secret(
            "Bv6jM1pVz6Wy3b1mBfX3yqNqV4DC0BjdOuxHaG6GZ7I="
        ));
        assert!(looks_like_secret(
            "hmac-sha256:edgefail:Bv6jM1pVz6Wy3b1mBfX3yqNqV4DC0BjdOuxHaG6GZ7I="
        ));
        assert!(!looks_like_secret("edgefail-contoso"));
        assert!(!looks_like_secret("EDGEFAIL_TSIG_SECRET"));
        assert!(!looks_like_secret("/etc/bind/edgefail.key"));
        assert!(!looks_like_secret("hmac-sha256"));
        assert!(!looks_like_secret("/etc/edgefail/contosokey"));
        assert!(!looks_like_secret("EdgefailTsigKey2024A"));
        // 48 bytes: no padding, but long and mixed.
        assert!(looks_like_secret(
            "q8Zr2XbT9mWc4LpN7sYd1VhK6gJf3QeRa0UoIiBn5tMzSxGwEyHvClDkOjPuA2b3"
        ));
    }

    #[test]
    fn never_prints() {
        let s = Secret::new(b"topsecret".to_vec());
        assert!(!format!("{s:?} {s}").contains("topsecret"));
    }
}
