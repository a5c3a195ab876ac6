//! The bundle: everything a deployment writes, as files an operator can read before
//! anything runs. Pure: a spec (and, only when asked, the secrets) in, files out.
//!
//! Layout: `README.md`, `galley.toml`, and per host `hosts/<label>/` with `host.env`
//! (the host's settings), `lib.sh`, the ordered steps `00-check.sh` .. `70-rolling-restart.sh`,
//! and `files/` (galley.toml, the node's my.cnf, systemd units, the supervisor script and,
//! with `--include-secrets` only, the secrets file).

use std::fmt::Write as _;

use spec::{ClusterSpec, DeploySpec, Install, SstMethod};

use crate::hosts::{deploy_section, plan_hosts, Host, PlanError, HOST_CONFIG};
use crate::remote::quote;

/// One file of the bundle, relative to the bundle's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    pub path: String,
    pub contents: String,
    /// 0o755 for scripts, 0o600 for secrets, 0o644 otherwise.
    pub mode: u32,
}

/// Every file of a bundle, in a stable order, and the hosts it is for.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub hosts: Vec<Host>,
    pub files: Vec<BundleFile>,
}

impl Bundle {
    /// One file's text, by its path in the bundle.
    pub fn file(&self, path: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|file| file.path == path)
            .map(|file| file.contents.as_str())
    }
}

/// The secrets file's text, to include in the bundle only when the operator asks.
#[derive(Clone)]
pub struct Secrets(pub String);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

/// The steps in the order they run, and on which hosts. `galley deploy` runs the
/// parallel ones on every host at once and the others one host at a time.
pub const STEPS: &[(&str, &str)] = &[
    ("00-check.sh", "every host, in parallel; changes nothing"),
    ("10-install.sh", "every host, in parallel"),
    ("20-configure.sh", "every host, in parallel"),
    ("30-start-agent.sh", "each node's host, in parallel"),
    ("40-bootstrap.sh", "the bootstrap node's host only"),
    ("50-join.sh", "each other node's host, one at a time"),
    (
        "60-start-proxy-controller.sh",
        "the proxy's and the controller's hosts",
    ),
    ("70-rolling-restart.sh", "each node's host, one at a time"),
];

const LIB: &str = include_str!("scripts/lib.sh");
const SUPERVISE: &str = include_str!("scripts/supervise.sh");
const SCRIPTS: &[(&str, &str)] = &[
    ("00-check.sh", include_str!("scripts/00-check.sh")),
    ("10-install.sh", include_str!("scripts/10-install.sh")),
    ("20-configure.sh", include_str!("scripts/20-configure.sh")),
    (
        "30-start-agent.sh",
        include_str!("scripts/30-start-agent.sh"),
    ),
    ("40-bootstrap.sh", include_str!("scripts/40-bootstrap.sh")),
    ("50-join.sh", include_str!("scripts/50-join.sh")),
    (
        "60-start-proxy-controller.sh",
        include_str!("scripts/60-start-proxy-controller.sh"),
    ),
    (
        "70-rolling-restart.sh",
        include_str!("scripts/70-rolling-restart.sh"),
    ),
];

/// Free disk space a data node needs before install (MiB).
const MIN_FREE_MB: u32 = 1024;

/// The bundle for `spec`, whose text `spec_text` is copied to every host as is.
pub fn generate(
    spec: &ClusterSpec,
    spec_text: &str,
    secrets: Option<&Secrets>,
) -> Result<Bundle, PlanError> {
    let deploy = deploy_section(spec)?;
    let hosts = plan_hosts(spec)?;
    let galley = deploy
        .install
        .galley_path(&deploy.install_dir)
        .display()
        .to_string();
    let mut files = vec![
        BundleFile {
            path: "README.md".to_owned(),
            contents: readme(spec, deploy, &hosts, secrets.is_some()),
            mode: 0o644,
        },
        BundleFile {
            path: "galley.toml".to_owned(),
            contents: spec_text.to_owned(),
            mode: 0o644,
        },
    ];
    for host in &hosts {
        let dir = format!("hosts/{}", host.label);
        let mut add = |name: &str, contents: String, mode: u32| {
            files.push(BundleFile {
                path: format!("{dir}/{name}"),
                contents,
                mode,
            });
        };
        add("host.env", host_env(spec, deploy, host), 0o644);
        add("lib.sh", LIB.to_owned(), 0o644);
        for (name, text) in SCRIPTS {
            let applies = match *name {
                "40-bootstrap.sh" => host.bootstrap,
                "50-join.sh" => host.node.is_some() && !host.bootstrap,
                "30-start-agent.sh" | "70-rolling-restart.sh" => host.node.is_some(),
                "60-start-proxy-controller.sh" => {
                    host.proxy || host.controller || host.arbitrator.is_some()
                }
                _ => true,
            };
            if applies {
                add(name, (*text).to_owned(), 0o755);
            }
        }
        add("files/galley.toml", spec_text.to_owned(), 0o644);
        add("files/galley-supervise", SUPERVISE.to_owned(), 0o755);
        if let Some(node) = &host.node {
            add("files/my.cnf", spec::render_node_config(spec, node), 0o644);
            add(
                "files/systemd/galley-agent.service",
                unit(
                    GENERATED,
                    &galley,
                    &format!("galley agent for node {}", node.name),
                    &agent_arguments(&node.name),
                ),
                0o644,
            );
        }
        if let (true, Some(proxy)) = (host.proxy, &spec.proxy) {
            add(
                "files/proxy-listeners.txt",
                proxy_listeners(spec, proxy),
                0o644,
            );
            add(
                "files/systemd/galley-proxy.service",
                unit(
                    GENERATED,
                    &galley,
                    &format!("galley proxy of cluster {}", spec.name),
                    &proxy_arguments(),
                ),
                0o644,
            );
        }
        if host.controller {
            add(
                "files/systemd/galley-controller.service",
                unit(
                    GENERATED,
                    &galley,
                    &format!("galley controller of cluster {}", spec.name),
                    &controller_arguments(),
                ),
                0o644,
            );
        }
        if let Some(arbitrator) = &host.arbitrator {
            add(
                "files/garbd-args.txt",
                garbd_args_text(spec, arbitrator),
                0o644,
            );
            add(
                "files/systemd/galley-garbd.service",
                unit(
                    GENERATED,
                    &galley,
                    &format!(
                        "galley arbitrator {} (garbd) of cluster {}",
                        arbitrator.name, spec.name
                    ),
                    &format!(
                        "arbitrator --config {HOST_CONFIG} --name {}",
                        arbitrator.name
                    ),
                ),
                0o644,
            );
        }
        if let Some(secrets) = secrets {
            add("files/secrets.toml", secrets.0.clone(), 0o600);
        }
    }
    Ok(Bundle { hosts, files })
}

fn host_env(spec: &ClusterSpec, deploy: &DeploySpec, host: &Host) -> String {
    let mut packages: Vec<&str> = vec!["iproute2"];
    if host.node.is_some() {
        packages.extend(["mariadb-server", "mariadb-client", "galera-4", "rsync"]);
        if spec.server.sst_method == SstMethod::Mariabackup {
            packages.extend(["mariadb-backup", "socat"]);
        }
    }
    if host.arbitrator.is_some() {
        packages.push(spec::GARBD_PACKAGE);
    }
    let ports: Vec<String> = host
        .ports(spec)
        .iter()
        .map(|(port, what)| format!("{port}={}", what.replace(' ', "-")))
        .collect();
    let node = host.node.as_ref();
    let mut out = String::new();
    let mut set = |key: &str, value: &str| {
        writeln!(out, "{key}={}", quote(value)).expect("writing to a String cannot fail");
    };
    set("HOST_LABEL", &host.label);
    set("NODE", node.map_or("", |node| node.name.as_str()));
    set("ROLES", &host.roles().join(" "));
    set("INSTALL_DIR", &deploy.install_dir.display().to_string());
    set("CONFIG", HOST_CONFIG);
    set("SECRETS_FILE", &spec.secrets_file.display().to_string());
    set("SERVICE_MANAGER", deploy.service_manager.as_str());
    // Only a package install says so: lib.sh takes `binary` when host.env is silent.
    if let Install::Package(_) = deploy.install {
        set("INSTALL", "package");
    }
    set("PACKAGES", &packages.join(" "));
    set("DB_VERSION", &deploy.version);
    set(
        "DATA_DIR",
        &node.map_or(String::new(), |node| node.data_dir.display().to_string()),
    );
    set(
        "RUN_DIR",
        &node.map_or(String::new(), |node| node.run_dir.display().to_string()),
    );
    set(
        "LOG_DIR",
        &node.map_or(String::new(), |node| node.log_dir.display().to_string()),
    );
    set(
        "CONTROLLER_STATE_DIR",
        &match (&spec.controller, host.controller) {
            (Some(controller), true) => controller.state_dir.display().to_string(),
            _ => String::new(),
        },
    );
    // The check step refuses these as galley's directories (spec::paths, where the
    // spec refuses them too), however links on the host resolve.
    set(
        "SYSTEM_DIRECTORIES",
        &spec::paths::SYSTEM_DIRECTORIES.join(" "),
    );
    set("SYSTEM_TREES", &spec::paths::SYSTEM_TREES.join(" "));
    set("MIN_FREE_MB", &MIN_FREE_MB.to_string());
    set("PORTS", &ports.join(" "));
    match (&spec.proxy, host.proxy) {
        (Some(proxy), true) => {
            set("PROXY_ADMIN_ADDRESS", &proxy.admin_address);
            set("PROXY_ADMIN_PORT", &proxy.admin_port.to_string());
        }
        _ => {
            set("PROXY_ADMIN_ADDRESS", "");
            set("PROXY_ADMIN_PORT", "");
        }
    }
    // Only on an arbitrator's host, so that the other hosts' settings stay as they were.
    if let Some(arbitrator) = &host.arbitrator {
        set("ARBITRATOR", &arbitrator.name);
        set(
            "ARBITRATOR_LOG_DIR",
            &arbitrator.log_dir.display().to_string(),
        );
    }
    format!(
        "# Settings of host {} for the bundle's steps; written by galley generate.\n{out}",
        host.label
    )
}

/// garbd's command line, one argument a line: galley-garbd restarts when it changes
/// (the nodes, the group, its port or segment), and only then.
fn garbd_args_text(spec: &ClusterSpec, arbitrator: &spec::ArbitratorSpec) -> String {
    let mut out = String::from("# garbd restarts when this changes; written by galley generate.\n");
    for argument in arbitrator.garbd_args(spec) {
        writeln!(out, "{argument}").expect("writing to a String cannot fail");
    }
    out
}

/// What a proxy reload cannot apply: its listeners and the nodes it routes to. When this
/// text changes the proxy restarts; any other change of galley.toml is a reload.
fn proxy_listeners(spec: &ClusterSpec, proxy: &spec::ProxySpec) -> String {
    let mut out = String::from(
        "# The proxy restarts when this changes (a reload cannot apply it); written by galley generate.\n",
    );
    let port = |port: Option<u16>| port.map_or("none".to_owned(), |port| port.to_string());
    writeln!(
        out,
        "listen {} writer {} reader {} multi_writer {} admin {}",
        proxy.address,
        proxy.writer_port,
        proxy.reader_port,
        port(proxy.multi_writer_port),
        proxy.admin_endpoint()
    )
    .expect("writing to a String cannot fail");
    for node in &spec.nodes {
        writeln!(
            out,
            "node {} {}",
            node.name,
            spec::host_port(&node.address, node.client_port)
        )
        .expect("writing to a String cannot fail");
    }
    out
}

/// The first line of the units a bundle holds.
const GENERATED: &str = "# Written by galley generate.";

/// The command line of a node's agent, after the galley binary. lib.sh's
/// `service_command` runs the same three command lines under the supervisor.
fn agent_arguments(node: &str) -> String {
    format!("agent --config {HOST_CONFIG} --node {node}")
}

fn proxy_arguments() -> String {
    format!("proxy --config {HOST_CONFIG}")
}

fn controller_arguments() -> String {
    format!("controller --config {HOST_CONFIG} --dir /var/lib/galley")
}

/// The systemd units of the Debian package (`galley package-files`), as (file name,
/// text): the same units a deployment writes, running /usr/bin/galley, with the agent
/// as a template whose instance is the node's name (`galley-agent@db1.service`). The
/// package enables and starts none of them: they need /etc/galley/galley.toml and the
/// secrets file first. A deployment writes its own units to /etc/systemd/system, which
/// take precedence over these.
pub fn package_units() -> Vec<(&'static str, String)> {
    const PACKAGED: &str =
        "# Installed by the galley Debian package. Enable the ones this host runs once\n\
         # /etc/galley/galley.toml and its secrets file are in place.";
    let galley = spec::PACKAGED_GALLEY;
    vec![
        (
            "galley-agent@.service",
            unit(
                PACKAGED,
                galley,
                "galley agent for node %i",
                &agent_arguments("%i"),
            ),
        ),
        (
            "galley-proxy.service",
            unit(PACKAGED, galley, "galley proxy", &proxy_arguments()),
        ),
        (
            "galley-controller.service",
            unit(
                PACKAGED,
                galley,
                "galley controller",
                &controller_arguments(),
            ),
        ),
    ]
}

fn unit(header: &str, galley: &str, description: &str, arguments: &str) -> String {
    // The agent leaves mariadbd running when it restarts, and adopts it.
    let kill_mode = if arguments.starts_with("agent ") {
        "process"
    } else {
        "control-group"
    };
    // Only the proxy reads galley.toml again on SIGHUP; the others would die of it.
    let reload = if arguments.starts_with("proxy ") {
        "ExecReload=/bin/kill -HUP $MAINPID\n"
    } else {
        ""
    };
    format!(
        "{header}\n\
         [Unit]\n\
         Description={description}\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         ExecStart={galley} {arguments}\n\
         Restart=always\n\
         RestartSec=2\n\
         {reload}KillMode={kill_mode}\n\
         LimitNOFILE=65536\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

fn readme(spec: &ClusterSpec, deploy: &DeploySpec, hosts: &[Host], with_secrets: bool) -> String {
    let mut out = format!(
        "# galley bundle for cluster `{}`\n\n\
         Generated by `galley generate` from galley.toml. `galley deploy` runs exactly these\n\
         scripts over SSH (as `{}` with passwordless sudo); you can read them first, or run\n\
         them by hand in the order below. Every step is safe to run again: it changes only\n\
         what differs and prints `changed: ...` for each change.\n\n\
         ## Hosts\n\n\
         | host | SSH address | runs |\n\
         |---|---|---|\n",
        spec.name, deploy.ssh_user
    );
    for host in hosts {
        let mut roles = Vec::new();
        if let Some(node) = &host.node {
            roles.push(format!(
                "node {} ({}:{}){}",
                node.name,
                node.address,
                node.client_port,
                if host.bootstrap { ", bootstraps" } else { "" }
            ));
        }
        if host.proxy {
            roles.push("proxy".to_owned());
        }
        if host.controller {
            roles.push("controller".to_owned());
        }
        if let Some(arbitrator) = &host.arbitrator {
            roles.push(format!(
                "arbitrator {} (garbd, {}:{})",
                arbitrator.name, arbitrator.address, arbitrator.galera_port
            ));
        }
        writeln!(
            out,
            "| {} | {} | {} |",
            host.label,
            host.ssh_address,
            roles.join(", ")
        )
        .expect("writing to a String cannot fail");
    }
    let install_dir = deploy.install_dir.display();
    let secrets = spec.secrets_file.display();
    out.push_str(&format!(
        "\n## Before you start\n\n\
         1. Copy `hosts/<host>/` to each host, for example to `{install_dir}/bundle/`.\n\
         2. {}\n\
         3. {}\n\n\
         ## Order\n\n\
         Run each step as root (`sudo bash NN-step.sh`) on the hosts named, and finish a step\n\
         everywhere before the next:\n\n",
        match deploy.install {
            Install::Binary => format!("Copy the galley binary into each host's folder as `galley` (step 10 installs it\n   to `{install_dir}/bin/galley`)."),
            Install::Package(_) => "Copy galley's Debian package into each host's folder as `galley.deb` (step 10\n   installs it with apt-get: galley is then /usr/bin/galley).".to_owned(),
        },
        if with_secrets {
            format!("This bundle CONTAINS THE SECRETS (`files/secrets.toml`, installed to `{secrets}` with\n   mode 0600): keep it private and delete it after use.")
        } else {
            format!("Copy the cluster's secrets file to `{secrets}` on every host, mode 0600,\n   owned by root (`galley deploy` does this over SSH). The bundle holds no secret;\n   generate it with `--include-secrets` to have step 20 install it.")
        }
    ));
    for (index, (name, on)) in STEPS.iter().enumerate() {
        writeln!(out, "{}. `{name}`: {on}.", index + 1).expect("writing to a String cannot fail");
    }
    out.push_str(
        "\nStep 40 initializes, secures and bootstraps the first node through its galley agent,\n\
         as `galley up` does; step 50 joins the others (start the next only when the previous\n\
         says Synced). Services run under systemd where PID 1 is systemd (units in\n\
         `files/systemd/`), otherwise under `galley-supervise`, which restarts them when they\n\
         exit (pid files in /run/galley, logs in /var/log/galley).\n\n\
         A changed galley.toml: generate again, copy, and run the steps again; step 70 then\n\
         restarts the nodes whose my.cnf changed, one at a time, each Synced before the next.\n",
    );
    if !spec.arbitrators.is_empty() {
        out.push_str(
            "\nArbitrators: step 60 also starts garbd (package galera-arbitrator-4) on each\n\
             arbitrator's host, as the `galley-garbd` service (`galley arbitrator`, which becomes\n\
             garbd), once the data nodes are Synced: garbd joins a Primary component and cannot\n\
             start one. The packaged garb.service is disabled. See docs/arbitrator.md.\n",
        );
    }
    out
}

/// A step as one self-contained script, `host.env` and `lib.sh` inlined, for running
/// through `bash -s` before the bundle is on the host (`00-check.sh` changes nothing, so
/// it runs before anything is copied).
pub fn inline_script(bundle: &Bundle, host: &Host, step: &str) -> Option<String> {
    let dir = format!("hosts/{}", host.label);
    let script = bundle.file(&format!("{dir}/{step}"))?;
    let mut out = String::new();
    inline_into(bundle, &dir, script, &mut out);
    Some(out)
}

fn inline_into(bundle: &Bundle, dir: &str, text: &str, out: &mut String) {
    for line in text.lines() {
        if line.ends_with("# galley:inline") {
            let name = ["lib.sh", "host.env"]
                .into_iter()
                .find(|name| line.contains(name))
                .expect("an inline marker names lib.sh or host.env");
            let included = bundle
                .file(&format!("{dir}/{name}"))
                .expect("every host folder holds lib.sh and host.env");
            inline_into(bundle, dir, included, out);
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
}
