//! The TLS settings of a client connection (to Cassandra, Elasticsearch,
//! Kafka), one dialect for every backend: Jaeger's `<prefix>.tls.enabled`,
//! `.ca`, `.cert`, `.key`, `.server-name` and `.skip-host-verify`. Each
//! backend declares the flags under its prefix and hands this type to its
//! connector, so the rules below are the same everywhere. A server port's
//! TLS ([`ServerTls`], declared with [`server_tls_options!`]) uses the same
//! dialect with Jaeger's server names (`.client-ca`, `.min-version`,
//! `.reload-interval`).
use std::path::{Path, PathBuf};

mod server;
#[cfg(test)]
mod server_tests;
pub use server::{Acceptor, ServerTls, ServerTlsError};

/// Declares the clap options of one server port's TLS under a flag prefix
/// and an environment prefix, as Jaeger names them:
/// `server_tls_options!(QueryHttpTls, "query.http", "QUERY_HTTP")` gives
/// `--query.http.tls.enabled` (`QUERY_HTTP_TLS_ENABLED`), `.cert`, `.key`,
/// `.client-ca`, `.min-version` and `.reload-interval`.
#[macro_export]
macro_rules! server_tls_options {
    ($name:ident, $p:literal, $e:literal) => {
        #[derive(clap::Args, Clone, Debug)]
        #[group(id = concat!($p, ".tls"))]
        pub struct $name {
            /// Serve this port with TLS.
            #[arg(id = concat!($p, ".tls.enabled"), long = concat!($p, ".tls.enabled"), env = concat!($e, "_TLS_ENABLED"), default_value_t = false)]
            pub tls_enabled: bool,
            /// The server's certificate chain (PEM).
            #[arg(id = concat!($p, ".tls.cert"), long = concat!($p, ".tls.cert"), env = concat!($e, "_TLS_CERT"))]
            pub tls_cert: Option<std::path::PathBuf>,
            /// The certificate's private key (PEM).
            #[arg(id = concat!($p, ".tls.key"), long = concat!($p, ".tls.key"), env = concat!($e, "_TLS_KEY"))]
            pub tls_key: Option<std::path::PathBuf>,
            /// CA certificates (PEM); clients must present a certificate signed by one (mutual TLS).
            #[arg(id = concat!($p, ".tls.client-ca"), long = concat!($p, ".tls.client-ca"), env = concat!($e, "_TLS_CLIENT_CA"))]
            pub tls_client_ca: Option<std::path::PathBuf>,
            /// Lowest TLS version accepted: 1.2 or 1.3 (empty: both).
            #[arg(id = concat!($p, ".tls.min-version"), long = concat!($p, ".tls.min-version"), env = concat!($e, "_TLS_MIN_VERSION"), default_value = "")]
            pub tls_min_version: String,
            /// How often the certificate files are checked for a change and reloaded (0s: never).
            #[arg(id = concat!($p, ".tls.reload-interval"), long = concat!($p, ".tls.reload-interval"), env = concat!($e, "_TLS_RELOAD_INTERVAL"), default_value = "5s", value_parser = spoor_model::parse_go_duration)]
            pub tls_reload_interval: std::time::Duration,
        }

        impl $name {
            /// The flag prefix, for errors.
            pub const PREFIX: &'static str = $p;

            pub fn tls(&self) -> $crate::ServerTls {
                $crate::ServerTls {
                    enabled: self.tls_enabled,
                    cert: self.tls_cert.clone(),
                    key: self.tls_key.clone(),
                    client_ca: self.tls_client_ca.clone(),
                    min_version: self.tls_min_version.clone(),
                    reload_interval: self.tls_reload_interval,
                }
            }

            /// The port's acceptor, `None` without TLS.
            pub fn acceptor(
                &self,
            ) -> Result<Option<std::sync::Arc<$crate::Acceptor>>, $crate::ServerTlsError> {
                self.tls().acceptor(Self::PREFIX)
            }
        }
    };
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientTls {
    /// Connect with TLS.
    pub enabled: bool,
    /// CA certificates (PEM) the server's certificate is checked against;
    /// the system's when unset.
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) and its key, for servers that ask for one.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The name the server's certificate must carry, when it is not the
    /// host dialled.
    pub server_name: Option<String>,
    /// Accept any server certificate (testing only).
    pub skip_host_verify: bool,
}

/// Settings that cannot make a TLS connection.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--{prefix}tls.cert and --{prefix}tls.key go together")]
    HalfIdentity { prefix: &'static str },
    #[error("reading {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A client certificate and its key, PEM.
pub struct Identity {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

impl ClientTls {
    /// The settings, checked: a certificate needs its key. As in Jaeger,
    /// the other settings are not used without `tls.enabled` (an `https`
    /// URL turns TLS on for Elasticsearch, where `implied` says so).
    pub fn checked(self, prefix: &'static str, implied: bool) -> Result<ClientTls, TlsError> {
        if (self.enabled || implied) && self.cert.is_some() != self.key.is_some() {
            return Err(TlsError::HalfIdentity { prefix });
        }
        Ok(ClientTls {
            enabled: self.enabled || implied,
            ..self
        })
    }

    /// The client certificate and key, read, when both are named.
    pub fn identity(&self) -> Result<Option<Identity>, TlsError> {
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Ok(Some(Identity {
                cert: read(cert)?,
                key: read(key)?,
            })),
            _ => Ok(None),
        }
    }

    /// The CA certificates, read, when named.
    pub fn ca_pem(&self) -> Result<Option<Vec<u8>>, TlsError> {
        self.ca.as_deref().map(read).transpose()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_needs_its_key_and_files_need_tls() {
        let cert_only = ClientTls {
            enabled: true,
            cert: Some("c.pem".into()),
            ..ClientTls::default()
        };
        assert!(matches!(
            cert_only.checked("es.", false),
            Err(TlsError::HalfIdentity { prefix: "es." })
        ));
        let ca_off = ClientTls {
            ca: Some("ca.pem".into()),
            ..ClientTls::default()
        };
        // as in Jaeger, not used without tls.enabled; an https URL turns TLS on
        assert!(!ca_off.clone().checked("cassandra.", false).unwrap().enabled);
        assert!(ca_off.checked("es.", true).unwrap().enabled);
        assert!(!ClientTls::default().checked("es.", false).unwrap().enabled);
    }

    #[test]
    fn files_are_read_or_named_in_the_error() {
        let dir = std::env::temp_dir().join(format!("spoor-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("c.pem"), "CERT").unwrap();
        std::fs::write(dir.join("k.pem"), "KEY").unwrap();
        let tls = ClientTls {
            enabled: true,
            cert: Some(dir.join("c.pem")),
            key: Some(dir.join("k.pem")),
            ca: Some(dir.join("missing.pem")),
            ..ClientTls::default()
        };
        let id = tls.identity().unwrap().unwrap();
        assert_eq!(
            (id.cert.as_slice(), id.key.as_slice()),
            (&b"CERT"[..], &b"KEY"[..])
        );
        let e = tls.ca_pem().unwrap_err();
        assert!(e.to_string().contains("missing.pem"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
