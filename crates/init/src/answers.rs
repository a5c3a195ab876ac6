//! What `galley init` asks for, and the galley.toml it writes from the answers: a pure
//! function, so that every answer can be checked by the spec's own validation the
//! moment it is given (render, parse, keep the problems that name the answered field).

use std::path::Path;

/// A node as answered. `None` is "not answered yet": the key is left out of the
/// rendered text, so the spec reports it missing, which matters only once it is asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeAnswers {
    pub name: String,
    pub address: Option<String>,
    /// Where `galley deploy` reaches the host over SSH, when not at `address`.
    pub ssh_address: Option<String>,
    pub data_dir: Option<String>,
}

/// The `[deploy]` keys (owned by the deploy crate's spec section): how hosts are reached
/// and what is installed on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployAnswers {
    pub vendor: String,
    pub version: String,
    pub ssh_user: String,
    pub ssh_port: i64,
    pub ssh_key: Option<String>,
    pub install_dir: String,
    pub service_manager: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answers {
    /// The state directory the file is written to: local clusters keep their files there.
    pub dir: String,
    pub cluster_name: Option<String>,
    pub secrets_file: Option<String>,
    pub os_user: String,
    pub buffer_pool_size: String,
    pub max_connections: i64,
    pub character_set: String,
    pub collation: Option<String>,
    pub gcache_size: String,
    pub sst_method: String,
    pub nodes: Vec<NodeAnswers>,
    pub controller_address: Option<String>,
    pub controller_port: Option<i64>,
    pub proxy_address: Option<String>,
    pub writer_port: Option<i64>,
    pub reader_port: Option<i64>,
    pub admin_port: Option<i64>,
    pub deploy: DeployAnswers,
}

pub const SERVICE_MANAGERS: &[&str] = &["auto", "systemd", "supervised"];
pub const SST_METHODS: &[&str] = &["rsync", "mariabackup"];

impl Answers {
    /// The spec's defaults, before anything is answered.
    pub fn new(dir: &Path) -> Answers {
        Answers {
            dir: dir.display().to_string(),
            cluster_name: None,
            secrets_file: None,
            os_user: "mysql".to_owned(),
            buffer_pool_size: "256M".to_owned(),
            max_connections: 2000,
            character_set: "utf8mb4".to_owned(),
            collation: None,
            gcache_size: "256M".to_owned(),
            sst_method: "rsync".to_owned(),
            nodes: Vec::new(),
            controller_address: None,
            controller_port: None,
            proxy_address: None,
            writer_port: None,
            reader_port: None,
            admin_port: None,
            deploy: DeployAnswers {
                vendor: "mariadb".to_owned(),
                version: "10.11".to_owned(),
                ssh_user: "root".to_owned(),
                ssh_port: 22,
                ssh_key: None,
                install_dir: "/opt/galley".to_owned(),
                service_manager: "auto".to_owned(),
            },
        }
    }

    /// True when every answered node address is this machine: files then default to
    /// the state directory, as `galley up` lays them out.
    pub fn is_local(&self) -> bool {
        self.nodes
            .iter()
            .filter_map(|node| node.address.as_deref())
            .all(spec::is_local_address)
    }

    pub fn default_secrets_file(&self) -> String {
        if self.is_local() {
            format!("{}/secrets.toml", self.dir)
        } else {
            "/etc/galley/secrets.toml".to_owned()
        }
    }

    pub fn default_collation(&self) -> String {
        format!("{}_general_ci", self.character_set)
    }

    pub fn default_data_dir(&self, name: &str) -> String {
        if self.is_local() {
            format!("{}/{name}/data", self.dir)
        } else {
            format!("/var/lib/galley/{name}")
        }
    }

    /// The controller runs beside the first node unless told otherwise.
    pub fn default_controller_address(&self) -> String {
        self.nodes
            .first()
            .and_then(|node| node.address.clone())
            .unwrap_or_else(|| "127.0.0.1".to_owned())
    }

    pub fn default_proxy_address(&self) -> String {
        self.controller_address
            .clone()
            .unwrap_or_else(|| self.default_controller_address())
    }

    /// Every port on `address` claimed so far (nodes, then proxy and controller as
    /// answered), so that defaults never collide on a shared host.
    fn claimed_ports(&self, address: &str) -> Vec<u16> {
        let mut ports = Vec::new();
        for (index, node) in self.nodes.iter().enumerate() {
            if node.address.as_deref() == Some(address) {
                ports.extend(self.node_ports(index).iter().map(|(_, port)| *port));
            }
        }
        let proxy_address = self.default_proxy_address();
        if proxy_address == address {
            for port in [self.writer_port, self.reader_port, self.admin_port]
                .into_iter()
                .flatten()
            {
                ports.push(port as u16);
            }
        }
        let controller_address = self
            .controller_address
            .clone()
            .unwrap_or_else(|| self.default_controller_address());
        if controller_address == address {
            if let Some(port) = self.controller_port {
                ports.push(port as u16);
            }
        }
        ports
    }

    /// `wanted`, or the first of wanted + 10000, + 20000, ... not yet claimed on `address`.
    pub fn free_port(&self, address: &str, wanted: u16) -> u16 {
        let claimed = self.claimed_ports(address);
        let mut port = wanted;
        while claimed.contains(&port) && port <= u16::MAX - 10_000 {
            port += 10_000;
        }
        port
    }

    /// A node's ports: the standard ones, moved up by 10 for each earlier node on the
    /// same host, so that several nodes can share one machine.
    pub fn node_ports(&self, index: usize) -> [(&'static str, u16); 5] {
        let address = self.nodes[index].address.as_deref();
        let earlier = self.nodes[..index]
            .iter()
            .filter(|node| node.address.is_some() && node.address.as_deref() == address)
            .count() as u16;
        let shift = earlier * 10;
        [
            ("client_port", 3306 + shift),
            ("galera_port", 4567 + shift),
            ("ist_port", 4568 + shift),
            ("sst_port", 4444 + shift),
            ("agent_port", 4580 + shift),
        ]
    }

    pub fn default_writer_port(&self) -> u16 {
        self.free_port(&self.default_proxy_address(), 3306)
    }

    pub fn default_reader_port(&self) -> u16 {
        self.free_port(&self.default_proxy_address(), 3307)
    }

    pub fn default_admin_port(&self) -> u16 {
        self.free_port(&self.default_proxy_address(), 4590)
    }

    pub fn default_controller_port(&self) -> u16 {
        let address = self
            .controller_address
            .clone()
            .unwrap_or_else(|| self.default_controller_address());
        self.free_port(&address, 4600)
    }

    /// The galley.toml text. Unanswered keys without a default are left out.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# galley cluster spec, written by `galley init`. Edit it freely: every galley\n\
             # command validates it and names any problem. MariaDB 10.11 with galera-4.\n",
        );
        out.push_str("\n[cluster]\n");
        if let Some(name) = &self.cluster_name {
            key(&mut out, "name", name);
        }
        key(
            &mut out,
            "secrets_file",
            &self
                .secrets_file
                .clone()
                .unwrap_or_else(|| self.default_secrets_file()),
        );

        out.push_str("\n[server]\n");
        key(&mut out, "os_user", &self.os_user);
        key(&mut out, "buffer_pool_size", &self.buffer_pool_size);
        number(&mut out, "max_connections", self.max_connections);
        key(&mut out, "character_set", &self.character_set);
        key(
            &mut out,
            "collation",
            &self
                .collation
                .clone()
                .unwrap_or_else(|| self.default_collation()),
        );
        key(&mut out, "gcache_size", &self.gcache_size);
        key(&mut out, "sst_method", &self.sst_method);
        out.push_str("innodb_flush_log_at_trx_commit = 1\n");

        out.push_str(
            "\n[proxy]\n# Applications connect here: one writer node, reads balanced over healthy nodes.\n",
        );
        key(
            &mut out,
            "address",
            &self
                .proxy_address
                .clone()
                .unwrap_or_else(|| self.default_proxy_address()),
        );
        number(
            &mut out,
            "writer_port",
            self.writer_port
                .unwrap_or_else(|| self.default_writer_port().into()),
        );
        number(
            &mut out,
            "reader_port",
            self.reader_port
                .unwrap_or_else(|| self.default_reader_port().into()),
        );
        if !self.is_local() {
            // Node hosts drain the proxy through it in a rolling restart, so it cannot
            // stay on the loopback default; a management address is better still.
            out.push_str(
                "# Status, metrics and drain; other hosts reach it. Prefer a management address.\n",
            );
            key(
                &mut out,
                "admin_address",
                &self
                    .proxy_address
                    .clone()
                    .unwrap_or_else(|| self.default_proxy_address()),
            );
        }
        number(
            &mut out,
            "admin_port",
            self.admin_port
                .unwrap_or_else(|| self.default_admin_port().into()),
        );

        out.push_str(
            "\n[controller]\n# Watches every node, keeps the history and heals the cluster.\n",
        );
        key(
            &mut out,
            "address",
            &self
                .controller_address
                .clone()
                .unwrap_or_else(|| self.default_controller_address()),
        );
        number(
            &mut out,
            "port",
            self.controller_port
                .unwrap_or_else(|| self.default_controller_port().into()),
        );
        if self.is_local() {
            key(&mut out, "state_dir", &format!("{}/controller", self.dir));
        }

        self.render_deploy(&mut out);

        for (index, node) in self.nodes.iter().enumerate() {
            out.push_str("\n[[node]]\n");
            key(&mut out, "name", &node.name);
            if let Some(address) = &node.address {
                key(&mut out, "address", address);
            }
            if let Some(ssh_address) = &node.ssh_address {
                key(&mut out, "ssh_address", ssh_address);
            }
            for (field, port) in self.node_ports(index) {
                number(&mut out, field, port.into());
            }
            if let Some(data_dir) = &node.data_dir {
                key(&mut out, "data_dir", data_dir);
            }
            if self.is_local() {
                key(
                    &mut out,
                    "run_dir",
                    &format!("{}/{}/run", self.dir, node.name),
                );
                key(
                    &mut out,
                    "log_dir",
                    &format!("{}/{}/log", self.dir, node.name),
                );
            }
        }
        out
    }

    /// The one place the `[deploy]` keys are written (the section and its rules belong to
    /// the deploy crate's spec additions; per-node `ssh_address` is written with the node).
    fn render_deploy(&self, out: &mut String) {
        let deploy = &self.deploy;
        out.push_str("\n[deploy]\n# How `galley deploy` reaches the hosts and what it installs.\n");
        key(out, "vendor", &deploy.vendor);
        key(out, "version", &deploy.version);
        key(out, "ssh_user", &deploy.ssh_user);
        number(out, "ssh_port", deploy.ssh_port);
        if let Some(ssh_key) = &deploy.ssh_key {
            key(out, "ssh_key", ssh_key);
        }
        key(out, "install_dir", &deploy.install_dir);
        key(out, "service_manager", &deploy.service_manager);
    }
}

/// `name = "value"`, quoted and escaped as a TOML string.
fn key(out: &mut String, name: &str, value: &str) {
    out.push_str(&format!(
        "{name} = {}\n",
        toml::Value::String(value.to_owned())
    ));
}

fn number(out: &mut String, name: &str, value: i64) {
    out.push_str(&format!("{name} = {value}\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers_with_nodes(addresses: &[&str]) -> Answers {
        let mut answers = Answers::new(Path::new("/srv/galley"));
        answers.cluster_name = Some("openstack".to_owned());
        for (index, address) in addresses.iter().enumerate() {
            let name = format!("db{}", index + 1);
            answers.nodes.push(NodeAnswers {
                data_dir: Some(answers.default_data_dir(&name)),
                name,
                address: Some((*address).to_owned()),
                ssh_address: None,
            });
        }
        answers
    }

    #[test]
    fn defaults_never_collide_on_a_shared_host() {
        // (node addresses, expected client ports, proxy writer/reader/admin defaults)
        type Case<'a> = (&'a [&'a str], &'a [u16], (u16, u16, u16));
        let cases: &[Case] = &[
            // Three hosts; the proxy beside db1 moves off db1's 3306.
            (
                &["10.0.0.1", "10.0.0.2", "10.0.0.3"],
                &[3306, 3306, 3306],
                (13306, 3307, 4590),
            ),
            // Three nodes on one machine: ports move up by 10; the proxy's admin port
            // moves off db2's agent port 4590.
            (
                &["127.0.0.1", "127.0.0.1", "127.0.0.1"],
                &[3306, 3316, 3326],
                (13306, 3307, 14590),
            ),
        ];
        for (addresses, client_ports, proxy_ports) in cases {
            let answers = answers_with_nodes(addresses);
            let ports: Vec<u16> = (0..addresses.len())
                .map(|index| answers.node_ports(index)[0].1)
                .collect();
            assert_eq!(&ports, client_ports, "{addresses:?}");
            assert_eq!(
                (
                    answers.default_writer_port(),
                    answers.default_reader_port(),
                    answers.default_admin_port()
                ),
                *proxy_ports,
                "{addresses:?}"
            );
            let loaded = spec::parse(Path::new("galley.toml"), &answers.render())
                .unwrap_or_else(|error| panic!("{error}\n{}", answers.render()));
            assert_eq!(loaded.spec.nodes.len(), addresses.len());
            // Node hosts drain the proxy in a rolling restart: off one machine its admin
            // endpoint cannot stay on the loopback default.
            let proxy = loaded.spec.proxy.as_ref().expect("a [proxy] section");
            let admin = if answers.is_local() {
                "127.0.0.1"
            } else {
                proxy.address.as_str()
            };
            assert_eq!(proxy.admin_address, admin, "{addresses:?}");
            let deploy = loaded.spec.deploy.expect("a [deploy] section");
            assert_eq!(
                (deploy.vendor.as_str(), deploy.version.as_str()),
                ("mariadb", "10.11")
            );
        }
    }

    #[test]
    fn local_clusters_keep_their_files_in_the_state_directory() {
        let local = answers_with_nodes(&["127.0.0.1"]);
        assert_eq!(local.default_secrets_file(), "/srv/galley/secrets.toml");
        assert_eq!(local.default_data_dir("db1"), "/srv/galley/db1/data");
        assert!(local.render().contains("run_dir = \"/srv/galley/db1/run\""));
        let remote = answers_with_nodes(&["10.0.0.1"]);
        assert_eq!(remote.default_secrets_file(), "/etc/galley/secrets.toml");
        assert_eq!(remote.default_data_dir("db1"), "/var/lib/galley/db1");
        assert!(!remote.render().contains("run_dir"));
    }

    #[test]
    fn values_are_quoted_so_no_answer_can_add_keys() {
        let mut answers = answers_with_nodes(&["10.0.0.1"]);
        answers.os_user = "mysql\"\nos_user = \"root".to_owned();
        let error = spec::parse(Path::new("galley.toml"), &answers.render()).unwrap_err();
        assert!(
            error.problems.iter().any(|p| p.field == "server.os_user"),
            "{error}"
        );
    }
}
