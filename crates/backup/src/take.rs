//! Taking a full backup of one node: freeze its data under a read lock, record every
//! user table's checksum and the Galera position, then stream mariabackup through the
//! mbstream scanner and zstd into the target (docs/backup.md, "How a backup is taken").

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::{bail, Context as _};
use mysql_async::prelude::Queryable as _;
use sha2::{Digest as _, Sha256};

use crate::manifest::{
    backup_id, parse_checkpoints, parse_galera_info, Kind, Manifest, TableChecksum, STREAM_FILE,
};
use crate::stream::{hex, Scanned, Scanner};
use crate::target::{write_manifest, DirectoryTarget};

/// How to reach the node and where its software is.
#[derive(Debug, Clone)]
pub struct NodeAccess {
    pub name: String,
    pub address: String,
    pub client_port: u16,
    /// The node's rendered my.cnf (its datadir and InnoDB settings), read by mariabackup.
    pub config_file: PathBuf,
    /// The server's socket, through which mariabackup logs in.
    pub socket: PathBuf,
    pub user: String,
    pub password: String,
}

impl NodeAccess {
    pub fn for_node(node: &spec::NodeSpec, secrets: &agent::Secrets) -> NodeAccess {
        NodeAccess {
            name: node.name.clone(),
            address: node.address.clone(),
            client_port: node.client_port,
            config_file: node.config_file(),
            socket: node.socket_path(),
            user: secrets.admin_user().to_owned(),
            password: secrets.admin_password.clone(),
        }
    }

    pub async fn connect(&self) -> anyhow::Result<mysql_async::Conn> {
        connect_tcp(&self.address, self.client_port, &self.user, &self.password)
            .await
            .with_context(|| format!("cannot log in to node {} as {}", self.name, self.user))
    }
}

pub(crate) async fn connect_tcp(
    address: &str,
    port: u16,
    user: &str,
    password: &str,
) -> Result<mysql_async::Conn, mysql_async::Error> {
    let options = mysql_async::OptsBuilder::default()
        .ip_or_hostname(address)
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password))
        .prefer_socket(false);
    mysql_async::Conn::new(options).await
}

/// `mariabackup` unless GALLEY_MARIABACKUP names another (tests of a broken one).
pub fn mariabackup_binary() -> PathBuf {
    std::env::var_os("GALLEY_MARIABACKUP")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("mariabackup"))
}

/// Takes a full backup of `node` into `target`; returns its manifest.
pub async fn take_full(
    cluster: &str,
    node: &NodeAccess,
    target: &DirectoryTarget,
) -> anyhow::Result<Manifest> {
    target.ensure()?;
    let started = SystemTime::now();
    let started_unix = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let id = backup_id(started_unix, &node.name);
    let partial = target.partial_dir(&id)?;
    let final_dir = target.backup_dir(&id)?;
    if final_dir.exists() || partial.exists() {
        bail!(
            "backup {id} already exists in {}; try again in a second",
            target.root.display()
        );
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let result = take_into(cluster, node, &id, &partial, started).await;
    match result {
        Ok(manifest) => {
            write_manifest(&partial, &manifest)?;
            std::fs::rename(&partial, &final_dir).with_context(|| {
                format!(
                    "cannot rename {} to {}",
                    partial.display(),
                    final_dir.display()
                )
            })?;
            Ok(manifest)
        }
        Err(error) => {
            // Keep mariabackup's log for the operator, drop the rest.
            let log = partial.join("mariabackup.log");
            let kept = target.root.join(format!(".failed-{id}.log"));
            let _ = std::fs::rename(&log, &kept);
            let _ = std::fs::remove_dir_all(&partial);
            Err(error)
        }
    }
}

async fn take_into(
    cluster: &str,
    node: &NodeAccess,
    id: &str,
    dir: &Path,
    started: SystemTime,
) -> anyhow::Result<Manifest> {
    // The read lock desyncs the node from the cluster and pauses its applier (a Galera
    // node under FLUSH TABLES WITH READ LOCK is Donor/Desynced; docs/galera.md), so its
    // data does not move from here until the lock is released: the checksums below and
    // the files mariabackup copies describe the same state.
    let mut lock = node.connect().await?;
    lock.query_drop("FLUSH TABLES WITH READ LOCK")
        .await
        .with_context(|| format!("FLUSH TABLES WITH READ LOCK on node {} failed", node.name))?;
    let uuid: Option<(String, String)> = lock
        .query_first("SHOW GLOBAL STATUS LIKE 'wsrep_local_state_uuid'")
        .await?;
    let seqno: Option<(String, String)> = lock
        .query_first("SHOW GLOBAL STATUS LIKE 'wsrep_last_committed'")
        .await?;
    let locked_position = match (uuid, seqno) {
        (Some((_, uuid)), Some((_, seqno))) => Some(format!("{uuid}:{seqno}")),
        _ => None,
    };
    let gtid: Option<Option<String>> = lock.query_first("SELECT @@global.gtid_binlog_pos").await?;
    let gtid = gtid.flatten().filter(|g| !g.is_empty());
    let tables = table_checksums(&mut lock).await?;

    let credentials = credentials_file(node)?;
    let log_path = dir.join("mariabackup.log");
    let log = std::fs::File::create(&log_path)?;
    let work = dir.join("work");
    let stream_path = dir.join(STREAM_FILE);
    let mut command = Command::new(mariabackup_binary());
    command
        .arg(format!("--defaults-file={}", credentials.path().display()))
        .arg("--backup")
        .arg("--galera-info")
        // galley holds the read lock itself (above), for the whole copy.
        .arg("--no-lock")
        .arg("--stream=mbstream")
        .arg(format!("--target-dir={}", work.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    let version = mariabackup_version();
    let pumped = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let mut child = command
            .spawn()
            .context("cannot run mariabackup (install the mariadb-backup package)")?;
        let stdout = child.stdout.take().expect("piped");
        let pumped = pump(stdout, &stream_path);
        let status = child.wait()?;
        Ok((status, pumped))
    })
    .await??;
    drop(credentials);
    let unlock = lock.query_drop("UNLOCK TABLES").await;
    // The node stays Donor/Desynced until its applier has caught up with what arrived
    // during the lock; the caller lets clients back only once it is Synced.
    let resynced = if unlock.is_ok() {
        wait_synced(&mut lock, &node.name).await
    } else {
        Ok(())
    };
    let _ = lock.disconnect().await;
    let (status, pumped) = pumped;
    if !status.success() {
        bail!(
            "mariabackup failed ({status}) on node {}: {}",
            node.name,
            tail(&log_path, 8)
        );
    }
    unlock.context("UNLOCK TABLES failed")?;
    resynced?;
    let (scanned, stored_bytes, stream_sha256) = pumped?;
    let _ = std::fs::remove_dir_all(&work);
    let kept = |name: &str| {
        scanned
            .kept
            .get(name)
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
    };
    let galera = kept("xtrabackup_galera_info")
        .map(|text| parse_galera_info(&text))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let checkpoints = kept("xtrabackup_checkpoints")
        .ok_or_else(|| anyhow::anyhow!("the backup stream has no xtrabackup_checkpoints"))
        .and_then(|text| parse_checkpoints(&text).map_err(anyhow::Error::msg))?;
    let galera_position = galera.as_ref().map(|g| g.position());
    if galera_position.is_some() && locked_position.is_some() && galera_position != locked_position
    {
        bail!(
            "node {} moved during the backup: position {} under the lock, {} in xtrabackup_galera_info",
            node.name,
            locked_position.unwrap_or_default(),
            galera_position.unwrap_or_default()
        );
    }
    Ok(Manifest {
        id: id.to_owned(),
        cluster: cluster.to_owned(),
        node: node.name.clone(),
        kind: Kind::Full,
        parent: None,
        started_at: rfc3339(started),
        finished_at: rfc3339(SystemTime::now()),
        server_version: version,
        stored_bytes,
        data_bytes: scanned.payload_bytes,
        galera_position,
        locked_position,
        gtid: gtid.or(galera.and_then(|g| g.gtid)),
        from_lsn: Some(checkpoints.from_lsn),
        to_lsn: Some(checkpoints.to_lsn),
        stream_sha256,
        files: scanned.files,
        tables,
        verified: false,
        verified_at: None,
        verify_note: None,
    })
}

/// Polls wsrep_local_state_comment until the node is Synced again (at most 10 minutes).
async fn wait_synced(conn: &mut mysql_async::Conn, node: &str) -> anyhow::Result<()> {
    for _ in 0..6000 {
        let state: Option<(String, String)> = conn
            .query_first("SHOW GLOBAL STATUS LIKE 'wsrep_local_state_comment'")
            .await?;
        match state {
            Some((_, state)) if state == "Synced" => return Ok(()),
            None => return Ok(()),
            Some(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    bail!("node {node} was not Synced again within 10 minutes of the backup's end")
}

/// Reads mariabackup's stream: every byte through the scanner and into the zstd file,
/// hashed as written. Returns what the stream held, the stored size and its SHA-256.
fn pump(mut source: impl std::io::Read, path: &Path) -> anyhow::Result<(Scanned, u64, String)> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let hashed = HashingWriter {
        inner: std::io::BufWriter::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
        written: 0,
    };
    let mut encoder = zstd::Encoder::new(hashed, 3)?;
    let mut scanner = Scanner::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = source.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        scanner.feed(&buffer[..read])?;
        encoder.write_all(&buffer[..read])?;
    }
    let mut hashed = encoder.finish()?;
    hashed.inner.flush()?;
    hashed.inner.get_ref().sync_all()?;
    let scanned = scanner.finish()?;
    Ok((scanned, hashed.written, hex(&hashed.hasher.finalize())))
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        self.written += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The option file mariabackup reads: the node's my.cnf, then the login, in a file of
/// mode 0600 that is removed when the returned value drops. The password is never on a
/// command line.
fn credentials_file(node: &NodeAccess) -> anyhow::Result<tempfile::NamedTempFile> {
    let mut file = tempfile::Builder::new()
        .prefix("galley-backup-")
        .suffix(".cnf")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .tempfile()?;
    let text = format!(
        "!include {}\n[client]\nuser = {}\npassword = {}\nsocket = {}\n",
        node.config_file.display(),
        option_value(&node.user),
        option_value(&node.password),
        node.socket.display()
    );
    file.write_all(text.as_bytes())?;
    file.flush()?;
    Ok(file)
}

/// A value for a MariaDB option file, quoted, with `\` and `"` escaped.
fn option_value(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Every user table's row count and CHECKSUM TABLE, sorted by schema and name.
pub async fn table_checksums(conn: &mut mysql_async::Conn) -> anyhow::Result<Vec<TableChecksum>> {
    let names: Vec<(String, String)> = conn
        .query(
            "SELECT table_schema, table_name FROM information_schema.tables \
             WHERE table_type = 'BASE TABLE' AND table_schema NOT IN \
             ('mysql', 'information_schema', 'performance_schema', 'sys') \
             ORDER BY table_schema, table_name",
        )
        .await
        .context("cannot list the tables")?;
    let mut tables = Vec::with_capacity(names.len());
    for (schema, table) in names {
        let quoted = format!("{}.{}", quote_identifier(&schema), quote_identifier(&table));
        let checksum: Option<(String, Option<u64>)> = conn
            .query_first(format!("CHECKSUM TABLE {quoted}"))
            .await
            .with_context(|| format!("CHECKSUM TABLE {quoted} failed"))?;
        let rows: Option<u64> = conn
            .query_first(format!("SELECT COUNT(*) FROM {quoted}"))
            .await
            .with_context(|| format!("cannot count the rows of {quoted}"))?;
        tables.push(TableChecksum {
            schema,
            table,
            rows: rows.unwrap_or(0),
            checksum: checksum.and_then(|(_, c)| c),
        });
    }
    Ok(tables)
}

pub(crate) fn quote_identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

pub(crate) fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

fn mariabackup_version() -> String {
    Command::new(mariabackup_binary())
        .arg("--version")
        .output()
        .ok()
        .map(|out| {
            let text = String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout);
            text.lines().next().unwrap_or("").trim().to_owned()
        })
        .unwrap_or_default()
}

pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}
