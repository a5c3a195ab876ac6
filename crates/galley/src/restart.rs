//! `galley restart --rolling`: every node restarted one at a time behind the proxy
//! (the work is `rolling::rolling_restart`); the controller is told through its desired
//! state, as `galley stop` does, so that it does not fight the restart.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use local::{Cluster, Location};
use spec::ClusterSpec;

/// Records operator stops in the local controller's store (nothing without a controller).
struct LocalController<'a> {
    spec: &'a ClusterSpec,
}

impl rolling::Intent for LocalController<'_> {
    fn set_desired(
        &self,
        node: &str,
        running: bool,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send {
        let result =
            controller::set_desired(self.spec, node, running).map_err(|error| format!("{error:#}"));
        std::future::ready(result)
    }
}

/// Prints each step as a line, with the time since the restart began.
struct Lines {
    started: tokio::time::Instant,
}

impl rolling::Observer for Lines {
    fn event(&self, event: rolling::Event) {
        println!("[{:>5.1} s] {event}", self.started.elapsed().as_secs_f64());
    }
}

pub async fn restart(location: &Location, rolling: bool) -> anyhow::Result<ExitCode> {
    if !rolling {
        bail!(
            "only `galley restart --rolling` exists: restarting every node at once would take the whole cluster down; \
             use `galley down` and `galley up` for that"
        );
    }
    let cluster = Cluster::load(location, true)?;
    let members: Vec<rolling::Member> = cluster
        .nodes_by_priority()
        .into_iter()
        .map(|node| rolling::Member {
            name: node.name.clone(),
            agent: cluster.client(node),
        })
        .collect();
    let proxies: Vec<proxy::AdminClient> = cluster.proxy_admin().into_iter().collect();
    let options = options_for(&cluster.spec);
    if proxies.is_empty() {
        println!("note: this cluster has no [proxy]: clients connected to a node lose their session when it restarts");
    }
    let observer = Lines {
        started: tokio::time::Instant::now(),
    };
    let intent = LocalController {
        spec: &cluster.spec,
    };
    let report = rolling::rolling_restart(&members, &proxies, &intent, &observer, &options).await?;
    let order: Vec<&str> = report.restarted.iter().map(|r| r.node.as_str()).collect();
    println!(
        "Rolling restart of {} done: {} restarted one at a time ({}); the writer moved {} time{}{}.",
        cluster.spec.name,
        order.len(),
        order.join(", "),
        report.writer_moves,
        if report.writer_moves == 1 { "" } else { "s" },
        report
            .writer
            .map(|writer| format!(" and is {writer}"))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

/// The waits, from the spec: sessions get the proxy's writer grace plus a margin, and
/// the proxy gets a generous multiple of its rise hysteresis to see a node healthy.
pub fn options_for(spec: &ClusterSpec) -> rolling::Options {
    let mut options = rolling::Options {
        arbitrators: spec.arbitrators.len(),
        ..rolling::Options::default()
    };
    if let Some(proxy) = &spec.proxy {
        options.drain_timeout =
            Duration::from_millis(proxy.writer_grace_ms) + Duration::from_secs(10);
        let rise = Duration::from_millis(
            (u64::from(proxy.rise) + 1) * (proxy.probe_interval_ms + proxy.probe_timeout_ms),
        );
        options.healthy_timeout = (rise * 3).max(Duration::from_secs(30));
    }
    options
}
