//! Authentication: console passwords (argon2), sessions (random 256-bit ids stored
//! hashed, a cookie, a CSRF token), logins (limited and hashed by `login_guard`), API
//! tokens (random, stored as SHA-256, each with a scope and an expiry), the cluster
//! token as a Bearer token, and the middleware that checks them and the scope each
//! route needs.
//!
//! Why SHA-256 for tokens and session ids but argon2 for passwords: a 256-bit random
//! value cannot be guessed, so a fast hash only keeps a stolen database from being
//! replayed; a password can be guessed, so its hash must be slow.
//!
//! A request with a Bearer token costs at most one indexed read of the store when the
//! token is unknown (and nothing when it does not even look like one); only a valid
//! token's last use is written, at most once per [`TOKEN_USE_RECORD_INTERVAL_MS`].
//!
//! Client-supplied strings (user names, paths) are logged with `?` (Rust's escaped
//! form, in quotes), so that a newline or a terminal escape cannot forge a log line.

use argon2::password_hash::rand_core::{OsRng, RngCore as _};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::Argon2;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json};
use controller_api::{
    LoginRequest, NewToken, NewTokenRequest, TokenInfo, TokenScope, Whoami,
    DEFAULT_TOKEN_LIFETIME_DAYS, MAX_PASSWORD_BYTES, MAX_TOKEN_LIFETIME_DAYS, MAX_USERNAME_LENGTH,
};
use sha2::{Digest as _, Sha256};
use store::{EndedCredentials, NewApiToken, SessionRecord, Store};

use super::login_guard::{HasherBusy, Limited};
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
/// Passwords shorter than this are refused when set.
pub const MIN_PASSWORD_LENGTH: usize = 12;
/// A valid token's last use is written at most this often.
pub const TOKEN_USE_RECORD_INTERVAL_MS: i64 = 60_000;
/// The largest login body read (a user name, a password of at most
/// [`MAX_PASSWORD_BYTES`], JSON escapes): anything longer is refused before parsing.
pub const LOGIN_BODY_LIMIT: usize = 8 * 1024;
const DAY_MS: i64 = 86_400_000;
/// The prefix of every API token; the rest is 64 lower-case hex digits.
pub const TOKEN_PREFIX: &str = "galley_";

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

/// Sets a console user's password (hashing it); ends that user's sessions and revokes
/// that user's API tokens, and says how many.
pub fn set_console_password(
    store: &Store,
    user: &str,
    password: &str,
    now_ms: i64,
) -> anyhow::Result<EndedCredentials> {
    check_new_password(password).map_err(anyhow::Error::msg)?;
    Ok(store.set_console_user(user, &hash_password(password), now_ms)?)
}

/// A login's user name: 1 to [`MAX_USERNAME_LENGTH`] ASCII letters, digits, `.`, `_`,
/// `-` or `@`; its password at most [`MAX_PASSWORD_BYTES`]. Checked before any other
/// work, so that neither a log line nor the limiter's table holds anything else.
fn check_login(body: &LoginRequest) -> ApiResult<()> {
    let name = &body.username;
    let valid = !name.is_empty()
        && name.len() <= MAX_USERNAME_LENGTH
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !valid {
        let shown: String = name.chars().take(MAX_USERNAME_LENGTH).collect();
        return Err(ApiError::bad_request(format!(
            "invalid username {shown:?}{}: use 1 to {MAX_USERNAME_LENGTH} letters, digits, '.', '_', '-' or '@'",
            if name.chars().count() > MAX_USERNAME_LENGTH { " (cut short)" } else { "" }
        )));
    }
    if body.password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::bad_request(format!(
            "the password is too long ({} bytes): at most {MAX_PASSWORD_BYTES} bytes",
            body.password.len()
        )));
    }
    Ok(())
}

/// Who made a request, as the middleware established it.
#[derive(Debug, Clone)]
pub enum Identity {
    /// A console user's session: the `admin` scope.
    Session {
        id_hash: String,
        username: String,
        csrf_token: String,
        expires_ms: i64,
    },
    ApiToken {
        id: i64,
        name: String,
        scope: TokenScope,
        /// The console user it belongs to (None: made with the cluster token).
        owner: Option<String>,
        expires_ms: i64,
    },
    /// The cluster's own token from the secrets file: the `admin` scope, no expiry.
    ClusterToken,
}

impl Identity {
    /// Who, in words for the log: `admin`, `token:ci (id 3)`, `cluster-token`.
    pub fn label(&self) -> String {
        match self {
            Identity::Session { username, .. } => username.clone(),
            Identity::ApiToken { id, name, .. } => format!("token:{name} (id {id})"),
            Identity::ClusterToken => "cluster-token".to_owned(),
        }
    }

    pub fn scope(&self) -> TokenScope {
        match self {
            Identity::Session { .. } | Identity::ClusterToken => TokenScope::Admin,
            Identity::ApiToken { scope, .. } => *scope,
        }
    }

    pub fn expires_ms(&self) -> Option<i64> {
        match self {
            Identity::Session { expires_ms, .. } | Identity::ApiToken { expires_ms, .. } => {
                Some(*expires_ms)
            }
            Identity::ClusterToken => None,
        }
    }
}

/// Whether `presented` has the shape of an API token (`galley_` and 64 lower-case hex
/// digits); anything else is refused without asking the store.
fn looks_like_api_token(presented: &str) -> bool {
    presented.strip_prefix(TOKEN_PREFIX).is_some_and(|rest| {
        rest.len() == 64 && rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// "3 days", "5 hours", "2 minutes": how long ago something was, roughly.
fn roughly(ms: i64) -> String {
    let (amount, unit) = if ms >= 2 * DAY_MS {
        (ms / DAY_MS, "days")
    } else if ms >= 2 * 3_600_000 {
        (ms / 3_600_000, "hours")
    } else {
        ((ms / 60_000).max(1), "minutes")
    };
    format!("{amount} {unit}")
}

fn unauthorized(message: impl Into<String>) -> ApiError {
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
        let invalid = || {
            unauthorized(
                "the Bearer token is not valid (revoked, or never issued by this controller)",
            )
        };
        if !looks_like_api_token(presented) {
            return Err(invalid());
        }
        let store = state.store();
        let Some(token) = store.api_token(&token_hash(presented))? else {
            return Err(invalid());
        };
        if token.expires_ms <= now {
            return Err(unauthorized(format!(
                "the API token {:?} (id {}) expired {} ago; create another (galley token create, or the console's Tokens page)",
                token.name,
                token.id,
                roughly(now - token.expires_ms)
            )));
        }
        let scope = TokenScope::parse(&token.scope)
            .map_err(|error| ApiError::internal("a stored API token is unusable", error))?;
        let recorded_lately = token
            .last_used_ms
            .is_some_and(|at| now - at < TOKEN_USE_RECORD_INTERVAL_MS && at <= now);
        if !recorded_lately {
            // The token is valid either way: a busy store must not refuse it.
            if let Err(error) = store.record_api_token_use(token.id, now) {
                tracing::warn!(id = token.id, "cannot record an API token's use: {error}");
            }
        }
        return Ok(Identity::ApiToken {
            id: token.id,
            name: token.name,
            scope,
            owner: token.owner,
            expires_ms: token.expires_ms,
        });
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
            expires_ms: session.expires_ms,
        }),
        None => Err(unauthorized(
            "the session has expired or ended; log in again",
        )),
    }
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// What the middleware of one route needs: the state and the route's scope.
#[derive(Debug, Clone)]
pub struct Guard {
    pub state: SharedState,
    pub needs: TokenScope,
}

/// The middleware in front of every authenticated route: who is calling, whether their
/// scope covers the route, and (with the session cookie) the CSRF header.
pub async fn require_auth(
    State(guard): State<Guard>,
    mut request: Request,
    next: Next,
) -> Response {
    let identity = match identify(&guard.state, request.headers(), now_ms()) {
        Ok(identity) => identity,
        Err(error) => return error.into_response(),
    };
    if !identity.scope().allows(guard.needs) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "{} has the {} scope; {} {} needs {}: use a token made with that scope (galley token create --scope {})",
                identity.label(),
                identity.scope(),
                request.method(),
                request.uri().path(),
                guard.needs,
                guard.needs
            ),
        )
        .into_response();
    }
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
        tracing::info!(by = ?who, status = response.status().as_u16(), "API {method} {path:?}");
    }
    response
}

async fn login(
    State(state): State<SharedState>,
    ConnectInfo(remote): ConnectInfo<RemoteAddr>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    check_login(&body)?;
    let source = remote.0.ip();
    let now = now_ms();
    let limited = state
        .limiter
        .lock()
        .expect("limiter lock")
        .admit(source, &body.username, now);
    if let Err(limited) = limited {
        let seconds = limited.retry_after_s();
        let what = match limited {
            Limited::Source { .. } => "too many logins from this address",
            Limited::UserFromSource { .. } => {
                "too many failed logins for this user from this address"
            }
        };
        return Err(ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!("{what}; try again in {seconds} s"),
            retry_after: Some(seconds),
        });
    }
    let stored = state.store().console_user_hash(&body.username)?;
    let checked = state.passwords.verify(body.password.clone(), stored).await;
    let matches = match checked {
        Ok(matches) => matches,
        Err(HasherBusy) => {
            state.limiter.lock().expect("limiter lock").not_checked(
                source,
                &body.username,
                now_ms(),
            );
            return Err(ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "the controller is busy checking other logins; try again in 1 s"
                    .to_owned(),
                retry_after: Some(1),
            });
        }
    };
    if !matches {
        tracing::warn!(user = ?body.username, remote = %source, "console login refused");
        return Err(unauthorized("wrong user name or password"));
    }
    state
        .limiter
        .lock()
        .expect("limiter lock")
        .succeeded(source, &body.username, now_ms());
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
    tracing::info!(user = ?body.username, remote = %source, "console login");
    let cookie = format!(
        "{SESSION_COOKIE}={session_id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        SESSION_TTL_MS / 1000,
        if state.tls { "; Secure" } else { "" }
    );
    let mut response = Json(Whoami {
        username: body.username,
        csrf_token: Some(csrf_token),
        scope: TokenScope::Admin,
        expires_ms: Some(record.expires_ms),
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
    let (scope, expires_ms) = (identity.scope(), identity.expires_ms());
    let (username, csrf_token) = match identity {
        Identity::Session {
            username,
            csrf_token,
            ..
        } => (username, Some(csrf_token)),
        Identity::ApiToken { name, .. } => (format!("token:{name}"), None),
        Identity::ClusterToken => ("cluster-token".to_owned(), None),
    };
    Json(Whoami {
        username,
        csrf_token,
        scope,
        expires_ms,
    })
}

async fn list_tokens(State(state): State<SharedState>) -> ApiResult<Json<Vec<TokenInfo>>> {
    let tokens = state.store().api_tokens()?;
    let now = now_ms();
    let listed = tokens
        .into_iter()
        .map(|token| {
            Ok(TokenInfo {
                scope: TokenScope::parse(&token.scope)
                    .map_err(|error| ApiError::internal("a stored API token is unusable", error))?,
                id: token.id,
                name: token.name,
                owner: token.owner,
                created_ms: token.created_ms,
                expires_ms: token.expires_ms,
                expired: token.expires_ms <= now,
                last_used_ms: token.last_used_ms,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(listed))
}

/// When a new token expires: `lifetime_days` (1 to the maximum; the default when
/// None) from now, and never after the token that creates it.
fn token_expiry(lifetime_days: Option<u32>, creator: &Identity, now: i64) -> ApiResult<i64> {
    let days = lifetime_days.unwrap_or(DEFAULT_TOKEN_LIFETIME_DAYS);
    if !(1..=MAX_TOKEN_LIFETIME_DAYS).contains(&days) {
        return Err(ApiError::bad_request(format!(
            "invalid lifetime_days {days}: a token lives 1 to {MAX_TOKEN_LIFETIME_DAYS} days ({DEFAULT_TOKEN_LIFETIME_DAYS} when left out)"
        )));
    }
    let wanted = now + i64::from(days) * DAY_MS;
    Ok(match creator {
        Identity::ApiToken { expires_ms, .. } => wanted.min(*expires_ms),
        Identity::Session { .. } | Identity::ClusterToken => wanted,
    })
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
    Extension(creator): Extension<Identity>,
    ApiJson(body): ApiJson<NewTokenRequest>,
) -> ApiResult<(StatusCode, Json<NewToken>)> {
    check_token_name(&body.name)?;
    if !creator.scope().allows(body.scope) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "{} has the {} scope and cannot make a token with the wider {} scope",
                creator.label(),
                creator.scope(),
                body.scope
            ),
        ));
    }
    let now = now_ms();
    let expires_ms = token_expiry(body.lifetime_days, &creator, now)?;
    // The console user whose password ends the token: the session's, or the creating
    // token's own owner.
    let owner = match &creator {
        Identity::Session { username, .. } => Some(username.clone()),
        Identity::ApiToken { owner, .. } => owner.clone(),
        Identity::ClusterToken => None,
    };
    let token = format!("{TOKEN_PREFIX}{}", random_hex(32));
    let id = state.store().create_api_token(&NewApiToken {
        name: body.name.clone(),
        token_hash: token_hash(&token),
        scope: body.scope.as_str().to_owned(),
        owner,
        created_ms: now,
        expires_ms,
    })?;
    tracing::info!(id, name = ?body.name, scope = %body.scope, by = ?creator.label(), "API token created");
    Ok((
        StatusCode::CREATED,
        Json(NewToken {
            id,
            name: body.name,
            scope: body.scope,
            expires_ms,
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
            post(login).layer(axum::extract::DefaultBodyLimit::max(LOGIN_BODY_LIMIT)),
            RouteDoc::new(
                "Log in to the console: sets the galley_session cookie and returns the CSRF token",
            )
            .request::<LoginRequest>()
            .response::<Whoami>(200)
            .errors(&[400, 401, 429, 503]),
        ),
        Route::new(
            Method::POST,
            "/api/v1/logout",
            Access::Read,
            post(logout),
            RouteDoc::new("End this session")
                .no_content()
                .errors(&[403]),
        ),
        Route::new(
            Method::GET,
            "/api/v1/session",
            Access::Read,
            get(session),
            RouteDoc::new("Who is logged in, and the session's CSRF token").response::<Whoami>(200),
        ),
        Route::new(
            Method::GET,
            "/api/v1/tokens",
            Access::Admin,
            get(list_tokens),
            RouteDoc::new("The API tokens (never their secrets)").response::<Vec<TokenInfo>>(200),
        ),
        Route::new(
            Method::POST,
            "/api/v1/tokens",
            Access::Admin,
            post(create_token),
            RouteDoc::new("Create an API token; its secret is shown only in this answer")
                .request::<NewTokenRequest>()
                .response::<NewToken>(201)
                .errors(&[400, 403]),
        ),
        Route::new(
            Method::DELETE,
            "/api/v1/tokens/{id}",
            Access::Admin,
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
    fn login_names_and_passwords_are_bounded() {
        let login = |username: &str, password: &str| LoginRequest {
            username: username.to_owned(),
            password: password.to_owned(),
        };
        assert!(check_login(&login("admin", "x")).is_ok());
        assert!(check_login(&login("ops.team-1@site_a", "x")).is_ok());
        assert!(check_login(&login(&"a".repeat(64), &"p".repeat(1024))).is_ok());
        for (name, password, says) in [
            ("", "x", "invalid username"),
            (
                "admin\nINFO forged",
                "x",
                "invalid username \"admin\\nINFO forged\"",
            ),
            ("admin\u{1b}[2J", "x", "\\u{1b}"),
            ("a b", "x", "invalid username"),
            (&"a".repeat(65), "x", "(cut short)"),
            (
                "admin",
                &"p".repeat(1025),
                "too long (1025 bytes): at most 1024",
            ),
        ] {
            let error = check_login(&login(name, password)).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST);
            assert!(error.message.contains(says), "{name:?}: {}", error.message);
        }
    }

    #[test]
    fn only_well_formed_tokens_reach_the_store() {
        assert!(looks_like_api_token(&format!("galley_{}", random_hex(32))));
        for garbage in [
            "",
            "galley_",
            "galley_xyz",
            &format!("galley_{}", "A".repeat(64)),
            &format!("galley_{}0", random_hex(32)),
            &format!("other_{}", random_hex(32)),
        ] {
            assert!(!looks_like_api_token(garbage), "{garbage}");
        }
    }

    #[test]
    fn a_new_token_lives_90_days_at_most_365_and_never_beyond_its_creator() {
        let session = Identity::Session {
            id_hash: String::new(),
            username: "admin".to_owned(),
            csrf_token: String::new(),
            expires_ms: 1,
        };
        assert_eq!(token_expiry(None, &session, 0).unwrap(), 90 * DAY_MS);
        assert_eq!(token_expiry(Some(365), &session, 0).unwrap(), 365 * DAY_MS);
        for days in [0, 366] {
            let error = token_expiry(Some(days), &session, 0).unwrap_err();
            assert!(error.message.contains("1 to 365 days"), "{}", error.message);
        }
        let token = Identity::ApiToken {
            id: 1,
            name: "ci".to_owned(),
            scope: TokenScope::Admin,
            owner: None,
            expires_ms: 10 * DAY_MS,
        };
        assert_eq!(token_expiry(Some(30), &token, 0).unwrap(), 10 * DAY_MS);
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

    /// Requests through the whole router, as the API's clients send them.
    mod through_the_router {
        use std::sync::{Arc, Mutex};

        use axum::body::Body as HttpBody;
        use axum::http::Request;
        use serde_json::{json, Value};
        use tower::ServiceExt as _;

        use super::*;
        use crate::api::test_support::{api_state, call_as, closed_port};
        use crate::api::{router, ApiState};

        const PASSWORD: &str = "a long console password";

        /// A token of `scope` made straight in the store; returns its secret.
        fn make_token(
            state: &ApiState,
            name: &str,
            scope: &str,
            owner: Option<&str>,
            expires_ms: i64,
        ) -> String {
            let secret = format!("{TOKEN_PREFIX}{}", random_hex(32));
            state
                .store()
                .create_api_token(&NewApiToken {
                    name: name.to_owned(),
                    token_hash: token_hash(&secret),
                    scope: scope.to_owned(),
                    owner: owner.map(str::to_owned),
                    created_ms: 0,
                    expires_ms,
                })
                .unwrap();
            secret
        }

        fn message(body: &Value) -> &str {
            body["error"].as_str().unwrap_or_default()
        }

        #[tokio::test]
        async fn a_read_token_reads_but_sees_no_openstack_password_and_changes_nothing() {
            let dir = tempfile::tempdir().unwrap();
            let state = api_state(dir.path(), closed_port());
            let secret_password = "Zq8v3Lk2Pw9xTn4Rb7Yc5Hs";
            state
                .store()
                .set_service_credential(
                    &store::ServiceCredential {
                        service: "nova".to_owned(),
                        user: "nova".to_owned(),
                        password: secret_password.to_owned(),
                    },
                    1,
                )
                .unwrap();
            let later = now_ms() + DAY_MS;
            let read = make_token(&state, "reader", "read", None, later);
            let manage = make_token(&state, "manager", "manage", None, later);
            for uri in [
                "/api/v1/cluster",
                "/api/v1/events",
                "/api/v1/openstack/catalog",
                "/api/v1/session",
            ] {
                let (status, _, body) =
                    call_as(&state, Some(&read), "127.0.0.1", Method::GET, uri, None).await;
                assert_eq!(status, StatusCode::OK, "{uri}: {body}");
            }
            let (_, _, whoami) = call_as(
                &state,
                Some(&read),
                "127.0.0.1",
                Method::GET,
                "/api/v1/session",
                None,
            )
            .await;
            assert_eq!(whoami["scope"], "read", "{whoami}");
            assert_eq!(whoami["expires_ms"], later, "{whoami}");
            let refused: Vec<(Method, &str, Option<Value>)> = vec![
                (Method::GET, "/api/v1/openstack", None),
                (Method::GET, "/api/v1/openstack/config?service=nova", None),
                (
                    Method::PUT,
                    "/api/v1/nodes/node2/desired",
                    Some(json!({"running": false})),
                ),
                (
                    Method::POST,
                    "/api/v1/databases",
                    Some(json!({"name": "x"})),
                ),
                (Method::POST, "/api/v1/openstack/provision", Some(json!({}))),
                (Method::GET, "/api/v1/tokens", None),
                (
                    Method::POST,
                    "/api/v1/tokens",
                    Some(json!({"name": "more"})),
                ),
            ];
            for (method, uri, body) in refused {
                let (status, _, answer) =
                    call_as(&state, Some(&read), "127.0.0.1", method.clone(), uri, body).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}: {answer}");
                assert!(
                    message(&answer).contains("has the read scope"),
                    "{method} {uri}: {answer}"
                );
                assert!(!answer.to_string().contains(secret_password));
            }
            // The refused change did not happen.
            assert!(state.store().stopped_on_purpose().unwrap().is_empty());
            // manage sees the passwords, but cannot touch tokens.
            let (status, _, provisioned) = call_as(
                &state,
                Some(&manage),
                "127.0.0.1",
                Method::GET,
                "/api/v1/openstack",
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{provisioned}");
            assert!(provisioned.to_string().contains(secret_password));
            let (status, _, answer) = call_as(
                &state,
                Some(&manage),
                "127.0.0.1",
                Method::POST,
                "/api/v1/tokens",
                Some(json!({"name": "more"})),
            )
            .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
            // The cluster token (admin) makes tokens of any scope; read by default.
            for (body, scope) in [
                (json!({"name": "plain"}), "read"),
                (
                    json!({"name": "wide", "scope": "admin", "lifetime_days": 7}),
                    "admin",
                ),
            ] {
                let (status, _, created) = call_as(
                    &state,
                    Some("cluster-token"),
                    "127.0.0.1",
                    Method::POST,
                    "/api/v1/tokens",
                    Some(body),
                )
                .await;
                assert_eq!(status, StatusCode::CREATED, "{created}");
                assert_eq!(created["scope"], scope);
            }
            let (status, _, answer) = call_as(
                &state,
                Some("cluster-token"),
                "127.0.0.1",
                Method::POST,
                "/api/v1/tokens",
                Some(json!({"name": "x", "scope": "root"})),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        }

        #[tokio::test]
        async fn an_expired_token_is_refused_and_says_so() {
            let dir = tempfile::tempdir().unwrap();
            let state = api_state(dir.path(), closed_port());
            let expired = make_token(&state, "old", "admin", None, now_ms() - 3 * DAY_MS - 1000);
            let (status, _, body) = call_as(
                &state,
                Some(&expired),
                "127.0.0.1",
                Method::GET,
                "/api/v1/cluster",
                None,
            )
            .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
            assert!(
                message(&body).contains("\"old\" (id 1) expired 3 days ago"),
                "{body}"
            );
            let (_, _, listed) = call_as(
                &state,
                Some("cluster-token"),
                "127.0.0.1",
                Method::GET,
                "/api/v1/tokens",
                None,
            )
            .await;
            assert_eq!(listed[0]["expired"], true, "{listed}");
        }

        /// Sends a request with a session cookie (and its CSRF token when given).
        async fn with_cookie(
            state: &Arc<ApiState>,
            cookie: &str,
            csrf: &str,
            method: Method,
            uri: &str,
            body: Option<Value>,
        ) -> (StatusCode, Value) {
            let mut request = Request::builder()
                .method(method)
                .uri(uri)
                .header("cookie", format!("{SESSION_COOKIE}={cookie}"))
                .header(CSRF_HEADER, csrf);
            if body.is_some() {
                request = request.header("content-type", "application/json");
            }
            let request = request
                .body(body.map_or_else(HttpBody::empty, |b| HttpBody::from(b.to_string())))
                .unwrap();
            let response = router(state.clone()).oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        }

        #[tokio::test]
        async fn a_password_change_revokes_the_users_tokens_and_sessions() {
            let dir = tempfile::tempdir().unwrap();
            let state = api_state(dir.path(), closed_port());
            let (status, headers, session) = call_as(
                &state,
                None,
                "127.0.0.1",
                Method::POST,
                "/api/v1/login",
                Some(json!({"username": "admin", "password": PASSWORD})),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{session}");
            assert_eq!(session["scope"], "admin");
            let cookie = headers["set-cookie"].to_str().unwrap();
            let cookie = cookie
                .strip_prefix(&format!("{SESSION_COOKIE}="))
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            let csrf = session["csrf_token"].as_str().unwrap().to_owned();
            let (status, created) = with_cookie(
                &state,
                &cookie,
                &csrf,
                Method::POST,
                "/api/v1/tokens",
                Some(json!({"name": "mine", "scope": "manage"})),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{created}");
            let mine = created["token"].as_str().unwrap().to_owned();
            let (_, _, cluster_made) = call_as(
                &state,
                Some("cluster-token"),
                "127.0.0.1",
                Method::POST,
                "/api/v1/tokens",
                Some(json!({"name": "pipeline"})),
            )
            .await;
            let pipeline = cluster_made["token"].as_str().unwrap().to_owned();
            let (_, listed) =
                with_cookie(&state, &cookie, &csrf, Method::GET, "/api/v1/tokens", None).await;
            assert_eq!(listed[0]["owner"], "admin", "{listed}");
            assert_eq!(listed[1]["owner"], Value::Null, "{listed}");
            let works = |token: String| {
                let state = state.clone();
                async move {
                    call_as(
                        &state,
                        Some(&token),
                        "127.0.0.1",
                        Method::GET,
                        "/api/v1/cluster",
                        None,
                    )
                    .await
                    .0
                }
            };
            assert_eq!(works(mine.clone()).await, StatusCode::OK);

            let ended =
                set_console_password(&state.store(), "admin", "another long password", now_ms())
                    .unwrap();
            assert_eq!(ended.tokens, 1);
            assert_eq!(ended.sessions, 1);
            assert_eq!(works(mine).await, StatusCode::UNAUTHORIZED);
            let (status, _) =
                with_cookie(&state, &cookie, &csrf, Method::GET, "/api/v1/session", None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            // A token made with the cluster token belongs to no console user.
            assert_eq!(works(pipeline).await, StatusCode::OK);
        }

        #[tokio::test]
        async fn a_made_up_bearer_token_never_waits_for_the_stores_write_lock() {
            let dir = tempfile::tempdir().unwrap();
            let state = api_state(dir.path(), closed_port());
            let valid = make_token(&state, "ci", "read", None, now_ms() + DAY_MS);
            let get = |token: String| {
                let state = state.clone();
                async move {
                    call_as(
                        &state,
                        Some(&token),
                        "127.0.0.1",
                        Method::GET,
                        "/api/v1/cluster",
                        None,
                    )
                    .await
                }
            };
            // First use is recorded; a second within the interval writes nothing.
            assert_eq!(get(valid.clone()).await.0, StatusCode::OK);
            let first_use = state.store().api_tokens().unwrap()[0].last_used_ms;
            assert!(first_use.is_some());
            let before = state.store().api_tokens().unwrap();

            // Another connection holds the write lock, as the controller does while it
            // records: a write would wait for it (5 s) and then fail with 500.
            let locker = rusqlite::Connection::open(crate::store_path(&state.settings)).unwrap();
            locker.execute_batch("BEGIN IMMEDIATE").unwrap();
            let unknown = format!("{TOKEN_PREFIX}{}", random_hex(32));
            for garbage in [
                "nonsense",
                "galley_1234",
                unknown.as_str(),
                "x".repeat(5000).as_str(),
            ] {
                let (status, _, body) = get(garbage.to_owned()).await;
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{}: {body}",
                    &garbage[..8.min(garbage.len())]
                );
                assert!(message(&body).contains("not valid"), "{body}");
            }
            // The valid token, used again within the interval, needs no write either.
            assert_eq!(get(valid.clone()).await.0, StatusCode::OK);
            locker.execute_batch("ROLLBACK").unwrap();
            assert_eq!(state.store().api_tokens().unwrap(), before);
        }

        /// A `MakeWriter` that keeps every log line.
        #[derive(Clone, Default)]
        struct Captured(Arc<Mutex<Vec<u8>>>);

        impl std::io::Write for Captured {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
            type Writer = Captured;
            fn make_writer(&'a self) -> Captured {
                self.clone()
            }
        }

        #[tokio::test(flavor = "current_thread")]
        async fn log_lines_escape_what_clients_chose() {
            let dir = tempfile::tempdir().unwrap();
            let state = api_state(dir.path(), closed_port());
            let captured = Captured::default();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(captured.clone())
                .with_ansi(false)
                .finish();
            let _default = tracing::subscriber::set_default(subscriber);
            // Other tests, on other threads without a subscriber, may have had the same
            // log call sites cached as disabled.
            tracing::callsite::rebuild_interest_cache();
            // A token whose name holds a newline and a terminal escape (an older store,
            // or one edited by hand: the API refuses such names).
            let forged = "ci\n2026-01-01T00:00:00Z  INFO controller: forged\u{1b}[2J";
            let token = make_token(&state, forged, "admin", None, now_ms() + DAY_MS);
            let (status, _, body) = call_as(
                &state,
                Some(&token),
                "127.0.0.1",
                Method::PUT,
                "/api/v1/nodes/node2/desired",
                Some(json!({"running": true})),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let (status, _, _) = call_as(
                &state,
                None,
                "127.0.0.1",
                Method::POST,
                "/api/v1/login",
                Some(json!({"username": "nobody", "password": "guess"})),
            )
            .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
            assert!(text.contains(r#"by="token:ci\n2026-01-01T00:00:00Z  INFO controller: forged\u{1b}[2J (id 1)""#), "{text}");
            assert!(text.contains(r#"user="nobody""#), "{text}");
            assert!(!text.contains('\u{1b}'), "{text}");
            for line in text.lines() {
                assert!(!line.starts_with("2026-01-01"), "a forged line: {text}");
            }
        }

        #[tokio::test]
        async fn wrong_logins_from_one_address_do_not_lock_out_another() {
            let dir = tempfile::tempdir().unwrap();
            let state = api_state(dir.path(), closed_port());
            let login = |source: &'static str, password: &'static str| {
                let state = state.clone();
                async move {
                    call_as(
                        &state,
                        None,
                        source,
                        Method::POST,
                        "/api/v1/login",
                        Some(json!({"username": "admin", "password": password})),
                    )
                    .await
                }
            };
            let mut statuses = Vec::new();
            for _ in 0..8 {
                statuses.push(login("10.0.0.1", "wrong").await.0.as_u16());
            }
            assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
            let (status, headers, body) = login("10.0.0.1", PASSWORD).await;
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
            assert!(
                message(&body).contains("for this user from this address"),
                "{body}"
            );
            let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=12).contains(&retry), "{retry}");
            let (status, _, body) = login("10.0.0.2", PASSWORD).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            // Over-long or odd names are refused before any of that.
            let (status, _, body) = call_as(
                &state,
                None,
                "10.0.0.3",
                Method::POST,
                "/api/v1/login",
                Some(json!({"username": "a".repeat(100), "password": "x"})),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(message(&body).contains("invalid username"), "{body}");
            assert_eq!(state.password_checker().checked(), 6);
        }
    }
}
