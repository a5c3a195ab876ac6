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

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};
use controller::api::{self, ApiSecrets, ApiState, RemoteAddr};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tower::ServiceExt as _;

struct Route {
    method: Method,
    path: &'static str,
    /// True: the input is the query string; false: the JSON body.
    query: bool,
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    routes: Vec<Route>,
}

/// Path parameter values: valid ones first, then hostile ones (percent-encoded).
const PARAMETERS: &[&str] = &[
    "node1",
    "app",
    "%25",
    "1",
    "appdb",
    "",
    "%2e%2e",
    "a%27b%22c",
    "%C3%28",
    "%00",
    "x%0Ay",
    "localhost",
    "%F0%9F%A6%80",
];

/// A state directory of its own per process; those of processes that are gone are
/// removed first (libFuzzer ends the process without running destructors).
fn state_dir() -> std::path::PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    if let Ok(entries) = std::fs::read_dir(&base) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("galley-fuzz-api-") {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }
    let dir = base.join(format!("galley-fuzz-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let dir = state_dir();
        let root = dir.display();
        let mut text = format!(
            "[cluster]\nname = \"fuzz\"\nsecrets_file = \"{root}/secrets.toml\"\n\n\
             [controller]\nstate_dir = \"{root}/controller\"\n"
        );
        for n in 1..=3 {
            text.push_str(&format!(
                "\n[[node]]\nname = \"node{n}\"\naddress = \"127.0.0.1\"\nclient_port = {}\n\
                 galera_port = {}\nist_port = {}\nsst_port = {}\nagent_port = {}\n\
                 data_dir = \"{root}/node{n}/data\"\nrun_dir = \"{root}/node{n}/run\"\n\
                 log_dir = \"{root}/node{n}/log\"\n",
                3300 + n,
                4500 + n,
                4510 + n,
                4520 + n,
                4530 + n
            ));
        }
        let loaded = spec::parse(&dir.join("galley.toml"), &text).expect("the fuzz spec");
        let settings = loaded
            .spec
            .controller
            .clone()
            .expect("a [controller] section");
        // No observation is published: the management routes validate their input, then
        // answer 503 for want of a Synced node, and never reach for a real server.
        let state = ApiState::new(
            loaded.spec,
            settings,
            ApiSecrets {
                cluster_token: "cluster-token".to_owned(),
                admin_user: "galley_admin".to_owned(),
                admin_password: "unused".to_owned(),
            },
            controller::Observations::default(),
            false,
        )
        .expect("the API state");
        let routes = api::route_table()
            .into_iter()
            .filter(|route| route.doc.request.is_some() || route.doc.query.is_some())
            .map(|route| Route {
                method: route.method,
                path: route.path,
                query: route.doc.request.is_none(),
            })
            .collect();
        Harness {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            router: api::router(Arc::clone(&state)),
            routes,
        }
    })
}

/// The path with each `{parameter}` replaced, the choice driven by `pick`.
fn fill_path(path: &str, mut pick: u8) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').expect("a closed parameter") + start;
        out.push_str(&rest[..start]);
        out.push_str(PARAMETERS[usize::from(pick) % PARAMETERS.len()]);
        pick = pick.rotate_left(3).wrapping_add(1);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Bytes as a query string: `=` and `&` kept, everything else outside the unreserved
/// characters percent-encoded.
fn query_string(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~=&".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn controller_call(harness: &Harness, route: &Route, pick: u8, input: &[u8]) {
    let mut uri = fill_path(route.path, pick);
    let mut request = Request::builder()
        .method(route.method.clone())
        .header("authorization", "Bearer cluster-token");
    let body = if route.query {
        uri.push('?');
        uri.push_str(&query_string(input));
        Body::empty()
    } else {
        request = request.header("content-type", "application/json");
        Body::from(input.to_vec())
    };
    let mut request = request.uri(&uri).body(body).expect("a valid request");
    request
        .extensions_mut()
        .insert(ConnectInfo(RemoteAddr("127.0.0.1:50000".parse().unwrap())));
    let router = harness.router.clone();
    harness.runtime.block_on(async {
        let response = router
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
            .await
            .expect("the body is read");
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !status.is_server_error() || status.as_u16() == 503,
            "{} {uri} answered {status}: {text}",
            route.method
        );
        if !status.is_success() {
            let error: controller_api::ErrorBody =
                serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                    panic!(
                        "{} {uri} refused with {status} but no error body ({e}): {text}",
                        route.method
                    )
                });
            assert!(!error.error.is_empty());
        }
    });
}

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
