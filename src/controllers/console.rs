//! The admin console at `/admin`: one page and its stylesheet and script,
//! compiled into the binary (no network, no CDN). Asset names carry a
//! digest of their bytes, so browsers may keep them for a year; the page
//! itself is revalidated on every visit, so a new version is seen at once.
//! Everything it does goes through the public API with the admin's token.

use std::sync::LazyLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};

use crate::error::AppError;
use crate::services::cache::digest_of;

/// Only this origin's own files; no inline script or style at all, no
/// framing (clickjacking a page with a "Delete" button).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

struct Asset {
    name: String,
    content_type: &'static str,
    body: &'static str,
}

impl Asset {
    fn new(stem: &str, extension: &str, content_type: &'static str, body: &'static str) -> Self {
        let digest = digest_of(body.as_bytes());
        Self {
            name: format!("{stem}.{}.{extension}", &digest[..16]),
            content_type,
            body,
        }
    }
}

struct Console {
    page: String,
    page_etag: String,
    assets: [Asset; 2],
}

/// Built once, on the first visit: the page names the assets by digest.
static CONSOLE: LazyLock<Console> = LazyLock::new(|| {
    let assets = [
        Asset::new(
            "console",
            "css",
            "text/css; charset=utf-8",
            include_str!("../../assets/admin/console.css"),
        ),
        Asset::new(
            "console",
            "js",
            "text/javascript; charset=utf-8",
            include_str!("../../assets/admin/console.js"),
        ),
    ];
    let page = include_str!("../../assets/admin/index.html")
        .replace("{{console.css}}", &assets[0].name)
        .replace("{{console.js}}", &assets[1].name);
    Console {
        page_etag: format!("\"{}\"", digest_of(page.as_bytes())),
        page,
        assets,
    }
});

/// The console's own policy, stricter than the one the security-header
/// middleware gives other pages; that middleware adds `nosniff` and
/// `Referrer-Policy` to every answer.
fn secured(mut response: HttpResponseBuilder) -> HttpResponseBuilder {
    response
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")));
    response
}

/// `GET /admin`: the page; `no-cache` with an ETag, so a visit costs a 304
/// until the binary changes.
pub async fn page(request: HttpRequest) -> HttpResponse {
    let console = &*CONSOLE;
    let current = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == console.page_etag));
    let mut response = secured(if current {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    });
    response
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .insert_header((header::ETAG, console.page_etag.as_str()));
    if current {
        return response.finish();
    }
    response
        .content_type("text/html; charset=utf-8")
        .body(console.page.as_str())
}

/// `GET /admin/assets/{name}`: a stylesheet or script by its hashed name;
/// any other name is a 404 in the error envelope.
pub async fn asset(name: web::Path<String>) -> Result<HttpResponse, AppError> {
    let asset = CONSOLE
        .assets
        .iter()
        .find(|asset| asset.name == *name)
        .ok_or(AppError::NotFound("asset"))?;
    Ok(secured(HttpResponse::Ok())
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE)))
        .content_type(asset.content_type)
        .body(asset.body))
}
