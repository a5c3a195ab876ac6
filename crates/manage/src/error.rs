//! The errors of the operations, classified so that an API can answer with the right
//! status and a message that is safe to show (it never holds a password or its hash).

use crate::names::NameError;

/// What went wrong in a [`crate::Manager`] operation.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// A name, privilege, charset or password was refused before anything ran.
    #[error(transparent)]
    Name(#[from] NameError),
    /// Valid syntax the server does not accept as input, e.g. an unknown character set.
    #[error("{0}")]
    Invalid(String),
    /// The database, account or grant does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The database or account exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The server refused the statement for another reason; its message is passed on
    /// (with any password hash removed).
    #[error("{context}: the database server refused it: {message} (error {code})")]
    Server {
        /// What was being done, e.g. "cannot create the database nova".
        context: String,
        /// The server's error number.
        code: u16,
        /// The server's message.
        message: String,
    },
    /// No usable connection to the node: refused, lost, timed out, or the node is not
    /// ready for SQL (a Galera node outside the Primary component answers 1047).
    #[error("{0}")]
    Unavailable(String),
}

/// The class of a [`ManageError`], for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Bad input: HTTP 400.
    Invalid,
    /// Missing: HTTP 404.
    NotFound,
    /// Conflict: HTTP 409.
    AlreadyExists,
    /// The server refused: HTTP 502.
    Server,
    /// No node to run on: HTTP 503.
    Unavailable,
}

impl ErrorKind {
    /// The HTTP status galley's REST API answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::Invalid => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::AlreadyExists => 409,
            ErrorKind::Server => 502,
            ErrorKind::Unavailable => 503,
        }
    }
}

impl ManageError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ManageError::Name(_) | ManageError::Invalid(_) => ErrorKind::Invalid,
            ManageError::NotFound(_) => ErrorKind::NotFound,
            ManageError::AlreadyExists(_) => ErrorKind::AlreadyExists,
            ManageError::Server { .. } => ErrorKind::Server,
            ManageError::Unavailable(_) => ErrorKind::Unavailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_statuses() {
        let name_error = crate::DatabaseName::parse("a;b").unwrap_err();
        for (error, status) in [
            (ManageError::Name(name_error), 400),
            (ManageError::Invalid("x".into()), 400),
            (ManageError::NotFound("x".into()), 404),
            (ManageError::AlreadyExists("x".into()), 409),
            (
                ManageError::Server {
                    context: "c".into(),
                    code: 1,
                    message: "m".into(),
                },
                502,
            ),
            (ManageError::Unavailable("x".into()), 503),
        ] {
            assert_eq!(error.kind().http_status(), status, "{error}");
        }
    }
}
