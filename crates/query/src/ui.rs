//! The web UI: hand-written ES modules and CSS from `crates/query/ui/`,
//! embedded in the binary at build time (docs/decisions/web-ui.md), or with
//! `--query.static-files` a build of the Jaeger UI from a directory. Assets
//! are gzip-compressed once at startup and served with ETags; any other
//! path outside `/api` gets the app's page, so deep links work after a
//! reload. The base path (`QUERY_BASE_PATH`) is written into the page's
//! `<base href>`, and every asset and API URL in the app is relative to it.
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use sha2::{Digest, Sha256};

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
    assets: HashMap<String, Asset>,
    page: Asset,
    /// The Content-Security-Policy of every answer of the query port.
    csp: HeaderValue,
}

/// What the Jaeger UI's page is told at start, by the search and replace
/// Jaeger's query service does on its `index.html`.
pub struct JaegerPage<'a> {
    pub config: &'a serde_json::Value,
    pub archive: bool,
    pub metrics: bool,
}

/// Most files and bytes a `--query.static-files` directory may hold: a
/// Jaeger UI build is about 200 files and 20 MB.
const MAX_FILES: usize = 10_000;
const MAX_BYTES: u64 = 256 << 20;

/// A `--query.static-files` directory that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum StaticFilesError {
    #[error("reading {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} has no index.html: not a UI build")]
    NoIndex(String),
    #[error("{0} holds more than {MAX_FILES} files or {MAX_BYTES} bytes: not a UI build")]
    TooLarge(String),
}

impl Ui {
    pub fn new(base_path: &str) -> Ui {
        let mut assets: HashMap<String, Asset> = embedded::ASSETS
            .iter()
            .map(|(name, bytes)| (name.to_string(), Asset::new(name, bytes.to_vec())))
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
            csp: HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        }
    }

    /// A build of the Jaeger UI from `dir` (its `index.html` and assets, read
    /// once), its page told the UI settings, the storage capabilities and
    /// the version as Jaeger's query tells it. Its inline scripts are allowed
    /// by their hashes, no others; its styles may be inline (the UI's
    /// component library writes them).
    pub fn from_dir(
        dir: &Path,
        base_path: &str,
        page: &JaegerPage,
    ) -> Result<Ui, StaticFilesError> {
        let mut files = Vec::new();
        let mut total = 0;
        read_tree(dir, "", &mut files, &mut total)
            .map_err(|(path, source)| StaticFilesError::Read { path, source })?;
        if files.len() > MAX_FILES || total > MAX_BYTES {
            return Err(StaticFilesError::TooLarge(dir.display().to_string()));
        }
        let mut assets: HashMap<String, Asset> = files
            .into_iter()
            .map(|(name, bytes)| {
                let asset = Asset::new(&name, bytes);
                (name, asset)
            })
            .collect();
        let index = assets
            .remove("index.html")
            .ok_or_else(|| StaticFilesError::NoIndex(dir.display().to_string()))?;
        let html = jaeger_page(&String::from_utf8_lossy(&index.body), base_path, page);
        let hashes: Vec<String> = inline_scripts(&html)
            .map(|script| {
                let digest = Sha256::digest(script.as_bytes());
                let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
                format!("'sha256-{b64}'")
            })
            .collect();
        let csp = format!(
            "default-src 'self'; script-src 'self' {}; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; \
             base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
            hashes.join(" ")
        );
        Ok(Ui {
            assets,
            page: Asset::new("index.html", html.into_bytes()),
            csp: HeaderValue::from_str(&csp).expect("hashes are base64"),
        })
    }

    /// The Content-Security-Policy this UI is served with.
    pub fn csp(&self) -> HeaderValue {
        self.csp.clone()
    }

    /// The asset at `path`, or the app's page for the app's own routes.
    pub fn response(&self, path: &str, request: &HeaderMap) -> Response {
        let name = path.trim_start_matches('/');
        if name == "index.html" || name.is_empty() {
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

pub async fn security_headers(csp: HeaderValue, mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
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

/// Every file under `dir`, named by its path with `/`; symbolic links are
/// not followed out of it.
fn read_tree(
    dir: &Path,
    prefix: &str,
    out: &mut Vec<(String, Vec<u8>)>,
    total: &mut u64,
) -> Result<(), (String, std::io::Error)> {
    let failed = |e| (dir.display().to_string(), e);
    for entry in std::fs::read_dir(dir).map_err(failed)? {
        let entry = entry.map_err(failed)?;
        let kind = entry.file_type().map_err(failed)?;
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if kind.is_dir() {
            read_tree(&entry.path(), &format!("{name}/"), out, total)?;
        } else if kind.is_file() {
            let bytes =
                std::fs::read(entry.path()).map_err(|e| (entry.path().display().to_string(), e))?;
            *total += bytes.len() as u64;
            out.push((name, bytes));
        }
        if out.len() > MAX_FILES || *total > MAX_BYTES {
            return Ok(());
        }
    }
    Ok(())
}

/// Jaeger's search and replace on the UI's page: the settings, the storage
/// capabilities and the version, and the base path into `<base href="/"`.
/// JSON put into a script cannot close it (`</` is written `<\/`).
fn jaeger_page(html: &str, base_path: &str, page: &JaegerPage) -> String {
    let script_json = |v: &serde_json::Value| v.to_string().replace("</", "<\\/");
    let capabilities =
        serde_json::json!({"archiveStorage": page.archive, "metricsStorage": page.metrics});
    let version = serde_json::json!({"gitCommit": "", "gitVersion": env!("CARGO_PKG_VERSION"), "buildDate": ""});
    let mut html = html.replacen(
        "const JAEGER_STORAGE_CAPABILITIES = DEFAULT_STORAGE_CAPABILITIES;",
        &format!(
            "const JAEGER_STORAGE_CAPABILITIES = {};",
            script_json(&capabilities)
        ),
        1,
    );
    html = html.replacen(
        "const JAEGER_VERSION = DEFAULT_VERSION;",
        &format!("const JAEGER_VERSION = {};", script_json(&version)),
        1,
    );
    if page.config.as_object().is_some_and(|c| !c.is_empty()) {
        html = html.replacen(
            "const JAEGER_CONFIG = DEFAULT_CONFIG;",
            &format!("const JAEGER_CONFIG = {};", script_json(page.config)),
            1,
        );
    }
    let base = base_path.trim_end_matches('/');
    if !base.is_empty() {
        html = html.replacen(r#"<base href="/""#, &format!(r#"<base href="{base}/""#), 1);
    }
    html
}

/// The bodies of the page's inline `<script>` elements (those without `src`).
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    html.split("<script").skip(1).filter_map(|rest| {
        let (attributes, body) = rest.split_once('>')?;
        if attributes.contains("src=") {
            return None;
        }
        body.split_once("</script>").map(|(script, _)| script)
    })
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
        let ui = Ui::new("");
        let page = security_headers(ui.csp(), ui.response("/", &HeaderMap::new())).await;
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

    /// A page with the placeholders a Jaeger UI build carries (written
    /// here, in their exact form: the UI's index.html says not to alter them).
    const JAEGER_INDEX: &str = r#"<!doctype html><html><head>
<base href="/" data-inject-target="BASE_URL" />
<script>
  function getJaegerUiConfig() {
    const DEFAULT_CONFIG = null;
    const JAEGER_CONFIG = DEFAULT_CONFIG;
    return JAEGER_CONFIG;
  }
  function getJaegerStorageCapabilities() {
    const DEFAULT_STORAGE_CAPABILITIES = { archiveStorage: false, metricsStorage: false };
    const JAEGER_STORAGE_CAPABILITIES = DEFAULT_STORAGE_CAPABILITIES;
    return JAEGER_STORAGE_CAPABILITIES;
  }
  function getJaegerVersion() {
    const DEFAULT_VERSION = { gitCommit: '', gitVersion: '', buildDate: '' };
    const JAEGER_VERSION = DEFAULT_VERSION;
    return JAEGER_VERSION;
  }
</script>
<script type="module" crossorigin src="./static/index-1.js"></script>
</head><body><div id="jaeger-ui-root"></div></body></html>"#;

    #[tokio::test]
    async fn a_jaeger_ui_build_is_served_told_what_jaegers_query_tells_it() {
        let dir = std::env::temp_dir().join(format!("spoor-static-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("static")).unwrap();
        std::fs::write(dir.join("index.html"), JAEGER_INDEX).unwrap();
        std::fs::write(dir.join("static/index-1.js"), "console.log(1)").unwrap();
        let config = serde_json::json!({"menu": [{"label": "</script><b>", "url": "x"}]});
        let page = JaegerPage {
            config: &config,
            archive: true,
            metrics: false,
        };
        let ui = Ui::from_dir(&dir, "/jaeger", &page).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        let html =
            String::from_utf8(body(ui.response("/search", &HeaderMap::new())).await).unwrap();
        assert!(
            html.contains(r#"<base href="/jaeger/" data-inject-target"#),
            "{html}"
        );
        assert!(html.contains(
            r#"const JAEGER_STORAGE_CAPABILITIES = {"archiveStorage":true,"metricsStorage":false};"#
        ));
        assert!(
            html.contains(r#"const JAEGER_CONFIG = {"menu":[{"label":"<\/script><b>""#),
            "{html}"
        );
        assert!(html.contains(&format!(r#""gitVersion":"{}""#, env!("CARGO_PKG_VERSION"))));
        let js = ui.response("/static/index-1.js", &HeaderMap::new());
        assert_eq!(js.status(), StatusCode::OK);
        assert_eq!(body(js).await, b"console.log(1)");

        // the one inline script is allowed by its hash, and nothing else is
        let csp = ui.csp().to_str().unwrap().to_string();
        let script = inline_scripts(&html).next().unwrap();
        let hash =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes()));
        assert!(
            csp.contains(&format!("script-src 'self' 'sha256-{hash}';")),
            "{csp}"
        );
        assert!(csp.contains("style-src 'self' 'unsafe-inline'"), "{csp}");
        assert!(!csp.contains("script-src 'self' 'unsafe-inline'"));
        assert_eq!(inline_scripts(&html).count(), 1);
    }

    #[test]
    fn a_directory_without_a_page_is_refused() {
        let dir = std::env::temp_dir().join(format!("spoor-static-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = serde_json::json!({});
        let page = JaegerPage {
            config: &config,
            archive: false,
            metrics: false,
        };
        let e = Ui::from_dir(&dir, "/", &page).err().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(e.to_string().contains("no index.html"), "{e}");
        assert!(Ui::from_dir(Path::new("/nonexistent/spoor"), "/", &page).is_err());
    }
}
