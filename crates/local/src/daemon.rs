//! Starting galley's own daemons in the background, and reading the end of their logs.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context as _;

use crate::Location;

/// Starts `galley ARGS` in the background, in its own process group (it outlives this
/// command and ignores its Ctrl-C), with its output appended to `log_path`.
///
/// The program is `std::env::current_exe()`: the daemons are subcommands of the galley
/// binary, which is the one user of this library (its integration tests run that binary
/// too).
pub fn spawn_daemon(
    args: &[&std::ffi::OsStr],
    log_path: &Path,
) -> anyhow::Result<std::process::Child> {
    if let Some(dir) = log_path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let executable = std::env::current_exe().context("cannot find the galley executable")?;
    std::process::Command::new(executable)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| {
            format!(
                "cannot start `galley {}`",
                args.first()
                    .map(|a| a.to_string_lossy())
                    .unwrap_or_default()
            )
        })
}

/// The last `lines` lines of a file (a daemon's log), or nothing when it cannot be read.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The proxy's log directory for a local cluster.
pub fn proxy_dir(location: &Location) -> PathBuf {
    location.dir.join("proxy")
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.log");
        std::fs::write(&path, "one\ntwo\nthree\nfour\n").unwrap();
        assert_eq!(tail(&path, 2), "three\nfour");
        assert_eq!(tail(&path, 10), "one\ntwo\nthree\nfour");
        assert_eq!(tail(&path, 0), "");
    }

    #[test]
    fn tail_of_a_missing_log_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(tail(&dir.path().join("absent.log"), 6), "");
    }
}
