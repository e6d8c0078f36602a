//! The web UI: hand-written ES modules and CSS from `crates/query/ui/`,
//! embedded in the binary at build time (docs/decisions/web-ui.md). Assets
//! are gzip-compressed once at startup and served with ETags; any other
//! path outside `/api` gets the app's page, so deep links work after a
//! reload. The base path (`QUERY_BASE_PATH`) is written into the page's
//! `<base href>`, and every asset and API URL in the app is relative to it.
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));
}

/// What the page's `<base href>` is before the base path is written in.
const BASE_AS_WRITTEN: &str = r#"<base href="/">"#;

struct Asset {
    body: Vec<u8>,
    gzip: Option<Vec<u8>>,
    content_type: &'static str,
    etag: String,
}

impl Asset {
    fn new(name: &str, body: Vec<u8>) -> Asset {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&body).expect("gzip into memory");
        let gzip = encoder.finish().expect("gzip into memory");
        Asset {
            etag: format!("\"{:016x}\"", spoor_model::hex::fnv1a(&body)),
            gzip: (gzip.len() < body.len()).then_some(gzip),
            content_type: content_type(name),
            body,
        }
    }
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

pub struct Ui {
    assets: HashMap<&'static str, Asset>,
    page: Asset,
}

impl Ui {
    pub fn new(base_path: &str) -> Ui {
        let mut assets: HashMap<&'static str, Asset> = embedded::ASSETS
            .iter()
            .map(|(name, bytes)| (*name, Asset::new(name, bytes.to_vec())))
            .collect();
        let template = assets
            .remove("index.html")
            .expect("ui/index.html is embedded");
        let base = format!(r#"<base href="{}/">"#, base_path.trim_end_matches('/'));
        let html = String::from_utf8(template.body)
            .expect("index.html is utf-8")
            .replacen(BASE_AS_WRITTEN, &base, 1);
        Ui {
            assets,
            page: Asset::new("index.html", html.into_bytes()),
        }
    }

    /// The asset at `path`, or the app's page for the app's own routes.
    pub fn response(&self, path: &str, request: &HeaderMap) -> Response {
        let name = path.trim_start_matches('/');
        if name == "index.html" {
            return send(&self.page, request, "no-cache");
        }
        if let Some(asset) = self.assets.get(name) {
            return send(asset, request, "public, max-age=300");
        }
        let last = name.rsplit('/').next().unwrap_or_default();
        if last.contains('.') {
            // a missing file, not an app route
            return (StatusCode::NOT_FOUND, "no such file").into_response();
        }
        send(&self.page, request, "no-cache")
    }
}

fn send(asset: &Asset, request: &HeaderMap, cache: &'static str) -> Response {
    let revalidated = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == asset.etag));
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&asset.etag).expect("hex etag"),
    );
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if revalidated {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    let gzip_ok = request
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let body = match (&asset.gzip, gzip_ok) {
        (Some(gzip), true) => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            gzip.clone()
        }
        _ => asset.body.clone(),
    };
    (StatusCode::OK, headers, Body::from(body)).into_response()
}

/// What the page may load and who may frame it: only its own scripts,
/// styles and API (no inline script, no other origin), never in a frame;
/// on every answer of the query port, API included.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; \
     form-action 'self'; frame-ancestors 'none'";

pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// The fallback of the HTTP API router: unknown `/api` paths (and the
/// `/analytics/` API the Jaeger UI's deep dependency graph asks for, which
/// Spoor does not serve) are JSON errors, everything else belongs to the UI.
pub async fn serve(ui: Arc<Ui>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    let api = |root: &str| {
        path.strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if api("/api") || api("/analytics") {
        return crate::http::not_found().await.into_response();
    }
    ui.response(path, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_map(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    async fn body(r: Response) -> Vec<u8> {
        axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec()
    }

    #[tokio::test]
    async fn the_page_carries_the_base_path_and_deep_links_get_it() {
        let ui = Ui::new("/jaeger");
        for path in [
            "/",
            "/index.html",
            "/search",
            "/trace/abc123",
            "/dependencies",
        ] {
            let r = ui.response(path, &HeaderMap::new());
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
            let html = String::from_utf8(body(r).await).unwrap();
            assert!(html.contains(r#"<base href="/jaeger/">"#), "{path}");
        }
        let root = Ui::new("");
        let html = String::from_utf8(body(root.response("/", &HeaderMap::new())).await).unwrap();
        assert!(html.contains(r#"<base href="/">"#));
    }

    #[tokio::test]
    async fn every_answer_forbids_framing_sniffing_and_foreign_scripts() {
        let page = security_headers(Ui::new("").response("/", &HeaderMap::new())).await;
        let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(page.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(page.headers()[header::X_FRAME_OPTIONS], "DENY");
        // the page itself has no inline script the policy would block
        let html = String::from_utf8(body(page).await).unwrap();
        assert!(!html.contains("<script>"), "inline script in index.html");
    }

    #[tokio::test]
    async fn assets_are_compressed_cached_and_revalidated() {
        let ui = Ui::new("");
        let gz = ui.response(
            "/app.js",
            &header_map(&[(header::ACCEPT_ENCODING, "gzip, br")]),
        );
        assert_eq!(gz.status(), StatusCode::OK);
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        assert!(
            gz.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/javascript")
        );
        let etag = gz.headers()[header::ETAG].to_str().unwrap().to_string();
        let plain = ui.response("/app.js", &HeaderMap::new());
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let js = String::from_utf8(body(plain).await).unwrap();
        assert!(js.contains("import"), "an ES module");
        let again = ui.response("/app.js", &header_map(&[(header::IF_NONE_MATCH, &etag)]));
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }

    #[tokio::test]
    async fn missing_files_are_404_and_api_paths_stay_json() {
        let ui = Arc::new(Ui::new(""));
        assert_eq!(
            ui.response("/nope.js", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
        let api = serve(
            Arc::clone(&ui),
            "/api/nope".parse().unwrap(),
            HeaderMap::new(),
        )
        .await;
        assert_eq!(api.status(), StatusCode::NOT_FOUND);
        let text = String::from_utf8(body(api).await).unwrap();
        assert!(text.contains("\"errors\""), "{text}");
        let analytics = serve(
            Arc::clone(&ui),
            "/analytics/v1/dependencies".parse().unwrap(),
            HeaderMap::new(),
        )
        .await;
        assert_eq!(analytics.status(), StatusCode::NOT_FOUND);
        assert!(
            String::from_utf8(body(analytics).await)
                .unwrap()
                .contains("\"errors\"")
        );
    }
}
