//! The one mariadbd an agent owns: initializing and securing its data dir, starting it
//! (as a joiner or as the bootstrap node), stopping it gracefully, recovering its position
//! while it is stopped, and reading its state from files and over SQL.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use galera::{GraState, Position, WsrepStatus, ZERO_UUID};
use mysql_async::prelude::Queryable as _;
use nix::sys::signal::{kill, Signal};
use nix::unistd::{Pid, User};
use spec::{ClusterSpec, NodeSpec};
use tokio::sync::Mutex;

use crate::api::{InitResponse, NodeReport, ProcessReport, StartMode, StartRequest};
use crate::files::{self, FileError, Owners};
use crate::ports::taken_ports;
use crate::secrets::{native_password_hash, Secrets, ADMIN_USER, MONITOR_USER};

/// The Debian packages that provide what the agent runs.
pub const INSTALL_COMMAND: &str = "apt-get install -y mariadb-server mariadb-client galera-4 rsync";

/// Errors a caller can act on, each mapped to an HTTP status by the service.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The request does not fit the node's current state (already running, port taken, ...).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<FileError> for ServerError {
    fn from(error: FileError) -> ServerError {
        match error {
            FileError::Refused(message) => ServerError::Conflict(message),
            other => ServerError::Internal(other.into()),
        }
    }
}

/// Paths of the programs the agent needs, found before anything is created.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub mariadbd: PathBuf,
    pub install_db: PathBuf,
}

impl Binaries {
    /// Finds mariadbd, mariadb-install-db, the Galera provider and the SST tool, or names
    /// every missing one with the command that installs them.
    pub fn locate(spec: &ClusterSpec) -> anyhow::Result<Binaries> {
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).collect())
            .unwrap_or_default();
        dirs.extend(
            ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from),
        );
        Binaries::locate_in(
            &dirs,
            Path::new(spec::GALERA_PROVIDER),
            spec.server.sst_method,
        )
    }

    /// [`Binaries::locate`] over given directories, so that a missing install can be tested.
    pub fn locate_in(
        dirs: &[PathBuf],
        provider: &Path,
        sst_method: spec::SstMethod,
    ) -> anyhow::Result<Binaries> {
        let find = |name: &str| {
            dirs.iter()
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        };
        let mariadbd = find("mariadbd");
        let install_db = find("mariadb-install-db");
        let mut missing = Vec::new();
        if mariadbd.is_none() {
            missing.push("mariadbd (package mariadb-server)".to_owned());
        }
        if install_db.is_none() {
            missing.push("mariadb-install-db (package mariadb-server)".to_owned());
        }
        if !provider.is_file() {
            missing.push(format!("{} (package galera-4)", provider.display()));
        }
        let (sst_tool, sst_package) = match sst_method {
            spec::SstMethod::Rsync => ("rsync", "rsync"),
            spec::SstMethod::Mariabackup => ("mariabackup", "mariadb-backup"),
        };
        if find(sst_tool).is_none() {
            missing.push(format!("{sst_tool} (package {sst_package})"));
        }
        match (mariadbd, install_db) {
            (Some(mariadbd), Some(install_db)) if missing.is_empty() => Ok(Binaries {
                mariadbd,
                install_db,
            }),
            _ => {
                let mut install = INSTALL_COMMAND.to_owned();
                if sst_method == spec::SstMethod::Mariabackup {
                    install.push_str(" mariadb-backup");
                }
                anyhow::bail!(
                    "MariaDB with Galera is not installed on this host: missing {}.\nInstall it with: {install}",
                    missing.join(", ")
                )
            }
        }
    }
}

#[derive(Debug)]
enum ProcessState {
    Stopped {
        last_exit: Option<String>,
    },
    Running {
        pid: u32,
        mode: Option<StartMode>,
        stop_requested: bool,
    },
}

/// The agent's node: its spec, its secrets, and the mariadbd process it owns.
/// How a stop ended: the saved state, and whether the deadline passed and the server
/// was killed.
#[derive(Debug)]
pub struct Stopped {
    pub grastate: Option<GraState>,
    pub killed_after_s: Option<u64>,
}

/// How often a stop that is still waiting says so in the agent's log.
const STOP_PROGRESS_EVERY: Duration = Duration::from_secs(10);

pub struct Server {
    spec: ClusterSpec,
    node: NodeSpec,
    secrets: Secrets,
    binaries: Binaries,
    /// The OS account mariadbd runs as when the agent is root; None when the agent runs
    /// as an ordinary user and mariadbd runs as that user too.
    os_user: Option<User>,
    process: Mutex<ProcessState>,
    recovered: Mutex<Option<Position>>,
    /// This agent evicted its dead incarnation; once the node is Synced again, the
    /// cluster's evict list is cleared (a non-empty list slows later evictions to
    /// Galera's suspect timeout, as measured here).
    evicted: std::sync::atomic::AtomicBool,
    /// Whether galley's own schema (the shared writer record) is known to exist: made
    /// once this node is Synced, then left alone until the agent restarts.
    schema: std::sync::atomic::AtomicU8,
    sql: Mutex<Option<mysql_async::Conn>>,
    /// Why the fence killed the running server, for its exit report.
    fenced: std::sync::Mutex<Option<String>>,
}

/// `Server::schema`: not yet made, being made, made.
const SCHEMA_TODO: u8 = 0;
const SCHEMA_MAKING: u8 = 1;
const SCHEMA_MADE: u8 = 2;

/// galley's own schema in the cluster: the record of the writer that every proxy
/// follows (crates/proxy/src/decision.rs; ARCHITECTURE.md, "One writer for every
/// proxy"). The proxies' monitor account may read and change that record only, and read
/// the Primary component's members. Idempotent: every agent runs it once its node is
/// Synced, so that a cluster made before the record existed gets it too.
pub fn galley_schema_sql() -> String {
    let mut sql = String::from(
        "CREATE DATABASE IF NOT EXISTS galley;\n\
         CREATE TABLE IF NOT EXISTS galley.writer (\
         id TINYINT UNSIGNED NOT NULL PRIMARY KEY, \
         term BIGINT UNSIGNED NOT NULL, \
         node VARCHAR(64) NOT NULL, \
         decided_by VARCHAR(255) NOT NULL, \
         reason VARCHAR(255) NOT NULL, \
         decided_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB;\n",
    );
    for host in ["%", "localhost"] {
        sql.push_str(&format!(
            "GRANT SELECT, INSERT, UPDATE ON galley.writer TO '{MONITOR_USER}'@'{host}';\n\
             GRANT SELECT ON mysql.wsrep_cluster_members TO '{MONITOR_USER}'@'{host}';\n"
        ));
    }
    sql
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("node", &self.node.name)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Builds the server for `node_name`, adopting a mariadbd that is already running
    /// from its pid file (after an agent restart).
    pub async fn new(
        spec: ClusterSpec,
        node_name: &str,
        secrets: Secrets,
    ) -> anyhow::Result<Arc<Server>> {
        let node = spec
            .node(node_name)
            .with_context(|| {
                format!(
                    "no node named `{node_name}` in the spec; nodes: {}",
                    spec.node_names().join(", ")
                )
            })?
            .clone();
        // The spec refuses these too; the agent, which runs as root and chowns them,
        // checks again whatever spec it was handed.
        for (field, dir) in [
            ("data_dir", &node.data_dir),
            ("run_dir", &node.run_dir),
            ("log_dir", &node.log_dir),
        ] {
            if let Some(reason) = spec::paths::system_directory_reason(dir) {
                anyhow::bail!(
                    "node \"{}\".{field}: {reason}; the agent will not give it to the server's OS user; {}",
                    node.name,
                    spec::paths::SYSTEM_DIRECTORY_ADVICE
                );
            }
        }
        let binaries = Binaries::locate(&spec)?;
        let os_user = if nix::unistd::geteuid().is_root() {
            let name = &spec.server.os_user;
            Some(
                User::from_name(name)
                    .context("cannot look up the server's OS user")?
                    .with_context(|| format!("the OS user `{name}` (server.os_user) does not exist; the mariadb-server package creates `mysql`"))?,
            )
        } else {
            None
        };
        let server = Arc::new(Server {
            spec,
            node,
            secrets,
            binaries,
            os_user,
            process: Mutex::new(ProcessState::Stopped { last_exit: None }),
            recovered: Mutex::new(None),
            evicted: std::sync::atomic::AtomicBool::new(false),
            schema: std::sync::atomic::AtomicU8::new(SCHEMA_TODO),
            sql: Mutex::new(None),
            fenced: std::sync::Mutex::new(None),
        });
        if let Some(pid) = server.running_pid_from_file() {
            tracing::info!(pid, "adopting the mariadbd that is already running");
            *server.process.lock().await = ProcessState::Running {
                pid,
                mode: None,
                stop_requested: false,
            };
            tokio::spawn(watch_adopted(Arc::clone(&server), pid));
        }
        if server.spec.server.hang_fence_ms > 0 {
            let bound = Duration::from_millis(server.spec.server.hang_fence_ms);
            tokio::spawn(crate::fence::run(Arc::clone(&server), bound));
        }
        Ok(server)
    }

    /// The pid of a running server the hang fence may kill: not one this agent is
    /// stopping, not one receiving a state transfer (crates/agent/src/fence.rs).
    pub(crate) async fn fenceable_pid(&self) -> Option<u32> {
        match &*self.process.lock().await {
            ProcessState::Running {
                pid,
                stop_requested: false,
                ..
            } if !runs_sst_script(*pid) => Some(*pid),
            _ => None,
        }
    }

    /// Kills a hung server (SIGKILL), unless it stopped or a stop began meanwhile; its
    /// exit is then handled like any crash (`on_exit`), with `reason` in the report.
    pub(crate) async fn fence(&self, pid: u32, reason: String) {
        let process = self.process.lock().await;
        let ProcessState::Running {
            pid: current,
            stop_requested: false,
            ..
        } = &*process
        else {
            return;
        };
        if *current != pid {
            return;
        }
        tracing::warn!(pid, %reason, "fencing the hung server: kill -9, so that its peers see its sockets close");
        *self
            .fenced
            .lock()
            .expect("the fence reason is never poisoned") = Some(format!(
            "fenced by the agent ({reason}): killed with SIGKILL; "
        ));
        if let Err(error) = kill(Pid::from_raw(pid as i32), Signal::SIGKILL) {
            tracing::warn!(pid, %error, "could not fence the server");
        }
    }

    pub fn node(&self) -> &NodeSpec {
        &self.node
    }

    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    fn running_pid_from_file(&self) -> Option<u32> {
        let text = files::read_to_string(&self.node.pid_file()).ok()?;
        let pid: u32 = text.trim().parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == "mariadbd" || comm.trim() == "mysqld").then_some(pid)
    }

    fn data_dir_initialized(&self) -> bool {
        self.node.data_dir.join("mysql").is_dir()
    }

    fn read_grastate(&self) -> Result<Option<GraState>, String> {
        let path = self.node.grastate_file();
        match files::read_to_string(&path) {
            Ok(text) => GraState::parse(&text)
                .map(Some)
                .map_err(|error| format!("{} is invalid: {error}", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(format!("cannot read {}: {error}", path.display())),
        }
    }

    pub async fn report(self: &Arc<Self>) -> NodeReport {
        // (The state transfer check reads /proc: a few small files per running server.)
        let process = match &*self.process.lock().await {
            ProcessState::Stopped { last_exit } => ProcessReport {
                running: false,
                pid: None,
                mode: None,
                last_exit: last_exit.clone(),
                receiving_state_transfer: false,
            },
            ProcessState::Running { pid, mode, .. } => ProcessReport {
                running: true,
                pid: Some(*pid),
                mode: *mode,
                last_exit: None,
                receiving_state_transfer: runs_sst_script(*pid),
            },
        };
        let (grastate, grastate_error) = match self.read_grastate() {
            Ok(state) => (state, None),
            Err(error) => (None, Some(error)),
        };
        let (wsrep, sql_error) = if process.running {
            match self.query_wsrep().await {
                Ok(status) => (Some(status), None),
                Err(error) => (None, Some(format!("{error:#}"))),
            }
        } else {
            *self.sql.lock().await = None;
            (None, None)
        };
        let report_synced =
            process.running && wsrep.as_ref().is_some_and(|w| w.write_health().is_ok());
        if report_synced
            && self
                .schema
                .compare_exchange(
                    SCHEMA_TODO,
                    SCHEMA_MAKING,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_ok()
        {
            let server = Arc::clone(self);
            tokio::spawn(async move { server.make_galley_schema().await });
        }
        if report_synced
            && self
                .evicted
                .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            // In the background: a status request answers at once, whatever the peers do.
            let server = Arc::clone(self);
            tokio::spawn(async move { server.clear_evict_lists().await });
        }
        NodeReport {
            node: self.node.name.clone(),
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            process,
            data_dir_initialized: self.data_dir_initialized(),
            grastate,
            grastate_error,
            recovered: self.recovered.lock().await.clone(),
            wsrep,
            sql_error,
            set_aside: copies_set_aside(&self.node.data_dir),
            stale_view: None,
        }
    }

    /// Reads the wsrep status over the unix socket with the monitor account, on one
    /// connection kept open between calls.
    async fn query_wsrep(&self) -> anyhow::Result<WsrepStatus> {
        let mut slot = self.sql.lock().await;
        if slot.is_none() {
            let options = mysql_async::OptsBuilder::default()
                .ip_or_hostname("localhost")
                .socket(Some(self.node.socket_path().to_string_lossy().into_owned()))
                .prefer_socket(true)
                .user(Some(MONITOR_USER))
                .pass(Some(self.secrets.monitor_password.clone()))
                .init(vec![galera::PROBE_SESSION_INIT]);
            let connect = mysql_async::Conn::new(options);
            let conn = tokio::time::timeout(Duration::from_secs(2), connect)
                .await
                .context("connecting to the server timed out")?
                .context("cannot connect to the server")?;
            *slot = Some(conn);
        }
        // The connection leaves the slot for the query and goes back only when the query
        // completed: if this request is dropped half-way (its HTTP client went away), a
        // connection in the middle of a result set must never serve the next query.
        let mut conn = slot.take().expect("connected above");
        let query = read_wsrep_variables(&mut conn);
        let result = tokio::time::timeout(Duration::from_secs(3), query).await;
        match result {
            Ok(Ok(rows)) => {
                *slot = Some(conn);
                Ok(WsrepStatus::from_variables(
                    rows.iter()
                        .map(|(name, value)| (name.as_str(), value.as_str())),
                ))
            }
            Ok(Err(error)) => Err(error).context("status query failed"),
            Err(_) => anyhow::bail!("status query timed out after 3 s"),
        }
    }

    fn owners(&self) -> Owners {
        Owners::new(self.os_user.as_ref())
    }

    fn server_owner(&self) -> Option<(u32, u32)> {
        self.os_user
            .as_ref()
            .map(|user| (user.uid.as_raw(), user.gid.as_raw()))
    }

    /// Creates the node's directories, owned by the server's OS user, checks that the
    /// user can reach them and that nobody else can swap them (crate::files), and writes
    /// my.cnf (and the SST login file) there without following a planted link.
    fn prepare_directories(&self) -> Result<(), ServerError> {
        let node = &self.node.name;
        for (field, dir, mode) in [
            ("data_dir", &self.node.data_dir, Some(0o700)),
            ("run_dir", &self.node.run_dir, None),
            ("log_dir", &self.node.log_dir, None),
        ] {
            files::prepare_directory(
                &format!("node \"{node}\".{field}"),
                dir,
                self.owners(),
                mode,
            )?;
            if let Some(user) = &self.os_user {
                check_reachable(dir, &user.name)?;
            }
        }
        let config = spec::render_node_config(&self.spec, &self.node);
        files::write_file(&self.node.config_file(), config.as_bytes(), 0o644, None)?;
        self.install_tls_files()?;
        if self.spec.server.sst_method == spec::SstMethod::Mariabackup {
            // The donor's mariabackup logs in with the admin account. The file is read by
            // mariadbd and the SST script, both as the server's OS user, and nobody else.
            let auth_file = self.node.run_dir.join("sst-auth.cnf");
            let text = format!(
                "[mariadbd]\nwsrep_sst_auth = {ADMIN_USER}:{}\n",
                self.secrets.admin_password
            );
            files::write_file(&auth_file, text.as_bytes(), 0o600, self.server_owner())?;
        }
        Ok(())
    }

    /// With `[tls]` on: copies the cluster CA, this node's certificate and its key from
    /// the TLS directory into run_dir, where my.cnf points, owned by the server's OS user
    /// (mariadbd and the SST scripts read them as that user; the key stays 0600).
    fn install_tls_files(&self) -> Result<(), ServerError> {
        let Some(tls) = &self.spec.tls else {
            return Ok(());
        };
        let (installed_ca, installed) = self.node.tls_installed();
        let source = tls.node_files(&self.node.name);
        for (from, to, mode) in [
            (tls.ca_cert(), installed_ca, 0o644),
            (source.cert, installed.cert, 0o644),
            (source.key, installed.key, 0o600),
        ] {
            let contents = std::fs::read(&from).map_err(|error| {
                ServerError::Conflict(format!(
                    "cannot read the TLS file {} for node \"{}\": {error}; `galley up` issues it, or copy the operator's",
                    from.display(),
                    self.node.name
                ))
            })?;
            files::write_file(&to, &contents, mode, self.server_owner())?;
        }
        Ok(())
    }

    /// Initializes and secures the data dir of a new cluster's first node: system tables,
    /// no anonymous users, no test database, root only through the unix socket, and the
    /// galley admin and monitor accounts. Leaves an existing data dir alone.
    pub async fn init(&self) -> Result<InitResponse, ServerError> {
        if matches!(*self.process.lock().await, ProcessState::Running { .. }) {
            return Err(ServerError::Conflict(
                "the server is running; its data dir is already initialized".into(),
            ));
        }
        if self.data_dir_initialized() {
            return Ok(InitResponse { initialized: false });
        }
        let data_dir = &self.node.data_dir;
        files::refuse_link(&format!("node \"{}\".data_dir", self.node.name), data_dir)?;
        let existed = data_dir.exists();
        if existed
            && std::fs::read_dir(data_dir)
                .map(|mut entries| entries.next().is_some())
                .unwrap_or(false)
        {
            return Err(ServerError::Conflict(format!(
                "the data dir {} is not empty but holds no MariaDB system schema; refusing to initialize over it",
                data_dir.display()
            )));
        }
        let result = match self.prepare_directories() {
            Ok(()) => self
                .install_system_tables()
                .await
                .map_err(ServerError::Internal),
            Err(error) => Err(error),
        };
        if result.is_err() && !existed {
            // Leave nothing half-created: the next attempt starts from scratch.
            let _ = std::fs::remove_dir_all(data_dir);
        }
        result?;
        tracing::info!(data_dir = %data_dir.display(), "data dir initialized and secured");
        Ok(InitResponse { initialized: true })
    }

    /// Runs mariadb-install-db on the prepared directories.
    async fn install_system_tables(&self) -> anyhow::Result<()> {
        let sql_file = self.node.run_dir.join("galley-init.sql");
        files::write_file(&sql_file, self.securing_sql().as_bytes(), 0o600, None)?;
        let mut command = tokio::process::Command::new(&self.binaries.install_db);
        command
            .arg(format!(
                "--defaults-file={}",
                self.node.config_file().display()
            ))
            .arg(format!("--datadir={}", self.node.data_dir.display()))
            .arg("--skip-test-db")
            .arg("--skip-name-resolve")
            .arg("--auth-root-authentication-method=socket")
            .arg(format!("--extra-file={}", sql_file.display()));
        if let Some(user) = &self.os_user {
            command.arg(format!("--user={}", user.name));
        }
        let output = command.stdin(Stdio::null()).output().await;
        let _ = std::fs::remove_file(&sql_file);
        let output = output.context("cannot run mariadb-install-db")?;
        if !output.status.success() {
            let text = String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr);
            let lines: Vec<&str> = text
                .lines()
                .filter(|line| !line.trim().is_empty())
                .take(6)
                .collect();
            anyhow::bail!("mariadb-install-db failed: {}", lines.join(" | "));
        }
        Ok(())
    }

    /// SQL run once at install time. It carries password hashes, never passwords.
    fn securing_sql(&self) -> String {
        let admin_hash = native_password_hash(&self.secrets.admin_password);
        let monitor_hash = native_password_hash(&self.secrets.monitor_password);
        let mut sql = String::from(
            "FLUSH PRIVILEGES;\n\
             DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host <> 'localhost');\n\
             DROP DATABASE IF EXISTS test;\n\
             DELETE FROM mysql.db WHERE Db = 'test' OR Db LIKE 'test\\\\_%';\n\
             FLUSH PRIVILEGES;\n",
        );
        for host in ["%", "localhost"] {
            sql.push_str(&format!(
                "CREATE USER '{ADMIN_USER}'@'{host}' IDENTIFIED BY PASSWORD '{admin_hash}';\n\
                 GRANT ALL PRIVILEGES ON *.* TO '{ADMIN_USER}'@'{host}' WITH GRANT OPTION;\n\
                 CREATE USER '{MONITOR_USER}'@'{host}' IDENTIFIED BY PASSWORD '{monitor_hash}';\n\
                 GRANT PROCESS, REPLICATION CLIENT ON *.* TO '{MONITOR_USER}'@'{host}';\n"
            ));
        }
        sql
    }

    /// Starts mariadbd. Returns once the process runs; callers poll the report for Synced.
    pub async fn start(self: &Arc<Self>, request: StartRequest) -> Result<u32, ServerError> {
        let mut process = self.process.lock().await;
        if let ProcessState::Running { pid, .. } = &*process {
            return Err(ServerError::Conflict(format!(
                "the server is already running (pid {pid})"
            )));
        }
        let node = &self.node;
        let ports = [
            ("client_port", node.client_port),
            ("galera_port", node.galera_port),
            ("ist_port", node.ist_port),
            ("sst_port", node.sst_port),
        ];
        let taken = taken_ports(&node.address, &ports);
        if !taken.is_empty() {
            let listed: Vec<String> = taken.iter().map(ToString::to_string).collect();
            return Err(ServerError::Conflict(format!(
                "cannot start {}: {}",
                node.name,
                listed.join("; ")
            )));
        }
        let grastate = self.read_grastate().map_err(ServerError::Conflict)?;
        let mut start_position = None;
        match request.mode {
            StartMode::Bootstrap => {
                if !self.data_dir_initialized() {
                    return Err(ServerError::Conflict(format!(
                        "the data dir {} is not initialized; initialize it before bootstrapping a new cluster",
                        node.data_dir.display()
                    )));
                }
                if let Some(mut state) = grastate {
                    if !state.safe_to_bootstrap {
                        if !request.mark_safe_to_bootstrap {
                            return Err(ServerError::Conflict(format!(
                                "{} is not marked safe_to_bootstrap (seqno {}); bootstrap it only if it is the most advanced node",
                                node.name, state.seqno
                            )));
                        }
                        state.safe_to_bootstrap = true;
                        self.write_grastate(&state)?;
                    }
                    // After a crash grastate.dat has seqno -1. Without the recovered
                    // position, Galera would start a new history (a new cluster UUID) and
                    // every joiner would need a full SST; with it, the cluster keeps its
                    // UUID and seqno and joiners catch up by IST.
                    if state.seqno < 0 && state.uuid != ZERO_UUID {
                        start_position = Some(self.recover_position().await?);
                    }
                }
            }
            StartMode::Join => {
                if !node.data_dir.exists() {
                    tracing::info!(
                        "empty data dir: this node will receive a full state transfer (SST)"
                    );
                }
                // After a crash grastate.dat has seqno -1; recover the real position from
                // InnoDB so that the node can ask for an incremental transfer (IST). A
                // recovery that already ran on the stopped server (the planner reads a
                // crashed node's position before it joins) is used as it is, instead of
                // starting InnoDB a second time for the same answer. (A node killed just
                // after its own SST keeps the zero UUID in grastate.dat; Galera then asks
                // for a full SST whatever start position it is given: seen here.)
                let recovered = self
                    .recovered
                    .lock()
                    .await
                    .clone()
                    .filter(|position| !position.is_empty());
                if let Some(position) = recovered {
                    start_position = Some(position);
                } else if let Some(state) = grastate.filter(|s| s.seqno < 0 && s.uuid != ZERO_UUID)
                {
                    if self.data_dir_initialized() {
                        drop(state);
                        let position = self.recover_position().await?;
                        start_position = Some(position);
                    }
                }
            }
        }
        self.prepare_directories()?;
        let mut command = tokio::process::Command::new(&self.binaries.mariadbd);
        command.arg(format!("--defaults-file={}", node.config_file().display()));
        if let Some(user) = &self.os_user {
            command.arg(format!("--user={}", user.name));
        }
        if request.mode == StartMode::Bootstrap {
            command.arg("--wsrep-new-cluster");
        }
        if let Some(position) = &start_position {
            command.arg(format!("--wsrep-start-position={position}"));
        }
        let log = files::open_append(&node.error_log())
            .with_context(|| format!("cannot open {}", node.error_log().display()))?;
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("cannot share the log file")?)
            .stderr(log)
            // Its own process group: a Ctrl-C meant for `galley up` must not reach it.
            .process_group(0)
            .kill_on_drop(false);
        let mut child = command.spawn().context("cannot start mariadbd")?;
        let pid = child.id().context("mariadbd exited at once")?;
        *self.recovered.lock().await = None;
        *process = ProcessState::Running {
            pid,
            mode: Some(request.mode),
            stop_requested: false,
        };
        tracing::info!(pid, mode = ?request.mode, position = ?start_position, "mariadbd started");
        let server = Arc::clone(self);
        tokio::spawn(async move {
            let status = child.wait().await;
            server
                .on_exit(
                    pid,
                    status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|e| e.to_string()),
                )
                .await;
        });
        Ok(pid)
    }

    async fn on_exit(&self, pid: u32, status: String) {
        {
            let mut process = self.process.lock().await;
            let ProcessState::Running {
                pid: current,
                stop_requested,
                ..
            } = &*process
            else {
                return;
            };
            if *current != pid {
                return;
            }
            if *stop_requested {
                *process = ProcessState::Stopped { last_exit: None };
                *self.sql.lock().await = None;
                return;
            }
        }
        tracing::warn!(pid, %status, "mariadbd exited by itself");
        // The agent knows for certain that the process is gone (it reaped it), so it
        // tells a peer to evict it now instead of after Galera's suspect timeout, during
        // which the rest of the cluster cannot commit. No lock is held meanwhile.
        let eviction = self.evict_dead_self().await;
        if eviction.starts_with("evicted") {
            self.evicted
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let tail = error_lines(&self.node.error_log());
        let fenced = self
            .fenced
            .lock()
            .expect("the fence reason is never poisoned")
            .take()
            .unwrap_or_default();
        let mut process = self.process.lock().await;
        if matches!(*process, ProcessState::Running { pid: current, .. } if current == pid) {
            *process = ProcessState::Stopped {
                last_exit: Some(format!(
                    "{fenced}mariadbd (pid {pid}) exited: {status}; {eviction}{tail}"
                )),
            };
            *self.sql.lock().await = None;
        }
    }

    /// Empties the evict list on every node (best effort, logged): the dead incarnation
    /// it named is gone for good, and the restarted node runs as a new one.
    async fn clear_evict_lists(&self) {
        for peer in &self.spec.nodes {
            match self
                .run_as_admin(peer, "SET GLOBAL wsrep_provider_options = 'evs.evict='")
                .await
            {
                Ok(()) => tracing::info!(peer = %peer.name, "cleared the evict list"),
                Err(error) => {
                    tracing::warn!(peer = %peer.name, "could not clear the evict list: {error}")
                }
            }
        }
    }

    /// Makes galley's own schema ([`GALLEY_SCHEMA_SQL`]) through this node; on failure
    /// it is tried again at the next report.
    async fn make_galley_schema(&self) {
        let outcome = self.run_as_admin(&self.node, &galley_schema_sql()).await;
        let next = match outcome {
            Ok(()) => {
                tracing::info!("galley's schema (the shared writer record) is in place");
                SCHEMA_MADE
            }
            Err(error) => {
                tracing::warn!("could not make galley's schema, trying again: {error}");
                SCHEMA_TODO
            }
        };
        self.schema
            .store(next, std::sync::atomic::Ordering::Relaxed);
    }

    /// Runs one statement (or several, separated by `;`) on a node over TCP as the
    /// admin, within 2 s.
    async fn run_as_admin(&self, peer: &NodeSpec, statement: &str) -> Result<(), String> {
        let options = mysql_async::OptsBuilder::default()
            .ip_or_hostname(peer.address.clone())
            .tcp_port(peer.client_port)
            .user(Some(ADMIN_USER))
            .pass(Some(self.secrets.admin_password.clone()))
            .prefer_socket(false);
        let attempt = async {
            let mut conn = mysql_async::Conn::new(options).await?;
            conn.query_drop(statement).await?;
            conn.disconnect().await
        };
        match tokio::time::timeout(Duration::from_secs(2), attempt).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("timed out".to_owned()),
        }
    }

    /// Asks the first reachable peer to evict this node's dead incarnation from the
    /// cluster (`evs.evict`). A restarted mariadbd joins as a new incarnation, so the
    /// eviction does not keep it out. Returns what happened, for the report.
    async fn evict_dead_self(&self) -> String {
        let gvwstate = self.node.data_dir.join("gvwstate.dat");
        let uuid = files::read_to_string(&gvwstate)
            .ok()
            .and_then(|text| galera::parse_gvwstate_my_uuid(&text));
        let Some(uuid) = uuid else {
            return "not evicted: no gvwstate.dat, so it was in no Primary component".to_owned();
        };
        let statement = format!("SET GLOBAL wsrep_provider_options = 'evs.evict={uuid}'");
        let mut failures = Vec::new();
        for peer in self
            .spec
            .nodes
            .iter()
            .filter(|peer| peer.name != self.node.name)
        {
            match self.run_as_admin(peer, &statement).await {
                Ok(()) => {
                    tracing::info!(peer = %peer.name, %uuid, "evicted the dead incarnation through a peer");
                    return format!("evicted from the cluster through {}", peer.name);
                }
                Err(error) => failures.push(format!("{}: {error}", peer.name)),
            }
        }
        let failures = failures.join("; ");
        tracing::warn!("could not evict the dead incarnation: {failures}");
        format!("not evicted (Galera will after its suspect timeout): {failures}")
    }

    /// Replaces grastate.dat whole (a new file renamed over it, never through a link).
    fn write_grastate(&self, state: &GraState) -> Result<(), FileError> {
        files::write_file(
            &self.node.grastate_file(),
            state.render().as_bytes(),
            0o660,
            self.server_owner(),
        )
    }

    /// Stops mariadbd gracefully (SIGTERM) and waits for it to exit.
    /// The deadline of a graceful stop: `server.stop_timeout_s` for a Synced server (a
    /// large buffer pool takes minutes to flush); at most 30 s for one that is not Synced,
    /// which holds nothing worth waiting for and may ignore SIGTERM during a transfer.
    pub async fn stop_timeout(self: &Arc<Self>) -> Duration {
        let deadline = Duration::from_secs(self.spec.server.stop_timeout_s);
        if self.report().await.is_synced() {
            deadline
        } else {
            deadline.min(Duration::from_secs(30))
        }
    }

    pub async fn stop(&self, timeout: Duration) -> Result<Stopped, ServerError> {
        let pid = {
            let mut process = self.process.lock().await;
            match &mut *process {
                ProcessState::Stopped { .. } => {
                    return Ok(Stopped {
                        grastate: self.read_grastate().ok().flatten(),
                        killed_after_s: None,
                    })
                }
                ProcessState::Running {
                    pid,
                    stop_requested,
                    ..
                } => {
                    *stop_requested = true;
                    *pid
                }
            }
        };
        *self.sql.lock().await = None;
        tracing::info!(pid, deadline_s = timeout.as_secs(), "stopping mariadbd");
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        let started = tokio::time::Instant::now();
        let poll = async {
            let mut reported = started;
            loop {
                if matches!(*self.process.lock().await, ProcessState::Stopped { .. }) {
                    break;
                }
                if reported.elapsed() >= STOP_PROGRESS_EVERY {
                    reported = tokio::time::Instant::now();
                    tracing::info!(
                        pid,
                        "mariadbd is still shutting down after {} s; it is killed at {} s",
                        started.elapsed().as_secs(),
                        timeout.as_secs()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let mut killed_after_s = None;
        if tokio::time::timeout(timeout, poll).await.is_err() {
            // A joiner in the middle of a state transfer may ignore SIGTERM (its data is
            // incomplete anyway, and the next start transfers it again); a server that
            // was frozen may hang in its shutdown forever. Killed, its data goes through
            // the same crash recovery as after kill -9.
            tracing::warn!(
                pid,
                "mariadbd did not stop within {} s; killing it (its next start recovers as after a crash)",
                timeout.as_secs()
            );
            killed_after_s = Some(timeout.as_secs());
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            let reaped = async {
                loop {
                    if matches!(*self.process.lock().await, ProcessState::Stopped { .. }) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            };
            if tokio::time::timeout(Duration::from_secs(10), reaped)
                .await
                .is_err()
            {
                return Err(ServerError::Conflict(format!(
                    "mariadbd (pid {pid}) did not exit even after SIGKILL"
                )));
            }
        }
        Ok(Stopped {
            grastate: self.read_grastate().map_err(ServerError::Conflict)?,
            killed_after_s,
        })
    }

    /// Sets safe_to_bootstrap to 0 on a stopped node that will not bootstrap, so that
    /// only one node of the cluster carries the flag (safety rule 2).
    pub async fn clear_bootstrap_flag(&self) -> Result<Option<GraState>, ServerError> {
        let process = self.process.lock().await;
        if let ProcessState::Running { pid, .. } = &*process {
            return Err(ServerError::Conflict(format!(
                "the server is running (pid {pid}); Galera owns grastate.dat now"
            )));
        }
        let state = self.read_grastate().map_err(ServerError::Conflict)?;
        match state {
            Some(mut state) if state.safe_to_bootstrap => {
                state.safe_to_bootstrap = false;
                self.write_grastate(&state)?;
                tracing::info!("cleared safe_to_bootstrap");
                Ok(Some(state))
            }
            other => Ok(other),
        }
    }

    /// Moves the stopped node's data dir aside (never deletes it), so that the next start
    /// rebuilds the node by a full state transfer. Returns where the old data went.
    pub async fn wipe(&self, at_label: &str) -> Result<PathBuf, ServerError> {
        let process = self.process.lock().await;
        if let ProcessState::Running { pid, .. } = &*process {
            return Err(ServerError::Conflict(format!(
                "the server is running (pid {pid}); stop it before moving its data aside"
            )));
        }
        // A recovered position belongs to the data being moved aside.
        *self.recovered.lock().await = None;
        let data_dir = &self.node.data_dir;
        if !data_dir.exists() {
            return Err(ServerError::Conflict(format!(
                "{} does not exist; there is nothing to move aside",
                data_dir.display()
            )));
        }
        let label: String = at_label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let aside = data_dir.with_file_name(format!(
            "{}.galley-aside-{label}",
            data_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "data".to_owned())
        ));
        std::fs::rename(data_dir, &aside).with_context(|| {
            format!("cannot move {} to {}", data_dir.display(), aside.display())
        })?;
        tracing::warn!(aside = %aside.display(), "data dir moved aside; the node will be rebuilt by SST");
        Ok(aside)
    }

    /// Runs `mariadbd --wsrep-recover` on the stopped server and returns the position
    /// InnoDB holds.
    pub async fn recover(&self) -> Result<Position, ServerError> {
        let process = self.process.lock().await;
        if let ProcessState::Running { pid, .. } = &*process {
            return Err(ServerError::Conflict(format!(
                "the server is running (pid {pid}); its position is in the wsrep status, not in recovery"
            )));
        }
        let position = self.recover_position().await?;
        drop(process);
        *self.recovered.lock().await = Some(position.clone());
        Ok(position)
    }

    async fn recover_position(&self) -> Result<Position, ServerError> {
        if !self.data_dir_initialized() {
            return Err(ServerError::Conflict(format!(
                "the data dir {} holds no data; there is no position to recover",
                self.node.data_dir.display()
            )));
        }
        self.prepare_directories()?;
        let log_path = self.node.run_dir.join("wsrep-recover.log");
        let _ = std::fs::remove_file(&log_path);
        let mut command = tokio::process::Command::new(&self.binaries.mariadbd);
        command
            .arg(format!(
                "--defaults-file={}",
                self.node.config_file().display()
            ))
            .arg("--wsrep-recover")
            .arg(format!("--log-error={}", log_path.display()));
        if let Some(user) = &self.os_user {
            command.arg(format!("--user={}", user.name));
        }
        let output = command
            .stdin(Stdio::null())
            .output()
            .await
            .context("cannot run mariadbd --wsrep-recover")?;
        let log = read_recover_log(&log_path);
        let _ = std::fs::remove_file(&log_path);
        match galera::parse_recovered_position(&log) {
            Some(position) => {
                tracing::info!(%position, "recovered position");
                Ok(position)
            }
            None => {
                let errors: Vec<&str> = log
                    .lines()
                    .filter(|line| line.contains("[ERROR]"))
                    .take(5)
                    .collect();
                Err(ServerError::Internal(anyhow::anyhow!(
                    "mariadbd --wsrep-recover found no position ({}): {}",
                    output.status,
                    if errors.is_empty() {
                        "no error in its log".to_owned()
                    } else {
                        errors.join(" | ")
                    }
                )))
            }
        }
    }
}

/// Follows a mariadbd this agent did not start (it has no handle to wait on).
async fn watch_adopted(server: Arc<Server>, pid: u32) {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if kill(Pid::from_raw(pid as i32), None).is_err() {
            server
                .on_exit(pid, "exit status unknown (adopted process)".to_owned())
                .await;
            return;
        }
        if !matches!(*server.process.lock().await, ProcessState::Running { pid: current, .. } if current == pid)
        {
            return;
        }
    }
}

/// The server's last error lines, to explain why it stopped.
fn error_lines(log: &Path) -> String {
    let Ok(text) = files::read_to_string(log) else {
        return String::new();
    };
    let start = text.len().saturating_sub(64 * 1024);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    let errors: Vec<&str> = text[start..]
        .lines()
        .filter(|line| line.contains("[ERROR]"))
        .collect();
    let last: Vec<&str> = errors.iter().rev().take(4).rev().copied().collect();
    if last.is_empty() {
        String::new()
    } else {
        format!(
            "; last errors in {}:\n  {}",
            log.display(),
            last.join("\n  ")
        )
    }
}

/// mariadbd drops to its OS user; every directory above its own must let that user pass.
fn check_reachable(dir: &Path, user: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    for ancestor in dir.ancestors().skip(1) {
        let Ok(metadata) = std::fs::metadata(ancestor) else {
            continue;
        };
        if metadata.permissions().mode() & 0o001 == 0 {
            anyhow::bail!(
                "the OS user `{user}` cannot reach {} because {} has mode {:o}; allow it with `chmod o+x {}` or choose another directory",
                dir.display(),
                ancestor.display(),
                metadata.permissions().mode() & 0o777,
                ancestor.display()
            );
        }
    }
    Ok(())
}

/// The log of `mariadbd --wsrep-recover`. A byte that is not UTF-8 (a file name, a
/// corrupt page dumped by InnoDB) must not hide the position line, so it is read lossily.
fn read_recover_log(path: &Path) -> String {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    if let Ok(mut file) = files::open_read(path) {
        let _ = file.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The wsrep status variables and the settings that decide whether the node serves
/// (read_only, wsrep_desync, wsrep_reject_queries), as name/value pairs for
/// `WsrepStatus::from_variables`. The agent reads them over its socket; the controller
/// reads an imported node's over TCP.
pub async fn read_wsrep_variables(
    conn: &mut mysql_async::Conn,
) -> Result<Vec<(String, String)>, mysql_async::Error> {
    let mut rows: Vec<(String, String)> = conn
        .query("SHOW GLOBAL STATUS WHERE Variable_name LIKE 'wsrep%' OR Variable_name IN ('Questions', 'Threads_connected')")
        .await?;
    let (read_only, desync, reject): (String, String, String) = conn
        .query_first("SELECT @@read_only, @@wsrep_desync, @@wsrep_reject_queries")
        .await?
        .unwrap_or_default();
    rows.push(("read_only".into(), read_only));
    rows.push(("wsrep_desync".into(), desync));
    rows.push(("wsrep_reject_queries".into(), reject));
    Ok(rows)
}

/// Whether a child of mariadbd `pid` runs a state transfer script (`wsrep_sst_rsync`,
/// `wsrep_sst_mariabackup`, ...): the joiner side of an SST, read from /proc.
fn runs_sst_script(pid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces, so split after the last ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let parent = rest.split_whitespace().nth(1);
        let command = head.split_once('(').map_or("", |(_, comm)| comm);
        parent == Some(pid.to_string().as_str()) && is_sst_script(command)
    })
}

/// The kernel's name for an SST script process (`comm`, at most 15 characters; a
/// shell script shows its own name).
fn is_sst_script(command: &str) -> bool {
    command.starts_with("wsrep_sst")
}

/// Where earlier rebuilds moved a data dir: its siblings named
/// `<data dir>.galley-aside-<label>`, in name order (the label is the time of the move,
/// in ms).
fn copies_set_aside(data_dir: &Path) -> Vec<String> {
    let (Some(parent), Some(name)) = (data_dir.parent(), data_dir.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.galley-aside-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut copies: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .map(|entry| entry.path().display().to_string())
        .collect();
    copies.sort();
    copies
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The position is found in a log that also holds bytes that are not UTF-8 (it was
    /// read as empty, and the recovery failed with "found no position").
    #[test]
    fn a_recover_log_with_bytes_that_are_not_utf8_still_gives_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wsrep-recover.log");
        std::fs::write(
            &path,
            b"2026-12-03 17:20:33 0 [ERROR] InnoDB: page dump \xff\xfe\x80\n\
              2026-12-03 17:20:33 0 [Note] WSREP: Recovered position: c452014c-ef3d-11f1-a48a-fbff4f6a5f4b:4\n",
        )
        .unwrap();
        let position = galera::parse_recovered_position(&read_recover_log(&path)).unwrap();
        assert_eq!(position.seqno, 4);
        assert_eq!(read_recover_log(&dir.path().join("missing.log")), "");
    }

    #[test]
    fn copies_set_aside_are_the_data_dirs_siblings_of_that_name() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        assert!(copies_set_aside(&data).is_empty());
        for other in [
            "data.galley-aside-200",
            "data.galley-aside-100",
            "data2",
            "data.old",
        ] {
            std::fs::create_dir(dir.path().join(other)).unwrap();
        }
        let expected: Vec<String> = ["data.galley-aside-100", "data.galley-aside-200"]
            .iter()
            .map(|name| dir.path().join(name).display().to_string())
            .collect();
        assert_eq!(copies_set_aside(&data), expected);
    }

    #[test]
    fn a_child_running_an_sst_script_is_a_state_transfer_in_progress() {
        // A child whose program is named like an SST script, as the joiner's is.
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("wsrep_sst_rsync");
        std::os::unix::fs::symlink("/bin/sleep", &script).unwrap();
        let me = std::process::id();
        let mut other = std::process::Command::new("/bin/sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(!runs_sst_script(me), "a plain child is no state transfer");
        let mut child = std::process::Command::new(&script)
            .arg("30")
            .spawn()
            .unwrap();
        let mut seen = false;
        for _ in 0..100 {
            if runs_sst_script(me) {
                seen = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        other.kill().unwrap();
        other.wait().unwrap();
        assert!(seen, "the SST script child was not found");
        assert!(!runs_sst_script(me), "the script has ended");
        assert!(is_sst_script("wsrep_sst_maria"));
        assert!(!is_sst_script("mariadbd"));
    }

    #[test]
    fn names_every_missing_program_and_the_install_command() {
        let empty = std::env::temp_dir().join("galley-no-such-dir");
        let error = Binaries::locate_in(
            std::slice::from_ref(&empty),
            &empty.join("libgalera_smm.so"),
            spec::SstMethod::Rsync,
        )
        .unwrap_err()
        .to_string();
        for expected in [
            "mariadbd (package mariadb-server)",
            "mariadb-install-db",
            "galera-4",
            "rsync",
            INSTALL_COMMAND,
        ] {
            assert!(error.contains(expected), "missing {expected:?} in {error}");
        }
    }
}
