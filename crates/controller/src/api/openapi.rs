//! The OpenAPI 3.0 document of the API, built from the same route table as the router.

use serde_json::{json, Map, Value};

use super::{route_table, Access};

/// The path parameters of an axum path (`{name}` segments).
fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

fn error_description(status: u16) -> &'static str {
    match status {
        400 => "invalid input; the error names what was wrong and what is allowed",
        401 => "not authenticated",
        403 => "missing or wrong X-CSRF-Token header (session cookie), or forbidden",
        404 => "not found",
        409 => "already exists",
        429 => "too many failed logins; see Retry-After",
        502 => "the database server refused; its message is passed on",
        503 => "no Synced node to run the SQL on",
        _ => "error",
    }
}

/// The whole document.
pub fn openapi_document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    let error_schema = json!({"$ref": "#/components/schemas/Error"});
    for route in route_table() {
        let doc = &route.doc;
        let mut parameters: Vec<Value> = path_parameters(route.path)
            .into_iter()
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        parameters.extend(doc.query.iter().map(|(name, description)| {
            json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}})
        }));
        let mut responses = Map::new();
        let (status, body) = &doc.success;
        let content_type = if doc.text {
            "text/plain"
        } else {
            "application/json"
        };
        let mut success = json!({"description": "success"});
        if let Some(schema) = body {
            success["content"] = json!({content_type: {"schema": schema}});
        }
        responses.insert(status.to_string(), success);
        let mut errors: Vec<u16> = doc.errors.to_vec();
        if route.access == Access::Authenticated {
            errors.push(401);
        }
        for error in errors {
            responses.insert(
                error.to_string(),
                json!({"description": error_description(error), "content": {"application/json": {"schema": error_schema}}}),
            );
        }
        let mut operation = json!({
            "summary": doc.summary,
            "parameters": parameters,
            "responses": responses,
        });
        if route.access == Access::Public {
            operation["security"] = json!([]);
        }
        if let Some(request) = &doc.request {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": request}}});
        }
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[route.method.as_str().to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "galley controller API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The REST API of the galley controller. Authenticate with `Authorization: Bearer <token>` (an API token or the cluster token), or with the galley_session cookie from POST /api/v1/login; requests that change state with the cookie need the X-CSRF-Token header.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": super::auth::SESSION_COOKIE},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented() {
        let document = openapi_document();
        let table = route_table();
        assert!(table.len() >= 12, "{} routes", table.len());
        for route in &table {
            let method = route.method.as_str().to_ascii_lowercase();
            let operation = &document["paths"][route.path][&method];
            assert!(
                operation["summary"].is_string(),
                "{route:?} is not documented"
            );
            for name in path_parameters(route.path) {
                assert!(
                    operation["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path"),
                    "{route:?} does not document its parameter {name}"
                );
            }
        }
        let documented: usize = document["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|methods| methods.as_object().unwrap().len())
            .sum();
        assert_eq!(
            documented,
            table.len(),
            "the document has routes the table lacks"
        );
    }

    #[test]
    fn routes_are_unique() {
        let table = route_table();
        let mut seen = std::collections::BTreeSet::new();
        for route in &table {
            assert!(
                seen.insert((route.method.to_string(), route.path)),
                "{route:?} twice"
            );
        }
    }

    #[test]
    fn only_health_and_login_are_public() {
        let public: Vec<String> = route_table()
            .iter()
            .filter(|route| route.access == Access::Public)
            .map(|route| format!("{route:?}"))
            .collect();
        assert_eq!(public, ["POST /api/v1/login", "GET /api/v1/health"]);
    }

    #[test]
    fn path_parameters_are_found() {
        assert_eq!(
            path_parameters("/api/v1/users/{user}/{host}/password"),
            ["user", "host"]
        );
        assert!(path_parameters("/api/v1/cluster").is_empty());
    }
}
