//! The controller's history in an embedded SQLite file: events, decisions with their
//! reasons, node state transitions, metric samples with retention, the high-water mark
//! (the highest `wsrep_last_committed` ever seen) of every cluster history with the one
//! the cluster accepted and each recorded change of it, the lease that lets one actor
//! (the controller or `galley recover`) act at a time, and operator approvals.
//!
//! The store never reads the clock: every time is passed in as `at_ms`/`now_ms`, unix
//! milliseconds. A [`Store`] is one SQLite connection (`Send`, not `Sync`); callers in
//! async code use it from a blocking task. Several processes may open the same file:
//! the journal is WAL, so readers (`galley events`) never block the writer, and writes
//! that read first (the mark, the lease) run in `BEGIN IMMEDIATE` transactions.

mod accounts;
mod approvals;
mod desired;
mod error;
mod history;
mod lease;
mod mark;
mod records;
mod schema;

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use accounts::{ApiToken, EndedCredentials, NewApiToken, ServiceCredential, SessionRecord};
pub use error::{Result, StoreError};
pub use records::{
    Approval, Decision, Event, EventFilter, HighWaterMark, HighWaterMarks, MarkChange, MarkRaise,
    NewDecision, NewEvent, Sample, Severity, Transition, UnknownSeverity,
};
pub use schema::SCHEMA_VERSION;

/// How long a statement waits for another connection's write lock before failing with
/// a busy error.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An open history database.
pub struct Store {
    pub(crate) connection: Connection,
    path: PathBuf,
    read_only: bool,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens or creates the database (creating parent dirs with mode 0700; the file mode
    /// 0600), WAL journal, busy_timeout 5 s, foreign keys on; creates/migrates the schema
    /// using PRAGMA user_version; refuses a schema newer than it knows with a clear error.
    ///
    /// An existing file readable by others is made private (0600): since schema 3 the
    /// file holds password hashes and service passwords. SQLite gives the `-wal` and
    /// `-shm` files the database file's mode.
    pub fn open(path: &Path) -> Result<Store> {
        create_file(path)?;
        make_private(path)?;
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let connection = Connection::open(path).map_err(open_error)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        // Reading the version first also fails early, and clearly, on a file that is
        // not a database, before anything is written to it.
        let found = schema::version(&connection).map_err(open_error)?;
        if found > SCHEMA_VERSION {
            return Err(too_new(path, found));
        }
        connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
            .map_err(open_error)?;
        connection
            .pragma_update(None, "foreign_keys", true)
            .map_err(open_error)?;
        match schema::migrate(&connection).map_err(open_error)? {
            schema::Migration::Current => {}
            schema::Migration::TooNew { found } => return Err(too_new(path, found)),
        }
        Ok(Store {
            connection,
            path: path.to_owned(),
            read_only: false,
        })
    }

    /// Read-only (for `galley events` while the controller writes); errors clearly if the
    /// file does not exist.
    ///
    /// The schema must be exactly [`SCHEMA_VERSION`]: an older one cannot be migrated
    /// without writing. Every recording method returns [`StoreError::ReadOnly`].
    pub fn open_read_only(path: &Path) -> Result<Store> {
        // SQLite would say only "unable to open database file"; the usual cause deserves
        // its own message. Other metadata errors surface from the open itself.
        if let Err(error) = fs::metadata(path) {
            if error.kind() == io::ErrorKind::NotFound {
                return Err(StoreError::NotFound {
                    path: path.to_owned(),
                });
            }
        }
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags).map_err(open_error)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        let found = schema::version(&connection).map_err(open_error)?;
        if found > SCHEMA_VERSION {
            return Err(too_new(path, found));
        }
        if found < SCHEMA_VERSION {
            return Err(StoreError::SchemaTooOld {
                path: path.to_owned(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        Ok(Store {
            connection,
            path: path.to_owned(),
            read_only: true,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Fails with [`StoreError::ReadOnly`] on a read-only handle; every write starts here.
    pub(crate) fn writable(&self) -> Result<&Connection> {
        if self.read_only {
            return Err(StoreError::ReadOnly {
                path: self.path.clone(),
            });
        }
        Ok(&self.connection)
    }
}

fn too_new(path: &Path, found: i64) -> StoreError {
    StoreError::SchemaTooNew {
        path: path.to_owned(),
        found,
        known: SCHEMA_VERSION,
    }
}

/// Takes group and other permissions away from the database file and its journals.
fn make_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut journals = path.as_os_str().to_owned();
    journals.push("-wal");
    let wal = PathBuf::from(&journals);
    let shm = PathBuf::from(format!("{}-shm", path.display()));
    for file in [path, wal.as_path(), shm.as_path()] {
        let Ok(metadata) = fs::metadata(file) else {
            continue;
        };
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            fs::set_permissions(file, fs::Permissions::from_mode(mode & 0o700)).map_err(
                |source| StoreError::CreateFile {
                    path: file.to_owned(),
                    source,
                },
            )?;
        }
    }
    Ok(())
}

/// Creates the parent directories (0700) and the file (0600) if they are missing, so
/// that SQLite never creates them with the process umask.
fn create_file(path: &Path) -> Result<()> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|source| StoreError::CreateDir {
                path: parent.to_owned(),
                source,
            })?;
    }
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::CreateFile {
            path: path.to_owned(),
            source,
        }),
    }
}
