//! A test node: a temporary state directory, a one-node spec on free ports, the agent
//! service running in-process, and a client for it.

use std::path::PathBuf;
use std::sync::Arc;

use agent::{AgentClient, Secrets, Server};

pub struct TestNode {
    /// Removed when the test ends.
    _dir: tempfile::TempDir,
    pub spec: spec::ClusterSpec,
    pub secrets: Secrets,
    pub client: AgentClient,
    pub base_url: String,
    /// The agent's `/clustercheck` probe.
    pub clustercheck: Arc<agent::ClusterCheck>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestNode {
    pub async fn start() -> TestNode {
        TestNode::start_with_server_and("", agent::Probing::default()).await
    }

    /// A node whose `[server]` section has these extra lines.
    pub async fn start_with_server(server: &str) -> TestNode {
        TestNode::start_with_server_and(server, agent::Probing::default()).await
    }

    /// With the `/clustercheck` probe's interval and age bound given.
    pub async fn start_with(probing: agent::Probing) -> TestNode {
        TestNode::start_with_server_and("", probing).await
    }

    async fn start_with_server_and(server: &str, probing: agent::Probing) -> TestNode {
        let dir = testkit::state_dir("galley-agent-");
        let ports = testkit::free_ports(5);
        let root: PathBuf = dir.path().to_path_buf();
        let text = format!(
            "[cluster]\nname = \"agenttest\"\nsecrets_file = \"{root}/secrets.toml\"\n\
             [server]\nbuffer_pool_size = \"64M\"\nlog_file_size = \"16M\"\ngcache_size = \"32M\"\n{server}\n\
             [[node]]\nname = \"solo\"\naddress = \"127.0.0.1\"\nclient_port = {}\ngalera_port = {}\n\
             ist_port = {}\nsst_port = {}\nagent_port = {}\ndata_dir = \"{root}/solo/data\"\n\
             run_dir = \"{root}/solo/run\"\nlog_dir = \"{root}/solo/log\"\n",
            ports[0],
            ports[1],
            ports[2],
            ports[3],
            ports[4],
            root = root.display(),
            server = server
        );
        let loaded = spec::parse(&root.join("galley.toml"), &text).unwrap();
        let (secrets, created) = Secrets::load_or_create(&loaded.spec.secrets_file).unwrap();
        assert!(created);
        let server = Server::new(loaded.spec.clone(), "solo", secrets.clone())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let clustercheck = agent::ClusterCheck::start(Arc::clone(&server), probing);
        tokio::spawn(agent::serve_with(
            listener,
            Arc::clone(&server),
            Arc::clone(&clustercheck),
            httpd::Limits::agent_api(),
            async {
                let _ = receiver.await;
            },
        ));
        TestNode {
            clustercheck,
            client: AgentClient::new(&address, &secrets.cluster_token),
            base_url: format!("http://{address}"),
            spec: loaded.spec,
            secrets,
            _dir: dir,
            shutdown: Some(sender),
        }
    }

    pub fn node(&self) -> &spec::NodeSpec {
        &self.spec.nodes[0]
    }

    /// Polls until the node is Synced; bounded.
    pub async fn wait_synced(&self) -> agent::api::NodeReport {
        for _ in 0..300 {
            let report = self.client.status().await.unwrap();
            if report.is_synced() {
                return report;
            }
            assert!(
                report.process.running,
                "server stopped: {:?}",
                report.process.last_exit
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("not Synced within 30 s");
    }

    pub async fn admin_conn(&self) -> mysql_async::Conn {
        let options = mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.node().client_port)
            .user(Some(agent::secrets::ADMIN_USER))
            .pass(Some(self.secrets.admin_password.clone()))
            .prefer_socket(false);
        mysql_async::Conn::new(options).await.unwrap()
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        // Never leave a mariadbd behind: kill it if a test failed before stopping it.
        if let Ok(pid) = std::fs::read_to_string(self.node().pid_file()) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if let Some(sender) = self.shutdown.take() {
            let _ = sender.send(());
        }
    }
}
