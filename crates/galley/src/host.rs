//! `galley host ...`: the steps a deployment bundle runs on a host, against that host's
//! own agent (init and secure, bootstrap, join, rolling restart, wait until Synced),
//! through the same reconcile engine `galley up` uses. Hidden from `--help`: the
//! bundle's scripts call them.

use std::process::ExitCode;
use std::time::Duration;

use agent::api::NodeReport;
use anyhow::{bail, Context as _};
use local::{Cluster, Location};
use planner::{Action, Situation};
use reconcile::{Goal, Limits, SystemClock};
use spec::NodeSpec;
use tokio::time::Instant;

use crate::cluster::Progress;

#[derive(Debug, Clone, Copy, clap::Subcommand)]
pub enum HostStep {
    /// Wait until this node's agent answers (after it was started or restarted).
    WaitAgent,
    /// Bootstrap a new cluster from this node (init and secure its data dir first), or
    /// join a running Primary component; nothing when it is Synced already.
    Bootstrap,
    /// Join the running cluster and wait until Synced; nothing when it is Synced already.
    Join,
    /// Restart this node's mariadbd (new my.cnf) while every other node is Synced.
    Restart,
    /// Wait until this node is Synced and print its state.
    WaitSynced,
}

pub async fn run(
    config: &std::path::Path,
    node_name: &str,
    step: HostStep,
) -> anyhow::Result<ExitCode> {
    let location = Location::new("/var/lib/galley".into(), Some(config.to_path_buf()));
    let cluster = Cluster::load(&location, false)?;
    let node = cluster
        .spec
        .node(node_name)
        .with_context(|| {
            format!(
                "no node named `{node_name}`; nodes: {}",
                cluster.spec.node_names().join(", ")
            )
        })?
        .clone();
    let progress = Progress::new();
    let result = match step {
        HostStep::WaitAgent => wait_agent(&cluster, &node).await.map(|_| ()),
        HostStep::Bootstrap => bootstrap(&cluster, &node, &progress).await,
        HostStep::Join => join(&cluster, &node, &progress).await,
        HostStep::Restart => restart(&cluster, &node, &progress).await,
        HostStep::WaitSynced => wait_synced(&cluster, &node, &progress).await,
    };
    progress.finish();
    result?;
    if let HostStep::WaitSynced = step {
        println!("Synced");
    }
    Ok(ExitCode::SUCCESS)
}

async fn wait_agent(cluster: &Cluster, node: &NodeSpec) -> anyhow::Result<NodeReport> {
    let client = cluster.client(node);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client.status().await {
            Ok(report) if report.node == node.name => {
                println!("ok: the agent of {} answers", node.name);
                return Ok(report);
            }
            Ok(report) => bail!(
                "{}'s agent port {} is answered by the agent of node {}; fix the ports in galley.toml",
                node.name,
                node.agent_port,
                report.node
            ),
            Err(error) if Instant::now() > deadline => {
                bail!("the agent of {} does not answer after 30 s: {error}; see /var/log/galley/galley-agent.log", node.name)
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Watches the node until it is Synced (it runs, joining), showing its state.
pub(crate) async fn wait_synced(
    cluster: &Cluster,
    node: &NodeSpec,
    progress: &Progress,
) -> anyhow::Result<()> {
    let mut engine = cluster.engine();
    reconcile::wait_synced(
        &mut engine,
        &node.name,
        &Limits::default(),
        &SystemClock,
        |state| progress.step(format!("{}: {state}", node.name)),
    )
    .await?;
    Ok(())
}

/// The node's report when its mariadbd is stopped, so that a bootstrap or join step has
/// work to do; None once it is Synced (waiting for a running one to get there), so that
/// a second run of the step changes nothing.
async fn stopped_node(
    cluster: &Cluster,
    node: &NodeSpec,
    progress: &Progress,
) -> anyhow::Result<Option<NodeReport>> {
    let report = wait_agent(cluster, node).await?;
    if !reconcile::reported_facts(&report).synced() {
        if !report.process.running {
            return Ok(Some(report));
        }
        wait_synced(cluster, node, progress).await?;
    }
    println!("ok: {} is Synced", node.name);
    Ok(None)
}

/// Brings this node to Synced through the engine, acting on it alone.
async fn bring_node(
    cluster: &Cluster,
    node: &NodeSpec,
    progress: &Progress,
    inputs: reconcile::Inputs,
) -> anyhow::Result<()> {
    crate::cluster::bring(
        cluster,
        Goal::Synced(node.name.clone()),
        Some(node.name.clone()),
        inputs,
        progress,
    )
    .await
}

/// The planner's view of the cluster for this step, without acting.
async fn dry_plan(cluster: &Cluster, inputs: &reconcile::Inputs) -> anyhow::Result<planner::Plan> {
    let mut engine = cluster.engine();
    let round = engine
        .round(
            reconcile::Clock::now_ms(&SystemClock),
            &reconcile::RoundOptions::default(),
            &mut reconcile::NoRecorder(inputs.clone()),
        )
        .await
        .map_err(|error| anyhow::anyhow!(error))?;
    Ok(round.plan)
}

/// The first node's step: a new cluster from this node when no node has data, or a
/// join when a Primary component runs. A stopped cluster with data is left to
/// `galley recover`: a deployment does not choose which node bootstraps existing data.
async fn bootstrap(cluster: &Cluster, node: &NodeSpec, progress: &Progress) -> anyhow::Result<()> {
    if stopped_node(cluster, node, progress).await?.is_none() {
        return Ok(());
    }
    let inputs = cluster.command_inputs(true, &[])?;
    let plan = dry_plan(cluster, &inputs).await?;
    let change = match (plan.situation, plan.steps.first().map(|step| &step.action)) {
        // The cluster runs (the controller or an operator brought it back): join it.
        (Situation::Degraded | Situation::Healthy, _) => "joined the running cluster",
        (_, Some(Action::CreateCluster { node: first, .. })) if *first == node.name => {
            "bootstrapped the cluster"
        }
        (_, Some(Action::CreateCluster { node: first, .. })) => bail!(
            "cannot bootstrap {}: the new cluster starts from {first}, its most preferred node; run this step there",
            node.name
        ),
        _ => {
            if let Some(planner::Blocked::Waiting { reason, .. }) = &plan.blocked {
                bail!("cannot bootstrap {}: {reason}; start every agent (step 30) first", node.name);
            }
            bail!(
                "the cluster is stopped and already has data; galley deploy does not choose which node bootstraps existing data. \
                 Run `galley recover --config {} --yes`, which picks the most advanced node by the recovery safety rules",
                cluster.location.config.display()
            )
        }
    };
    bring_node(cluster, node, progress, inputs).await?;
    println!("changed: {} {change}", node.name);
    Ok(())
}

async fn join(cluster: &Cluster, node: &NodeSpec, progress: &Progress) -> anyhow::Result<()> {
    if stopped_node(cluster, node, progress).await?.is_none() {
        return Ok(());
    }
    let inputs = cluster.command_inputs(false, &[])?;
    let plan = dry_plan(cluster, &inputs).await?;
    if !matches!(plan.situation, Situation::Degraded | Situation::Healthy) {
        bail!(
            "no other node of {} is in a Primary component, so {} has nothing to join; run 40-bootstrap.sh on the first node first",
            cluster.spec.name,
            node.name
        );
    }
    let started = Instant::now();
    bring_node(cluster, node, progress, inputs).await?;
    println!(
        "changed: {} joined in {:.1} s",
        node.name,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The controller of a deployed cluster, on its own host: told through its API (with the
/// cluster token from this host's secrets file) that a node is stopped on purpose while
/// the rolling restart has it down, so that it does not heal the node meanwhile.
struct RemoteController {
    api: controller_api::ApiClient,
}

impl RemoteController {
    /// None without a `[controller]` in the spec.
    fn for_cluster(cluster: &Cluster) -> anyhow::Result<Option<RemoteController>> {
        if cluster.spec.controller.is_none() {
            return Ok(None);
        }
        let local = crate::manage_cli::local_controller(&cluster.location)?;
        let target = controller_api::Resolved {
            base_url: controller_api::normalize_url(&local.url)?,
            token: local.cluster_token,
            ca_cert: local.ca_cert.filter(|path| path.exists()),
        };
        Ok(Some(RemoteController {
            api: controller_api::ApiClient::new(&target)?,
        }))
    }
}

impl rolling::Intent for RemoteController {
    async fn set_desired(&self, node: &str, running: bool) -> Result<(), String> {
        match self.api.set_desired(node, running).await {
            Ok(()) => Ok(()),
            // A controller that is down cannot heal anything either: go on, and say so.
            Err(error @ controller_api::ApiError::Unreachable { .. }) => {
                println!(
                    "note: the controller was not told ({error}); it cannot act while it is down"
                );
                Ok(())
            }
            Err(error) => Err(format!("the controller refused: {error}")),
        }
    }
}

/// One node of a rolling restart, by `rolling::restart_one` (drained at the proxy,
/// stopped, started, Synced, undrained), only while the whole cluster is Synced. The
/// controller on its host is told the node is down on purpose meanwhile.
async fn restart(cluster: &Cluster, node: &NodeSpec, progress: &Progress) -> anyhow::Result<()> {
    wait_agent(cluster, node).await?;
    let members: Vec<rolling::Member> = cluster
        .nodes_by_priority()
        .into_iter()
        .map(|member| rolling::Member {
            name: member.name.clone(),
            agent: cluster.client(member),
        })
        .collect();
    let proxies: Vec<proxy::AdminClient> = cluster.proxy_admin().into_iter().collect();
    let options = crate::restart::options_for(&cluster.spec);
    let outcome = match RemoteController::for_cluster(cluster)? {
        Some(controller) => {
            rolling::restart_one(
                &node.name,
                &members,
                &proxies,
                &controller,
                &Lines,
                &options,
            )
            .await
        }
        None => {
            rolling::restart_one(
                &node.name,
                &members,
                &proxies,
                &rolling::NoController,
                &Lines,
                &options,
            )
            .await
        }
    };
    match outcome {
        Ok(_) => {}
        Err(rolling::RollingError::Failed {
            step: rolling::Step::Start,
            reason,
            ..
        }) => {
            let running = cluster
                .client(node)
                .status()
                .await
                .is_ok_and(|report| report.process.running);
            if !running {
                bail!("{} did not start again: {reason}", node.name);
            }
            wait_synced(cluster, node, progress).await?;
            for admin in &proxies {
                admin.undrain(&node.name).await.with_context(|| {
                    format!(
                        "cannot undrain {} at the proxy; run `galley undrain {}`",
                        node.name, node.name
                    )
                })?;
            }
        }
        Err(error) => return Err(error.into()),
    }
    println!("changed: {} restarted and Synced", node.name);
    Ok(())
}

/// Each step of the restart as a line (kept in the host's deploy log).
struct Lines;

impl rolling::Observer for Lines {
    fn event(&self, event: rolling::Event) {
        println!("ok: {event}");
    }
}
