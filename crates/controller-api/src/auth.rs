//! The bodies of login, session and API token routes (`/login`, `/session`, `/tokens`),
//! and the scopes that say what a caller may do.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The longest console user name a login accepts.
pub const MAX_USERNAME_LENGTH: usize = 64;
/// The longest password a login accepts, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// What a caller may do. Each scope includes the ones before it:
///
/// - `read`: every GET of the cluster's state and history, the databases, the accounts
///   (without passwords), the OpenStack catalog and drift, the API document.
/// - `manage`: also change things (databases, accounts, grants, OpenStack provisioning,
///   whether a node should run) and read the OpenStack service passwords (`GET
///   /openstack`, `GET /openstack/config`).
/// - `admin`: also list, create and revoke API tokens.
///
/// A console session and the cluster token have `admin`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    Read,
    Manage,
    Admin,
}

impl TokenScope {
    pub const ALL: [TokenScope; 3] = [TokenScope::Read, TokenScope::Manage, TokenScope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Read => "read",
            TokenScope::Manage => "manage",
            TokenScope::Admin => "admin",
        }
    }

    /// The scope named `name`, or an error naming the allowed ones.
    pub fn parse(name: &str) -> Result<TokenScope, String> {
        TokenScope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == name)
            .ok_or_else(|| format!("unknown scope {name:?}: use read, manage or admin"))
    }

    /// Whether a caller with this scope may use a route that needs `needed`.
    pub fn allows(self, needed: TokenScope) -> bool {
        self >= needed
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /login`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(example = LoginRequest::example())]
pub struct LoginRequest {
    /// 1 to 64 letters, digits, `.`, `_`, `-` or `@`.
    pub username: String,
    /// At most 1024 bytes.
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
    /// What this caller may do.
    pub scope: TokenScope,
    /// When this session or token stops working (milliseconds since the Unix epoch);
    /// null for the cluster token.
    pub expires_ms: Option<i64>,
}

impl Whoami {
    fn example() -> Whoami {
        Whoami {
            username: "admin".to_owned(),
            csrf_token: Some("5f0c3b1e9a7d4c2b8e6f1a3d5c7b9e0f".to_owned()),
            scope: TokenScope::Admin,
            expires_ms: Some(1_767_268_800_000),
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
    pub scope: TokenScope,
    /// The console user whose password change or removal revokes the token; null for a
    /// token made with the cluster token.
    pub owner: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// The token is refused from this time on.
    pub expires_ms: i64,
    /// Whether it has expired (by the controller's clock).
    pub expired: bool,
    /// null when the token was never used. Recorded at most once a minute.
    pub last_used_ms: Option<i64>,
}

impl TokenInfo {
    fn example() -> TokenInfo {
        TokenInfo {
            id: 3,
            name: "ci".to_owned(),
            scope: TokenScope::Read,
            owner: Some("admin".to_owned()),
            created_ms: 1_767_225_600_000,
            expires_ms: 1_775_001_600_000,
            expired: false,
            last_used_ms: None,
        }
    }
}

/// The lifetime of a token when the request names none, in days.
pub const DEFAULT_TOKEN_LIFETIME_DAYS: u32 = 90;
/// The longest lifetime a token may have, in days.
pub const MAX_TOKEN_LIFETIME_DAYS: u32 = 365;

/// `POST /tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = NewTokenRequest::example())]
pub struct NewTokenRequest {
    /// 1 to 64 letters, digits, spaces, `-`, `_` or `.`.
    pub name: String,
    /// What the token may do; `read` when left out. No wider than the creator's own.
    #[serde(default = "read_scope")]
    pub scope: TokenScope,
    /// Days until the token expires: 1 to 365, 90 when left out. A token made with
    /// another token expires no later than that one.
    #[serde(default)]
    pub lifetime_days: Option<u32>,
}

fn read_scope() -> TokenScope {
    TokenScope::Read
}

impl NewTokenRequest {
    fn example() -> NewTokenRequest {
        NewTokenRequest {
            name: "ci".to_owned(),
            scope: TokenScope::Read,
            lifetime_days: Some(30),
        }
    }
}

/// A created API token: its secret is in this answer only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(example = NewToken::example())]
pub struct NewToken {
    pub id: i64,
    pub name: String,
    pub scope: TokenScope,
    /// Milliseconds since the Unix epoch.
    pub expires_ms: i64,
    pub token: String,
}

impl NewToken {
    fn example() -> NewToken {
        NewToken {
            id: 3,
            name: "ci".to_owned(),
            scope: TokenScope::Read,
            expires_ms: 1_769_817_600_000,
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
            .field("scope", &self.scope)
            .field("expires_ms", &self.expires_ms)
            .finish_non_exhaustive()
    }
}
