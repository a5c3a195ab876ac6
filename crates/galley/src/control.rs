//! The controller's commands: `galley controller` (the daemon), `galley recover` (the
//! plan with its evidence, run on confirmation) and `galley events` (the history).
//! Starting and stopping the local controller daemon for `up` and `down` is in
//! `local::controller_daemon`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use local::controller_daemon::{console_url, pid_file, running_pid, settings};
use local::{Cluster, Location};
use planner::{AgentState, Blocked, Plan};
use serde_json::json;

/// Binds the API's port, with TLS when the spec configures it.
async fn bind_api(settings: &spec::ControllerSpec) -> anyhow::Result<controller::api::ApiListener> {
    let address = spec::host_port(&settings.address, settings.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| {
            let owner = agent::ports::owner_of_port(settings.port)
                .map(|owner| format!(" (in use by {owner})"))
                .unwrap_or_default();
            format!(
                "cannot listen on {address} for the controller's API{owner}; set [controller] port"
            )
        })?;
    Ok(match &settings.tls {
        None => controller::api::ApiListener::Plain(listener),
        Some(files) => {
            let config = controller::api::tls::server_config(&files.cert, &files.key).context(
                "cannot set up TLS for the controller's API ([controller] tls_cert, tls_key)",
            )?;
            controller::api::ApiListener::Tls(controller::api::tls::TlsListener::new(
                listener, config,
            )?)
        }
    })
}

/// Gives the console's `admin` the password from the secrets file, unless the store
/// already has one (set earlier, or changed with --set-admin-password).
fn seed_console_admin(cluster: &Cluster, settings: &spec::ControllerSpec) -> anyhow::Result<()> {
    let store = store::Store::open(&controller::store_path(settings))?;
    if store
        .console_user_hash(controller::api::auth::ADMIN_USER)?
        .is_some()
    {
        return Ok(());
    }
    match &cluster.secrets.console_admin_password {
        Some(password) => {
            store.set_console_user(
                controller::api::auth::ADMIN_USER,
                &controller::api::auth::hash_password(password),
                controller::now_ms(),
            )?;
            tracing::info!(
                "console user admin created with the password in {}",
                cluster.spec.secrets_file.display()
            );
        }
        None => tracing::warn!(
            "the console has no admin password yet: set one with `galley controller --config ... --set-admin-password` (reads it from stdin)"
        ),
    }
    Ok(())
}

/// `galley controller --set-admin-password`: reads the console admin's new password
/// from stdin (never from the command line) and stores its hash.
pub fn set_admin_password(config: &Path, dir: &Path) -> anyhow::Result<ExitCode> {
    let location = Location::new(dir.to_path_buf(), Some(config.to_path_buf()));
    let cluster = Cluster::load(&location, false)?;
    let settings = settings(&cluster);
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("cannot read the new password from stdin")?;
    let password = password.trim_end_matches(['\r', '\n']);
    let store = store::Store::open(&controller::store_path(&settings))?;
    let ended = controller::api::auth::set_console_password(
        &store,
        controller::api::auth::ADMIN_USER,
        password,
        controller::now_ms(),
    )
    .context("the console admin password was not changed")?;
    println!(
        "The console admin password is set; {} admin session(s) ended and {} API token(s) made by admin revoked.",
        ended.sessions, ended.tokens
    );
    Ok(ExitCode::SUCCESS)
}

/// `galley controller`: observe, record, plan and heal until SIGINT or SIGTERM, and
/// serve the REST API and console on `[controller] address:port` beside it.
pub async fn run_controller(
    config: &Path,
    dir: &Path,
    logging: &crate::daemons::Logging,
) -> anyhow::Result<ExitCode> {
    use tokio::signal::unix::{signal, SignalKind};
    crate::daemons::init_logging(logging.log_format);
    let location = Location::new(dir.to_path_buf(), Some(config.to_path_buf()));
    let cluster = Cluster::load(&location, false)?;
    let settings = settings(&cluster);
    std::fs::create_dir_all(&settings.state_dir)
        .with_context(|| format!("cannot create {}", settings.state_dir.display()))?;
    let pid_path = pid_file(&settings);
    if let Some(pid) = running_pid(&settings) {
        bail!(
            "a controller already runs for this cluster (pid {pid}, {})",
            pid_path.display()
        );
    }
    let listener = bind_api(&settings).await?;
    std::fs::write(&pid_path, std::process::id().to_string())
        .with_context(|| format!("cannot write {}", pid_path.display()))?;
    let options = controller::Options {
        owner: format!("controller:{}", std::process::id()),
        approve_all: false,
        force: false,
        rebuild: Vec::new(),
    };
    let controller = controller::Controller::new(
        cluster.spec.clone(),
        settings.clone(),
        &cluster.secrets.cluster_token,
        options,
    )?;
    tracing::info!(cluster = %cluster.spec.name, history = %controller::store_path(&settings).display(), api = %console_url(&settings), "controller running");
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        let _ = stop.send(true);
    });
    let wait_for_stop = |mut stopping: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    // The API starts beside the first tick, not before it: hashing the console
    // password takes a noticeable time, and the first observation should not wait for
    // it. Connections that arrive meanwhile wait in the listener's backlog.
    let api = {
        let observations = controller.observations();
        let settings = settings.clone();
        let shutdown = wait_for_stop(stopping.clone());
        let serve = async move {
            let seeding = (cluster.clone(), settings.clone());
            tokio::task::spawn_blocking(move || seed_console_admin(&seeding.0, &seeding.1))
                .await
                .context("the console admin password task failed")??;
            let api_state = controller::api::ApiState::new(
                cluster.spec.clone(),
                settings.clone(),
                controller::api::ApiSecrets {
                    cluster_token: cluster.secrets.cluster_token.clone(),
                    admin_user: cluster.secrets.admin_user().to_owned(),
                    admin_password: cluster.secrets.admin_password.clone(),
                },
                observations,
                settings.tls.is_some(),
            )?;
            controller::api::serve(listener, api_state, shutdown)
                .await
                .context("the API server failed")
        };
        tokio::spawn(async move {
            // Logged here, once: the tick loop goes on without the API.
            if let Err(error) = serve.await {
                tracing::error!("the REST API and console are not served: {error:#}");
            }
        })
    };
    controller.run(wait_for_stop(stopping)).await;
    if let Err(error) = api.await {
        tracing::error!("the API server panicked: {error}");
    }
    let _ = std::fs::remove_file(&pid_path);
    tracing::info!("controller stopped");
    Ok(ExitCode::SUCCESS)
}

/// `galley recover`: the plan and its evidence; with `--yes`, run it (or approve it for
/// the running controller).
pub async fn recover(
    location: &Location,
    yes: bool,
    force: bool,
    rebuild: &[String],
    json_output: bool,
) -> anyhow::Result<ExitCode> {
    for name in rebuild {
        if cluster_node_missing(location, name) {
            bail!("no node named `{name}` to rebuild");
        }
    }
    // Before the secrets: a host other than the controller's may well not have them.
    if let Some(address) = spec::load(&location.config)
        .ok()
        .and_then(|loaded| loaded.spec.controller)
        .map(|controller| controller.address)
    {
        if !address_is_here(&address) {
            bail!(
                "the controller's history (its high-water marks and its lease) is kept on its own host, {address} (controller.address), and this host is not that one: a plan made here would not know how far the cluster got, and could act beside the controller. Run `galley recover` on {address}"
            );
        }
    }
    let cluster = Cluster::load(location, !json_output)?;
    let settings = settings(&cluster);
    let owner = format!("recover:{}", std::process::id());
    let observer = controller::Controller::new(
        cluster.spec.clone(),
        settings.clone(),
        &cluster.secrets.cluster_token,
        controller::Options {
            owner: owner.clone(),
            approve_all: false,
            force,
            rebuild: rebuild.to_vec(),
        },
    )?;
    // A dry run must not act: take no lease by observing through a throwaway owner
    // that never acts. The controller's own tick needs the lease to act, so a plan
    // is only printed here.
    let report = dry_observation(&observer).await?;
    if json_output {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "evidence": controller::evidence(&report.0),
                "plan": report.1,
            }))?
        );
    } else {
        print_plan(&report.0, &report.1);
    }
    if !yes {
        if !json_output && !report.1.steps.is_empty() {
            println!(
                "\nNothing was changed. Run `galley recover --yes` to carry out this plan{}.",
                if force { " (with --force)" } else { "" }
            );
        }
        return Ok(if report.1.blocked.is_some() && report.1.steps.is_empty() {
            ExitCode::from(3)
        } else {
            ExitCode::SUCCESS
        });
    }
    if let Some(pid) = running_pid(&settings) {
        // The controller acts; approve what it waits for and let it run the plan.
        let store = store::Store::open(&controller::store_path(&settings))?;
        let now = controller::now_ms();
        for step in &report.1.steps {
            store.approve(&step.action.key(), force, now)?;
        }
        if force {
            store.approve("force", true, now)?;
        }
        for node in rebuild {
            store.approve(&format!("rebuild {node}"), force, now)?;
        }
        println!("Approved for the running controller (pid {pid}); follow it with `galley events` and `galley status`.");
        return Ok(ExitCode::SUCCESS);
    }
    let actor = controller::Controller::new(
        cluster.spec.clone(),
        settings,
        &cluster.secrets.cluster_token,
        controller::Options {
            owner,
            approve_all: true,
            force,
            rebuild: rebuild.to_vec(),
        },
    )?;
    // Rounds until every node is Synced, or the plan is refused, through the engine's
    // one loop; a step that fails is reported and planned again, as the controller does.
    let limits = reconcile::Limits {
        poll: Duration::from_millis(1000),
        stall: Duration::from_secs(900),
        fail_fast: false,
    };
    let mut rounds = controller::ControllerRounds(&actor);
    let outcome = reconcile::drive(
        &mut rounds,
        &reconcile::Goal::AllSynced,
        &limits,
        &reconcile::SystemClock,
        |tick| {
            for (step, result) in &tick.executed {
                match result {
                    Ok(done) => println!("✓ {} — {done}", step.action),
                    Err(error) => println!("✗ {} — {error}", step.action),
                }
            }
        },
    )
    .await;
    match outcome {
        Ok(_) => {
            println!("Every node is Synced.");
            Ok(ExitCode::SUCCESS)
        }
        Err(reconcile::DriveError::Refused { rule, reason }) => {
            bail!("recovery refused ({rule}): {reason}")
        }
        Err(reconcile::DriveError::Stalled { waiting_for, .. }) => {
            bail!("the cluster did not become healthy: {waiting_for}; see `galley events`")
        }
        Err(error) => Err(error.into()),
    }
}

/// True when `address` (an IP address or a host name) is one of this host's own: a socket
/// can be bound to it. No packet is sent.
fn address_is_here(address: &str) -> bool {
    use std::net::ToSocketAddrs as _;
    let Ok(resolved) = (address, 0).to_socket_addrs() else {
        return false;
    };
    resolved
        .filter(|socket| !socket.ip().is_unspecified())
        .any(|socket| std::net::UdpSocket::bind(socket).is_ok())
}

/// True when the spec loads and has no node of that name.
fn cluster_node_missing(location: &Location, name: &str) -> bool {
    spec::load(&location.config).is_ok_and(|loaded| loaded.spec.node(name).is_none())
}

/// Observes and plans without acting.
async fn dry_observation(
    observer: &controller::Controller,
) -> anyhow::Result<(planner::Observation, Plan)> {
    let report = observer.plan_only().await?;
    Ok((report.observation, report.plan))
}

fn print_plan(observation: &planner::Observation, plan: &Plan) {
    println!(
        "{:<8} {:<8} {:<12} {:<38} {:>8} {:>6} {:>10}",
        "NODE", "AGENT", "STATE", "UUID", "SEQNO", "SAFE", "RECOVERED"
    );
    for node in &observation.nodes {
        match &node.agent {
            AgentState::Unreachable => println!("{:<8} {:<8}", node.name, "down"),
            AgentState::Reported(facts) => {
                let state = match &facts.wsrep {
                    Some(w) if facts.running => {
                        if w.is_primary() {
                            w.local_state.to_string()
                        } else {
                            "non-Primary".to_owned()
                        }
                    }
                    _ if facts.running => "starting".to_owned(),
                    _ if !facts.has_data => "no data".to_owned(),
                    _ => "stopped".to_owned(),
                };
                let uuid = facts
                    .grastate
                    .as_ref()
                    .map_or("-".to_owned(), |g| g.uuid.clone());
                let seqno = facts
                    .wsrep
                    .as_ref()
                    .map(|w| w.last_committed)
                    .or_else(|| facts.grastate.as_ref().map(|g| g.seqno))
                    .map_or("-".to_owned(), |s| s.to_string());
                let safe = facts.grastate.as_ref().map_or("-", |g| {
                    if g.safe_to_bootstrap {
                        "1"
                    } else {
                        "0"
                    }
                });
                let recovered = facts
                    .recovered
                    .as_ref()
                    .map_or("-".to_owned(), |p| p.seqno.to_string());
                println!(
                    "{:<8} {:<8} {:<12} {:<38} {:>8} {:>6} {:>10}",
                    node.name, "up", state, uuid, seqno, safe, recovered
                );
            }
        }
    }
    if let Some(mark) = &observation.marks.accepted {
        println!(
            "high-water mark: seqno {} of cluster {}",
            mark.seqno, mark.uuid
        );
    }
    // Every other history ever seen: a node restored from another cluster, a bootstrap
    // of other data by hand. The operator chooses between them (`--force` accepts).
    for mark in &observation.marks.others {
        println!(
            "another cluster history: {} (high-water mark seqno {})",
            mark.uuid, mark.seqno
        );
    }
    println!("\nsituation: {:?}", plan.situation);
    if plan.steps.is_empty() && plan.blocked.is_none() {
        println!("nothing to do");
    }
    for (index, step) in plan.steps.iter().enumerate() {
        let confirm = if step.needs_confirmation {
            " [needs confirmation]"
        } else {
            ""
        };
        println!(
            "{}. {}{confirm}\n   why: {}\n   rule: {}",
            index + 1,
            step.action,
            step.reason,
            step.rule
        );
    }
    if !plan.steps.is_empty()
        && plan
            .steps
            .iter()
            .all(|s| matches!(s.action, planner::Action::Recover { .. }))
    {
        println!("then: bootstrap the node with the highest recovered seqno (if not below the high-water mark), and start the others one at a time");
    }
    match &plan.blocked {
        Some(Blocked::Waiting { rule, reason }) => println!("waiting: {reason}\n   rule: {rule}"),
        Some(Blocked::Refused { rule, reason }) => println!("REFUSED: {reason}\n   rule: {rule}"),
        None => {}
    }
    if let Some(acceptance) = &plan.acceptance {
        println!("--force accepts: {}", acceptance.reason);
    }
    for note in &plan.notes {
        match note {
            Blocked::Waiting { reason, .. } | Blocked::Refused { reason, .. } => {
                println!("note: {reason}")
            }
        }
    }
}

/// `galley events`: the controller's history, newest last.
pub async fn events(
    location: &Location,
    json_output: bool,
    limit: usize,
    node: Option<String>,
) -> anyhow::Result<ExitCode> {
    let cluster = Cluster::load(location, false)?;
    let settings = settings(&cluster);
    let path = controller::store_path(&settings);
    if !path.exists() {
        bail!("no history yet at {}: the controller has not run for this cluster (`galley up` starts it)", path.display());
    }
    let store = store::Store::open_read_only(&path)?;
    let filter = store::EventFilter {
        since_ms: None,
        node: node.clone(),
        limit,
    };
    let mut events = store.events(&filter)?;
    events.reverse();
    let mut decisions = store.decisions(None, limit)?;
    decisions.retain(|d| node.is_none() || d.node == node);
    decisions.reverse();
    if json_output {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"events": events, "decisions": decisions}))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut lines: Vec<(i64, String)> = Vec::new();
    for event in &events {
        lines.push((
            event.at_ms,
            format!(
                "{:<8} {:<20} {:<6} {}",
                event.severity,
                event.kind,
                event.node.as_deref().unwrap_or("-"),
                event.message
            ),
        ));
    }
    for decision in &decisions {
        lines.push((
            decision.at_ms,
            format!(
                "{:<8} {:<20} {:<6} {} — {} [{}]",
                "decision",
                decision.action,
                decision.node.as_deref().unwrap_or("-"),
                decision.reason,
                decision.outcome,
                decision.rule
            ),
        ));
    }
    lines.sort_by_key(|(at, _)| *at);
    let skip = lines.len().saturating_sub(limit.max(1));
    for (at, line) in lines.into_iter().skip(skip) {
        println!("{} {line}", format_time(at));
    }
    Ok(ExitCode::SUCCESS)
}

/// `2026-11-28 00:41:07` in UTC, without a date library.
pub(crate) fn format_time(at_ms: i64) -> String {
    let seconds = at_ms.div_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_this_hosts_own_addresses_are_here() {
        use super::address_is_here;
        assert!(address_is_here("127.0.0.1"));
        assert!(address_is_here("localhost"));
        // TEST-NET-1 (RFC 5737) is never a local address.
        assert!(!address_is_here("192.0.2.7"));
        // Every host's: it names no host in particular.
        assert!(!address_is_here("0.0.0.0"));
    }

    #[test]
    fn formats_utc_times() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00:00");
        assert_eq!(super::format_time(1_795_824_181_000), "2026-11-28 00:03:01");
    }
}
