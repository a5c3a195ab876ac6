//! Starting galley's own daemons in the background, and reading the end of their logs.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context as _};

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

/// Waits until a daemon that `spawn_daemon` started is ready, asking `ready` every 50 ms
/// `attempts` times. A daemon that exits first is reported with the end of its log;
/// one that is still not ready at the end with `late` (how long it was given) and its log.
/// `who` names it in both messages ("the proxy", "the agent of node1").
pub async fn wait_until_ready<Ready, Answer>(
    child: &mut std::process::Child,
    log_path: &Path,
    who: &str,
    attempts: u32,
    late: &str,
    mut ready: Ready,
) -> anyhow::Result<()>
where
    Ready: FnMut() -> Answer,
    Answer: std::future::Future<Output = bool>,
{
    for _ in 0..attempts {
        if let Some(status) = child.try_wait()? {
            bail!(
                "{who} exited at once ({status}); its log {} says:\n{}",
                log_path.display(),
                tail(log_path, 6)
            );
        }
        if ready().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{who} {late}; see {}", log_path.display())
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
    use std::path::Path;
    use std::process::{Child, Command};

    use super::{tail, wait_until_ready};

    /// Runs `sh -c script` with its output in `log`, as `spawn_daemon` does for galley.
    fn start(script: &str, log: &Path) -> Child {
        let file = std::fs::File::create(log).unwrap();
        Command::new("sh")
            .args(["-c", script])
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap()
    }

    #[tokio::test]
    async fn a_daemon_that_exits_at_once_is_reported_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("agent.log");
        let mut child = start("echo starting; echo 'cannot bind' >&2; exit 3", &log);
        let never = || async { false };
        let error = wait_until_ready(&mut child, &log, "the agent of node1", 200, "late", never)
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "the agent of node1 exited at once (exit status: 3); its log {} says:\nstarting\ncannot bind",
                log.display()
            )
        );
    }

    #[tokio::test]
    async fn a_daemon_is_ready_once_it_answers() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("proxy.log");
        let mut child = start("exec sleep 30", &log);
        let asked = std::cell::Cell::new(0);
        let third_time = || {
            asked.set(asked.get() + 1);
            async { asked.get() == 3 }
        };
        let outcome =
            wait_until_ready(&mut child, &log, "the proxy", 200, "late", third_time).await;
        child.kill().unwrap();
        child.wait().unwrap();
        outcome.unwrap();
        assert_eq!(asked.get(), 3);
    }

    #[tokio::test]
    async fn a_daemon_that_never_answers_is_late() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("controller.log");
        let mut child = start("exec sleep 30", &log);
        let never = || async { false };
        let outcome = wait_until_ready(
            &mut child,
            &log,
            "the controller",
            2,
            "did not start within 5 s",
            never,
        )
        .await;
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            outcome.unwrap_err().to_string(),
            format!(
                "the controller did not start within 5 s; see {}",
                log.display()
            )
        );
    }

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
