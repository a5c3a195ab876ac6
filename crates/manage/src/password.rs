//! Account passwords: generated strong, hidden from `Debug`, and sent to the server only
//! as their `mysql_native_password` hash, so that no SQL text, server log, general log or
//! binlog ever holds one in clear.

use std::fmt;

use rand::distributions::Alphanumeric;
use rand::Rng as _;
use sha1::{Digest as _, Sha1};

use crate::names::{Field, NameError};

/// The length of a generated password: 40 alphanumeric characters, about 238 bits.
pub const GENERATED_LENGTH: usize = 40;

/// The longest password accepted from a caller, in bytes.
pub const MAX_LENGTH: usize = 1024;

/// A password. `Debug` and `Display` never print it: read it with
/// [`Password::expose`] where it must go (a config line, a store, a login).
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// A new random password of [`GENERATED_LENGTH`] ASCII letters and digits (safe in
    /// URLs, config files and shells without quoting).
    pub fn generate() -> Password {
        Password(
            rand::thread_rng()
                .sample_iter(&Alphanumeric)
                .take(GENERATED_LENGTH)
                .map(char::from)
                .collect(),
        )
    }

    /// A password a caller chose: 1 to [`MAX_LENGTH`] bytes, no NUL, no line break
    /// (they would break config files and shells). Any other character is allowed; the
    /// error never shows the value.
    pub fn parse(value: &str) -> Result<Password, NameError> {
        const ALLOWED: &str =
            "a password has 1 to 1024 bytes and no NUL, carriage return or newline";
        let problem = if value.is_empty() {
            Some("it is empty".to_owned())
        } else if value.len() > MAX_LENGTH {
            Some(format!("it is {} bytes long", value.len()))
        } else if value.contains(['\0', '\n', '\r']) {
            Some("it contains a NUL or line-break character".to_owned())
        } else {
            None
        };
        match problem {
            Some(problem) => Err(NameError::Invalid {
                field: Field::Password,
                shown: "(hidden)".to_owned(),
                problem,
                allowed: ALLOWED,
            }),
            None => Ok(Password(value.to_owned())),
        }
    }

    /// The password itself, for the few places that need it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The `mysql_native_password` hash the server stores (`*` and 40 upper-case hex
    /// digits); what `IDENTIFIED BY PASSWORD '...'` takes.
    pub fn native_hash(&self) -> String {
        native_password_hash(&self.0)
    }

    /// Whether a stored `authentication_string` is this password's native hash.
    pub fn matches_native_hash(&self, stored: &str) -> bool {
        stored.eq_ignore_ascii_case(&self.native_hash())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// The `mysql_native_password` hash (`*` and the upper-case hex of SHA1(SHA1(password))),
/// so that account SQL carries the hash and never the password itself.
pub fn native_password_hash(password: &str) -> String {
    let inner = Sha1::digest(password.as_bytes());
    let outer = Sha1::digest(inner);
    let hex: String = outer.iter().map(|byte| format!("{byte:02X}")).collect();
    format!("*{hex}")
}

/// Replaces every native password hash (`*` and 40 hex digits) in a text with
/// `<hash hidden>`: `SHOW GRANTS` lines and some server messages carry them, and a hash
/// is enough for an offline guessing attack.
pub fn redact_hashes(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut index = 0;
    let mut copied_until = 0;
    while index < bytes.len() {
        if bytes[index] == b'*'
            && bytes.len() >= index + 41
            && bytes[index + 1..index + 41]
                .iter()
                .all(u8::is_ascii_hexdigit)
        {
            out.push_str(&text[copied_until..index]);
            out.push_str("<hash hidden>");
            index += 41;
            copied_until = index;
        } else {
            index += 1;
        }
    }
    out.push_str(&text[copied_until..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_hash_matches_mariadb() {
        // SELECT PASSWORD('password') gives this on MariaDB and MySQL 5.x.
        assert_eq!(
            native_password_hash("password"),
            "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
        );
        let password = Password::parse("password").unwrap();
        assert!(password.matches_native_hash("*2470c0c06dee42fd1618bb99005adca2ec9d1e19"));
        assert!(!password.matches_native_hash(""));
    }

    #[test]
    fn generated_passwords_are_long_alphanumeric_and_distinct() {
        let first = Password::generate();
        let second = Password::generate();
        assert_eq!(first.expose().len(), GENERATED_LENGTH);
        assert!(first.expose().bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(first, second);
    }

    #[test]
    fn debug_hides_the_password() {
        let password = Password::parse("s3cret-value").unwrap();
        assert_eq!(format!("{password:?}"), "Password(..)");
    }

    #[test]
    fn refused_passwords_are_never_shown() {
        for (value, fragment) in [("", "empty"), ("abc\ndef", "line-break"), ("abc\0", "NUL")] {
            let message = Password::parse(value).unwrap_err().to_string();
            assert!(message.contains(fragment), "{message}");
            assert!(message.contains("(hidden)"), "{message}");
            if !value.is_empty() {
                assert!(!message.contains("abc"), "{message}");
            }
        }
        assert!(Password::parse(&"x".repeat(MAX_LENGTH + 1)).is_err());
        assert!(Password::parse("p@ss w0rd/:%$'\"").is_ok());
    }

    #[test]
    fn hashes_are_redacted() {
        let grant = "GRANT USAGE ON *.* TO `nova`@`%` IDENTIFIED BY PASSWORD '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19'";
        assert_eq!(
            redact_hashes(grant),
            "GRANT USAGE ON *.* TO `nova`@`%` IDENTIFIED BY PASSWORD '<hash hidden>'"
        );
        assert_eq!(redact_hashes("ON *.* TO"), "ON *.* TO");
        assert_eq!(redact_hashes("*"), "*");
    }
}
