//! `galley chaos` (docs/chaos.md): a short smoke of every fault class against a real
//! cluster, judged by the runner's own checkers, and its refusals.

use serde_json::Value;

use crate::support::{TestCluster, GALLEY};

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn chaos_refuses_clusters_it_cannot_see_are_local_and_healed() {
    // Nodes on another host (TEST-NET-1, RFC 5737: never an address of this machine).
    let far = tempfile::tempdir().unwrap();
    let mut spec = format!(
        "[cluster]\nname = \"far\"\nsecrets_file = \"{}/secrets.toml\"\n",
        far.path().display()
    );
    for n in 1..=3 {
        spec.push_str(&format!(
            "\n[[node]]\nname = \"db{n}\"\naddress = \"192.0.2.{n}\"\ndata_dir = \"/srv/galley/data\"\n"
        ));
    }
    spec.push_str("\n[proxy]\naddress = \"192.0.2.9\"\n\n[controller]\naddress = \"192.0.2.7\"\n");
    std::fs::write(far.path().join("galley.toml"), spec).unwrap();
    agent::Secrets::load_or_create(&far.path().join("secrets.toml")).unwrap();
    let output = std::process::Command::new(GALLEY)
        .args(["chaos", "--dir"])
        .arg(far.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let error = stderr_of(&output);
    assert!(
        error.contains("a cluster on this machine only, and node db1 is at 192.0.2.1"),
        "{error}"
    );

    // Nothing would heal the faults without a controller.
    let cluster = TestCluster::with_proxy();
    agent::Secrets::load_or_create(&cluster.path().join("secrets.toml")).unwrap();
    let error = stderr_of(&cluster.galley(&["chaos"]));
    assert!(
        error.contains("needs the controller, which heals the faults")
            && error.contains("has no [controller] section"),
        "{error}"
    );

    let error = stderr_of(&cluster.galley(&["chaos", "--through", "192.0.2.5:3306"]));
    assert!(
        error.contains(
            "--through 192.0.2.5:3306: galley chaos sends its workloads to this machine only"
        ),
        "{error}"
    );

    let error = stderr_of(&cluster.galley(&["chaos", "--classes", "kill-node,unplug"]));
    assert!(
        error.contains("unknown fault class `unplug`") && error.contains("hang-writer"),
        "{error}"
    );
}

#[test]
fn a_chaos_smoke_of_every_fault_class_heals_each_and_loses_nothing() {
    let cluster = TestCluster::with_proxy_and_controller();
    cluster.galley_ok(&["up", "--detach"]);
    let report_dir = cluster.path().join("chaos-report");
    let report_arg = report_dir.display().to_string();
    // One fault of each of the eight classes (the schedule draws every class before any
    // repeats), with a second of steady traffic between them.
    let output = cluster.galley(&[
        "chaos",
        "--faults",
        "8",
        "--seed",
        "1",
        "--between",
        "1",
        "--report",
        &report_arg,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let events =
        String::from_utf8_lossy(&cluster.galley(&["events", "--limit", "80"]).stdout).into_owned();
    assert!(
        output.status.success(),
        "galley chaos failed ({}):\n{stdout}\n{}\nevents:\n{events}",
        output.status,
        stderr_of(&output)
    );

    let report: Value =
        serde_json::from_slice(&std::fs::read(report_dir.join("report.json")).unwrap()).unwrap();
    let faults = report["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 8, "{stdout}");
    let mut classes: Vec<&str> = faults
        .iter()
        .map(|run| run["fault"]["class"].as_str().unwrap())
        .collect();
    classes.sort_unstable();
    classes.dedup();
    assert_eq!(classes.len(), 8, "every class ran once: {classes:?}");
    assert!(
        faults.iter().all(|run| run["healed_ms"].is_u64()),
        "{stdout}"
    );
    for empty in [
        "lost",
        "stale_reads",
        "bank_violations",
        "multi_writer_slots",
        "unchecked",
    ] {
        assert_eq!(report[empty], Value::Array(vec![]), "{empty}:\n{stdout}");
    }
    // The workloads ran through the faults.
    assert!(
        report["writes_acknowledged"].as_u64().unwrap() > 100,
        "{stdout}"
    );
    assert!(
        report["transfers_acknowledged"].as_u64().unwrap() > 100,
        "{stdout}"
    );
    assert!(report["reads"].as_u64().unwrap() > 10, "{stdout}");
    assert!(
        report["appends_acknowledged"].as_u64().unwrap() > 100,
        "{stdout}"
    );
    assert!(report["list_reads"].as_u64().unwrap() > 10, "{stdout}");
    let markdown = std::fs::read_to_string(report_dir.join("report.md")).unwrap();
    assert!(markdown.starts_with("# galley chaos: PASSED"), "{markdown}");
    let svg = std::fs::read_to_string(report_dir.join("timeline.svg")).unwrap();
    assert!(
        svg.starts_with("<svg ") && svg.contains("kill-all"),
        "{svg}"
    );
    // The history is kept for whoever wants to judge it again.
    let history: Value =
        serde_json::from_slice(&std::fs::read(report_dir.join("history.json")).unwrap()).unwrap();
    assert_eq!(history["seed"], 1);
}
