//! Every JSON body of the APIs. The controller's: each route of `controller::api::
//! route_table()` that takes a JSON body (or query parameters) gets the input as its body
//! (or query string) and goes through the real router, as the cluster token, with the
//! same extraction and validation the server runs; the route table is read at start, so
//! a new route is fuzzed without touching this file. The answer is never a 5xx other
//! than 503 (no Synced node to run SQL on: nothing answers SQL here), and every refusal
//! is the API's `{"error": "..."}` body. The agent's request bodies, and the bodies the
//! controller and the CLI read from agents and proxies, are deserialized as axum's `Json`
//! does; what parses must serialize and parse back.
//!
//! The input's first line names the route (`POST /api/v1/users`, as in the route table,
//! optionally ` #N` to pick other path parameters) or the type (`agent StartRequest`);
//! a line that names none picks one by its hash. The rest is the body.

#![no_main]

#[path = "controller_api_harness.rs"]
mod controller_api_harness;

use controller_api_harness::{controller_call, harness};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// As axum's `Json` reads a body; what parses serializes and parses back to the same JSON.
fn round_trip<T: DeserializeOwned + Serialize>(input: &[u8]) {
    let Ok(value) = serde_json::from_slice::<T>(input) else {
        return;
    };
    let json = serde_json::to_value(&value).expect("a parsed body serializes");
    let again: T = serde_json::from_value(json.clone())
        .unwrap_or_else(|error| panic!("{json} does not parse back: {error}"));
    assert_eq!(serde_json::to_value(&again).unwrap(), json);
}

/// The agent's request bodies, then the bodies that the controller and the CLI read
/// from agents and proxies.
const TYPED: &[(&str, fn(&[u8]))] = &[
    ("agent StartRequest", round_trip::<agent::api::StartRequest>),
    ("agent WipeRequest", round_trip::<agent::api::WipeRequest>),
    ("agent NodeReport", round_trip::<agent::api::NodeReport>),
    (
        "agent StartResponse",
        round_trip::<agent::api::StartResponse>,
    ),
    ("agent StopResponse", round_trip::<agent::api::StopResponse>),
    ("agent InitResponse", round_trip::<agent::api::InitResponse>),
    (
        "agent RecoverResponse",
        round_trip::<agent::api::RecoverResponse>,
    ),
    ("agent WipeResponse", round_trip::<agent::api::WipeResponse>),
    ("agent ErrorBody", round_trip::<agent::api::ErrorBody>),
    ("proxy ProxyStatus", round_trip::<proxy::ProxyStatus>),
    (
        "controller ErrorBody",
        round_trip::<controller_api::ErrorBody>,
    ),
];

fuzz_target!(|data: &[u8]| {
    let harness = harness();
    let (line, input) = match data.iter().position(|&b| b == b'\n') {
        Some(end) => (&data[..end], &data[end + 1..]),
        None => (data, &[][..]),
    };
    let line = String::from_utf8_lossy(line);
    let (name, pick) = match line.rsplit_once(" #") {
        Some((name, pick)) => (name, pick.trim().parse::<u8>().unwrap_or(0)),
        None => (line.as_ref(), 0),
    };
    let route = harness
        .routes
        .iter()
        .position(|route| name == format!("{} {}", route.method, route.path));
    let typed = TYPED.iter().position(|(typed, _)| *typed == name);
    let choice = match (route, typed) {
        (Some(route), _) => route,
        (None, Some(typed)) => harness.routes.len() + typed,
        (None, None) => {
            let hash = name.bytes().fold(0usize, |hash, b| {
                hash.wrapping_mul(31).wrapping_add(usize::from(b))
            });
            hash % (harness.routes.len() + TYPED.len())
        }
    };
    match harness.routes.get(choice) {
        Some(route) => controller_call(harness, route, pick, input),
        None => (TYPED[choice - harness.routes.len()].1)(input),
    }
});
