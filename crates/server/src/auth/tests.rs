use std::sync::Arc;

use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode};
use tower::ServiceExt;

use super::*;

const INGEST: &str = "ingest-token-0123456789";
const READER: &str = "reader-token-0123456789";
const ADMIN: &str = "admin-token-0123456789ab";

fn tokens_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spoor-auth-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tokens");
    std::fs::write(&path, text).unwrap();
    path
}

fn auth(name: &str, text: &str, open_metrics: bool) -> (Arc<Auth>, Registry) {
    let mut registry = Registry::default();
    let options = AuthOptions {
        tokens_file: Some(tokens_file(name, text)),
        open_metrics,
        ..AuthOptions::default()
    };
    let auth = Auth::new(&options, &mut registry).unwrap().unwrap();
    (auth, registry)
}

fn standard() -> String {
    format!(
        "# token name role tenant\n{INGEST} collector-a ingest acme\n{READER} grafana read\n\n{ADMIN} ops admin # all ports\n"
    )
}

/// What a request of `path` with this `authorization` header got.
struct Answer {
    status: StatusCode,
    grpc_status: Option<String>,
    challenge: Option<String>,
    body: String,
}

async fn send(app: &Router, path: &str, authorization: Option<String>, grpc: bool) -> Answer {
    let mut request = Request::get(path);
    if let Some(a) = authorization {
        request = request.header("authorization", a);
    }
    if grpc {
        request = request.header("content-type", "application/grpc");
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (status, grpc_status, challenge) = (
        response.status(),
        header("grpc-status"),
        header("www-authenticate"),
    );
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Answer {
        status,
        grpc_status,
        challenge,
        body: String::from_utf8_lossy(&body).into(),
    }
}

/// Status, grpc-status and the body of `path` asked with bearer `token`.
async fn ask(
    app: &Router,
    path: &str,
    token: Option<&str>,
    grpc: bool,
) -> (StatusCode, Option<String>, String) {
    let a = send(app, path, token.map(|t| format!("Bearer {t}")), grpc).await;
    (a.status, a.grpc_status, a.body)
}

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "healthy" }))
        .route("/metrics", get(|| async { "metrics" }))
        .route(
            "/who",
            get(|identity: axum::Extension<Identity>| async move {
                format!("{} {:?}", identity.name, identity.tenant)
            }),
        )
}

#[tokio::test]
async fn a_port_takes_its_roles_tokens_and_admin_tokens_only() {
    let (auth, _) = auth("roles", &standard(), false);
    let ingest = auth.protect(app(), Role::Ingest);
    assert_eq!(
        ask(&ingest, "/who", Some(INGEST), false).await,
        (StatusCode::OK, None, "collector-a Some(\"acme\")".into())
    );
    assert_eq!(
        ask(&ingest, "/who", Some(ADMIN), false).await.0,
        StatusCode::OK
    );
    let (status, _, body) = ask(&ingest, "/who", Some(READER), false).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!body.contains("grafana"), "{body}");
    let (status, _, body) = ask(&ingest, "/who", None, false).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("authentication required"), "{body}");
    let wrong = ask(&ingest, "/who", Some("not-a-token-0123456789"), false).await;
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
    // a token's prefix, another scheme, or none at all: refused alike
    let prefix = &INGEST[..INGEST.len() - 1];
    assert_eq!(
        ask(&ingest, "/who", Some(prefix), false).await.0,
        StatusCode::UNAUTHORIZED
    );
    let basic = app_request_with(&ingest, &format!("Basic {INGEST}")).await;
    assert_eq!(basic, StatusCode::UNAUTHORIZED);
}

async fn app_request_with(app: &Router, authorization: &str) -> StatusCode {
    send(app, "/who", Some(authorization.to_string()), false)
        .await
        .status
}

#[tokio::test]
async fn grpc_clients_get_grpc_codes() {
    let (auth, _) = auth("grpc", &standard(), false);
    let read = auth.protect(app(), Role::Read);
    let (status, code, _) = ask(&read, "/who", None, true).await;
    assert_eq!((status, code.as_deref()), (StatusCode::OK, Some("16")));
    let (_, code, _) = ask(&read, "/who", Some(INGEST), true).await;
    assert_eq!(code.as_deref(), Some("7"));
    let (_, code, body) = ask(&read, "/who", Some(READER), true).await;
    assert_eq!((code, body.as_str()), (None, "grafana None"));
}

#[tokio::test]
async fn the_admin_port_keeps_health_open_and_metrics_as_configured() {
    let (closed, _) = auth("admin-closed", &standard(), false);
    let admin = closed.protect(app(), Role::Admin);
    assert_eq!(ask(&admin, "/", None, false).await.0, StatusCode::OK);
    assert_eq!(
        ask(&admin, "/metrics", None, false).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        ask(&admin, "/metrics", Some(READER), false).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        ask(&admin, "/metrics", Some(ADMIN), false).await.0,
        StatusCode::OK
    );
    let (open, _) = auth("admin-open", &standard(), true);
    let admin = open.protect(app(), Role::Admin);
    assert_eq!(ask(&admin, "/metrics", None, false).await.0, StatusCode::OK);
    assert_eq!(
        ask(&admin, "/who", None, false).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn refusals_are_counted_by_role_and_reason() {
    let (auth, registry) = auth("metrics", &standard(), false);
    let query = auth.protect(app(), Role::Read);
    ask(&query, "/who", None, false).await;
    ask(&query, "/who", Some(INGEST), false).await;
    ask(&query, "/who", Some(INGEST), false).await;
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("spoor_auth_refused_total{role=\"Read\",reason=\"unauthenticated\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("spoor_auth_refused_total{role=\"Read\",reason=\"forbidden\"} 2"),
        "{text}"
    );
    assert!(!text.contains(INGEST), "a token reached the metrics");
}

fn as_if_time_and_the_file_moved_on(auth: &Auth) {
    let mut looked = auth.tokens.as_ref().unwrap().looked.lock().unwrap();
    looked.0 -= RELOAD_EVERY;
    looked.1 = None;
}

#[tokio::test]
async fn a_changed_tokens_file_is_read_again_and_a_broken_one_ignored() {
    let (auth, _) = auth("reload", &standard(), false);
    let query = auth.protect(app(), Role::Read);
    assert_eq!(
        ask(&query, "/who", Some(READER), false).await.0,
        StatusCode::OK
    );
    // revoke the reader, add another; looked at once per RELOAD_EVERY
    let path = auth.tokens.as_ref().unwrap().path.clone();
    std::fs::write(
        &path,
        format!("{ADMIN} ops admin\nnew-reader-0123456789 dash read\n"),
    )
    .unwrap();
    as_if_time_and_the_file_moved_on(&auth);
    assert_eq!(
        ask(&query, "/who", Some(READER), false).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        ask(&query, "/who", Some("new-reader-0123456789"), false)
            .await
            .2,
        "dash None"
    );
    // a file that does not parse leaves the tokens in force
    std::fs::write(&path, "half written").unwrap();
    as_if_time_and_the_file_moved_on(&auth);
    assert_eq!(
        ask(&query, "/who", Some("new-reader-0123456789"), false)
            .await
            .0,
        StatusCode::OK
    );
}

#[test]
fn bad_lines_are_errors_naming_the_line_and_never_the_token() {
    let bad = [
        ("short-token reader read\n", "at least 16"),
        (
            &format!("{READER} grafana reader\n") as &str,
            "role must be",
        ),
        (&format!("{READER}\n") as &str, "expected"),
        (
            &format!("{READER} a read\n{READER} b read\n") as &str,
            "twice",
        ),
    ];
    for (text, want) in bad {
        let e = parse(Path::new("tokens"), text).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
        assert!(e.contains("tokens line"), "{e}");
        assert!(!e.contains(READER), "{e}");
    }
    let missing = AuthOptions {
        tokens_file: Some("/nonexistent/tokens".into()),
        ..AuthOptions::default()
    };
    let e = Auth::new(&missing, &mut Registry::default()).err().unwrap();
    assert!(e.to_string().contains("/nonexistent/tokens"), "{e}");
    assert!(
        Auth::new(&AuthOptions::default(), &mut Registry::default())
            .unwrap()
            .is_none()
    );
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

#[tokio::test]
async fn htpasswd_users_sign_in_with_basic_auth_and_their_role() {
    // cost 4: the lowest bcrypt allows, for a quick test
    let hash = |p: &str| bcrypt::hash(p, 4).unwrap();
    let text = format!(
        "# htpasswd -B, with roles\nalice:{}\nbob:{}:admin:acme\ncarol:{}:ingest\n",
        hash("wonderland"),
        hash("builder"),
        hash("singer")
    );
    let mut registry = Registry::default();
    let options = AuthOptions {
        htpasswd_file: Some(tokens_file("htpasswd", &text)),
        ..AuthOptions::default()
    };
    let auth = Auth::new(&options, &mut registry).unwrap().unwrap();
    let query = auth.protect(app(), Role::Read);
    let ask = |authorization: String| {
        let query = query.clone();
        async move {
            let a = send(&query, "/who", Some(authorization), false).await;
            (a.status, a.challenge, a.body)
        }
    };
    assert_eq!(
        ask(basic("alice", "wonderland")).await,
        (StatusCode::OK, None, "alice None".into())
    );
    // remembered: the same answer again without a second bcrypt check
    assert_eq!(auth.verified.remembered(), 1);
    assert_eq!(ask(basic("alice", "wonderland")).await.0, StatusCode::OK);
    assert_eq!(auth.verified.remembered(), 1);
    assert_eq!(ask(basic("bob", "builder")).await.2, "bob Some(\"acme\")");
    let (status, challenge, _) = ask(basic("alice", "wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Basic realm=\"spoor\""));
    assert_eq!(
        ask(basic("mallory", "wonderland")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(ask(basic("carol", "singer")).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        ask("Basic !!not-base64".into()).await.0,
        StatusCode::UNAUTHORIZED
    );
    // no tokens file: a bearer token is no way in
    assert_eq!(
        ask(format!("Bearer {READER}")).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn htpasswd_lines_that_are_not_bcrypt_or_name_no_role_are_errors() {
    let bad = [
        ("alice:$apr1$abc$def\n", "not a bcrypt hash"),
        ("alice:{SHA}abcdef\n", "not a bcrypt hash"),
        ("alice\n", "expected"),
        ("alice:$2y$04$abcdefghijklmnopqrstuu:boss\n", "role must be"),
        ("a:$2y$04$x\na:$2y$04$y\n", "twice"),
    ];
    for (text, want) in bad {
        let e = htpasswd::parse(Path::new("users"), text)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(want), "{e}");
        assert!(e.contains("users line"), "{e}");
    }
}
