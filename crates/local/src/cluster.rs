//! A loaded cluster (its spec, its secrets and a client per node agent), and starting
//! the agents and the proxy of a local cluster as daemons when they do not answer.

use std::io::Write as _;
use std::path::PathBuf;

use agent::{AgentClient, AgentError, Secrets};
use anyhow::{bail, Context as _};
use spec::{is_local_address, ClusterSpec, NodeSpec};

use crate::daemon::wait_until_ready;
use crate::{proxy_dir, spawn_daemon, Location};

/// A loaded cluster: its spec, its secrets and a client per node agent.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub spec: ClusterSpec,
    pub secrets: Secrets,
    pub location: Location,
}

impl Cluster {
    /// Loads the spec and secrets of an existing cluster, printing spec warnings once.
    pub fn load(location: &Location, print_warnings: bool) -> anyhow::Result<Cluster> {
        if !location.config.exists() {
            bail!(
                "no cluster at {}: {} does not exist; run `galley up` to create one",
                location.dir.display(),
                location.config.display()
            );
        }
        let loaded = spec::load(&location.config)?;
        if print_warnings {
            for warning in &loaded.warnings {
                eprintln!("warning: {}: {warning}", location.config.display());
            }
        }
        let secrets = Secrets::load(&loaded.spec.secrets_file)?;
        Ok(Cluster {
            spec: loaded.spec,
            secrets,
            location: location.clone(),
        })
    }

    /// Refuses what only agents can do on a cluster that `galley import` registered.
    pub fn require_managed(&self, what: &str) -> anyhow::Result<()> {
        if self.spec.is_imported() {
            bail!(
                "cluster {} was imported (its nodes have `managed = false`): galley watches it but does not {what}; do that on the servers themselves",
                self.spec.name
            );
        }
        Ok(())
    }

    pub fn client(&self, node: &NodeSpec) -> AgentClient {
        AgentClient::new(&node.agent_address(), &self.secrets.cluster_token)
    }

    /// The reconcile engine over this cluster's agents, for commands: the operator ran
    /// the command, so no step waits for a confirmation and nothing is wiped.
    pub fn engine(&self) -> reconcile::Engine<reconcile::AgentClients> {
        let clients = self
            .spec
            .nodes
            .iter()
            .map(|node| (node.name.clone(), self.client(node)))
            .collect();
        let controller = crate::controller_daemon::settings(self);
        let settings = reconcile::Settings {
            policy: planner::Policy::default(),
            stuck_after_ms: controller.stuck_after_s as i64 * 1000,
        };
        reconcile::Engine::new(
            controller::members(&self.spec),
            reconcile::AgentClients::new(clients),
            settings,
        )
        .with_arbitrators(self.spec.arbitrators.len())
    }

    /// What a command's engine needs from the controller's store (the high-water mark,
    /// the nodes stopped on purpose), when this host keeps it, and what the operator
    /// asked for.
    pub fn command_inputs(
        &self,
        create_new: bool,
        rebuild: &[String],
    ) -> anyhow::Result<reconcile::Inputs> {
        let mut inputs = reconcile::Inputs {
            operator: planner::Operator {
                create_new,
                rebuild: rebuild.to_vec(),
            },
            ..reconcile::Inputs::default()
        };
        let path = controller::store_path(&crate::controller_daemon::settings(self));
        if path.exists() {
            let store = store::Store::open(&path)?;
            inputs.marks = controller::planner_marks(store.high_water_marks()?);
            inputs.stopped_on_purpose = store.stopped_on_purpose()?;
        }
        Ok(inputs)
    }

    /// Nodes in priority order (most preferred first).
    pub fn nodes_by_priority(&self) -> Vec<&NodeSpec> {
        let mut nodes: Vec<&NodeSpec> = self.spec.nodes.iter().collect();
        nodes.sort_by_key(|node| node.priority);
        nodes
    }

    /// Makes sure every node's agent answers, starting the missing ones on this machine.
    pub async fn ensure_agents(&self) -> anyhow::Result<()> {
        for node in &self.spec.nodes {
            self.ensure_agent(node).await?;
        }
        Ok(())
    }

    pub async fn ensure_agent(&self, node: &NodeSpec) -> anyhow::Result<()> {
        let client = self.client(node);
        match client.status().await {
            Ok(report) if report.node == node.name => return Ok(()),
            Ok(report) => bail!(
                "{}'s agent_port {} is answered by the agent of node {} of this cluster; fix the ports in {}",
                node.name,
                node.agent_port,
                report.node,
                self.location.config.display()
            ),
            Err(AgentError::Unreachable { .. }) => {}
            Err(AgentError::Refused { status: 401, .. }) => bail!(
                "{}'s agent_port {} on {} is taken by the agent of another galley cluster (it does not know this cluster's token); \
                 stop that cluster, or choose other ports in {}",
                node.name,
                node.agent_port,
                node.address,
                self.location.config.display()
            ),
            Err(error) => return Err(error.into()),
        }
        if !is_local_address(&node.address) {
            bail!(
                "the agent of {} at {} does not answer, and it runs on another host; start it there",
                node.name,
                node.agent_address()
            );
        }
        let log_path = node.log_dir.join("agent.log");
        let config = self.location.config.as_os_str();
        let mut child = spawn_daemon(
            &[
                "agent".as_ref(),
                "--config".as_ref(),
                config,
                "--node".as_ref(),
                node.name.as_ref(),
            ],
            &log_path,
        )?;
        let who = format!("the agent of {}", node.name);
        let answers = || async { client.status().await.is_ok() };
        wait_until_ready(
            &mut child,
            &log_path,
            &who,
            200,
            "did not answer within 10 s",
            answers,
        )
        .await
    }

    /// A client of the proxy's admin endpoint, when the spec has a proxy.
    pub fn proxy_admin(&self) -> Option<proxy::AdminClient> {
        self.spec
            .proxy
            .as_ref()
            .map(|proxy| proxy::AdminClient::for_spec(proxy, &self.secrets.cluster_token))
    }

    /// Starts the local proxy as a daemon if the spec has one and it does not answer.
    pub async fn ensure_proxy(&self) -> anyhow::Result<()> {
        let (Some(proxy), Some(admin)) = (&self.spec.proxy, self.proxy_admin()) else {
            return Ok(());
        };
        if admin.status().await.is_ok() {
            return Ok(());
        }
        if !is_local_address(&proxy.address) {
            bail!(
                "the proxy at {} does not answer, and it runs on another host; start it there",
                proxy.address
            );
        }
        let log_path = proxy_dir(&self.location).join("proxy.log");
        let mut child = spawn_daemon(
            &[
                "proxy".as_ref(),
                "--config".as_ref(),
                self.location.config.as_os_str(),
            ],
            &log_path,
        )?;
        let answers = || async { admin.status().await.is_ok() };
        wait_until_ready(
            &mut child,
            &log_path,
            "the proxy",
            200,
            "did not answer within 10 s",
            answers,
        )
        .await
    }
}

/// Writes `<dir>/client.cnf` (mode 0600) so that `mariadb --defaults-extra-file=...`
/// logs in as the admin without a password on the command line.
pub fn write_client_config(cluster: &Cluster, node: &NodeSpec) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = cluster.location.dir.join("client.cnf");
    let text = format!(
        "# Written by galley: the admin account of cluster {}. Keep private.\n[client]\nuser = {}\npassword = {}\nhost = {}\nport = {}\n",
        cluster.spec.name,
        agent::secrets::ADMIN_USER,
        cluster.secrets.admin_password,
        node.address,
        node.client_port
    );
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::Path;

    use super::{write_client_config, Cluster};
    use crate::{local_spec_text, Location};

    /// A local cluster's state directory with its spec and secrets, loaded; nothing runs.
    pub(crate) fn cluster_in(dir: &Path) -> Cluster {
        let location = Location::new(dir.to_path_buf(), None);
        std::fs::write(&location.config, local_spec_text(dir, 0)).unwrap();
        agent::Secrets::load_or_create(&dir.join("secrets.toml")).unwrap();
        Cluster::load(&location, false).unwrap()
    }

    #[test]
    fn loading_without_a_spec_says_how_to_create_one() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::new(dir.path().to_path_buf(), None);
        let error = Cluster::load(&location, false).unwrap_err().to_string();
        assert!(error.starts_with("no cluster at "), "{error}");
        assert!(error.ends_with("run `galley up` to create one"), "{error}");
    }

    #[test]
    fn a_loaded_local_cluster_has_its_nodes_agents_and_proxy() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = cluster_in(dir.path());
        cluster.require_managed("start nodes").unwrap();
        let names: Vec<&str> = cluster
            .nodes_by_priority()
            .iter()
            .map(|node| node.name.as_str())
            .collect();
        assert_eq!(names, ["node1", "node2", "node3"]);
        assert!(cluster.proxy_admin().is_some());
    }

    #[test]
    fn command_inputs_carry_the_operator_and_the_store_when_there_is_one() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = cluster_in(dir.path());
        let inputs = cluster.command_inputs(true, &["node2".to_owned()]).unwrap();
        assert!(inputs.operator.create_new);
        assert_eq!(inputs.operator.rebuild, ["node2"]);
        assert_eq!(inputs.marks, planner::HighWaterMarks::default());
        assert!(inputs.stopped_on_purpose.is_empty());

        let settings = crate::controller_daemon::settings(&cluster);
        std::fs::create_dir_all(&settings.state_dir).unwrap();
        let store = store::Store::open(&controller::store_path(&settings)).unwrap();
        store
            .raise_high_water_mark(&store::HighWaterMark {
                uuid: "6e9a1b2c-0000-11ef-8000-000000000001".to_owned(),
                seqno: 42,
                node: "node1".to_owned(),
                at_ms: 1,
            })
            .unwrap();
        store.set_desired("node3", false, 2).unwrap();
        let inputs = cluster.command_inputs(false, &[]).unwrap();
        assert_eq!(
            inputs.marks.accepted,
            Some(planner::Mark {
                uuid: "6e9a1b2c-0000-11ef-8000-000000000001".to_owned(),
                seqno: 42,
            })
        );
        assert_eq!(inputs.stopped_on_purpose, ["node3"]);
    }

    #[test]
    fn the_client_config_is_private_and_logs_in_as_the_admin() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = cluster_in(dir.path());
        let path = write_client_config(&cluster, &cluster.spec.nodes[0]).unwrap();
        assert_eq!(path, dir.path().join("client.cnf"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        let expected = format!(
            "[client]\nuser = {}\npassword = {}\nhost = 127.0.0.1\nport = 13301\n",
            agent::secrets::ADMIN_USER,
            cluster.secrets.admin_password
        );
        assert!(text.ends_with(&expected), "{text}");
    }
}
