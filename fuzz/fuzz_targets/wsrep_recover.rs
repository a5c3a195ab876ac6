//! The log of `mariadbd --wsrep-recover` (`galera::parse_recovered_position`), from which
//! the agent learns a crashed node's position. Checked against a plain model: the last
//! line holding `WSREP: Recovered position:` followed by a valid `uuid:seqno` wins. The
//! position prints and parses back to itself.

#![no_main]

use galera::Position;
use libfuzzer_sys::fuzz_target;

const MARKER: &str = "WSREP: Recovered position:";

fn model(log: &str) -> Option<Position> {
    let mut found = None;
    for line in log.lines() {
        if let Some((_, rest)) = line.split_once(MARKER) {
            if let Some(position) = Position::parse(rest) {
                found = Some(position);
            }
        }
    }
    found
}

fuzz_target!(|data: &[u8]| {
    let log = String::from_utf8_lossy(data);
    let position = galera::parse_recovered_position(&log);
    assert_eq!(position, model(&log));
    if let Some(position) = position {
        assert!(position.seqno >= -1);
        assert_eq!(position.uuid.len(), 36);
        assert_eq!(Position::parse(&position.to_string()), Some(position));
    }
});
