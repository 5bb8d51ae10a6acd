//! The admin console page over plain HTTP: what it is made of and the
//! headers it is served with. (What it does in a browser: `browser.rs`.)

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::{Backend, TestApp, error_code, spawn_app};

async fn fetch(app: &TestApp, path: &str) -> reqwest::Response {
    app.request(Method::GET, path, None, None).await
}

/// The `/admin/assets/...` paths the page refers to.
fn asset_paths(page: &str) -> Vec<String> {
    page.split(['"', '\''])
        .filter(|part| part.starts_with("/admin/assets/"))
        .map(str::to_string)
        .collect()
}

fn assert_strict_policy(headers: &HeaderMap) {
    let policy = headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert!(!policy.contains("unsafe"), "{policy}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn the_console_page_has_a_strict_policy_and_is_revalidated_on_every_visit() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = fetch(&app, "/admin").await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_strict_policy(&headers);
    assert_eq!(headers["cache-control"], "no-cache");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    assert!(!page.contains("<style"), "no inline style element");
    assert!(!page.contains(" style="), "no style attributes");
    let handlers = page.split(" on").skip(1).filter(|rest| {
        let name_end = rest.find(|c: char| !c.is_ascii_lowercase()).unwrap_or(0);
        name_end > 0 && rest[name_end..].starts_with('=')
    });
    assert_eq!(handlers.count(), 0, "no inline event handlers");
    for script in page.split("<script").skip(1) {
        let (tag, rest) = script.split_once('>').unwrap();
        assert!(
            tag.contains(" src="),
            "every script is a file: <script{tag}>"
        );
        assert!(rest.starts_with("</script>"), "and has no inline body");
    }
    let etag = headers["etag"].to_str().unwrap();
    let again = app
        .client
        .get(app.url("/admin"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_strict_policy(again.headers());
}

#[tokio::test]
async fn console_assets_are_named_by_their_digest_cached_for_a_year_and_small() {
    let app = spawn_app(Backend::Sqlite).await;
    let page = fetch(&app, "/admin").await.text().await.unwrap();
    let paths = asset_paths(&page);
    assert_eq!(paths.len(), 2, "a stylesheet and a script: {paths:?}");
    let mut total = page.len();
    for path in paths {
        let response = fetch(&app, &path).await;
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_strict_policy(&headers);
        assert_eq!(
            headers["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let expected_type = if path.ends_with(".css") {
            "text/css"
        } else {
            "text/javascript"
        };
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with(expected_type)
        );
        let body = response.bytes().await.unwrap();
        let digest: String = Sha256::digest(&body)[..8]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert!(path.contains(&digest), "{path} names its content {digest}");
        // Everything comes from this origin: no CDN, no remote fonts.
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            !text.contains("https://"),
            "{path} refers to another origin"
        );
        assert!(
            text.replace("http://www.w3.org/2000/svg", "")
                .find("http://")
                .is_none(),
            "{path} refers to another origin"
        );
        total += body.len();
    }
    assert!(total < 1024 * 1024, "the console weighs {total} bytes");
}

#[tokio::test]
async fn unknown_paths_under_admin_answer_the_json_404_envelope() {
    let app = spawn_app(Backend::Sqlite).await;
    for path in [
        "/admin/assets/console.0000000000000000.js",
        "/admin/assets/",
        "/admin/nothing-here",
        "/admin/assets/../../etc/passwd",
    ] {
        let (status, error) = error_code(fetch(&app, path).await).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
    let response = app.request(Method::POST, "/admin", None, None).await;
    let (status, error) = error_code(response).await;
    assert_eq!(
        (status, error["code"].clone()),
        (405, Value::from("method_not_allowed"))
    );
}
