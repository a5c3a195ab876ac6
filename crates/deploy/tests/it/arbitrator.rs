//! The bundle of two data nodes and an arbitrator (garbd) on a host of its own: the
//! arbitrator's host installs galera-arbitrator-4 and runs `galley-garbd` in step 60,
//! after the joins; garbd's arguments come from the spec and restart it when they change.

use expect_test::expect;

const SPEC: &str = r#"[cluster]
name = "openstack"

[deploy]
ssh_user = "deploy"

[[node]]
name = "db1"
address = "10.0.1.1"
data_dir = "/var/lib/mysql"
segment = 1

[[node]]
name = "db2"
address = "10.0.2.1"
data_dir = "/var/lib/mysql"
segment = 2

[[arbitrator]]
name = "garbd1"
address = "10.0.3.1"
ssh_address = "192.0.2.3"
segment = 3
"#;

fn generated() -> deploy::Bundle {
    let spec = spec::parse("galley.toml".as_ref(), SPEC)
        .expect("valid spec")
        .spec;
    deploy::generate(&spec, SPEC, None).expect("a deployable spec")
}

#[test]
fn the_arbitrator_gets_a_host_of_its_own_with_garbd_and_no_agent() {
    let bundle = generated();
    let listing: Vec<&str> = bundle
        .files
        .iter()
        .map(|file| file.path.as_str())
        .filter(|path| path.starts_with("hosts/garbd1/"))
        .collect();
    expect![[r#"
        [
            "hosts/garbd1/host.env",
            "hosts/garbd1/lib.sh",
            "hosts/garbd1/00-check.sh",
            "hosts/garbd1/10-install.sh",
            "hosts/garbd1/20-configure.sh",
            "hosts/garbd1/60-start-proxy-controller.sh",
            "hosts/garbd1/files/galley.toml",
            "hosts/garbd1/files/galley-supervise",
            "hosts/garbd1/files/garbd-args.txt",
            "hosts/garbd1/files/systemd/galley-garbd.service",
        ]
    "#]]
    .assert_debug_eq(&listing);
    expect![[r#"
        # Settings of host garbd1 for the bundle's steps; written by galley generate.
        HOST_LABEL='garbd1'
        NODE=''
        ROLES='garbd'
        INSTALL_DIR='/opt/galley'
        CONFIG='/etc/galley/galley.toml'
        SECRETS_FILE='/etc/galley/secrets.toml'
        SERVICE_MANAGER='auto'
        PACKAGES='iproute2 galera-arbitrator-4'
        DB_VERSION='10.11'
        DATA_DIR=''
        RUN_DIR=''
        LOG_DIR=''
        CONTROLLER_STATE_DIR=''
        SYSTEM_DIRECTORIES='/ /bin /boot /dev /dev/shm /etc /etc/galley /home /lib /lib32 /lib64 /libx32 /lost+found /media /mnt /opt /proc /root /run /run/galley /run/lock /run/user /sbin /srv /sys /tmp /usr /usr/bin /usr/include /usr/lib /usr/lib64 /usr/libexec /usr/local /usr/local/bin /usr/local/lib /usr/local/sbin /usr/sbin /usr/share /usr/src /var /var/backups /var/cache /var/lib /var/local /var/lock /var/log /var/mail /var/opt /var/run /var/spool /var/tmp'
        SYSTEM_TREES='/bin /boot /dev /etc /lib /lib32 /lib64 /libx32 /proc /sbin /sys /usr'
        MIN_FREE_MB='1024'
        PORTS='4567=arbitrator-garbd1-galera_port'
        PROXY_ADMIN_ADDRESS=''
        PROXY_ADMIN_PORT=''
        ARBITRATOR='garbd1'
        ARBITRATOR_LOG_DIR='/var/log/galley/garbd1'
    "#]]
    .assert_eq(bundle.file("hosts/garbd1/host.env").unwrap());
    let host = bundle
        .hosts
        .iter()
        .find(|host| host.label == "garbd1")
        .unwrap();
    assert_eq!(host.ssh_address, "192.0.2.3");
    assert!(host.node.is_none() && !host.bootstrap);
}

#[test]
fn garbd_runs_as_a_service_with_the_specs_arguments() {
    let bundle = generated();
    expect![[r#"
        # Written by galley generate.
        [Unit]
        Description=galley arbitrator garbd1 (garbd) of cluster openstack
        After=network-online.target
        Wants=network-online.target

        [Service]
        ExecStart=/opt/galley/bin/galley arbitrator --config /etc/galley/galley.toml --name garbd1
        Restart=always
        RestartSec=2
        KillMode=control-group
        LimitNOFILE=65536

        [Install]
        WantedBy=multi-user.target
    "#]]
    .assert_eq(
        bundle
            .file("hosts/garbd1/files/systemd/galley-garbd.service")
            .unwrap(),
    );
    expect![[r#"
        # garbd restarts when this changes; written by galley generate.
        --group
        openstack
        --address
        gcomm://10.0.1.1:4567,10.0.2.1:4567,10.0.3.1:4567
        --name
        garbd1
        --options
        gmcast.listen_addr=tcp://10.0.3.1:4567;gmcast.segment=3;evs.keepalive_period=PT0.75S;evs.inactive_check_period=PT0.75S;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT9S;evs.install_timeout=PT9S
        --log
        /var/log/galley/garbd1/garbd.log
    "#]]
    .assert_eq(bundle.file("hosts/garbd1/files/garbd-args.txt").unwrap());
    // The data nodes' my.cnf name garbd in the cluster address and their own segment.
    let config = bundle.file("hosts/db2/files/my.cnf").unwrap();
    assert!(
        config
            .contains("wsrep_cluster_address = gcomm://10.0.1.1:4567,10.0.2.1:4567,10.0.3.1:4567"),
        "{config}"
    );
    assert!(
        config.contains(";pc.recovery=TRUE;gmcast.segment=2;"),
        "{config}"
    );
    assert!(bundle
        .file("README.md")
        .unwrap()
        .contains("arbitrator garbd1 (garbd, 10.0.3.1:4567)"));
}

#[test]
fn an_arbitrator_on_a_data_node_host_is_refused() {
    let text = SPEC.replace(
        "address = \"10.0.3.1\"\nssh_address = \"192.0.2.3\"",
        "address = \"10.0.1.1\"\ngalera_port = 4600",
    );
    let spec = spec::parse("galley.toml".as_ref(), &text)
        .expect("valid, with a warning")
        .spec;
    assert_eq!(
        deploy::plan_hosts(&spec).unwrap_err().to_string(),
        "arbitrator garbd1 is on the host of node db1 (10.0.1.1); galley deploy runs garbd only on a host without a data node, or that host's failure costs two votes and the arbitrator helps nothing"
    );
}

#[test]
fn the_arbitrators_scripts_are_valid_bash() {
    for file in generated()
        .files
        .iter()
        .filter(|file| file.path.starts_with("hosts/garbd1/") && file.path.ends_with(".sh"))
    {
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
