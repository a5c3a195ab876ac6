//! `galley init`, the real binary with answers piped on stdin: the written galley.toml
//! loads and validates, a bad answer is shown with the spec's problem and asked again,
//! an existing file is kept unless --force, and --non-interactive lists missing flags.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use crate::support::GALLEY;

fn init(dir: &std::path::Path, args: &[&str], answers: &str) -> Output {
    let mut child = Command::new(GALLEY)
        .arg("init")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answers.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Three nodes on this machine; blank lines take the defaults. The buffer pool size is
/// first answered wrongly (`12Q`), then right.
const LOCAL_ANSWERS: &str = "\
mariadb\n10.11\nit-init\n3\n\
db1\n127.0.0.1\n\n\n\
db2\n127.0.0.1\n\n\n\
db3\n127.0.0.1\n\n\n\
\n\n12Q\n512M\n3000\n\n\n\n\n\
\n\n\n\n\n\n\
\n\n\n\n\n";

#[test]
fn init_writes_a_spec_that_loads_re_asks_bad_answers_and_keeps_existing_files() {
    let dir = tempfile::Builder::new()
        .prefix("galley-init-")
        .tempdir_in("/tmp")
        .unwrap();
    let state = dir.path().join("state");
    let output = init(&state, &[], LOCAL_ANSWERS);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    // The bad answer was shown with the spec's own message, and the question asked again.
    assert!(
        stdout.contains("InnoDB buffer pool size (like 256M or 8G) [256M]: 12Q\n  ! `12Q` has an unknown unit; allowed: K, M, G\nInnoDB buffer pool size (like 256M or 8G) [256M]: 512M\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("galley runs MariaDB 10.11 with galera-4 only"),
        "{stdout}"
    );

    let path = state.join("galley.toml");
    let loaded = spec::load(&path).unwrap_or_else(|error| panic!("{error}"));
    let spec = loaded.spec;
    assert_eq!(spec.name, "it-init");
    assert_eq!(spec.node_names(), ["db1", "db2", "db3"]);
    assert_eq!(spec.server.buffer_pool_size, spec::ByteSize(512 << 20));
    assert_eq!(spec.server.max_connections, 3000);
    // Local nodes: files under the state directory, ports moved apart on the one host.
    assert_eq!(spec.secrets_file, state.join("secrets.toml"));
    assert_eq!(spec.nodes[1].data_dir, state.join("db2/data"));
    let client_ports: Vec<u16> = spec.nodes.iter().map(|node| node.client_port).collect();
    assert_eq!(client_ports, [3306, 3316, 3326]);
    let deploy = spec.deploy.expect("a [deploy] section");
    assert_eq!(
        (deploy.vendor.as_str(), deploy.version.as_str()),
        ("mariadb", "10.11")
    );

    // An existing galley.toml is kept without --force.
    let before = std::fs::read_to_string(&path).unwrap();
    let again = init(&state, &[], LOCAL_ANSWERS);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("already exists; run with --force"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);

    // --non-interactive names every missing required flag, and writes nothing.
    let missing = init(&state, &["--force", "--non-interactive"], "");
    let message = text(&missing.stderr);
    assert!(!missing.status.success());
    assert!(
        message.contains("--non-interactive needs these answers as flags: --cluster-name, --node name=NAME,address=ADDRESS"),
        "{message}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);

    // With --force and flags, it replaces the file without asking anything.
    let scripted = init(
        &state,
        &[
            "--force",
            "--non-interactive",
            "--cluster-name",
            "openstack",
            "--node",
            "name=db1,address=10.0.0.11",
            "--node",
            "name=db2,address=10.0.0.12",
            "--node",
            "name=db3,address=10.0.0.13,ssh_address=jump3",
            "--ssh-user",
            "ops",
        ],
        "",
    );
    assert!(scripted.status.success(), "{}", text(&scripted.stderr));
    let spec = spec::load(&path).unwrap().spec;
    assert_eq!(spec.name, "openstack");
    assert_eq!(spec.nodes[2].ssh_address, "jump3");
    assert_eq!(spec.deploy.unwrap().ssh_user, "ops");
}

/// The same in a pseudo-terminal (`script` from util-linux), as an operator runs it:
/// the terminal echoes the answers, and the file is written and loads.
#[test]
fn init_in_a_terminal_writes_a_spec_that_loads() {
    let dir = tempfile::Builder::new()
        .prefix("galley-init-pty-")
        .tempdir_in("/tmp")
        .unwrap();
    let state = dir.path().join("state");
    let command = format!("{GALLEY} init --dir {}", state.display());
    let mut child = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`script` (util-linux) runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"mariadb\n10.11\npty-test\n3\ndb1\n10.0.0.11\n\n\ndb2\n10.0.0.12\n\n\ndb3\n10.0.0.13\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(stdout.contains("Wrote "), "{stdout}");
    let spec = spec::load(&state.join("galley.toml"))
        .unwrap_or_else(|error| panic!("{error}\n{stdout}"))
        .spec;
    assert_eq!(spec.name, "pty-test");
    assert_eq!(spec.node_names(), ["db1", "db2", "db3"]);
    assert_eq!(
        spec.secrets_file,
        std::path::Path::new("/etc/galley/secrets.toml")
    );
}
