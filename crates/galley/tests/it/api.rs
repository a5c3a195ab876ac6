//! The controller's REST API against a real 3-node cluster with its proxy, started by
//! `galley up`: authentication (sessions, CSRF, API tokens, the cluster token, rate
//! limiting, every route closed without credentials), the overview endpoints, and the
//! console admin password set from stdin.

use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{TestCluster, GALLEY};

/// A client of one controller's API; `cookie` and `csrf` hold a console session.
struct Api {
    base: String,
    http: reqwest::Client,
    bearer: Option<String>,
    cookie: Option<String>,
    csrf: Option<String>,
}

impl Api {
    fn new(cluster: &TestCluster) -> Api {
        Api {
            base: format!("http://127.0.0.1:{}", cluster.controller_port.unwrap()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            bearer: None,
            cookie: None,
            csrf: None,
        }
    }

    fn with_bearer(&self, token: &str) -> Api {
        Api {
            base: self.base.clone(),
            http: self.http.clone(),
            bearer: Some(token.to_owned()),
            cookie: None,
            csrf: None,
        }
    }

    fn anonymous(&self) -> Api {
        Api {
            base: self.base.clone(),
            http: self.http.clone(),
            bearer: None,
            cookie: None,
            csrf: None,
        }
    }

    /// Sends a request; returns the status, the headers and the body as JSON (Null when
    /// empty, a string when not JSON).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", format!("galley_session={cookie}"));
        }
        if let Some(csrf) = &self.csrf {
            request = request.header("X-CSRF-Token", csrf);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, headers, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (status, _, body) = self.send(Method::GET, path, None).await;
        (status, body)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, body) = self.send(Method::POST, path, Some(body)).await;
        (status, body)
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        let (status, _, body) = self.send(Method::DELETE, path, None).await;
        (status, body)
    }

    /// Logs in; on success keeps the session cookie and CSRF token.
    async fn login(&self, username: &str, password: &str) -> (StatusCode, Option<Api>, Value) {
        let (status, headers, body) = self
            .send(
                Method::POST,
                "/api/v1/login",
                Some(json!({"username": username, "password": password})),
            )
            .await;
        if status != StatusCode::OK {
            return (status, None, body);
        }
        let set_cookie = headers["set-cookie"].to_str().unwrap().to_owned();
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(set_cookie.contains(attribute), "{set_cookie}");
        }
        assert!(!set_cookie.contains("Secure"), "no TLS here: {set_cookie}");
        let cookie = set_cookie
            .split(';')
            .next()
            .unwrap()
            .strip_prefix("galley_session=")
            .unwrap()
            .to_owned();
        assert_eq!(cookie.len(), 64, "a 256-bit session id in hex");
        let session = Api {
            base: self.base.clone(),
            http: self.http.clone(),
            bearer: None,
            cookie: Some(cookie),
            csrf: Some(body["csrf_token"].as_str().unwrap().to_owned()),
        };
        (status, Some(session), body)
    }

    /// The same session without its CSRF header.
    fn without_csrf(&self) -> Api {
        Api {
            csrf: None,
            cookie: self.cookie.clone(),
            base: self.base.clone(),
            http: self.http.clone(),
            bearer: None,
        }
    }
}

fn console_password(cluster: &TestCluster) -> String {
    cluster
        .secrets()
        .console_admin_password
        .expect("galley up wrote the console admin password")
}

/// Waits until the controller's latest observation has every node Synced; bounded.
async fn wait_observed_synced(api: &Api) -> Value {
    let mut last = Value::Null;
    for _ in 0..120 {
        let (status, cluster) = api.get("/api/v1/cluster").await;
        assert_eq!(status, StatusCode::OK, "{cluster}");
        let nodes = cluster["nodes"].as_array().unwrap();
        if nodes.len() == 3 && nodes.iter().all(|node| node["state"] == "Synced") {
            return cluster;
        }
        last = cluster;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the controller never observed every node Synced: {last:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_authentication_and_overview() {
    let cluster = TestCluster::with_proxy_and_controller();
    let up = cluster.galley_ok(&["up", "--detach"]);
    let password = console_password(&cluster);
    assert!(
        up.contains(&password) && up.contains("shown only this once"),
        "galley up shows the new console password once:\n{up}"
    );
    let port = cluster.controller_port.unwrap();
    assert!(
        up.contains(&format!("http://127.0.0.1:{port}/")),
        "galley up prints the console URL:\n{up}"
    );
    let api = Api::new(&cluster);

    // Health is public; every other route answers 401 without credentials, and with
    // wrong ones.
    let (status, body) = api.get("/api/v1/health").await;
    assert_eq!((status, body), (StatusCode::OK, json!({"ok": true})));
    let forged = api.with_bearer("galley_0000");
    for route in controller::api::route_table() {
        if route.access == controller::api::Access::Public {
            continue;
        }
        let path = route.path.replace(['{', '}'], "");
        for client in [&api.anonymous(), &forged] {
            let (status, _, body) = client
                .send(route.method.clone(), &path, Some(json!({})))
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{route:?}: {body}");
            assert!(body["error"].is_string(), "{route:?}: {body}");
        }
    }

    // The cluster token (what the CLI on this host uses) is a Bearer token.
    let root = api.with_bearer(&cluster.secrets().cluster_token);
    let observed = wait_observed_synced(&root).await;
    assert_eq!(observed["cluster"]["status"], "Primary");
    assert_eq!(observed["cluster"]["size"], 3);
    assert_eq!(observed["controller"]["auto_recover_nodes"], true);
    assert_eq!(
        observed["nodes"][0]["client_port"], cluster.client_ports[0],
        "{observed:#}"
    );
    // The proxy's writer is read from its admin endpoint.
    let proxy = &observed["proxy"];
    let (writer_port, reader_port, _) = cluster.proxy_ports.unwrap();
    assert_eq!(
        proxy["writer_address"],
        format!("127.0.0.1:{writer_port}"),
        "{observed:#}"
    );
    assert_eq!(proxy["reader_address"], format!("127.0.0.1:{reader_port}"));
    for _ in 0..40 {
        let (_, observed) = root.get("/api/v1/cluster").await;
        if observed["proxy"]["writer"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, observed) = root.get("/api/v1/cluster").await;
    assert_eq!(observed["proxy"]["writer"], "node1", "{observed:#}");

    // Login and the session.
    let (status, _, body) = api.login("admin", "not the password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, session, body) = api.login("admin", &password).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["username"], "admin");
    let session = session.unwrap();
    let (status, body) = session.get("/api/v1/session").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["username"], "admin");
    assert_eq!(body["csrf_token"], session.csrf.clone().unwrap().as_str());

    // A state-changing request with the cookie but no CSRF header is refused and
    // changes nothing; a wrong header too.
    let (status, body) = session
        .without_csrf()
        .post("/api/v1/tokens", json!({"name": "sneaky"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let mut wrong = session.without_csrf();
    wrong.csrf = Some("0".repeat(64));
    let (status, _) = wrong
        .post("/api/v1/tokens", json!({"name": "sneaky"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, tokens) = session.get("/api/v1/tokens").await;
    assert_eq!((status, tokens), (StatusCode::OK, json!([])));

    // API tokens: created (shown once), used, listed with last use, revoked.
    let (status, body) = session
        .post("/api/v1/tokens", json!({"name": "bad'name"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, created) = session.post("/api/v1/tokens", json!({"name": "ci"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_i64().unwrap();
    let by_token = api.with_bearer(&token);
    let (status, _) = by_token.get("/api/v1/events?limit=5").await;
    assert_eq!(status, StatusCode::OK);
    // A Bearer token needs no CSRF header, even to change state.
    let (status, second) = by_token
        .post("/api/v1/tokens", json!({"name": "second"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let (_, tokens) = root.get("/api/v1/tokens").await;
    let listed = tokens.as_array().unwrap();
    assert_eq!(listed.len(), 2, "{tokens}");
    assert_eq!(listed[0]["name"], "ci");
    assert!(listed[0]["last_used_ms"].is_i64(), "{tokens}");
    assert!(listed[0].get("token").is_none(), "secrets are shown once");
    assert!(!tokens.to_string().contains(&token));
    let (status, _) = session.delete(&format!("/api/v1/tokens/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = session.delete(&format!("/api/v1/tokens/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = by_token.get("/api/v1/events").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a revoked token is refused"
    );

    // The history: events, decisions and metric series.
    let (status, events) = session.get("/api/v1/events?limit=500").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["at_ms"].is_i64()
                && e["severity"].is_string()
                && e["kind"].is_string()
                && e["message"].is_string()),
        "{events:#}"
    );
    let (status, body) = session.get("/api/v1/events?node=nodeX").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("node1"), "{body}");
    let (status, decisions) = session.get("/api/v1/decisions?limit=10").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        decisions
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["rule"] == "healthy"),
        "{decisions:#}"
    );
    let mut history = Value::Null;
    for _ in 0..40 {
        let (status, body) = session.get("/api/v1/history?window=5m").await;
        assert_eq!(status, StatusCode::OK);
        history = body;
        if history["series"]["replication_bytes_per_s"].is_array() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for metric in [
        "qps",
        "qps:node1",
        "recv_queue:node3",
        "flow_control_paused",
        "replication_bytes_per_s",
    ] {
        let points = history["series"][metric].as_array();
        assert!(
            points.is_some_and(|points| !points.is_empty()),
            "{metric} missing: {history:#}"
        );
    }
    let (status, body) = session.get("/api/v1/history?window=2w").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("5m, 1h"), "{body}");

    // The OpenAPI document lists every route.
    let (status, document) = session.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"], "3.0.3");
    assert!(document["paths"]["/api/v1/cluster"]["get"].is_object());

    // Logout ends the session.
    let (status, _) = session.post("/api/v1/logout", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = session.get("/api/v1/session").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A new admin password from stdin: the old one stops working.
    let new_password = "a new console password";
    let mut child = std::process::Command::new(GALLEY)
        .args(["controller", "--set-admin-password", "--config"])
        .arg(cluster.path().join("galley.toml"))
        .arg("--dir")
        .arg(cluster.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{new_password}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let (status, _, _) = api.login("admin", new_password).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = api.login("admin", &password).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Rate limiting: after five failures (one above), the sixth attempt gets 429 with
    // Retry-After, even with the right password.
    for attempt in 0..4 {
        let (status, _, _) = api.login("admin", "wrong").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let (status, headers, body) = api
        .send(
            Method::POST,
            "/api/v1/login",
            Some(json!({"username": "admin", "password": new_password})),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");

    // The console is served at / without credentials (its page logs in).
    let (status, _) = api.get("/").await;
    assert_eq!(status, StatusCode::OK);
}
