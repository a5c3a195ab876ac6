//! wsrep status rows (`SHOW GLOBAL STATUS` name/value pairs, here one `name<TAB>value`
//! per line, as `mariadb -B -N` prints them) through `galera::WsrepStatus::from_variables`
//! and the health rules the proxy and the planner use. No panic; a node healthy for
//! writes is healthy for reads unless its receive queue is over the limit; and the
//! status survives the JSON trip inside the agent's report to the controller.

#![no_main]

use galera::{WsrepState, WsrepStatus};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the proxy's receive-queue limit (`recv_queue_limit`).
    let Some((&limit, rows)) = data.split_first() else {
        return;
    };
    let limit = i64::from(limit) - 1;
    let text = String::from_utf8_lossy(rows);
    let rows: Vec<(&str, &str)> = text
        .lines()
        .map(|line| line.split_once('\t').unwrap_or((line, "")))
        .collect();
    let status = WsrepStatus::from_variables(rows.iter().copied());

    let write = status.write_health();
    let read = status.read_health(limit);
    if write.is_ok() {
        assert!(status.ready && status.is_primary() && status.local_state == WsrepState::Synced);
        if status.local_recv_queue <= limit {
            assert!(read.is_ok(), "writable but not readable: {read:?}");
        }
    }
    if let Err(reason) = &read {
        assert!(!reason.to_string().is_empty());
    }
    let _ = status.local_state.to_string();

    let json = serde_json::to_string(&status).expect("a status serializes");
    let back: WsrepStatus = serde_json::from_str(&json)
        .unwrap_or_else(|error| panic!("the agent's report {json} cannot be read back: {error}"));
    let close = |a: f64, b: f64| a == b || (a - b).abs() <= a.abs().max(b.abs()) * 1e-12;
    assert!(close(back.flow_control_paused, status.flow_control_paused));
    assert_eq!(
        WsrepStatus {
            flow_control_paused: status.flow_control_paused,
            ..back
        },
        status
    );
});
