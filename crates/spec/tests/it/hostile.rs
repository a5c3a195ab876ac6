//! Hostile and careless values in every path and name of galley.toml: shell
//! metacharacters, newlines, `..`, spaces and quotes are refused in each field, naming the
//! field and what is allowed, and system directories are never taken as galley's own.

use expect_test::expect;

use crate::fixtures::parse;

/// Every path field, as (the key `document` replaces, the field its problem names).
const PATH_FIELDS: &[(&str, &str)] = &[
    ("cluster.secrets_file", "cluster.secrets_file"),
    ("node.data_dir", "node \"db1\".data_dir"),
    ("node.run_dir", "node \"db1\".run_dir"),
    ("node.log_dir", "node \"db1\".log_dir"),
    ("controller.state_dir", "controller.state_dir"),
    ("controller.tls_cert", "controller.tls_cert"),
    ("controller.tls_key", "controller.tls_key"),
    ("controller.alert_command", "controller.alert_command"),
    ("deploy.ssh_key", "deploy.ssh_key"),
    ("deploy.install_dir", "deploy.install_dir"),
];

/// Values an attacker (or a slip of the keyboard) could put in a path.
const HOSTILE_PATHS: &[&str] = &[
    "/opt/$(id>/tmp/pwn)",
    "/opt/${IFS}x",
    "/opt/`id>/tmp/pwn`",
    "/opt/x;id>/tmp/pwn",
    "/opt/x\nid>/tmp/pwn",
    "/opt/x\r",
    "/opt/x&&id",
    "/opt/x|id",
    "/opt/x>y",
    "/opt/x<y",
    "/opt/x y",
    "/opt/x\ty",
    "/opt/it's",
    "/opt/\"x\"",
    "/opt/x\\y",
    "/opt/x#y",
    "/opt/%i",
    "/opt/x*",
    "/opt/x?",
    "/opt/~x",
    "/opt/x=y",
    "/opt/x\u{0}y",
    "/opt/../etc/galley",
    "/var/lib/mysql/..",
    "/opt/./galley",
    "/opt//galley",
    "/opt/galley/",
    "opt/galley",
];

/// A full galley.toml (three nodes, proxy, controller, deploy) with `overrides` in
/// place of the defaults; values are written as TOML strings, so any byte can be given.
fn document(overrides: &[(&str, &str)]) -> String {
    let value = |key: &str, default: &str| -> String {
        let text = overrides
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(default, |(_, v)| *v);
        toml::Value::String(text.to_owned()).to_string()
    };
    let mut text = format!(
        "[cluster]\nname = {}\nsecrets_file = {}\n\
         [server]\nos_user = {}\n",
        value("cluster.name", "prod"),
        value("cluster.secrets_file", "/etc/galley/secrets.toml"),
        value("server.os_user", "mysql"),
    );
    for n in 1..=3 {
        let own = |key: &str, default: String| {
            if n == 1 {
                value(key, &default)
            } else {
                toml::Value::String(default).to_string()
            }
        };
        text.push_str(&format!(
            "[[node]]\nname = {}\naddress = {}\nssh_address = {}\ndata_dir = {}\nrun_dir = {}\nlog_dir = {}\n",
            own("node.name", format!("db{n}")),
            own("node.address", format!("10.0.0.{n}")),
            own("node.ssh_address", format!("192.0.2.{n}")),
            own("node.data_dir", "/var/lib/mysql".to_owned()),
            own("node.run_dir", format!("/run/galley/db{n}")),
            own("node.log_dir", format!("/var/log/galley/db{n}")),
        ));
    }
    text.push_str(&format!(
        "[proxy]\naddress = {}\n\
         [controller]\naddress = {}\nstate_dir = {}\ntls_cert = {}\ntls_key = {}\nalert_command = [{}, \"--from-galley\"]\n\
         [deploy]\nssh_user = {}\nssh_key = {}\ninstall_dir = {}\n",
        value("proxy.address", "10.0.0.9"),
        value("controller.address", "10.0.0.9"),
        value("controller.state_dir", "/var/lib/galley/controller"),
        value("controller.tls_cert", "/etc/galley/tls/cert.pem"),
        value("controller.tls_key", "/etc/galley/tls/key.pem"),
        value("controller.alert_command", "/usr/local/bin/page-ops"),
        value("deploy.ssh_user", "ops"),
        value("deploy.ssh_key", "/home/ops/.ssh/id_ed25519"),
        value("deploy.install_dir", "/opt/galley"),
    ));
    text
}

/// The problems of `text` as `field: message` lines (none when it is valid).
fn problems(text: &str) -> Vec<(String, String)> {
    match parse(text) {
        Ok(_) => Vec::new(),
        Err(error) => error
            .problems
            .into_iter()
            .map(|problem| (problem.field, problem.message))
            .collect(),
    }
}

#[test]
fn the_document_is_valid_as_it_stands() {
    assert_eq!(problems(&document(&[])), Vec::new());
}

#[test]
fn every_path_field_refuses_every_hostile_value() {
    for (key, field) in PATH_FIELDS {
        for hostile in HOSTILE_PATHS {
            // An alert program must be absolute before anything else is said about it.
            if *key == "controller.alert_command" && !hostile.starts_with('/') {
                continue;
            }
            let found = problems(&document(&[(key, hostile)]));
            assert!(
                found.iter().any(|(f, message)| f == field
                    && message.contains(&format!("`{}`", hostile.escape_debug()))
                    && message.contains("allowed: an absolute path of letters, digits")),
                "{key} = {hostile:?} gave {found:#?}"
            );
            assert!(
                found.iter().all(|(f, _)| f == field),
                "{key} = {hostile:?}: a problem names another field: {found:#?}"
            );
        }
    }
}

#[test]
fn the_deploy_package_path_refuses_every_hostile_value() {
    // [deploy] is the document's last section: these lines land in it.
    let with_package = |path: &str| {
        format!(
            "{}install = \"package\"\npackage = {}\n",
            document(&[]),
            toml::Value::String(path.to_owned())
        )
    };
    assert_eq!(
        problems(&with_package("/home/ops/galley_0.1.0_amd64.deb")),
        Vec::new()
    );
    for hostile in HOSTILE_PATHS {
        // Each is refused as a path (and, not ending in `.deb`, as a package name too).
        let found = problems(&with_package(hostile));
        assert!(
            found.iter().any(|(f, message)| f == "deploy.package"
                && message.contains("allowed: an absolute path of letters, digits")),
            "package = {hostile:?} gave {found:#?}"
        );
        assert!(
            found.iter().all(|(f, _)| f == "deploy.package"),
            "package = {hostile:?}: a problem names another field: {found:#?}"
        );
    }
}

#[test]
fn a_path_problem_says_what_is_wrong_and_what_is_allowed() {
    let text = document(&[
        ("deploy.install_dir", "/opt/$(id>/tmp/pwn)"),
        ("node.data_dir", "/var/lib/mysql\nskip-grant-tables"),
        ("node.log_dir", "/var/log/../../etc/cron.d"),
        ("cluster.secrets_file", "/etc/galley/my secrets.toml"),
    ]);
    let error = parse(&text).unwrap_err().to_string();
    expect![[r#"
        /etc/galley/galley.toml: 4 problems
          - cluster.secrets_file: `/etc/galley/my secrets.toml` holds a space at byte 15, which galley does not allow in paths; allowed: an absolute path of letters, digits and `.` `_` `-` `+` `@` `/`, without empty, `.` or `..` components, at most 255 bytes
          - node "db1".data_dir: `/var/lib/mysql\nskip-grant-tables` holds a newline at byte 15, which galley does not allow in paths; allowed: an absolute path of letters, digits and `.` `_` `-` `+` `@` `/`, without empty, `.` or `..` components, at most 255 bytes
          - node "db1".log_dir: `/var/log/../../etc/cron.d` has a `..` component; write the path without it; allowed: an absolute path of letters, digits and `.` `_` `-` `+` `@` `/`, without empty, `.` or `..` components, at most 255 bytes
          - deploy.install_dir: `/opt/$(id>/tmp/pwn)` holds `$` at byte 6, which galley does not allow in paths; allowed: an absolute path of letters, digits and `.` `_` `-` `+` `@` `/`, without empty, `.` or `..` components, at most 255 bytes"#]]
    .assert_eq(&error);
}

#[test]
fn system_directories_are_never_galleys_own() {
    let directories = [
        ("node.data_dir", "node \"db1\".data_dir"),
        ("node.run_dir", "node \"db1\".run_dir"),
        ("node.log_dir", "node \"db1\".log_dir"),
        ("controller.state_dir", "controller.state_dir"),
    ];
    for (key, field) in directories {
        for system in [
            "/",
            "/etc",
            "/etc/mysql",
            "/usr",
            "/usr/lib/mysql",
            "/bin",
            "/sbin",
            "/lib",
            "/lib64",
            "/boot",
            "/dev",
            "/dev/shm",
            "/proc",
            "/sys",
            "/var",
            "/var/lib",
            "/var/log",
            "/var/tmp",
            "/root",
            "/home",
            "/home/alice",
            "/tmp",
            "/run",
            "/opt",
            "/srv",
            "/etc/galley",
        ] {
            let found = problems(&document(&[(key, system)]));
            assert!(
                found.iter().any(|(f, message)| f == field
                    && message.contains(&format!("`{system}`"))
                    && message.contains("give a directory of galley's own")),
                "{key} = {system:?} gave {found:#?}"
            );
        }
    }
    for system in [
        "/", "/etc", "/usr", "/usr/bin", "/var", "/var/lib", "/tmp", "/opt", "/home",
    ] {
        let found = problems(&document(&[("deploy.install_dir", system)]));
        assert!(
            found.iter().any(|(f, message)| f == "deploy.install_dir"
                && message.contains("is a system directory")),
            "install_dir = {system:?} gave {found:#?}"
        );
    }
    // Galley's own directories below system ones are fine.
    for (key, path) in [
        ("node.data_dir", "/var/lib/mysql"),
        ("node.data_dir", "/srv/galley/db1"),
        ("node.data_dir", "/home/alice/galley/db1"),
        ("node.run_dir", "/run/galley/db1"),
        ("controller.state_dir", "/var/lib/galley"),
        ("deploy.install_dir", "/usr/local/galley"),
        ("deploy.install_dir", "/opt/galley"),
    ] {
        assert_eq!(
            problems(&document(&[(key, path)])),
            Vec::new(),
            "{key} = {path}"
        );
    }
    let error = parse(&document(&[("node.data_dir", "/etc")]))
        .unwrap_err()
        .to_string();
    expect![[r#"
        /etc/galley/galley.toml: 1 problem
          - node "db1".data_dir: `/etc` is a system directory; galley gives this directory to the server's OS user or replaces what is in it; give a directory of galley's own, like /var/lib/mysql, /srv/galley/db1 or /opt/galley"#]]
    .assert_eq(&error);
}

#[test]
fn every_name_that_reaches_a_command_refuses_metacharacters() {
    let fields = [
        ("cluster.name", "cluster.name"),
        ("server.os_user", "server.os_user"),
        ("node.name", ""),
        ("node.address", "node \"db1\".address"),
        ("node.ssh_address", "node \"db1\".ssh_address"),
        ("proxy.address", "proxy.address"),
        ("controller.address", "controller.address"),
        ("deploy.ssh_user", "deploy.ssh_user"),
    ];
    let hostile = [
        "db$(id)",
        "db`id`",
        "db;id",
        "db\nid",
        "db id",
        "db'x",
        "db\"x",
        "-oProxyCommand=id",
        "--help",
        "../x",
        "",
    ];
    for (key, field) in fields {
        for value in hostile {
            let found = problems(&document(&[(key, value)]));
            // A bad node name is reported under the label it makes.
            let field = if field.is_empty() {
                format!("node \"{}\".name", value.escape_debug())
            } else {
                field.to_owned()
            };
            assert!(
                found.iter().any(|(f, _)| *f == field),
                "{key} = {value:?} gave {found:#?}"
            );
        }
    }
    let error = parse(&document(&[
        ("node.name", "-h"),
        ("server.os_user", "my sql"),
    ]))
    .unwrap_err()
    .to_string();
    expect![[r#"
        /etc/galley/galley.toml: 2 problems
          - server.os_user: `my sql` is not allowed; use 1 to 64 letters, digits, `_` or `-`, not starting with `-`
          - node "-h".name: `-h` is not allowed; use 1 to 64 letters, digits, `_` or `-`, not starting with `-`"#]]
    .assert_eq(&error);
}
