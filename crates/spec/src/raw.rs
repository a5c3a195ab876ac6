//! The permissive first stage of galley.toml: what serde can read, before any rule is checked.
//!
//! Every struct keeps the keys it does not know in `unknown`, so that validation can name
//! them and suggest the nearest valid key instead of failing on the first one.

use std::collections::BTreeMap;

use serde::Deserialize;

pub(crate) type Unknown = BTreeMap<String, toml::Value>;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawFile {
    pub cluster: Option<RawCluster>,
    pub server: Option<RawServer>,
    #[serde(default)]
    pub node: Vec<RawNode>,
    #[serde(default)]
    pub arbitrator: Vec<RawArbitrator>,
    pub proxy: Option<RawProxy>,
    pub controller: Option<RawController>,
    pub deploy: Option<RawDeploy>,
    pub backup: Option<RawBackup>,
    pub tls: Option<RawTls>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawBackup {
    pub target: Option<String>,
    pub keep_full: Option<i64>,
    pub keep_days: Option<i64>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawCluster {
    pub name: Option<String>,
    pub secrets_file: Option<String>,
    pub writer_address: Option<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawServer {
    pub os_user: Option<String>,
    pub buffer_pool_size: Option<toml::Value>,
    pub log_file_size: Option<toml::Value>,
    pub max_connections: Option<i64>,
    pub character_set: Option<String>,
    pub collation: Option<String>,
    pub innodb_flush_log_at_trx_commit: Option<i64>,
    pub gcache_size: Option<toml::Value>,
    pub sst_method: Option<String>,
    pub stop_timeout_s: Option<i64>,
    pub causal_reads: Option<bool>,
    pub evs_suspect_timeout_ms: Option<i64>,
    pub hang_fence_ms: Option<i64>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawNode {
    pub name: Option<String>,
    pub address: Option<String>,
    pub client_port: Option<i64>,
    pub galera_port: Option<i64>,
    pub ist_port: Option<i64>,
    pub sst_port: Option<i64>,
    pub agent_port: Option<i64>,
    pub data_dir: Option<String>,
    pub run_dir: Option<String>,
    pub log_dir: Option<String>,
    pub priority: Option<i64>,
    pub ssh_address: Option<String>,
    pub managed: Option<bool>,
    pub segment: Option<i64>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawArbitrator {
    pub name: Option<String>,
    pub address: Option<String>,
    pub galera_port: Option<i64>,
    pub segment: Option<i64>,
    pub log_dir: Option<String>,
    pub run_dir: Option<String>,
    pub ssh_address: Option<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawProxy {
    pub address: Option<String>,
    pub writer_port: Option<i64>,
    pub reader_port: Option<i64>,
    pub multi_writer_port: Option<i64>,
    pub admin_address: Option<String>,
    pub admin_port: Option<i64>,
    pub probe_interval_ms: Option<i64>,
    pub probe_timeout_ms: Option<i64>,
    pub rise: Option<i64>,
    pub fall: Option<i64>,
    pub connect_timeout_ms: Option<i64>,
    pub greeting_timeout_ms: Option<i64>,
    pub login_timeout_ms: Option<i64>,
    pub drain_timeout_ms: Option<i64>,
    pub idle_timeout_s: Option<i64>,
    pub recv_queue_limit: Option<i64>,
    pub failback: Option<bool>,
    pub writer_grace_ms: Option<i64>,
    pub max_connections: Option<i64>,
    pub max_connections_per_source: Option<i64>,
    pub forwarding: Option<String>,
    pub writer_decision: Option<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawController {
    pub address: Option<String>,
    pub interval_ms: Option<i64>,
    pub stuck_after_s: Option<i64>,
    pub retention_hours: Option<i64>,
    pub auto_recover_nodes: Option<bool>,
    pub auto_recover_cluster: Option<bool>,
    pub confirm: Option<Vec<String>>,
    pub allow_wipe: Option<bool>,
    pub wipe_after_failed_starts: Option<i64>,
    pub flow_control_threshold: Option<f64>,
    pub alert_command: Option<Vec<String>>,
    pub alert_webhook: Option<String>,
    pub port: Option<i64>,
    pub state_dir: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawDeploy {
    pub ssh_user: Option<String>,
    pub ssh_port: Option<i64>,
    pub ssh_key: Option<String>,
    pub install_dir: Option<String>,
    pub vendor: Option<String>,
    pub version: Option<String>,
    pub service_manager: Option<String>,
    pub install: Option<String>,
    pub package: Option<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawTls {
    pub enabled: Option<bool>,
    pub dir: Option<String>,
    pub ca_cert: Option<String>,
    pub ca_key: Option<String>,
    pub cipher: Option<String>,
    pub require_secure_transport: Option<bool>,
    pub validity_days: Option<i64>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// The keys each section accepts, in the order the docs list them; used to suggest a
/// correction for an unknown key.
pub(crate) const TOP_KEYS: &[&str] = &[
    "cluster",
    "server",
    "node",
    "arbitrator",
    "proxy",
    "controller",
    "deploy",
    "backup",
    "tls",
];
pub(crate) const BACKUP_KEYS: &[&str] = &["target", "keep_full", "keep_days"];
pub(crate) const CLUSTER_KEYS: &[&str] = &["name", "secrets_file", "writer_address"];
pub(crate) const SERVER_KEYS: &[&str] = &[
    "os_user",
    "buffer_pool_size",
    "log_file_size",
    "max_connections",
    "character_set",
    "collation",
    "innodb_flush_log_at_trx_commit",
    "gcache_size",
    "sst_method",
    "stop_timeout_s",
    "causal_reads",
    "evs_suspect_timeout_ms",
    "hang_fence_ms",
];
pub(crate) const NODE_KEYS: &[&str] = &[
    "name",
    "address",
    "client_port",
    "galera_port",
    "ist_port",
    "sst_port",
    "agent_port",
    "data_dir",
    "run_dir",
    "log_dir",
    "priority",
    "ssh_address",
    "managed",
    "segment",
];
pub(crate) const ARBITRATOR_KEYS: &[&str] = &[
    "name",
    "address",
    "galera_port",
    "segment",
    "log_dir",
    "run_dir",
    "ssh_address",
];
/// What an imported node (`managed = false`) may say: galley reaches it over SQL only.
pub(crate) const UNMANAGED_NODE_KEYS: &[&str] =
    &["name", "address", "client_port", "priority", "managed"];
pub(crate) const PROXY_KEYS: &[&str] = &[
    "address",
    "writer_port",
    "reader_port",
    "multi_writer_port",
    "admin_address",
    "admin_port",
    "probe_interval_ms",
    "probe_timeout_ms",
    "rise",
    "fall",
    "connect_timeout_ms",
    "greeting_timeout_ms",
    "login_timeout_ms",
    "drain_timeout_ms",
    "idle_timeout_s",
    "recv_queue_limit",
    "failback",
    "writer_grace_ms",
    "max_connections",
    "max_connections_per_source",
    "forwarding",
    "writer_decision",
];
pub(crate) const CONTROLLER_KEYS: &[&str] = &[
    "address",
    "port",
    "state_dir",
    "interval_ms",
    "stuck_after_s",
    "retention_hours",
    "auto_recover_nodes",
    "auto_recover_cluster",
    "confirm",
    "allow_wipe",
    "wipe_after_failed_starts",
    "flow_control_threshold",
    "alert_command",
    "alert_webhook",
    "tls_cert",
    "tls_key",
];
pub(crate) const DEPLOY_KEYS: &[&str] = &[
    "ssh_user",
    "ssh_port",
    "ssh_key",
    "install_dir",
    "vendor",
    "version",
    "service_manager",
    "install",
    "package",
];
pub(crate) const TLS_KEYS: &[&str] = &[
    "enabled",
    "dir",
    "ca_cert",
    "ca_key",
    "cipher",
    "require_secure_transport",
    "validity_days",
];
