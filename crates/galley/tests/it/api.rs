//! The controller's REST API against a real 3-node cluster with its proxy, started by
//! `galley up`: authentication (sessions, CSRF, API tokens, the cluster token, rate
//! limiting, every route closed without credentials), the overview endpoints, and the
//! console admin password set from stdin.

use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use mysql_async::prelude::Queryable as _;
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

/// The log without its terminal colour codes (`ESC [ ... m`).
fn without_colors(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for code in chars.by_ref() {
                if code == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
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
    let status: Value =
        serde_json::from_slice(&cluster.galley(&["status", "--json"]).stdout).unwrap();
    assert_eq!(
        status["controller"]["console_url"],
        format!("http://127.0.0.1:{port}/")
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

    // The operator's intent for a node, as a deployment's rolling restart sets it from
    // another host: recorded where the controller reads it, and taken back.
    let store_file = cluster.path().join("controller").join("galley.db");
    let stopped = || {
        store::Store::open(&store_file)
            .unwrap()
            .stopped_on_purpose()
            .unwrap()
    };
    let (status, _, body) = root
        .send(
            Method::PUT,
            "/api/v1/nodes/node3/desired",
            Some(json!({"running": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"node": "node3", "running": false}));
    assert_eq!(stopped(), vec!["node3".to_owned()]);
    let (status, _, body) = root
        .send(
            Method::PUT,
            "/api/v1/nodes/node3/desired",
            Some(json!({"running": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(stopped().is_empty());
    let (status, _, body) = root
        .send(
            Method::PUT,
            "/api/v1/nodes/node9/desired",
            Some(json!({"running": false})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("node1, node2, node3"),
        "{body}"
    );
    let (status, _, body) = root
        .send(
            Method::PUT,
            "/api/v1/nodes/node3/desired",
            Some(json!({"running": "no"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
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
    let (status, created) = session
        .post("/api/v1/tokens", json!({"name": "ci", "scope": "admin"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["scope"], "admin");
    assert!(created["expires_ms"].is_i64(), "{created}");
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

    manage_databases_users_and_openstack(&cluster, &root, &session).await;

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
            .any(|d| d["rule"] == "healthy" && d["situation"] == "healthy"),
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
    assert_eq!(document["openapi"], "3.1.0");
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

    // Rate limiting: wrong logins for one user from one address are limited (a burst of
    // five, counting the one above, then one every 12 s); once limited, even the right
    // password from that address waits, with Retry-After.
    let mut limited = false;
    for attempt in 0..6 {
        let (status, _, _) = api.login("admin", "wrong").await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    assert!(limited, "six more wrong logins in a row were never limited");
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

    // The controller's log says who changed what, and holds no secret.
    let log = without_colors(
        &std::fs::read_to_string(cluster.path().join("controller/controller.log")).unwrap(),
    );
    assert!(
        log.contains(r#"API POST "/api/v1/databases""#) && log.contains(r#"by="admin""#),
        "{log}"
    );
    assert!(log.contains(r#"by="token:ci"#), "{log}");
    for secret in [
        password.as_str(),
        new_password,
        token.as_str(),
        cluster.secrets().cluster_token.as_str(),
        cluster.secrets().admin_password.as_str(),
    ] {
        assert!(
            !log.contains(secret),
            "a secret reached the controller's log"
        );
    }
}

async fn databases(conn: &mut mysql_async::Conn) -> Vec<String> {
    conn.query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1")
        .await
        .unwrap()
}

async fn accounts(conn: &mut mysql_async::Conn) -> Vec<(String, String)> {
    conn.query("SELECT User, Host FROM mysql.user ORDER BY 1, 2")
        .await
        .unwrap()
}

/// Schemas, users, grants and OpenStack provisioning, checked over SQL on another node
/// than the one the API ran its statements on (so Galera replicated them).
async fn manage_databases_users_and_openstack(cluster: &TestCluster, root: &Api, session: &Api) {
    let mut sql = cluster.conn(3).await;

    // Databases: create (409 the second time), refuse a drop without confirmation,
    // drop; a CSRF-less cookie request creates nothing.
    let (status, body) = session
        .without_csrf()
        .post("/api/v1/databases", json!({"name": "csrf_victim"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, created) = session
        .post(
            "/api/v1/databases",
            json!({"name": "app_one", "charset": "utf8mb4"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], "app_one");
    assert_eq!(created["charset"], "utf8mb4");
    let (status, body) = root
        .post("/api/v1/databases", json!({"name": "app_one"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, listed) = root.get("/api/v1/databases").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "app_one"),
        "{listed}"
    );
    let schemas = databases(&mut sql).await;
    assert!(schemas.contains(&"app_one".to_owned()), "{schemas:?}");
    assert!(!schemas.contains(&"csrf_victim".to_owned()), "{schemas:?}");
    let (status, body) = root.delete("/api/v1/databases/app_one?confirm=other").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(databases(&mut sql).await.contains(&"app_one".to_owned()));
    let (status, body) = root.delete("/api/v1/databases/mysql?confirm=mysql").await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "system schemas are refused: {body}"
    );

    // Users and grants.
    let (status, created) = session
        .post("/api/v1/users", json!({"user": "app_user", "host": "%"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let generated = created["password"].as_str().unwrap().to_owned();
    assert!(generated.len() >= 16, "{created}");
    let (status, body) = root
        .post("/api/v1/users", json!({"user": "app_user", "host": "%"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, granted) = root
        .post(
            "/api/v1/grants",
            json!({"user": "app_user", "host": "%", "database": "app_one", "privileges": ["SELECT", "INSERT"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{granted}");
    let grants = granted["grants"].to_string();
    assert!(
        grants.contains("SELECT, INSERT") && grants.contains("app\\\\_one"),
        "{grants}"
    );
    // The generated password works, and the grant holds, through node 2.
    let options = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(cluster.client_ports[1])
        .user(Some("app_user"))
        .pass(Some(generated.clone()))
        .db_name(Some("app_one"))
        .prefer_socket(false);
    let mut as_app = mysql_async::Conn::new(options).await.unwrap();
    as_app
        .query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .expect_err("only SELECT and INSERT were granted");
    as_app.disconnect().await.unwrap();
    let (status, revoked) = root
        .post(
            "/api/v1/revokes",
            json!({"user": "app_user", "host": "%", "database": "app_one", "privileges": ["INSERT"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    let grants = revoked["grants"].to_string();
    assert!(
        grants.contains("GRANT SELECT ON") && !grants.contains("INSERT"),
        "{grants}"
    );
    let (status, body) = root
        .post(
            "/api/v1/grants",
            json!({"user": "nobody", "host": "%", "database": "app_one", "privileges": ["ALL"]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, users) = root.get("/api/v1/users").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["user"] == "app_user" && u["host"] == "%"),
        "{users}"
    );
    assert!(
        !users.to_string().contains("PASSWORD '*"),
        "no password hash is shown: {users}"
    );
    let (status, body) = root
        .post(
            "/api/v1/users/app_user/%25/password",
            json!({"password": "chosen password 1"}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let (status, _, body) = root
        .send(Method::POST, "/api/v1/users/app_user/%25/password", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["password"].as_str().is_some_and(|p| p.len() >= 16),
        "{body}"
    );
    // A malformed body is a 400 in the API's error shape, not axum's plain text.
    let (status, body) = root.post("/api/v1/databases", json!({"nmae": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("nmae"), "{body}");

    // Injection attempts: refused with 400 naming the rule, and nothing executed.
    let schemas_before = databases(&mut sql).await;
    let accounts_before = accounts(&mut sql).await;
    for (path, body) in [
        (
            "/api/v1/databases",
            json!({"name": "x`; DROP DATABASE app_one; --"}),
        ),
        (
            "/api/v1/databases",
            json!({"name": "app_two", "charset": "utf8mb4; DROP DATABASE app_one"}),
        ),
        (
            "/api/v1/users",
            json!({"user": "a' OR '1'='1", "host": "%"}),
        ),
        (
            "/api/v1/users",
            json!({"user": "evil", "host": "%'; DROP USER 'app_user'@'%"}),
        ),
        (
            "/api/v1/grants",
            json!({"user": "app_user", "host": "%", "database": "app_one", "privileges": ["ALL ON *.* TO 'app_user'@'%'; --"]}),
        ),
        (
            "/api/v1/grants",
            json!({"user": "app_user", "host": "%", "database": "*", "privileges": ["ALL"]}),
        ),
        (
            "/api/v1/openstack/provision",
            json!({"services": ["nova; DROP DATABASE app_one"]}),
        ),
    ] {
        let (status, answer) = root.post(path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{answer}"
        );
    }
    let (status, body) = root.delete("/api/v1/users/app_user/%25'%20OR%20'1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(databases(&mut sql).await, schemas_before);
    assert_eq!(accounts(&mut sql).await, accounts_before);

    // Drop the user and the database.
    let (status, _) = root.delete("/api/v1/users/app_user/%25").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = root.delete("/api/v1/users/app_user/%25").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = session
        .delete("/api/v1/databases/app_one?confirm=app_one")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!databases(&mut sql).await.contains(&"app_one".to_owned()));
    let (status, _) = root
        .delete("/api/v1/databases/app_one?confirm=app_one")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // OpenStack: the catalog, a provision, a second one that changes nothing, the
    // config lines (which work through the proxy's writer), and drift after a manual
    // change.
    let (status, catalog) = root.get("/api/v1/openstack/catalog").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        catalog
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["service"] == "nova" && s["default"] == true),
        "{catalog}"
    );
    let (status, first) = session
        .post(
            "/api/v1/openstack/provision",
            json!({"services": ["keystone", "glance"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["changed"], true);
    assert!(
        first["services"][0]["changes"]
            .to_string()
            .contains("created database keystone"),
        "{first:#}"
    );
    let (status, second) = root
        .post(
            "/api/v1/openstack/provision",
            json!({"services": ["keystone", "glance"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["changed"], false, "{second:#}");
    assert_eq!(second["services"][0]["changes"], json!([]));
    assert_eq!(
        second["services"][0]["config"],
        first["services"][0]["config"]
    );
    let (status, shown) = root.get("/api/v1/openstack").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["services"].as_array().unwrap().len(), 2, "{shown}");
    let (status, headers, config) = root
        .send(
            Method::GET,
            "/api/v1/openstack/config?service=keystone",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("keystone.conf"),
        "{headers:?}"
    );
    let config = config.as_str().unwrap().to_owned();
    let (writer_port, _, _) = cluster.proxy_ports.unwrap();
    let prefix = "mysql+pymysql://keystone:";
    let start = config.find(prefix).expect("a connection URL") + prefix.len();
    let password = &config[start..config[start..].find('@').unwrap() + start];
    assert!(
        config.contains(&format!("@127.0.0.1:{writer_port}/keystone")),
        "{config}"
    );
    let options = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(writer_port)
        .user(Some("keystone"))
        .pass(Some(password.to_owned()))
        .db_name(Some("keystone"))
        .prefer_socket(false);
    let mut as_keystone = mysql_async::Conn::new(options).await.unwrap();
    as_keystone
        .query_drop("CREATE TABLE token (id INT PRIMARY KEY)")
        .await
        .unwrap();
    as_keystone.disconnect().await.unwrap();
    let (status, body) = root.get("/api/v1/openstack/config?service=heat").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (status, drift) = root.get("/api/v1/openstack/drift").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(drift["clean"], true, "{drift:#}");
    sql.query_drop("REVOKE ALL PRIVILEGES ON `glance`.* FROM 'glance'@'%'")
        .await
        .unwrap();
    let (status, drift) = root.get("/api/v1/openstack/drift").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(drift["clean"], false, "{drift:#}");
    let glance = drift["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "glance")
        .unwrap()
        .clone();
    assert!(
        !glance["missing"].as_array().unwrap().is_empty(),
        "{drift:#}"
    );
    // Provisioning again repairs it.
    let (_, repaired) = root
        .post(
            "/api/v1/openstack/provision",
            json!({"services": ["glance"]}),
        )
        .await;
    assert_eq!(repaired["changed"], true, "{repaired:#}");
    let (_, drift) = root.get("/api/v1/openstack/drift").await;
    assert_eq!(drift["clean"], true, "{drift:#}");
    sql.disconnect().await.unwrap();
}
