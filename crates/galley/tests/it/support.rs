//! A local test cluster: a state directory with a galley.toml on free ports, the galley
//! binary to drive it, SQL connections to its nodes, and a guard that always tears it down.

use std::path::{Path, PathBuf};
use std::process::Output;

pub const GALLEY: &str = env!("CARGO_BIN_EXE_galley");

pub struct TestCluster {
    pub dir: tempfile::TempDir,
    pub client_ports: Vec<u16>,
    /// (writer, reader, admin) when the spec has a proxy.
    pub proxy_ports: Option<(u16, u16, u16)>,
    /// The controller's API port when the spec has a controller.
    pub controller_port: Option<u16>,
    /// garbd's Galera port when the spec has an arbitrator.
    pub arbitrator_port: Option<u16>,
}

impl TestCluster {
    /// A new state directory with a three-node spec; nothing runs yet.
    pub fn new() -> TestCluster {
        TestCluster::build(false)
    }

    /// The same, with a [proxy] section on free ports.
    pub fn with_proxy() -> TestCluster {
        TestCluster::build(true)
    }

    /// The same, with a [controller] that observes twice a second, its API on a free port.
    pub fn with_controller() -> TestCluster {
        TestCluster::build(false).add_controller()
    }

    /// A proxy and a controller: everything `galley up` runs.
    pub fn with_proxy_and_controller() -> TestCluster {
        TestCluster::build(true).add_controller()
    }

    /// Two data nodes and one arbitrator (garbd, `[[arbitrator]] name = "garbd1"`) on
    /// free ports; nothing runs yet.
    pub fn two_nodes_and_arbitrator() -> TestCluster {
        let mut cluster = TestCluster::build_with(false, 2);
        let config = cluster.path().join("galley.toml");
        let mut text = std::fs::read_to_string(&config).unwrap();
        let port = testkit::free_ports(1)[0];
        cluster.arbitrator_port = Some(port);
        text.push_str(&format!(
            "\n[[arbitrator]]\nname = \"garbd1\"\naddress = \"127.0.0.1\"\ngalera_port = {port}\n\
             run_dir = \"{root}/garbd1/run\"\nlog_dir = \"{root}/garbd1/log\"\n",
            root = cluster.path().display()
        ));
        std::fs::write(&config, text).unwrap();
        cluster
    }

    fn add_controller(mut self) -> TestCluster {
        let config = self.path().join("galley.toml");
        let mut text = std::fs::read_to_string(&config).unwrap();
        let port = testkit::free_ports(1)[0];
        self.controller_port = Some(port);
        text.push_str(&format!(
            "\n[controller]\nstate_dir = \"{root}/controller\"\ninterval_ms = 500\nstuck_after_s = 10\n\
             address = \"127.0.0.1\"\nport = {port}\n\
             alert_command = [\"/bin/sh\", \"-c\", \"mkdir -p {root}/alerts && cat > {root}/alerts/$$.part && mv {root}/alerts/$$.part {root}/alerts/$$.json\"]\n",
            root = self.path().display()
        ));
        std::fs::write(&config, text).unwrap();
        self
    }

    /// The same with a [controller], as `with_controller` adds it.
    pub fn two_nodes_and_arbitrator_with_controller() -> TestCluster {
        TestCluster::two_nodes_and_arbitrator().add_controller()
    }

    fn build(with_proxy: bool) -> TestCluster {
        TestCluster::build_with(with_proxy, 3)
    }

    fn build_with(with_proxy: bool, nodes: usize) -> TestCluster {
        let dir = testkit::state_dir("galley-it-");
        let ports = testkit::free_ports(19);
        let root = dir.path().display().to_string();
        let mut text = format!(
            "[cluster]\nname = \"ittest\"\nsecrets_file = \"{root}/secrets.toml\"\n\n\
             [server]\nbuffer_pool_size = \"64M\"\nlog_file_size = \"16M\"\ngcache_size = \"64M\"\nmax_connections = 200\n"
        );
        let mut client_ports = Vec::new();
        let mut proxy_ports = None;
        if with_proxy {
            proxy_ports = Some((ports[15], ports[16], ports[17]));
            text.push_str(&format!(
                "\n[proxy]\naddress = \"127.0.0.1\"\nwriter_port = {}\nreader_port = {}\nadmin_port = {}\nmulti_writer_port = {}\nwriter_grace_ms = 0\n",
                ports[15], ports[16], ports[17], ports[18]
            ));
        }
        for (index, chunk) in ports[..nodes * 5].chunks(5).enumerate() {
            let n = index + 1;
            client_ports.push(chunk[0]);
            text.push_str(&format!(
                "\n[[node]]\nname = \"node{n}\"\naddress = \"127.0.0.1\"\nclient_port = {}\ngalera_port = {}\n\
                 ist_port = {}\nsst_port = {}\nagent_port = {}\ndata_dir = \"{root}/node{n}/data\"\n\
                 run_dir = \"{root}/node{n}/run\"\nlog_dir = \"{root}/node{n}/log\"\n",
                chunk[0], chunk[1], chunk[2], chunk[3], chunk[4]
            ));
        }
        std::fs::write(dir.path().join("galley.toml"), text).unwrap();
        TestCluster {
            dir,
            client_ports,
            proxy_ports,
            controller_port: None,
            arbitrator_port: None,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.path().join(node)
    }

    /// Runs `galley ARGS --dir <state dir>` and returns its output.
    pub fn galley(&self, args: &[&str]) -> Output {
        std::process::Command::new(GALLEY)
            .args(args)
            .arg("--dir")
            .arg(self.path())
            .output()
            .unwrap()
    }

    /// Runs galley and fails the test, showing its output, unless it succeeds.
    pub fn galley_ok(&self, args: &[&str]) -> String {
        let output = self.galley(args);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "galley {args:?} failed ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    pub fn secrets(&self) -> agent::Secrets {
        agent::Secrets::load(&self.path().join("secrets.toml")).unwrap()
    }

    /// An admin connection over TCP to node `index` (1-based).
    pub async fn conn(&self, index: usize) -> mysql_async::Conn {
        let options = mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.client_ports[index - 1])
            .user(Some(agent::secrets::ADMIN_USER))
            .pass(Some(self.secrets().admin_password))
            .prefer_socket(false);
        mysql_async::Conn::new(options).await.unwrap()
    }

    /// An admin connection through a port on 127.0.0.1 (a node's or the proxy's).
    pub async fn conn_port(&self, port: u16) -> Result<mysql_async::Conn, mysql_async::Error> {
        let options = mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(port)
            .user(Some(agent::secrets::ADMIN_USER))
            .pass(Some(self.secrets().admin_password))
            .prefer_socket(false);
        mysql_async::Conn::new(options).await
    }

    /// The proxy's /status JSON.
    pub async fn proxy_status(&self) -> serde_json::Value {
        let admin = self.proxy_ports.expect("cluster has a proxy").2;
        reqwest::get(format!("http://127.0.0.1:{admin}/status"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub fn mariadbd_pid(&self, node: &str) -> Option<i32> {
        let text = std::fs::read_to_string(self.node_dir(node).join("run/mariadbd.pid")).ok()?;
        text.trim().parse().ok()
    }
}

impl Drop for TestCluster {
    /// Stops everything the test started, even when it failed half-way.
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Keep the logs of a failed test for whoever reads its output.
            self.dir.disable_cleanup(true);
            eprintln!(
                "test cluster kept for inspection: {}",
                self.path().display()
            );
        }
        let _ = self.galley(&["down"]);
        if let Ok(pid) = std::fs::read_to_string(self.path().join("controller/controller.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let garbd_pid = std::fs::read_to_string(self.path().join("garbd1/run/garbd.pid"))
            .ok()
            .and_then(|pid| pid.trim().parse::<i32>().ok());
        if let Some(pid) = garbd_pid {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        for node in ["node1", "node2", "node3"] {
            if let Some(pid) = self.mariadbd_pid(node) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}
