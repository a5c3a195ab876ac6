//! Snapshot tests of `galley generate`'s bundle: its file list with modes, the README,
//! each kind of host's settings, the rendered my.cnf and the service definitions. The
//! executor runs these very files, so a change here is a change to every deployment.

use expect_test::{expect, Expect};

const SPEC: &str = r#"[cluster]
name = "openstack"
secrets_file = "/etc/galley/secrets.toml"

[server]
buffer_pool_size = "1G"

[deploy]
ssh_user = "deploy"
ssh_key = "/home/ops/.ssh/id_ed25519"

[proxy]
address = "10.0.0.10"

[controller]
address = "10.0.0.10"

[[node]]
name = "db1"
address = "10.0.0.1"
data_dir = "/var/lib/mysql"

[[node]]
name = "db2"
address = "10.0.0.2"
ssh_address = "192.0.2.2"
data_dir = "/var/lib/mysql"

[[node]]
name = "db3"
address = "10.0.0.3"
data_dir = "/var/lib/mysql"
"#;

fn bundle(secrets: Option<&str>) -> deploy::Bundle {
    let spec = spec::parse("galley.toml".as_ref(), SPEC).expect("valid spec").spec;
    let secrets = secrets.map(|text| deploy::Secrets(text.to_owned()));
    deploy::generate(&spec, SPEC, secrets.as_ref()).expect("a deployable spec")
}

fn check_file(path: &str, expected: Expect) {
    let bundle = bundle(None);
    let text = bundle
        .file(path)
        .unwrap_or_else(|| panic!("no {path} in the bundle"));
    expected.assert_eq(text);
}

#[test]
fn file_list_and_modes() {
    let listing: Vec<String> = bundle(None)
        .files
        .iter()
        .map(|file| format!("{:o} {}", file.mode, file.path))
        .collect();
    expect![[r#""#]]
    .assert_eq(&listing.join("\n"));
}

#[test]
fn readme() {
    check_file("README.md", expect![[r#""#]]);
}

#[test]
fn node_host_settings() {
    check_file("hosts/db2/host.env", expect![[r#""#]]);
}

#[test]
fn proxy_and_controller_host_settings() {
    check_file("hosts/proxy/host.env", expect![[r#""#]]);
}

#[test]
fn node_config_is_the_rendered_my_cnf() {
    check_file("hosts/db1/files/my.cnf", expect![[r#""#]]);
}

#[test]
fn agent_unit_keeps_mariadbd_when_the_agent_restarts() {
    check_file("hosts/db1/files/systemd/galley-agent.service", expect![[r#""#]]);
}

#[test]
fn controller_unit() {
    check_file("hosts/proxy/files/systemd/galley-controller.service", expect![[r#""#]]);
}

#[test]
fn secrets_only_when_asked() {
    let secret = "cluster_token = \"s3cret-token\"\n";
    let without = bundle(None);
    assert!(without.files.iter().all(|file| !file.contents.contains("s3cret-token")));
    assert!(without.files.iter().all(|file| !file.path.ends_with("secrets.toml")));
    let with = bundle(Some(secret));
    let secret_files: Vec<_> = with
        .files
        .iter()
        .filter(|file| file.path.ends_with("files/secrets.toml"))
        .collect();
    assert_eq!(secret_files.len(), 4, "one copy per host");
    assert!(secret_files.iter().all(|file| file.mode == 0o600 && file.contents == secret));
    assert!(with.file("README.md").unwrap().contains("CONTAINS THE SECRETS"));
}

#[test]
fn every_script_is_valid_bash() {
    let bundle = bundle(None);
    for file in bundle.files.iter().filter(|file| file.path.ends_with(".sh") || file.path.ends_with("galley-supervise")) {
        let output = std::process::Command::new("bash")
            .arg("-n")
            .arg("-c")
            .arg(&file.contents)
            .output()
            .expect("bash runs");
        assert!(
            output.status.success(),
            "{}: {}",
            file.path,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn inlined_check_is_self_contained() {
    let bundle = bundle(None);
    let host = &bundle.hosts[0];
    let script = deploy::inline_script(&bundle, host, "00-check.sh").expect("every host has a check");
    assert!(!script.contains("galley:inline"), "{script}");
    assert!(script.contains("NODE='db1'"));
    assert!(script.contains("use_systemd()"));
    assert!(deploy::inline_script(&bundle, host, "50-join.sh").is_none(), "db1 bootstraps, it does not join");
}
