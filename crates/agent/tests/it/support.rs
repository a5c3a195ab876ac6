//! A test node: a temporary state directory, a one-node spec on free ports, the agent
//! service running in-process, and a client for it.

use std::os::unix::fs::PermissionsExt as _;
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
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Ports that were free a moment ago; the OS picks them, so parallel tests do not clash.
pub fn free_ports(count: usize) -> Vec<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    // Below the kernel's ephemeral range (32768 and up): a port taken from there could be
    // handed to some outgoing connection before the server binds it (an IST or SST
    // receiver binds late), which hangs a joiner. Spread by pid so that test binaries
    // running side by side start in different places; each port is checked free.
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = (std::process::id() % 600) * 20;
    let mut ports = Vec::new();
    while ports.len() < count {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        let port = 20_000 + offset as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            ports.push(port);
        }
    }
    ports
}

impl TestNode {
    pub async fn start() -> TestNode {
        let dir = tempfile::Builder::new()
            .prefix("galley-agent-")
            .tempdir_in("/tmp")
            .unwrap();
        // mariadbd runs as `mysql` and must pass through the test directory.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let ports = free_ports(5);
        let root: PathBuf = dir.path().to_path_buf();
        let text = format!(
            "[cluster]\nname = \"agenttest\"\nsecrets_file = \"{root}/secrets.toml\"\n\
             [server]\nbuffer_pool_size = \"64M\"\nlog_file_size = \"16M\"\ngcache_size = \"32M\"\n\
             [[node]]\nname = \"solo\"\naddress = \"127.0.0.1\"\nclient_port = {}\ngalera_port = {}\n\
             ist_port = {}\nsst_port = {}\nagent_port = {}\ndata_dir = \"{root}/solo/data\"\n\
             run_dir = \"{root}/solo/run\"\nlog_dir = \"{root}/solo/log\"\n",
            ports[0],
            ports[1],
            ports[2],
            ports[3],
            ports[4],
            root = root.display()
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
        tokio::spawn(agent::serve(listener, Arc::clone(&server), async {
            let _ = receiver.await;
        }));
        TestNode {
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
