//! The optional `auth` step of the matchmaker.

mod support;

use serde_json::json;
use support::{Client, Stack};

const AUTH_SECRET: &str = "auth-secret-auth-secret-auth-secret!";

fn token(claims: serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn stack_with_auth() -> Stack {
    let (mut mm, sig) = support::configs();
    mm.auth_jwt_secret = Some(AUTH_SECRET.into());
    Stack::start_with(mm, sig).await
}

#[tokio::test]
async fn with_a_secret_available_needs_auth_first() {
    let stack = stack_with_auth().await;
    let (mut a, _) = Client::matchmaker(&stack).await;
    a.send(json!({"type":"available"})).await;
    a.recv_error("unauthorized").await;
    a.send(json!({"type":"next"})).await;
    a.recv_error("unauthorized").await;
    a.assert_open().await;
}

#[tokio::test]
async fn with_a_secret_a_valid_token_authenticates_as_its_sub() {
    let stack = stack_with_auth().await;
    let (mut a, _) = Client::matchmaker(&stack).await;
    let exp = support::now() + 600;
    a.send(json!({"type":"auth","token":token(json!({"sub":"alice","exp":exp}), AUTH_SECRET)})).await;
    assert_eq!(a.recv_type("authenticated").await["userId"], "alice");
    a.send(json!({"type":"available"})).await;
    a.recv_type("queued").await;
}

#[tokio::test]
async fn with_a_secret_a_forged_or_expired_token_is_unauthorized() {
    let stack = stack_with_auth().await;
    let (mut a, _) = Client::matchmaker(&stack).await;
    let exp = support::now() + 600;
    let forged = token(json!({"sub":"mallory","exp":exp}), "not-the-secret-not-the-secret-not-it");
    a.send(json!({"type":"auth","token":forged})).await;
    a.recv_error("unauthorized").await;
    let expired = token(json!({"sub":"alice","exp":support::now() - 3600}), AUTH_SECRET);
    a.send(json!({"type":"auth","token":expired})).await;
    a.recv_error("unauthorized").await;
    a.send(json!({"type":"auth","token":"not-a-jwt"})).await;
    a.recv_error("unauthorized").await;
    a.send(json!({"type":"available"})).await;
    a.recv_error("unauthorized").await;
}

#[tokio::test]
async fn without_a_secret_any_token_is_accepted() {
    let stack = Stack::start().await;
    let (mut a, a_id) = Client::matchmaker(&stack).await;
    a.send(json!({"type":"auth","token":token(json!({"sub":"bob"}), "anything")})).await;
    assert_eq!(a.recv_type("authenticated").await["userId"], "bob");
    a.send(json!({"type":"auth","token":"opaque"})).await;
    assert_eq!(a.recv_type("authenticated").await["userId"], a_id.as_str());
}

#[tokio::test]
async fn without_a_secret_auth_is_optional() {
    let stack = Stack::start().await;
    let (mut a, _) = Client::matchmaker(&stack).await;
    a.send(json!({"type":"available"})).await;
    a.recv_type("queued").await;
}

#[tokio::test]
async fn auth_without_a_token_field_is_a_bad_message() {
    let stack = Stack::start().await;
    let (mut a, _) = Client::matchmaker(&stack).await;
    a.send(json!({"type":"auth"})).await;
    a.recv_error("bad-message").await;
    a.send(json!({"type":"auth","token":42})).await;
    a.recv_error("bad-message").await;
}
