//! Schemas, users, privileges and OpenStack databases on a Galera cluster, over SQL.
//!
//! - [`names`]: validated names (`DatabaseName`, `UserName`, `HostPattern`, `Privileges`,
//!   `Charset`, `Collation`) and the quoting every statement uses on top of them.
//! - [`password`]: `Password` (hidden from `Debug`, generated strong) and the
//!   `mysql_native_password` hash that SQL carries instead of the password.
//! - [`catalog`]: the OpenStack services, their databases and config lines. Pure.
//! - [`ops`]: `Manager`, the operations against one node over a connection pool.
//! - [`error`]: `ManageError` and its `ErrorKind`, which an API maps to HTTP statuses.
//!
//! Galera replicates DDL and account statements (CREATE/DROP DATABASE, CREATE/ALTER/DROP
//! USER, GRANT, REVOKE) in total order isolation: they run on one node and the others
//! apply them in the same place in the replication stream. So the caller points a
//! `Manager` at one Synced node and every statement runs there; nothing here writes the
//! `mysql.*` tables directly, which Galera would not replicate.

// Every public item is documented: the API crate and the CLI code against it.
#![warn(missing_docs)]

pub mod catalog;
pub mod error;
pub mod names;
pub mod ops;
pub mod password;

pub use catalog::{Endpoint, Service, CATALOG};
pub use error::{ErrorKind, ManageError};
pub use names::{
    Charset, Collation, DatabaseName, HostPattern, NameError, Privilege, Privileges, UserName,
};
pub use ops::{
    DatabaseInfo, DriftReport, Manager, ProvisionReport, ProvisionRequest, ServiceDrift,
    ServiceProvision, UserInfo,
};
pub use password::{native_password_hash, Password};
