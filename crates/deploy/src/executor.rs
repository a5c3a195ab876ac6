//! `galley deploy`: the bundle's scripts run on the hosts over SSH. Every host is
//! checked first (reachable, passwordless sudo, OS, packages, disk, ports) and nothing
//! changes anywhere unless every check passes. Installs and configuration run on every
//! host at once; the bootstrap, the joins and rolling restarts one node at a time.
//! Each host's commands and output go to its own log file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{bail, Context as _};
use spec::ClusterSpec;

use crate::bundle::{inline_script, Bundle};
use crate::hosts::Host;
use crate::ssh::{Ssh, SshError};

/// What the operator asked for.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    pub accept_new_host_keys: bool,
    /// Connect and check every host, then stop before changing anything.
    pub dry_run: bool,
}

/// A deployment ready to run: the bundle, where its local copy and logs go, and the
/// files to copy.
#[derive(Debug)]
pub struct Deployment {
    pub spec: ClusterSpec,
    pub bundle: Bundle,
    /// Local state: `bundle/`, `logs/<host>.log`, `known_hosts`.
    pub state_dir: PathBuf,
    /// The galley binary to install on every host.
    pub binary: PathBuf,
    /// The operator's secrets file, copied to every host's `cluster.secrets_file`.
    pub secrets_file: PathBuf,
    pub options: DeployOptions,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Every change, as `host: what`.
    pub changes: Vec<String>,
    /// Each node and the state its agent reported at the end.
    pub nodes: Vec<(String, String)>,
    pub dry_run: bool,
}

struct Runner<'a> {
    deployment: &'a Deployment,
    ssh: Ssh,
    changes: Mutex<Vec<String>>,
    print: Mutex<()>,
}

impl Deployment {
    pub fn run(&self) -> anyhow::Result<Outcome> {
        let deploy = self
            .spec
            .deploy
            .as_ref()
            .context("galley.toml has no [deploy] section")?;
        std::fs::create_dir_all(self.state_dir.join("logs"))
            .with_context(|| format!("cannot create {}", self.state_dir.display()))?;
        let known_hosts = self.state_dir.join("known_hosts");
        if !known_hosts.exists() {
            std::fs::write(&known_hosts, "")
                .with_context(|| format!("cannot create {}", known_hosts.display()))?;
        }
        let local_bundle = self.state_dir.join("bundle");
        write_bundle(&self.bundle, &local_bundle)?;
        let runner = Runner {
            deployment: self,
            ssh: Ssh {
                user: deploy.ssh_user.clone(),
                port: deploy.ssh_port,
                key: deploy.ssh_key.clone(),
                known_hosts,
                accept_new_host_keys: self.options.accept_new_host_keys,
                connect_timeout_s: 5,
            },
            changes: Mutex::new(Vec::new()),
            print: Mutex::new(()),
        };
        let hosts = &self.bundle.hosts;

        // 1. Check everything before changing anything.
        let failures = runner.parallel(hosts, |host| runner.check(host));
        if !failures.is_empty() {
            bail!(
                "deploy stopped before changing anything:\n{}",
                failures.join("\n")
            );
        }
        if self.options.dry_run {
            return Ok(Outcome {
                changes: Vec::new(),
                nodes: Vec::new(),
                dry_run: true,
            });
        }
        // 2. Copy, install and configure everywhere at once.
        let failures = runner.parallel(hosts, |host| {
            runner.copy(host, &local_bundle)?;
            runner.step(host, "10-install.sh")?;
            runner.step(host, "20-configure.sh")?;
            runner.step(host, "30-start-agent.sh")
        });
        stop_on(&failures, "installing and configuring")?;
        // 3. Bootstrap, then the joins one at a time (safety rule 6).
        for host in hosts.iter().filter(|host| host.bootstrap) {
            runner.step(host, "40-bootstrap.sh")?;
        }
        for host in hosts
            .iter()
            .filter(|host| host.node.is_some() && !host.bootstrap)
        {
            runner.step(host, "50-join.sh")?;
        }
        // 4. Proxy and controller once the nodes are Synced.
        let failures = runner.parallel(hosts, |host| {
            runner.step(host, "60-start-proxy-controller.sh")
        });
        stop_on(&failures, "starting the proxy and controller")?;
        // 5. A changed my.cnf: one node at a time, each Synced before the next.
        for host in hosts.iter().filter(|host| host.node.is_some()) {
            runner.step(host, "70-rolling-restart.sh")?;
        }
        // 6. Verify.
        let mut nodes = Vec::new();
        for host in hosts {
            if let Some(node) = &host.node {
                let output = runner.remote(
                    host,
                    "verify",
                    &format!(
                        "sudo -n {} host wait-synced --config {} --node {}",
                        quote(&format!("{}/bin/galley", deploy.install_dir.display())),
                        crate::hosts::HOST_CONFIG,
                        quote(&node.name)
                    ),
                    b"",
                )?;
                let state = output.lines().last().unwrap_or("").trim().to_owned();
                nodes.push((node.name.clone(), state));
            }
        }
        let changes = runner.changes.into_inner().expect("no thread panicked");
        Ok(Outcome {
            changes,
            nodes,
            dry_run: false,
        })
    }
}

fn stop_on(failures: &[String], doing: &str) -> anyhow::Result<()> {
    if failures.is_empty() {
        return Ok(());
    }
    bail!("deploy stopped while {doing}:\n{}", failures.join("\n"))
}

impl Runner<'_> {
    fn say(&self, host: &Host, message: &str) {
        let _guard = self.print.lock();
        println!("{:<12} {message}", host.label);
        let _ = std::io::stdout().flush();
    }

    fn log(&self, host: &Host, text: &str) {
        let path = self
            .deployment
            .state_dir
            .join("logs")
            .join(format!("{}.log", host.label));
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = file.write_all(text.as_bytes());
        }
    }

    fn log_path(&self, host: &Host) -> PathBuf {
        self.deployment
            .state_dir
            .join("logs")
            .join(format!("{}.log", host.label))
    }

    /// Runs `work` for every host at once; returns one line per failed host.
    fn parallel<F>(&self, hosts: &[Host], work: F) -> Vec<String>
    where
        F: Fn(&Host) -> anyhow::Result<()> + Sync,
    {
        let results: Vec<(String, anyhow::Result<()>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = hosts
                .iter()
                .map(|host| {
                    let work = &work;
                    (host.label.clone(), scope.spawn(move || work(host)))
                })
                .collect();
            handles
                .into_iter()
                .map(|(label, handle)| {
                    (
                        label,
                        handle
                            .join()
                            .unwrap_or_else(|_| Err(anyhow::anyhow!("a worker thread panicked"))),
                    )
                })
                .collect()
        });
        results
            .into_iter()
            .filter_map(|(label, result)| result.err().map(|error| format!("  {label}: {error:#}")))
            .collect()
    }

    /// Runs a remote command, logs it, records `changed:` lines; fails on a non-zero exit
    /// with the command's own error lines.
    fn remote(
        &self,
        host: &Host,
        what: &str,
        command: &str,
        stdin: &[u8],
    ) -> anyhow::Result<String> {
        self.log(host, &format!("\n=== {what}: {command}\n"));
        let output = match self.ssh.run(&host.ssh_address, command, stdin) {
            Ok(output) => output,
            Err(error) => {
                self.log(host, &format!("ssh failed: {error}\n"));
                return Err(error.into());
            }
        };
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        self.log(host, &stdout);
        self.log(host, &stderr);
        for line in stdout.lines() {
            if let Some(change) = line.strip_prefix("changed: ") {
                self.changes
                    .lock()
                    .expect("no thread panicked")
                    .push(format!("{}: {change}", host.label));
                self.say(host, &format!("  changed: {change}"));
            }
        }
        if !output.status.success() {
            let errors: Vec<&str> = stderr
                .lines()
                .filter(|line| !line.trim().is_empty())
                .collect();
            let reason = errors
                .iter()
                .rev()
                .find(|line| line.starts_with("error: "))
                .map(|line| line.trim_start_matches("error: ").to_owned())
                .unwrap_or_else(|| {
                    errors
                        .last()
                        .copied()
                        .unwrap_or("no error message")
                        .to_owned()
                });
            bail!(
                "{what} failed: {reason} (log: {})",
                self.log_path(host).display()
            );
        }
        Ok(stdout)
    }

    fn check(&self, host: &Host) -> anyhow::Result<()> {
        self.say(host, &format!("connecting to {}", host.ssh_address));
        let output = self
            .ssh
            .run(&host.ssh_address, "sudo -n true", b"")
            .map_err(|error| {
                self.log(host, &format!("ssh failed: {error}\n"));
                match error {
                    SshError::Unreachable { .. } => anyhow::anyhow!("host unreachable: {error}"),
                    other => other.into(),
                }
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            self.log(host, &format!("sudo -n true: {stderr}\n"));
            let user = &self.ssh.user;
            if stderr.contains("password is required") {
                bail!("sudo asks {user} for a password on {}; galley needs passwordless sudo (a sudoers line `{user} ALL=(ALL) NOPASSWD: ALL`)", host.ssh_address);
            }
            bail!(
                "{user} cannot use sudo on {}: {}",
                host.ssh_address,
                stderr.trim()
            );
        }
        let script = inline_script(&self.deployment.bundle, host, "00-check.sh")
            .expect("every host has a check step");
        self.remote(host, "check", "sudo -n bash -s", script.as_bytes())?;
        self.say(host, "checked: OS, packages, disk, ports");
        Ok(())
    }

    /// Copies the host's bundle folder, the galley binary and the secrets file (each
    /// only when it differs from what the host has).
    fn copy(&self, host: &Host, local_bundle: &Path) -> anyhow::Result<()> {
        let deploy = self
            .deployment
            .spec
            .deploy
            .as_ref()
            .expect("checked in run");
        let install_dir = deploy.install_dir.display().to_string();
        let bundle_dir = format!("{install_dir}/bundle");
        let state_dir = format!("{install_dir}/state");
        let archive = Command::new("tar")
            .arg("-C")
            .arg(local_bundle.join("hosts").join(&host.label))
            .args(["-cf", "-", "."])
            .output()
            .context("cannot run tar")?;
        if !archive.status.success() {
            bail!("tar failed: {}", String::from_utf8_lossy(&archive.stderr));
        }
        let new = quote(&format!("{bundle_dir}.new"));
        let dir = quote(&bundle_dir);
        self.remote(
            host,
            "copy bundle",
            &format!("sudo -n sh -c \"rm -rf {new} && mkdir -p {new} && tar -xf - -C {new} && rm -rf {dir} && mv {new} {dir}\""),
            &archive.stdout,
        )?;
        let restart_all = format!(
            "mkdir -p {state} && touch {state}/restart-galley-agent {state}/restart-galley-proxy {state}/restart-galley-controller",
            state = quote(&state_dir)
        );
        let binary_target = format!("{install_dir}/bin/galley");
        let local_binary = sha256(&self.deployment.binary)?;
        let remote_binary = self.remote(
            host,
            "binary checksum",
            &format!(
                "sudo -n sh -c \"sha256sum {} 2>/dev/null || true\"",
                quote(&binary_target)
            ),
            b"",
        )?;
        if !remote_binary.starts_with(&local_binary) {
            let binary = std::fs::read(&self.deployment.binary)
                .with_context(|| format!("cannot read {}", self.deployment.binary.display()))?;
            let target = quote(&binary_target);
            let upload = quote(&format!("{binary_target}.upload"));
            self.remote(
                host,
                "copy galley",
                &format!("sudo -n sh -c \"mkdir -p {bin} && cat > {upload} && chmod 755 {upload} && mv -f {upload} {target} && {restart_all} && echo 'changed: installed {binary_target}'\"",
                    bin = quote(&format!("{install_dir}/bin"))),
                &binary,
            )?;
        }
        let secrets_target = self.deployment.spec.secrets_file.display().to_string();
        let local_secrets = sha256(&self.deployment.secrets_file)?;
        let remote_secrets = self.remote(
            host,
            "secrets checksum",
            &format!(
                "sudo -n sh -c \"sha256sum {} 2>/dev/null || true\"",
                quote(&secrets_target)
            ),
            b"",
        )?;
        if !remote_secrets.starts_with(&local_secrets) {
            let secrets = std::fs::read(&self.deployment.secrets_file).with_context(|| {
                format!("cannot read {}", self.deployment.secrets_file.display())
            })?;
            // On stdin, never on a command line; created 0600 before any byte is written.
            self.remote(
                host,
                "copy secrets",
                &format!("sudo -n sh -c \"umask 077 && mkdir -p {parent} && cat > {target}.upload && chmod 600 {target}.upload && mv -f {target}.upload {target} && {restart_all} && echo 'changed: installed the secrets file {secrets_target}'\"",
                    parent = quote(&Path::new(&secrets_target).parent().map(|p| p.display().to_string()).unwrap_or_else(|| "/".to_owned())),
                    target = quote(&secrets_target)),
                &secrets,
            )?;
        }
        self.say(host, "bundle copied; binary and secrets in place");
        Ok(())
    }

    fn step(&self, host: &Host, step: &str) -> anyhow::Result<()> {
        let deploy = self
            .deployment
            .spec
            .deploy
            .as_ref()
            .expect("checked in run");
        let path = format!("{}/bundle/{step}", deploy.install_dir.display());
        if self
            .deployment
            .bundle
            .file(&format!("hosts/{}/{step}", host.label))
            .is_none()
        {
            return Ok(());
        }
        self.say(host, step);
        self.remote(host, step, &format!("sudo -n bash {}", quote(&path)), b"")
            .map(|_| ())
            .with_context(|| format!("on {} ({})", host.label, host.ssh_address))
    }
}

fn sha256(path: &Path) -> anyhow::Result<String> {
    let output = Command::new("sha256sum")
        .arg(path)
        .output()
        .context("cannot run sha256sum")?;
    if !output.status.success() {
        bail!(
            "cannot read {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned())
}

/// `value` in single quotes for a POSIX shell (inside a double-quoted `sh -c` string the
/// paths here never hold `"`, `$` or `\``: the spec refuses quotes and control characters).
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// Writes the bundle into `dir` (replacing what was there), with each file's mode.
pub fn write_bundle(bundle: &Bundle, dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    for file in &bundle.files {
        let path = dir.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, file.mode);
        let mut handle = options
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        handle.write_all(file.contents.as_bytes())?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode))?;
    }
    Ok(())
}

/// The summary printed after a run.
pub fn summary(spec: &ClusterSpec, outcome: &Outcome) -> String {
    let mut out = String::new();
    if outcome.dry_run {
        out.push_str("Dry run: every host passed its checks; nothing was changed.\n");
        return out;
    }
    if outcome.changes.is_empty() {
        out.push_str("Nothing changed: every host already matches galley.toml.\n");
    } else {
        writeln!(out, "{} change(s) made.", outcome.changes.len()).expect("String");
    }
    for (node, state) in &outcome.nodes {
        writeln!(out, "  {node:<10} {state}").expect("String");
    }
    if let Some(proxy) = &spec.proxy {
        writeln!(
            out,
            "Applications connect to the proxy: writer {}, reader {}",
            spec::host_port(&proxy.address, proxy.writer_port),
            spec::host_port(&proxy.address, proxy.reader_port)
        )
        .expect("String");
    }
    if let Some(controller) = &spec.controller {
        writeln!(
            out,
            "Console: http://{}/",
            spec::host_port(&controller.address, controller.port)
        )
        .expect("String");
    }
    out
}
