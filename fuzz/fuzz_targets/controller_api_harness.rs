//! The controller's API for the fuzz targets `api_json` and `api_schema`: the real router
//! over a store of its own, the routes that take a JSON body or a query, and one request
//! sent through it with the checks every answer must pass.

// Each target uses only part of this module.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};
use controller::api::{self, ApiSecrets, ApiState, RemoteAddr};
use tower::ServiceExt as _;

pub struct Route {
    pub method: Method,
    pub path: &'static str,
    /// True: the input is the query string; false: the JSON body.
    pub query: bool,
}

pub struct Harness {
    pub runtime: tokio::runtime::Runtime,
    pub router: axum::Router,
    pub routes: Vec<Route>,
}

/// Path parameter values: valid ones first, then hostile ones (percent-encoded).
pub const PARAMETERS: &[&str] = &[
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
    // Not /dev/shm, though faster: galley.toml refuses directories under /dev.
    let base = std::env::temp_dir();
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

pub fn harness() -> &'static Harness {
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
pub fn fill_path(path: &str, mut pick: u8) -> String {
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
pub fn query_string(bytes: &[u8]) -> String {
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

/// Sends one request through the router as the cluster token and checks the answer:
/// never a 5xx but 503, every refusal the API's error body. Returns the status and, for
/// a refusal, its message.
pub fn send(harness: &Harness, method: &Method, uri: &str, body: Option<Vec<u8>>) -> (u16, String) {
    let mut request = Request::builder()
        .method(method.clone())
        .header("authorization", "Bearer cluster-token");
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let mut request = request
        .uri(uri)
        .body(body.map_or_else(Body::empty, Body::from))
        .expect("a valid request");
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
            "{method} {uri} answered {status}: {text}"
        );
        if status.is_success() {
            return (status.as_u16(), String::new());
        }
        let error: controller_api::ErrorBody = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!("{method} {uri} refused with {status} but no error body ({e}): {text}")
        });
        assert!(!error.error.is_empty());
        (status.as_u16(), error.error)
    })
}

/// The input as the route's JSON body, or as its query string.
pub fn controller_call(harness: &Harness, route: &Route, pick: u8, input: &[u8]) {
    let mut uri = fill_path(route.path, pick);
    let body = if route.query {
        uri.push('?');
        uri.push_str(&query_string(input));
        None
    } else {
        Some(input.to_vec())
    };
    send(harness, &route.method, &uri, body);
}
