//! The bundle's check step run for real on this machine (as root, like `sudo bash`), with
//! host settings bent to each failure: a package apt does not know, a disk too small, a
//! port taken by another program. Each must stop with an error that names the cause.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::bundle::generated;

/// The inlined check of host db1 with some settings replaced; returns (success, stderr).
fn run_check(settings: &[(&str, String)]) -> (bool, String) {
    let bundle = generated(None);
    let script = deploy::inline_script(&bundle, &bundle.hosts[0], "00-check.sh")
        .expect("every host has a check step");
    let script: String = script
        .lines()
        .map(|line| {
            settings
                .iter()
                .find(|(key, _)| line.starts_with(&format!("{key}=")))
                .map_or(line.to_owned(), |(key, value)| format!("{key}='{value}'"))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut child = Command::new("bash")
        .arg("-s")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn installed_only() -> Vec<(&'static str, String)> {
    vec![
        ("PACKAGES", "mariadb-server galera-4 rsync".to_owned()),
        ("DATA_DIR", "/tmp/galley-check/data".to_owned()),
        ("PORTS", String::new()),
    ]
}

#[test]
fn passes_on_this_machine() {
    let (ok, stderr) = run_check(&installed_only());
    assert!(ok, "{stderr}");
}

#[test]
fn names_a_package_apt_does_not_know() {
    let mut settings = installed_only();
    settings[0].1 = "rsync galley-no-such-package".to_owned();
    let (ok, stderr) = run_check(&settings);
    assert!(!ok);
    assert_eq!(
        stderr.trim(),
        "error: package galley-no-such-package is missing: not installed, and apt knows no version of it (check /etc/apt/sources.list)"
    );
}

#[test]
fn names_a_disk_too_small() {
    let mut settings = installed_only();
    settings.push(("MIN_FREE_MB", "999999999".to_owned()));
    let (ok, stderr) = run_check(&settings);
    assert!(!ok);
    assert!(
        stderr.starts_with("error: disk too small: ")
            && stderr.contains(
                "MiB free for /tmp/galley-check/data (on /tmp); at least 999999999 MiB needed"
            ),
        "{stderr}"
    );
}

#[test]
fn names_a_taken_port_and_its_program() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut settings = installed_only();
    settings[2].1 = format!("{port}=node-db1-client_port");
    let (ok, stderr) = run_check(&settings);
    assert!(!ok);
    let program: String = std::fs::read_to_string("/proc/self/comm")
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(
        stderr.trim(),
        format!(
            "error: port {port} (node-db1-client_port) is taken by {program} (pid {}); stop that program or choose another port in galley.toml",
            std::process::id()
        )
    );
}

/// A data dir that is a link on the host, or that a link above it leads into a system
/// directory, is refused before anything changes, naming the field, the path and where
/// it leads; a link above it that root does not own is refused too.
#[test]
fn refuses_linked_directories_and_links_into_system_directories() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("real")).unwrap();
    std::os::unix::fs::symlink("/etc", root.join("to-etc")).unwrap();
    std::os::unix::fs::symlink(root.join("real"), root.join("to-real")).unwrap();
    std::os::unix::fs::symlink(root.join("real"), root.join("not-roots")).unwrap();
    std::os::unix::fs::lchown(root.join("not-roots"), Some(65534), Some(65534)).unwrap();
    let at = |path: &str| root.join(path).display().to_string();
    let cases = [
        (
            "DATA_DIR",
            at("to-etc"),
            format!(
                "error: data_dir {} is a symbolic link (to /etc); galley refuses links as its directories: give the real directory in galley.toml",
                at("to-etc")
            ),
        ),
        (
            "LOG_DIR",
            at("to-real"),
            format!(
                "error: log_dir {} is a symbolic link (to {}); galley refuses links as its directories: give the real directory in galley.toml",
                at("to-real"),
                at("real")
            ),
        ),
        (
            "RUN_DIR",
            at("to-etc/galley-run"),
            format!(
                "error: run_dir {} leads to /etc/galley-run, a system directory (through a symbolic link above it); give a directory of galley's own",
                at("to-etc/galley-run")
            ),
        ),
        (
            "INSTALL_DIR",
            format!("{}/..", at("to-etc")),
            format!(
                "error: install_dir {}/.. leads to /, a system directory (through a symbolic link above it); give a directory of galley's own",
                at("to-etc")
            ),
        ),
        (
            "CONTROLLER_STATE_DIR",
            at("not-roots/state"),
            format!(
                "error: controller.state_dir {} lies below {}, a symbolic link owned by uid 65534 (not root), who could point it anywhere; give a path without it",
                at("not-roots/state"),
                at("not-roots")
            ),
        ),
    ];
    for (key, value, expected) in cases {
        let mut settings = installed_only();
        settings.retain(|(k, _)| *k != key);
        settings.push((key, value.clone()));
        let (ok, stderr) = run_check(&settings);
        assert!(!ok, "{key}={value} passed");
        assert_eq!(stderr.trim(), expected, "{key}={value}");
    }
    // A real directory, reached through a root-owned link above it, is fine.
    let mut settings = installed_only();
    settings.retain(|(k, _)| *k != "DATA_DIR");
    settings.push(("DATA_DIR", at("to-real/data")));
    let (ok, stderr) = run_check(&settings);
    assert!(ok, "{stderr}");
}
