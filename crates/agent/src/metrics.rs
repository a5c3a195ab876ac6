//! The agent's `/metrics`: the node's `SHOW GLOBAL STATUS` and `SHOW GLOBAL VARIABLES` as
//! Prometheus text under mysqld_exporter's names (docs/metrics.md), so that the Galera
//! dashboards operators already run read a galley node unchanged.
//!
//! [`render`] is pure: name/value rows in, the page out. [`Exporter`] is the I/O around
//! it: its own connection over the unix socket (never the one behind the agent's status
//! report, so a scrape never waits for a report or the reverse), and the page cached for
//! [`CACHE_FOR`] so that any number of scrapers cost mysqld at most one pair of queries a
//! second.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use mysql_async::prelude::Queryable as _;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::secrets::MONITOR_USER;
use crate::server::Server;

/// How long one page is served again before mysqld is asked anew.
pub const CACHE_FOR: Duration = Duration::from_secs(1);

/// What one scrape of mysqld read: `None` when it could not be reached.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub status: Vec<(String, String)>,
    pub variables: Vec<(String, String)>,
}

/// The `mysql_global_status_*` names mysqld_exporter groups into one family with a label
/// (its `globalStatusRE`): prefix, family, label name.
const STATUS_GROUPS: [(&str, &str, &str); 6] = [
    ("com_", "mysql_global_status_commands_total", "command"),
    ("handler_", "mysql_global_status_handlers_total", "handler"),
    (
        "connection_errors_",
        "mysql_global_status_connection_errors_total",
        "error",
    ),
    ("innodb_buffer_pool_pages_", "", "state"),
    (
        "innodb_rows_",
        "mysql_global_status_innodb_row_ops_total",
        "operation",
    ),
    (
        "performance_schema_",
        "mysql_global_status_performance_schema_lost_total",
        "instrumentation",
    ),
];

/// The parts of `wsrep_evs_repl_latency` (`min/avg/max/stdev/sample_size`, in seconds)
/// as mysqld_exporter names them.
const EVS_REPL_LATENCY: [&str; 5] = [
    "mysql_galera_evs_repl_latency_min_seconds",
    "mysql_galera_evs_repl_latency_avg_seconds",
    "mysql_galera_evs_repl_latency_max_seconds",
    "mysql_galera_evs_repl_latency_stdev",
    "mysql_galera_evs_repl_latency_sample_size",
];

/// Whether a server setting (SHOW GLOBAL VARIABLES) may never be exported, whatever its
/// value: anything named like a credential. Only numeric values are exported at all,
/// but a password may be digits.
pub fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    if [
        "password",
        "passwd",
        "secret",
        "auth",
        "credential",
        "token",
    ]
    .iter()
    .any(|word| name.contains(word))
    {
        return true;
    }
    // `key` as a word (ssl_key, *_encryption_key, ...), except the MyISAM key cache
    // (`key_buffer_size`, `key_cache_*`, status `Key_reads`), which dashboards read.
    !name.starts_with("key_") && name.split('_').any(|word| word == "key" || word == "keys")
}

/// A status or variable value as a number, as mysqld_exporter's `parseStatus` reads it:
/// ON/YES and OFF/NO/DISABLED, a Galera cluster status (Primary 1, non-Primary and
/// Disconnected 0), or a decimal number. Anything else is not exported.
pub fn parse_value(value: &str) -> Option<f64> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "on" | "primary" => Some(1.0),
        "no" | "off" | "disabled" | "connecting" | "non-primary" | "disconnected" => Some(0.0),
        text => {
            // Only decimal numbers: Rust's parse would also take "inf" and "nan".
            let plain = !text.is_empty()
                && text
                    .bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e'));
            if plain {
                text.parse().ok()
            } else {
                None
            }
        }
    }
}

/// The metric families of one page, kept in name order, each with its samples.
#[derive(Default)]
struct Families {
    families: BTreeMap<String, Family>,
}

struct Family {
    kind: &'static str,
    help: &'static str,
    samples: Vec<(String, f64)>,
}

impl Families {
    fn add(
        &mut self,
        name: &str,
        kind: &'static str,
        help: &'static str,
        labels: String,
        value: f64,
    ) {
        self.families
            .entry(name.to_owned())
            .or_insert_with(|| Family {
                kind,
                help,
                samples: Vec::new(),
            })
            .samples
            .push((labels, value));
    }

    fn render(&self, out: &mut String) {
        for (name, family) in &self.families {
            writeln!(out, "# HELP {name} {}", family.help).expect("String write");
            writeln!(out, "# TYPE {name} {}", family.kind).expect("String write");
            let mut samples: Vec<&(String, f64)> = family.samples.iter().collect();
            samples.sort_by(|a, b| a.0.cmp(&b.0));
            for (labels, value) in samples {
                writeln!(out, "{name}{labels} {}", format_value(*value)).expect("String write");
            }
        }
    }
}

fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        value.to_string()
    }
}

/// A label set `{a="x",b="y"}` with Prometheus's escaping of `\`, `"` and newlines.
fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::from("{");
    for (index, (name, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        let escaped = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        write!(out, "{name}=\"{escaped}\"").expect("String write");
    }
    out.push('}');
    out
}

/// A metric name part from a server's variable name: lower case, and anything but
/// `[a-z0-9_]` as `_` (MariaDB's names are already of that form).
fn name_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The whole page; `scrape` is `None` when mysqld could not be read (`mysql_up 0`).
pub fn render(scrape: Option<&Scrape>) -> String {
    let mut families = Families::default();
    families.add(
        "mysql_up",
        "gauge",
        "Whether the MySQL server is up.",
        String::new(),
        if scrape.is_some() { 1.0 } else { 0.0 },
    );
    if let Some(scrape) = scrape {
        add_status(&mut families, &scrape.status);
        add_variables(&mut families, &scrape.variables);
    }
    let mut out = String::new();
    families.render(&mut out);
    out
}

fn add_status(families: &mut Families, status: &[(String, String)]) {
    let mut text: BTreeMap<String, &str> = BTreeMap::new();
    // Status variables are counters and states, never a credential: all are exported
    // (`Handler_read_key` and `Com_show_authors` are not secrets).
    for (name, value) in status {
        let key = name_part(name);
        let Some(number) = parse_value(value) else {
            if matches!(
                key.as_str(),
                "wsrep_local_state_uuid"
                    | "wsrep_cluster_state_uuid"
                    | "wsrep_provider_version"
                    | "wsrep_evs_repl_latency"
            ) {
                text.insert(key, value.as_str());
            }
            continue;
        };
        let group = STATUS_GROUPS.iter().find_map(|(prefix, family, label)| {
            key.strip_prefix(prefix).map(|rest| (*family, *label, rest))
        });
        match group {
            None => families.add(
                &format!("mysql_global_status_{key}"),
                "untyped",
                "Generic metric from SHOW GLOBAL STATUS.",
                String::new(),
                number,
            ),
            Some(("", label, state)) => {
                // InnoDB buffer pool pages, as mysqld_exporter 0.14 splits them: pages by
                // state (a gauge), dirty pages on their own, the total left out, and the
                // rest (flushed, ...) counts changes.
                match state {
                    "data" | "free" | "misc" | "old" => families.add(
                        "mysql_global_status_buffer_pool_pages",
                        "gauge",
                        "Innodb buffer pool pages by state.",
                        labels(&[(label, state)]),
                        number,
                    ),
                    "dirty" => families.add(
                        "mysql_global_status_buffer_pool_dirty_pages",
                        "gauge",
                        "Innodb buffer pool dirty pages.",
                        String::new(),
                        number,
                    ),
                    "total" => {}
                    _ => families.add(
                        "mysql_global_status_buffer_pool_page_changes_total",
                        "counter",
                        "Innodb buffer pool page state changes.",
                        labels(&[("operation", state)]),
                        number,
                    ),
                }
            }
            Some((family, label, rest)) => families.add(
                family,
                "counter",
                "Counter from SHOW GLOBAL STATUS, by its name's suffix.",
                labels(&[(label, rest)]),
                number,
            ),
        }
    }
    if let Some(local) = text.get("wsrep_local_state_uuid") {
        families.add(
            "mysql_galera_status_info",
            "gauge",
            "PXC/Galera status information.",
            labels(&[
                ("wsrep_local_state_uuid", local),
                (
                    "wsrep_cluster_state_uuid",
                    text.get("wsrep_cluster_state_uuid").unwrap_or(&""),
                ),
                (
                    "wsrep_provider_version",
                    text.get("wsrep_provider_version").unwrap_or(&""),
                ),
            ]),
            1.0,
        );
    }
    if let Some(latency) = text.get("wsrep_evs_repl_latency") {
        let parts: Vec<Option<f64>> = latency.split('/').map(|p| p.trim().parse().ok()).collect();
        if parts.len() == EVS_REPL_LATENCY.len() && parts.iter().all(Option::is_some) {
            for (name, value) in EVS_REPL_LATENCY.iter().zip(parts) {
                families.add(
                    name,
                    "gauge",
                    "PXC/Galera group communication latency (wsrep_evs_repl_latency).",
                    String::new(),
                    value.expect("checked"),
                );
            }
        }
    }
}

fn add_variables(families: &mut Families, variables: &[(String, String)]) {
    let mut text: BTreeMap<String, &str> = BTreeMap::new();
    for (name, value) in variables {
        let key = name_part(name);
        if is_secret(&key) {
            continue;
        }
        match parse_value(value) {
            Some(number) => families.add(
                &format!("mysql_global_variables_{key}"),
                "gauge",
                "Generic gauge metric from SHOW GLOBAL VARIABLES.",
                String::new(),
                number,
            ),
            None => {
                if matches!(
                    key.as_str(),
                    "innodb_version"
                        | "version"
                        | "version_comment"
                        | "wsrep_cluster_name"
                        | "wsrep_provider_options"
                ) {
                    text.insert(key, value.as_str());
                }
            }
        }
    }
    let get = |key: &str| text.get(key).copied().unwrap_or("");
    families.add(
        "mysql_version_info",
        "gauge",
        "MySQL version and distribution.",
        labels(&[
            ("innodb_version", get("innodb_version")),
            ("version", get("version")),
            ("version_comment", get("version_comment")),
        ]),
        1.0,
    );
    if !get("wsrep_cluster_name").is_empty() {
        families.add(
            "mysql_galera_variables_info",
            "gauge",
            "PXC/Galera variables information.",
            labels(&[("wsrep_cluster_name", get("wsrep_cluster_name"))]),
            1.0,
        );
    }
    if !get("wsrep_provider_options").is_empty() {
        families.add(
            "mysql_galera_gcache_size_bytes",
            "gauge",
            "PXC/Galera gcache size.",
            String::new(),
            gcache_size(get("wsrep_provider_options")),
        );
    }
}

/// `gcache.size` from `wsrep_provider_options` in bytes (`128M`, `1G` or plain bytes);
/// 0 when absent, as mysqld_exporter reports it.
pub fn gcache_size(options: &str) -> f64 {
    let Some(setting) = options
        .split(';')
        .map(str::trim)
        .find_map(|option| option.strip_prefix("gcache.size = "))
    else {
        return 0.0;
    };
    let (digits, unit) = match setting.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => setting.split_at(at),
        None => (setting, ""),
    };
    let Ok(number) = digits.parse::<f64>() else {
        return 0.0;
    };
    match unit {
        "" => number,
        "K" => number * 1024.0,
        "M" => number * 1024.0 * 1024.0,
        "G" => number * 1024.0 * 1024.0 * 1024.0,
        _ => 0.0,
    }
}

/// Reads mysqld for `/metrics` on its own connection and caches the page.
#[derive(Debug)]
pub struct Exporter {
    server: Arc<Server>,
    /// The last page and when it was made. Held across a refresh, so that scrapes in the
    /// same second wait for that one refresh instead of starting their own.
    cache: Mutex<Option<(Instant, Arc<str>)>>,
    connection: Mutex<Option<mysql_async::Conn>>,
}

impl Exporter {
    pub fn new(server: Arc<Server>) -> Exporter {
        Exporter {
            server,
            cache: Mutex::new(None),
            connection: Mutex::new(None),
        }
    }

    /// The page, at most [`CACHE_FOR`] old.
    pub async fn page(&self) -> Arc<str> {
        let mut cache = self.cache.lock().await;
        if let Some((made, page)) = &*cache {
            if made.elapsed() < CACHE_FOR {
                return Arc::clone(page);
            }
        }
        let scrape = match self.scrape().await {
            Ok(scrape) => Some(scrape),
            Err(error) => {
                tracing::debug!("metrics: {error:#}");
                None
            }
        };
        let page: Arc<str> = render(scrape.as_ref()).into();
        *cache = Some((Instant::now(), Arc::clone(&page)));
        page
    }

    async fn scrape(&self) -> anyhow::Result<Scrape> {
        let mut slot = self.connection.lock().await;
        if slot.is_none() {
            let node = self.server.node();
            let options = mysql_async::OptsBuilder::default()
                .ip_or_hostname("localhost")
                .socket(Some(node.socket_path().to_string_lossy().into_owned()))
                .prefer_socket(true)
                .user(Some(MONITOR_USER))
                .pass(Some(self.server.secrets().monitor_password.clone()));
            let connect = mysql_async::Conn::new(options);
            let conn = tokio::time::timeout(Duration::from_secs(2), connect)
                .await
                .context("connecting to the server timed out")?
                .context("cannot connect to the server")?;
            *slot = Some(conn);
        }
        // As in the status report: the connection goes back only after a whole answer.
        let mut conn = slot.take().expect("connected above");
        let query = async {
            let status: Vec<(String, String)> = conn.query("SHOW GLOBAL STATUS").await?;
            let variables: Vec<(String, String)> = conn.query("SHOW GLOBAL VARIABLES").await?;
            Ok::<_, mysql_async::Error>(Scrape { status, variables })
        };
        match tokio::time::timeout(Duration::from_secs(3), query).await {
            Ok(Ok(scrape)) => {
                *slot = Some(conn);
                Ok(scrape)
            }
            Ok(Err(error)) => Err(error).context("status query failed"),
            Err(_) => anyhow::bail!("status query timed out after 3 s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn page(status: &[(&str, &str)], variables: &[(&str, &str)]) -> String {
        render(Some(&Scrape {
            status: rows(status),
            variables: rows(variables),
        }))
    }

    #[test]
    fn wsrep_status_under_mysqld_exporter_names() {
        let page = page(
            &[
                ("wsrep_cluster_size", "3"),
                ("wsrep_local_state", "4"),
                ("wsrep_cluster_status", "Primary"),
                ("wsrep_ready", "ON"),
                ("wsrep_flow_control_paused", "0.012"),
                ("wsrep_local_state_uuid", "a-b"),
                ("wsrep_cluster_state_uuid", "c\"d"),
                ("wsrep_provider_version", "26.4.14(r06a0c285)"),
                ("wsrep_evs_repl_latency", "0.0001/0.0002/0.0003/0.00001/7"),
                ("wsrep_local_state_comment", "Synced"),
                ("Com_select", "12"),
                ("Innodb_buffer_pool_pages_free", "100"),
                ("Innodb_buffer_pool_pages_flushed", "5"),
                ("Innodb_rows_read", "9"),
                ("Uptime", "60"),
            ],
            &[],
        );
        for line in [
            "mysql_up 1\n",
            "mysql_global_status_wsrep_cluster_size 3\n",
            "mysql_global_status_wsrep_local_state 4\n",
            "mysql_global_status_wsrep_cluster_status 1\n",
            "mysql_global_status_wsrep_ready 1\n",
            "mysql_global_status_wsrep_flow_control_paused 0.012\n",
            "mysql_galera_status_info{wsrep_local_state_uuid=\"a-b\",wsrep_cluster_state_uuid=\"c\\\"d\",wsrep_provider_version=\"26.4.14(r06a0c285)\"} 1\n",
            "mysql_galera_evs_repl_latency_avg_seconds 0.0002\n",
            "mysql_galera_evs_repl_latency_sample_size 7\n",
            "mysql_global_status_commands_total{command=\"select\"} 12\n",
            "mysql_global_status_buffer_pool_pages{state=\"free\"} 100\n",
            "mysql_global_status_buffer_pool_page_changes_total{operation=\"flushed\"} 5\n",
            "mysql_global_status_innodb_row_ops_total{operation=\"read\"} 9\n",
            "mysql_global_status_uptime 60\n",
            "# TYPE mysql_global_status_uptime untyped\n",
        ] {
            assert!(page.contains(line), "missing {line:?} in\n{page}");
        }
        assert!(!page.contains("local_state_comment"), "{page}");
    }

    #[test]
    fn variables_numeric_only_and_never_a_secret() {
        let page = page(
            &[("Handler_read_key", "123")],
            &[
                ("max_connections", "151"),
                ("key_buffer_size", "134217728"),
                ("read_only", "OFF"),
                ("wsrep_sst_auth", "1234"),
                ("server_audit_file_path", "7"),
                ("ssl_key", "42"),
                ("innodb_encryption_keys", "3"),
                ("datadir", "/var/lib/mysql/"),
                ("version", "10.11.6-MariaDB-0+deb12u1"),
                ("wsrep_cluster_name", "galley"),
                (
                    "wsrep_provider_options",
                    "evs.x = 1; gcache.size = 128M; gcs.fc_limit = 16",
                ),
            ],
        );
        assert!(page.contains("mysql_global_variables_max_connections 151\n"));
        assert!(page.contains("mysql_global_variables_key_buffer_size 134217728\n"));
        assert!(page.contains("mysql_global_variables_read_only 0\n"));
        assert!(page.contains("mysql_galera_variables_info{wsrep_cluster_name=\"galley\"} 1\n"));
        assert!(page.contains("mysql_galera_gcache_size_bytes 134217728\n"));
        assert!(page.contains("version=\"10.11.6-MariaDB-0+deb12u1\""));
        assert!(page.contains("mysql_global_status_handlers_total{handler=\"read_key\"} 123\n"));
        for absent in ["auth", "ssl_key", "encryption_keys", "datadir"] {
            assert!(!page.contains(absent), "{absent} exported:\n{page}");
        }
    }

    #[test]
    fn a_family_is_contiguous_with_one_header() {
        let page = page(
            &[("Com_insert", "1"), ("Uptime", "2"), ("Com_delete", "3")],
            &[],
        );
        assert_eq!(
            page.matches("# TYPE mysql_global_status_commands_total")
                .count(),
            1
        );
        let lines: Vec<&str> = page.lines().collect();
        let first = lines
            .iter()
            .position(|l| l.contains("command=\"delete\""))
            .unwrap();
        assert!(lines[first + 1].contains("command=\"insert\""), "{page}");
    }

    #[test]
    fn down_is_one_line_of_value() {
        let page = render(None);
        assert_eq!(
            page,
            "# HELP mysql_up Whether the MySQL server is up.\n# TYPE mysql_up gauge\nmysql_up 0\n"
        );
    }

    #[test]
    fn values_as_mysqld_exporter_parses_them() {
        assert_eq!(parse_value("non-Primary"), Some(0.0));
        assert_eq!(parse_value("Disconnected"), Some(0.0));
        assert_eq!(parse_value("-3.5"), Some(-3.5));
        assert_eq!(parse_value("inf"), None);
        assert_eq!(parse_value("Synced"), None);
        assert_eq!(parse_value(""), None);
        assert_eq!(
            gcache_size("gcache.size = 2G; x = 1"),
            2.0 * 1024.0 * 1024.0 * 1024.0
        );
        assert_eq!(gcache_size("gcache.page_size = 1M"), 0.0);
    }
}
