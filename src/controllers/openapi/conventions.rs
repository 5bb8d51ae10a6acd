//! What every operation of the document has in common, applied once to the
//! document utoipa generates, so that a route only declares what is its
//! own (its success, its own errors and their meaning) and no route, old
//! or new, can forget a header or an error that the middleware adds.
//!
//! Done on the JSON because utoipa's model cannot say it: header objects
//! there have no `required` and cannot be `$ref`s, and `security: []`
//! (public) cannot be told from "not declared". Generated clients need all
//! three: an optional header is typed `T | undefined`, and a missing
//! `security` inherits whatever a client's default is.

use serde_json::{Map, Value, json};

/// `components.headers`: every header the service sends by rule.
fn headers() -> Value {
    let integer = |minimum: u64| json!({"type": "integer", "minimum": minimum});
    json!({
        "X-Request-Id": {
            "description": "The request's id: the client's own `X-Request-Id` when it is printable and at most 128 bytes, else a new one. Also in error bodies as `request_id`.",
            "required": true,
            "schema": {"type": "string"},
            "example": "4f1c2a9e0b7d3c5a00000001",
        },
        "RateLimit-Limit": {
            "description": "Requests allowed per window by the limit this request counted against (the login limit on `login`, else the general one). Sent on every `/api` response while rate limiting is on (the default).",
            "required": true,
            "schema": integer(1),
            "example": 300,
        },
        "RateLimit-Remaining": {
            "description": "Requests that could still be made right now.",
            "required": true,
            "schema": integer(0),
            "example": 299,
        },
        "RateLimit-Reset": {
            "description": "Seconds until the full limit is available again; on a 429, seconds until a request is allowed again (then equal to `Retry-After`).",
            "required": true,
            "schema": integer(0),
            "example": 1,
        },
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "required": true,
            "schema": integer(1),
            "example": 1,
        },
        "ETag": {
            "description": "Strong validator of the representation: send it back as `If-None-Match` to get 304 while it is current. Equal bytes give equal tags on every instance.",
            "required": true,
            "schema": {"type": "string"},
            "example": "\"9f86d081884c7d659a2feaa0c55ad015\"",
        },
        "X-Cache": {
            "description": "`HIT` when the answer came from the cache, `MISS` when it was read from the database.",
            "required": true,
            "schema": {"type": "string", "enum": ["HIT", "MISS"]},
            "example": "HIT",
        },
        "WWW-Authenticate": {
            "description": "The scheme to authenticate with.",
            "required": true,
            "schema": {"type": "string"},
            "example": "Bearer",
        },
        "Location": {
            "description": "The URL of the resource created.",
            "required": true,
            "schema": {"type": "string", "format": "uri-reference"},
            "example": "/api/v1/users/42",
        },
    })
}

/// The errors any operation (429) or any `/api` operation may answer,
/// whatever the route.
const RATE_LIMITED: (&str, &str) = ("429", "RateLimited");
const INTERNAL: (&str, &str) = ("500", "InternalError");
const UNAVAILABLE: (&str, &str) = ("503", "Unavailable");
/// ...any operation that needs a bearer token...
const UNAUTHORIZED: (&str, &str) = ("401", "Unauthorized");
/// ...and any operation that reads a body.
const PAYLOAD_TOO_LARGE: (&str, &str) = ("413", "PayloadTooLarge");
const REQUEST_TIMEOUT: (&str, &str) = ("408", "RequestTimeout");
const VALIDATION_FAILED: (&str, &str) = ("422", "ValidationFailed");

/// `components.responses`, one per common error.
fn responses() -> Value {
    let error = |description: &str| {
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
        })
    };
    json!({
        "RateLimited": error("`rate_limited`: over the client's request limit (or the login or registration limit), or too many connections from one address; retry after `Retry-After` seconds"),
        "InternalError": error("`internal`: an unexpected failure; quote `request_id` when reporting it"),
        "Unavailable": error("`unavailable`: Redis or the database did not answer in time; retry after `Retry-After` seconds"),
        "Unauthorized": error("`unauthorized`: no bearer token, or one that expired or whose session ended"),
        "PayloadTooLarge": error("`payload_too_large`: the body is over 64 KiB"),
        "RequestTimeout": error("`request_timeout`: the body did not arrive in time; the connection is closed"),
        "ValidationFailed": error("`validation_failed`: `details` names each invalid field (`body` for a body that is not a JSON object)"),
    })
}

/// The headers a response with this status, of an operation on this path,
/// always carries.
fn rule_headers(path: &str, status: &str) -> Vec<&'static str> {
    let mut names = vec!["X-Request-Id"];
    if path.starts_with("/api/") {
        names.extend(["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"]);
        if status == "429" || status == "503" {
            names.push("Retry-After");
        }
    }
    if status == "401" {
        names.push("WWW-Authenticate");
    }
    names
}

/// Why a header the rules add is not always there on this status, if it
/// is not.
fn sometimes_absent(status: &str, name: &str) -> Option<&'static str> {
    match (status, name) {
        // A 409 is either `update_in_progress`, with Retry-After, or
        // `conflict`, without.
        ("409", "Retry-After") => Some("Sent with `update_in_progress` only."),
        // The connection guard answers these before the rate limiter runs.
        ("408" | "413" | "429", "RateLimit-Limit" | "RateLimit-Remaining" | "RateLimit-Reset") => {
            Some(
                "Absent when the connection guard answered (too many connections from one address, a body too large or too slow), before the rate limiter.",
            )
        }
        _ => None,
    }
}

/// A shared header, inline and not required.
fn optional(component: &Value, why: &str) -> Value {
    let mut header = component.clone();
    header["required"] = json!(false);
    let description = component["description"].as_str().unwrap_or_default();
    header["description"] = json!(format!("{description} {why}"));
    header
}

fn header_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/headers/{name}")})
}

/// Every header of a response as a reference to its component (so it is
/// required and typed alike everywhere), plus the headers its status and
/// path always carry.
fn complete_headers(path: &str, status: &str, response: &mut Map<String, Value>, known: &Value) {
    let headers = response
        .entry("headers")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(headers) = headers.as_object_mut() else {
        return;
    };
    for (name, header) in headers.iter_mut() {
        if known.get(name).is_some() {
            *header = header_ref(name);
        }
    }
    for name in rule_headers(path, status) {
        headers.entry(name).or_insert_with(|| header_ref(name));
    }
    for (name, header) in headers.iter_mut() {
        if let Some(why) = sometimes_absent(status, name) {
            *header = optional(&known[name.as_str()], why);
        }
    }
}

/// An optional parameter is sent or left out, never sent as null: utoipa
/// makes every `Option` nullable, which types it `T | null` in clients.
fn drop_null_from_optional_parameters(operation: &mut Value) {
    // `get_mut`, not indexing: indexing a missing key would add a null.
    let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for parameter in parameters {
        if parameter.get("required") == Some(&json!(true)) {
            continue;
        }
        let Some(schema) = parameter.get_mut("schema") else {
            continue;
        };
        if let Some(types) = schema.get_mut("type").and_then(Value::as_array_mut) {
            types.retain(|kind| kind != "null");
            if let [single] = types.as_slice() {
                schema["type"] = single.clone();
            }
        }
    }
}

fn complete_operation(path: &str, operation: &mut Value, known: &Value) {
    if operation.get("security").is_none() {
        operation["security"] = json!([]);
    }
    drop_null_from_optional_parameters(operation);
    let secured = operation["security"]
        .as_array()
        .is_some_and(|requirements| !requirements.is_empty());
    let reads_body = operation.get("requestBody").is_some();
    // The connection guard may refuse any path; the limiter, /api only.
    let mut common = vec![RATE_LIMITED];
    if path.starts_with("/api/") {
        common.extend([INTERNAL, UNAVAILABLE]);
    }
    if secured {
        common.push(UNAUTHORIZED);
    }
    if reads_body {
        common.extend([PAYLOAD_TOO_LARGE, REQUEST_TIMEOUT, VALIDATION_FAILED]);
    }
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (status, response) in responses.iter_mut() {
        if let Some(response) = response.as_object_mut()
            && !response.contains_key("$ref")
        {
            complete_headers(path, status, response, known);
        }
    }
    for (status, component) in common {
        responses
            .entry(status)
            .or_insert_with(|| json!({"$ref": format!("#/components/responses/{component}")}));
    }
}

/// Applies the conventions to a document as utoipa generated it.
pub fn apply(document: &mut Value) {
    let known = headers();
    let mut common_responses = responses();
    if let Some(common) = common_responses.as_object_mut() {
        // The component responses themselves carry the headers of an /api
        // error: they are used on /api operations only.
        for (component, response) in common.iter_mut() {
            let status = [
                RATE_LIMITED,
                INTERNAL,
                UNAVAILABLE,
                UNAUTHORIZED,
                PAYLOAD_TOO_LARGE,
                REQUEST_TIMEOUT,
                VALIDATION_FAILED,
            ]
            .into_iter()
            .find(|(_, name)| name == component)
            .map_or("", |(status, _)| status);
            if let Some(response) = response.as_object_mut() {
                complete_headers("/api/", status, response, &known);
            }
        }
    }
    document["servers"] =
        json!([{"url": "/", "description": "The origin that serves this document"}]);
    if let Some(paths) = document["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in item.iter_mut() {
                if matches!(
                    method.as_str(),
                    "get" | "put" | "post" | "delete" | "patch" | "head" | "options" | "trace"
                ) {
                    complete_operation(path, operation, &known);
                }
            }
        }
    }
    // Only the common responses some operation uses.
    let text = document["paths"].to_string();
    if let Some(common) = common_responses.as_object_mut() {
        common.retain(|name, _| text.contains(&format!("\"#/components/responses/{name}\"")));
    }
    let components = &mut document["components"];
    components["headers"] = known;
    components["responses"] = common_responses;
}
