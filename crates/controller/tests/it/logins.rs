//! Console logins against the API served in-process on a real socket, with clients
//! bound to different loopback addresses (Linux routes all of 127/8 to lo): a flood of
//! wrong logins from one address neither locks the admin out from another nor runs
//! more argon2 hashes at once than the pool has threads.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use controller::api::login_guard::{PAIR_BURST, SOURCE_BURST};
use controller::api::{self, ApiListener, ApiSecrets, ApiState};
use serde_json::json;

const PASSWORD: &str = "a long console password";

fn spec_text(dir: &Path) -> String {
    let root = dir.display();
    let mut text = format!(
        "[cluster]\nname = \"logins\"\nsecrets_file = \"{root}/secrets.toml\"\n\n\
         [controller]\nstate_dir = \"{root}/controller\"\n"
    );
    for n in 1..=3 {
        text.push_str(&format!(
            "\n[[node]]\nname = \"node{n}\"\naddress = \"127.0.0.1\"\nclient_port = {}\ngalera_port = {}\n\
             ist_port = {}\nsst_port = {}\nagent_port = {}\ndata_dir = \"{root}/node{n}/data\"\n\
             run_dir = \"{root}/node{n}/run\"\nlog_dir = \"{root}/node{n}/log\"\n",
            3300 + n,
            4500 + n,
            4510 + n,
            4520 + n,
            4530 + n
        ));
    }
    text
}

/// The API on 127.0.0.1 (clients may connect from any 127/8 source address), with the
/// console user `admin`. Returns the state, the port and the stop signal.
async fn start(dir: &Path) -> (Arc<ApiState>, u16, tokio::sync::oneshot::Sender<()>) {
    let loaded = spec::parse(&dir.join("galley.toml"), &spec_text(dir)).unwrap();
    let settings = loaded.spec.controller.clone().unwrap();
    let store = store::Store::open(&controller::store_path(&settings)).unwrap();
    api::auth::set_console_password(&store, "admin", PASSWORD, 1).unwrap();
    let state = ApiState::new(
        loaded.spec.clone(),
        settings,
        ApiSecrets {
            cluster_token: "cluster-token".to_owned(),
            admin_user: "galley_admin".to_owned(),
            admin_password: "unused".to_owned(),
        },
        controller::Observations::default(),
        false,
    )
    .unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(api::serve(ApiListener::Plain(tcp), state.clone(), async {
        let _ = stopped.await;
    }));
    (state, port, stop)
}

/// A client whose connections come from `source`.
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

async fn login(client: &reqwest::Client, port: u16, password: &str) -> u16 {
    client
        .post(format!("http://127.0.0.1:{port}/api/v1/login"))
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_wrong_logins_from_one_address_leaves_the_admin_in_from_another() {
    let dir = tempfile::tempdir().unwrap();
    let (state, port, stop) = start(dir.path()).await;
    let attacker = client_from("127.0.0.1");
    let mut flood = Vec::new();
    for _ in 0..300 {
        let attacker = attacker.clone();
        flood.push(tokio::spawn(async move {
            login(&attacker, port, "wrong").await
        }));
    }
    // While the flood is answered, the admin logs in from another address.
    let admin = login(&client_from("127.0.0.2"), port, PASSWORD).await;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for answer in flood {
        *statuses.entry(answer.await.unwrap()).or_default() += 1;
    }
    assert_eq!(
        admin, 200,
        "the admin was locked out; the flood got {statuses:?}"
    );
    // From one address, only the pair's burst reached argon2; the rest were refused
    // before any hashing.
    assert_eq!(
        statuses.get(&401).copied(),
        Some(PAIR_BURST as usize),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.get(&429).copied(),
        Some(300 - PAIR_BURST as usize),
        "{statuses:?}"
    );
    assert_eq!(state.password_checker().checked(), PAIR_BURST as u64 + 1);
    // The admin's address is still welcome after the flood, with the right password.
    assert_eq!(login(&client_from("127.0.0.2"), port, PASSWORD).await, 200);
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_logins_from_many_addresses_never_run_more_hashes_than_threads() {
    let dir = tempfile::tempdir().unwrap();
    let (state, port, stop) = start(dir.path()).await;
    // 60 addresses, each sending as many as its own limit lets through at once.
    let mut flood = Vec::new();
    for n in 0..60u8 {
        let client = client_from(&format!("127.0.1.{}", n + 1));
        for _ in 0..SOURCE_BURST {
            let client = client.clone();
            flood.push(tokio::spawn(
                async move { login(&client, port, "wrong").await },
            ));
        }
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for answer in flood {
        *statuses.entry(answer.await.unwrap()).or_default() += 1;
    }
    let checker = state.password_checker();
    assert!(
        checker.peak_running() <= checker.threads(),
        "{} hashes ran at once with {} threads",
        checker.peak_running(),
        checker.threads()
    );
    assert!(checker.peak_running() >= 1);
    // Each answer is a refusal: wrong password, limited, or busy (never 500).
    for status in statuses.keys() {
        assert!([401, 429, 503].contains(status), "{statuses:?}");
    }
    // 600 attempts cannot all have fitted the pool's threads and short queue.
    assert!(statuses.contains_key(&503), "{statuses:?}");
    // Afterwards the admin logs in, from an address of its own.
    assert_eq!(login(&client_from("127.0.0.2"), port, PASSWORD).await, 200);
    let _ = stop.send(());
}
