//! Authentication shared by every HTTP and gRPC port: bearer tokens from a
//! file, each with a name, a role and optionally a tenant, and HTTP basic
//! auth from an htpasswd file (bcrypt). A port serves one role (collector
//! ports ingest, query ports read, the admin port admin); an admin
//! identity may use every port. Both files are re-read when they change, so
//! a credential is added or revoked without a restart.
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

    /// htpasswd file of users for HTTP basic auth: `user:bcrypt-hash`, with
    /// `:role[:tenant]` after the hash (role read when left out). When set,
    /// every port but the admin port's health check asks for credentials.
    #[arg(long = "auth.htpasswd-file", env = "AUTH_HTPASSWD_FILE")]
    pub htpasswd_file: Option<PathBuf>,

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

/// A credentials file and what it says, re-read when it changes (looked
/// at once per [`RELOAD_EVERY`] at most); a version that does not parse
/// leaves the previous one in force.
struct Watched<T> {
    path: PathBuf,
    parse: fn(&Path, &str) -> Result<T, AuthError>,
    current: RwLock<Arc<T>>,
    looked: Mutex<(Instant, Option<SystemTime>)>,
}

impl<T> Watched<T> {
    fn open(
        path: &Path,
        parse: fn(&Path, &str) -> Result<T, AuthError>,
    ) -> Result<Self, AuthError> {
        Ok(Watched {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(read(path, parse)?)),
            looked: Mutex::new((Instant::now(), modified(path))),
            parse,
        })
    }

    fn get(&self) -> Arc<T> {
        {
            let mut looked = self.looked.lock().expect("auth lock poisoned");
            if looked.0.elapsed() >= RELOAD_EVERY {
                looked.0 = Instant::now();
                let now = modified(&self.path);
                if now != looked.1 {
                    match read(&self.path, self.parse) {
                        Ok(value) => {
                            *self.current.write().expect("auth lock poisoned") = Arc::new(value);
                            looked.1 = now;
                            tracing::info!(file = %self.path.display(), "credentials file reloaded");
                        }
                        Err(e) => tracing::warn!(
                            error = format!("{:#}", anyhow::Error::new(e)),
                            "credentials file changed but does not parse; the previous version stays in force"
                        ),
                    }
                }
            }
        }
        Arc::clone(&self.current.read().expect("auth lock poisoned"))
    }
}

/// The credentials in force.
pub struct Auth {
    open_metrics: bool,
    tokens: Option<Watched<Digests>>,
    users: Option<Watched<htpasswd::Users>>,
    /// Passwords already checked against the users file in force, so that
    /// bcrypt runs once per (user, password) and not per request.
    verified: htpasswd::Verified,
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

fn read<T>(path: &Path, parse: fn(&Path, &str) -> Result<T, AuthError>) -> Result<T, AuthError> {
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
        if options.tokens_file.is_none() && options.htpasswd_file.is_none() {
            return Ok(None);
        }
        let tokens = options
            .tokens_file
            .as_deref()
            .map(|p| Watched::open(p, parse))
            .transpose()?;
        let users = options
            .htpasswd_file
            .as_deref()
            .map(|p| Watched::open(p, htpasswd::parse))
            .transpose()?;
        let refused = Family::default();
        registry.register(
            "spoor_auth_refused",
            "Requests refused for want of a valid token (reason=unauthenticated) or of the port's role (reason=forbidden)",
            refused.clone(),
        );
        Ok(Some(Arc::new(Auth {
            open_metrics: options.open_metrics,
            tokens,
            users,
            verified: htpasswd::Verified::default(),
            refused,
        })))
    }

    /// The schemes a refused client may use (a browser offers its login
    /// dialog for Basic).
    fn challenge(&self) -> &'static str {
        match (self.tokens.is_some(), self.users.is_some()) {
            (true, true) => "Basic realm=\"spoor\", Bearer",
            (false, true) => "Basic realm=\"spoor\"",
            _ => "Bearer",
        }
    }

    /// Who sent `request`, if its bearer token or basic credentials are known.
    async fn identify(&self, authorization: Option<String>) -> Option<Identity> {
        let value = authorization?;
        let (scheme, credentials) = value.split_once(' ')?;
        let credentials = credentials.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            let tokens = self.tokens.as_ref()?.get();
            return tokens.get(&digest(credentials.as_bytes())).cloned();
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let users = self.users.as_ref()?.get();
            return self.verified.check(users, credentials).await;
        }
        None
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
        let authorization = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let reason = match self.identify(authorization).await {
            Some(identity) if identity.role.allows(role) => {
                // what an identity reads is audited; writes are too many to log
                if role != Role::Ingest {
                    let uri = request.uri();
                    tracing::info!(target: "audit", name = identity.name, tenant = identity.tenant, peer = ?peer, method = %request.method(), path = uri.path(), query = uri.query().unwrap_or_default(), "read");
                }
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
        refusal(reason == "forbidden", grpc, self.challenge())
    }
}

/// The answer to a refused request, for HTTP or gRPC clients.
fn refusal(forbidden: bool, grpc: bool, challenge: &'static str) -> Response {
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
    let headers = response.headers_mut();
    // answered before the query port's own headers: the same hardening here
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if !forbidden {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    response
}

mod htpasswd;
#[cfg(test)]
mod tests;
