//! The controller's REST API (`/api/v1`, JSON) and the web console it serves.
//!
//! One route table ([`route_table`]) builds both the router and the OpenAPI document, so
//! a route cannot exist undocumented. Every route except the public ones (health,
//! login) sits behind [`auth::require_auth`]: a Bearer token (an API token or the
//! cluster token) or a console session cookie, with a CSRF header on state-changing
//! requests made with a cookie, and a scope ([`Access`]) that covers the route.
//!
//! [`serve`] is a library function in the style of mini-redis: it takes a bound
//! listener (plain TCP or TLS), the shared state and a shutdown signal, so that the
//! `galley controller` binary and the tests run the same code.

pub mod auth;
pub mod login_guard;
mod manage_routes;
mod openapi;
mod overview;
#[cfg(test)]
mod test_support;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{Json, Router};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use spec::{ClusterSpec, ControllerSpec};
use store::Store;

use crate::Observations;

pub use openapi::openapi_document;

/// The secrets the API needs: the cluster token (accepted as a Bearer token) and the
/// database admin account's password (for the SQL the management endpoints run).
#[derive(Clone)]
pub struct ApiSecrets {
    pub cluster_token: String,
    pub admin_user: String,
    pub admin_password: String,
}

impl std::fmt::Debug for ApiSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiSecrets { .. }")
    }
}

/// Everything a request handler shares.
pub struct ApiState {
    pub spec: ClusterSpec,
    pub settings: ControllerSpec,
    pub secrets: ApiSecrets,
    pub observations: Observations,
    /// Whether the API is served over TLS (the session cookie is then `Secure`).
    pub tls: bool,
    /// The API's own connection to the controller's SQLite file. A guard is never held
    /// across an await.
    store: Mutex<Store>,
    limiter: Mutex<login_guard::LoginLimiter>,
    /// Console passwords are verified only here: a few threads and a short queue.
    passwords: login_guard::PasswordChecker,
    /// The proxy's admin endpoint, when the spec has a proxy.
    proxy: Option<proxy::AdminClient>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("cluster", &self.spec.name)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl ApiState {
    /// Opens the API's connection to the controller's store.
    pub fn new(
        spec: ClusterSpec,
        settings: ControllerSpec,
        secrets: ApiSecrets,
        observations: Observations,
        tls: bool,
    ) -> anyhow::Result<Arc<ApiState>> {
        use anyhow::Context as _;
        let path = crate::store_path(&settings);
        let store = Store::open(&path)
            .with_context(|| format!("cannot open the controller's store {}", path.display()))?;
        // The console polls the cluster view: a proxy that hangs must not hold it up.
        let proxy = spec.proxy.as_ref().map(|proxy| {
            proxy::AdminClient::with_timeouts(
                &proxy.admin_endpoint(),
                &secrets.cluster_token,
                Duration::from_millis(500),
                Duration::from_secs(1),
            )
        });
        Ok(Arc::new(ApiState {
            spec,
            settings,
            secrets,
            observations,
            tls,
            store: Mutex::new(store),
            limiter: Mutex::new(login_guard::LoginLimiter::default()),
            passwords: login_guard::PasswordChecker::new(),
            proxy,
        }))
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().expect("api store lock")
    }

    /// The pool that verifies console passwords (its counters show how many ran at once).
    pub fn password_checker(&self) -> &login_guard::PasswordChecker {
        &self.passwords
    }
}

pub type SharedState = Arc<ApiState>;

/// An API error: a status and a message naming what was wrong and what is allowed.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds, for 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// A failure of the controller itself; the detail goes to the log, once, here.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> ApiError {
        tracing::error!("{context}: {error}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{context}; the controller's log has the details"),
        )
    }
}

impl From<store::StoreError> for ApiError {
    fn from(error: store::StoreError) -> ApiError {
        ApiError::internal("the controller's store failed", error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = controller_api::ErrorBody {
            error: self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A JSON body whose rejection (bad JSON, a missing or unknown field, a wrong type)
/// answers 400 with the API's `{"error"}` shape instead of axum's plain-text 422.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> ApiResult<Self> {
        let limit = request.extensions().get::<httpd::BodyLimit>().copied();
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            // A chunked body over httpd's limit (a declared one is refused before).
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                let limit = limit.map_or(String::new(), |httpd::BodyLimit(bytes)| {
                    format!(" of {bytes} bytes")
                });
                Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the request body is over this server's limit{limit}"),
                ))
            }
            Err(rejection) => Err(ApiError::bad_request(format!(
                "invalid request body: {}; GET /api/v1/openapi.json describes each body",
                rejection.body_text()
            ))),
        }
    }
}

/// Query parameters whose rejection answers 400 in the API's error shape.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> ApiResult<Self> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::bad_request(format!(
                "invalid query parameters: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// Path parameters whose rejection (a segment that is not UTF-8 once percent-decoded,
/// say) answers 400 in the API's error shape instead of axum's plain text.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> ApiResult<Self> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(ApiError::bad_request(format!(
                "invalid path: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// Who may call a route: anyone, or a Bearer token or session cookie (with CSRF on
/// state-changing methods) whose scope includes the named one (see
/// [`controller_api::TokenScope`] for what each covers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No authentication (health, login).
    Public,
    Read,
    Manage,
    Admin,
}

impl Access {
    /// The scope a caller needs; None for a public route.
    pub fn scope(self) -> Option<controller_api::TokenScope> {
        use controller_api::TokenScope;
        match self {
            Access::Public => None,
            Access::Read => Some(TokenScope::Read),
            Access::Manage => Some(TokenScope::Manage),
            Access::Admin => Some(TokenScope::Admin),
        }
    }
}

/// A JSON Schema of one controller-api type, generated into the document's components.
pub type SchemaOf = fn(&mut SchemaGenerator) -> Schema;

/// The schema of `T`: a `$ref` to its component (or the schema itself when it is small).
fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// The schema of `T` itself, never a `$ref`: its properties are a route's query
/// parameters.
fn inline_schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    T::json_schema(generator)
}

/// A route's success body.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    /// `application/json`: a serialized controller-api type.
    Json(SchemaOf),
    /// `text/plain`.
    Text,
}

/// The documentation of a route, for the OpenAPI document. The route names its types;
/// their schemas come from the types themselves.
#[derive(Debug, Clone)]
pub struct RouteDoc {
    pub summary: &'static str,
    /// The type whose fields are the query parameters.
    pub query: Option<SchemaOf>,
    /// The JSON request body's type.
    pub request: Option<SchemaOf>,
    /// The success status.
    pub status: u16,
    /// The success body (None: no body).
    pub response: Option<Body>,
    /// The error statuses this route can answer besides 401/500.
    pub errors: &'static [u16],
}

impl RouteDoc {
    /// A route answering 200 without a body; the builder methods below say more.
    pub fn new(summary: &'static str) -> RouteDoc {
        RouteDoc {
            summary,
            query: None,
            request: None,
            status: 200,
            response: None,
            errors: &[],
        }
    }

    pub fn query<Q: JsonSchema>(mut self) -> RouteDoc {
        self.query = Some(inline_schema_of::<Q>);
        self
    }

    pub fn request<T: JsonSchema>(mut self) -> RouteDoc {
        self.request = Some(schema_of::<T>);
        self
    }

    /// Success is `status` with a `T` as JSON.
    pub fn response<T: JsonSchema>(mut self, status: u16) -> RouteDoc {
        self.status = status;
        self.response = Some(Body::Json(schema_of::<T>));
        self
    }

    /// Success is 204 without a body.
    pub fn no_content(mut self) -> RouteDoc {
        self.status = 204;
        self.response = None;
        self
    }

    /// Success is 200 with a text body.
    pub fn text(mut self) -> RouteDoc {
        self.status = 200;
        self.response = Some(Body::Text);
        self
    }

    pub fn errors(mut self, errors: &'static [u16]) -> RouteDoc {
        self.errors = errors;
        self
    }
}

/// One row of the route table.
pub struct Route {
    pub method: Method,
    /// The axum path (`{name}` for a parameter), which is also the OpenAPI path.
    pub path: &'static str,
    pub access: Access,
    pub doc: RouteDoc,
    handler: MethodRouter<SharedState>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

impl Route {
    fn new(
        method: Method,
        path: &'static str,
        access: Access,
        handler: MethodRouter<SharedState>,
        doc: RouteDoc,
    ) -> Route {
        Route {
            method,
            path,
            access,
            doc,
            handler,
        }
    }
}

/// Every API route: the router and the OpenAPI document are both built from this.
pub fn route_table() -> Vec<Route> {
    let mut routes = Vec::new();
    routes.extend(auth::routes());
    routes.extend(overview::routes());
    routes.extend(manage_routes::routes());
    routes
}

/// The whole HTTP application: the API under `/api/v1`, the console at `/`.
pub fn router(state: SharedState) -> Router {
    let mut api: Router<SharedState> = Router::new();
    for route in route_table() {
        let handler = match route.access.scope() {
            None => route.handler,
            Some(needs) => route
                .handler
                .route_layer(axum::middleware::from_fn_with_state(
                    auth::Guard {
                        state: state.clone(),
                        needs,
                    },
                    auth::require_auth,
                )),
        };
        api = api.route(route.path, handler);
    }
    // Unknown API paths answer JSON; every other path belongs to the console.
    api = api.route(
        "/api/{*rest}",
        axum::routing::any(|| async {
            ApiError::not_found("no such API endpoint; GET /api/v1/openapi.json lists them")
        }),
    );
    // API answers carry sessions, tokens, passwords and the cluster's state: no cache
    // (a browser's, a proxy's) may keep them.
    let api = api.layer(axum::middleware::map_response(no_store));
    api.with_state(state).fallback_service(console())
}

async fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

/// The web console (static assets, public: the page asks the API, which needs a login).
fn console() -> Router {
    crate::console::routes()
}

/// The remote address of a connection, for login rate limiting, from either listener.
#[derive(Debug, Clone, Copy)]
pub struct RemoteAddr(pub SocketAddr);

impl From<SocketAddr> for RemoteAddr {
    fn from(address: SocketAddr) -> RemoteAddr {
        RemoteAddr(address)
    }
}

/// Where the API listens: plain TCP, or TLS when `[controller] tls_cert`/`tls_key` are set.
#[derive(Debug)]
pub enum ApiListener {
    Plain(tokio::net::TcpListener),
    Tls(tls::TlsListener),
}

impl ApiListener {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            ApiListener::Plain(listener) => listener.local_addr(),
            ApiListener::Tls(listener) => listener.local_addr(),
        }
    }
}

/// Serves the API and the console on `listener` until `shutdown` resolves, with the
/// controller's HTTP limits ([`httpd::Limits::controller_api`]).
pub async fn serve(
    listener: ApiListener,
    state: SharedState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, httpd::Limits::controller_api(), shutdown).await
}

/// [`serve`] with the HTTP limits given: timeouts, connection caps, the body limit.
pub async fn serve_with(
    listener: ApiListener,
    state: SharedState,
    limits: httpd::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state);
    let server = httpd::Server::new("controller API", limits);
    match listener {
        ApiListener::Plain(listener) => {
            server
                .serve_with::<_, RemoteAddr>(listener, httpd::Plain, app, shutdown)
                .await
        }
        ApiListener::Tls(tls::TlsListener {
            listener,
            handshake,
        }) => {
            server
                .serve_with::<_, RemoteAddr>(listener, handshake, app, shutdown)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, StatusCode};
    use serde_json::json;

    use super::test_support::{api_state, call, closed_port};

    /// Every route with a path parameter refuses a segment that is not UTF-8 with the
    /// API's `{"error"}` body (axum's own rejection is plain text; found by fuzz/api_json).
    #[tokio::test]
    async fn a_path_that_is_not_utf8_is_refused_in_the_api_error_shape() {
        let dir = tempfile::tempdir().unwrap();
        let state = api_state(dir.path(), closed_port());
        let cases = [
            (
                Method::PUT,
                "/api/v1/nodes/%C3%28/desired",
                Some(json!({"running": true})),
            ),
            (Method::DELETE, "/api/v1/databases/%C3%28?confirm=x", None),
            (Method::DELETE, "/api/v1/users/app/%C3%28", None),
            (
                Method::POST,
                "/api/v1/users/x%0Ay/%C3%28/password",
                Some(json!({})),
            ),
            (Method::DELETE, "/api/v1/tokens/%FF", None),
        ];
        for (method, uri, body) in cases {
            // `call` fails the test when the answer is not JSON.
            let (status, answer) = call(&state, method.clone(), uri, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {uri}: {answer}");
            let message = answer["error"].as_str().unwrap_or_default();
            assert!(
                message.starts_with("invalid path: ") && message.contains("UTF-8"),
                "{method} {uri}: {answer}"
            );
        }
    }
}
