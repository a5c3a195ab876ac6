//! Databases, users, grants and OpenStack provisioning, through the `manage` crate.
//!
//! The SQL runs on one Synced node, picked from the controller's latest observation in
//! priority order, as the cluster's admin account over TCP; Galera replicates the DDL
//! and account statements to the others. Every name is validated by `manage` before any
//! statement is built. Provisioned service passwords are kept in the store, so that
//! `GET /openstack` can show the config lines and a second provision changes nothing.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Json;
use controller_api::{
    CatalogEntry, CreatedUser, Database, Drift, DropDatabaseQuery, GrantRequest, Grants,
    NewDatabase, NewPassword, NewUser, Provisioned, ServiceConfig, ServiceConfigQuery,
    ServiceDrift, User,
};
use manage::catalog::{self, Endpoint, Service};
use manage::{
    Charset, Collation, DatabaseInfo, DatabaseName, HostPattern, ManageError, Manager, Password,
    Privileges, UserName,
};

use super::{
    Access, ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, Route, RouteDoc, SharedState,
};
use crate::now_ms;

impl From<ManageError> for ApiError {
    fn from(error: ManageError) -> ApiError {
        let status = StatusCode::from_u16(error.kind().http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!("{error}");
        }
        ApiError::new(status, error.to_string())
    }
}

impl From<manage::NameError> for ApiError {
    fn from(error: manage::NameError) -> ApiError {
        ApiError::from(ManageError::from(error))
    }
}

/// The node the SQL runs on: the first Synced node by priority in the latest
/// observation.
fn synced_node(state: &SharedState) -> ApiResult<spec::NodeSpec> {
    let no_node = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no Synced node to run the SQL on: the controller has not observed one yet (see GET /api/v1/cluster)",
        )
    };
    let latest = state.observations.latest().ok_or_else(no_node)?;
    let mut synced: Vec<&spec::NodeSpec> = latest
        .nodes
        .iter()
        .filter(|(_, report)| report.as_ref().is_some_and(|report| report.is_synced()))
        .map(|(node, _)| node)
        .collect();
    synced.sort_by_key(|node| node.priority);
    synced
        .first()
        .map(|node| (*node).clone())
        .ok_or_else(no_node)
}

/// Runs `operation` with a manager on a Synced node, then closes its connections.
async fn with_manager<T, F, Fut>(state: &SharedState, operation: F) -> ApiResult<T>
where
    F: FnOnce(Manager) -> Fut,
    Fut: std::future::Future<Output = Result<T, ManageError>>,
{
    let node = synced_node(state)?;
    let options = mysql_async::OptsBuilder::default()
        .ip_or_hostname(node.address.clone())
        .tcp_port(node.client_port)
        .user(Some(state.secrets.admin_user.clone()))
        .pass(Some(state.secrets.admin_password.clone()))
        .prefer_socket(false);
    let manager = Manager::new(options.into());
    let result = operation(manager.clone()).await;
    let _ = manager.disconnect().await;
    Ok(result?)
}

fn database_view(database: DatabaseInfo) -> Database {
    Database {
        name: database.name,
        size_bytes: database.size_bytes,
        charset: database.charset,
        collation: database.collation,
        tables: database.tables,
    }
}

async fn list_databases(State(state): State<SharedState>) -> ApiResult<Json<Vec<Database>>> {
    let databases =
        with_manager(&state, |manager| async move { manager.databases().await }).await?;
    Ok(Json(databases.into_iter().map(database_view).collect()))
}

async fn create_database(
    State(state): State<SharedState>,
    ApiJson(body): ApiJson<NewDatabase>,
) -> ApiResult<(StatusCode, Json<Database>)> {
    let name = DatabaseName::parse_managed(&body.name)?;
    let charset = body.charset.as_deref().map(Charset::parse).transpose()?;
    let collation = body
        .collation
        .as_deref()
        .map(Collation::parse)
        .transpose()?;
    let created = with_manager(&state, |manager| async move {
        manager
            .create_database(&name, charset.as_ref(), collation.as_ref())
            .await
    })
    .await?;
    tracing::info!(database = ?created.name, "database created through the API");
    Ok((StatusCode::CREATED, Json(database_view(created))))
}

async fn drop_database(
    State(state): State<SharedState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<DropDatabaseQuery>,
) -> ApiResult<StatusCode> {
    let name = DatabaseName::parse_managed(&name)?;
    if query.confirm.as_deref() != Some(name.as_str()) {
        return Err(ApiError::bad_request(format!(
            "dropping a database deletes all its tables: confirm with ?confirm={name}"
        )));
    }
    with_manager(&state, |manager| async move {
        manager.drop_database(&name).await
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_users(State(state): State<SharedState>) -> ApiResult<Json<Vec<User>>> {
    let users = with_manager(&state, |manager| async move { manager.users().await }).await?;
    Ok(Json(
        users
            .into_iter()
            .map(|user| User {
                user: user.user,
                host: user.host,
                grants: user.grants,
                system: user.system,
            })
            .collect(),
    ))
}

/// The given password, or a generated one (then returned once).
fn password_or_generated(given: Option<&str>) -> ApiResult<(Password, bool)> {
    match given {
        Some(password) => Ok((Password::parse(password)?, false)),
        None => Ok((Password::generate(), true)),
    }
}

async fn create_user(
    State(state): State<SharedState>,
    ApiJson(body): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<CreatedUser>)> {
    let user = UserName::parse_managed(&body.user)?;
    let host = HostPattern::parse(&body.host)?;
    let (password, generated) = password_or_generated(body.password.as_deref())?;
    let (for_sql, for_user, for_host) = (password.clone(), user.clone(), host.clone());
    with_manager(&state, |manager| async move {
        manager.create_user(&for_user, &for_host, &for_sql).await
    })
    .await?;
    let answer = CreatedUser {
        user: user.as_str().to_owned(),
        host: host.as_str().to_owned(),
        password: generated.then(|| password.expose().to_owned()),
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

fn account(user: &str, host: &str) -> ApiResult<(UserName, HostPattern)> {
    Ok((UserName::parse_managed(user)?, HostPattern::parse(host)?))
}

async fn drop_user(
    State(state): State<SharedState>,
    ApiPath((user, host)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let (user, host) = account(&user, &host)?;
    with_manager(&state, |manager| async move {
        manager.drop_user(&user, &host).await
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_password(
    State(state): State<SharedState>,
    ApiPath((user, host)): ApiPath<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<Json<NewPassword>> {
    let (user, host) = account(&user, &host)?;
    // The body is optional: none (or `{}`) generates a password.
    let body: NewPassword = if body.iter().all(u8::is_ascii_whitespace) {
        NewPassword::default()
    } else {
        serde_json::from_slice(&body).map_err(|error| {
            ApiError::bad_request(format!(
                "invalid request body: {error}; send {{\"password\": \"...\"}} or nothing"
            ))
        })?
    };
    let (password, generated) = password_or_generated(body.password.as_deref())?;
    let for_sql = password.clone();
    with_manager(&state, |manager| async move {
        manager.set_password(&user, &host, &for_sql).await
    })
    .await?;
    Ok(Json(NewPassword {
        password: generated.then(|| password.expose().to_owned()),
    }))
}

/// The validated names of a privilege change.
fn parse_grant(
    request: &GrantRequest,
) -> ApiResult<(UserName, HostPattern, DatabaseName, Privileges)> {
    let (user, host) = account(&request.user, &request.host)?;
    Ok((
        user,
        host,
        DatabaseName::parse_managed(&request.database)?,
        Privileges::parse_list(&request.privileges)?,
    ))
}

async fn grant(
    State(state): State<SharedState>,
    ApiJson(body): ApiJson<GrantRequest>,
) -> ApiResult<Json<Grants>> {
    let (user, host, database, privileges) = parse_grant(&body)?;
    let grants = with_manager(&state, |manager| async move {
        manager.grant(&user, &host, &database, &privileges).await
    })
    .await?;
    Ok(Json(Grants { grants }))
}

async fn revoke(
    State(state): State<SharedState>,
    ApiJson(body): ApiJson<GrantRequest>,
) -> ApiResult<Json<Grants>> {
    let (user, host, database, privileges) = parse_grant(&body)?;
    let grants = with_manager(&state, |manager| async move {
        manager.revoke(&user, &host, &database, &privileges).await
    })
    .await?;
    Ok(Json(Grants { grants }))
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| (*value).to_owned()).collect()
}

async fn openstack_catalog() -> Json<Vec<CatalogEntry>> {
    Json(
        catalog::entries()
            .into_iter()
            .map(|entry| CatalogEntry {
                service: entry.service.to_owned(),
                databases: strings(&entry.databases),
                optional: entry.optional,
                aliases: strings(&entry.aliases),
                default: entry.default,
            })
            .collect(),
    )
}

/// Where the services reach the database: `[cluster] writer_address` (an imported
/// cluster's own balancer), else the proxy's writer, else the most preferred node.
fn endpoint(state: &SharedState) -> Endpoint {
    let (host, port) = state.spec.client_endpoint();
    Endpoint { host, port }
}

/// The passwords galley holds, by service.
fn known_passwords(state: &SharedState) -> ApiResult<BTreeMap<String, Password>> {
    let stored = state.store().service_credentials()?;
    let mut known = BTreeMap::new();
    for credential in stored {
        match Password::parse(&credential.password) {
            Ok(password) => {
                known.insert(credential.service, password);
            }
            Err(_) => tracing::warn!(
                service = %credential.service,
                "the stored service password is not usable; provision with rotate to replace it"
            ),
        }
    }
    Ok(known)
}

fn service_view(
    service: &Service,
    password: &Password,
    changes: &[String],
    endpoint: &Endpoint,
    charset: &Charset,
) -> ServiceConfig {
    ServiceConfig {
        service: service.name.to_owned(),
        databases: strings(&service.database_names()),
        user: service.user.to_owned(),
        changes: changes.to_vec(),
        config: catalog::config_text(service, password, endpoint, charset),
    }
}

async fn provision(
    State(state): State<SharedState>,
    ApiJson(body): ApiJson<controller_api::ProvisionRequest>,
) -> ApiResult<Json<Provisioned>> {
    let request = manage::ProvisionRequest {
        services: body.services,
        rotate: body.rotate,
        utf8mb4: body.utf8mb4.unwrap_or(true),
    };
    // Bad service names answer 400 before any node is needed.
    catalog::resolve_list(request.services.as_deref())?;
    let known = known_passwords(&state)?;
    let report = with_manager(&state, |manager| async move {
        manager.provision(&request, &known).await
    })
    .await?;
    let now = now_ms();
    for service in report.services.iter().filter(|s| s.password_changed) {
        state.store().set_service_credential(
            &store::ServiceCredential {
                service: service.service.to_owned(),
                user: service.user.to_owned(),
                password: service.password.expose().to_owned(),
            },
            now,
        )?;
    }
    let endpoint = endpoint(&state);
    let services: Vec<ServiceConfig> = report
        .services
        .iter()
        .map(|service| ServiceConfig {
            service: service.service.to_owned(),
            databases: strings(&service.databases),
            user: service.user.to_owned(),
            changes: service.changes.clone(),
            config: service.config(&endpoint),
        })
        .collect();
    if report.changed {
        tracing::info!("OpenStack databases provisioned through the API");
    }
    Ok(Json(Provisioned {
        services,
        changed: report.changed,
    }))
}

/// What galley provisioned, from the store (no SQL).
async fn provisioned(State(state): State<SharedState>) -> ApiResult<Json<Provisioned>> {
    let known = known_passwords(&state)?;
    let endpoint = endpoint(&state);
    let charset = Charset::utf8mb4();
    let services: Vec<ServiceConfig> = catalog::CATALOG
        .iter()
        .filter_map(|service| {
            known
                .get(service.name)
                .map(|password| service_view(service, password, &[], &endpoint, &charset))
        })
        .collect();
    Ok(Json(Provisioned {
        services,
        changed: false,
    }))
}

async fn service_config(
    State(state): State<SharedState>,
    ApiQuery(query): ApiQuery<ServiceConfigQuery>,
) -> ApiResult<Response> {
    let Some(name) = query.service else {
        return Err(ApiError::bad_request(
            "missing ?service=: name an OpenStack service, e.g. ?service=nova",
        ));
    };
    let service = catalog::resolve(&name)?;
    let known = known_passwords(&state)?;
    let Some(password) = known.get(service.name) else {
        return Err(ApiError::not_found(format!(
            "{} is not provisioned yet: POST /api/v1/openstack/provision first",
            service.name
        )));
    };
    let text = catalog::config_text(service, password, &endpoint(&state), &Charset::utf8mb4());
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let disposition = format!("attachment; filename=\"{}\"", service.config_file);
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).expect("catalog file names are ASCII"),
    );
    Ok(response)
}

async fn drift(State(state): State<SharedState>) -> ApiResult<Json<Drift>> {
    let known = known_passwords(&state)?;
    // The provisioned services; before any provision, the default set (all missing).
    let services: Vec<&'static Service> = if known.is_empty() {
        catalog::default_services()
    } else {
        catalog::CATALOG
            .iter()
            .filter(|service| known.contains_key(service.name))
            .collect()
    };
    let report = with_manager(&state, |manager| async move {
        manager.drift(&services, &known, true).await
    })
    .await?;
    Ok(Json(Drift {
        services: report
            .services
            .into_iter()
            .map(|drift| ServiceDrift {
                service: drift.service.to_owned(),
                missing: drift.missing,
                differs: drift.differs,
            })
            .collect(),
        clean: report.clean,
    }))
}

pub(super) fn routes() -> Vec<Route> {
    let sql_errors: &'static [u16] = &[400, 403, 404, 409, 502, 503];
    let doc = |summary| RouteDoc::new(summary).errors(sql_errors);
    vec![
        Route::new(
            Method::GET,
            "/api/v1/databases",
            Access::Read,
            get(list_databases),
            doc("The user databases").response::<Vec<Database>>(200),
        ),
        Route::new(
            Method::POST,
            "/api/v1/databases",
            Access::Manage,
            post(create_database),
            doc("Create a database")
                .request::<NewDatabase>()
                .response::<Database>(201),
        ),
        Route::new(
            Method::DELETE,
            "/api/v1/databases/{name}",
            Access::Manage,
            delete(drop_database),
            doc("Drop a database with all its tables (system schemas are refused)")
                .query::<DropDatabaseQuery>()
                .no_content(),
        ),
        Route::new(
            Method::GET,
            "/api/v1/users",
            Access::Read,
            get(list_users),
            doc("Every account with its grants").response::<Vec<User>>(200),
        ),
        Route::new(
            Method::POST,
            "/api/v1/users",
            Access::Manage,
            post(create_user),
            doc("Create an account; without a password one is generated and returned once")
                .request::<NewUser>()
                .response::<CreatedUser>(201),
        ),
        Route::new(
            Method::DELETE,
            "/api/v1/users/{user}/{host}",
            Access::Manage,
            delete(drop_user),
            doc("Drop an account (the host URL-encoded, % as %25)").no_content(),
        ),
        Route::new(
            Method::POST,
            "/api/v1/users/{user}/{host}/password",
            Access::Manage,
            post(set_password),
            doc("Set an account's password; without one a password is generated and returned once")
                .request::<NewPassword>()
                .response::<NewPassword>(200),
        ),
        Route::new(
            Method::POST,
            "/api/v1/grants",
            Access::Manage,
            post(grant),
            doc("Grant privileges on a database (ALL, or a list such as SELECT, INSERT)")
                .request::<GrantRequest>()
                .response::<Grants>(200),
        ),
        Route::new(
            Method::POST,
            "/api/v1/revokes",
            Access::Manage,
            post(revoke),
            doc("Revoke privileges on a database")
                .request::<GrantRequest>()
                .response::<Grants>(200),
        ),
        Route::new(
            Method::GET,
            "/api/v1/openstack/catalog",
            Access::Read,
            get(openstack_catalog),
            doc("The OpenStack services galley knows, their databases and aliases").response::<Vec<
                CatalogEntry,
            >>(
                200
            ),
        ),
        Route::new(
            Method::POST,
            "/api/v1/openstack/provision",
            Access::Manage,
            post(provision),
            doc("Create the services' databases, users and grants; a second run changes nothing")
                .request::<controller_api::ProvisionRequest>()
                .response::<Provisioned>(200),
        ),
        Route::new(
            Method::GET,
            "/api/v1/openstack",
            Access::Manage,
            get(provisioned),
            doc("What galley provisioned, with the config lines").response::<Provisioned>(200),
        ),
        Route::new(
            Method::GET,
            "/api/v1/openstack/config",
            Access::Manage,
            get(service_config),
            doc("A provisioned service's config lines as a file to download")
                .query::<ServiceConfigQuery>()
                .text(),
        ),
        Route::new(
            Method::GET,
            "/api/v1/openstack/drift",
            Access::Read,
            get(drift),
            doc("How the provisioned services differ from what provision would make")
                .response::<Drift>(200),
        ),
    ]
}
