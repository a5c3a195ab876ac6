//! The agent runs as root and writes into directories the server's OS user owns: a link
//! planted there (at my.cnf, at grastate.dat or at its temporary name, or in place of a
//! directory) is refused with an error naming it, and what it points at is never
//! touched. A system directory is refused as a data dir by the agent itself.

use std::os::unix::fs::{symlink, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use agent::api::StartMode;
use agent::{AgentError, Server};

use crate::support::TestNode;

const GRASTATE: &str = "# GALERA saved state\nversion: 2.1\nuuid:    6b0d1f2e-1111-2222-3333-444455556666\nseqno:   12\nsafe_to_bootstrap: 1\n";

fn refusal(error: AgentError) -> (u16, String) {
    match error {
        AgentError::Refused {
            status, message, ..
        } => (status, message),
        other => panic!("expected a refusal, got {other}"),
    }
}

/// A file outside the node's directories that a planted link points at.
fn victim(node: &TestNode, name: &str) -> PathBuf {
    let root = node.node().data_dir.parent().unwrap().parent().unwrap();
    let path = root.join(name);
    std::fs::write(&path, "root:precious:19000:0:99999:7:::\n").unwrap();
    path
}

fn assert_untouched(victim: &Path) {
    assert_eq!(
        std::fs::read_to_string(victim).unwrap(),
        "root:precious:19000:0:99999:7:::\n",
        "{} was written through a link",
        victim.display()
    );
    let metadata = std::fs::metadata(victim).unwrap();
    assert_eq!(
        metadata.uid(),
        nix::unistd::geteuid().as_raw(),
        "{} was chowned",
        victim.display()
    );
}

#[tokio::test]
async fn a_link_planted_at_my_cnf_is_refused_and_its_target_untouched() {
    let node = TestNode::start().await;
    let shadow = victim(&node, "shadow");
    let run_dir = &node.node().run_dir;
    std::fs::create_dir_all(run_dir).unwrap();
    symlink(&shadow, node.node().config_file()).unwrap();
    let (status, message) = refusal(node.client.init().await.unwrap_err());
    assert_eq!(status, 409);
    assert_eq!(
        message,
        format!(
            "the file {} is a symbolic link (to {}); the agent runs as root and never follows links in its directories: remove the link and give the real directory in galley.toml",
            node.node().config_file().display(),
            shadow.display()
        )
    );
    assert_untouched(&shadow);
    assert!(!node.node().data_dir.join("mysql").exists());
}

#[tokio::test]
async fn grastate_is_replaced_never_written_through_a_link() {
    let node = TestNode::start().await;
    let data_dir = &node.node().data_dir;
    std::fs::create_dir_all(data_dir).unwrap();
    std::fs::write(node.node().grastate_file(), GRASTATE).unwrap();
    // The name the agent used to write grastate.dat through before renaming it.
    let shadow = victim(&node, "shadow");
    symlink(&shadow, data_dir.join("grastate.dat.galley")).unwrap();
    node.client.clear_bootstrap_flag().await.unwrap();
    assert_untouched(&shadow);
    let written = std::fs::read_to_string(node.node().grastate_file()).unwrap();
    assert!(written.contains("safe_to_bootstrap: 0"), "{written}");
    let metadata = std::fs::symlink_metadata(node.node().grastate_file()).unwrap();
    assert!(metadata.is_file());
    assert_eq!(metadata.permissions().mode() & 0o777, 0o660);

    // grastate.dat itself a link: neither read nor replaced.
    std::fs::remove_file(node.node().grastate_file()).unwrap();
    symlink(&shadow, node.node().grastate_file()).unwrap();
    let (status, message) = refusal(node.client.clear_bootstrap_flag().await.unwrap_err());
    assert_eq!(status, 409);
    assert!(
        message.contains(&format!(
            "{} is a symbolic link; the agent never follows links in its directories",
            node.node().grastate_file().display()
        )),
        "{message}"
    );
    assert_untouched(&shadow);
}

#[tokio::test]
async fn a_linked_data_dir_is_refused_and_its_target_untouched() {
    let node = TestNode::start().await;
    let data_dir = &node.node().data_dir;
    let elsewhere = data_dir
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(data_dir.parent().unwrap()).unwrap();
    symlink(&elsewhere, data_dir).unwrap();
    let expected = format!(
        "node \"solo\".data_dir {} is a symbolic link (to {}); the agent runs as root and never follows links in its directories: remove the link and give the real directory in galley.toml",
        data_dir.display(),
        elsewhere.display()
    );
    let (status, message) = refusal(node.client.init().await.unwrap_err());
    assert_eq!((status, message.as_str()), (409, expected.as_str()));
    let (status, message) = refusal(node.client.start(StartMode::Join, false).await.unwrap_err());
    assert_eq!((status, message.as_str()), (409, expected.as_str()));
    let metadata = std::fs::metadata(&elsewhere).unwrap();
    assert_eq!(
        metadata.permissions().mode() & 0o777,
        0o755,
        "chmodded through the link"
    );
    assert_eq!(
        metadata.uid(),
        nix::unistd::geteuid().as_raw(),
        "chowned through the link"
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[tokio::test]
async fn a_system_directory_is_refused_as_a_data_dir_by_the_agent() {
    let node = TestNode::start().await;
    // The spec refuses /etc; the agent refuses it again in a spec that bypassed that.
    for (dir, reason) in [
        ("/etc", "`/etc` is a system directory"),
        ("/var/lib", "`/var/lib` is a system directory"),
        (
            "/usr/lib/mysql",
            "`/usr/lib/mysql` is inside the system tree /usr",
        ),
    ] {
        let mut spec = node.spec.clone();
        spec.nodes[0].data_dir = PathBuf::from(dir);
        let error = Server::new(spec, "solo", node.secrets.clone())
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!("node \"solo\".data_dir: {reason}; the agent will not give it to the server's OS user; give a directory of galley's own, like /var/lib/mysql, /srv/galley/db1 or /opt/galley")
        );
    }
}
