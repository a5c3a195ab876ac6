//! Shared galley.toml fixtures, written the way an operator would write them.

use std::path::Path;

/// The path every fixture pretends to come from; errors must name it.
pub(crate) const SPEC_PATH: &str = "/etc/galley/galley.toml";

/// Three nodes on one machine: distinct ports per node, absolute directories, every
/// `[server]` setting left at its default.
pub(crate) const LOCAL_CLUSTER: &str = r#"
[cluster]
name = "local"

[[node]]
name = "db1"
address = "127.0.0.1"
client_port = 3306
galera_port = 4567
ist_port = 4568
sst_port = 4444
agent_port = 4580
data_dir = "/srv/galley/db1/data"
run_dir = "/srv/galley/db1/run"
log_dir = "/srv/galley/db1/log"

[[node]]
name = "db2"
address = "127.0.0.1"
client_port = 3316
galera_port = 4577
ist_port = 4578
sst_port = 4454
agent_port = 4581
data_dir = "/srv/galley/db2/data"
run_dir = "/srv/galley/db2/run"
log_dir = "/srv/galley/db2/log"

[[node]]
name = "db3"
address = "127.0.0.1"
client_port = 3326
galera_port = 4587
ist_port = 4588
sst_port = 4464
agent_port = 4582
data_dir = "/srv/galley/db3/data"
run_dir = "/srv/galley/db3/run"
log_dir = "/srv/galley/db3/log"
"#;

/// Three nodes on three hosts, every port at its default. Tests append sections to it.
pub(crate) const SPREAD_CLUSTER: &str = r#"
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
name = "db3"
address = "10.0.0.3"
data_dir = "/var/lib/mysql"
"#;

/// `SPREAD_CLUSTER` followed by `extra`; TOML lets tables come in any order.
pub(crate) fn spread_cluster_with(extra: &str) -> String {
    format!("{SPREAD_CLUSTER}\n{extra}")
}

pub(crate) fn parse(text: &str) -> Result<spec::Loaded, spec::SpecError> {
    spec::parse(Path::new(SPEC_PATH), text)
}

/// Parses a fixture that must be valid, failing with the full error text otherwise.
pub(crate) fn parse_valid(text: &str) -> spec::Loaded {
    parse(text).unwrap_or_else(|error| panic!("fixture should be valid:\n{error}"))
}
