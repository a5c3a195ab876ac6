//! Physical backups of a Galera node with mariabackup, restores and their proof.
//!
//! The pure part: the manifest and the readers of mariabackup's metadata (`manifest`),
//! the mbstream reader that checks and hashes every file as the stream passes
//! (`stream`), and which node a backup is taken from (`choose`). The I/O part: taking a
//! backup (`take`), the directory target (`target`), restoring and verifying by data
//! (`restore`). docs/backup.md says what is backed up and how a restore is proven.

pub mod choose;
pub mod manifest;
pub mod restore;
pub mod stream;
pub mod take;
pub mod target;

pub use choose::{choose_node, Candidate, Choice};
pub use manifest::{Kind, Manifest, Mismatch, TableChecksum};
pub use restore::{restore_into, verify, Verified};
pub use take::{take_full, NodeAccess};
pub use target::DirectoryTarget;
