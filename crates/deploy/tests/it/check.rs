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
