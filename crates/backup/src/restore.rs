//! Restoring a backup into a fresh data directory (check the stored file's SHA-256 and
//! every file's, extract with mbstream, prepare with mariabackup), and verifying it: a
//! scratch mariadbd on a free 127.0.0.1 port over the restored data, whose tables must
//! hold exactly the rows and checksums recorded when the backup was taken.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use anyhow::{bail, Context as _};
use sha2::{Digest as _, Sha256};

use crate::manifest::{compare_tables, Manifest, Mismatch, STREAM_FILE};
use crate::stream::{hex, Scanner};
use crate::take::{connect_tcp, mariabackup_binary, rfc3339, table_checksums, tail};
use crate::target::{write_manifest, DirectoryTarget};

/// Restores backup `manifest` (stored in `backup_dir`) into `data_dir`, which must not
/// exist or be empty. Nothing is written into `data_dir` before the checks pass except
/// the extracted files; on any failure `data_dir` is left for the operator to remove.
pub async fn restore_into(
    backup_dir: &Path,
    manifest: &Manifest,
    data_dir: &Path,
) -> anyhow::Result<()> {
    if data_dir.exists() {
        let mut entries = std::fs::read_dir(data_dir)
            .with_context(|| format!("cannot read {}", data_dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} is not empty; a restore goes into a new or empty directory, nothing was changed",
                data_dir.display()
            );
        }
    } else {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
    }
    let stream = backup_dir.join(STREAM_FILE);
    let expected = manifest.clone();
    let target = data_dir.to_path_buf();
    tokio::task::spawn_blocking(move || extract(&stream, &expected, &target)).await??;
    let log = data_dir.join("galley-prepare.log");
    let output = Command::new(mariabackup_binary())
        .arg("--prepare")
        .arg(format!("--target-dir={}", data_dir.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .status()
        .context("cannot run mariabackup --prepare")?;
    if !output.success() {
        bail!("mariabackup --prepare failed ({output}): {}", tail(&log, 8));
    }
    Ok(())
}

/// One pass over the stored file: its SHA-256, zstd, the stream scanner (every file's
/// SHA-256) and mbstream -x into `data_dir`. Any difference from the manifest fails.
fn extract(stream: &Path, manifest: &Manifest, data_dir: &Path) -> anyhow::Result<()> {
    let file =
        std::fs::File::open(stream).with_context(|| format!("cannot open {}", stream.display()))?;
    let hashed = HashingReader {
        inner: std::io::BufReader::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
    };
    let mut decoder = zstd::Decoder::with_buffer(hashed)?;
    let mut child = Command::new("mbstream")
        .arg("-x")
        .arg("-C")
        .arg(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run mbstream (install the mariadb-backup package)")?;
    let mut input = child.stdin.take().expect("piped");
    let mut scanner = Scanner::new();
    let mut buffer = vec![0u8; 1 << 20];
    let pumped: anyhow::Result<()> = (|| {
        loop {
            let read = decoder.read(&mut buffer).with_context(|| {
                format!("{} is not a zstd stream or is damaged", stream.display())
            })?;
            if read == 0 {
                break;
            }
            scanner
                .feed(&buffer[..read])
                .with_context(|| format!("in {}", stream.display()))?;
            input
                .write_all(&buffer[..read])
                .context("mbstream -x stopped reading")?;
        }
        Ok(())
    })();
    drop(input);
    let output = child.wait_with_output()?;
    pumped?;
    if !output.status.success() {
        bail!(
            "mbstream -x failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let mut hashed = decoder.finish();
    // Hash whatever follows the zstd frame too: the whole file is what the manifest names.
    std::io::copy(&mut hashed, &mut std::io::sink())?;
    let stream_sha256 = hex(&hashed.hasher.finalize());
    if stream_sha256 != manifest.stream_sha256 {
        bail!(
            "{} fails its checksum: SHA-256 {stream_sha256}, the manifest records {}",
            stream.display(),
            manifest.stream_sha256
        );
    }
    let scanned = scanner
        .finish()
        .with_context(|| format!("in {}", stream.display()))?;
    for (path, sha) in &manifest.files {
        match scanned.files.get(path) {
            None => bail!("file {path} of the backup is missing from {}", stream.display()),
            Some(got) if got != sha => bail!(
                "file {path} of the backup fails its checksum: SHA-256 {got}, the manifest records {sha}"
            ),
            Some(_) => {}
        }
    }
    if let Some(extra) = scanned
        .files
        .keys()
        .find(|p| !manifest.files.contains_key(*p))
    {
        bail!(
            "{} holds file {extra}, which the manifest does not list",
            stream.display()
        );
    }
    Ok(())
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..read]);
        Ok(read)
    }
}

impl<R: std::io::BufRead> std::io::BufRead for HashingReader<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        if let Ok(buffer) = self.inner.fill_buf() {
            let amount = amount.min(buffer.len());
            self.hasher.update(&buffer[..amount]);
        }
        self.inner.consume(amount);
    }
}

/// What a verification found.
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: Manifest,
    pub mismatches: Vec<Mismatch>,
    pub tables_compared: usize,
    pub restore_seconds: f64,
    pub compare_seconds: f64,
}

/// Restores backup `id` into a scratch directory under `scratch_root`, starts a
/// mariadbd on it on a free 127.0.0.1 port (not part of any cluster: no wsrep
/// provider), compares every table with the manifest, and records the verdict in the
/// manifest: `verified` only when every recorded table matched and no other appeared.
pub async fn verify(
    target: &DirectoryTarget,
    id: &str,
    scratch_root: &Path,
    user: &str,
    password: &str,
) -> anyhow::Result<Verified> {
    let mut manifest = target.show(id)?;
    let backup_dir = target.backup_dir(id)?;
    let scratch = tempfile::Builder::new()
        .prefix("galley-verify-")
        .tempdir_in(scratch_root)
        .with_context(|| {
            format!(
                "cannot create a scratch directory in {}",
                scratch_root.display()
            )
        })?;
    let data_dir = scratch.path().join("data");
    let started = Instant::now();
    restore_into(&backup_dir, &manifest, &data_dir).await?;
    let restore_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let server = ScratchServer::start(scratch.path(), &data_dir).await?;
    let compared = async {
        let mut conn = server.connect(user, password).await?;
        let restored = table_checksums(&mut conn).await?;
        let _ = conn.disconnect().await;
        anyhow::Ok(restored)
    }
    .await;
    server.stop().await;
    let restored = compared?;
    let compare_seconds = started.elapsed().as_secs_f64();
    let mismatches = compare_tables(&manifest.tables, &restored);
    manifest.verified = mismatches.is_empty();
    manifest.verified_at = Some(rfc3339(SystemTime::now()));
    manifest.verify_note = Some(if mismatches.is_empty() {
        format!(
            "{} tables restored with the recorded row counts and checksums",
            manifest.tables.len()
        )
    } else {
        let shown: Vec<String> = mismatches.iter().take(5).map(|m| m.to_string()).collect();
        format!("{} differences: {}", mismatches.len(), shown.join("; "))
    });
    write_manifest(&backup_dir, &manifest)?;
    Ok(Verified {
        tables_compared: manifest.tables.len(),
        manifest,
        mismatches,
        restore_seconds,
        compare_seconds,
    })
}

/// A mariadbd over restored data, on 127.0.0.1 and a port the OS hands out.
struct ScratchServer {
    child: tokio::process::Child,
    port: u16,
    log: PathBuf,
}

impl ScratchServer {
    async fn start(dir: &Path, data_dir: &Path) -> anyhow::Result<ScratchServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = dir.join("mariadbd.err");
        let mut command = tokio::process::Command::new(mariadbd_binary());
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data_dir.display()))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", dir.join("mariadbd.pid").display()))
            .arg(format!("--log-error={}", log.display()))
            .arg("--innodb-buffer-pool-size=128M")
            .arg("--skip-slave-start")
            .arg("--skip-log-bin")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        // mariadbd refuses to run as root unless told to; the scratch data is root's.
        if nix::unistd::geteuid().is_root() {
            command.arg("--user=root");
        }
        let child = command.spawn().context("cannot run mariadbd")?;
        let mut server = ScratchServer { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "the scratch mariadbd exited ({status}): {}",
                    tail(&server.log, 8)
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(server);
            }
            if Instant::now() > deadline {
                bail!(
                    "the scratch mariadbd did not listen within 120 s: {}",
                    tail(&server.log, 8)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn connect(&self, user: &str, password: &str) -> anyhow::Result<mysql_async::Conn> {
        connect_tcp("127.0.0.1", self.port, user, password)
            .await
            .context("cannot log in to the scratch mariadbd with the backup's admin account")
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SIGTERM: mariadbd shuts down cleanly.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let waited = tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await;
        if waited.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

fn mariadbd_binary() -> PathBuf {
    for candidate in ["/usr/sbin/mariadbd", "/usr/bin/mariadbd"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    PathBuf::from("mariadbd")
}
