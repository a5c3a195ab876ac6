//! Validation of galley.toml: every problem names its field and what is allowed, all
//! problems are reported at once, and risky-but-legal settings only warn.

use expect_test::{expect, Expect};
use spec::{ByteSize, SstMethod};

use crate::fixtures::{parse, parse_valid, spread_cluster_with, LOCAL_CLUSTER, SPEC_PATH};

/// Parses `text` and compares the outcome with `expected`: the full error text when the
/// spec is rejected, or `ok` followed by any warnings when it is accepted.
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

#[test]
fn unknown_node_key_suggests_the_nearest() {
    check(
        r#"
[cluster]
name = "prod"

[[node]]
name = "db1"
address = "10.0.0.1"
data_dir = "/var/lib/mysql"
clent_port = 3307

[[node]]
name = "db2"
address = "10.0.0.2"
data_dir = "/var/lib/mysql"

[[node]]
name = "db3"
address = "10.0.0.3"
data_dir = "/var/lib/mysql"
"#,
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - node "db1".clent_port: unknown key; did you mean `client_port`?"#]],
    );
}

#[test]
fn unknown_server_key_suggests_the_nearest() {
    check(
        &spread_cluster_with("[server]\nbufer_pool_size = \"1G\"\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - server.bufer_pool_size: unknown key; did you mean `buffer_pool_size`?"#]],
    );
}

#[test]
fn unknown_key_far_from_any_lists_what_is_allowed() {
    check(
        &spread_cluster_with("[proxy]\ncolour = \"blue\"\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - proxy.colour: unknown key; allowed here: address, writer_port, reader_port, multi_writer_port, admin_address, admin_port, probe_interval_ms, probe_timeout_ms, rise, fall, connect_timeout_ms, greeting_timeout_ms, login_timeout_ms, drain_timeout_ms, idle_timeout_s, recv_queue_limit, failback, writer_grace_ms, max_connections, max_connections_per_source, forwarding, writer_decision"#]],
    );
}

#[test]
fn unknown_forwarding_mode_lists_the_modes() {
    check(
        &spread_cluster_with("[proxy]\nforwarding = \"splice\"\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - proxy.forwarding: `splice` is not a forwarding mode; allowed: auto (default), kernel, userspace"#]],
    );
}

#[test]
fn unknown_top_level_section() {
    check(
        &spread_cluster_with("[monitoring]\nenabled = true\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - monitoring: unknown key; allowed here: cluster, server, node, arbitrator, proxy, controller, deploy, backup, tls"#]],
    );
}

#[test]
fn misspelt_top_level_section_suggests_the_nearest() {
    check(
        &spread_cluster_with("[servers]\nmax_connections = 100\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - servers: unknown key; did you mean `server`?"#]],
    );
}

#[test]
fn missing_cluster_name() {
    check(
        r#"
[[node]]
name = "db1"
address = "10.0.0.1"
data_dir = "/var/lib/mysql"

[[node]]
name = "db2"
address = "10.0.0.2"
data_dir = "/var/lib/mysql"

[[node]]
name = "db3"
address = "10.0.0.3"
data_dir = "/var/lib/mysql"
"#,
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - cluster.name: missing; name the cluster, like `name = "openstack"`"#]],
    );
}

#[test]
fn cluster_name_with_bad_characters() {
    check(
        r#"
[cluster]
name = "prod cluster;"

[[node]]
name = "db1"
address = "10.0.0.1"
data_dir = "/var/lib/mysql"

[[node]]
name = "db2"
address = "10.0.0.2"
data_dir = "/var/lib/mysql"

[[node]]
name = "db3"
address = "10.0.0.3"
data_dir = "/var/lib/mysql"
"#,
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - cluster.name: `prod cluster;` is not allowed; use 1 to 64 letters, digits, `_` or `-`, not starting with `-`"#]],
    );
}

#[test]
fn duplicate_node_names() {
    check(
        r#"
[cluster]
name = "prod"

[[node]]
name = "db1"
address = "10.0.0.1"
data_dir = "/var/lib/mysql"

[[node]]
name = "db2"
address = "10.0.0.2"
data_dir = "/var/lib/mysql"

[[node]]
name = "db1"
address = "10.0.0.3"
data_dir = "/var/lib/mysql"
"#,
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - node "db1".name: duplicate node name (also node #1); every node needs its own name"#]],
    );
}

#[test]
fn duplicate_ports_on_one_address() {
    check(
        r#"
[cluster]
name = "local"

[[node]]
name = "db1"
address = "127.0.0.1"
data_dir = "/srv/db1"

[[node]]
name = "db2"
address = "127.0.0.1"
client_port = 3316
galera_port = 4577
ist_port = 4578
sst_port = 4454
agent_port = 4580
data_dir = "/srv/db2"

[[node]]
name = "db3"
address = "127.0.0.2"
data_dir = "/srv/db3"
"#,
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - node "db2".agent_port: port 4580 on 127.0.0.1 is already taken by node "db1".agent_port; ports must differ on one address"#]],
    );
}

#[test]
fn duplicate_ports_within_one_node() {
    check(
        &spread_cluster_with(
            r#"
[[node]]
name = "db4"
address = "10.0.0.4"
data_dir = "/var/lib/mysql"
ist_port = 4567

[[node]]
name = "db5"
address = "10.0.0.5"
data_dir = "/var/lib/mysql"
"#,
        ),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - node "db4".ist_port: port 4567 on 10.0.0.4 is already taken by node "db4".galera_port; ports must differ on one address"#]],
    );
}

#[test]
fn proxy_port_colliding_with_a_node_port() {
    check(
        r#"
[cluster]
name = "prod"

[[node]]
name = "db1"
address = "127.0.0.1"
data_dir = "/srv/db1"

[[node]]
name = "db2"
address = "10.0.0.2"
data_dir = "/var/lib/mysql"

[[node]]
name = "db3"
address = "10.0.0.3"
data_dir = "/var/lib/mysql"

[proxy]
address = "127.0.0.1"
"#,
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - proxy.writer_port: port 3306 on 127.0.0.1 is already taken by node "db1".client_port; ports must differ on one address"#]],
    );
}

#[test]
fn same_ports_on_different_addresses_are_fine() {
    let loaded = parse_valid(crate::fixtures::SPREAD_CLUSTER);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    for node in &loaded.spec.nodes {
        assert_eq!(node.client_port, 3306, "{}", node.name);
        assert_eq!(node.galera_port, 4567, "{}", node.name);
    }
}

#[test]
fn bad_node_addresses() {
    check(
        r#"
[cluster]
name = "prod"

[[node]]
name = "db1"
address = "300.1.1.1x"
data_dir = "/var/lib/mysql"

[[node]]
name = "db2"
address = "0.0.0.0"
data_dir = "/var/lib/mysql"

[[node]]
name = "db3"
address = "db_3.example.com"
data_dir = "/var/lib/mysql"

[[node]]
name = "db4"
address = "300.1.1.1"
data_dir = "/var/lib/mysql"

[[node]]
name = "db5"
address = "::"
data_dir = "/var/lib/mysql"

[[node]]
name = "db6"
address = "-db6.example.com"
data_dir = "/var/lib/mysql"

[[node]]
name = "db7"
address = "10.0.0.7:3306"
data_dir = "/var/lib/mysql"
"#,
        expect![[r#"
            /etc/galley/galley.toml: 7 problems
              - node "db1".address: `300.1.1.1x` is neither an IP address nor a host name
              - node "db2".address: `0.0.0.0` listens everywhere but cannot be dialled; give the address the other nodes reach
              - node "db3".address: `db_3.example.com` is neither an IP address nor a host name
              - node "db4".address: `300.1.1.1` is neither an IP address nor a host name
              - node "db5".address: `::` listens everywhere but cannot be dialled; give the address the other nodes reach
              - node "db6".address: `-db6.example.com` is neither an IP address nor a host name
              - node "db7".address: `10.0.0.7:3306` is neither an IP address nor a host name"#]],
    );
}

#[test]
fn host_names_and_ipv6_addresses_are_accepted() {
    check(
        r#"
[cluster]
name = "prod"

[[node]]
name = "db1"
address = "db1.example.com"
data_dir = "/var/lib/mysql"

[[node]]
name = "db2"
address = "fd00::2"
data_dir = "/var/lib/mysql"

[[node]]
name = "db3"
address = "db3"
data_dir = "/var/lib/mysql"
"#,
        expect!["ok"],
    );
}

#[test]
fn relative_data_dir() {
    check(
        r#"
[cluster]
name = "prod"

[[node]]
name = "db1"
address = "10.0.0.1"
data_dir = "var/lib/mysql"

[[node]]
name = "db2"
address = "10.0.0.2"
data_dir = "/var/lib/mysql"

[[node]]
name = "db3"
address = "10.0.0.3"
data_dir = "/var/lib/mysql"
"#,
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - node "db1".data_dir: `var/lib/mysql` is relative; give an absolute path; allowed: an absolute path of letters, digits and `.` `_` `-` `+` `@` `/`, without empty, `.` or `..` components, at most 255 bytes"#]],
    );
}

#[test]
fn run_dir_too_long_for_a_unix_socket() {
    // 96 bytes of run_dir plus "/mysqld.sock" is 108, one more than sun_path can hold.
    let long_run_dir = format!("/run/{}", "x".repeat(91));
    assert_eq!(long_run_dir.len(), 96);
    let fits = format!("/run/{}", "x".repeat(90));
    let text = |run_dir: &str| {
        spread_cluster_with(&format!(
            "[[node]]\nname = \"db4\"\naddress = \"10.0.0.4\"\ndata_dir = \"/var/lib/mysql\"\nrun_dir = \"{run_dir}\"\n\n\
             [[node]]\nname = \"db5\"\naddress = \"10.0.0.5\"\ndata_dir = \"/var/lib/mysql\"\n"
        ))
    };
    check(&text(&fits), expect!["ok"]);
    check(
        &text(&long_run_dir),
        expect![[r#"
        /etc/galley/galley.toml: 1 problem
          - node "db4".run_dir: too long for a unix socket (108 bytes with /mysqld.sock; the limit is 107); choose a shorter path"#]],
    );
}

#[test]
fn stop_timeout_is_bounded_so_no_command_waits_forever() {
    check(
        &spread_cluster_with("[server]\nstop_timeout_s = 1200\n"),
        expect!["ok"],
    );
    check(
        &spread_cluster_with("[server]\nstop_timeout_s = 86400\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - server.stop_timeout_s: 86400 is out of range; allowed: 10 to 3600 seconds"#]],
    );
}

#[test]
fn sst_method_must_be_rsync_or_mariabackup() {
    check(
        &spread_cluster_with("[server]\nsst_method = \"xtrabackup-v2\"\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - server.sst_method: `xtrabackup-v2` is not supported; allowed: rsync, mariabackup"#]],
    );
}

#[test]
fn unsafe_flush_setting_is_an_error() {
    check(
        &spread_cluster_with("[server]\ninnodb_flush_log_at_trx_commit = 5\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - server.innodb_flush_log_at_trx_commit: 5 is not allowed; allowed: 0, 1 (default, safe), 2"#]],
    );
}

#[test]
fn causal_reads_must_be_a_boolean() {
    check(
        &spread_cluster_with("[server]\ncausal_reads = \"yes\"\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - TOML parse error at line 21, column 16
                   |
                21 | causal_reads = "yes"
                   |                ^^^^^
                invalid type: string "yes", expected a boolean"#]],
    );
}

#[test]
fn the_evs_suspect_timeout_has_a_range() {
    check(
        &spread_cluster_with("[server]\nevs_suspect_timeout_ms = 100\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - server.evs_suspect_timeout_ms: 100 is out of range; allowed: 500 to 60000 milliseconds (Galera's own default is 5000)"#]],
    );
}

#[test]
fn the_hang_fence_is_off_or_within_its_range() {
    check(
        &spread_cluster_with("[server]\nhang_fence_ms = 200\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - server.hang_fence_ms: 200 is out of range; allowed: 0 (no fence) or 500 to 600000 milliseconds"#]],
    );
    let off = parse_valid(&spread_cluster_with("[server]\nhang_fence_ms = 0\n"));
    assert_eq!(off.spec.server.hang_fence_ms, 0);
    assert_eq!(parse_valid(LOCAL_CLUSTER).spec.server.hang_fence_ms, 1000);
}

#[test]
fn flush_zero_only_warns() {
    check(
        &spread_cluster_with("[server]\ninnodb_flush_log_at_trx_commit = 0\n"),
        expect![[r#"
            ok
              warning: server.innodb_flush_log_at_trx_commit: 0 can lose committed transactions when nodes crash together; 1 is the safe setting"#]],
    );
    let loaded = parse_valid(&spread_cluster_with(
        "[server]\ninnodb_flush_log_at_trx_commit = 0\n",
    ));
    assert_eq!(loaded.spec.server.innodb_flush_log_at_trx_commit, 0);
}

#[test]
fn buffer_pool_too_small() {
    check(
        &spread_cluster_with("[server]\nbuffer_pool_size = \"16M\"\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - server.buffer_pool_size: 16M is too small; the minimum is 32M"#]],
    );
}

#[test]
fn bad_size_syntax() {
    check(
        &spread_cluster_with(
            "[server]\nbuffer_pool_size = \"lots\"\nlog_file_size = \"1T\"\ngcache_size = 1.5\n",
        ),
        expect![[r#"
            /etc/galley/galley.toml: 3 problems
              - server.buffer_pool_size: `lots` is not a size; write bytes or a number with K, M or G, like 256M
              - server.log_file_size: `1T` has an unknown unit; allowed: K, M, G
              - server.gcache_size: `1.5` is not a size; write bytes or a string like "256M""#]],
    );
}

#[test]
fn sizes_accept_bytes_and_suffixes() {
    let loaded = parse_valid(&spread_cluster_with(
        "[server]\nbuffer_pool_size = \"2g\"\nlog_file_size = 134217728\ngcache_size = \"512M\"\n",
    ));
    let server = &loaded.spec.server;
    assert_eq!(server.buffer_pool_size, ByteSize::mib(2048));
    assert_eq!(server.log_file_size, ByteSize::mib(128));
    assert_eq!(server.gcache_size, ByteSize::mib(512));
}

#[test]
fn toml_type_error_names_the_file() {
    check(
        &spread_cluster_with(
            "[[node]]\nname = \"db4\"\naddress = \"10.0.0.4\"\ndata_dir = \"/var/lib/mysql\"\nclient_port = \"abc\"\n",
        ),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - TOML parse error at line 24, column 15
                   |
                24 | client_port = "abc"
                   |               ^^^^^
                invalid type: string "abc", expected i64"#]],
    );
}

#[test]
fn toml_syntax_error_names_the_file() {
    check(
        "[cluster\nname = \"prod\"\n",
        expect![[r#"
        /etc/galley/galley.toml: 1 problem
          - TOML parse error at line 1, column 9
              |
            1 | [cluster
              |         ^
            invalid table header
            expected `.`, `]`"#]],
    );
}

#[test]
fn shared_data_dir_on_one_address() {
    check(
        r#"
[cluster]
name = "local"

[[node]]
name = "db1"
address = "127.0.0.1"
data_dir = "/srv/mysql"

[[node]]
name = "db2"
address = "127.0.0.1"
client_port = 3316
galera_port = 4577
ist_port = 4578
sst_port = 4454
agent_port = 4581
data_dir = "/srv/mysql"

[[node]]
name = "db3"
address = "127.0.0.2"
data_dir = "/srv/mysql"
"#,
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - node "db2".data_dir: /srv/mysql is also node "db1".data_dir on the same host; each node needs its own"#]],
    );
}

#[test]
fn fewer_than_three_nodes_only_warns() {
    check(
        r#"
[cluster]
name = "pair"

[[node]]
name = "db1"
address = "10.0.0.1"
data_dir = "/var/lib/mysql"

[[node]]
name = "db2"
address = "10.0.0.2"
data_dir = "/var/lib/mysql"
"#,
        expect![[r#"
            ok
              warning: node: 2 data node(s): Galera keeps quorum through the loss of a node only with three or more"#]],
    );
}

#[test]
fn zero_nodes_is_an_error() {
    check(
        "[cluster]\nname = \"empty\"\n",
        expect![[r#"
        /etc/galley/galley.toml: 1 problem
          - node: no data nodes; add at least one [[node]] section (three for automatic quorum)"#]],
    );
}

#[test]
fn even_node_count_warns() {
    check(
        &spread_cluster_with(
            "[[node]]\nname = \"db4\"\naddress = \"10.0.0.4\"\ndata_dir = \"/var/lib/mysql\"\n",
        ),
        expect![[r#"
            ok
              warning: node: 4 data nodes: an even count can split into two halves that both lose quorum; prefer an odd count"#]],
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    check(
        r#"
[cluster]
name = "prod"
secrets_file = "secrets.toml"

[server]
sst_method = "xtrabackup"
innodb_flush_log_at_trx_commit = 5
max_connections = 1

[[node]]
name = "db1"
address = "10.0.0.1"
data_dir = "data"
clent_port = 3307

[[node]]
address = "10.0.0.2"
data_dir = "/var/lib/mysql"

[[node]]
name = "db3"
address = "10.0.0.3"
data_dir = "/var/lib/mysql"
priority = 5000
"#,
        expect![[r#"
            /etc/galley/galley.toml: 8 problems
              - cluster.secrets_file: `secrets.toml` is relative; give an absolute path; allowed: an absolute path of letters, digits and `.` `_` `-` `+` `@` `/`, without empty, `.` or `..` components, at most 255 bytes
              - server.sst_method: `xtrabackup` is not supported; allowed: rsync, mariabackup
              - server.innodb_flush_log_at_trx_commit: 5 is not allowed; allowed: 0, 1 (default, safe), 2
              - server.max_connections: 1 is out of range; allowed: 10 to 100000
              - node "db1".clent_port: unknown key; did you mean `client_port`?
              - node "db1".data_dir: `data` is relative; give an absolute path; allowed: an absolute path of letters, digits and `.` `_` `-` `+` `@` `/`, without empty, `.` or `..` components, at most 255 bytes
              - node #2.name: missing; every node needs a name, like `name = "db1"`
              - node "db3".priority: 5000 is out of range; allowed: 0 to 1000, lower is preferred"#]],
    );
}

#[test]
fn error_display_starts_with_the_file_path() {
    let error = parse("[cluster]\nname = \"bad name\"\n").unwrap_err();
    assert_eq!(error.file.to_str(), Some(SPEC_PATH));
    assert_eq!(error.problems.len(), 2, "{error}");
    let text = error.to_string();
    assert!(
        text.starts_with(&format!("{SPEC_PATH}: 2 problems\n")),
        "{text}"
    );
}

#[test]
fn valid_local_cluster_gets_defaults() {
    let loaded = parse_valid(LOCAL_CLUSTER);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let spec = &loaded.spec;
    assert_eq!(spec.name, "local");
    assert_eq!(spec.secrets_file.to_str(), Some("/etc/galley/secrets.toml"));
    assert_eq!(spec.node_names(), ["db1", "db2", "db3"]);
    assert_eq!(spec.proxy, None);
    assert_eq!(spec.controller, None);

    let server = &spec.server;
    assert_eq!(server.os_user, "mysql");
    assert_eq!(server.innodb_flush_log_at_trx_commit, 1);
    assert_eq!(server.character_set, "utf8mb4");
    assert_eq!(server.collation, "utf8mb4_general_ci");
    assert_eq!(server.sst_method, SstMethod::Rsync);
    assert_eq!(server.max_connections, 2000);
    assert_eq!(server.buffer_pool_size, ByteSize::mib(256));
    assert_eq!(server.log_file_size, ByteSize::mib(96));
    assert_eq!(server.gcache_size, ByteSize::mib(256));

    for (position, node) in spec.nodes.iter().enumerate() {
        assert_eq!(node.priority, position as u32 + 1, "{}", node.name);
    }
    assert_eq!(
        spec.cluster_address(),
        "gcomm://127.0.0.1:4567,127.0.0.1:4577,127.0.0.1:4587"
    );

    let db2 = spec.node("db2").expect("db2 is in the spec");
    assert_eq!(
        db2.socket_path().to_str(),
        Some("/srv/galley/db2/run/mysqld.sock")
    );
    assert_eq!(
        db2.grastate_file().to_str(),
        Some("/srv/galley/db2/data/grastate.dat")
    );
    assert_eq!(db2.agent_address(), "127.0.0.1:4581");
}

#[test]
fn node_defaults_on_separate_hosts() {
    let loaded = parse_valid(crate::fixtures::SPREAD_CLUSTER);
    let db3 = loaded.spec.node("db3").expect("db3 is in the spec");
    assert_eq!(
        db3.ports(),
        [
            ("client_port", 3306),
            ("galera_port", 4567),
            ("ist_port", 4568),
            ("sst_port", 4444),
            ("agent_port", 4580),
        ]
    );
    assert_eq!(db3.run_dir.to_str(), Some("/run/galley/db3"));
    assert_eq!(db3.log_dir.to_str(), Some("/var/log/galley/db3"));
    assert_eq!(db3.priority, 3);
    assert_eq!(
        loaded.spec.cluster_address(),
        "gcomm://10.0.0.1:4567,10.0.0.2:4567,10.0.0.3:4567"
    );
}

#[test]
fn ipv6_members_are_bracketed_in_the_cluster_address() {
    let loaded = parse_valid(
        r#"
[cluster]
name = "six"

[[node]]
name = "db1"
address = "fd00::1"
data_dir = "/var/lib/mysql"

[[node]]
name = "db2"
address = "fd00::2"
data_dir = "/var/lib/mysql"

[[node]]
name = "db3"
address = "db3.example.com"
data_dir = "/var/lib/mysql"
"#,
    );
    assert_eq!(
        loaded.spec.cluster_address(),
        "gcomm://[fd00::1]:4567,[fd00::2]:4567,db3.example.com:4567"
    );
}

#[test]
fn explicit_priority_overrides_position() {
    let loaded =
        parse_valid(&LOCAL_CLUSTER.replace("name = \"db3\"\n", "name = \"db3\"\npriority = 0\n"));
    let priorities: Vec<u32> = loaded.spec.nodes.iter().map(|node| node.priority).collect();
    assert_eq!(priorities, [1, 2, 0]);
}

#[test]
fn deploy_section_defaults() {
    let loaded = parse_valid(&spread_cluster_with("[deploy]\nssh_user = \"ops\"\n"));
    let deploy = loaded.spec.deploy.expect("the [deploy] section is kept");
    assert_eq!(deploy.ssh_user, "ops");
    assert_eq!(deploy.ssh_port, 22);
    assert_eq!(deploy.ssh_key, None);
    assert_eq!(deploy.install_dir, std::path::PathBuf::from("/opt/galley"));
    assert_eq!(deploy.vendor, "mariadb");
    assert_eq!(deploy.version, "10.11");
    assert_eq!(deploy.service_manager, spec::ServiceManager::Auto);
    assert_eq!(deploy.install, spec::Install::Binary);
    // Without ssh_address a node is reached over SSH at its cluster address.
    assert_eq!(
        loaded.spec.nodes[0].ssh_address,
        loaded.spec.nodes[0].address
    );
}

#[test]
fn deploy_section_accepts_every_key() {
    let loaded = parse_valid(&spread_cluster_with(
        "[deploy]\nssh_user = \"ops\"\nssh_port = 2222\nssh_key = \"/root/.ssh/id_ed25519\"\ninstall_dir = \"/srv/galley\"\nvendor = \"mariadb\"\nversion = \"10.11\"\nservice_manager = \"supervised\"\n",
    ));
    let deploy = loaded.spec.deploy.expect("the [deploy] section is kept");
    assert_eq!(deploy.ssh_port, 2222);
    assert_eq!(
        deploy.ssh_key,
        Some(std::path::PathBuf::from("/root/.ssh/id_ed25519"))
    );
    assert_eq!(deploy.install_dir, std::path::PathBuf::from("/srv/galley"));
    assert_eq!(deploy.service_manager, spec::ServiceManager::Supervised);
}

#[test]
fn deploy_section_rejects_bad_values() {
    check(
        &spread_cluster_with(
            "[deploy]\nssh_port = 0\nssh_key = \"id_rsa\"\ninstall_dir = \"opt/galley\"\nvendor = \"mysql\"\nversion = \"11.4\"\nservice_manager = \"openrc\"\nsh_user = \"ops\"\n",
        ),
        expect![[r#"
            /etc/galley/galley.toml: 8 problems
              - deploy.sh_user: unknown key; did you mean `ssh_user`?
              - deploy.ssh_user: missing; the SSH user with passwordless sudo on every host, like `ssh_user = "deploy"`
              - deploy.ssh_key: `id_rsa` is relative; give an absolute path; allowed: an absolute path of letters, digits and `.` `_` `-` `+` `@` `/`, without empty, `.` or `..` components, at most 255 bytes
              - deploy.install_dir: `opt/galley` is relative; give an absolute path; allowed: an absolute path of letters, digits and `.` `_` `-` `+` `@` `/`, without empty, `.` or `..` components, at most 255 bytes
              - deploy.vendor: `mysql` is not supported; allowed: mariadb
              - deploy.version: `11.4` is not supported; allowed: 10.11 (the MariaDB of Debian 12's packages)
              - deploy.service_manager: `openrc` is not allowed; allowed: auto, systemd, supervised
              - deploy.ssh_port: 0 is not a port; allowed: 1 to 65535"#]],
    );
}

#[test]
fn deploy_can_install_the_debian_package() {
    let loaded = parse_valid(&spread_cluster_with(
        "[deploy]\nssh_user = \"ops\"\ninstall = \"package\"\npackage = \"/home/ops/galley_0.1.0_amd64.deb\"\n",
    ));
    let deploy = loaded.spec.deploy.expect("the [deploy] section is kept");
    assert_eq!(
        deploy.install,
        spec::Install::Package("/home/ops/galley_0.1.0_amd64.deb".into())
    );
    assert_eq!(
        deploy.install.galley_path(&deploy.install_dir),
        std::path::PathBuf::from("/usr/bin/galley")
    );
    assert_eq!(
        spec::Install::Binary.galley_path(&deploy.install_dir),
        std::path::PathBuf::from("/opt/galley/bin/galley")
    );
}

#[test]
fn deploy_package_settings_are_checked() {
    let with = |lines: &str| spread_cluster_with(&format!("[deploy]\nssh_user = \"ops\"\n{lines}"));
    check(
        &with("install = \"apt\"\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - deploy.install: `apt` is not allowed; allowed: binary, package"#]],
    );
    check(
        &with("install = \"package\"\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - deploy.package: missing; with install = "package", the Debian package to install on every host, like `package = "/home/ops/galley_0.1.0_amd64.deb"` (scripts/build-deb.sh builds it)"#]],
    );
    check(
        &with("package = \"/home/ops/galley.deb\"\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - deploy.package: is set, but deploy.install is `binary` (the default); add `install = "package"` to install galley from this package, or remove `package`"#]],
    );
    check(
        &with("install = \"package\"\npackage = \"galley.deb\"\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - deploy.package: `galley.deb` is relative; give an absolute path; allowed: an absolute path of letters, digits and `.` `_` `-` `+` `@` `/`, without empty, `.` or `..` components, at most 255 bytes"#]],
    );
    check(
        &with("install = \"package\"\npackage = \"/home/ops/galley_0.1.0_amd64.tar.gz\"\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - deploy.package: `/home/ops/galley_0.1.0_amd64.tar.gz` is not named as a Debian package (`.deb`); give the file scripts/build-deb.sh wrote, like target/debian/galley_0.1.0_amd64.deb"#]],
    );
    check(
        &with("install = \"package\"\npackage = \"/home/ops/$(id).deb\"\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - deploy.package: `/home/ops/$(id).deb` holds `$` at byte 11, which galley does not allow in paths; allowed: an absolute path of letters, digits and `.` `_` `-` `+` `@` `/`, without empty, `.` or `..` components, at most 255 bytes"#]],
    );
}

#[test]
fn deploy_user_must_be_a_user_name() {
    check(
        &spread_cluster_with("[deploy]\nssh_user = \"-oProxyCommand=x\"\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - deploy.ssh_user: `-oProxyCommand=x` is not a user name; use 1 to 32 letters, digits, `_`, `-` or `.`, not starting with `-`"#]],
    );
}

#[test]
fn node_ssh_address_is_checked() {
    let text = SPREAD_CLUSTER_WITH_SSH.to_owned();
    check(
        &text,
        expect![[r#"
        /etc/galley/galley.toml: 1 problem
          - node "db1".ssh_address: `bastion..example` is neither an IP address nor a host name"#]],
    );
}

const SPREAD_CLUSTER_WITH_SSH: &str = r#"
[cluster]
name = "prod"

[[node]]
name = "db1"
address = "10.0.0.1"
ssh_address = "bastion..example"
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

#[test]
fn controller_tls_needs_both_files_with_absolute_paths() {
    let with = |lines: &str| format!("{LOCAL_CLUSTER}\n[controller]\n{lines}\n");
    let loaded = parse_valid(&with(
        "tls_cert = \"/etc/galley/api.crt\"\ntls_key = \"/etc/galley/api.key\"",
    ));
    let tls = loaded.spec.controller.unwrap().tls.unwrap();
    assert_eq!(tls.cert.to_str(), Some("/etc/galley/api.crt"));
    assert_eq!(tls.key.to_str(), Some("/etc/galley/api.key"));
    assert_eq!(
        parse_valid(&with("port = 4600"))
            .spec
            .controller
            .unwrap()
            .tls,
        None
    );
    for (lines, field) in [
        ("tls_cert = \"/etc/galley/api.crt\"", "controller.tls_key"),
        ("tls_key = \"/etc/galley/api.key\"", "controller.tls_cert"),
        (
            "tls_cert = \"api.crt\"\ntls_key = \"/k\"",
            "controller.tls_cert",
        ),
    ] {
        let error = parse(&with(lines)).unwrap_err();
        assert!(
            error.problems.iter().any(|problem| problem.field == field),
            "{lines}: {error}"
        );
    }
}

#[test]
fn imported_nodes_need_only_an_address_and_a_client_port() {
    let loaded = parse_valid(
        r#"
[cluster]
name = "legacy"

[[node]]
name = "db1"
address = "10.0.0.1"
client_port = 3306
managed = false

[[node]]
name = "db2"
address = "10.0.0.2"
client_port = 3306
managed = false

[[node]]
name = "db3"
address = "10.0.0.3"
client_port = 3307
managed = false
"#,
    );
    assert!(loaded.spec.is_imported());
    let db3 = loaded.spec.node("db3").expect("db3 is in the spec");
    assert!(!db3.managed);
    assert_eq!(db3.ports(), [("client_port", 3307)]);
    assert_eq!(db3.client_address(), "10.0.0.3:3307");
    assert!(db3.data_dir.as_os_str().is_empty());
}

#[test]
fn a_deployed_node_is_managed_by_default() {
    let loaded = parse_valid(crate::fixtures::SPREAD_CLUSTER);
    assert!(!loaded.spec.is_imported());
    assert!(loaded.spec.nodes.iter().all(|node| node.managed));
}

#[test]
fn imported_nodes_refuse_agent_keys_and_need_a_client_port() {
    check(
        r#"
[cluster]
name = "legacy"

[[node]]
name = "db1"
address = "10.0.0.1"
managed = false
data_dir = "/var/lib/mysql"
agent_port = 4580

[[node]]
name = "db2"
address = "10.0.0.2"
client_port = 3306
managed = false

[[node]]
name = "db3"
address = "10.0.0.3"
client_port = 3306
managed = false
"#,
        expect![[r#"
            /etc/galley/galley.toml: 3 problems
              - node "db1".agent_port: not used for a node with `managed = false` (galley observes it over SQL only); allowed keys: name, address, client_port, priority, managed
              - node "db1".data_dir: not used for a node with `managed = false` (galley observes it over SQL only); allowed keys: name, address, client_port, priority, managed
              - node "db1".client_port: missing; the port where the node takes SQL clients, like 3306"#]],
    );
}

#[test]
fn managed_and_imported_nodes_do_not_mix() {
    check(
        r#"
[cluster]
name = "legacy"

[[node]]
name = "db1"
address = "10.0.0.1"
client_port = 3306
managed = false

[[node]]
name = "db2"
address = "10.0.0.2"
data_dir = "/var/lib/mysql"

[[node]]
name = "db3"
address = "10.0.0.3"
data_dir = "/var/lib/mysql"
"#,
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - node: db1 set `managed = false` while the other nodes are managed; a cluster is either deployed by galley (every node managed) or imported (every node `managed = false`)"#]],
    );
}

#[test]
fn a_writer_address_points_clients_at_an_existing_balancer() {
    let with =
        |line: &str| LOCAL_CLUSTER.replacen("[cluster]\n", &format!("[cluster]\n{line}\n"), 1);
    let loaded = parse_valid(&with("writer_address = \"10.0.0.10:3306\""));
    assert_eq!(
        loaded.spec.writer_address,
        Some(("10.0.0.10".to_owned(), 3306))
    );
    assert_eq!(
        loaded.spec.client_endpoint(),
        ("10.0.0.10".to_owned(), 3306)
    );
    let loaded = parse_valid(LOCAL_CLUSTER);
    assert_eq!(
        loaded.spec.client_endpoint(),
        ("127.0.0.1".to_owned(), 3306)
    );
    for (value, fragment) in [
        ("10.0.0.10", "is not HOST:PORT"),
        ("10.0.0.10:0", "`0` is not a port"),
        ("10.0.0.10:http", "`http` is not a port"),
        ("0.0.0.0:3306", "cannot be dialled"),
    ] {
        let error = parse(&with(&format!("writer_address = \"{value}\""))).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("cluster.writer_address"), "{value}: {text}");
        assert!(text.contains(fragment), "{value}: {text}");
    }
}

#[test]
fn proxy_limits_default_below_the_servers_and_admin_stays_on_loopback() {
    let proxy = |extra: &str| {
        parse_valid(&spread_cluster_with(extra))
            .spec
            .proxy
            .expect("a [proxy] section")
    };
    // The servers' 2000 less a tenth; one source may hold half of that.
    let defaults = proxy("[proxy]\naddress = \"10.0.0.9\"\n");
    assert_eq!(defaults.max_connections, 1800);
    assert_eq!(defaults.max_connections_per_source, 900);
    assert_eq!(defaults.greeting_timeout_ms, 5000);
    assert_eq!(defaults.login_timeout_ms, 10_000);
    assert_eq!(defaults.drain_timeout_ms, 30_000);
    assert_eq!(defaults.idle_timeout_s, 28_800);
    assert_eq!(defaults.admin_address, "127.0.0.1");
    assert_eq!(defaults.admin_endpoint(), "127.0.0.1:4590");
    // The default follows the servers' setting, and an explicit limit moves the
    // per-source default with it.
    let small = proxy("[server]\nmax_connections = 20\n[proxy]\naddress = \"10.0.0.9\"\n");
    assert_eq!(
        (small.max_connections, small.max_connections_per_source),
        (15, 8)
    );
    let explicit =
        proxy("[proxy]\naddress = \"10.0.0.9\"\nmax_connections = 100\nidle_timeout_s = 0\n");
    assert_eq!(
        (
            explicit.max_connections,
            explicit.max_connections_per_source
        ),
        (100, 50)
    );
    // On loopback every client has one address: the limit per source is the whole.
    let local = proxy("[proxy]\n");
    assert_eq!(
        (local.max_connections, local.max_connections_per_source),
        (1800, 1800)
    );
    assert_eq!(explicit.idle_timeout_s, 0);
}

#[test]
fn proxy_admin_address_and_timeouts_are_checked() {
    check(
        &spread_cluster_with(
            "[proxy]\nadmin_address = \"not an address\"\ngreeting_timeout_ms = 0\nmax_connections_per_source = 0\nlogin_timeout_ms = 5\n",
        ),
        expect![[r#"
            /etc/galley/galley.toml: 4 problems
              - proxy.admin_address: `not an address` is neither an IP address nor a host name
              - proxy.max_connections_per_source: 0 is out of range; allowed: 1 to 1000000
              - proxy.greeting_timeout_ms: 0 is out of range; allowed: 10 to 60000
              - proxy.login_timeout_ms: 5 is out of range; allowed: 100 to 600000"#]],
    );
}

#[test]
fn backup_section_names_a_directory_or_a_bucket() {
    let loaded = parse_valid(&spread_cluster_with(
        "[backup]\ntarget = \"s3://galley-backups/prod/db\"\nkeep_full = 7\n",
    ));
    let backup = loaded.spec.backup.unwrap();
    assert_eq!(
        backup.target,
        spec::BackupTarget::S3 {
            bucket: "galley-backups".into(),
            prefix: "prod/db".into()
        }
    );
    assert_eq!(backup.keep_full, Some(7));
    assert_eq!(backup.target.to_string(), "s3://galley-backups/prod/db");
    let loaded = parse_valid(&spread_cluster_with(
        "[backup]\ntarget = \"/var/backups/galley\"\n",
    ));
    assert_eq!(
        loaded.spec.backup.unwrap().target,
        spec::BackupTarget::Directory("/var/backups/galley".into())
    );
}

#[test]
fn bad_backup_sections_say_what_is_allowed() {
    check(
        &spread_cluster_with("[backup]\ntarget = \"relative/dir\"\nkeep_full = 0\nkeep_dayz = 3\n"),
        expect![[r#"
            /etc/galley/galley.toml: 3 problems
              - backup.keep_dayz: unknown key; did you mean `keep_days`?
              - backup.keep_full: 0 is out of range; allowed: 1 to 10000
              - backup.target: `relative/dir` is relative; give an absolute path; allowed: an absolute directory (an absolute path of letters, digits and `.` `_` `-` `+` `@` `/`, without empty, `.` or `..` components, at most 255 bytes) or s3://bucket/prefix"#]],
    );
    check(
        &spread_cluster_with("[backup]\ntarget = \"s3://Bad_Bucket/x\"\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - backup.target: `Bad_Bucket` is not an S3 bucket name; allowed: 3 to 63 lowercase letters, digits, `-` or `.`, starting and ending with a letter or digit"#]],
    );
    check(
        &spread_cluster_with("[backup]\ntarget = \"s3://bucket/../etc\"\n"),
        expect![[r#"
            /etc/galley/galley.toml: 1 problem
              - backup.target: `../etc` is not a key prefix; allowed: parts of letters, digits, `.`, `_` or `-` separated by `/`"#]],
    );
    check(
        &spread_cluster_with("[backup]\nkeep_days = 3\n"),
        expect![[r#"
        /etc/galley/galley.toml: 1 problem
          - backup.target: missing; where backups go, like `target = "/var/backups/galley"` or `target = "s3://bucket/prefix"`"#]],
    );
}

#[test]
fn tls_section_defaults_beside_the_secrets_file() {
    let spec = parse_valid(&format!("{LOCAL_CLUSTER}\n[tls]\n")).spec;
    let tls = spec.tls.expect("a [tls] section turns TLS on");
    assert_eq!(tls.dir, std::path::Path::new("/etc/galley/tls"));
    assert_eq!(
        tls.ca_cert(),
        std::path::Path::new("/etc/galley/tls/ca.crt")
    );
    assert_eq!(
        tls.node_files("db2").key,
        std::path::Path::new("/etc/galley/tls/node-db2.key")
    );
    assert!(!tls.require_secure_transport);
    assert_eq!(tls.validity_days, spec::DEFAULT_TLS_VALIDITY_DAYS);
    let off = parse_valid(&format!("{LOCAL_CLUSTER}\n[tls]\nenabled = false\n")).spec;
    assert_eq!(off.tls, None);
}

#[test]
fn tls_operator_ca_needs_its_key_and_a_safe_cipher() {
    check(
        &spread_cluster_with(
            "[tls]\nca_cert = \"/etc/pki/galera-ca.pem\"\ncipher = \"AES256;evil\"\nvalidity_days = 0\nrequire_secure = true\n",
        ),
        expect![[r#"
            /etc/galley/galley.toml: 4 problems
              - tls.require_secure: unknown key; allowed here: enabled, dir, ca_cert, ca_key, cipher, require_secure_transport, validity_days
              - tls.ca_key: is missing: galley issues the leaf certificates with the CA of tls.ca_cert and needs its private key (PEM) in tls.ca_key; give both, or neither for a CA of galley's own
              - tls.cipher: `AES256;evil` is not an OpenSSL cipher list; allowed: names like ECDHE-ECDSA-AES256-GCM-SHA384 joined by `:`
              - tls.validity_days: 0 is out of range; allowed: 1 to 3650"#]],
    );
}
