//! `[[arbitrator]]` (garbd) and Galera segments: what validation allows and refuses, and
//! what the nodes' my.cnf and garbd's command line say.

use expect_test::{expect, Expect};

use crate::fixtures::{parse, parse_valid};

/// The outcome of parsing `text`: `ok` and its warnings, or the whole error.
fn check(text: &str, expected: Expect) {
    let outcome = match parse(text) {
        Ok(loaded) => {
            let mut outcome = String::from("ok");
            for warning in &loaded.warnings {
                outcome.push_str(&format!("\n  warning: {warning}"));
            }
            outcome
        }
        Err(error) => error.to_string(),
    };
    expected.assert_eq(&outcome);
}

/// Two data nodes on two sites and whatever `extra` adds.
fn two_sites_with(extra: &str) -> String {
    format!(
        r#"
[cluster]
name = "prod"

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
{extra}"#
    )
}

const ARBITRATOR: &str = r#"
[[arbitrator]]
name = "garbd1"
address = "10.0.3.1"
segment = 3
"#;

#[test]
fn two_data_nodes_and_an_arbitrator_are_a_quorum_without_warnings() {
    check(&two_sites_with(ARBITRATOR), expect!["ok"]);
    let spec = parse_valid(&two_sites_with(ARBITRATOR)).spec;
    assert_eq!(spec.node_names(), ["db1", "db2"], "garbd is no data node");
    assert_eq!(spec.voting_members(), 3);
    let garbd = spec.arbitrator("garbd1").unwrap();
    assert_eq!((garbd.galera_port, garbd.segment), (4567, 3));
}

#[test]
fn two_data_nodes_without_an_arbitrator_still_warn() {
    check(
        &two_sites_with(""),
        expect![[r#"
            ok
              warning: node: 2 data node(s): Galera keeps quorum through the loss of a node only with three or more"#]],
    );
}

#[test]
fn arbitrators_alone_are_refused() {
    check(
        &format!("[cluster]\nname = \"prod\"\n{ARBITRATOR}"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - node: no data nodes; an [[arbitrator]] stores no data, so a cluster needs [[node]] sections too (two data nodes and one arbitrator, or three data nodes)"#]],
    );
}

#[test]
fn as_many_arbitrators_as_data_nodes_are_refused() {
    let two = format!("{ARBITRATOR}\n[[arbitrator]]\nname = \"garbd2\"\naddress = \"10.0.4.1\"\n");
    check(
        &two_sites_with(&two),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - arbitrator: 2 arbitrator(s) for 2 data node(s): arbitrators store no data, so they must be fewer than the data nodes; otherwise they hold half the votes or more, and losing them stops every data node; allowed: fewer arbitrators than data nodes, like two data nodes and one arbitrator"#]],
    );
}

#[test]
fn an_even_number_of_votes_warns() {
    let third = "\n[[node]]\nname = \"db3\"\naddress = \"10.0.1.2\"\ndata_dir = \"/var/lib/mysql\"\nsegment = 1\n";
    check(
        &two_sites_with(&format!("{third}{ARBITRATOR}")),
        expect![[r#"
            ok
              warning: arbitrator: 3 data nodes and 1 arbitrator(s) make 4 votes: an even count can split into two halves that both lose quorum; prefer an odd count"#]],
    );
}

#[test]
fn role_on_a_node_points_at_the_arbitrator_section() {
    check(
        &two_sites_with(
            "\n[[node]]\nname = \"garbd1\"\naddress = \"10.0.3.1\"\ndata_dir = \"/var/lib/mysql\"\nrole = \"arbitrator\"\n",
        ),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - node "garbd1".role: unknown key; a [[node]] is always a data node: write an arbitrator (garbd) as an [[arbitrator]] section with name, address and galera_port"#]],
    );
}

#[test]
fn arbitrator_fields_are_checked_and_named() {
    check(
        &two_sites_with(
            r#"
[[arbitrator]]
name = "db1"
address = "10.0.1.1"
galera_port = 70000
segment = 256
data_dir = "/var/lib/mysql"
"#,
        ),
        expect![[r#"
            /etc/galley/galley.toml: 5 problems
              - arbitrator "db1".data_dir: unknown key; allowed here: name, address, galera_port, segment, log_dir, run_dir, ssh_address
              - arbitrator "db1".name: duplicate name (also a node or another arbitrator); every member of the group needs its own name
              - arbitrator "db1".galera_port: 70000 is not a port; allowed: 1 to 65535
              - arbitrator "db1".segment: 256 is not a Galera segment (gmcast.segment); allowed: 0 to 255, one number per site
              - arbitrator "db1".galera_port: port 4567 on 10.0.1.1 is already taken by node "db1".galera_port; ports must differ on one address"#]],
    );
}

#[test]
fn an_arbitrator_on_a_data_node_host_warns_and_its_port_must_be_free() {
    check(
        &two_sites_with("\n[[arbitrator]]\nname = \"garbd1\"\naddress = \"10.0.1.1\"\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - arbitrator "garbd1".galera_port: port 4567 on 10.0.1.1 is already taken by node "db1".galera_port; ports must differ on one address"#]],
    );
    check(
        &two_sites_with(
            "\n[[arbitrator]]\nname = \"garbd1\"\naddress = \"10.0.1.1\"\ngalera_port = 4600\n",
        ),
        expect![[r#"
            ok
              warning: arbitrator "garbd1".address: 10.0.1.1 is also node "db1"'s host: when that host fails the cluster loses two votes at once and the arbitrator helps nothing; run garbd on a third host"#]],
    );
}

#[test]
fn arbitrators_are_refused_with_tls_and_in_imported_clusters() {
    check(
        &two_sites_with(&format!("{ARBITRATOR}\n[tls]\n")),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - arbitrator: is not supported with [tls] yet: garbd would need a certificate of its own and the nodes' wsrep_allowlist its address; remove the [[arbitrator]] sections or the [tls] section"#]],
    );
    check(
        &format!(
            "[cluster]\nname = \"old\"\n\n[[node]]\nname = \"a\"\naddress = \"10.0.1.1\"\nclient_port = 3306\nmanaged = false\n\n[[node]]\nname = \"b\"\naddress = \"10.0.2.1\"\nclient_port = 3306\nmanaged = false\nsegment = 1\n{ARBITRATOR}"
        ),
        expect![[r#"
            /etc/galley/galley.toml: 2 problems
              - node "b".segment: not used for a node with `managed = false` (galley observes it over SQL only); allowed keys: name, address, client_port, priority, managed
              - arbitrator: is not supported for an imported cluster: galley runs garbd only beside nodes it deployed"#]],
    );
}

#[test]
fn segments_and_the_arbitrator_reach_my_cnf_and_garbd() {
    let spec = parse_valid(&two_sites_with(ARBITRATOR)).spec;
    let config = spec::render_node_config(&spec, spec.node("db2").unwrap());
    let lines: Vec<&str> = config
        .lines()
        .filter(|line| {
            line.starts_with("wsrep_cluster_address") || line.starts_with("wsrep_provider_options")
        })
        .collect();
    expect![[r#"
        [
            "wsrep_cluster_address = gcomm://10.0.1.1:4567,10.0.2.1:4567,10.0.3.1:4567",
            "wsrep_provider_options = \"gmcast.listen_addr=tcp://10.0.2.1:4567;ist.recv_addr=10.0.2.1:4568;gcache.size=256M;pc.recovery=TRUE;gmcast.segment=2;evs.keepalive_period=PT0.75S;evs.inactive_check_period=PT0.75S;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT9S;evs.install_timeout=PT9S\"",
        ]
    "#]]
    .assert_debug_eq(&lines);
    let garbd = spec.arbitrator("garbd1").unwrap();
    expect![[r#"
        [
            "--group",
            "prod",
            "--address",
            "gcomm://10.0.1.1:4567,10.0.2.1:4567,10.0.3.1:4567",
            "--name",
            "garbd1",
            "--options",
            "gmcast.listen_addr=tcp://10.0.3.1:4567;gmcast.segment=3;evs.keepalive_period=PT0.75S;evs.inactive_check_period=PT0.75S;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT9S;evs.install_timeout=PT9S",
            "--log",
            "/var/log/galley/garbd1/garbd.log",
        ]
    "#]]
    .assert_debug_eq(&garbd.garbd_args(&spec));
}
