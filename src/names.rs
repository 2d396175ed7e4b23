//! Strict grammars for every name that reaches a PowerShell script or a DNS
//! message, and the one function that embeds a name in a script.
//!
//! Validation happens when the topology is loaded; quoting happens again when
//! a script is built, so a name that somehow skipped validation still cannot
//! break out of its literal.

/// Why a name was rejected, phrased to follow "is not a valid ...: ".
pub type NameError = String;

/// A fully qualified DNS host name: at least two labels of letters, digits
/// and inner hyphens, no trailing dot, at most 253 characters.
pub fn check_fqdn(name: &str) -> Result<(), NameError> {
    check_dns_name(name, false)?;
    if !name.contains('.') {
        return Err("a fully qualified name needs at least two labels (edge.contoso.com)".into());
    }
    Ok(())
}

/// A DNS name; with `allow_underscore`, labels may start with `_` (SRV owners).
pub fn check_dns_name(name: &str, allow_underscore: bool) -> Result<(), NameError> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > 253 {
        return Err(format!(
            "it is {} characters long; DNS allows 253",
            name.len()
        ));
    }
    if name.ends_with('.') {
        return Err("write it without the trailing dot".into());
    }
    for label in name.split('.') {
        check_label(label, allow_underscore)?;
    }
    Ok(())
}

fn check_label(label: &str, allow_underscore: bool) -> Result<(), NameError> {
    if label.is_empty() {
        return Err("it has an empty label (two dots in a row)".into());
    }
    if label.len() > 63 {
        return Err(format!(
            "label '{}' is longer than 63 characters",
            printable(label)
        ));
    }
    let body = match label.strip_prefix('_') {
        Some(rest) if allow_underscore => rest,
        _ => label,
    };
    let ok_chars = !body.is_empty() && body.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !ok_chars || body.starts_with('-') || body.ends_with('-') {
        return Err(format!(
            "label '{}' may hold only letters, digits and inner hyphens",
            printable(label)
        ));
    }
    Ok(())
}

/// A Lync site or pool label as the topology names it (Site2, EdgePool2):
/// letters, digits, '-', '_', '.', and inner single spaces; 1 to 64
/// characters, starting with a letter or digit.
pub fn check_identity(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > 64 {
        return Err(format!("it is {} characters long; at most 64", name.len()));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) || name.ends_with(' ') {
        return Err("it must start with a letter or digit and not end with a space".into());
    }
    if name.contains("  ") {
        return Err("it has two spaces in a row".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ')))
    {
        return Err(format!(
            "character {} is not allowed (letters, digits, '-', '_', '.', spaces)",
            describe_char(bad)
        ));
    }
    Ok(())
}

/// A user name for ssh: letters, digits, '.', '_', '-', no leading '-'.
pub fn check_user(name: &str) -> Result<(), NameError> {
    if name.is_empty() || name.len() > 64 {
        return Err("it must be 1 to 64 characters".into());
    }
    if name.starts_with('-')
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err("only letters, digits, '.', '_' and '-' (not first) are allowed".into());
    }
    Ok(())
}

/// A name an environment variable can have: letters, digits and `_`, not
/// starting with a digit.
pub fn is_env_var_name(var: &str) -> bool {
    !var.is_empty()
        && !var.starts_with(|ch: char| ch.is_ascii_digit())
        && var
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// Embed `value` in a PowerShell script as a single-quoted literal.
///
/// Inside single quotes PowerShell expands nothing (`$`, backtick and
/// parentheses are plain text); the only special characters are the quote
/// itself and its typographic look-alikes, which PowerShell also accepts as
/// quotes, so every one of them is doubled.
pub fn ps_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Show a name in an error message without letting control characters
/// (newlines, escapes) reshape the terminal output.
pub fn printable(s: &str) -> String {
    crate::escape::terminal(s).into_owned()
}

fn describe_char(c: char) -> String {
    if c.is_control() || c == ' ' {
        format!("{:?}", c)
    } else {
        format!("'{c}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fqdns() {
        assert!(check_fqdn("EdgeServer2.contoso.com").is_ok());
        assert!(check_fqdn("edge").is_err());
        assert!(check_fqdn("a..b").is_err());
        assert!(check_fqdn("-a.b").is_err());
        assert!(check_fqdn("a.b.").is_err());
        assert!(check_fqdn("a;b.com").is_err());
        assert!(check_dns_name("_xmpp-server._tcp.contoso.com", true).is_ok());
        assert!(check_dns_name("_xmpp-server._tcp.contoso.com", false).is_err());
    }

    #[test]
    fn identities() {
        assert!(check_identity("Site2").is_ok());
        assert!(check_identity("Redmond Site").is_ok());
        for bad in [
            "Site2; Remove-Item C:\\ -Recurse",
            "Site'2",
            "Site`2",
            "$(whoami)",
            "Site2\nStop-Computer",
            " Site2",
            "",
        ] {
            assert!(check_identity(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn literals() {
        assert_eq!(ps_literal("Site2"), "'Site2'");
        assert_eq!(ps_literal("a'b"), "'a''b'");
        assert_eq!(ps_literal("a\u{2019}b"), "'a\u{2019}\u{2019}b'");
        assert_eq!(ps_literal("$(x)`"), "'$(x)`'");
    }
}
