//! `galley backup` against a real 3-node cluster behind the proxy: a full backup from a
//! non-writer under a write load, the proxy sending that node no clients while it is
//! desynced, a restore proven by its data in a scratch mariadbd, and refusals of a
//! damaged file and of data that differs from what was recorded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable as _;

use crate::support::TestCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_from_a_non_writer_restores_with_the_recorded_data() {
    let cluster = TestCluster::with_proxy();
    cluster.galley_ok(&["up", "--detach"]);
    let (writer_port, reader_port, _) = cluster.proxy_ports.unwrap();
    let target = cluster.path().join("backups");
    let target_text = target.display().to_string();

    let mut conn = cluster.conn_port(writer_port).await.unwrap();
    conn.query_drop(
        "CREATE DATABASE app; \
         CREATE TABLE app.rows (id INT PRIMARY KEY, payload VARCHAR(100) NOT NULL) ENGINE=InnoDB; \
         CREATE TABLE app.other (k VARCHAR(20) PRIMARY KEY, n BIGINT) ENGINE=InnoDB; \
         INSERT INTO app.other VALUES ('a', 1), ('b', 2)",
    )
    .await
    .unwrap();
    for batch in 0..20 {
        let values: Vec<String> = (0..100)
            .map(|i| format!("({}, REPEAT('x', {}))", batch * 100 + i, i % 90))
            .collect();
        conn.query_drop(format!("INSERT INTO app.rows VALUES {}", values.join(",")))
            .await
            .unwrap();
    }

    // A writer through the proxy for the whole backup, counting acknowledged rows.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut next = 100_000;
            while !stop.load(Ordering::Relaxed) && next < 150_000 {
                conn.query_drop(format!("INSERT INTO app.rows VALUES ({next}, 'load')"))
                    .await
                    .unwrap();
                next += 1;
            }
            next - 100_000
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    // node1 is the writer (highest priority): the backup must come from node3.
    let mut node3 = cluster.conn(3).await;
    let node3_port = cluster.client_ports[2];
    let mut backup = tokio::process::Command::new(crate::support::GALLEY)
        .args(["backup", "now", "--json", "--target", &target_text, "--dir"])
        .arg(cluster.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut desynced_polls = 0;
    let mut reader_on_desynced_node = 0;
    let mut drained_polls = 0;
    for _ in 0..1200 {
        if backup.try_wait().unwrap().is_some() {
            break;
        }
        let state = |row: Option<(String, String)>| row.map(|(_, v)| v).unwrap_or_default();
        let before = state(
            node3
                .query_first("SHOW GLOBAL STATUS LIKE 'wsrep_local_state_comment'")
                .await
                .unwrap(),
        );
        let status = cluster.proxy_status().await;
        let draining = status["backends"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["name"] == "node3" && b["draining"] == true);
        let landed: Option<u16> = match cluster.conn_port(reader_port).await {
            Ok(mut reader) => {
                let port = reader.query_first("SELECT @@port").await.unwrap();
                let _ = reader.disconnect().await;
                port
            }
            Err(_) => None,
        };
        let after = state(
            node3
                .query_first("SHOW GLOBAL STATUS LIKE 'wsrep_local_state_comment'")
                .await
                .unwrap(),
        );
        // Counted only when node3 was desynced before and after both looks.
        if before == "Donor/Desynced" && after == "Donor/Desynced" {
            desynced_polls += 1;
            if landed == Some(node3_port) {
                reader_on_desynced_node += 1;
            }
            if draining {
                drained_polls += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let output = backup.wait_with_output().await.unwrap();
    stop.store(true, Ordering::Relaxed);
    let load_rows = writer.await.unwrap();
    assert!(
        output.status.success(),
        "galley backup now failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!(
        "backup: {desynced_polls} polls with node3 desynced, {drained_polls} drained, {reader_on_desynced_node} reader sessions on it; {load_rows} rows written during it"
    );
    assert!(
        desynced_polls > 0,
        "node3 was never seen desynced during the backup"
    );
    assert_eq!(
        drained_polls, desynced_polls,
        "node3 desynced but not drained at the proxy"
    );
    assert_eq!(
        reader_on_desynced_node, 0,
        "the proxy sent a reader to the desynced node"
    );
    assert!(load_rows > 0);

    assert_eq!(manifest["node"], "node3");
    assert_eq!(manifest["kind"], "full");
    assert!(manifest["galera_position"].is_string());
    assert_eq!(manifest["galera_position"], manifest["locked_position"]);
    assert!(manifest["files"]
        .as_object()
        .unwrap()
        .contains_key("xtrabackup_galera_info"));
    let tables = manifest["tables"].as_array().unwrap();
    let rows_recorded = tables.iter().find(|t| t["table"] == "rows").unwrap()["rows"]
        .as_u64()
        .unwrap();
    // Taken under the load: more than the 2,000 rows written before it, fewer than all.
    assert!(
        (2000..2000 + load_rows).contains(&rows_recorded),
        "{rows_recorded} rows recorded, {load_rows} written during the backup"
    );
    let id = manifest["id"].as_str().unwrap().to_owned();
    let password = cluster.secrets().admin_password;
    let log = std::fs::read_to_string(target.join(&id).join("mariabackup.log")).unwrap();
    assert!(
        !log.contains(&password),
        "the admin password is in mariabackup's log"
    );
    assert!(!String::from_utf8_lossy(&output.stderr).contains(&password));
    // The node takes clients again.
    let status = cluster.proxy_status().await;
    assert!(status["backends"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["draining"] == false));

    // Proven by restoring: the scratch server holds exactly the recorded tables.
    let out = cluster.galley_ok(&["backup", "verify", &id, "--json", "--target", &target_text]);
    let verdict: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(verdict["verified"], true, "{out}");
    // The test's two tables and galley's own shared writer record (galley.writer).
    assert_eq!(verdict["tables_compared"], 3);
    assert!(tables
        .iter()
        .any(|t| t["schema"] == "galley" && t["table"] == "writer"));
    let shown: serde_json::Value = serde_json::from_str(&cluster.galley_ok(&[
        "backup",
        "show",
        &id,
        "--json",
        "--target",
        &target_text,
    ]))
    .unwrap();
    assert_eq!(shown["verified"], true);

    // A copy whose recorded checksum differs from its data is not verified (exit 4).
    let tampered = target.join(format!("{id}-tampered"));
    copy_dir(&target.join(&id), &tampered);
    let manifest_path = tampered.join("manifest.json");
    let mut edited: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    edited["verified"] = false.into();
    for table in edited["tables"].as_array_mut().unwrap() {
        if table["table"] == "rows" {
            table["rows"] = (rows_recorded + 1).into();
        }
    }
    std::fs::write(&manifest_path, edited.to_string()).unwrap();
    let tampered_id = format!("{id}-tampered");
    let output = cluster.galley(&["backup", "verify", &tampered_id, "--target", &target_text]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(4), "{stdout}");
    assert!(stdout.contains("`app`.`rows` differs"), "{stdout}");

    // A damaged stored file is refused, naming it.
    let damaged_id = format!("{id}-damaged");
    let damaged = target.join(&damaged_id);
    copy_dir(&target.join(&id), &damaged);
    let stream = damaged.join("backup.mbstream.zst");
    let mut bytes = std::fs::read(&stream).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&stream, bytes).unwrap();
    let output = cluster.galley(&["backup", "verify", &damaged_id, "--target", &target_text]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("backup.mbstream.zst"), "{stderr}");

    // A restore into a new directory; never into one that has files.
    let restored = cluster.path().join("restored");
    let restored_text = restored.display().to_string();
    cluster.galley_ok(&[
        "restore",
        &id,
        "--into",
        &restored_text,
        "--target",
        &target_text,
    ]);
    assert!(restored.join("ibdata1").exists());
    let output = cluster.galley(&[
        "restore",
        &id,
        "--into",
        &restored_text,
        "--target",
        &target_text,
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not empty"));

    // list, delete.
    let list: serde_json::Value = serde_json::from_str(&cluster.galley_ok(&[
        "backup",
        "list",
        "--json",
        "--target",
        &target_text,
    ]))
    .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    let output = cluster.galley(&["backup", "delete", &damaged_id, "--target", &target_text]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("--yes"));
    cluster.galley_ok(&[
        "backup",
        "delete",
        &damaged_id,
        "--yes",
        "--target",
        &target_text,
    ]);
    assert!(!damaged.exists());
    let output = cluster.galley(&["backup", "show", "../etc", "--target", &target_text]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a backup id"));
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}
