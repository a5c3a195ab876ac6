//! Compact text fixtures for an `Observation`, the compact rendering of a `Plan`, and the
//! one `check(fixture, expected)` helper that the table tests use.
//!
//! A fixture has one line per node, in priority order (most preferred first), and
//! optional header lines:
//!
//! ```text
//! hwm A:15                                   # the accepted history's high-water mark
//! mark B:40                                  # the mark of another history seen
//! force                                      # the operator's --force
//! create_new                                 # `galley up`: a new cluster may be created
//! rebuild node7                              # `--rebuild node7`: the operator gave up its data
//! arbitrators 1                              # the spec has one arbitrator (garbd)
//! policy auto_recover_cluster=false allow_wipe=true
//! node1 primary synced seqno=10              # running in the Primary component
//! node2 primary synced seqno=40 uuid=B       # ... of history B (A by default)
//! node2 primary joiner                       # joiner | joined | donor | synced
//! node3 running nonprimary stuck             # outside any Primary component, for too long
//! node4 stopped grastate=A:10 safe           # a graceful stop, safe_to_bootstrap=1
//! node5 stopped crashed                      # grastate seqno -1: position unknown
//! node6 stopped recovered=A:12               # crashed, then --wsrep-recover ran
//! node7 stopped nodata                       # an empty data dir
//! node8 stopped crashed failed=3 backoff     # failed starts, backing off
//! node9 unreachable                          # the agent does not answer
//! ```
//!
//! UUID letters: `A` and `B` are two cluster histories, `0` is the zero UUID.
//!
//! The rendering is `situation: part; part; ...` where the parts are, in order: the
//! runnable steps (comma separated), the blocking reason (`waiting|refused rule=Rule`),
//! the rest of the plan (`then ...`) and the notes (`note waiting|refused rule=Rule`). A
//! reason is followed by the fixture's node names it mentions, in fixture order, in
//! parentheses. A step is `verb node`; a bootstrap is `bootstrap node@seqno`, with
//! `+safe` when it marks the node safe_to_bootstrap; a new cluster is `create-cluster
//! node`, with `+init` when its data dir is initialized first; `?` ends a step that needs an
//! operator's confirmation. Last comes what `force` accepts: `accept A:12` (now) or
//! `accept A:12 after bootstrap node1`. `nothing` stands for an empty plan.

use galera::{GraState, Position, WsrepStatus, ZERO_UUID};
use planner::{
    Action, AgentState, Blocked, Facts, HighWaterMarks, Mark, NodeView, Observation, Plan, Policy,
    Situation, Step,
};

pub const UUID_A: &str = "259f0f64-2a80-46ae-a206-519b5024470e";
pub const UUID_B: &str = "11111111-2a80-46ae-a206-519b5024470e";

/// `A` -> UUID_A, `B` -> UUID_B, `0` -> the zero UUID.
pub fn uuid(letter: &str) -> &'static str {
    match letter {
        "A" => UUID_A,
        "B" => UUID_B,
        "0" => ZERO_UUID,
        other => panic!("unknown uuid letter `{other}`; use A, B or 0"),
    }
}

/// The letter of a fixture UUID, for renderings.
pub fn letter(uuid: &str) -> &str {
    match uuid {
        UUID_A => "A",
        UUID_B => "B",
        ZERO_UUID => "0",
        other => other,
    }
}

/// `A:12` -> the position of history A at seqno 12.
pub fn position(text: &str) -> Position {
    let (letter, seqno) = text
        .split_once(':')
        .unwrap_or_else(|| panic!("`{text}` is not `letter:seqno`"));
    let seqno: i64 = seqno
        .parse()
        .unwrap_or_else(|_| panic!("`{text}`: seqno is not an integer"));
    Position {
        uuid: uuid(letter).to_owned(),
        seqno,
    }
}

pub fn grastate(uuid: &str, seqno: i64, safe_to_bootstrap: bool) -> GraState {
    GraState {
        version: "2.1".to_owned(),
        uuid: uuid.to_owned(),
        seqno,
        safe_to_bootstrap,
    }
}

/// The wsrep status of a running node. `local_state` is the `wsrep_local_state` code
/// (1 joiner, 2 donor, 3 joined, 4 synced).
pub fn wsrep(primary: bool, local_state: i64, last_committed: i64) -> WsrepStatus {
    let local_state = local_state.to_string();
    let last_committed = last_committed.to_string();
    WsrepStatus::from_variables([
        ("wsrep_ready", if primary { "ON" } else { "OFF" }),
        ("wsrep_connected", "ON"),
        (
            "wsrep_cluster_status",
            if primary { "Primary" } else { "non-Primary" },
        ),
        ("wsrep_local_state", local_state.as_str()),
        ("wsrep_last_committed", last_committed.as_str()),
        ("wsrep_cluster_state_uuid", UUID_A),
    ])
}

pub fn parse(fixture: &str) -> Observation {
    let mut observation = Observation {
        nodes: Vec::new(),
        marks: HighWaterMarks::default(),
        policy: Policy::default(),
        force: false,
        operator: Default::default(),
        arbitrators: 0,
    };
    for line in fixture
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[0] {
            "hwm" | "mark" => {
                let mark = position(words[1]);
                let mark = Mark {
                    uuid: mark.uuid,
                    seqno: mark.seqno,
                };
                if words[0] == "hwm" {
                    observation.marks.accepted = Some(mark);
                } else {
                    observation.marks.others.push(mark);
                }
            }
            "force" => observation.force = true,
            "arbitrators" => observation.arbitrators = words[1].parse().expect("arbitrators N"),
            "create_new" => observation.operator.create_new = true,
            "rebuild" => observation
                .operator
                .rebuild
                .extend(words[1..].iter().map(|name| (*name).to_owned())),
            "policy" => {
                for setting in &words[1..] {
                    apply_policy(&mut observation.policy, setting);
                }
            }
            name => {
                let priority = observation.nodes.len() as u32;
                observation.nodes.push(NodeView {
                    name: name.to_owned(),
                    priority,
                    agent: parse_agent(line, &words[1..]),
                });
            }
        }
    }
    observation
}

fn apply_policy(policy: &mut Policy, setting: &str) {
    let (key, value) = setting
        .split_once('=')
        .unwrap_or_else(|| panic!("policy setting `{setting}` is not key=value"));
    let flag = || {
        value
            .parse::<bool>()
            .unwrap_or_else(|_| panic!("policy `{key}` wants true or false, not `{value}`"))
    };
    match key {
        "auto_recover_nodes" => policy.auto_recover_nodes = flag(),
        "auto_recover_cluster" => policy.auto_recover_cluster = flag(),
        "confirm_bootstrap" => policy.confirm_bootstrap = flag(),
        "confirm_restart" => policy.confirm_restart = flag(),
        "allow_wipe" => policy.allow_wipe = flag(),
        "wipe_after_failed_starts" => {
            policy.wipe_after_failed_starts = value.parse().expect("a count")
        }
        other => panic!("unknown policy key `{other}`"),
    }
}

fn parse_agent(line: &str, words: &[&str]) -> AgentState {
    if words == ["unreachable"] {
        return AgentState::Unreachable;
    }
    let mut running = false;
    let mut primary = false;
    let mut local_state = None;
    let mut seqno = 0;
    let mut stuck = false;
    let mut safe = false;
    let mut has_data = true;
    let mut saved = None;
    let mut recovered = None;
    let mut failed_starts = 0;
    let mut backing_off = false;
    let mut set_aside = Vec::new();
    let mut stale_view = None;
    let mut view_size = None;
    let mut cluster_uuid = UUID_A;
    for word in words {
        match word.split_once('=') {
            Some(("seqno", value)) => seqno = value.parse().expect("seqno=N"),
            Some(("grastate", value)) => saved = Some(position(value)),
            Some(("recovered", value)) => recovered = Some(position(value)),
            Some(("failed", value)) => failed_starts = value.parse().expect("failed=N"),
            Some(("size", value)) => view_size = Some(value.parse::<i64>().expect("size=N")),
            Some(("uuid", value)) => cluster_uuid = uuid(value),
            Some(_) => panic!("unknown setting `{word}` in `{line}`"),
            None => match *word {
                "stopped" => running = false,
                "running" | "nonprimary" => running = true,
                "primary" => (running, primary) = (true, true),
                "joiner" => local_state = Some(1),
                "donor" => local_state = Some(2),
                "joined" => local_state = Some(3),
                "synced" => local_state = Some(4),
                "stuck" => stuck = true,
                "safe" => safe = true,
                // A crash leaves seqno -1 in grastate.dat, the default for a node with data.
                "crashed" | "data" => has_data = true,
                "nodata" => has_data = false,
                "backoff" => backing_off = true,
                "stale" => {
                    stale_view =
                        Some("stale view: view 3 of 3 nodes, others in view 4 of 2".to_owned())
                }
                "aside" => set_aside.push("/var/lib/mysql.galley-aside-1".to_owned()),
                other => panic!("unknown word `{other}` in `{line}`"),
            },
        }
    }
    let grastate = match (has_data, saved, &recovered) {
        (false, _, _) => None,
        (true, Some(saved), _) => Some(grastate(&saved.uuid, saved.seqno, safe)),
        // Running, crashed, or crashed and recovered: the file says -1.
        (true, None, recovered) => {
            let uuid = recovered.as_ref().map_or(UUID_A, |p| p.uuid.as_str());
            Some(grastate(uuid, -1, safe))
        }
    };
    let wsrep = running.then(|| {
        let mut status = wsrep(
            primary,
            local_state.unwrap_or(if primary { 4 } else { 0 }),
            seqno,
        );
        if let Some(size) = view_size {
            status.cluster_size = size;
        }
        status.cluster_state_uuid = cluster_uuid.to_owned();
        status
    });
    AgentState::Reported(Box::new(Facts {
        running,
        wsrep,
        has_data,
        grastate,
        recovered,
        stuck,
        failed_starts,
        backing_off,
        set_aside,
        stale_view,
    }))
}

pub fn render_situation(situation: Situation) -> &'static str {
    match situation {
        Situation::Healthy => "healthy",
        Situation::Degraded => "degraded",
        Situation::NoPrimary => "no_primary",
        Situation::Stopped => "stopped",
        Situation::SplitBrain => "split_brain",
    }
}

pub fn render_step(step: &Step) -> String {
    let mut text = match &step.action {
        Action::Bootstrap {
            node,
            seqno,
            mark_safe,
        } => {
            format!(
                "bootstrap {node}@{seqno}{}",
                if *mark_safe { " +safe" } else { "" }
            )
        }
        Action::CreateCluster { node, initialize } => {
            format!(
                "create-cluster {node}{}",
                if *initialize { " +init" } else { "" }
            )
        }
        other => other.key(),
    };
    if step.needs_confirmation {
        text.push('?');
    }
    text
}

pub fn render_blocked(blocked: &Blocked, names: &[&str]) -> String {
    let (kind, rule, reason) = match blocked {
        Blocked::Waiting { rule, reason } => ("waiting", rule, reason),
        Blocked::Refused { rule, reason } => ("refused", rule, reason),
    };
    let mentioned = mentioned_nodes(reason, names);
    if mentioned.is_empty() {
        format!("{kind} rule={rule:?}")
    } else {
        format!("{kind} rule={rule:?} ({})", mentioned.join(", "))
    }
}

/// The node names a reason mentions as whole words, in fixture order.
fn mentioned_nodes<'a>(reason: &str, names: &[&'a str]) -> Vec<&'a str> {
    let words: Vec<&str> = reason
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
        .collect();
    names
        .iter()
        .copied()
        .filter(|name| words.contains(name))
        .collect()
}

pub fn render(plan: &Plan, names: &[&str]) -> String {
    let runnable = plan.runnable();
    let mut parts = Vec::new();
    if !runnable.is_empty() {
        parts.push(
            runnable
                .iter()
                .map(render_step)
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if let Some(blocked) = &plan.blocked {
        parts.push(render_blocked(blocked, names));
    }
    let rest = &plan.steps[runnable.len()..];
    if !rest.is_empty() {
        parts.push(format!(
            "then {}",
            rest.iter().map(render_step).collect::<Vec<_>>().join(", ")
        ));
    }
    for note in &plan.notes {
        parts.push(format!("note {}", render_blocked(note, names)));
    }
    if let Some(acceptance) = &plan.acceptance {
        let mark = &acceptance.mark;
        let mut text = format!("accept {}:{}", letter(&mark.uuid), mark.seqno);
        if let Some(node) = &acceptance.after_bootstrap {
            text.push_str(&format!(" after bootstrap {node}"));
        }
        parts.push(text);
    }
    if parts.is_empty() {
        parts.push("nothing".to_owned());
    }
    format!("{}: {}", render_situation(plan.situation), parts.join("; "))
}

/// Plans the fixture, compares the rendering with `expected`, and checks what every plan
/// must satisfy whatever the scenario: every step and refusal says why, and one bootstrap
/// at most (rule 2).
#[track_caller]
pub fn check(fixture: &str, expected: &str) -> Plan {
    let observation = parse(fixture);
    let plan = planner::plan(&observation);
    let names: Vec<&str> = observation
        .nodes
        .iter()
        .map(|node| node.name.as_str())
        .collect();
    let got = render(&plan, &names);
    assert_eq!(
        got,
        expected,
        "\nfixture:\n{}\nplan: {plan:#?}",
        fixture.trim()
    );
    for step in &plan.steps {
        assert!(
            !step.reason.trim().is_empty(),
            "`{}` has no reason",
            step.action
        );
    }
    for blocked in plan.blocked.iter().chain(&plan.notes) {
        let (Blocked::Waiting { reason, .. } | Blocked::Refused { reason, .. }) = blocked;
        assert!(!reason.trim().is_empty(), "empty reason in {blocked:?}");
    }
    if let Some(acceptance) = &plan.acceptance {
        assert!(observation.force, "an acceptance without force: {plan:#?}");
        assert!(!acceptance.reason.trim().is_empty(), "{acceptance:?}");
    }
    assert!(
        plan.steps
            .iter()
            .filter(|step| matches!(step.action, Action::Bootstrap { .. }))
            .count()
            <= 1,
        "rule 2: two bootstraps in one plan: {plan:#?}"
    );
    plan
}
