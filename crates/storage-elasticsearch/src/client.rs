//! The connection to the cluster: node list, authentication and TLS from the
//! options, and JSON requests whose failures become one error type.
use std::time::Duration;

use elasticsearch::Elasticsearch;
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::headers::{CONTENT_TYPE, HeaderMap, HeaderValue};
use elasticsearch::http::request::{JsonBody, NdBody};
use elasticsearch::http::transport::{MultiNodeConnectionPool, TransportBuilder};
use elasticsearch::http::{Method, StatusCode, Url};
use serde_json::Value as Json;

use crate::mapping::Flavor;

#[derive(Debug, thiserror::Error)]
pub enum EsError {
    #[error("elasticsearch configuration: {context}")]
    Config {
        context: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error("elasticsearch request {path} failed: {message}")]
    Transport { path: String, message: String },
    #[error("elasticsearch answered {status} to {path}: {body}")]
    Status {
        path: String,
        status: u16,
        body: String,
    },
}

impl EsError {
    /// `context` is wrong, because of `source`.
    pub fn config(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> EsError {
        EsError::Config {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    fn config_msg(context: impl Into<String>) -> EsError {
        EsError::Config {
            context: context.into(),
            source: None,
        }
    }

    /// Worth trying again: overload, unavailability, network trouble.
    pub fn retryable(&self) -> bool {
        match self {
            EsError::Transport { .. } => true,
            EsError::Status { status, .. } => retryable_status(*status),
            EsError::Config { .. } => false,
        }
    }
}

pub fn retryable_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

impl From<EsError> for spoor_storage::StorageError {
    fn from(e: EsError) -> Self {
        if e.retryable() {
            spoor_storage::StorageError::unavailable("elasticsearch", e)
        } else {
            spoor_storage::StorageError::backend("elasticsearch", e)
        }
    }
}

/// How to reach the cluster.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    pub urls: Vec<String>,
    pub username: String,
    pub password: String,
    /// Sent as `Authorization: Bearer …`; read from a file when configured.
    pub bearer_token: String,
    /// PEM file of the CA that signed the servers' certificates.
    pub tls_ca: Option<std::path::PathBuf>,
    pub tls_skip_host_verify: bool,
    pub timeout: Duration,
}

#[derive(Clone)]
pub struct EsClient {
    es: Elasticsearch,
    timeout: Duration,
}

impl EsClient {
    pub fn connect(o: &ConnectOptions) -> Result<EsClient, EsError> {
        let urls = o
            .urls
            .iter()
            .map(|u| Url::parse(u).map_err(|e| EsError::config(format!("server url {u:?}"), e)))
            .collect::<Result<Vec<_>, _>>()?;
        if urls.is_empty() {
            return Err(EsError::config_msg("no server urls"));
        }
        let mut builder = TransportBuilder::new(MultiNodeConnectionPool::round_robin(urls, None))
            .enable_meta_header(false);
        if !o.timeout.is_zero() {
            builder = builder.timeout(o.timeout);
        }
        if !o.bearer_token.is_empty() {
            builder = builder.auth(Credentials::Bearer(o.bearer_token.clone()));
        } else if !o.username.is_empty() {
            builder = builder.auth(Credentials::Basic(o.username.clone(), o.password.clone()));
        }
        if o.tls_skip_host_verify {
            builder = builder.cert_validation(CertificateValidation::None);
        } else if let Some(ca) = &o.tls_ca {
            let pem = std::fs::read(ca)
                .map_err(|e| EsError::config(format!("CA file {}", ca.display()), e))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| EsError::config(format!("CA file {}", ca.display()), e))?;
            builder = builder.cert_validation(CertificateValidation::Full(cert));
        }
        let transport = builder
            .build()
            .map_err(|e| EsError::config("HTTP client", e))?;
        Ok(EsClient {
            es: Elasticsearch::new(transport),
            timeout: o.timeout,
        })
    }

    /// Asks the root endpoint which server family this is.
    pub async fn flavor(&self) -> Result<Flavor, EsError> {
        let info = self.request(Method::Get, "/", &[], None).await?;
        let version = &info["version"];
        Flavor::detect(
            version["number"].as_str().unwrap_or_default(),
            version["distribution"].as_str(),
        )
        .map_err(|e| EsError::config("server", e))
    }

    /// A JSON request; statuses other than 2xx are errors.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Json>,
    ) -> Result<Json, EsError> {
        let (status, json) = self.request_status(method, path, query, body).await?;
        if status.is_success() {
            Ok(json)
        } else {
            Err(status_error(path, status, &json))
        }
    }

    /// A JSON request whose status the caller judges (404 and 409 are
    /// answers, not failures, for gets and conditional writes).
    pub async fn request_status(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Json>,
    ) -> Result<(StatusCode, Json), EsError> {
        let response = self
            .es
            .transport()
            .send(
                method,
                path,
                HeaderMap::new(),
                Some(query),
                body.map(JsonBody::new),
                self.timeout(),
            )
            .await
            .map_err(|e| transport_error(path, e))?;
        read(path, response).await
    }

    /// Adds one document to `index` and waits until it is searchable.
    pub async fn index_document(&self, index: &str, doc: Json) -> Result<(), EsError> {
        self.request(
            Method::Post,
            &format!("/{index}/_doc"),
            &[("refresh", "wait_for")],
            Some(doc),
        )
        .await
        .map(|_| ())
    }

    /// A newline-delimited request (`_bulk`, `_msearch`): one JSON value per line.
    pub async fn ndjson(
        &self,
        path: &str,
        query: &[(&str, &str)],
        lines: Vec<Vec<u8>>,
    ) -> Result<Json, EsError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        let response = self
            .es
            .transport()
            .send(
                Method::Post,
                path,
                headers,
                Some(query),
                Some(NdBody::new(lines)),
                self.timeout(),
            )
            .await
            .map_err(|e| transport_error(path, e))?;
        let (status, json) = read(path, response).await?;
        if status.is_success() {
            Ok(json)
        } else {
            Err(status_error(path, status, &json))
        }
    }

    fn timeout(&self) -> Option<Duration> {
        (!self.timeout.is_zero()).then_some(self.timeout)
    }
}

fn transport_error(path: &str, e: elasticsearch::Error) -> EsError {
    match e.status_code() {
        Some(status) => EsError::Status {
            path: path.to_string(),
            status: status.as_u16(),
            body: e.to_string(),
        },
        None => EsError::Transport {
            path: path.to_string(),
            message: e.to_string(),
        },
    }
}

async fn read(
    path: &str,
    response: elasticsearch::http::response::Response,
) -> Result<(StatusCode, Json), EsError> {
    let status = response.status_code();
    let text = response
        .text()
        .await
        .map_err(|e| transport_error(path, e))?;
    let json = if text.is_empty() {
        Json::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Json::String(text))
    };
    Ok((status, json))
}

fn status_error(path: &str, status: StatusCode, body: &Json) -> EsError {
    let mut body = match &body["error"] {
        Json::Null => body.to_string(),
        error => error.to_string(),
    };
    body.truncate(1000);
    EsError::Status {
        path: path.to_string(),
        status: status.as_u16(),
        body,
    }
}
