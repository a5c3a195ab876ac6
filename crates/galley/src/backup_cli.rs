//! `galley backup now|list|show|delete|verify` and `galley restore`: wiring of the
//! backup crate to the cluster (node choice from the agents and the proxy, the proxy
//! drain around a backup) and the output. docs/backup.md.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use local::{Cluster, Location};

use crate::Target;

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(subcommand)]
    command: BackupCommand,
}

#[derive(Debug, Args, Clone)]
struct Where {
    #[command(flatten)]
    cluster: Target,
    /// Where backups are (default: [backup] target in galley.toml): an absolute directory.
    #[arg(long, value_name = "DIR")]
    target: Option<String>,
}

#[derive(Debug, Subcommand)]
enum BackupCommand {
    /// Take a full backup now, from a Synced node that is not the proxy's writer.
    ///
    /// The node is drained at the proxy for the backup's duration and held under a read
    /// lock (Galera desyncs it, so the cluster does not wait for it); every user table's
    /// row count and checksum are recorded under that lock, and mariabackup's stream is
    /// compressed with zstd and hashed per file into the target.
    Now {
        #[command(flatten)]
        place: Where,
        /// Take it from this node instead of galley's choice.
        #[arg(long, value_name = "NODE")]
        node: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List the backups in the target, oldest first.
    List {
        #[command(flatten)]
        place: Where,
        #[arg(long)]
        json: bool,
    },
    /// Show one backup's manifest.
    Show {
        id: String,
        #[command(flatten)]
        place: Where,
        #[arg(long)]
        json: bool,
    },
    /// Delete one backup (refused while an incremental backup names it as its parent).
    Delete {
        id: String,
        #[command(flatten)]
        place: Where,
        /// Delete without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Prove a backup by restoring it: into a scratch mariadbd on a free 127.0.0.1 port,
    /// compare every table's rows and checksum with those recorded at backup time.
    ///
    /// Marks the manifest verified only when every table matched. Exit code 4 when the
    /// data differs.
    Verify {
        id: String,
        #[command(flatten)]
        place: Where,
        /// Where the scratch data dir goes (needs the backup's uncompressed size).
        #[arg(long, value_name = "DIR")]
        scratch_dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup's id (`galley backup list`).
    id: String,
    #[command(flatten)]
    place: Where,
    /// A new (or empty) data directory to restore into, prepared and ready for a
    /// mariadbd to start on. Nothing of the running cluster is touched.
    #[arg(long, value_name = "DIR")]
    into: PathBuf,
}

fn target_of(place: &Where, cluster: Option<&Cluster>) -> anyhow::Result<backup::DirectoryTarget> {
    let target = match (&place.target, cluster.and_then(|c| c.spec.backup.as_ref())) {
        (Some(text), _) => spec::BackupTarget::parse(text)
            .map_err(|message| anyhow::anyhow!("--target: {message}"))?,
        (None, Some(section)) => section.target.clone(),
        (None, None) => bail!(
            "no backup target: add `[backup] target = \"/var/backups/galley\"` to galley.toml or pass --target DIR"
        ),
    };
    match target {
        spec::BackupTarget::Directory(path) => Ok(backup::DirectoryTarget::new(&path)),
        spec::BackupTarget::S3 { .. } => bail!(
            "S3 targets ({target}) are not built yet; use a directory target (docs/backup.md)"
        ),
    }
}

fn load(place: &Where) -> anyhow::Result<Cluster> {
    Cluster::load(&Location::from(place.cluster.clone()), true)
}

pub async fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        BackupCommand::Now { place, node, json } => now(&place, node.as_deref(), json).await,
        BackupCommand::List { place, json } => {
            let cluster = load(&place).ok();
            let manifests = target_of(&place, cluster.as_ref())?.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&manifests)?);
            } else if manifests.is_empty() {
                println!("no backups");
            } else {
                println!(
                    "{:<28} {:<8} {:<6} {:>10} {:<44} verified",
                    "ID", "NODE", "KIND", "SIZE", "POSITION"
                );
                for m in &manifests {
                    println!(
                        "{:<28} {:<8} {:<6} {:>10} {:<44} {}",
                        m.id,
                        m.node,
                        format!("{:?}", m.kind).to_lowercase(),
                        human_bytes(m.stored_bytes),
                        m.galera_position.as_deref().unwrap_or("-"),
                        if m.verified { "yes" } else { "no" }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::Show { id, place, json } => {
            let cluster = load(&place).ok();
            let manifest = target_of(&place, cluster.as_ref())?.show(&id)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&manifest)?);
            } else {
                print_manifest(&manifest);
            }
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::Delete { id, place, yes } => {
            let cluster = load(&place).ok();
            let target = target_of(&place, cluster.as_ref())?;
            target.show(&id)?;
            if !yes {
                bail!("deleting backup {id} cannot be undone; run again with --yes");
            }
            target.delete(&id)?;
            println!("deleted backup {id}");
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::Verify {
            id,
            place,
            scratch_dir,
            json,
        } => {
            let cluster = load(&place)?;
            let target = target_of(&place, Some(&cluster))?;
            let scratch = scratch_dir.unwrap_or_else(std::env::temp_dir);
            let verified = backup::verify(
                &target,
                &id,
                &scratch,
                cluster.secrets.admin_user(),
                &cluster.secrets.admin_password,
            )
            .await?;
            if json {
                let mismatches: Vec<String> =
                    verified.mismatches.iter().map(|m| m.to_string()).collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "id": id,
                        "verified": verified.manifest.verified,
                        "tables_compared": verified.tables_compared,
                        "mismatches": mismatches,
                        "restore_seconds": verified.restore_seconds,
                        "compare_seconds": verified.compare_seconds,
                    }))?
                );
            } else {
                for mismatch in &verified.mismatches {
                    println!("mismatch: {mismatch}");
                }
                println!(
                    "backup {id}: {} ({} tables; restore {:.1} s, compare {:.1} s)",
                    if verified.manifest.verified {
                        "verified, the restored data matches"
                    } else {
                        "NOT verified, the restored data differs"
                    },
                    verified.tables_compared,
                    verified.restore_seconds,
                    verified.compare_seconds
                );
            }
            Ok(if verified.manifest.verified {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(4)
            })
        }
    }
}

async fn now(place: &Where, requested: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let cluster = load(place)?;
    cluster.require_managed("back up")?;
    let target = target_of(place, Some(&cluster))?;
    let proxy = cluster.proxy_admin();
    let writer = match &proxy {
        Some(admin) => admin.status().await.ok().and_then(|status| status.writer),
        None => None,
    }
    .or_else(|| cluster.nodes_by_priority().first().map(|n| n.name.clone()));
    let mut candidates = Vec::new();
    for node in &cluster.spec.nodes {
        let synced =
            matches!(cluster.client(node).status().await, Ok(report) if report.is_synced());
        candidates.push(backup::Candidate {
            name: node.name.clone(),
            priority: node.priority,
            synced,
        });
    }
    let choice = backup::choose_node(&candidates, writer.as_deref(), requested)
        .map_err(anyhow::Error::msg)?;
    if let Some(warning) = &choice.warning {
        eprintln!("warning: {warning}");
    }
    let node = cluster
        .spec
        .node(&choice.node)
        .expect("the chooser picks a node of the spec");
    // The node is desynced and frozen while the backup runs: the proxy must send it no
    // clients (docs/backup.md). Drain it there first, undrain it whatever happens.
    if let Some(admin) = &proxy {
        admin.drain(&node.name).await.with_context(|| {
            format!("cannot drain {} at the proxy before the backup", node.name)
        })?;
    }
    eprintln!(
        "backing up node {} into {} (writer: {})",
        node.name,
        target.root.display(),
        writer.as_deref().unwrap_or("none")
    );
    let access = backup::NodeAccess::for_node(node, &cluster.secrets);
    let taken = backup::take_full(&cluster.spec.name, &access, &target).await;
    if let Some(admin) = &proxy {
        if let Err(error) = admin.undrain(&node.name).await {
            eprintln!(
                "warning: cannot undrain {} at the proxy: {error}; run `galley undrain {}`",
                node.name, node.name
            );
        }
    }
    let manifest = taken?;
    if json {
        println!("{}", serde_json::to_string_pretty(&manifest)?);
    } else {
        println!(
            "backup {} of node {}: {} stored ({} of data), position {}, {} tables recorded",
            manifest.id,
            manifest.node,
            human_bytes(manifest.stored_bytes),
            human_bytes(manifest.data_bytes),
            manifest.galera_position.as_deref().unwrap_or("unknown"),
            manifest.tables.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let cluster = load(&args.place).ok();
    let target = target_of(&args.place, cluster.as_ref())?;
    let manifest = target.show(&args.id)?;
    let data_dir = absolute(&args.into)?;
    backup::restore_into(&target.backup_dir(&args.id)?, &manifest, &data_dir).await?;
    println!(
        "backup {} restored and prepared in {} (position {}); start a mariadbd with --datadir={} to use it",
        manifest.id,
        data_dir.display(),
        manifest.galera_position.as_deref().unwrap_or("unknown"),
        data_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}

fn print_manifest(m: &backup::Manifest) {
    println!("id:        {}", m.id);
    println!("cluster:   {}", m.cluster);
    println!("node:      {}", m.node);
    println!("kind:      {:?}", m.kind);
    println!("started:   {}", m.started_at);
    println!("finished:  {}", m.finished_at);
    println!("stored:    {}", human_bytes(m.stored_bytes));
    println!("data:      {}", human_bytes(m.data_bytes));
    println!("position:  {}", m.galera_position.as_deref().unwrap_or("-"));
    println!("gtid:      {}", m.gtid.as_deref().unwrap_or("-"));
    println!("lsn:       {:?}..{:?}", m.from_lsn, m.to_lsn);
    println!("files:     {}", m.files.len());
    println!("tables:    {}", m.tables.len());
    println!(
        "verified:  {}{}",
        if m.verified { "yes" } else { "no" },
        m.verify_note
            .as_deref()
            .map(|note| format!(" ({note})"))
            .unwrap_or_default()
    );
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
