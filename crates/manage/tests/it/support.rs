//! A running single-node Galera cluster for one test: a temporary state directory, a
//! one-node spec on free ports, the agent in-process to initialize and bootstrap it, and
//! connections to it (admin, or any account and password).

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;

use agent::{AgentClient, Secrets, Server};
use manage::Manager;

pub struct TestNode {
    /// Removed when the test ends.
    _dir: tempfile::TempDir,
    spec: spec::ClusterSpec,
    secrets: Secrets,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Ports that were free a moment ago (the same scheme as the other crates' tests).
fn free_ports(count: usize) -> Vec<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    // Below the kernel's ephemeral range (32768 and up): a port taken from there could be
    // handed to some outgoing connection before the server binds it (an IST or SST
    // receiver binds late). Spread by pid so that test binaries running side by side
    // start in different places; each port is checked free.
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
    /// Initializes, bootstraps and waits until the node is Synced (bounded).
    pub async fn start() -> TestNode {
        let dir = tempfile::Builder::new()
            .prefix("galley-manage-")
            .tempdir_in("/tmp")
            .unwrap();
        // mariadbd runs as `mysql` and must pass through the test directory.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let ports = free_ports(5);
        let root = dir.path().display().to_string();
        let text = format!(
            "[cluster]\nname = \"managetest\"\nsecrets_file = \"{root}/secrets.toml\"\n\
             [server]\nbuffer_pool_size = \"64M\"\nlog_file_size = \"16M\"\ngcache_size = \"32M\"\n\
             [[node]]\nname = \"solo\"\naddress = \"127.0.0.1\"\nclient_port = {}\ngalera_port = {}\n\
             ist_port = {}\nsst_port = {}\nagent_port = {}\ndata_dir = \"{root}/solo/data\"\n\
             run_dir = \"{root}/solo/run\"\nlog_dir = \"{root}/solo/log\"\n",
            ports[0], ports[1], ports[2], ports[3], ports[4],
        );
        let loaded = spec::parse(&dir.path().join("galley.toml"), &text).unwrap();
        let (secrets, _) = Secrets::load_or_create(&loaded.spec.secrets_file).unwrap();
        let server = Server::new(loaded.spec.clone(), "solo", secrets.clone())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        tokio::spawn(agent::serve(listener, Arc::clone(&server), async {
            let _ = receiver.await;
        }));
        let node = TestNode {
            _dir: dir,
            spec: loaded.spec,
            secrets: secrets.clone(),
            shutdown: Some(sender),
        };
        let client = AgentClient::new(&address, &secrets.cluster_token);
        client.init().await.unwrap();
        client
            .start(agent::api::StartMode::Bootstrap, false)
            .await
            .unwrap();
        for _ in 0..600 {
            let report = client.status().await.unwrap();
            if report.is_synced() {
                return node;
            }
            assert!(
                report.process.running,
                "server stopped: {:?}",
                report.process.last_exit
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("not Synced within 60 s");
    }

    pub fn port(&self) -> u16 {
        self.spec.nodes[0].client_port
    }

    pub fn admin_password(&self) -> &str {
        &self.secrets.admin_password
    }

    /// Options for an account over TCP, optionally with a default database.
    pub fn options(&self, user: &str, password: &str, database: Option<&str>) -> mysql_async::Opts {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port())
            .user(Some(user))
            .pass(Some(password))
            .db_name(database)
            .prefer_socket(false)
            .into()
    }

    /// A manager as the controller builds one: galley_admin on this node.
    pub fn manager(&self) -> Manager {
        Manager::new(self.options(agent::secrets::ADMIN_USER, self.admin_password(), None))
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
        mysql_async::Conn::new(self.options(user, password, database)).await
    }
}

/// The server's error code, failing the test for any other outcome.
pub fn server_code<T: std::fmt::Debug>(result: Result<T, mysql_async::Error>) -> u16 {
    match result {
        Err(mysql_async::Error::Server(error)) => error.code,
        other => panic!("expected a server error, got {other:?}"),
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        // Never leave a mariadbd behind.
        if let Ok(pid) = std::fs::read_to_string(self.spec.nodes[0].pid_file()) {
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
