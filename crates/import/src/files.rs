//! What an import writes: the galley.toml of an imported cluster (nodes with
//! `managed = false`) and its secrets file (mode 0600). Both are new files, and a failed
//! write leaves neither behind.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::ImportError;

/// One imported node in galley.toml: its name, host and client port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecNode {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// The galley.toml of an imported cluster.
pub fn render_spec(
    cluster_name: &str,
    dir: &Path,
    controller_port: u16,
    nodes: &[SpecNode],
    writer_address: Option<&str>,
) -> String {
    let root = dir.display();
    let writer = writer_address
        .map(|address| format!("writer_address = \"{address}\"\n"))
        .unwrap_or_default();
    let mut text = format!(
        "# Imported by `galley import`. galley watches these nodes over SQL and manages\n\
         # their databases and accounts; it never starts, stops or recovers them.\n\
         [cluster]\nname = \"{cluster_name}\"\nsecrets_file = \"{root}/secrets.toml\"\n{writer}\n\
         [controller]\naddress = \"127.0.0.1\"\nport = {controller_port}\nstate_dir = \"{root}/controller\"\n"
    );
    for SpecNode { name, host, port } in nodes {
        text.push_str(&format!(
            "\n[[node]]\nname = \"{name}\"\naddress = \"{host}\"\nclient_port = {port}\nmanaged = false\n"
        ));
    }
    text
}

/// Where an import into `dir` writes its secrets.
pub fn secrets_path(dir: &Path) -> PathBuf {
    dir.join("secrets.toml")
}

/// Refuses a directory that already holds a cluster (its spec or its secrets).
pub fn check_new_dir(config: &Path, dir: &Path) -> Result<(), ImportError> {
    for path in [config.to_path_buf(), secrets_path(dir)] {
        if path.exists() {
            return Err(ImportError::AlreadyExists(path));
        }
    }
    Ok(())
}

/// Checks that `text` loads as a spec, then writes the secrets file (the account and a
/// new cluster token) and `config`. Nothing is written unless the spec loads; when the
/// spec cannot be written, the secrets file is removed again.
pub fn write_cluster(
    dir: &Path,
    config: &Path,
    text: &str,
    user: &str,
    password: &str,
) -> Result<spec::Loaded, ImportError> {
    let loaded = spec::parse(config, text)?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
        .map_err(ImportError::Write)?;
    let secrets = agent::Secrets::for_imported(user, password);
    secrets
        .write_new(&loaded.spec.secrets_file)
        .map_err(ImportError::Write)?;
    if let Err(error) = write_new_file(config, text) {
        // Best effort: the error that matters is the one returned.
        let _ = std::fs::remove_file(&loaded.spec.secrets_file);
        return Err(ImportError::Write(error));
    }
    Ok(loaded)
}

fn write_new_file(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<SpecNode> {
        (1..=3)
            .map(|n| SpecNode {
                name: format!("db{n}"),
                host: format!("10.0.0.{n}"),
                port: 3306,
            })
            .collect()
    }

    #[test]
    fn the_rendered_spec_is_valid_and_unmanaged() {
        let nodes = nodes();
        let text = render_spec(
            "legacy",
            Path::new("/srv/galley"),
            4600,
            &nodes,
            Some("10.0.0.10:3306"),
        );
        let loaded = spec::parse(Path::new("/srv/galley/galley.toml"), &text).unwrap();
        assert!(loaded.spec.is_imported());
        assert_eq!(
            loaded.spec.secrets_file,
            Path::new("/srv/galley/secrets.toml")
        );
        let controller = loaded.spec.controller.clone().unwrap();
        assert_eq!(controller.state_dir, Path::new("/srv/galley/controller"));
        assert_eq!(loaded.spec.node_names(), ["db1", "db2", "db3"]);
        assert_eq!(
            loaded.spec.client_endpoint(),
            ("10.0.0.10".to_owned(), 3306)
        );
        let without = render_spec("legacy", Path::new("/srv/galley"), 4600, &nodes, None);
        let loaded = spec::parse(Path::new("/srv/galley/galley.toml"), &without).unwrap();
        assert_eq!(loaded.spec.client_endpoint(), ("10.0.0.1".to_owned(), 3306));
    }

    #[test]
    fn writes_both_files_once_and_refuses_a_used_directory() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("legacy");
        let config = dir.join("galley.toml");
        check_new_dir(&config, &dir).unwrap();
        let text = render_spec("legacy", &dir, 4600, &nodes(), None);
        let loaded = write_cluster(&dir, &config, &text, "dba", "a password").unwrap();
        assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
        let secrets = agent::Secrets::load(&loaded.spec.secrets_file).unwrap();
        assert_eq!(secrets.admin_user(), "dba");
        let error = check_new_dir(&config, &dir).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("{} already exists", config.display())),
            "{error}"
        );
        // The secrets file alone also marks the directory as used.
        std::fs::remove_file(&config).unwrap();
        let error = check_new_dir(&config, &dir).unwrap_err().to_string();
        assert!(error.contains("secrets.toml already exists"), "{error}");
    }

    #[test]
    fn a_spec_that_does_not_load_writes_nothing() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("legacy");
        let config = dir.join("galley.toml");
        let text = render_spec("not a name", &dir, 4600, &nodes(), None);
        let error = write_cluster(&dir, &config, &text, "dba", "a password").unwrap_err();
        assert!(matches!(error, ImportError::Spec(_)), "{error}");
        assert!(!dir.exists());
    }
}
