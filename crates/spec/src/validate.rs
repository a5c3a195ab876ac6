//! The second stage: raw galley.toml into a [`ClusterSpec`] whose invariants hold.
//!
//! Validation collects every problem instead of stopping at the first, so that one run
//! shows the operator everything to fix. Each problem names the field and what is allowed.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::raw::{
    self, RawArbitrator, RawBackup, RawController, RawDeploy, RawFile, RawNode, RawProxy,
    RawServer, RawTls, Unknown,
};
use crate::{
    ArbitratorSpec, BackupSpec, BackupTarget, ByteSize, ClusterSpec, ControllerSpec, DeploySpec,
    Install, Loaded, NodeSpec, ProxySpec, ServerSettings, ServiceManager, SstMethod, TlsFiles,
    TlsSpec,
};

/// One thing wrong in a spec: the field (`node "db2".client_port`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// A spec that cannot be used, with every problem found in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SpecError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        let plural = if count == 1 { "" } else { "s" };
        write!(f, "{}: {count} problem{plural}", self.file.display())?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

/// Something allowed but risky, shown to the operator without stopping them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub field: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

pub const DEFAULT_CLIENT_PORT: u16 = 3306;
pub const DEFAULT_GALERA_PORT: u16 = 4567;
pub const DEFAULT_IST_PORT: u16 = 4568;
pub const DEFAULT_SST_PORT: u16 = 4444;
pub const DEFAULT_AGENT_PORT: u16 = 4580;
/// Certificates galley issues live two years; rotation (docs/tls.md) renews them earlier.
pub const DEFAULT_TLS_VALIDITY_DAYS: u32 = 730;
/// Linux's `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// Parses and validates galley.toml text; `file` is only used in messages.
pub fn parse(file: &Path, text: &str) -> Result<Loaded, SpecError> {
    let raw: RawFile = toml::from_str(text).map_err(|error| SpecError {
        file: file.to_path_buf(),
        problems: vec![Problem {
            field: String::new(),
            message: error.to_string().trim_end().replace('\n', "\n    "),
        }],
    })?;
    let mut checker = Checker::default();
    let spec = checker.cluster(raw);
    match spec {
        Some(spec) if checker.problems.is_empty() => Ok(Loaded {
            spec,
            warnings: checker.warnings,
        }),
        _ => Err(SpecError {
            file: file.to_path_buf(),
            problems: checker.problems,
        }),
    }
}

impl ControllerSpec {
    /// The `[controller]` section's defaults (what an empty section validates to), with
    /// the history under `state_dir`: for a cluster whose spec has no such section.
    pub fn defaults(state_dir: &Path) -> ControllerSpec {
        let mut checker = Checker::default();
        let mut defaults = checker.controller(RawController::default());
        debug_assert!(checker.problems.is_empty(), "{:?}", checker.problems);
        defaults.state_dir = state_dir.to_path_buf();
        defaults
    }
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
    warnings: Vec<Warning>,
}

impl Checker {
    fn problem(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            field: field.into(),
            message: message.into(),
        });
    }

    fn warning(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Warning {
            field: field.into(),
            message: message.into(),
        });
    }

    fn unknown_keys(&mut self, section: &str, unknown: &Unknown, allowed: &[&str]) {
        for key in unknown.keys() {
            let field = if section.is_empty() {
                key.clone()
            } else {
                format!("{section}.{key}")
            };
            let message = match nearest(key, allowed) {
                Some(suggestion) => format!("unknown key; did you mean `{suggestion}`?"),
                None => format!("unknown key; allowed here: {}", allowed.join(", ")),
            };
            self.problem(field, message);
        }
    }

    fn cluster(&mut self, raw: RawFile) -> Option<ClusterSpec> {
        self.unknown_keys("", &raw.unknown, raw::TOP_KEYS);
        let cluster = raw.cluster.unwrap_or_default();
        self.unknown_keys("cluster", &cluster.unknown, raw::CLUSTER_KEYS);
        let name = match cluster.name {
            Some(name) => {
                self.identifier("cluster.name", &name);
                name
            }
            None => {
                self.problem(
                    "cluster.name",
                    "missing; name the cluster, like `name = \"openstack\"`",
                );
                String::new()
            }
        };
        let secrets_file = self.absolute_path(
            "cluster.secrets_file",
            cluster
                .secrets_file
                .as_deref()
                .unwrap_or("/etc/galley/secrets.toml"),
        );
        let writer_address = cluster
            .writer_address
            .as_deref()
            .and_then(|text| self.host_and_port("cluster.writer_address", text));
        let server = self.server(raw.server.unwrap_or_default());
        let arbitrator_count = raw.arbitrator.len();
        let nodes = self.nodes(raw.node, arbitrator_count);
        let arbitrators = self.arbitrators(raw.arbitrator, &nodes);
        let proxy = raw
            .proxy
            .map(|proxy| self.proxy(proxy, server.max_connections));
        let controller = raw.controller.map(|controller| self.controller(controller));
        let deploy = raw.deploy.map(|deploy| self.deploy(deploy));
        let backup = raw.backup.and_then(|backup| self.backup(backup));
        let tls = raw.tls.and_then(|tls| self.tls(tls, &secrets_file, &nodes));
        if tls.is_some() && !arbitrators.is_empty() {
            self.problem(
                "arbitrator",
                "is not supported with [tls] yet: garbd would need a certificate of its own and the nodes' wsrep_allowlist its address; remove the [[arbitrator]] sections or the [tls] section",
            );
        }
        self.port_collisions(&nodes, &arbitrators, proxy.as_ref(), controller.as_ref());
        Some(ClusterSpec {
            name,
            secrets_file,
            writer_address,
            server,
            nodes,
            arbitrators,
            proxy,
            controller,
            deploy,
            backup,
            tls,
        })
    }

    /// `[tls]`: on when the section is there, unless `enabled = false`.
    fn tls(&mut self, raw: RawTls, secrets_file: &Path, nodes: &[NodeSpec]) -> Option<TlsSpec> {
        self.unknown_keys("tls", &raw.unknown, raw::TLS_KEYS);
        let dir = match raw.dir.as_deref() {
            Some(dir) => self.own_directory("tls.dir", dir),
            None => secrets_file
                .parent()
                .unwrap_or(Path::new("/etc/galley"))
                .join("tls"),
        };
        let operator_ca = match (&raw.ca_cert, &raw.ca_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: self.absolute_path("tls.ca_cert", cert),
                key: self.absolute_path("tls.ca_key", key),
            }),
            (None, None) => None,
            (Some(_), None) => {
                self.problem(
                    "tls.ca_key",
                    "is missing: galley issues the leaf certificates with the CA of tls.ca_cert and needs its private key (PEM) in tls.ca_key; give both, or neither for a CA of galley's own",
                );
                None
            }
            (None, Some(_)) => {
                self.problem(
                    "tls.ca_cert",
                    "is missing: tls.ca_key needs its CA certificate (PEM) in tls.ca_cert; give both, or neither for a CA of galley's own",
                );
                None
            }
        };
        let cipher = raw
            .cipher
            .unwrap_or_else(|| TlsSpec::DEFAULT_CIPHER.to_owned());
        // The list ends up inside wsrep_provider_options, where `;` and quotes would end
        // the option or the value.
        let cipher_valid = !cipher.is_empty()
            && cipher
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ":+-_!@=.".contains(c));
        if !cipher_valid {
            self.problem(
                "tls.cipher",
                format!(
                    "`{}` is not an OpenSSL cipher list; allowed: names like ECDHE-ECDSA-AES256-GCM-SHA384 joined by `:`",
                    cipher.escape_debug()
                ),
            );
        }
        let validity_days = self.bounded(
            "tls.validity_days",
            raw.validity_days,
            u64::from(DEFAULT_TLS_VALIDITY_DAYS),
            1,
            3650,
        ) as u32;
        if nodes.iter().any(|node| !node.managed) {
            self.problem(
                "tls",
                "is not supported for an imported cluster: galley does not write the configuration of nodes it did not deploy",
            );
        }
        if raw.enabled == Some(false) {
            return None;
        }
        Some(TlsSpec {
            dir,
            operator_ca,
            cipher,
            require_secure_transport: raw.require_secure_transport.unwrap_or(false),
            validity_days,
        })
    }

    fn backup(&mut self, raw: RawBackup) -> Option<BackupSpec> {
        self.unknown_keys("backup", &raw.unknown, raw::BACKUP_KEYS);
        let keep_full = raw
            .keep_full
            .map(|_| self.bounded("backup.keep_full", raw.keep_full, 1, 1, 10_000) as u32);
        let keep_days = raw
            .keep_days
            .map(|_| self.bounded("backup.keep_days", raw.keep_days, 1, 1, 36_500) as u32);
        let Some(text) = raw.target else {
            self.problem(
                "backup.target",
                "missing; where backups go, like `target = \"/var/backups/galley\"` or `target = \"s3://bucket/prefix\"`",
            );
            return None;
        };
        match BackupTarget::parse(&text) {
            Ok(target) => Some(BackupSpec {
                target,
                keep_full,
                keep_days,
            }),
            Err(message) => {
                self.problem("backup.target", message);
                None
            }
        }
    }

    fn server(&mut self, raw: RawServer) -> ServerSettings {
        self.unknown_keys("server", &raw.unknown, raw::SERVER_KEYS);
        let sst_method = match raw.sst_method.as_deref() {
            None | Some("rsync") => SstMethod::Rsync,
            Some("mariabackup") => SstMethod::Mariabackup,
            Some(other) => {
                self.problem(
                    "server.sst_method",
                    format!(
                        "`{other}` is not supported; allowed: {}",
                        SstMethod::ALLOWED.join(", ")
                    ),
                );
                SstMethod::Rsync
            }
        };
        let flush = raw.innodb_flush_log_at_trx_commit.unwrap_or(1);
        let flush = match flush {
            1 => 1,
            0 | 2 => {
                self.warning(
                    "server.innodb_flush_log_at_trx_commit",
                    format!("{flush} can lose committed transactions when nodes crash together; 1 is the safe setting"),
                );
                flush as u8
            }
            other => {
                self.problem(
                    "server.innodb_flush_log_at_trx_commit",
                    format!("{other} is not allowed; allowed: 0, 1 (default, safe), 2"),
                );
                1
            }
        };
        let max_connections = match raw.max_connections.unwrap_or(2000) {
            n @ 10..=100_000 => n as u32,
            other => {
                self.problem(
                    "server.max_connections",
                    format!("{other} is out of range; allowed: 10 to 100000"),
                );
                2000
            }
        };
        let max_stop = ServerSettings::MAX_STOP_TIMEOUT_S as i64;
        let stop_timeout_s = match raw.stop_timeout_s.unwrap_or(600) {
            n if (10..=max_stop).contains(&n) => n as u64,
            other => {
                self.problem(
                    "server.stop_timeout_s",
                    format!("{other} is out of range; allowed: 10 to {max_stop} seconds"),
                );
                600
            }
        };
        let (low, high) = ServerSettings::EVS_SUSPECT_TIMEOUT_MS;
        let evs_suspect_timeout_ms = match raw
            .evs_suspect_timeout_ms
            .unwrap_or(ServerSettings::DEFAULT_EVS_SUSPECT_TIMEOUT_MS as i64)
        {
            n if (low as i64..=high as i64).contains(&n) => n as u64,
            other => {
                self.problem(
                    "server.evs_suspect_timeout_ms",
                    format!("{other} is out of range; allowed: {low} to {high} milliseconds (Galera's own default is 5000)"),
                );
                ServerSettings::DEFAULT_EVS_SUSPECT_TIMEOUT_MS
            }
        };
        let (low, high) = ServerSettings::HANG_FENCE_MS;
        let hang_fence_ms = match raw
            .hang_fence_ms
            .unwrap_or(ServerSettings::DEFAULT_HANG_FENCE_MS as i64)
        {
            0 => 0,
            n if (low as i64..=high as i64).contains(&n) => n as u64,
            other => {
                self.problem(
                    "server.hang_fence_ms",
                    format!("{other} is out of range; allowed: 0 (no fence) or {low} to {high} milliseconds"),
                );
                ServerSettings::DEFAULT_HANG_FENCE_MS
            }
        };
        let character_set = raw.character_set.unwrap_or_else(|| "utf8mb4".to_owned());
        self.identifier("server.character_set", &character_set);
        let collation = raw
            .collation
            .unwrap_or_else(|| format!("{character_set}_general_ci"));
        self.identifier("server.collation", &collation);
        if !collation.starts_with(&format!("{character_set}_")) {
            self.problem(
                "server.collation",
                format!("`{collation}` does not belong to character set `{character_set}`; use a `{character_set}_...` collation"),
            );
        }
        let os_user = raw.os_user.unwrap_or_else(|| "mysql".to_owned());
        self.identifier("server.os_user", &os_user);
        ServerSettings {
            os_user,
            buffer_pool_size: self.size(
                "server.buffer_pool_size",
                raw.buffer_pool_size,
                ByteSize::mib(256),
                ByteSize::mib(32),
            ),
            log_file_size: self.size(
                "server.log_file_size",
                raw.log_file_size,
                ByteSize::mib(96),
                ByteSize::mib(8),
            ),
            max_connections,
            character_set,
            collation,
            innodb_flush_log_at_trx_commit: flush,
            gcache_size: self.size(
                "server.gcache_size",
                raw.gcache_size,
                ByteSize::mib(256),
                ByteSize::mib(16),
            ),
            sst_method,
            stop_timeout_s,
            causal_reads: raw.causal_reads.unwrap_or(false),
            evs_suspect_timeout_ms,
            hang_fence_ms,
        }
    }

    fn size(
        &mut self,
        field: &str,
        value: Option<toml::Value>,
        default: ByteSize,
        minimum: ByteSize,
    ) -> ByteSize {
        let parsed = match value {
            None => return default,
            Some(toml::Value::Integer(bytes)) if bytes >= 0 => Ok(ByteSize(bytes as u64)),
            Some(toml::Value::String(text)) => ByteSize::parse(&text),
            Some(other) => Err(format!(
                "`{other}` is not a size; write bytes or a string like \"256M\""
            )),
        };
        match parsed {
            Ok(size) if size >= minimum => size,
            Ok(size) => {
                self.problem(
                    field,
                    format!("{size} is too small; the minimum is {minimum}"),
                );
                default
            }
            Err(message) => {
                self.problem(field, message);
                default
            }
        }
    }

    fn nodes(&mut self, raw_nodes: Vec<RawNode>, arbitrators: usize) -> Vec<NodeSpec> {
        if raw_nodes.is_empty() {
            let message = if arbitrators == 0 {
                "no data nodes; add at least one [[node]] section (three for automatic quorum)"
            } else {
                "no data nodes; an [[arbitrator]] stores no data, so a cluster needs [[node]] sections too (two data nodes and one arbitrator, or three data nodes)"
            };
            self.problem("node", message);
            return Vec::new();
        }
        self.quorum(raw_nodes.len(), arbitrators);
        let mut nodes = Vec::new();
        let mut names: HashMap<String, usize> = HashMap::new();
        for (index, raw) in raw_nodes.into_iter().enumerate() {
            let label = match &raw.name {
                Some(name) => format!("node \"{}\"", name.escape_debug()),
                None => format!("node #{}", index + 1),
            };
            if let Some(node) = self.node(&label, index, raw) {
                if let Some(first) = names.insert(node.name.clone(), index) {
                    self.problem(
                        format!("{label}.name"),
                        format!(
                            "duplicate node name (also node #{}); every node needs its own name",
                            first + 1
                        ),
                    );
                }
                nodes.push(node);
            }
        }
        self.shared_directories(&nodes);
        let unmanaged: Vec<&str> = nodes
            .iter()
            .filter(|node| !node.managed)
            .map(|node| node.name.as_str())
            .collect();
        if !unmanaged.is_empty() && unmanaged.len() < nodes.len() {
            self.problem(
                "node",
                format!(
                    "{} set `managed = false` while the other nodes are managed; a cluster is either deployed by galley (every node managed) or imported (every node `managed = false`)",
                    unmanaged.join(", ")
                ),
            );
        }
        nodes
    }

    /// A node of an imported cluster: galley reaches it over SQL only, so it needs a
    /// name, an address and a client port, and nothing about agents or directories.
    fn unmanaged_node(&mut self, label: &str, index: usize, raw: RawNode) -> Option<NodeSpec> {
        let agent_only = [
            ("galera_port", raw.galera_port.is_some()),
            ("ist_port", raw.ist_port.is_some()),
            ("sst_port", raw.sst_port.is_some()),
            ("agent_port", raw.agent_port.is_some()),
            ("data_dir", raw.data_dir.is_some()),
            ("run_dir", raw.run_dir.is_some()),
            ("log_dir", raw.log_dir.is_some()),
            ("segment", raw.segment.is_some()),
        ];
        for (key, present) in agent_only {
            if present {
                self.problem(
                    format!("{label}.{key}"),
                    format!(
                        "not used for a node with `managed = false` (galley observes it over SQL only); allowed keys: {}",
                        raw::UNMANAGED_NODE_KEYS.join(", ")
                    ),
                );
            }
        }
        let name = self.node_name(label, raw.name)?;
        let address = self.required_node_address(
            label,
            raw.address,
            "missing; the IP address or host name where galley reaches the node over SQL",
        );
        let client_port = match raw.client_port {
            Some(port) => self.port(&format!("{label}.client_port"), Some(port), 0),
            None => {
                self.problem(
                    format!("{label}.client_port"),
                    "missing; the port where the node takes SQL clients, like 3306",
                );
                0
            }
        };
        let priority = self.node_priority(label, index, raw.priority);
        Some(NodeSpec {
            name,
            ssh_address: address.clone(),
            address,
            client_port,
            galera_port: 0,
            ist_port: 0,
            sst_port: 0,
            agent_port: 0,
            data_dir: PathBuf::new(),
            run_dir: PathBuf::new(),
            log_dir: PathBuf::new(),
            priority,
            managed: false,
            segment: 0,
        })
    }

    /// A node's name, checked as an identifier; None (with the problem recorded) when missing.
    fn node_name(&mut self, label: &str, name: Option<String>) -> Option<String> {
        let Some(name) = name else {
            self.problem(
                format!("{label}.name"),
                "missing; every node needs a name, like `name = \"db1\"`",
            );
            return None;
        };
        self.identifier(&format!("{label}.name"), &name);
        Some(name)
    }

    /// A node's address, which must be given; `missing` says what it is for.
    fn required_node_address(
        &mut self,
        label: &str,
        address: Option<String>,
        missing: &str,
    ) -> String {
        match address {
            Some(address) => {
                self.node_address(&format!("{label}.address"), &address);
                address
            }
            None => {
                self.problem(format!("{label}.address"), missing);
                String::new()
            }
        }
    }

    /// A node's priority: its position (1-based) unless given, 0 to 1000.
    fn node_priority(&mut self, label: &str, index: usize, priority: Option<i64>) -> u32 {
        match priority {
            None => index as u32 + 1,
            Some(p @ 0..=1000) => p as u32,
            Some(other) => {
                self.problem(
                    format!("{label}.priority"),
                    format!("{other} is out of range; allowed: 0 to 1000, lower is preferred"),
                );
                0
            }
        }
    }

    fn node(&mut self, label: &str, index: usize, raw: RawNode) -> Option<NodeSpec> {
        let mut unknown = raw.unknown;
        if unknown.remove("role").is_some() {
            self.problem(
                format!("{label}.role"),
                "unknown key; a [[node]] is always a data node: write an arbitrator (garbd) as an [[arbitrator]] section with name, address and galera_port",
            );
        }
        self.unknown_keys(label, &unknown, raw::NODE_KEYS);
        let raw = RawNode { unknown, ..raw };
        if raw.managed == Some(false) {
            return self.unmanaged_node(label, index, raw);
        }
        let name = self.node_name(label, raw.name)?;
        let address = self.required_node_address(
            label,
            raw.address,
            "missing; the IP address or host name the other nodes reach it at",
        );
        let data_dir = match raw.data_dir {
            Some(dir) => self.own_directory(&format!("{label}.data_dir"), &dir),
            None => {
                self.problem(
                    format!("{label}.data_dir"),
                    "missing; an absolute path like /var/lib/mysql",
                );
                PathBuf::new()
            }
        };
        let run_dir = self.own_directory(
            &format!("{label}.run_dir"),
            raw.run_dir
                .as_deref()
                .unwrap_or(&format!("/run/galley/{name}")),
        );
        let socket_length = run_dir.join("mysqld.sock").as_os_str().len();
        if socket_length > MAX_SOCKET_PATH {
            self.problem(
                format!("{label}.run_dir"),
                format!("too long for a unix socket ({socket_length} bytes with /mysqld.sock; the limit is {MAX_SOCKET_PATH}); choose a shorter path"),
            );
        }
        let log_dir = self.own_directory(
            &format!("{label}.log_dir"),
            raw.log_dir
                .as_deref()
                .unwrap_or(&format!("/var/log/galley/{name}")),
        );
        let priority = self.node_priority(label, index, raw.priority);
        let ssh_address = match raw.ssh_address {
            Some(ssh_address) => {
                self.node_address(&format!("{label}.ssh_address"), &ssh_address);
                ssh_address
            }
            None => address.clone(),
        };
        Some(NodeSpec {
            ssh_address,
            client_port: self.port(
                &format!("{label}.client_port"),
                raw.client_port,
                DEFAULT_CLIENT_PORT,
            ),
            galera_port: self.port(
                &format!("{label}.galera_port"),
                raw.galera_port,
                DEFAULT_GALERA_PORT,
            ),
            ist_port: self.port(&format!("{label}.ist_port"), raw.ist_port, DEFAULT_IST_PORT),
            sst_port: self.port(&format!("{label}.sst_port"), raw.sst_port, DEFAULT_SST_PORT),
            agent_port: self.port(
                &format!("{label}.agent_port"),
                raw.agent_port,
                DEFAULT_AGENT_PORT,
            ),
            name,
            address,
            data_dir,
            run_dir,
            log_dir,
            priority,
            managed: true,
            segment: self.segment(&format!("{label}.segment"), raw.segment),
        })
    }

    /// The quorum warnings for `data` data nodes and `arbitrators` arbitrators (the
    /// problems with arbitrators are `arbitrators`').
    fn quorum(&mut self, data: usize, arbitrators: usize) {
        if arbitrators == 0 {
            if data < 3 {
                self.warning(
                    "node",
                    format!(
                        "{data} data node(s): Galera keeps quorum through the loss of a node only with three or more"
                    ),
                );
            } else if data.is_multiple_of(2) {
                self.warning(
                    "node",
                    format!("{data} data nodes: an even count can split into two halves that both lose quorum; prefer an odd count"),
                );
            }
            return;
        }
        let votes = data + arbitrators;
        if arbitrators < data && votes.is_multiple_of(2) {
            self.warning(
                "arbitrator",
                format!("{data} data nodes and {arbitrators} arbitrator(s) make {votes} votes: an even count can split into two halves that both lose quorum; prefer an odd count"),
            );
        }
    }

    /// A Galera segment, 0 unless set.
    fn segment(&mut self, field: &str, value: Option<i64>) -> u8 {
        match value {
            None => 0,
            Some(segment @ 0..=255) => segment as u8,
            Some(other) => {
                self.problem(
                    field,
                    format!("{other} is not a Galera segment (gmcast.segment); allowed: 0 to 255, one number per site"),
                );
                0
            }
        }
    }

    /// The `[[arbitrator]]` sections: garbd members that vote and store no data.
    fn arbitrators(&mut self, raw: Vec<RawArbitrator>, nodes: &[NodeSpec]) -> Vec<ArbitratorSpec> {
        if raw.is_empty() {
            return Vec::new();
        }
        let data = nodes.len();
        if data > 0 && raw.len() >= data {
            self.problem(
                "arbitrator",
                format!(
                    "{} arbitrator(s) for {data} data node(s): arbitrators store no data, so they must be fewer than the data nodes; otherwise they hold half the votes or more, and losing them stops every data node; allowed: fewer arbitrators than data nodes, like two data nodes and one arbitrator",
                    raw.len()
                ),
            );
        }
        if nodes.iter().any(|node| !node.managed) {
            self.problem(
                "arbitrator",
                "is not supported for an imported cluster: galley runs garbd only beside nodes it deployed",
            );
        }
        let mut arbitrators: Vec<ArbitratorSpec> = Vec::new();
        for (index, raw) in raw.into_iter().enumerate() {
            let label = match &raw.name {
                Some(name) => format!("arbitrator \"{}\"", name.escape_debug()),
                None => format!("arbitrator #{}", index + 1),
            };
            self.unknown_keys(&label, &raw.unknown, raw::ARBITRATOR_KEYS);
            let Some(name) = raw.name else {
                self.problem(
                    format!("{label}.name"),
                    "missing; every arbitrator needs a name, like `name = \"garbd1\"`",
                );
                continue;
            };
            self.identifier(&format!("{label}.name"), &name);
            if nodes.iter().any(|node| node.name == name)
                || arbitrators.iter().any(|other| other.name == name)
            {
                self.problem(
                    format!("{label}.name"),
                    "duplicate name (also a node or another arbitrator); every member of the group needs its own name",
                );
            }
            let address = self.required_node_address(
                &label,
                raw.address,
                "missing; the IP address or host name the data nodes reach garbd at",
            );
            if !crate::is_local_address(&address) {
                if let Some(node) = nodes.iter().find(|node| node.address == address) {
                    self.warning(
                        format!("{label}.address"),
                        format!("{address} is also node \"{}\"'s host: when that host fails the cluster loses two votes at once and the arbitrator helps nothing; run garbd on a third host", node.name),
                    );
                }
            }
            let run_dir = self.own_directory(
                &format!("{label}.run_dir"),
                raw.run_dir
                    .as_deref()
                    .unwrap_or(&format!("/run/galley/{name}")),
            );
            let log_dir = self.own_directory(
                &format!("{label}.log_dir"),
                raw.log_dir
                    .as_deref()
                    .unwrap_or(&format!("/var/log/galley/{name}")),
            );
            let ssh_address = match raw.ssh_address {
                Some(ssh_address) => {
                    self.node_address(&format!("{label}.ssh_address"), &ssh_address);
                    ssh_address
                }
                None => address.clone(),
            };
            arbitrators.push(ArbitratorSpec {
                galera_port: self.port(
                    &format!("{label}.galera_port"),
                    raw.galera_port,
                    DEFAULT_GALERA_PORT,
                ),
                segment: self.segment(&format!("{label}.segment"), raw.segment),
                name,
                address,
                log_dir,
                run_dir,
                ssh_address,
            });
        }
        arbitrators
    }

    /// `server_max_connections` is what every node accepts; the proxy's own default
    /// stays below it (see `ProxySpec::max_connections`).
    fn proxy(&mut self, raw: RawProxy, server_max_connections: u32) -> ProxySpec {
        self.unknown_keys("proxy", &raw.unknown, raw::PROXY_KEYS);
        let address = raw.address.unwrap_or_else(|| "127.0.0.1".to_owned());
        self.listen_address("proxy.address", &address);
        let admin_address = raw.admin_address.unwrap_or_else(|| "127.0.0.1".to_owned());
        self.listen_address("proxy.admin_address", &admin_address);
        let default_max_connections = server_max_connections - (server_max_connections / 10).max(5);
        let max_connections = self.bounded(
            "proxy.max_connections",
            raw.max_connections,
            u64::from(default_max_connections),
            1,
            1_000_000,
        ) as u32;
        // On loopback every client shares one address, so a lower default would only
        // halve what the proxy serves.
        let default_per_source = if crate::is_local_address(&address) {
            max_connections
        } else {
            max_connections.div_ceil(2)
        };
        let max_connections_per_source = self.bounded(
            "proxy.max_connections_per_source",
            raw.max_connections_per_source,
            u64::from(default_per_source),
            1,
            1_000_000,
        ) as u32;
        let probe_interval_ms = self.bounded(
            "proxy.probe_interval_ms",
            raw.probe_interval_ms,
            500,
            50,
            60_000,
        );
        let probe_timeout_ms = self.bounded(
            "proxy.probe_timeout_ms",
            raw.probe_timeout_ms,
            1000,
            50,
            60_000,
        );
        ProxySpec {
            address,
            writer_port: self.port("proxy.writer_port", raw.writer_port, 3306),
            reader_port: self.port("proxy.reader_port", raw.reader_port, 3307),
            multi_writer_port: raw
                .multi_writer_port
                .map(|port| self.port("proxy.multi_writer_port", Some(port), 3308)),
            admin_address,
            admin_port: self.port("proxy.admin_port", raw.admin_port, 4590),
            probe_interval_ms,
            probe_timeout_ms,
            rise: self.bounded("proxy.rise", raw.rise, 2, 1, 100) as u32,
            fall: self.bounded("proxy.fall", raw.fall, 2, 1, 100) as u32,
            connect_timeout_ms: self.bounded(
                "proxy.connect_timeout_ms",
                raw.connect_timeout_ms,
                1000,
                10,
                60_000,
            ),
            greeting_timeout_ms: self.bounded(
                "proxy.greeting_timeout_ms",
                raw.greeting_timeout_ms,
                5000,
                10,
                60_000,
            ),
            login_timeout_ms: self.bounded(
                "proxy.login_timeout_ms",
                raw.login_timeout_ms,
                10_000,
                100,
                600_000,
            ),
            drain_timeout_ms: self.bounded(
                "proxy.drain_timeout_ms",
                raw.drain_timeout_ms,
                30_000,
                0,
                3_600_000,
            ),
            idle_timeout_s: self.bounded(
                "proxy.idle_timeout_s",
                raw.idle_timeout_s,
                28_800,
                0,
                31_536_000,
            ),
            recv_queue_limit: self.bounded(
                "proxy.recv_queue_limit",
                raw.recv_queue_limit,
                100,
                0,
                1_000_000_000,
            ) as i64,
            failback: raw.failback.unwrap_or(false),
            writer_grace_ms: self.bounded(
                "proxy.writer_grace_ms",
                raw.writer_grace_ms,
                0,
                0,
                3_600_000,
            ),
            max_connections,
            max_connections_per_source,
            forwarding: match raw.forwarding.as_deref() {
                None => crate::Forwarding::Auto,
                Some(text) => crate::Forwarding::parse(text).unwrap_or_else(|| {
                    self.problem(
                        "proxy.forwarding",
                        format!(
                            "`{text}` is not a forwarding mode; allowed: {}",
                            crate::Forwarding::ALLOWED
                        ),
                    );
                    crate::Forwarding::Auto
                }),
            },
            writer_decision: match raw.writer_decision.as_deref() {
                None => crate::WriterDecision::Shared,
                Some(text) => crate::WriterDecision::parse(text).unwrap_or_else(|| {
                    self.problem(
                        "proxy.writer_decision",
                        format!(
                            "`{text}` is not a writer decision; allowed: {}",
                            crate::WriterDecision::ALLOWED
                        ),
                    );
                    crate::WriterDecision::Shared
                }),
            },
        }
    }

    fn controller(&mut self, raw: RawController) -> ControllerSpec {
        self.unknown_keys("controller", &raw.unknown, raw::CONTROLLER_KEYS);
        let address = raw.address.unwrap_or_else(|| "127.0.0.1".to_owned());
        self.listen_address("controller.address", &address);
        let mut confirm = Vec::new();
        for step in raw.confirm.unwrap_or_default() {
            match step.as_str() {
                "bootstrap" => confirm.push(crate::ConfirmStep::Bootstrap),
                "restart" => confirm.push(crate::ConfirmStep::Restart),
                other => self.problem(
                    "controller.confirm",
                    format!(
                        "`{other}` is not a step; allowed: {}",
                        crate::ConfirmStep::ALLOWED.join(", ")
                    ),
                ),
            }
        }
        let alert_command = raw.alert_command.unwrap_or_default();
        if let Some(program) = alert_command.first() {
            if !Path::new(program).is_absolute() {
                self.problem(
                    "controller.alert_command",
                    format!("`{program}` is relative; give the program's absolute path"),
                );
            } else {
                self.absolute_path("controller.alert_command", program);
            }
        }
        if let Some(url) = &raw.alert_webhook {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                self.problem(
                    "controller.alert_webhook",
                    format!("`{url}` is not an http:// or https:// URL"),
                );
            }
        }
        // Whether the files exist is checked by the controller when it starts, on its
        // own host: a spec is also validated where it is written (`galley deploy`).
        let tls = match (&raw.tls_cert, &raw.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: self.absolute_path("controller.tls_cert", cert),
                key: self.absolute_path("controller.tls_key", key),
            }),
            (None, None) => None,
            (Some(_), None) => {
                self.problem(
                    "controller.tls_key",
                    "is missing: tls_cert needs its private key (PEM) in tls_key; give both or neither".to_owned(),
                );
                None
            }
            (None, Some(_)) => {
                self.problem(
                    "controller.tls_cert",
                    "is missing: tls_key needs its certificate chain (PEM) in tls_cert; give both or neither".to_owned(),
                );
                None
            }
        };
        let flow_control_threshold = raw.flow_control_threshold.unwrap_or(0.1);
        if !(0.0..=1.0).contains(&flow_control_threshold) {
            self.problem(
                "controller.flow_control_threshold",
                format!("{flow_control_threshold} is out of range; allowed: 0.0 to 1.0 (a fraction of time paused)"),
            );
        }
        ControllerSpec {
            address,
            port: self.port("controller.port", raw.port, 4600),
            state_dir: self.own_directory(
                "controller.state_dir",
                raw.state_dir
                    .as_deref()
                    .unwrap_or("/var/lib/galley/controller"),
            ),
            interval_ms: self.bounded("controller.interval_ms", raw.interval_ms, 1000, 100, 60_000),
            stuck_after_s: self.bounded(
                "controller.stuck_after_s",
                raw.stuck_after_s,
                30,
                1,
                86_400,
            ),
            retention_hours: self.bounded(
                "controller.retention_hours",
                raw.retention_hours,
                168,
                1,
                24 * 3650,
            ),
            auto_recover_nodes: raw.auto_recover_nodes.unwrap_or(true),
            auto_recover_cluster: raw.auto_recover_cluster.unwrap_or(true),
            confirm,
            allow_wipe: raw.allow_wipe.unwrap_or(false),
            wipe_after_failed_starts: self.bounded(
                "controller.wipe_after_failed_starts",
                raw.wipe_after_failed_starts,
                3,
                1,
                100,
            ) as u32,
            flow_control_threshold,
            alert_command,
            alert_webhook: raw.alert_webhook,
            tls,
        }
    }

    fn deploy(&mut self, raw: RawDeploy) -> DeploySpec {
        self.unknown_keys("deploy", &raw.unknown, raw::DEPLOY_KEYS);
        let ssh_user = match raw.ssh_user {
            Some(user) => {
                let valid = !user.is_empty()
                    && user.len() <= 32
                    && !user.starts_with('-')
                    && user
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
                if !valid {
                    self.problem(
                        "deploy.ssh_user",
                        format!("`{}` is not a user name; use 1 to 32 letters, digits, `_`, `-` or `.`, not starting with `-`", user.escape_debug()),
                    );
                }
                user
            }
            None => {
                self.problem(
                    "deploy.ssh_user",
                    "missing; the SSH user with passwordless sudo on every host, like `ssh_user = \"deploy\"`",
                );
                String::new()
            }
        };
        let ssh_key = raw
            .ssh_key
            .map(|key| self.absolute_path("deploy.ssh_key", &key));
        let install_dir = self.absolute_path(
            "deploy.install_dir",
            raw.install_dir.as_deref().unwrap_or("/opt/galley"),
        );
        if let Some(reason) = crate::paths::install_directory_reason(&install_dir) {
            self.problem(
                "deploy.install_dir",
                format!(
                    "{reason}; galley replaces what it puts there on every deploy; {}",
                    crate::paths::SYSTEM_DIRECTORY_ADVICE
                ),
            );
        }
        let vendor = raw.vendor.unwrap_or_else(|| "mariadb".to_owned());
        if vendor != "mariadb" {
            self.problem(
                "deploy.vendor",
                format!(
                    "`{}` is not supported; allowed: mariadb",
                    vendor.escape_debug()
                ),
            );
        }
        let version = raw.version.unwrap_or_else(|| "10.11".to_owned());
        if version != "10.11" {
            self.problem(
                "deploy.version",
                format!(
                    "`{}` is not supported; allowed: 10.11 (the MariaDB of Debian 12's packages)",
                    version.escape_debug()
                ),
            );
        }
        let service_manager = match raw.service_manager.as_deref() {
            None | Some("auto") => ServiceManager::Auto,
            Some("systemd") => ServiceManager::Systemd,
            Some("supervised") => ServiceManager::Supervised,
            Some(other) => {
                self.problem(
                    "deploy.service_manager",
                    format!(
                        "`{}` is not allowed; allowed: {}",
                        other.escape_debug(),
                        ServiceManager::ALLOWED.join(", ")
                    ),
                );
                ServiceManager::Auto
            }
        };
        let install = self.install(raw.install.as_deref(), raw.package.as_deref());
        DeploySpec {
            ssh_user,
            ssh_port: self.port("deploy.ssh_port", raw.ssh_port, 22),
            ssh_key,
            install_dir,
            vendor,
            version,
            service_manager,
            install,
        }
    }

    /// `[deploy] install` and `package`: the binary that runs the deploy, or a Debian
    /// package file on this machine, which must be named as one (`.deb`).
    fn install(&mut self, install: Option<&str>, package: Option<&str>) -> Install {
        match (install, package) {
            (None | Some("binary"), None) => Install::Binary,
            (None | Some("binary"), Some(_)) => {
                self.problem(
                    "deploy.package",
                    "is set, but deploy.install is `binary` (the default); add `install = \"package\"` to install galley from this package, or remove `package`",
                );
                Install::Binary
            }
            (Some("package"), None) => {
                self.problem(
                    "deploy.package",
                    "missing; with install = \"package\", the Debian package to install on every host, like `package = \"/home/ops/galley_0.1.0_amd64.deb\"` (scripts/build-deb.sh builds it)",
                );
                Install::Binary
            }
            (Some("package"), Some(package)) => {
                let path = self.absolute_path("deploy.package", package);
                if !package.ends_with(".deb") {
                    self.problem(
                        "deploy.package",
                        format!(
                            "`{}` is not named as a Debian package (`.deb`); give the file scripts/build-deb.sh wrote, like target/debian/galley_0.1.0_amd64.deb",
                            package.escape_debug()
                        ),
                    );
                }
                Install::Package(path)
            }
            (Some(other), _) => {
                self.problem(
                    "deploy.install",
                    format!(
                        "`{}` is not allowed; allowed: {}",
                        other.escape_debug(),
                        Install::ALLOWED.join(", ")
                    ),
                );
                Install::Binary
            }
        }
    }

    fn bounded(
        &mut self,
        field: &str,
        value: Option<i64>,
        default: u64,
        minimum: u64,
        maximum: u64,
    ) -> u64 {
        match value {
            None => default,
            Some(n) if n >= minimum as i64 && n <= maximum as i64 => n as u64,
            Some(other) => {
                self.problem(
                    field,
                    format!("{other} is out of range; allowed: {minimum} to {maximum}"),
                );
                default
            }
        }
    }

    fn port(&mut self, field: &str, value: Option<i64>, default: u16) -> u16 {
        match value {
            None => default,
            Some(port @ 1..=65535) => port as u16,
            Some(other) => {
                self.problem(field, format!("{other} is not a port; allowed: 1 to 65535"));
                default
            }
        }
    }

    /// Names that end up in SQL, file names, my.cnf, systemd units and command lines
    /// (`--node NAME`): letters, digits, `_` and `-`, and no leading `-`, which a command
    /// would take for an option.
    fn identifier(&mut self, field: &str, value: &str) {
        let valid = !value.is_empty()
            && value.len() <= 64
            && !value.starts_with('-')
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            self.problem(
                field,
                format!(
                    "`{}` is not allowed; use 1 to 64 letters, digits, `_` or `-`, not starting with `-`",
                    value.escape_debug()
                ),
            );
        }
    }

    /// Every path in galley.toml: [`crate::paths::check_path`]'s rule.
    fn absolute_path(&mut self, field: &str, value: &str) -> PathBuf {
        if let Err(reason) = crate::paths::check_path(value) {
            self.problem(
                field,
                format!("{reason}; allowed: {}", crate::paths::PATH_ALLOWED),
            );
        }
        PathBuf::from(value)
    }

    /// A data, run, log or state directory: a path, and none of the system's own
    /// directories (the agent and the controller create, chown and chmod it).
    fn own_directory(&mut self, field: &str, value: &str) -> PathBuf {
        let path = self.absolute_path(field, value);
        if let Some(reason) = crate::paths::system_directory_reason(&path) {
            self.problem(
                field,
                format!(
                    "{reason}; galley gives this directory to the server's OS user or replaces what is in it; {}",
                    crate::paths::SYSTEM_DIRECTORY_ADVICE
                ),
            );
        }
        path
    }

    /// A node's address is dialled by its peers: a concrete IP or a DNS host name.
    fn node_address(&mut self, field: &str, value: &str) {
        match value.parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() => self.problem(
                field,
                format!("`{value}` listens everywhere but cannot be dialled; give the address the other nodes reach"),
            ),
            Ok(_) => {}
            Err(_) if is_host_name(value) => {}
            Err(_) => self.problem(
                field,
                format!("`{}` is neither an IP address nor a host name", value.escape_debug()),
            ),
        }
    }

    /// `host:port` (`[v6]:port` for an IPv6 literal) that clients dial.
    fn host_and_port(&mut self, field: &str, value: &str) -> Option<(String, u16)> {
        let parsed = match value.strip_prefix('[') {
            Some(rest) => rest.split_once("]:"),
            None => value
                .rsplit_once(':')
                .filter(|(host, _)| !host.contains(':')),
        };
        let Some((host, port)) = parsed else {
            self.problem(
                field,
                format!(
                    "`{}` is not HOST:PORT; write it like \"10.0.0.10:3306\"",
                    value.escape_debug()
                ),
            );
            return None;
        };
        let before = self.problems.len();
        self.node_address(field, host);
        match port.parse::<u16>() {
            Ok(port) if port > 0 && self.problems.len() == before => Some((host.to_owned(), port)),
            Ok(_) | Err(_) => {
                if self.problems.len() == before {
                    self.problem(
                        field,
                        format!(
                            "`{}` is not a port; allowed: 1 to 65535",
                            port.escape_debug()
                        ),
                    );
                }
                None
            }
        }
    }

    fn listen_address(&mut self, field: &str, value: &str) {
        if value.parse::<IpAddr>().is_err() && !is_host_name(value) {
            self.problem(
                field,
                format!(
                    "`{}` is neither an IP address nor a host name",
                    value.escape_debug()
                ),
            );
        }
    }

    /// Two nodes on one host must not share a data, run or log directory.
    fn shared_directories(&mut self, nodes: &[NodeSpec]) {
        let mut seen: BTreeMap<(&str, &Path), (&str, &str)> = BTreeMap::new();
        for node in nodes {
            for (kind, dir) in [
                ("data_dir", node.data_dir.as_path()),
                ("run_dir", node.run_dir.as_path()),
                ("log_dir", node.log_dir.as_path()),
            ] {
                if dir.as_os_str().is_empty() {
                    continue;
                }
                if let Some((other, other_kind)) =
                    seen.insert((&node.address, dir), (&node.name, kind))
                {
                    self.problem(
                        format!("node \"{}\".{kind}", node.name),
                        format!("{} is also node \"{other}\".{other_kind} on the same host; each node needs its own", dir.display()),
                    );
                }
            }
        }
    }

    fn port_collisions(
        &mut self,
        nodes: &[NodeSpec],
        arbitrators: &[ArbitratorSpec],
        proxy: Option<&ProxySpec>,
        controller: Option<&ControllerSpec>,
    ) {
        let mut seen: HashMap<(String, u16), String> = HashMap::new();
        let mut claims: Vec<(String, u16, String)> = Vec::new();
        for node in nodes {
            for (field, port) in node.ports() {
                claims.push((
                    node.address.clone(),
                    port,
                    format!("node \"{}\".{field}", node.name),
                ));
            }
        }
        for arbitrator in arbitrators {
            claims.push((
                arbitrator.address.clone(),
                arbitrator.galera_port,
                format!("arbitrator \"{}\".galera_port", arbitrator.name),
            ));
        }
        if let Some(proxy) = proxy {
            for (field, address, port) in [
                ("writer_port", &proxy.address, Some(proxy.writer_port)),
                ("reader_port", &proxy.address, Some(proxy.reader_port)),
                ("multi_writer_port", &proxy.address, proxy.multi_writer_port),
                ("admin_port", &proxy.admin_address, Some(proxy.admin_port)),
            ] {
                if let Some(port) = port {
                    claims.push((address.clone(), port, format!("proxy.{field}")));
                }
            }
        }
        if let Some(controller) = controller {
            claims.push((
                controller.address.clone(),
                controller.port,
                "controller.port".to_owned(),
            ));
        }
        for (address, port, field) in claims {
            if let Some(first) = seen.get(&(address.clone(), port)) {
                let message = format!("port {port} on {address} is already taken by {first}; ports must differ on one address");
                self.problem(field, message);
            } else {
                seen.insert((address, port), field);
            }
        }
    }
}

fn is_host_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 253
        && value.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && !value.chars().all(|c| c.is_ascii_digit() || c == '.')
        // RFC 1123 2.1: the top-level label of a dotted name is alphabetic, so a mistyped
        // IPv4 address such as `10.0.0.1x` is rejected instead of taken for a host name.
        && value
            .rsplit_once('.')
            .is_none_or(|(_, top)| top.starts_with(|c: char| c.is_ascii_alphabetic()))
}

/// The allowed key closest to `key`, if it is close enough to be a likely typo.
fn nearest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(key, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn suggests_close_keys_only() {
        let allowed = ["client_port", "galera_port", "data_dir"];
        assert_eq!(nearest("clent_port", &allowed), Some("client_port"));
        assert_eq!(nearest("datadir", &allowed), Some("data_dir"));
        assert_eq!(nearest("colour", &allowed), None);
    }
}
