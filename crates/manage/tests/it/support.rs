//! A running Galera cluster for one test (one node, or a few): a temporary state
//! directory, a spec on free ports, one agent in-process per node to initialize,
//! bootstrap and join them, and connections to them (admin, or any account).

use std::sync::Arc;

use agent::{AgentClient, Secrets, Server};
use manage::Manager;

/// One cluster; the methods without a node index use the first node.
pub struct TestNode {
    /// Removed when the test ends.
    _dir: tempfile::TempDir,
    spec: spec::ClusterSpec,
    secrets: Secrets,
    shutdowns: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl TestNode {
    /// One node: initializes, bootstraps and waits until it is Synced (bounded).
    pub async fn start() -> TestNode {
        TestNode::start_cluster(1).await
    }

    /// `count` nodes: the first initialized and bootstrapped, the others joined one at a
    /// time (rsync SST), each waited for until Synced (bounded).
    pub async fn start_cluster(count: usize) -> TestNode {
        let dir = testkit::state_dir("galley-manage-");
        let root = dir.path().display().to_string();
        let mut text = format!(
            "[cluster]\nname = \"managetest\"\nsecrets_file = \"{root}/secrets.toml\"\n\
             [server]\nbuffer_pool_size = \"64M\"\nlog_file_size = \"16M\"\ngcache_size = \"32M\"\n"
        );
        for (index, ports) in testkit::free_ports(5 * count).chunks(5).enumerate() {
            text.push_str(&format!(
                "[[node]]\nname = \"node{index}\"\naddress = \"127.0.0.1\"\nclient_port = {}\n\
                 galera_port = {}\nist_port = {}\nsst_port = {}\nagent_port = {}\n\
                 data_dir = \"{root}/node{index}/data\"\nrun_dir = \"{root}/node{index}/run\"\n\
                 log_dir = \"{root}/node{index}/log\"\n",
                ports[0], ports[1], ports[2], ports[3], ports[4],
            ));
        }
        let loaded = spec::parse(&dir.path().join("galley.toml"), &text).unwrap();
        let (secrets, _) = Secrets::load_or_create(&loaded.spec.secrets_file).unwrap();
        let mut node = TestNode {
            _dir: dir,
            spec: loaded.spec.clone(),
            secrets: secrets.clone(),
            shutdowns: Vec::new(),
        };
        for (index, member) in loaded.spec.nodes.iter().enumerate() {
            let server = Server::new(loaded.spec.clone(), &member.name, secrets.clone())
                .await
                .unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap().to_string();
            let (sender, receiver) = tokio::sync::oneshot::channel();
            tokio::spawn(agent::serve(listener, Arc::clone(&server), async {
                let _ = receiver.await;
            }));
            node.shutdowns.push(sender);
            let client = AgentClient::new(&address, &secrets.cluster_token);
            let mode = if index == 0 {
                client.init().await.unwrap();
                agent::api::StartMode::Bootstrap
            } else {
                agent::api::StartMode::Join
            };
            client.start(mode, false).await.unwrap();
            wait_synced(&client, &member.name).await;
        }
        node
    }

    pub fn port(&self) -> u16 {
        self.port_of(0)
    }

    /// The client port of node `index` (0-based).
    pub fn port_of(&self, index: usize) -> u16 {
        self.spec.nodes[index].client_port
    }

    pub fn admin_password(&self) -> &str {
        &self.secrets.admin_password
    }

    /// Options for an account over TCP, optionally with a default database.
    pub fn options(&self, user: &str, password: &str, database: Option<&str>) -> mysql_async::Opts {
        self.options_on(0, user, password, database)
    }

    /// [`TestNode::options`] for node `index`.
    pub fn options_on(
        &self,
        index: usize,
        user: &str,
        password: &str,
        database: Option<&str>,
    ) -> mysql_async::Opts {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port_of(index))
            .user(Some(user))
            .pass(Some(password))
            .db_name(database)
            .prefer_socket(false)
            .into()
    }

    /// A manager as the controller builds one: galley_admin on this node.
    pub fn manager(&self) -> Manager {
        self.manager_on(0)
    }

    /// A manager on node `index`.
    pub fn manager_on(&self, index: usize) -> Manager {
        Manager::new(self.options_on(
            index,
            agent::secrets::ADMIN_USER,
            self.admin_password(),
            None,
        ))
    }

    pub async fn admin_conn(&self) -> mysql_async::Conn {
        self.login(agent::secrets::ADMIN_USER, self.admin_password(), None)
            .await
            .unwrap()
    }

    /// Logs in as any account; the error when the server refuses.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        database: Option<&str>,
    ) -> Result<mysql_async::Conn, mysql_async::Error> {
        self.login_on(0, user, password, database).await
    }

    /// [`TestNode::login`] on node `index`.
    pub async fn login_on(
        &self,
        index: usize,
        user: &str,
        password: &str,
        database: Option<&str>,
    ) -> Result<mysql_async::Conn, mysql_async::Error> {
        mysql_async::Conn::new(self.options_on(index, user, password, database)).await
    }
}

/// The server's error code, failing the test for any other outcome.
pub fn server_code<T: std::fmt::Debug>(result: Result<T, mysql_async::Error>) -> u16 {
    match result {
        Err(mysql_async::Error::Server(error)) => error.code,
        other => panic!("expected a server error, got {other:?}"),
    }
}

/// Polls the agent until its node is Synced; bounded (an SST takes seconds here).
async fn wait_synced(client: &AgentClient, name: &str) {
    for _ in 0..1200 {
        let report = client.status().await.unwrap();
        if report.is_synced() {
            return;
        }
        assert!(
            report.process.running,
            "{name} stopped: {:?}",
            report.process.last_exit
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{name} not Synced within 120 s");
}

impl Drop for TestNode {
    fn drop(&mut self) {
        // Never leave a mariadbd behind.
        for node in &self.spec.nodes {
            if let Ok(pid) = std::fs::read_to_string(node.pid_file()) {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        for sender in self.shutdowns.drain(..) {
            let _ = sender.send(());
        }
    }
}
