//! The web UI: the files `build.rs` built from `dashboards/ui` (Vite), embedded in the binary.
//!
//! [`ui_router`] serves them: `/` and the client routes of the single-page app
//! ([`CLIENT_ROUTES`], with anything below them: `/alerts/{id}`, `/incidents/{id}`) answer
//! `index.html`; files under `/assets/` carry a content hash in their name and are cached for a
//! year; everything else is `no-cache`. The router has neither a root catch-all route nor a
//! fallback, so it merges with the API router (whose fallback keeps answering unknown paths
//! with JSON 404s) and with routes like the collector's `/{index}/_bulk`. Every response
//! forbids sniffing and framing and sets the strict content security policy the UI is built
//! for (no inline script or style).

use axum::Router;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

mod assets {
    include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));
}

/// Top-level paths of the single-page app's screens (see `ui/src/main.jsx`).
pub const CLIENT_ROUTES: &[&str] =
    &["login", "alerts", "incidents", "search", "stats", "sensors", "forwarding", "audit", "users"];

/// The content security policy of UI responses.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'; object-src 'none'";

const NOT_BUILT_PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Canh Gac: web UI not built</title></head><body>\
<h1>The web UI was not built into this binary</h1>\
<p>It was compiled with <code>SOC_SKIP_UI=1</code>. Install Node.js 20 and npm, then build again \
without that variable. The HTTP API under <code>/api/</code> works.</p>\
<p lang=\"vi\">Giao diện web chưa được biên dịch vào chương trình này (SOC_SKIP_UI=1). \
Hãy cài Node.js 20 và npm rồi biên dịch lại. API HTTP tại <code>/api/</code> vẫn hoạt động.</p>\
</body></html>\n";

/// Whether this binary carries the built UI (false when compiled with `SOC_SKIP_UI=1`).
pub fn ui_built() -> bool {
    assets::UI_BUILT
}

/// The embedded file at `path` (relative to the site root, no leading slash).
pub fn asset(path: &str) -> Option<&'static [u8]> {
    let i = assets::ASSETS.binary_search_by(|(p, _)| (*p).cmp(path)).ok()?;
    assets::ASSETS.get(i).map(|(_, b)| *b)
}

/// Paths of all embedded files.
pub fn asset_paths() -> impl Iterator<Item = &'static str> {
    assets::ASSETS.iter().map(|(p, _)| *p)
}

/// Content type by file extension.
pub fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "txt" => "text/plain; charset=utf-8",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

fn respond(status: StatusCode, ctype: &'static str, cache: &'static str, body: Vec<u8>) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    r
}

fn index() -> Response {
    match asset("index.html") {
        Some(b) => respond(StatusCode::OK, "text/html; charset=utf-8", "no-cache", b.to_vec()),
        None => respond(StatusCode::OK, "text/html; charset=utf-8", "no-cache", NOT_BUILT_PAGE.as_bytes().to_vec()),
    }
}

/// Answers one path (without its leading slash).
pub fn serve(path: &str) -> Response {
    let path = path.trim_start_matches('/');
    if path.is_empty() || path == "index.html" {
        return index();
    }
    if let Some(b) = asset(path) {
        let cache = if path.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
        return respond(StatusCode::OK, content_type(path), cache, b.to_vec());
    }
    let top = path.split('/').next().unwrap_or(path);
    if CLIENT_ROUTES.contains(&top) {
        return index();
    }
    metrics::counter!("soc_ui_not_found_total").increment(1);
    respond(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "no-cache", b"not found\n".to_vec())
}

async fn page() -> Response {
    index()
}

async fn file(uri: Uri) -> Response {
    serve(uri.path())
}

/// Routes of the web UI: `/`, the client routes and everything below them, `/assets/...` and
/// the other built files at the root. GET and HEAD only (axum answers 405 to other methods).
pub fn ui_router() -> Router {
    let mut r = Router::new().route("/", get(page)).route("/assets/{*file}", get(file));
    for name in CLIENT_ROUTES {
        r = r.route(&format!("/{name}"), get(page)).route(&format!("/{name}/{{*rest}}"), get(page));
    }
    for p in asset_paths().filter(|p| !p.starts_with("assets/")) {
        r = r.route(&format!("/{p}"), get(file));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get_path(app: Router, path: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let resp = app.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, headers, body)
    }

    #[tokio::test]
    async fn root_and_client_routes_answer_the_page_with_csp_and_no_cache() {
        for p in ["/", "/alerts", "/incidents/inc-123", "/search", "/login", "/users"] {
            let (status, h, body) = get_path(ui_router(), p).await;
            assert_eq!(status, StatusCode::OK, "{p}");
            assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8", "{p}");
            assert_eq!(h[header::CACHE_CONTROL], "no-cache", "{p}");
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY, "{p}");
            let text = String::from_utf8_lossy(&body);
            assert!(text.contains("<html"), "{p}");
            if ui_built() {
                assert!(text.contains("<div id=\"app\">"), "{p}: built page expected");
            } else {
                assert!(text.contains("SOC_SKIP_UI"), "{p}: the not-built page expected");
            }
        }
    }

    #[tokio::test]
    async fn built_page_has_no_inline_script_and_references_embedded_assets() {
        if !ui_built() {
            eprintln!("SKIPPED built_page_has_no_inline_script_and_references_embedded_assets: built with SOC_SKIP_UI");
            return;
        }
        let html = String::from_utf8_lossy(asset("index.html").unwrap()).into_owned();
        let mut scripts = 0;
        for chunk in html.split("<script").skip(1) {
            let tag_end = chunk.find('>').unwrap();
            assert!(chunk[..tag_end].contains("src="), "inline script in index.html: {chunk}");
            scripts += 1;
        }
        assert!(scripts >= 1);
        assert!(!html.contains(" style="), "inline style attribute in index.html");
        // Every /assets/ reference resolves to an embedded file.
        for part in html.split("\"/assets/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(asset(&format!("assets/{name}")).is_some(), "missing asset {name}");
        }
    }

    #[tokio::test]
    async fn hashed_assets_are_immutable_with_their_content_type() {
        if !ui_built() {
            eprintln!("SKIPPED hashed_assets_are_immutable_with_their_content_type: built with SOC_SKIP_UI");
            return;
        }
        let js = asset_paths().find(|p| p.starts_with("assets/") && p.ends_with(".js")).expect("a built script");
        let (status, h, body) = get_path(ui_router(), &format!("/{js}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(h[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert_eq!(h[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(body, asset(js).unwrap());
        let css = asset_paths().find(|p| p.ends_with(".css")).expect("a built stylesheet");
        let (_, h, _) = get_path(ui_router(), &format!("/{css}")).await;
        assert_eq!(h[header::CONTENT_TYPE], "text/css; charset=utf-8");
    }

    #[tokio::test]
    async fn missing_files_and_other_paths_are_404_not_the_page() {
        let (status, h, _) = get_path(ui_router(), "/assets/nope-1234.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(h[header::CONTENT_TYPE], "text/plain; charset=utf-8");
        for p in ["/favicon.ico", "/api/nothing-here", "/alertsx", "/nothing"] {
            let (status, _, body) = get_path(ui_router(), p).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{p}");
            assert!(!String::from_utf8_lossy(&body).contains("<html"), "{p}");
        }
        let post = Request::post("/alerts").body(Body::empty()).unwrap();
        let resp = ui_router().oneshot(post).await.unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn merged_with_an_api_router_the_api_routes_and_fallback_win() {
        async fn api() -> &'static str {
            "api"
        }
        async fn fallback() -> (StatusCode, &'static str) {
            (StatusCode::NOT_FOUND, "api fallback")
        }
        // Like the binary: the API (with its fallback) and the collector's `/{index}/_bulk`.
        let app = || {
            Router::new()
                .route("/api/events", get(api))
                .route("/{index}/_bulk", axum::routing::post(api))
                .fallback(fallback)
                .merge(ui_router())
        };
        let (status, _, body) = get_path(app(), "/api/events").await;
        assert_eq!((status, body.as_slice()), (StatusCode::OK, b"api".as_slice()));
        let (status, _, body) = get_path(app(), "/api/nothing-here").await;
        assert_eq!((status, body.as_slice()), (StatusCode::NOT_FOUND, b"api fallback".as_slice()));
        for p in ["/", "/alerts", "/alerts/a1b2", "/incidents/inc-1/x"] {
            let (status, h, _) = get_path(app(), p).await;
            assert_eq!(status, StatusCode::OK, "{p}");
            assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8", "{p}");
        }
        let bulk = Request::post("/logs/_bulk").body(Body::empty()).unwrap();
        assert_eq!(app().oneshot(bulk).await.unwrap().status(), StatusCode::OK);
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("assets/x.JS"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("a.svg"), "image/svg+xml");
        assert_eq!(content_type("a.woff2"), "font/woff2");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
