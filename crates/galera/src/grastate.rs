//! `grastate.dat` (the node's saved position) and the position `mariadbd --wsrep-recover`
//! prints.
//!
//! The file looks like this; while the node runs, or after a crash, seqno is -1:
//!
//! ```text
//! # GALERA saved state
//! version: 2.1
//! uuid:    1f0e1e0c-7a4b-11ef-9f4e-2b7f9ad1c5b1
//! seqno:   42
//! safe_to_bootstrap: 1
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

pub const ZERO_UUID: &str = "00000000-0000-0000-0000-000000000000";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraState {
    pub version: String,
    pub uuid: String,
    /// -1 while running or after a crash: the real position then comes from recovery.
    pub seqno: i64,
    pub safe_to_bootstrap: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrastateError {
    #[error("line {line}: `{text}` is not a `key: value` line")]
    Malformed { line: usize, text: String },
    #[error("`{key}` is missing")]
    Missing { key: &'static str },
    #[error("`uuid` is `{0}`, not a UUID like 1f0e1e0c-7a4b-11ef-9f4e-2b7f9ad1c5b1")]
    BadUuid(String),
    #[error("`seqno` is `{0}`, not an integer of -1 or more")]
    BadSeqno(String),
    #[error("`safe_to_bootstrap` is `{0}`; allowed: 0 or 1")]
    BadSafeToBootstrap(String),
}

impl GraState {
    pub fn parse(text: &str) -> Result<GraState, GrastateError> {
        let mut version = None;
        let mut uuid = None;
        let mut seqno = None;
        let mut safe_to_bootstrap = None;
        for (index, raw_line) in text.lines().enumerate() {
            let line = raw_line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(GrastateError::Malformed {
                    line: index + 1,
                    text: line.to_owned(),
                });
            };
            let value = value.trim();
            match key.trim() {
                "version" => version = Some(value.to_owned()),
                "uuid" => {
                    if !is_uuid(value) {
                        return Err(GrastateError::BadUuid(value.to_owned()));
                    }
                    uuid = Some(value.to_owned());
                }
                "seqno" => match value.parse::<i64>() {
                    Ok(n) if n >= -1 => seqno = Some(n),
                    _ => return Err(GrastateError::BadSeqno(value.to_owned())),
                },
                "safe_to_bootstrap" => match value {
                    "0" => safe_to_bootstrap = Some(false),
                    "1" => safe_to_bootstrap = Some(true),
                    other => return Err(GrastateError::BadSafeToBootstrap(other.to_owned())),
                },
                // Newer providers may add keys; unknown ones are not an error.
                _ => {}
            }
        }
        Ok(GraState {
            version: version.ok_or(GrastateError::Missing { key: "version" })?,
            uuid: uuid.ok_or(GrastateError::Missing { key: "uuid" })?,
            seqno: seqno.ok_or(GrastateError::Missing { key: "seqno" })?,
            // Files written by Galera 3 have no such key: then it is not safe.
            safe_to_bootstrap: safe_to_bootstrap.unwrap_or(false),
        })
    }

    /// The file text, as Galera writes it.
    pub fn render(&self) -> String {
        format!(
            "# GALERA saved state\nversion: {}\nuuid:    {}\nseqno:   {}\nsafe_to_bootstrap: {}\n",
            self.version,
            self.uuid,
            self.seqno,
            u8::from(self.safe_to_bootstrap)
        )
    }

    /// The saved position, when the file holds one (after a graceful shutdown).
    pub fn position(&self) -> Option<Position> {
        (self.seqno >= 0 && self.uuid != ZERO_UUID).then(|| Position {
            uuid: self.uuid.clone(),
            seqno: self.seqno,
        })
    }
}

/// A point in a cluster's history: the cluster UUID and the last applied seqno.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub uuid: String,
    pub seqno: i64,
}

impl Position {
    /// Parses `uuid:seqno`.
    pub fn parse(text: &str) -> Option<Position> {
        let (uuid, seqno) = text.trim().rsplit_once(':')?;
        let seqno = seqno.parse::<i64>().ok()?;
        (is_uuid(uuid) && seqno >= -1).then(|| Position {
            uuid: uuid.to_owned(),
            seqno,
        })
    }

    /// An empty data dir recovers to the zero UUID and seqno -1: no history at all.
    pub fn is_empty(&self) -> bool {
        self.uuid == ZERO_UUID || self.seqno < 0
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.uuid, self.seqno)
    }
}

/// Finds the last `WSREP: Recovered position: uuid:seqno` in `mariadbd --wsrep-recover`
/// output.
pub fn parse_recovered_position(log: &str) -> Option<Position> {
    log.lines()
        .rev()
        .filter_map(|line| line.split_once("WSREP: Recovered position:"))
        .find_map(|(_, rest)| Position::parse(rest))
}

/// The node's own gcomm UUID from `gvwstate.dat` (`my_uuid: ...`), which Galera keeps
/// after a crash. Only a well-formed UUID is returned, so it can go into SQL.
pub fn parse_gvwstate_my_uuid(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("my_uuid:"))
        .map(str::trim)
        .find(|uuid| is_uuid(uuid))
        .map(str::to_owned)
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNNING: &str = "# GALERA saved state\nversion: 2.1\nuuid:    259f0f64-2a80-46ae-a206-519b5024470e\nseqno:   -1\nsafe_to_bootstrap: 0\n";

    #[test]
    fn parses_a_running_node() {
        let state = GraState::parse(RUNNING).unwrap();
        assert_eq!(state.uuid, "259f0f64-2a80-46ae-a206-519b5024470e");
        assert_eq!(state.seqno, -1);
        assert!(!state.safe_to_bootstrap);
        assert_eq!(state.position(), None);
    }

    #[test]
    fn render_round_trips() {
        let state = GraState {
            version: "2.1".into(),
            uuid: "259f0f64-2a80-46ae-a206-519b5024470e".into(),
            seqno: 42,
            safe_to_bootstrap: true,
        };
        assert_eq!(GraState::parse(&state.render()).unwrap(), state);
        assert_eq!(
            state.position().unwrap().to_string(),
            "259f0f64-2a80-46ae-a206-519b5024470e:42"
        );
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let cases = [
            ("version: 2.1\nuuid: nope\nseqno: 1\n", "`uuid` is `nope`"),
            ("version: 2.1\nuuid: 259f0f64-2a80-46ae-a206-519b5024470e\nseqno: x\n", "`seqno` is `x`"),
            ("version: 2.1\nseqno: 1\n", "`uuid` is missing"),
            ("garbage without colon\n", "line 1"),
            (
                "version: 2.1\nuuid: 259f0f64-2a80-46ae-a206-519b5024470e\nseqno: 3\nsafe_to_bootstrap: yes\n",
                "allowed: 0 or 1",
            ),
            ("", "`version` is missing"),
        ];
        for (text, expected) in cases {
            let error = GraState::parse(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text:?} gave {error:?}");
        }
    }

    #[test]
    fn reads_my_uuid_from_gvwstate() {
        let text = "my_uuid: 907fb04a-eac2-11f1-8c91-2b8e501b5b82\n#vwbeg\nview_id: 3 907fb04a-eac2-11f1-8c91-2b8e501b5b82 5\n";
        assert_eq!(
            parse_gvwstate_my_uuid(text).as_deref(),
            Some("907fb04a-eac2-11f1-8c91-2b8e501b5b82")
        );
        assert_eq!(
            parse_gvwstate_my_uuid("my_uuid: x'; DROP TABLE t; --\n"),
            None
        );
        assert_eq!(parse_gvwstate_my_uuid(""), None);
    }

    #[test]
    fn finds_the_recovered_position_in_the_log() {
        let log = "2026-11-28  0:04:17 0 [Note] InnoDB: Starting\n\
                   2026-11-28  0:04:18 0 [Note] WSREP: Recovered position: 259f0f64-2a80-46ae-a206-519b5024470e:17\n";
        let position = parse_recovered_position(log).unwrap();
        assert_eq!(position.seqno, 17);
        assert!(!position.is_empty());
        let empty = parse_recovered_position(&format!("WSREP: Recovered position: {ZERO_UUID}:-1"))
            .unwrap();
        assert!(empty.is_empty());
        assert_eq!(parse_recovered_position("no such line"), None);
    }
}
