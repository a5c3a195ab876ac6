//! The agent API is served with `httpd`'s limits (`httpd::Limits::agent_api`).

use crate::support::TestNode;

#[tokio::test]
async fn an_oversized_body_gets_413_before_the_token_is_even_checked() {
    let node = TestNode::start().await;
    let limit = httpd::Limits::agent_api().max_body_bytes;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/wipe", node.base_url))
        .bearer_auth(&node.secrets.cluster_token)
        .header("content-type", "application/json")
        .body(vec![b' '; limit + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let text = response.text().await.unwrap();
    assert!(
        text.contains(&format!("this server accepts at most {limit} bytes")),
        "{text}"
    );
}
