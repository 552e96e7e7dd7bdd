//! What a string in a request body may hold. Owns the one check every string the `Body`
//! accessors hand out goes through (ids, aliases, emails, roles, model names in lists, the
//! names in `metadata` and `aliases` objects), so every endpoint refuses, with a 400 naming
//! the field, text that would be a trap once stored: control characters (NUL truncates in C
//! tools and logs, ESC sequences repaint an operator's terminal, CR/LF forge log lines and
//! headers) and absurd lengths. Free text that may legitimately hold newlines is exempt.

use crate::error::{Error, Result};

/// The most characters an identifier, alias, email, role or model name may have.
pub const MAX_ID_CHARS: usize = 256;

/// Fields that are free text (compared or sent on, never an identifier): newlines allowed,
/// no length cap beyond the body's.
const FREE_TEXT: &[&str] = &["mock_response", "password", "master_key"];

/// Refuses `s` as the value of `field` when it has a control character or is too long.
pub fn check(field: &str, s: &str) -> Result<()> {
    if FREE_TEXT.contains(&field) {
        return Ok(());
    }
    // Byte length first: no character count of a megabyte string.
    if s.len() > MAX_ID_CHARS && s.chars().count() > MAX_ID_CHARS {
        return Err(Error::bad_param(
            field,
            format!("`{field}` is longer than {MAX_ID_CHARS} characters"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::bad_param(
            field,
            format!("`{field}` must not contain control characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_absurd_lengths_are_refused_naming_the_field() {
        for bad in ["a\0b", "a\nb", "\u{1b}[31m", "x\u{7f}", "x\u{85}", "\r"] {
            let e = check("team_id", bad).unwrap_err();
            assert_eq!(e.status(), 400);
            assert_eq!(e.body()["error"]["param"], "team_id", "{bad:?}");
        }
        assert!(check("team_alias", &"x".repeat(MAX_ID_CHARS)).is_ok());
        assert!(check("team_alias", &"é".repeat(MAX_ID_CHARS)).is_ok());
        assert!(check("team_alias", &"x".repeat(MAX_ID_CHARS + 1)).is_err());
        assert!(check("user_email", "ünïcode@example.com").is_ok());
        assert!(check("mock_response", "line one\nline two").is_ok());
    }
}
