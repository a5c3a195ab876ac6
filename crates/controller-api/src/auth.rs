//! The bodies of login, session and API token routes (`/login`, `/session`, `/tokens`).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `POST /login`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(example = LoginRequest::example())]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

impl LoginRequest {
    fn example() -> LoginRequest {
        LoginRequest {
            username: "admin".to_owned(),
            password: "correct horse battery staple".to_owned(),
        }
    }
}

/// Hides the password.
impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Who is calling (`POST /login`, `GET /session`): a console user, `token:<name>` or
/// `cluster-token`. Only a console session has a CSRF token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(example = Whoami::example())]
pub struct Whoami {
    pub username: String,
    /// Sent as `X-CSRF-Token` on every state-changing request made with the cookie.
    pub csrf_token: Option<String>,
}

impl Whoami {
    fn example() -> Whoami {
        Whoami {
            username: "admin".to_owned(),
            csrf_token: Some("5f0c3b1e9a7d4c2b8e6f1a3d5c7b9e0f".to_owned()),
        }
    }
}

/// An API token as `GET /tokens` lists it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(example = TokenInfo::example())]
pub struct TokenInfo {
    /// What `DELETE /tokens/{id}` takes.
    pub id: i64,
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// null when the token was never used.
    pub last_used_ms: Option<i64>,
}

impl TokenInfo {
    fn example() -> TokenInfo {
        TokenInfo {
            id: 3,
            name: "ci".to_owned(),
            created_ms: 1_767_225_600_000,
            last_used_ms: None,
        }
    }
}

/// `POST /tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(example = NewTokenRequest::example())]
pub struct NewTokenRequest {
    /// 1 to 64 letters, digits, spaces, `-`, `_` or `.`.
    pub name: String,
}

impl NewTokenRequest {
    fn example() -> NewTokenRequest {
        NewTokenRequest {
            name: "ci".to_owned(),
        }
    }
}

/// A created API token: its secret is in this answer only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(example = NewToken::example())]
pub struct NewToken {
    pub id: i64,
    pub name: String,
    pub token: String,
}

impl NewToken {
    fn example() -> NewToken {
        NewToken {
            id: 3,
            name: "ci".to_owned(),
            token: "galley_3f1d0c9b8a7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c"
                .to_owned(),
        }
    }
}

/// Hides the secret.
impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewToken")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
