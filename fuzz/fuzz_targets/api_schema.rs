//! The structure-aware twin of `api_json`: each request is built from the route's schema
//! in the controller's own OpenAPI document (`controller::api::openapi_document()`, the
//! request types' JSON Schemas), with `arbitrary` choosing which optional fields appear
//! and what the strings, numbers and lists hold. So most inputs reach validation instead
//! of stopping at the JSON parser. Besides `api_json`'s checks (never a 5xx but 503,
//! every refusal the API's error body), the document must agree with the types: a body
//! or query that its schema allows is never refused as malformed.

#![no_main]

#[path = "controller_api_harness.rs"]
mod controller_api_harness;

use std::sync::OnceLock;

use controller_api_harness::{fill_path, harness, send};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(controller::api::openapi_document)
}

/// Strings that mean something to some validator: names, host patterns, privileges,
/// charsets, services, windows, and what an attacker tries.
const STRINGS: &[&str] = &[
    "app",
    "appdb",
    "node1",
    "%",
    "10.0.0.%",
    "localhost",
    "ALL",
    "SELECT",
    "INSERT",
    "utf8mb4",
    "utf8mb4_unicode_ci",
    "nova",
    "keystone",
    "1h",
    "7d",
    "mysql",
    "root",
    "galley_admin",
    "a'b",
    "a`b",
    "a\"b",
    "a\\b",
    "a\nb",
    "",
    " ",
    "..",
    "x;DROP TABLE t",
    "correct horse battery staple",
];

fn pick_string(u: &mut Unstructured) -> Result<String> {
    Ok(match u.int_in_range(0..=3)? {
        0 | 1 => (*u.choose(STRINGS)?).to_owned(),
        2 => u.arbitrary::<String>()?,
        _ => "a".repeat(u.int_in_range(60..=300)?),
    })
}

fn integer(schema: &Value, u: &mut Unstructured) -> Result<Value> {
    let (low, high) = match schema["format"].as_str().unwrap_or("") {
        "uint8" => (0, i64::from(u8::MAX)),
        "uint16" => (0, i64::from(u16::MAX)),
        "uint32" => (0, i64::from(u32::MAX)),
        "int32" => (i64::from(i32::MIN), i64::from(i32::MAX)),
        "uint" | "uint64" => (0, i64::MAX),
        _ => (i64::MIN, i64::MAX),
    };
    let low = schema["minimum"].as_i64().map_or(low, |m| m.max(low));
    let high = schema["maximum"].as_i64().map_or(high, |m| m.min(high));
    let value = if u.ratio(3, 4)? {
        // Small values and the edges, where limits live.
        *u.choose(&[low, high, 0, 1, 100, 10_000, 10_001, -1])?
    } else {
        u.int_in_range(low..=high)?
    };
    Ok(Value::from(value.clamp(low, high)))
}

/// A value its schema allows (as far as this reading of JSON Schema goes).
fn generate(schema: &Value, u: &mut Unstructured, depth: u32) -> Result<Value> {
    if let Some(reference) = schema["$ref"].as_str() {
        let target = document()
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("the document has no {reference}"));
        return generate(target, u, depth + 1);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = schema[key].as_array() {
            return generate(u.choose(options)?, u, depth + 1);
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        return Ok(u.choose(values)?.clone());
    }
    if let Some(value) = schema.get("const") {
        return Ok(value.clone());
    }
    let kind = match &schema["type"] {
        Value::String(kind) => kind.clone(),
        Value::Array(kinds) => u.choose(kinds)?.as_str().unwrap_or("string").to_owned(),
        _ => "string".to_owned(),
    };
    Ok(match kind.as_str() {
        "null" => Value::Null,
        "boolean" => Value::Bool(u.arbitrary()?),
        "integer" => integer(schema, u)?,
        "number" => Value::from(f64::from(u.arbitrary::<f32>()?).clamp(-1e9, 1e9)),
        "array" if depth < 6 => {
            let count = u.int_in_range(0..=4)?;
            let mut items = Vec::new();
            for _ in 0..count {
                items.push(generate(&schema["items"], u, depth + 1)?);
            }
            Value::Array(items)
        }
        "array" => Value::Array(Vec::new()),
        "object" => {
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|names| names.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut object = Map::new();
            if let Some(properties) = schema["properties"].as_object() {
                for (name, property) in properties {
                    if required.contains(&name.as_str()) || u.arbitrary()? {
                        object.insert(name.clone(), generate(property, u, depth + 1)?);
                    }
                }
            }
            Value::Object(object)
        }
        _ => Value::String(pick_string(u)?),
    })
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn one_request(u: &mut Unstructured) -> Result<()> {
    let harness = harness();
    let route = u.choose(&harness.routes)?;
    let operation = &document()["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
    let mut uri = fill_path(route.path, u.arbitrary()?);
    let mut query = Vec::new();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        if parameter["in"] != "query" || !(parameter["required"] == true || u.arbitrary()?) {
            continue;
        }
        let value = match generate(&parameter["schema"], u, 0)? {
            Value::String(text) => text,
            other => other.to_string(),
        };
        let name = parameter["name"].as_str().expect("a named parameter");
        query.push(format!("{name}={}", percent_encode(&value)));
    }
    if !query.is_empty() {
        uri.push('?');
        uri.push_str(&query.join("&"));
    }
    let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
    let body = if schema.is_null() {
        None
    } else {
        Some(serde_json::to_vec(&generate(schema, u, 0)?).expect("JSON"))
    };
    let shown = body
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default()
        .into_owned();
    let (status, message) = send(harness, &route.method, &uri, body);
    assert!(
        !(status == 400
            && (message.starts_with("invalid request body")
                || message.starts_with("invalid query parameters"))),
        "{} {uri} refused a request its schema allows: {message}\nbody: {shown}",
        route.method
    );
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = one_request(&mut Unstructured::new(data));
});
