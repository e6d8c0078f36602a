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

/// The client certificate of `--es.tls.cert`/`.key` as the transport takes
/// it (PKCS#12, which native TLS reads), when both are named.
fn client_certificate(tls: &spoor_tls::ClientTls) -> Result<Option<Credentials>, EsError> {
    use openssl::pkcs12::Pkcs12;
    use openssl::pkey::PKey;
    use openssl::x509::X509;
    let Some(identity) = tls
        .identity()
        .map_err(|e| EsError::config("client certificate", e))?
    else {
        return Ok(None);
    };
    let invalid = |e| EsError::config("client certificate", e);
    let mut chain = X509::stack_from_pem(&identity.cert)
        .map_err(invalid)?
        .into_iter();
    let leaf = chain
        .next()
        .ok_or_else(|| EsError::config_msg("client certificate: no certificate in the PEM file"))?;
    let key = PKey::private_key_from_pem(&identity.key).map_err(invalid)?;
    let mut rest = openssl::stack::Stack::new().map_err(invalid)?;
    for ca in chain {
        rest.push(ca).map_err(invalid)?;
    }
    let archive = Pkcs12::builder()
        .name("spoor")
        .pkey(&key)
        .cert(&leaf)
        .ca(rest)
        .build2("")
        .map_err(invalid)?;
    let der = archive.to_der().map_err(invalid)?;
    Ok(Some(Credentials::Certificate(
        elasticsearch::auth::ClientCertificate::Pkcs12(der, Some(String::new())),
    )))
}

/// The `Authorization` header of a user or a token.
fn authorization_header(credentials: Credentials) -> Result<HeaderValue, EsError> {
    use base64::Engine;
    let text = match credentials {
        Credentials::Basic(user, password) => format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        ),
        Credentials::Bearer(token) => format!("Bearer {token}"),
        _ => return Err(EsError::config_msg("unsupported credentials")),
    };
    let mut value =
        HeaderValue::from_str(&text).map_err(|e| EsError::config("authorization header", e))?;
    value.set_sensitive(true);
    Ok(value)
}

/// How to reach the cluster.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    pub urls: Vec<String>,
    pub username: String,
    pub password: String,
    /// Sent as `Authorization: Bearer …`; read from a file when configured.
    pub bearer_token: String,
    /// CA, client certificate and verification (`--es.tls.*`).
    pub tls: spoor_tls::ClientTls,
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
        let authorization = if !o.bearer_token.is_empty() {
            Some(Credentials::Bearer(o.bearer_token.clone()))
        } else if !o.username.is_empty() {
            Some(Credentials::Basic(o.username.clone(), o.password.clone()))
        } else {
            None
        };
        match (client_certificate(&o.tls)?, authorization) {
            (Some(cert), authorization) => {
                // the transport takes one credential: the certificate, and a
                // user or token as the header it would have written
                builder = builder.auth(cert);
                if let Some(header) = authorization.map(authorization_header) {
                    let mut headers = HeaderMap::new();
                    headers.insert(elasticsearch::http::headers::AUTHORIZATION, header?);
                    builder = builder.headers(headers);
                }
            }
            (None, Some(authorization)) => builder = builder.auth(authorization),
            (None, None) => {}
        }
        if o.tls.skip_host_verify {
            builder = builder.cert_validation(CertificateValidation::None);
        } else if let Some(pem) = o.tls.ca_pem().map_err(|e| EsError::config("CA file", e))? {
            let cert = Certificate::from_pem(&pem).map_err(|e| EsError::config("CA file", e))?;
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

#[cfg(test)]
mod tests {
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::{X509, X509NameBuilder};

    use super::*;

    /// A self-signed certificate and its key, PEM.
    fn self_signed() -> (Vec<u8>, Vec<u8>) {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "spoor-client").unwrap();
        let name = name.build();
        let mut cert = X509::builder().unwrap();
        cert.set_version(2).unwrap();
        cert.set_subject_name(&name).unwrap();
        cert.set_issuer_name(&name).unwrap();
        cert.set_pubkey(&key).unwrap();
        cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        cert.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        cert.sign(&key, MessageDigest::sha256()).unwrap();
        (
            cert.build().to_pem().unwrap(),
            key.private_key_to_pem_pkcs8().unwrap(),
        )
    }

    #[test]
    fn a_pem_client_certificate_becomes_the_transports_pkcs12() {
        let dir = std::env::temp_dir().join(format!("spoor-es-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = self_signed();
        std::fs::write(dir.join("c.pem"), &cert).unwrap();
        std::fs::write(dir.join("k.pem"), &key).unwrap();
        std::fs::write(dir.join("bad.pem"), "not a key").unwrap();
        let tls = |key: &str| spoor_tls::ClientTls {
            enabled: true,
            cert: Some(dir.join("c.pem")),
            key: Some(dir.join(key)),
            ..spoor_tls::ClientTls::default()
        };
        match client_certificate(&tls("k.pem")).unwrap() {
            Some(Credentials::Certificate(elasticsearch::auth::ClientCertificate::Pkcs12(
                der,
                _,
            ))) => {
                let parsed = openssl::pkcs12::Pkcs12::from_der(&der)
                    .unwrap()
                    .parse2("")
                    .unwrap();
                assert_eq!(parsed.cert.unwrap().to_pem().unwrap(), cert);
            }
            _ => panic!("no client certificate"),
        }
        assert!(client_certificate(&tls("bad.pem")).is_err());
        assert!(
            client_certificate(&spoor_tls::ClientTls::default())
                .unwrap()
                .is_none()
        );
        // a client certificate and a user: the transport holds both
        let both = ConnectOptions {
            urls: vec!["https://127.0.0.1:9200".into()],
            username: "elastic".into(),
            password: "changeme".into(),
            tls: tls("k.pem"),
            ..ConnectOptions::default()
        };
        assert!(EsClient::connect(&both).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            authorization_header(Credentials::Basic("elastic".into(), "changeme".into())).unwrap(),
            "Basic ZWxhc3RpYzpjaGFuZ2VtZQ=="
        );
    }
}
