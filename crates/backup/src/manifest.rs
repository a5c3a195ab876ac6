//! The manifest of one backup (manifest.json beside the stored stream), and the pure
//! readers of what mariabackup writes into the stream: xtrabackup_galera_info and
//! xtrabackup_checkpoints. docs/backup.md describes every field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The stored stream's file name inside a backup's directory.
pub const STREAM_FILE: &str = "backup.mbstream.zst";
/// The manifest's file name inside a backup's directory.
pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Full,
    Incremental,
}

/// One backup as galley recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub id: String,
    pub cluster: String,
    pub node: String,
    pub kind: Kind,
    /// The backup this one is an increment of (None for a full backup).
    pub parent: Option<String>,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: String,
    /// mariabackup's version line, to restore with the same major version.
    pub server_version: String,
    /// Bytes of the stored (compressed) stream.
    pub stored_bytes: u64,
    /// Bytes of the uncompressed stream's file payloads.
    pub data_bytes: u64,
    /// The Galera position of the backup (xtrabackup_galera_info), `uuid:seqno`.
    pub galera_position: Option<String>,
    /// The position galley read on the node under its read lock; equal to
    /// `galera_position` when the backup is consistent.
    pub locked_position: Option<String>,
    /// `@@gtid_binlog_pos` under the lock, when the node writes binary logs.
    pub gtid: Option<String>,
    /// xtrabackup_checkpoints' LSNs.
    pub from_lsn: Option<u64>,
    pub to_lsn: Option<u64>,
    /// SHA-256 of the stored stream file (hex).
    pub stream_sha256: String,
    /// SHA-256 of each file inside the stream (hex), by path.
    pub files: BTreeMap<String, String>,
    /// Each user table's row count and CHECKSUM TABLE, read on the node under the same
    /// read lock that froze its data for the whole backup.
    pub tables: Vec<TableChecksum>,
    /// True once a restore of this backup held exactly `tables`.
    pub verified: bool,
    pub verified_at: Option<String>,
    pub verify_note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub struct TableChecksum {
    pub schema: String,
    pub table: String,
    pub rows: u64,
    /// None where the engine gives no checksum (CHECKSUM TABLE answers NULL).
    pub checksum: Option<u64>,
}

/// The Galera position of xtrabackup_galera_info: `uuid:seqno`, and a GTID after it
/// when the server writes one (MariaDB 10.11 writes `uuid:seqno` and, with
/// wsrep_gtid_mode, ` domain-server-seqno`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaleraInfo {
    pub uuid: String,
    pub seqno: i64,
    pub gtid: Option<String>,
}

impl GaleraInfo {
    pub fn position(&self) -> String {
        format!("{}:{}", self.uuid, self.seqno)
    }
}

pub fn parse_galera_info(text: &str) -> Result<GaleraInfo, String> {
    let mut words = text.split_whitespace();
    let first = words
        .next()
        .ok_or_else(|| "xtrabackup_galera_info is empty".to_owned())?;
    let (uuid, seqno) = first.rsplit_once(':').ok_or_else(|| {
        format!(
            "xtrabackup_galera_info `{}` has no `uuid:seqno`",
            first.escape_debug()
        )
    })?;
    let uuid_ok = uuid.len() == 36 && uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if !uuid_ok {
        return Err(format!(
            "xtrabackup_galera_info's UUID `{}` is not a UUID",
            uuid.escape_debug()
        ));
    }
    let seqno = seqno.parse::<i64>().map_err(|_| {
        format!(
            "xtrabackup_galera_info's seqno `{}` is not a number",
            seqno.escape_debug()
        )
    })?;
    Ok(GaleraInfo {
        uuid: uuid.to_owned(),
        seqno,
        gtid: words.next().map(str::to_owned),
    })
}

/// xtrabackup_checkpoints: `backup_type`, `from_lsn`, `to_lsn`, `last_lsn`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checkpoints {
    pub backup_type: String,
    pub from_lsn: u64,
    pub to_lsn: u64,
    pub last_lsn: u64,
}

pub fn parse_checkpoints(text: &str) -> Result<Checkpoints, String> {
    let mut checkpoints = Checkpoints::default();
    let mut seen = 0;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        let number = || {
            value.parse::<u64>().map_err(|_| {
                format!(
                    "xtrabackup_checkpoints' {key} `{}` is not a number",
                    value.escape_debug()
                )
            })
        };
        match key {
            "backup_type" => checkpoints.backup_type = value.to_owned(),
            "from_lsn" => checkpoints.from_lsn = number()?,
            "to_lsn" => checkpoints.to_lsn = number()?,
            "last_lsn" => checkpoints.last_lsn = number()?,
            _ => continue,
        }
        seen += 1;
    }
    if seen < 4 {
        return Err(
            "xtrabackup_checkpoints lacks backup_type, from_lsn, to_lsn or last_lsn".into(),
        );
    }
    Ok(checkpoints)
}

/// A backup id: `YYYYMMDDTHHMMSSZ-node`, as `backup_id` makes them. Anything given on a
/// command line is checked with `check_id` before it names a directory or a key.
pub fn backup_id(started_unix_s: u64, node: &str) -> String {
    let rfc = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(started_unix_s),
    )
    .to_string();
    // 2026-12-04T13:05:09Z -> 20261204T130509Z
    let compact: String = rfc.chars().filter(|c| *c != '-' && *c != ':').collect();
    format!("{compact}-{node}")
}

pub fn check_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 100
        && !id.starts_with(['-', '.'])
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a backup id; ids are 1 to 100 letters, digits, `-`, `_` or `.`, like 20261204T130509Z-node2 (see `galley backup list`)",
            id.escape_debug()
        ))
    }
}

/// What a restore holds that the backup did not record, or the other way round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    Missing(TableChecksum),
    Unexpected(TableChecksum),
    Differs {
        recorded: TableChecksum,
        restored: TableChecksum,
    },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |t: &TableChecksum| {
            format!(
                "{} rows, checksum {}",
                t.rows,
                t.checksum.map_or("NULL".to_owned(), |c| c.to_string())
            )
        };
        match self {
            Mismatch::Missing(t) => write!(
                f,
                "`{}`.`{}` is missing from the restore (recorded {})",
                t.schema,
                t.table,
                show(t)
            ),
            Mismatch::Unexpected(t) => write!(
                f,
                "`{}`.`{}` is in the restore but was not recorded ({})",
                t.schema,
                t.table,
                show(t)
            ),
            Mismatch::Differs { recorded, restored } => write!(
                f,
                "`{}`.`{}` differs: recorded {}, restored {}",
                recorded.schema,
                recorded.table,
                show(recorded),
                show(restored)
            ),
        }
    }
}

/// Every difference between the recorded tables and the restored ones.
pub fn compare_tables(recorded: &[TableChecksum], restored: &[TableChecksum]) -> Vec<Mismatch> {
    let key = |t: &TableChecksum| (t.schema.clone(), t.table.clone());
    let recorded: BTreeMap<_, _> = recorded.iter().map(|t| (key(t), t)).collect();
    let restored: BTreeMap<_, _> = restored.iter().map(|t| (key(t), t)).collect();
    let mut mismatches = Vec::new();
    for (name, want) in &recorded {
        match restored.get(name) {
            None => mismatches.push(Mismatch::Missing((*want).clone())),
            Some(got) if got != want => mismatches.push(Mismatch::Differs {
                recorded: (*want).clone(),
                restored: (*got).clone(),
            }),
            Some(_) => {}
        }
    }
    for (name, got) in &restored {
        if !recorded.contains_key(name) {
            mismatches.push(Mismatch::Unexpected((*got).clone()));
        }
    }
    mismatches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn galera_info_with_and_without_gtid() {
        let info = parse_galera_info("5f2e1c9a-1b2c-11ef-8a3b-0e6f5c1d2e3f:1234\n").unwrap();
        assert_eq!(info.seqno, 1234);
        assert_eq!(info.gtid, None);
        assert_eq!(info.position(), "5f2e1c9a-1b2c-11ef-8a3b-0e6f5c1d2e3f:1234");
        let info = parse_galera_info("5f2e1c9a-1b2c-11ef-8a3b-0e6f5c1d2e3f:7 0-1-7\n").unwrap();
        assert_eq!(info.gtid.as_deref(), Some("0-1-7"));
        for bad in [
            "",
            "nouuid",
            "abc:12",
            "5f2e1c9a-1b2c-11ef-8a3b-0e6f5c1d2e3f:x",
        ] {
            assert!(parse_galera_info(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checkpoints_need_all_four_keys() {
        let text = "backup_type = full-backuped\nfrom_lsn = 0\nto_lsn = 47023\nlast_lsn = 47035\n";
        let checkpoints = parse_checkpoints(text).unwrap();
        assert_eq!(checkpoints.to_lsn, 47023);
        assert_eq!(checkpoints.backup_type, "full-backuped");
        assert!(parse_checkpoints("backup_type = full-backuped\n").is_err());
        assert!(
            parse_checkpoints("backup_type = x\nfrom_lsn = a\nto_lsn = 1\nlast_lsn = 1").is_err()
        );
    }

    #[test]
    fn ids_are_compact_times_and_checked() {
        assert_eq!(backup_id(1_796_389_509, "node2"), "20261204T130509Z-node2");
        assert!(check_id("20261204T130509Z-node2").is_ok());
        for bad in ["", "../etc", "a/b", "-x", "a b", "x;rm"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn comparison_names_every_difference() {
        let t = |table: &str, rows, checksum| TableChecksum {
            schema: "app".into(),
            table: table.into(),
            rows,
            checksum,
        };
        let recorded = [t("a", 1, Some(10)), t("b", 2, Some(20)), t("c", 3, None)];
        let restored = [t("a", 1, Some(10)), t("b", 2, Some(21)), t("d", 0, Some(0))];
        let text: Vec<String> = compare_tables(&recorded, &restored)
            .iter()
            .map(|m| m.to_string())
            .collect();
        expect_test::expect![[r#"
            [
                "`app`.`b` differs: recorded 2 rows, checksum 20, restored 2 rows, checksum 21",
                "`app`.`c` is missing from the restore (recorded 3 rows, checksum NULL)",
                "`app`.`d` is in the restore but was not recorded (0 rows, checksum 0)",
            ]
        "#]]
        .assert_debug_eq(&text);
        assert!(compare_tables(&recorded, &recorded).is_empty());
    }
}
