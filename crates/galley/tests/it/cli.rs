//! Command-line behaviour that needs no running cluster: clear errors for bad input.

use crate::support::{TestCluster, GALLEY};

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_bad_spec_names_the_file_and_the_field() {
    let cluster = TestCluster::new();
    let config = cluster.path().join("galley.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replacen("client_port", "clent_port", 1);
    std::fs::write(&config, text).unwrap();
    let output = cluster.galley(&["up", "--detach"]);
    assert_eq!(output.status.code(), Some(1));
    let error = stderr_of(&output);
    assert!(error.contains(&config.display().to_string()), "{error}");
    assert!(
        error.contains("node \"node1\".clent_port: unknown key; did you mean `client_port`?"),
        "{error}"
    );
    assert!(
        !cluster.path().join("secrets.toml").exists(),
        "nothing is created for a bad spec"
    );
}

#[test]
fn unknown_node_and_missing_cluster_are_explained() {
    let cluster = TestCluster::new();
    let output = cluster.galley(&["stop", "node9"]);
    assert_eq!(output.status.code(), Some(1));
    let error = stderr_of(&output);
    assert!(
        error.contains("no node named `node9`; nodes: node1, node2, node3"),
        "{error}"
    );

    let empty = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(GALLEY)
        .args(["status", "--dir"])
        .arg(empty.path().join("nothing-here"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("run `galley up` to create one"),
        "{}",
        stderr_of(&output)
    );
}

/// `galley recover` away from the controller's host would plan without the controller's
/// history (no high-water mark) and act beside it under a lease of its own.
#[test]
fn recover_refuses_on_a_host_other_than_the_controllers() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = String::from("[cluster]\nname = \"far\"\n");
    for n in 1..=3 {
        spec.push_str(&format!(
            "\n[[node]]\nname = \"db{n}\"\naddress = \"192.0.2.{n}\"\ndata_dir = \"/srv/galley/data\"\n"
        ));
    }
    // TEST-NET-1 (RFC 5737): never an address of this host.
    spec.push_str("\n[controller]\naddress = \"192.0.2.7\"\n");
    std::fs::write(dir.path().join("galley.toml"), spec).unwrap();
    for args in [&["recover"][..], &["recover", "--yes"]] {
        let output = std::process::Command::new(GALLEY)
            .args(args)
            .arg("--dir")
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        let error = stderr_of(&output);
        assert!(
            error.contains("Run `galley recover` on 192.0.2.7"),
            "{error}"
        );
    }
}

#[test]
fn help_explains_the_commands() {
    let output = std::process::Command::new(GALLEY)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for command in ["up", "down", "status", "start", "stop", "agent"] {
        assert!(
            help.contains(&format!("  {command} ")),
            "{command} missing from:\n{help}"
        );
    }
}
