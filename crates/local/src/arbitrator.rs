//! The spec's arbitrators on this machine: `garbd` (Debian's galera-arbitrator-4) as a
//! plain daemon that `galley up` starts once the data nodes are Synced and `galley down`
//! stops first (docs/arbitrator.md).
//!
//! garbd has no data and no agent: it is started with the group's name and address and
//! its own listen address and segment ([`spec::ArbitratorSpec::garbd_args`]), none of
//! them secret, and judged only by the data nodes' view, which counts it once it joined.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context as _};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use spec::ArbitratorSpec;

use crate::daemon::{tail, wait_until_ready};
use crate::Cluster;

/// Finds `garbd` on PATH or in the usual directories.
pub fn locate_garbd() -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from));
    dirs.iter()
        .map(|dir| dir.join("garbd"))
        .find(|candidate| candidate.is_file())
        .with_context(|| {
            format!(
                "the spec has an [[arbitrator]], but garbd is not installed on this host; install it with: apt-get install {}",
                spec::GARBD_PACKAGE
            )
        })
}

/// Where garbd's own output (what it prints before its log is open) goes.
pub fn output_file(arbitrator: &ArbitratorSpec) -> PathBuf {
    arbitrator.log_dir.join("garbd.out")
}

/// The pid of a live garbd for this arbitrator, if any: its pid file names a process
/// that is garbd and was started with this arbitrator's name and group.
pub fn running_pid(spec: &spec::ClusterSpec, arbitrator: &ArbitratorSpec) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(arbitrator.pid_file())
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|byte| *byte == 0).collect();
    let has = |flag: &str, value: &str| {
        args.windows(2)
            .any(|pair| pair[0] == flag.as_bytes() && pair[1] == value.as_bytes())
    };
    (comm.trim() == "garbd" && has("--name", &arbitrator.name) && has("--group", &spec.name))
        .then_some(pid)
}

/// The largest `wsrep_cluster_size` a running data node reports, through its agent.
async fn largest_view(cluster: &Cluster) -> i64 {
    let mut largest = 0;
    for node in &cluster.spec.nodes {
        if let Ok(report) = cluster.client(node).status().await {
            let size = report.wsrep.as_ref().map_or(0, |wsrep| wsrep.cluster_size);
            largest = largest.max(size);
        }
    }
    largest
}

/// The Primary component's member names, read over SQL on the first data node that
/// answers as Synced; None when none does.
pub async fn primary_members(cluster: &Cluster) -> Option<Vec<String>> {
    let account = controller::sql_observe::SqlAccount {
        user: cluster.secrets.admin_user().to_owned(),
        password: cluster.secrets.admin_password.clone(),
    };
    for node in &cluster.spec.nodes {
        let synced = cluster
            .client(node)
            .status()
            .await
            .is_ok_and(|report| report.is_synced());
        if !synced {
            continue;
        }
        let members =
            controller::sql_observe::primary_members(&node.address, node.client_port, &account)
                .await;
        if let Ok(members) = members {
            return Some(members);
        }
    }
    None
}

/// Starts every arbitrator of the spec that does not run yet, restarts one that runs
/// outside the data nodes' Primary component, and waits until the data nodes' view
/// counts all of them. Call it once the data nodes are Synced: garbd joins an existing
/// Primary component and cannot start a cluster by itself, and a garbd that outlived
/// every data node keeps a group of its own that a bootstrapped node never merges with
/// (docs/arbitrator.md, "garbd alone").
pub async fn ensure_arbitrators(cluster: &Cluster) -> anyhow::Result<()> {
    let spec = &cluster.spec;
    if spec.arbitrators.is_empty() {
        return Ok(());
    }
    let garbd = locate_garbd()?;
    let members = primary_members(cluster).await;
    let mut started = Vec::new();
    for arbitrator in &spec.arbitrators {
        if running_pid(spec, arbitrator).is_some() {
            let outside = members
                .as_ref()
                .is_some_and(|members| !members.contains(&arbitrator.name));
            if !outside {
                continue;
            }
            stop_arbitrator(spec, arbitrator).await;
        }
        started.push((arbitrator, spawn_garbd(&garbd, spec, arbitrator)?));
    }
    let whole = spec.voting_members() as i64;
    for (arbitrator, mut child) in started {
        let output = output_file(arbitrator);
        let who = format!("garbd of arbitrator {}", arbitrator.name);
        let joined = || async { largest_view(cluster).await >= whole };
        let outcome = wait_until_ready(
            &mut child,
            &output,
            &who,
            600,
            "did not join the data nodes' view within 30 s",
            joined,
        )
        .await;
        if let Err(error) = outcome {
            bail!(
                "{error}\nits log {} ends with:\n{}",
                arbitrator.log_file().display(),
                tail(&arbitrator.log_file(), 6)
            );
        }
    }
    Ok(())
}

/// Starts garbd in its own process group (it outlives this command and ignores its
/// Ctrl-C), writes its pid file, and returns the child.
fn spawn_garbd(
    garbd: &Path,
    spec: &spec::ClusterSpec,
    arbitrator: &ArbitratorSpec,
) -> anyhow::Result<std::process::Child> {
    for dir in [&arbitrator.log_dir, &arbitrator.run_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let output_path = output_file(arbitrator);
    let output = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&output_path)
        .with_context(|| format!("cannot open {}", output_path.display()))?;
    let child = std::process::Command::new(garbd)
        .args(arbitrator.garbd_args(spec))
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", garbd.display()))?;
    std::fs::write(arbitrator.pid_file(), format!("{}\n", child.id()))
        .with_context(|| format!("cannot write {}", arbitrator.pid_file().display()))?;
    Ok(child)
}

/// Stops every running arbitrator (SIGTERM: garbd leaves the group gracefully) and
/// waits for each. `galley down` calls it before it stops the data nodes, so that the
/// last data node to leave is the last member of the Primary component and is marked
/// safe_to_bootstrap (with garbd still there, garbd would be the last). Returns the
/// names of those that ran.
pub async fn stop_arbitrators(cluster: &Cluster) -> anyhow::Result<Vec<String>> {
    let mut stopped = Vec::new();
    for arbitrator in &cluster.spec.arbitrators {
        if stop_arbitrator(&cluster.spec, arbitrator).await {
            stopped.push(arbitrator.name.clone());
        }
    }
    Ok(stopped)
}

/// Stops one arbitrator's garbd if it runs; returns whether it did.
async fn stop_arbitrator(spec: &spec::ClusterSpec, arbitrator: &ArbitratorSpec) -> bool {
    let Some(pid) = running_pid(spec, arbitrator) else {
        return false;
    };
    let pid = Pid::from_raw(pid);
    // A garbd that exited meanwhile is what this wants: the loop below sees it gone.
    let _ = kill(pid, Signal::SIGTERM);
    let mut gone = false;
    for _ in 0..200 {
        if running_pid(spec, arbitrator).is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !gone {
        let _ = kill(pid, Signal::SIGKILL);
    }
    let _ = std::fs::remove_file(arbitrator.pid_file());
    true
}
