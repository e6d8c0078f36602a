//! Authentication shared by every HTTP and gRPC port: bearer tokens from a
//! file, each with a name, a role and optionally a tenant. A port serves one
//! role (collector ports ingest, query ports read, the admin port admin);
//! an admin token may use every port. The file is re-read when it changes,
//! so a token is added or revoked without a restart.
//!
//! A request without a known token is answered 401 (gRPC UNAUTHENTICATED),
//! a known token on a port of another role 403 (PERMISSION_DENIED), both
//! with a fixed message that says nothing of which tokens exist. Each
//! refusal is counted and written to the `audit` log target with the
//! client's address; tokens are compared by their SHA-256 digest and never
//! logged.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clap::Args;
use http::{HeaderValue, StatusCode, header};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};

/// How often the tokens file is looked at for a change.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

#[derive(Args, Clone, Debug, Default)]
pub struct AuthOptions {
    /// File of bearer tokens, one a line: `<token> <name> <role> [tenant]`,
    /// role ingest, read or admin (`#` starts a comment). When set, every
    /// port but the admin port's health check asks for a token.
    #[arg(long = "auth.tokens-file", env = "AUTH_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,

    /// Serve the admin port's /metrics without a token.
    #[arg(
        long = "auth.open-metrics",
        env = "AUTH_OPEN_METRICS",
        default_value_t = false
    )]
    pub open_metrics: bool,
}

/// What a port serves, and so which tokens it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EncodeLabelValue)]
pub enum Role {
    /// writes spans (the collector's ports)
    Ingest,
    /// reads traces (the query ports)
    Read,
    /// everything, and the admin port
    Admin,
}

impl Role {
    fn parse(s: &str) -> Option<Role> {
        match s {
            "ingest" => Some(Role::Ingest),
            "read" => Some(Role::Read),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    fn allows(self, port: Role) -> bool {
        self == Role::Admin || self == port
    }
}

/// Who made a request: put in the request's extensions for handlers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub role: Role,
    pub tenant: Option<String>,
}

/// The client's address, put in every request's extensions by the server.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("reading the tokens file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} line {line}: {what}")]
    Line {
        path: String,
        line: usize,
        what: &'static str,
    },
}

type Digests = HashMap<[u8; 32], Identity>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabel {
    role: Role,
    reason: &'static str,
}

/// The tokens in force, re-read when their file changes.
pub struct Auth {
    path: PathBuf,
    open_metrics: bool,
    tokens: RwLock<Arc<Digests>>,
    looked: Mutex<(Instant, Option<SystemTime>)>,
    refused: Family<RefusalLabel, Counter>,
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

fn parse(path: &Path, text: &str) -> Result<Digests, AuthError> {
    let mut tokens = Digests::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let err = |what| AuthError::Line {
            path: path.display().to_string(),
            line: i + 1,
            what,
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (token, name, role, tenant) = match fields[..] {
            [t, n, r] => (t, n, r, None),
            [t, n, r, tenant] => (t, n, r, Some(tenant.to_string())),
            _ => return Err(err("expected `<token> <name> <role> [tenant]`")),
        };
        if token.len() < 16 {
            return Err(err("a token must be at least 16 characters"));
        }
        let role = Role::parse(role).ok_or_else(|| err("role must be ingest, read or admin"))?;
        let identity = Identity {
            name: name.to_string(),
            role,
            tenant,
        };
        if tokens.insert(digest(token.as_bytes()), identity).is_some() {
            return Err(err("the same token is listed twice"));
        }
    }
    Ok(tokens)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn read(path: &Path) -> Result<Digests, AuthError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(path, &text)
}

impl Auth {
    /// The tokens of `options`, or `None` when authentication is off.
    pub fn new(
        options: &AuthOptions,
        registry: &mut Registry,
    ) -> Result<Option<Arc<Auth>>, AuthError> {
        let Some(path) = &options.tokens_file else {
            return Ok(None);
        };
        let tokens = read(path)?;
        let refused = Family::default();
        registry.register(
            "spoor_auth_refused",
            "Requests refused for want of a valid token (reason=unauthenticated) or of the port's role (reason=forbidden)",
            refused.clone(),
        );
        Ok(Some(Arc::new(Auth {
            path: path.clone(),
            open_metrics: options.open_metrics,
            tokens: RwLock::new(Arc::new(tokens)),
            looked: Mutex::new((Instant::now(), modified(path))),
            refused,
        })))
    }

    fn tokens(&self) -> Arc<Digests> {
        {
            let mut looked = self.looked.lock().expect("auth lock poisoned");
            if looked.0.elapsed() >= RELOAD_EVERY {
                looked.0 = Instant::now();
                let now = modified(&self.path);
                if now != looked.1 {
                    match read(&self.path) {
                        Ok(tokens) => {
                            *self.tokens.write().expect("auth lock poisoned") = Arc::new(tokens);
                            looked.1 = now;
                            tracing::info!(file = %self.path.display(), "tokens file reloaded");
                        }
                        Err(e) => tracing::warn!(
                            error = format!("{:#}", anyhow::Error::new(e)),
                            "tokens file changed but does not parse; the previous tokens stay in force"
                        ),
                    }
                }
            }
        }
        Arc::clone(&self.tokens.read().expect("auth lock poisoned"))
    }

    /// Who sent `request`, if its token is known.
    fn identify(&self, request: &Request) -> Option<Identity> {
        let value = request
            .headers()
            .get(header::AUTHORIZATION)?
            .to_str()
            .ok()?;
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        self.tokens().get(&digest(token.trim().as_bytes())).cloned()
    }

    /// `app` with every request checked for a token of `role`; on the
    /// admin port, health (`/`) stays open, and /metrics too when so told.
    pub fn protect(self: &Arc<Self>, app: Router, role: Role) -> Router {
        let auth = Arc::clone(self);
        app.layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let auth = Arc::clone(&auth);
                async move { auth.check(request, next, role).await }
            },
        ))
    }

    async fn check(&self, mut request: Request, next: Next, role: Role) -> Response {
        if role == Role::Admin {
            let path = request.uri().path();
            if path == "/" || (self.open_metrics && path == "/metrics") {
                return next.run(request).await;
            }
        }
        let peer = request.extensions().get::<PeerAddr>().map(|p| p.0);
        let grpc = request
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().starts_with(b"application/grpc"));
        let reason = match self.identify(&request) {
            Some(identity) if identity.role.allows(role) => {
                request.extensions_mut().insert(identity);
                return next.run(request).await;
            }
            Some(identity) => {
                tracing::warn!(target: "audit", name = identity.name, ?role, peer = ?peer, path = request.uri().path(), "refused: the token's role does not serve this port");
                "forbidden"
            }
            None => {
                tracing::warn!(target: "audit", ?role, peer = ?peer, path = request.uri().path(), "refused: no valid token");
                "unauthenticated"
            }
        };
        self.refused
            .get_or_create(&RefusalLabel { role, reason })
            .inc();
        refusal(reason == "forbidden", grpc)
    }
}

/// The answer to a refused request, for HTTP or gRPC clients.
fn refusal(forbidden: bool, grpc: bool) -> Response {
    let (status, code, message) = if forbidden {
        (StatusCode::FORBIDDEN, "7", "permission denied")
    } else {
        (StatusCode::UNAUTHORIZED, "16", "authentication required")
    };
    if grpc {
        let mut response = StatusCode::OK.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert("grpc-status", HeaderValue::from_static(code));
        headers.insert(
            "grpc-message",
            HeaderValue::from_str(&message.replace(' ', "%20")).expect("ascii"),
        );
        return response;
    }
    let mut response = (
        status,
        axum::Json(serde_json::json!({
            "data": null,
            "errors": [{"code": status.as_u16(), "msg": message}],
        })),
    )
        .into_response();
    if !forbidden {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

#[cfg(test)]
mod tests;
