//! The cluster spec: galley.toml read in two stages (raw, then validated into
//! [`ClusterSpec`], whose invariants hold everywhere else), and pure rendering of each
//! node's MariaDB/Galera configuration.
//!
//! Nothing here does I/O except [`load`], which reads one file; everything else takes
//! values and returns values.

pub mod paths;
mod raw;
mod render;
mod size;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

pub use render::{render_node_config, GALERA_PROVIDER};
pub use size::ByteSize;
pub use validate::DEFAULT_TLS_VALIDITY_DAYS;
pub use validate::{parse, Problem, SpecError, Warning};

/// A validated cluster spec. Every field holds what the rules in `validate` promise:
/// unique node names, unique ports per address, absolute paths, known settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSpec {
    pub name: String,
    /// Where the generated secrets (admin and monitor passwords, cluster token) live.
    pub secrets_file: PathBuf,
    /// Where clients send writes when that is not galley's proxy: an existing load
    /// balancer or virtual IP in front of an imported cluster (`galley import
    /// --proxy-writer`). Connection strings handed to OpenStack services point at it.
    pub writer_address: Option<(String, u16)>,
    pub server: ServerSettings,
    /// The data nodes: each runs mariadbd with a copy of the data. Arbitrators are apart,
    /// in `arbitrators`, so that nothing that iterates over the nodes (the planner, the
    /// proxy, the agents) can take one for a data node.
    pub nodes: Vec<NodeSpec>,
    /// Galera arbitrators (`[[arbitrator]]`, garbd from Debian's galera-arbitrator-4):
    /// voting members of the group that store no data (docs/arbitrator.md).
    pub arbitrators: Vec<ArbitratorSpec>,
    pub proxy: Option<ProxySpec>,
    pub controller: Option<ControllerSpec>,
    /// How `galley deploy` reaches and installs the hosts; absent for a local cluster.
    pub deploy: Option<DeploySpec>,
    /// Where `galley backup` writes backups, and how many it keeps.
    pub backup: Option<BackupSpec>,
    /// The `[tls]` section: certificates on Galera replication, IST, SST and client SQL
    /// (docs/tls.md); absent, or `enabled = false`, for none.
    pub tls: Option<TlsSpec>,
}

/// The `[backup]` section (docs/backup.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSpec {
    pub target: BackupTarget,
    /// Full backups to keep (retention is not enforced yet; see docs/backup.md).
    pub keep_full: Option<u32>,
    /// Days to keep backups (likewise).
    pub keep_days: Option<u32>,
}

/// Where backups are stored: a directory on the host that runs `galley backup`, or an
/// S3-compatible bucket and key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupTarget {
    Directory(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl BackupTarget {
    /// `s3://bucket/prefix` or an absolute directory, checked like every galley.toml path.
    pub fn parse(text: &str) -> Result<BackupTarget, String> {
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let bucket_ok = (3..=63).contains(&bucket.len())
                && bucket
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
                && !bucket.starts_with(['-', '.'])
                && !bucket.ends_with(['-', '.']);
            if !bucket_ok {
                return Err(format!(
                    "`{}` is not an S3 bucket name; allowed: 3 to 63 lowercase letters, digits, `-` or `.`, starting and ending with a letter or digit",
                    bucket.escape_debug()
                ));
            }
            let prefix = prefix.trim_end_matches('/');
            let prefix_ok = prefix.split('/').all(|part| {
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            });
            if !prefix.is_empty() && !prefix_ok {
                return Err(format!(
                    "`{}` is not a key prefix; allowed: parts of letters, digits, `.`, `_` or `-` separated by `/`",
                    prefix.escape_debug()
                ));
            }
            return Ok(BackupTarget::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        paths::check_path(text).map_err(|reason| {
            format!(
                "{reason}; allowed: an absolute directory ({}) or s3://bucket/prefix",
                paths::PATH_ALLOWED
            )
        })?;
        Ok(BackupTarget::Directory(PathBuf::from(text)))
    }
}

impl fmt::Display for BackupTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackupTarget::Directory(path) => write!(f, "{}", path.display()),
            BackupTarget::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            BackupTarget::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

impl ClusterSpec {
    pub fn node(&self, name: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|node| node.name == name)
    }

    /// Node names in spec order, for error messages that list what is allowed.
    pub fn node_names(&self) -> Vec<&str> {
        self.nodes.iter().map(|node| node.name.as_str()).collect()
    }

    /// Where SQL clients should connect for writes: `[cluster] writer_address`, else the
    /// galley proxy's writer port, else the most preferred node.
    pub fn client_endpoint(&self) -> (String, u16) {
        if let Some((host, port)) = &self.writer_address {
            return (host.clone(), *port);
        }
        if let Some(proxy) = &self.proxy {
            return (proxy.address.clone(), proxy.writer_port);
        }
        self.nodes
            .iter()
            .min_by_key(|node| node.priority)
            .map(|node| (node.address.clone(), node.client_port))
            .unwrap_or_default()
    }

    /// True for an imported cluster: its nodes have no agents and galley only watches
    /// them (validation keeps a spec from mixing managed and unmanaged nodes).
    pub fn is_imported(&self) -> bool {
        self.nodes.iter().any(|node| !node.managed)
    }

    /// `gcomm://a:4567,b:4567,...`: every member, data nodes then arbitrators, so that
    /// any member can find the others (a data node restarting while its peer is down
    /// still reaches the arbitrator).
    pub fn cluster_address(&self) -> String {
        let members: Vec<String> = self
            .nodes
            .iter()
            .map(|node| host_port(&node.address, node.galera_port))
            .chain(
                self.arbitrators
                    .iter()
                    .map(|arbitrator| host_port(&arbitrator.address, arbitrator.galera_port)),
            )
            .collect();
        format!("gcomm://{}", members.join(","))
    }

    /// Every voting member of the Galera group the spec describes: data nodes and
    /// arbitrators. A Primary component whose view counts all of them is whole.
    pub fn voting_members(&self) -> usize {
        self.nodes.len() + self.arbitrators.len()
    }

    pub fn arbitrator(&self, name: &str) -> Option<&ArbitratorSpec> {
        self.arbitrators
            .iter()
            .find(|arbitrator| arbitrator.name == name)
    }
}

/// The Debian package that installs `garbd`.
pub const GARBD_PACKAGE: &str = "galera-arbitrator-4";

/// One Galera arbitrator: `garbd` joins the group as a voting member, so that two data
/// nodes (or two sites) keep a majority when one side fails, and stores no data: it is
/// never a bootstrap candidate, a donor, a writer or a reader (docs/arbitrator.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArbitratorSpec {
    /// Its Galera node name, unique among the nodes and arbitrators.
    pub name: String,
    /// An IP address or a host name that every data node can reach.
    pub address: String,
    /// Where garbd listens for the group (`gmcast.listen_addr`).
    pub galera_port: u16,
    /// Its Galera segment (`gmcast.segment`): the site it is in; 0 unless set.
    pub segment: u8,
    /// garbd's log file lives here.
    pub log_dir: PathBuf,
    /// Its pid file, on a host where galley runs it as a plain daemon.
    pub run_dir: PathBuf,
    /// Where `galley deploy` reaches its host over SSH (default: `address`).
    pub ssh_address: String,
}

impl ArbitratorSpec {
    pub fn log_file(&self) -> PathBuf {
        self.log_dir.join("garbd.log")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.run_dir.join("garbd.pid")
    }

    /// garbd's arguments, without the program: the group's name and address, its own
    /// name, where it listens and its segment, and its log file. No secret is among
    /// them (garbd needs none), so `ps` shows nothing it should not.
    pub fn garbd_args(&self, spec: &ClusterSpec) -> Vec<String> {
        vec![
            "--group".to_owned(),
            spec.name.clone(),
            "--address".to_owned(),
            spec.cluster_address(),
            "--name".to_owned(),
            self.name.clone(),
            "--options".to_owned(),
            self.provider_options(&spec.server),
            "--log".to_owned(),
            self.log_file().display().to_string(),
        ]
    }

    /// garbd's `--options`: where it listens, when set its segment, and the same
    /// failure detection as the data nodes (`ServerSettings::evs_timeouts`), so that
    /// garbd suspects a hung member when they do.
    pub fn provider_options(&self, server: &ServerSettings) -> String {
        let mut options = vec![format!(
            "gmcast.listen_addr=tcp://{}",
            host_port(render::listen_host(&self.address), self.galera_port)
        )];
        if self.segment != 0 {
            options.push(format!("gmcast.segment={}", self.segment));
        }
        options.extend(
            server
                .evs_timeouts()
                .into_iter()
                .map(|(key, ms)| format!("{key}={}", render::iso8601_ms(ms))),
        );
        options.join(";")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// The OS user mariadbd runs as when the agent runs as root.
    pub os_user: String,
    pub buffer_pool_size: ByteSize,
    pub log_file_size: ByteSize,
    pub max_connections: u32,
    pub character_set: String,
    pub collation: String,
    /// 1 by default: Jepsen lost committed transactions under crashes with 0.
    pub innodb_flush_log_at_trx_commit: u8,
    pub gcache_size: ByteSize,
    pub sst_method: SstMethod,
    /// How long a graceful stop of a Synced server may take (flushing a large buffer
    /// pool takes minutes) before the agent kills it; the data then goes through crash
    /// recovery at the next start. A server that is not Synced gets at most 30 s.
    pub stop_timeout_s: u64,
    /// Causal reads on every node (`wsrep_sync_wait = 1`): a read first waits until its
    /// node has applied every write committed anywhere before it began, so a read through
    /// the reader port sees the client's own earlier writes. Off by default: each read
    /// then costs a round trip through the group (docs/galera.md, "Causal reads").
    pub causal_reads: bool,
    /// How long a member may stay silent before the others suspect it and, all agreeing,
    /// evict it (`evs.suspect_timeout`); the other evs timeouts follow from it
    /// (`evs_timeouts`). A hung or cut-off member keeps its sockets open, so until then
    /// every write on every node waits for it (docs/galera.md, "Failure detection").
    pub evs_suspect_timeout_ms: u64,
    /// The agent kills (SIGKILL) its local mariadbd once it has given no SQL answer for
    /// this long after answering before, so that its peers see its sockets close instead
    /// of waiting for the suspect timeout; 0 turns the fence off (crates/agent/src/fence.rs,
    /// docs/galera.md "Hung hosts").
    pub hang_fence_ms: u64,
}

impl ServerSettings {
    /// galley's default: a hung or cut-off host is evicted in about three seconds
    /// instead of Galera's five. 1000 was measured to evict a live joiner on a loaded
    /// machine (docs/galera.md, "Hung hosts"); a hung mariadbd on a running host is
    /// fenced by its agent sooner (`hang_fence_ms`).
    pub const DEFAULT_EVS_SUSPECT_TIMEOUT_MS: u64 = 3000;
    /// The range `server.evs_suspect_timeout_ms` allows.
    pub const EVS_SUSPECT_TIMEOUT_MS: (u64, u64) = (500, 60_000);
    pub const DEFAULT_HANG_FENCE_MS: u64 = 1000;
    /// The range `server.hang_fence_ms` allows besides 0.
    pub const HANG_FENCE_MS: (u64, u64) = (500, 600_000);

    /// The evs settings rendered into wsrep_provider_options, derived from the suspect
    /// timeout S: keepalives and inactivity checks every S/4 (well below S, so an idle
    /// link is never suspected), and inactive and install timeouts of 3S (Galera requires
    /// suspect < inactive <= install, and its defaults keep inactive at 3S too).
    pub fn evs_timeouts(&self) -> [(&'static str, u64); 5] {
        let suspect = self.evs_suspect_timeout_ms;
        [
            ("evs.keepalive_period", suspect / 4),
            ("evs.inactive_check_period", suspect / 4),
            ("evs.suspect_timeout", suspect),
            ("evs.inactive_timeout", suspect * 3),
            ("evs.install_timeout", suspect * 3),
        ]
    }

    /// The most `stop_timeout_s` may be: every command waits at most this long on a node.
    pub const MAX_STOP_TIMEOUT_S: u64 = 3600;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SstMethod {
    Rsync,
    Mariabackup,
}

impl SstMethod {
    pub const ALLOWED: &'static [&'static str] = &["rsync", "mariabackup"];

    pub fn as_str(self) -> &'static str {
        match self {
            SstMethod::Rsync => "rsync",
            SstMethod::Mariabackup => "mariabackup",
        }
    }
}

impl fmt::Display for SstMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    /// An IP address or a host name that every other node can reach.
    pub address: String,
    pub client_port: u16,
    pub galera_port: u16,
    pub ist_port: u16,
    pub sst_port: u16,
    /// The port of this node's galley agent (HTTP+JSON).
    pub agent_port: u16,
    pub data_dir: PathBuf,
    /// Unix socket and pid file.
    pub run_dir: PathBuf,
    /// mariadbd's error log and the agent's log.
    pub log_dir: PathBuf,
    /// Lower is preferred as the writer and as the bootstrap node among equals.
    pub priority: u32,
    /// Where `galley deploy` reaches this node's host over SSH (default: `address`), for
    /// hosts whose cluster network is not the one the operator's machine reaches.
    pub ssh_address: String,
    /// False for a node of an imported cluster that galley did not deploy: it has no
    /// agent, galley observes it over SQL on `client_port` and never starts, stops or
    /// recovers it. Its agent, Galera and directory fields are unset (0 or empty).
    pub managed: bool,
    /// Its Galera segment (`gmcast.segment`, 0 to 255): the site it is in. Nodes of one
    /// segment replicate to another segment through one relay link; 0 unless set.
    pub segment: u8,
}

impl NodeSpec {
    pub fn socket_path(&self) -> PathBuf {
        self.run_dir.join("mysqld.sock")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.run_dir.join("mariadbd.pid")
    }

    pub fn error_log(&self) -> PathBuf {
        self.log_dir.join("mariadbd.err")
    }

    pub fn config_file(&self) -> PathBuf {
        self.run_dir.join("my.cnf")
    }

    pub fn grastate_file(&self) -> PathBuf {
        self.data_dir.join("grastate.dat")
    }

    pub fn agent_address(&self) -> String {
        host_port(&self.address, self.agent_port)
    }

    /// Every port this node listens on, with the spec field it comes from (only the
    /// client port for an unmanaged node: galley knows nothing else about it).
    pub fn ports(&self) -> Vec<(&'static str, u16)> {
        if !self.managed {
            return vec![("client_port", self.client_port)];
        }
        vec![
            ("client_port", self.client_port),
            ("galera_port", self.galera_port),
            ("ist_port", self.ist_port),
            ("sst_port", self.sst_port),
            ("agent_port", self.agent_port),
        ]
    }

    /// `address:client_port`, where SQL clients reach this node.
    pub fn client_address(&self) -> String {
        host_port(&self.address, self.client_port)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySpec {
    pub address: String,
    /// Single writer: every connection goes to the one chosen writer node.
    pub writer_port: u16,
    /// Least connections over every read-healthy node.
    pub reader_port: u16,
    /// Optional: least connections over every write-healthy node (risks certification
    /// conflicts, which clients see as deadlocks).
    pub multi_writer_port: Option<u16>,
    /// Where the admin endpoint listens: loopback by default, apart from the client
    /// listeners, so that SQL clients cannot reach it. Operators who scrape `/metrics`
    /// from elsewhere, and deployments whose node hosts drain the proxy during a rolling
    /// restart, set a management address.
    pub admin_address: String,
    /// HTTP: /status, /metrics, drain.
    pub admin_port: u16,
    pub probe_interval_ms: u64,
    /// A probe that takes longer counts as failed.
    pub probe_timeout_ms: u64,
    /// Consecutive good probes before a node is healthy again.
    pub rise: u32,
    /// Consecutive bad probes before a node is unhealthy (a refused or reset connection
    /// counts at once).
    pub fall: u32,
    /// Longest a client waits for one backend connection attempt.
    pub connect_timeout_ms: u64,
    /// Longest the proxy waits, once connected, for the server's greeting (the first
    /// packet a MySQL server sends); then the next node is tried.
    pub greeting_timeout_ms: u64,
    /// Longest a client may take from the proxy's accept to the server's answer to its
    /// login (the whole MySQL handshake); then the session is closed, so that sockets
    /// that connect and say nothing cannot hold the servers' connections. A session still
    /// logging in is also the one closed first when the proxy is full (docs/proxy-limits.md).
    pub login_timeout_ms: u64,
    /// How long a planned move (drain, rolling restart, a writer change an operator
    /// asked for) waits for each session on the node to reach a safe moment (idle and
    /// outside a transaction) before it cuts the session (docs/drain-safe-moves.md).
    pub drain_timeout_ms: u64,
    /// A session that moved no byte either way for this long is closed; 0 never closes.
    /// The default is MariaDB's `wait_timeout` (28800 s, which galley's my.cnf keeps):
    /// clients that pool connections for hours (oslo.db) see nothing new, and sessions
    /// whose server vanished without a FIN or reset do not stay open forever.
    pub idle_timeout_s: u64,
    /// A node whose wsrep_local_recv_queue is above this may not serve reads.
    pub recv_queue_limit: i64,
    /// Move the writer back to a returning preferred node (off by default: a fail-back
    /// moves every session and can start a deadlock storm).
    pub failback: bool,
    /// How long sessions on a lost writer may finish before they are closed.
    pub writer_grace_ms: u64,
    /// Client sessions the proxy holds at once. The default is the servers'
    /// `max_connections` less a tenth (at least 5), kept for the agents, every proxy's
    /// probes and the admin's own sessions: the writer node gets every writer session.
    pub max_connections: u32,
    /// Client sessions one source address may hold at once; more are refused with
    /// error 1040. Half of `max_connections` by default, so that one host (or one
    /// stranger) cannot take every session; all of it when the proxy listens on
    /// loopback (every client then has one address). An all-in-one deployment whose
    /// services all connect from one address raises it to `max_connections`.
    pub max_connections_per_source: u32,
    /// Who moves a session's bytes once the backend has greeted the client.
    pub forwarding: Forwarding,
    /// How the writer is chosen: one record in the cluster that every proxy follows
    /// (the default), or this proxy's own choice (one proxy only).
    pub writer_decision: WriterDecision,
}

impl ProxySpec {
    /// `admin_address:admin_port`, where the CLI, the controller and rolling restarts
    /// reach the admin endpoint.
    pub fn admin_endpoint(&self) -> String {
        host_port(&self.admin_address, self.admin_port)
    }
}

/// `proxy.writer_decision`: whose choice of the writer a proxy follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterDecision {
    /// The record `galley.writer` in the cluster, changed by compare-and-set in the
    /// Primary component, so that every proxy of the cluster sends writes to one node
    /// (ARCHITECTURE.md, "One writer for every proxy").
    Shared,
    /// The proxy's own choice from its probes: only sound with a single proxy.
    Local,
}

impl WriterDecision {
    pub const ALLOWED: &'static str = "shared (default), local";

    pub fn parse(text: &str) -> Option<WriterDecision> {
        match text {
            "shared" => Some(WriterDecision::Shared),
            "local" => Some(WriterDecision::Local),
            _ => None,
        }
    }
}

/// `proxy.forwarding`: who moves a session's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarding {
    /// The kernel where the proxy may load its socket programs (root or CAP_BPF +
    /// CAP_NET_ADMIN), the proxy's own copy loop otherwise.
    Auto,
    /// The kernel, or the proxy refuses to start.
    Kernel,
    /// The proxy's own copy loop, always.
    Userspace,
}

impl Forwarding {
    pub const ALLOWED: &'static str = "auto (default), kernel, userspace";

    pub fn parse(text: &str) -> Option<Forwarding> {
        match text {
            "auto" => Some(Forwarding::Auto),
            "kernel" => Some(Forwarding::Kernel),
            "userspace" => Some(Forwarding::Userspace),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ControllerSpec {
    pub address: String,
    pub port: u16,
    /// The SQLite history (galley.db) and the controller's pid file.
    pub state_dir: PathBuf,
    /// How often every node is observed.
    pub interval_ms: u64,
    /// How long a node may stay outside the Primary component (or short of Synced)
    /// before it counts as stuck.
    pub stuck_after_s: u64,
    pub retention_hours: u64,
    pub auto_recover_nodes: bool,
    pub auto_recover_cluster: bool,
    /// Steps that need an operator's `galley recover --yes`.
    pub confirm: Vec<ConfirmStep>,
    pub allow_wipe: bool,
    pub wipe_after_failed_starts: u32,
    /// Alert when a node's wsrep_flow_control_paused (fraction of time) exceeds this.
    pub flow_control_threshold: f64,
    /// Program and arguments run for every alert, with the event as JSON on stdin.
    pub alert_command: Vec<String>,
    /// URL that receives every alert as a JSON POST.
    pub alert_webhook: Option<String>,
    /// The API's TLS certificate chain and private key (PEM); both or neither. The
    /// controller reads them when it starts, on its own host.
    pub tls: Option<TlsFiles>,
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The `[tls]` section: where the cluster's CA and certificates live and how servers use them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSpec {
    /// Where galley keeps the CA certificate (and the CA key it generated) and every leaf
    /// certificate it issues: `ca.crt`, `node-NAME.crt`, `client-NAME.crt`, each key
    /// beside its certificate with mode 0600.
    pub dir: PathBuf,
    /// The operator's own CA (certificate and key, PEM): galley issues the leaves with it
    /// instead of generating a CA. Leaves are always signed by this root directly: Galera
    /// refuses leaves of an intermediate CA (MDEV-35812).
    pub operator_ca: Option<TlsFiles>,
    /// OpenSSL cipher list for Galera's `socket.ssl_cipher` (TLS 1.2; TLS 1.3 suites are
    /// OpenSSL's defaults).
    pub cipher: String,
    /// `require_secure_transport` on every mariadbd: plaintext SQL logins are refused.
    pub require_secure_transport: bool,
    /// How long the certificates galley issues are valid.
    pub validity_days: u32,
}

impl TlsSpec {
    pub const DEFAULT_CIPHER: &'static str = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";

    /// The CA certificate every server and client trusts.
    pub fn ca_cert(&self) -> PathBuf {
        match &self.operator_ca {
            Some(files) => files.cert.clone(),
            None => self.dir.join("ca.crt"),
        }
    }

    /// The CA's private key: the operator's, or the one galley generated.
    pub fn ca_key(&self) -> PathBuf {
        match &self.operator_ca {
            Some(files) => files.key.clone(),
            None => self.dir.join("ca.key"),
        }
    }

    /// A node's server certificate (also its client certificate towards other nodes).
    pub fn node_files(&self, node: &str) -> TlsFiles {
        self.leaf_files(&format!("node-{node}"))
    }

    /// A client certificate: `controller`, `cli` or `proxy`.
    pub fn client_files(&self, client: &str) -> TlsFiles {
        self.leaf_files(&format!("client-{client}"))
    }

    fn leaf_files(&self, stem: &str) -> TlsFiles {
        TlsFiles {
            cert: self.dir.join(format!("{stem}.crt")),
            key: self.dir.join(format!("{stem}.key")),
        }
    }
}

impl NodeSpec {
    /// Where the agent installs this node's TLS files for mariadbd, owned by the
    /// server's OS user (the key with mode 0600): the CA, the certificate and its key.
    pub fn tls_installed(&self) -> (PathBuf, TlsFiles) {
        (
            self.run_dir.join("tls-ca.crt"),
            TlsFiles {
                cert: self.run_dir.join("tls-server.crt"),
                key: self.run_dir.join("tls-server.key"),
            },
        )
    }
}

/// The `[deploy]` section: how `galley deploy` and `galley generate` reach and set up hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploySpec {
    /// The SSH user; it must have passwordless sudo on every host.
    pub ssh_user: String,
    pub ssh_port: u16,
    /// A private key file for SSH; without it, ssh's own defaults and agent apply.
    pub ssh_key: Option<PathBuf>,
    /// Where the galley binary and the deployed bundle live on each host.
    pub install_dir: PathBuf,
    /// The database server vendor; only MariaDB is supported.
    pub vendor: String,
    /// The server's major version; only 10.11 (Debian 12's packages) is supported.
    pub version: String,
    pub service_manager: ServiceManager,
    /// How galley itself gets onto each host.
    pub install: Install,
}

/// How `galley deploy` puts galley on the hosts (`[deploy] install`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Install {
    /// Copy the galley binary that runs the deploy to `install_dir/bin/galley`.
    Binary,
    /// Copy this Debian package (scripts/build-deb.sh builds it) to each host and install
    /// it with apt: galley is then /usr/bin/galley, with its man pages and units.
    Package(PathBuf),
}

impl Install {
    pub const ALLOWED: &'static [&'static str] = &["binary", "package"];

    /// Where the galley binary is on a host.
    pub fn galley_path(&self, install_dir: &Path) -> PathBuf {
        match self {
            Install::Binary => install_dir.join("bin/galley"),
            Install::Package(_) => PathBuf::from(PACKAGED_GALLEY),
        }
    }
}

/// Where the Debian package puts the galley binary.
pub const PACKAGED_GALLEY: &str = "/usr/bin/galley";

/// How the agent, proxy and controller run on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceManager {
    /// systemd units where PID 1 is systemd, supervised daemons otherwise.
    Auto,
    Systemd,
    /// A small shell supervisor that restarts the daemon when it exits.
    Supervised,
}

impl ServiceManager {
    pub const ALLOWED: &'static [&'static str] = &["auto", "systemd", "supervised"];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceManager::Auto => "auto",
            ServiceManager::Systemd => "systemd",
            ServiceManager::Supervised => "supervised",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmStep {
    Bootstrap,
    Restart,
}

impl ConfirmStep {
    pub const ALLOWED: &'static [&'static str] = &["bootstrap", "restart"];
}

/// True for `localhost` and loopback IP addresses: a node there runs on this machine,
/// and a local cluster keeps its files in the state directory.
pub fn is_local_address(address: &str) -> bool {
    address == "localhost"
        || address
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `host:port`, with brackets around an IPv6 literal.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A spec read from a file, with the warnings it raised.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub spec: ClusterSpec,
    pub warnings: Vec<Warning>,
}

/// Reads and validates one galley.toml. Errors name the file.
pub fn load(path: &Path) -> Result<Loaded, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|error| SpecError {
        file: path.to_path_buf(),
        problems: vec![Problem {
            field: String::new(),
            message: format!("cannot read the file: {error}"),
        }],
    })?;
    parse(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses_are_loopback_or_localhost() {
        for address in ["127.0.0.1", "127.0.0.2", "::1", "localhost"] {
            assert!(is_local_address(address), "{address}");
        }
        for address in [
            "10.0.0.1",
            "0.0.0.0",
            "db1.example.org",
            "localhost.example.org",
        ] {
            assert!(!is_local_address(address), "{address}");
        }
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        assert_eq!(host_port("10.0.0.1", 3306), "10.0.0.1:3306");
        assert_eq!(host_port("::1", 3306), "[::1]:3306");
    }
}
