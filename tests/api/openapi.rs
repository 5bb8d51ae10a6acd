//! The generated API document agrees with the contract, and `/docs` needs
//! no network.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, spawn_app};

const CONTRACT: [(&str, &str); 21] = [
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/logout"),
    ("put", "/api/v1/auth/password"),
    ("post", "/api/v1/auth/password/forgot"),
    ("post", "/api/v1/auth/password/reset"),
    ("post", "/api/v1/auth/verify-email"),
    ("post", "/api/v1/auth/verify-email/resend"),
    ("get", "/api/v1/users/me"),
    ("get", "/api/v1/users/{id}"),
    ("put", "/api/v1/users/{id}"),
    ("delete", "/api/v1/users/{id}"),
    ("get", "/api/v1/users"),
    ("delete", "/api/v1/admin/cache/keys"),
    ("get", "/api/v1/admin/cache/keys"),
    ("get", "/api/v1/admin/cache/stats"),
    ("get", "/api/v1/admin/jobs/stats"),
    ("post", "/api/v1/admin/jobs/dead/replay"),
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("get", "/metrics"),
];

async fn served_document() -> Value {
    let app = spawn_app(Backend::Sqlite).await;
    app.request(Method::GET, "/openapi.json", None, None)
        .await
        .json()
        .await
        .unwrap()
}

/// Every operation of the document: (method, path, operation).
fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            found.push((method.clone(), path.clone(), operation.clone()));
        }
    }
    found
}

/// A response, following a `$ref` to `components.responses`.
fn resolve<'a>(document: &'a Value, response: &'a Value) -> &'a Value {
    match response["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/responses/");
            &document["components"]["responses"][name]
        }
        None => response,
    }
}

/// The component a response header refers to, which must be required.
fn header_component<'a>(document: &'a Value, response: &'a Value, name: &str) -> &'a Value {
    let reference = response["headers"][name]["$ref"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} is not a reference to a shared header"));
    let component =
        &document["components"]["headers"][reference.trim_start_matches("#/components/headers/")];
    assert_eq!(component["required"], true, "{name} is required");
    component
}

#[tokio::test]
async fn the_openapi_document_has_every_contract_path_schema_and_the_bearer_scheme() {
    let document = served_document().await;
    assert!(document["openapi"].as_str().unwrap().starts_with('3'));
    for (method, path) in CONTRACT {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    let schemas = &document["components"]["schemas"];
    for name in [
        "User",
        "Role",
        "UserPage",
        "Registration",
        "LoginAttempt",
        "TokenResponse",
        "ErrorResponse",
        "ErrorCode",
        "FieldError",
        "Readiness",
        "Liveness",
    ] {
        assert!(schemas[name].is_object(), "schema {name} missing");
    }
    let user_fields: Vec<&String> = schemas["User"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        user_fields,
        [
            "created_at",
            "disabled",
            "email",
            "email_verified",
            "id",
            "role",
            "updated_at",
            "username"
        ]
    );
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        schemas["UserUpdate"]["additionalProperties"], false,
        "unknown fields are refused"
    );
    let login = &document["paths"]["/api/v1/auth/login"]["post"]["requestBody"]["content"];
    assert!(login["application/x-www-form-urlencoded"].is_object());
    let update = &document["paths"]["/api/v1/users/{id}"]["put"]["responses"];
    for status in [
        "200", "401", "403", "404", "409", "413", "422", "429", "500", "503",
    ] {
        assert!(
            update[status].is_object(),
            "PUT /users/{{id}} lacks {status}"
        );
    }
}

#[tokio::test]
async fn docs_are_served_from_the_binary_without_external_urls() {
    let app = spawn_app(Backend::Sqlite).await;
    let redirect = app.request(Method::GET, "/docs", None, None).await;
    assert_eq!(redirect.status(), 308);
    let page = app.request(Method::GET, "/docs/", None, None).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"));
    for attribute in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(
            !html.contains(attribute),
            "the page loads something from outside: {attribute}"
        );
    }
    let initializer = app
        .request(Method::GET, "/docs/swagger-initializer.js", None, None)
        .await
        .text()
        .await
        .unwrap();
    assert!(initializer.contains("\"/openapi.json\""));
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-ui-standalone-preset.js",
    ] {
        let response = app
            .request(Method::GET, &format!("/docs/{asset}"), None, None)
            .await;
        assert_eq!(response.status(), 200, "{asset}");
    }
}

#[tokio::test]
async fn every_operation_has_a_camel_case_id_a_short_summary_a_description_and_its_security() {
    let document = served_document().await;
    let mut ids = std::collections::HashSet::new();
    for (method, path, operation) in operations(&document) {
        let id = operation["operationId"].as_str().unwrap_or_default();
        assert!(
            id.starts_with(|c: char| c.is_ascii_lowercase())
                && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "{method} {path}: operationId {id:?} is not camelCase"
        );
        assert!(ids.insert(id.to_string()), "operationId {id} is used twice");
        assert!(
            operation.get("parameters").is_none_or(Value::is_array),
            "{method} {path}: parameters is not a list"
        );
        let summary = operation["summary"].as_str().unwrap_or_default();
        assert!(
            !summary.is_empty() && summary.len() <= 40 && !summary.ends_with('.'),
            "{method} {path}: summary {summary:?} is not a short title"
        );
        assert!(
            operation["description"]
                .as_str()
                .is_some_and(|d| d.len() > summary.len()),
            "{method} {path} has no description"
        );
        let security = operation["security"].as_array().unwrap_or_else(|| {
            panic!("{method} {path} does not declare security (`[]` when public)")
        });
        assert!(
            security
                .iter()
                .all(|requirement| requirement == &json!({"bearer": []})),
            "{method} {path}: only the bearer scheme, or nothing"
        );
    }
    let public = &document["paths"]["/api/v1/auth/login"]["post"]["security"];
    assert_eq!(public, &json!([]), "login is public");
    assert!(document["servers"][0]["url"].is_string());
}

#[tokio::test]
async fn every_api_response_declares_its_headers_and_every_api_operation_its_limiter_and_server_errors()
 {
    let document = served_document().await;
    for (method, path, operation) in operations(&document) {
        let responses = operation["responses"].as_object().unwrap();
        for (status, response) in responses {
            let response = resolve(&document, response);
            header_component(&document, response, "X-Request-Id");
            if path.starts_with("/api/") {
                for name in ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"] {
                    // The connection guard answers these before the limiter.
                    if ["408", "413", "429"].contains(&status.as_str()) {
                        assert_eq!(response["headers"][name]["required"], false);
                    } else {
                        header_component(&document, response, name);
                    }
                }
            }
            if status == "401" {
                header_component(&document, response, "WWW-Authenticate");
            }
            if status.starts_with(['4', '5']) && path.starts_with("/api/") {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorResponse",
                    "{method} {path} {status} is not the error envelope"
                );
            }
        }
        if path.starts_with("/api/") {
            for status in ["429", "500", "503"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} lacks {status}"
                );
            }
            let limited = resolve(&document, &responses["429"]);
            header_component(&document, limited, "Retry-After");
        }
        if operation["security"] != json!([]) {
            assert!(responses.contains_key("401"), "{method} {path} lacks 401");
        }
    }
    let read = &document["paths"]["/api/v1/users/{id}"]["get"]["responses"];
    for status in ["200", "304"] {
        let cache = header_component(&document, &read[status], "X-Cache");
        assert_eq!(cache["schema"]["enum"], json!(["HIT", "MISS"]));
        header_component(&document, &read[status], "ETag");
    }
    assert!(read["304"]["content"].is_null(), "a 304 has no body");
    let conflict = &document["paths"]["/api/v1/users/{id}"]["put"]["responses"]["409"];
    assert_eq!(
        conflict["headers"]["Retry-After"]["required"], false,
        "only update_in_progress sends Retry-After"
    );
}

#[tokio::test]
async fn the_error_envelope_lists_the_contract_codes_and_always_has_a_request_id() {
    let document = served_document().await;
    let schemas = &document["components"]["schemas"];
    let codes: Vec<&str> = schemas["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap())
        .collect();
    for code in [
        "validation_failed",
        "invalid_token",
        "unauthorized",
        "invalid_credentials",
        "forbidden",
        "email_not_verified",
        "account_disabled",
        "not_found",
        "method_not_allowed",
        "conflict",
        "update_in_progress",
        "precondition_failed",
        "payload_too_large",
        "rate_limited",
        "unavailable",
        "internal",
    ] {
        assert!(codes.contains(&code), "ErrorCode lacks {code}");
    }
    let body = &schemas["ErrorBody"];
    let required: Vec<&str> = body["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap())
        .collect();
    assert_eq!(required, ["code", "message", "request_id"]);
    assert_eq!(
        body["properties"]["code"]["$ref"],
        "#/components/schemas/ErrorCode"
    );
    assert!(
        !body["properties"]["details"].to_string().contains("null"),
        "details is absent or a list, never null"
    );
    // Always present, possibly null.
    for (schema, field) in [("UserPage", "next_after_id"), ("CacheStats", "hit_ratio")] {
        let required = schemas[schema]["required"].as_array().unwrap();
        assert!(
            required.contains(&json!(field)),
            "{schema}.{field} is required"
        );
        assert!(
            schemas[schema]["properties"][field]
                .to_string()
                .contains("null"),
            "{schema}.{field} is nullable"
        );
    }
    assert_eq!(schemas["User"]["properties"]["email"]["format"], "email");
    assert_eq!(
        schemas["TokenResponse"]["properties"]["token_type"]["$ref"],
        "#/components/schemas/TokenType"
    );
}
