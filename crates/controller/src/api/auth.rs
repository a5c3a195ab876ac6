//! Authentication: console passwords (argon2), sessions (random 256-bit ids stored
//! hashed, a cookie, a CSRF token), login rate limiting, API tokens (random, stored as
//! SHA-256), the cluster token as a Bearer token, and the middleware that checks them.
//!
//! Why SHA-256 for tokens and session ids but argon2 for passwords: a 256-bit random
//! value cannot be guessed, so a fast hash only keeps a stolen database from being
//! replayed; a password can be guessed, so its hash must be slow.

use std::collections::{HashMap, VecDeque};

use argon2::password_hash::rand_core::{OsRng, RngCore as _};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::Argon2;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json};
use controller_api::{LoginRequest, NewToken, NewTokenRequest, TokenInfo, Whoami};
use sha2::{Digest as _, Sha256};
use store::{SessionRecord, Store};

use super::{
    Access, ApiError, ApiJson, ApiPath, ApiResult, RemoteAddr, Route, RouteDoc, SharedState,
};
use crate::now_ms;

/// The console's administrator.
pub const ADMIN_USER: &str = "admin";
pub const SESSION_COOKIE: &str = "galley_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A console session lasts twelve hours.
pub const SESSION_TTL_MS: i64 = 12 * 3_600_000;
/// Failed logins allowed per remote address and per user name in [`LIMIT_WINDOW_MS`].
pub const LOGIN_FAILURES_ALLOWED: usize = 5;
pub const LIMIT_WINDOW_MS: i64 = 60_000;
/// Passwords shorter than this are refused when set.
pub const MIN_PASSWORD_LENGTH: usize = 12;

/// `bytes` random bytes from the OS, as lower-case hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buffer);
    hex(&buffer)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The SHA-256 of a token or session id, as stored.
pub fn token_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// An argon2id hash (default parameters, random salt) in PHC string form.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashes with its default parameters")
        .to_string()
}

/// Whether `password` matches a PHC hash; a malformed hash matches nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Compares two secrets in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Refuses a console password that is too short to resist guessing.
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_LENGTH {
        return Err(format!(
            "the password is too short: it needs at least {MIN_PASSWORD_LENGTH} characters"
        ));
    }
    Ok(())
}

/// Sets a console user's password (hashing it); ends that user's sessions.
pub fn set_console_password(
    store: &Store,
    user: &str,
    password: &str,
    now_ms: i64,
) -> anyhow::Result<()> {
    check_new_password(password).map_err(anyhow::Error::msg)?;
    store.set_console_user(user, &hash_password(password), now_ms)?;
    Ok(())
}

/// Failed logins per key (`addr:<ip>` or `user:<name>`) in a sliding window. Time is
/// passed in, so that tests need no clock.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: HashMap<String, VecDeque<i64>>,
}

impl LoginLimiter {
    /// Above this many keys, stale ones are dropped, so that a stream of made-up user
    /// names cannot grow the map without bound.
    const MAX_KEYS: usize = 10_000;

    /// `Err(seconds to wait)` when any key has used up its failures in the window.
    pub fn check(&mut self, keys: &[String], now_ms: i64) -> Result<(), u64> {
        let mut wait_ms = 0;
        for key in keys {
            if let Some(failures) = self.failures.get_mut(key) {
                while failures
                    .front()
                    .is_some_and(|at| *at <= now_ms - LIMIT_WINDOW_MS)
                {
                    failures.pop_front();
                }
                if failures.len() >= LOGIN_FAILURES_ALLOWED {
                    let oldest = failures[failures.len() - LOGIN_FAILURES_ALLOWED];
                    wait_ms = wait_ms.max(oldest + LIMIT_WINDOW_MS - now_ms);
                }
            }
        }
        if wait_ms > 0 {
            // Rounded up: a client that waits this long is let in.
            return Err(((wait_ms + 999) / 1000) as u64);
        }
        Ok(())
    }

    pub fn record_failure(&mut self, keys: &[String], now_ms: i64) {
        if self.failures.len() > Self::MAX_KEYS {
            self.failures.retain(|_, failures| {
                failures
                    .back()
                    .is_some_and(|at| *at > now_ms - LIMIT_WINDOW_MS)
            });
        }
        for key in keys {
            self.failures
                .entry(key.clone())
                .or_default()
                .push_back(now_ms);
        }
    }

    pub fn record_success(&mut self, keys: &[String]) {
        for key in keys {
            self.failures.remove(key);
        }
    }
}

/// Who made a request, as the middleware established it.
#[derive(Debug, Clone)]
pub enum Identity {
    Session {
        id_hash: String,
        username: String,
        csrf_token: String,
    },
    ApiToken {
        id: i64,
        name: String,
    },
    ClusterToken,
}

impl Identity {
    /// Who, in words for the log: `admin`, `token:ci` (id 3), `cluster-token`.
    pub fn label(&self) -> String {
        match self {
            Identity::Session { username, .. } => username.clone(),
            Identity::ApiToken { id, name } => format!("token:{name} (id {id})"),
            Identity::ClusterToken => "cluster-token".to_owned(),
        }
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, message)
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
}

/// Establishes the caller's identity: a Bearer token when the request has one (never
/// falling back to a cookie when it is wrong), else the session cookie.
fn identify(state: &SharedState, headers: &HeaderMap, now: i64) -> ApiResult<Identity> {
    if let Some(authorization) = headers.get(header::AUTHORIZATION) {
        let presented = authorization
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
        if constant_time_eq(presented.as_bytes(), state.secrets.cluster_token.as_bytes()) {
            return Ok(Identity::ClusterToken);
        }
        let used = state.store().use_api_token(&token_hash(presented), now)?;
        return match used {
            Some(token) => Ok(Identity::ApiToken {
                id: token.id,
                name: token.name,
            }),
            None => Err(unauthorized(
                "the Bearer token is not valid (revoked, or never issued by this controller)",
            )),
        };
    }
    let Some(session_id) = session_cookie(headers) else {
        return Err(unauthorized(
            "not authenticated: log in (POST /api/v1/login) or send `Authorization: Bearer <token>`",
        ));
    };
    let id_hash = token_hash(&session_id);
    let session = state.store().session(&id_hash, now)?;
    match session {
        Some(session) => Ok(Identity::Session {
            id_hash,
            username: session.username,
            csrf_token: session.csrf_token,
        }),
        None => Err(unauthorized(
            "the session has expired or ended; log in again",
        )),
    }
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The middleware in front of every authenticated route.
pub async fn require_auth(
    State(state): State<SharedState>,
    mut request: Request,
    next: Next,
) -> Response {
    let identity = match identify(&state, request.headers(), now_ms()) {
        Ok(identity) => identity,
        Err(error) => return error.into_response(),
    };
    if let Identity::Session { csrf_token, .. } = &identity {
        if changes_state(request.method()) {
            let presented = request
                .headers()
                .get(CSRF_HEADER)
                .map(HeaderValue::as_bytes)
                .unwrap_or_default();
            if !constant_time_eq(presented, csrf_token.as_bytes()) {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "missing or wrong X-CSRF-Token header: a request made with the session cookie \
                     must carry the csrf_token that login and GET /api/v1/session return",
                )
                .into_response();
            }
        }
    }
    let audit = changes_state(request.method())
        .then(|| (request.method().clone(), request.uri().path().to_owned()));
    let who = identity.label();
    request.extensions_mut().insert(identity);
    let response = next.run(request).await;
    // Who changed what, for the controller's log (never a body: it may hold passwords).
    if let Some((method, path)) = audit {
        tracing::info!(by = %who, status = response.status().as_u16(), "API {method} {path}");
    }
    response
}

/// A hash to verify against when the user does not exist, so that an unknown user
/// takes as long to refuse as a wrong password.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("no user has this password"))
}

async fn login(
    State(state): State<SharedState>,
    ConnectInfo(remote): ConnectInfo<RemoteAddr>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let keys = [
        format!("addr:{}", remote.0.ip()),
        format!("user:{}", body.username),
    ];
    let now = now_ms();
    let limited = state
        .limiter
        .lock()
        .expect("limiter lock")
        .check(&keys, now);
    if let Err(seconds) = limited {
        return Err(ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!(
                "too many failed logins from this address or for this user; try again in {seconds} s"
            ),
            retry_after: Some(seconds),
        });
    }
    let stored = state.store().console_user_hash(&body.username)?;
    let password = body.password;
    let matches = tokio::task::spawn_blocking(move || match stored {
        Some(hash) => verify_password(&password, &hash),
        None => {
            verify_password(&password, dummy_hash());
            false
        }
    })
    .await
    .map_err(|error| ApiError::internal("password check failed", error))?;
    if !matches {
        state
            .limiter
            .lock()
            .expect("limiter lock")
            .record_failure(&keys, now);
        tracing::warn!(user = %body.username, remote = %remote.0.ip(), "console login refused");
        return Err(unauthorized("wrong user name or password"));
    }
    state
        .limiter
        .lock()
        .expect("limiter lock")
        .record_success(&keys);
    let session_id = random_hex(32);
    let csrf_token = random_hex(32);
    let record = SessionRecord {
        username: body.username.clone(),
        csrf_token: csrf_token.clone(),
        created_ms: now,
        expires_ms: now + SESSION_TTL_MS,
    };
    {
        let store = state.store();
        store.delete_expired_sessions(now)?;
        store.create_session(&token_hash(&session_id), &record)?;
    }
    tracing::info!(user = %body.username, remote = %remote.0.ip(), "console login");
    let cookie = format!(
        "{SESSION_COOKIE}={session_id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        SESSION_TTL_MS / 1000,
        if state.tls { "; Secure" } else { "" }
    );
    let mut response = Json(Whoami {
        username: body.username,
        csrf_token: Some(csrf_token),
    })
    .into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("the cookie is ASCII"),
    );
    Ok(response)
}

async fn logout(
    State(state): State<SharedState>,
    Extension(identity): Extension<Identity>,
) -> ApiResult<Response> {
    if let Identity::Session { id_hash, .. } = &identity {
        state.store().delete_session(id_hash)?;
    }
    let cookie = format!(
        "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        if state.tls { "; Secure" } else { "" }
    );
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("the cookie is ASCII"),
    );
    Ok(response)
}

async fn session(Extension(identity): Extension<Identity>) -> Json<Whoami> {
    Json(match identity {
        Identity::Session {
            username,
            csrf_token,
            ..
        } => Whoami {
            username,
            csrf_token: Some(csrf_token),
        },
        Identity::ApiToken { name, .. } => Whoami {
            username: format!("token:{name}"),
            csrf_token: None,
        },
        Identity::ClusterToken => Whoami {
            username: "cluster-token".to_owned(),
            csrf_token: None,
        },
    })
}

async fn list_tokens(State(state): State<SharedState>) -> ApiResult<Json<Vec<TokenInfo>>> {
    let tokens = state.store().api_tokens()?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|token| TokenInfo {
                id: token.id,
                name: token.name,
                created_ms: token.created_ms,
                last_used_ms: token.last_used_ms,
            })
            .collect(),
    ))
}

/// Token names: 1 to 64 letters, digits, `-`, `_`, `.` or spaces.
fn check_token_name(name: &str) -> ApiResult<()> {
    let valid = !name.trim().is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '));
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid token name {name:?}: use 1 to 64 letters, digits, spaces, '-', '_' or '.'"
        )))
    }
}

async fn create_token(
    State(state): State<SharedState>,
    ApiJson(body): ApiJson<NewTokenRequest>,
) -> ApiResult<(StatusCode, Json<NewToken>)> {
    check_token_name(&body.name)?;
    let token = format!("galley_{}", random_hex(32));
    let id = state
        .store()
        .create_api_token(&body.name, &token_hash(&token), now_ms())?;
    tracing::info!(id, name = %body.name, "API token created");
    Ok((
        StatusCode::CREATED,
        Json(NewToken {
            id,
            name: body.name,
            token,
        }),
    ))
}

async fn revoke_token(
    State(state): State<SharedState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let id: i64 = id.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "invalid token id {id:?}: ids are the numbers GET /api/v1/tokens lists"
        ))
    })?;
    if state.store().revoke_api_token(id)? {
        tracing::info!(id, "API token revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no API token with id {id}")))
    }
}

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::POST,
            "/api/v1/login",
            Access::Public,
            post(login),
            RouteDoc::new(
                "Log in to the console: sets the galley_session cookie and returns the CSRF token",
            )
            .request::<LoginRequest>()
            .response::<Whoami>(200)
            .errors(&[400, 401, 429]),
        ),
        Route::new(
            Method::POST,
            "/api/v1/logout",
            Access::Authenticated,
            post(logout),
            RouteDoc::new("End this session")
                .no_content()
                .errors(&[403]),
        ),
        Route::new(
            Method::GET,
            "/api/v1/session",
            Access::Authenticated,
            get(session),
            RouteDoc::new("Who is logged in, and the session's CSRF token").response::<Whoami>(200),
        ),
        Route::new(
            Method::GET,
            "/api/v1/tokens",
            Access::Authenticated,
            get(list_tokens),
            RouteDoc::new("The API tokens (never their secrets)").response::<Vec<TokenInfo>>(200),
        ),
        Route::new(
            Method::POST,
            "/api/v1/tokens",
            Access::Authenticated,
            post(create_token),
            RouteDoc::new("Create an API token; its secret is shown only in this answer")
                .request::<NewTokenRequest>()
                .response::<NewToken>(201)
                .errors(&[400, 403]),
        ),
        Route::new(
            Method::DELETE,
            "/api/v1/tokens/{id}",
            Access::Authenticated,
            delete(revoke_token),
            RouteDoc::new("Revoke an API token")
                .no_content()
                .errors(&[400, 403, 404]),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_salt_and_verify() {
        let first = hash_password("correct horse battery");
        let second = hash_password("correct horse battery");
        assert!(first.starts_with("$argon2id$"), "{first}");
        assert_ne!(first, second, "each hash has its own salt");
        assert!(verify_password("correct horse battery", &first));
        assert!(!verify_password("correct horse batterx", &first));
        assert!(!verify_password("anything", "not a PHC string"));
    }

    #[test]
    fn token_hashes_are_sha256_hex() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let token = random_hex(32);
        assert_eq!(token.len(), 64);
        assert_ne!(token, random_hex(32));
    }

    #[test]
    fn constant_time_comparison() {
        for (a, b, equal) in [
            ("", "", true),
            ("csrf", "csrf", true),
            ("csrf", "csrF", false),
            ("csrf", "csrf-longer", false),
            ("", "x", false),
        ] {
            assert_eq!(
                constant_time_eq(a.as_bytes(), b.as_bytes()),
                equal,
                "{a:?} {b:?}"
            );
        }
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_new_password("short").is_err());
        assert!(check_new_password("twelve chars").is_ok());
    }

    #[test]
    fn the_limiter_blocks_after_five_failures_for_a_minute() {
        let keys = ["addr:127.0.0.1".to_owned(), "user:admin".to_owned()];
        let mut limiter = LoginLimiter::default();
        for at in 0..5 {
            assert_eq!(limiter.check(&keys, at * 1000), Ok(()));
            limiter.record_failure(&keys, at * 1000);
        }
        // The first failure (at 0) leaves the window at 60 000.
        assert_eq!(limiter.check(&keys, 5_000), Err(55));
        // Another user from another address is not affected.
        let other = ["addr:10.0.0.1".to_owned(), "user:ops".to_owned()];
        assert_eq!(limiter.check(&other, 5_000), Ok(()));
        // The same user from another address is, and so is another user from here.
        let same_user = ["addr:10.0.0.1".to_owned(), "user:admin".to_owned()];
        assert_eq!(limiter.check(&same_user, 5_000), Err(55));
        let same_address = ["addr:127.0.0.1".to_owned(), "user:ops".to_owned()];
        assert_eq!(limiter.check(&same_address, 5_000), Err(55));
        assert_eq!(limiter.check(&keys, 59_500), Err(1));
        assert_eq!(limiter.check(&keys, 60_000), Ok(()));
    }

    #[test]
    fn a_success_clears_the_failures() {
        let keys = ["addr:127.0.0.1".to_owned(), "user:admin".to_owned()];
        let mut limiter = LoginLimiter::default();
        for at in 0..4 {
            limiter.record_failure(&keys, at);
        }
        limiter.record_success(&keys);
        limiter.record_failure(&keys, 10);
        assert_eq!(limiter.check(&keys, 11), Ok(()));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; galley_session=abc123 ; other=1"),
        );
        assert_eq!(session_cookie(&headers).as_deref(), Some("abc123"));
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn token_names_are_checked() {
        assert!(check_token_name("ci deploy-1").is_ok());
        assert!(check_token_name("").is_err());
        assert!(check_token_name("x'; DROP").is_err());
        assert!(check_token_name(&"a".repeat(65)).is_err());
    }
}
