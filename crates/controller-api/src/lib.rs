//! The controller's REST contract (`/api/v1`): every request and response body, query
//! and error as a serde type, defined once. The controller's handlers serialize and
//! deserialize these types, its OpenAPI document is derived from their JSON Schemas
//! (`schemars`), and the CLI's typed client ([`ApiClient`]) reads and sends them, so the
//! three cannot drift apart.
//!
//! Each body type carries an example (`#[schemars(example = ...)]`): the document shows
//! it, and the controller's tests check that each example, serialized by serde, matches
//! the schema the document gives for its route.
//!
//! The crate knows nothing of the controller's internals (store, manage, planner): the
//! handlers convert their values into these types.

mod auth;
mod client;
mod manage;
mod overview;
mod target;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use auth::{
    LoginRequest, NewToken, NewTokenRequest, TokenInfo, TokenScope, Whoami,
    DEFAULT_TOKEN_LIFETIME_DAYS, MAX_PASSWORD_BYTES, MAX_TOKEN_LIFETIME_DAYS, MAX_USERNAME_LENGTH,
};
pub use client::{status_meaning, ApiClient, ApiError};
pub use manage::{
    CatalogEntry, CreatedUser, Database, Drift, DropDatabaseQuery, GrantRequest, Grants,
    NewDatabase, NewPassword, NewUser, ProvisionRequest, Provisioned, ServiceConfig,
    ServiceConfigQuery, ServiceDrift, User,
};
pub use overview::{
    ClusterView, ComponentView, ControllerView, Decision, DecisionsQuery, DesiredRequest,
    DesiredState, Event, EventsQuery, Health, History, HistoryQuery, NodeView, ProxyView, Severity,
};
pub use target::{normalize_url, resolve, LocalController, Resolved, TargetInputs};

/// The body of every error answer: a message naming what was wrong and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(example = ErrorBody::example())]
pub struct ErrorBody {
    pub error: String,
}

impl ErrorBody {
    fn example() -> ErrorBody {
        ErrorBody {
            error: "unknown node \"node9\": this cluster has node1, node2, node3".to_owned(),
        }
    }
}
