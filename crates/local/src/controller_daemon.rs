//! The local controller daemon that `galley up` starts and `galley down` stops: its
//! settings (the `[controller]` section or its defaults under the state directory), its
//! pid file, and the console's address.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::daemon::wait_until_ready;
use crate::{spawn_daemon, Cluster};

/// The controller's settings for a cluster: its `[controller]` section, or the
/// defaults with the state under `<dir>/controller`.
pub fn settings(cluster: &Cluster) -> spec::ControllerSpec {
    controller::settings_for(&cluster.spec, &cluster.location.dir.join("controller"))
}

/// Where a running controller keeps its pid; it removes the file when it stops.
pub fn pid_file(settings: &spec::ControllerSpec) -> PathBuf {
    settings.state_dir.join("controller.pid")
}

/// The pid of a live `galley controller` for this state dir, if any.
pub fn running_pid(settings: &spec::ControllerSpec) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file(settings))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    String::from_utf8_lossy(&cmdline)
        .contains("controller")
        .then_some(pid)
}

/// Starts the controller daemon for a local cluster unless it runs already.
pub async fn ensure_controller(cluster: &Cluster) -> anyhow::Result<()> {
    let settings = settings(cluster);
    if running_pid(&settings).is_some() {
        return Ok(());
    }
    let log_path = settings.state_dir.join("controller.log");
    let location = &cluster.location;
    let mut child = spawn_daemon(
        &[
            "controller".as_ref(),
            "--config".as_ref(),
            location.config.as_os_str(),
            "--dir".as_ref(),
            location.dir.as_os_str(),
        ],
        &log_path,
    )?;
    let started = || async { running_pid(&settings).is_some() };
    wait_until_ready(
        &mut child,
        &log_path,
        "the controller",
        100,
        "did not start within 5 s",
        started,
    )
    .await
}

/// Stops the local controller (SIGTERM) and waits for it, so that nothing heals the
/// cluster while `galley down` stops it on purpose. Returns whether one was running.
pub async fn stop_controller(cluster: &Cluster) -> anyhow::Result<bool> {
    let settings = settings(cluster);
    let Some(pid) = running_pid(&settings) else {
        return Ok(false);
    };
    // A controller that exited meanwhile is what this wants: the loop below sees it gone.
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    for _ in 0..200 {
        if kill(Pid::from_raw(pid), None).is_err() || running_pid(&settings).is_none() {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the controller (pid {pid}) did not stop within 10 s")
}

/// The console's address for a controller's settings.
pub fn console_url(settings: &spec::ControllerSpec) -> String {
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let host = match settings.address.as_str() {
        "0.0.0.0" | "::" => "127.0.0.1",
        address => address,
    };
    format!("{scheme}://{}/", spec::host_port(host, settings.port))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{console_url, pid_file, running_pid, settings};

    fn controller_at(address: &str, port: u16) -> spec::ControllerSpec {
        spec::ControllerSpec {
            address: address.to_owned(),
            port,
            ..spec::ControllerSpec::defaults(&PathBuf::from("/tmp/galley-controller"))
        }
    }

    #[test]
    fn the_console_url_names_an_address_a_browser_can_reach() {
        let cases = [
            ("127.0.0.1", 13390, "http://127.0.0.1:13390/"),
            ("0.0.0.0", 4000, "http://127.0.0.1:4000/"),
            ("::", 4000, "http://127.0.0.1:4000/"),
            ("::1", 4000, "http://[::1]:4000/"),
        ];
        for (address, port, url) in cases {
            assert_eq!(console_url(&controller_at(address, port)), url, "{address}");
        }
    }

    #[test]
    fn the_console_url_is_https_with_tls() {
        let settings = spec::ControllerSpec {
            tls: Some(spec::TlsFiles {
                cert: PathBuf::from("/etc/galley/cert.pem"),
                key: PathBuf::from("/etc/galley/key.pem"),
            }),
            ..controller_at("10.0.0.5", 4000)
        };
        assert_eq!(console_url(&settings), "https://10.0.0.5:4000/");
    }

    #[test]
    fn no_controller_runs_without_a_pid_file_or_with_a_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        let settings = spec::ControllerSpec::defaults(dir.path());
        assert_eq!(pid_file(&settings), dir.path().join("controller.pid"));
        assert_eq!(running_pid(&settings), None);
        std::fs::write(pid_file(&settings), "not a pid").unwrap();
        assert_eq!(running_pid(&settings), None);
        // A live process that is no galley controller: a pid reused after the controller died.
        let mut other = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::fs::write(pid_file(&settings), format!("{}\n", other.id())).unwrap();
        let seen = running_pid(&settings);
        other.kill().unwrap();
        other.wait().unwrap();
        assert_eq!(seen, None);
    }

    #[test]
    fn the_settings_are_the_specs_section_or_the_defaults_under_the_state_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = crate::cluster::tests::cluster_in(dir.path());
        let section = cluster.spec.controller.clone().unwrap();
        assert_eq!(settings(&cluster), section);
        cluster.spec.controller = None;
        assert_eq!(
            settings(&cluster),
            spec::ControllerSpec::defaults(&dir.path().join("controller"))
        );
    }
}
