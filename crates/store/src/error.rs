//! `StoreError`: what can go wrong opening or using the history database.

use std::io;
use std::path::PathBuf;

/// Errors from the store. Callers branch on `SchemaTooNew`, `NotFound`, `ReadOnly` and
/// `ApprovalUnavailable`; [`StoreError::is_busy`] says whether a retry may succeed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot create the database file {path}: {source}")]
    CreateFile { path: PathBuf, source: io::Error },
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the database {path} does not exist (the controller creates it when it first starts)")]
    NotFound { path: PathBuf },
    #[error(
        "the database {path} has schema version {found}, newer than version {known} that this \
         galley knows; upgrade galley or point it at another file"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "the database {path} has schema version {found}, older than version {known}; it cannot be \
         migrated read-only (the controller migrates it when it opens the file)"
    )]
    SchemaTooOld {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("the database {path} was opened read-only")]
    ReadOnly { path: PathBuf },
    #[error("approval {id} does not exist or was already consumed")]
    ApprovalUnavailable { id: i64 },
    #[error("accepting a cluster history or lowering its high-water mark needs a reason, for the record")]
    MissingReason,
    #[error("a lease needs a positive time to live, got {ttl_ms} ms")]
    InvalidLeaseTtl { ttl_ms: i64 },
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl StoreError {
    /// True when another connection held the database longer than the busy timeout:
    /// the operation did nothing and may succeed if retried.
    pub fn is_busy(&self) -> bool {
        let source = match self {
            StoreError::Sqlite(source) | StoreError::Open { source, .. } => source,
            _ => return false,
        };
        matches!(
            source.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;
