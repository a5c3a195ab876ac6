//! A directory target: one folder per backup, named by its id, holding manifest.json
//! and backup.mbstream.zst. A backup being taken lives in `.partial-ID` until its
//! manifest is written, then is renamed into place, so `list` never shows half a backup.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use crate::manifest::{check_id, Manifest, MANIFEST_FILE};

#[derive(Debug, Clone)]
pub struct DirectoryTarget {
    pub root: PathBuf,
}

impl DirectoryTarget {
    pub fn new(root: &Path) -> DirectoryTarget {
        DirectoryTarget {
            root: root.to_path_buf(),
        }
    }

    /// Creates the target's root (mode 0700) when missing.
    pub fn ensure(&self) -> anyhow::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .with_context(|| format!("cannot create the backup target {}", self.root.display()))
    }

    pub fn backup_dir(&self, id: &str) -> anyhow::Result<PathBuf> {
        check_id(id).map_err(anyhow::Error::msg)?;
        Ok(self.root.join(id))
    }

    pub fn partial_dir(&self, id: &str) -> anyhow::Result<PathBuf> {
        check_id(id).map_err(anyhow::Error::msg)?;
        Ok(self.root.join(format!(".partial-{id}")))
    }

    /// Every complete backup, oldest first.
    pub fn list(&self) -> anyhow::Result<Vec<Manifest>> {
        let mut manifests = Vec::new();
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(manifests),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", self.root.display()))
            }
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || check_id(&name).is_err() {
                continue;
            }
            if entry.path().join(MANIFEST_FILE).exists() {
                manifests.push(read_manifest(&entry.path())?);
            }
        }
        manifests.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
        Ok(manifests)
    }

    pub fn show(&self, id: &str) -> anyhow::Result<Manifest> {
        let dir = self.backup_dir(id)?;
        if !dir.join(MANIFEST_FILE).exists() {
            bail!(
                "no backup {id} in {}; `galley backup list` shows the backups there",
                self.root.display()
            );
        }
        read_manifest(&dir)
    }

    pub fn delete(&self, id: &str) -> anyhow::Result<()> {
        let children: Vec<String> = self
            .list()?
            .into_iter()
            .filter(|m| m.parent.as_deref() == Some(id))
            .map(|m| m.id)
            .collect();
        self.show(id)?;
        if !children.is_empty() {
            bail!(
                "backup {id} is the parent of {}; delete those first",
                children.join(", ")
            );
        }
        let dir = self.backup_dir(id)?;
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot delete {}", dir.display()))
    }
}

pub fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a galley manifest", path.display()))
}

/// Writes manifest.json through a new file renamed over the old one.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    let path = dir.join(MANIFEST_FILE);
    let temporary = dir.join(format!(".{MANIFEST_FILE}.new"));
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    file.write_all(serde_json::to_string_pretty(manifest)?.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    std::fs::rename(&temporary, &path).with_context(|| {
        format!(
            "cannot rename {} to {}",
            temporary.display(),
            path.display()
        )
    })
}
