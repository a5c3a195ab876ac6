//! The cluster's secrets: the admin and monitor passwords and the cluster token.
//!
//! They are generated once, written to a file with mode 0600, and read from there; they
//! never go to a log, an error message or a command line. `Debug` is written by hand so
//! that a stray `{:?}` cannot print them.

use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use anyhow::{bail, Context as _};
use rand::distributions::Alphanumeric;
use rand::Rng as _;
use serde::{Deserialize, Serialize};

pub const ADMIN_USER: &str = "galley_admin";
pub const MONITOR_USER: &str = "galley_monitor";

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    /// Authenticates callers of the agents (and later the controller).
    pub cluster_token: String,
    pub admin_password: String,
    pub monitor_password: String,
    /// The administrative account, when it is not galley's own `galley_admin`: an
    /// imported cluster (`galley import`) keeps the account the operator gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_user: Option<String>,
    /// The console's `admin` password as `galley up` generated it. The controller sets
    /// it (hashed) in its store when the store has no admin yet; files written before
    /// the console existed lack it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_admin_password: Option<String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secrets { .. }")
    }
}

impl Secrets {
    pub fn generate() -> Secrets {
        Secrets {
            cluster_token: random_secret(40),
            admin_password: random_secret(32),
            monitor_password: random_secret(32),
            admin_user: None,
            console_admin_password: None,
        }
    }

    /// The secrets of an imported cluster: its existing administrative account, and a
    /// new cluster token for the controller's API. There is no monitor account (galley
    /// did not create one), so the monitor password stays empty.
    pub fn for_imported(admin_user: &str, admin_password: &str) -> Secrets {
        Secrets {
            cluster_token: random_secret(40),
            admin_password: admin_password.to_owned(),
            monitor_password: String::new(),
            admin_user: Some(admin_user.to_owned()),
            console_admin_password: None,
        }
    }

    /// The account that administers the servers (`galley_admin` unless imported).
    pub fn admin_user(&self) -> &str {
        self.admin_user.as_deref().unwrap_or(ADMIN_USER)
    }

    /// Adds a generated console admin password to the secrets file at `path` unless it
    /// has one; returns the new password, which the caller shows once. The file is
    /// replaced atomically and stays 0600.
    pub fn ensure_console_admin_password(path: &Path) -> anyhow::Result<Option<String>> {
        let mut secrets = Secrets::load(path)?;
        if secrets.console_admin_password.is_some() {
            return Ok(None);
        }
        let password = random_secret(24);
        secrets.console_admin_password = Some(password.clone());
        let partial = path.with_extension("toml.new");
        let _ = std::fs::remove_file(&partial);
        secrets.write_new(&partial)?;
        std::fs::rename(&partial, path)
            .with_context(|| format!("cannot replace the secrets file {}", path.display()))?;
        Ok(Some(password))
    }

    /// Reads the secrets file, refusing one that others can read.
    pub fn load(path: &Path) -> anyhow::Result<Secrets> {
        let metadata = std::fs::metadata(path)
            .with_context(|| format!("cannot read the secrets file {}", path.display()))?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "the secrets file {} has mode {mode:o}; it must be readable by its owner only (chmod 600 {})",
                path.display(),
                path.display()
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the secrets file {}", path.display()))?;
        // The toml error could quote a line of the file, so it is not passed on.
        toml::from_str(&text).map_err(|_| {
            anyhow::anyhow!(
                "the secrets file {} is not valid: it needs cluster_token, admin_password and monitor_password (and optionally admin_user)",
                path.display()
            )
        })
    }

    /// Loads the file if it exists, otherwise generates secrets and writes them (0600).
    pub fn load_or_create(path: &Path) -> anyhow::Result<(Secrets, bool)> {
        if path.exists() {
            return Ok((Secrets::load(path)?, false));
        }
        let secrets = Secrets::generate();
        secrets.write_new(path)?;
        Ok((secrets, true))
    }

    /// Writes a new secrets file with mode 0600; never overwrites one.
    pub fn write_new(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let text = format!(
            "# galley secrets for this cluster. Keep this file private (mode 0600).\n{}",
            toml::to_string(self).expect("secrets serialize to TOML")
        );
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot create the secrets file {}", path.display()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write the secrets file {}", path.display()))
    }

    pub fn token_matches(&self, presented: &str) -> bool {
        constant_time_eq(self.cluster_token.as_bytes(), presented.as_bytes())
    }
}

fn random_secret(length: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(length)
        .map(char::from)
        .collect()
}

/// The `mysql_native_password` hash; it lives in `manage`, beside the account SQL that
/// uses it.
pub use manage::native_password_hash;

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.toml");
        let (created, fresh) = Secrets::load_or_create(&path).unwrap();
        assert!(fresh);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (loaded, fresh) = Secrets::load_or_create(&path).unwrap();
        assert!(!fresh);
        assert_eq!(loaded, created);
        assert_eq!(format!("{loaded:?}"), "Secrets { .. }");
        assert!(loaded.token_matches(&created.cluster_token));
        assert!(!loaded.token_matches("wrong"));
    }

    #[test]
    fn an_imported_cluster_keeps_its_admin_account() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.toml");
        let secrets = Secrets::for_imported("dba", "pw");
        secrets.write_new(&path).unwrap();
        let loaded = Secrets::load(&path).unwrap();
        assert_eq!(loaded.admin_user(), "dba");
        assert_eq!(loaded.admin_password, "pw");
        assert_eq!(Secrets::generate().admin_user(), ADMIN_USER);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("admin_user = \"dba\""), "{text}");
    }

    #[test]
    fn a_console_password_is_added_once_to_an_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.toml");
        // A file written before the console existed.
        std::fs::write(
            &path,
            "cluster_token = \"t\"\nadmin_password = \"a\"\nmonitor_password = \"m\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(Secrets::load(&path).unwrap().console_admin_password, None);
        let added = Secrets::ensure_console_admin_password(&path)
            .unwrap()
            .unwrap();
        assert!(added.len() >= 20);
        let loaded = Secrets::load(&path).unwrap();
        assert_eq!(
            loaded.console_admin_password.as_deref(),
            Some(added.as_str())
        );
        assert_eq!(loaded.cluster_token, "t");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(Secrets::ensure_console_admin_password(&path).unwrap(), None);
    }

    #[test]
    fn refuses_a_readable_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.toml");
        Secrets::generate().write_new(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = Secrets::load(&path).unwrap_err().to_string();
        assert!(error.contains("mode 644"), "{error}");
    }
}
