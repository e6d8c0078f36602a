//! The TLS settings of a server port and the acceptor built from them:
//! Jaeger's `<prefix>.tls.enabled`, `.cert`, `.key`, `.client-ca` (mutual
//! TLS: a client certificate signed by it is required), `.min-version` and
//! `.reload-interval`. rustls (with ring) does the protocol. The files are
//! watched: a handshake that comes more than the reload interval after the
//! last look checks their modification times and, when one changed, builds
//! the next configuration from them, so a certificate rotated on disk
//! (cert-manager) is served without a restart. A rotation that cannot be
//! loaded (a half-written pair) keeps the configuration in force and is
//! logged; the next look tries again.
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use crate::TlsError;

#[derive(Clone, Debug, PartialEq)]
pub struct ServerTls {
    pub enabled: bool,
    /// The server's certificate chain (PEM) and its key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// CA certificates (PEM); when set, every client must present a
    /// certificate signed by one of them.
    pub client_ca: Option<PathBuf>,
    /// "1.2" or "1.3"; empty for both.
    pub min_version: String,
    /// How often the files are looked at for a change; zero never.
    pub reload_interval: Duration,
}

impl Default for ServerTls {
    fn default() -> Self {
        ServerTls {
            enabled: false,
            cert: None,
            key: None,
            client_ca: None,
            min_version: String::new(),
            reload_interval: Duration::from_secs(5),
        }
    }
}

/// Settings a server cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum ServerTlsError {
    #[error("--{prefix}.tls.enabled needs --{prefix}.tls.cert and --{prefix}.tls.key")]
    NoIdentity { prefix: String },
    #[error("--{prefix}.tls.min-version={given}: Spoor speaks TLS 1.2 and 1.3 (give 1.2 or 1.3)")]
    Version { prefix: String, given: String },
    #[error("{path}: no certificate in the file")]
    NoCertificate { path: String },
    #[error("{path}: not a PEM private key")]
    BadKey {
        path: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path}: not a PEM certificate")]
    BadCertificate {
        path: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("the certificate and key do not make a TLS server configuration")]
    Config(#[source] rustls::Error),
    #[error("the client CA does not make a client certificate verifier")]
    ClientCa(#[source] rustls::server::VerifierBuilderError),
    #[error(transparent)]
    Read(#[from] TlsError),
}

/// The TLS side of one listener: the configuration in force, rebuilt when
/// its files change.
pub struct Acceptor {
    settings: ServerTls,
    current: RwLock<Arc<ServerConfig>>,
    /// When the files were last looked at, and their modification times then.
    looked: Mutex<(Instant, Vec<Option<SystemTime>>)>,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("cert", &self.settings.cert)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// The acceptor for these settings, or `None` when TLS is off. `prefix`
    /// names the flags in errors (`collector.grpc`).
    pub fn acceptor(&self, prefix: &str) -> Result<Option<Arc<Acceptor>>, ServerTlsError> {
        if !self.enabled {
            return Ok(None);
        }
        if self.cert.is_none() || self.key.is_none() {
            return Err(ServerTlsError::NoIdentity {
                prefix: prefix.to_string(),
            });
        }
        match self.min_version.as_str() {
            "" | "1.2" | "1.3" => {}
            given => {
                return Err(ServerTlsError::Version {
                    prefix: prefix.to_string(),
                    given: given.to_string(),
                });
            }
        }
        let config = self.load()?;
        Ok(Some(Arc::new(Acceptor {
            looked: Mutex::new((Instant::now(), self.modified())),
            settings: self.clone(),
            current: RwLock::new(Arc::new(config)),
        })))
    }

    fn files(&self) -> impl Iterator<Item = &Path> {
        [&self.cert, &self.key, &self.client_ca]
            .into_iter()
            .filter_map(|p| p.as_deref())
    }

    fn modified(&self) -> Vec<Option<SystemTime>> {
        self.files()
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect()
    }

    fn load(&self) -> Result<ServerConfig, ServerTlsError> {
        let (cert, key) = (
            self.cert.as_deref().expect("checked"),
            self.key.as_deref().expect("checked"),
        );
        let chain = certificates(cert)?;
        let key = PrivateKeyDer::from_pem_slice(&crate::read(key)?).map_err(|source| {
            ServerTlsError::BadKey {
                path: key.display().to_string(),
                source,
            }
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&'static rustls::SupportedProtocolVersion] = if self.min_version == "1.3" {
            &[&rustls::version::TLS13]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .map_err(ServerTlsError::Config)?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in certificates(ca)? {
                    roots.add(c).map_err(ServerTlsError::Config)?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(ServerTlsError::ClientCa)?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(ServerTlsError::Config)?;
        // gRPC needs HTTP/2 by ALPN; browsers and curl may take either
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServerTlsError> {
    let pem = crate::read(path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| ServerTlsError::BadCertificate {
            path: path.display().to_string(),
            source,
        })?;
    if chain.is_empty() {
        return Err(ServerTlsError::NoCertificate {
            path: path.display().to_string(),
        });
    }
    Ok(chain)
}

impl Acceptor {
    /// The configuration for the next handshake, reloaded first when the
    /// files changed since the last look (at most once a reload interval).
    pub fn config(&self) -> Arc<ServerConfig> {
        let interval = self.settings.reload_interval;
        if !interval.is_zero() {
            let mut looked = self.looked.lock().expect("tls lock poisoned");
            if looked.0.elapsed() >= interval {
                looked.0 = Instant::now();
                let now = self.settings.modified();
                if now != looked.1 {
                    match self.settings.load() {
                        Ok(config) => {
                            *self.current.write().expect("tls lock poisoned") = Arc::new(config);
                            looked.1 = now;
                            tracing::info!(cert = ?self.settings.cert, "TLS certificate reloaded");
                        }
                        Err(e) => tracing::warn!(
                            cert = ?self.settings.cert,
                            error = %e,
                            "TLS files changed but do not load; the previous certificate stays in use"
                        ),
                    }
                }
            }
        }
        Arc::clone(&self.current.read().expect("tls lock poisoned"))
    }

    /// Performs the server side of a handshake on `stream`.
    pub async fn accept<S>(&self, stream: S) -> std::io::Result<tokio_rustls::server::TlsStream<S>>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        tokio_rustls::TlsAcceptor::from(self.config())
            .accept(stream)
            .await
    }
}
