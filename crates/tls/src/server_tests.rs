//! The server acceptor against a real rustls client over an in-memory
//! stream, with certificates made by openssl for each test.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{ServerTls, ServerTlsError};

struct Ca {
    cert: X509,
    key: PKey<Private>,
}

fn key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

fn cert(cn: &str, key: &PKey<Private>, issuer: Option<&Ca>, serial: u32) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    match issuer {
        None => {
            b.set_issuer_name(&name).unwrap();
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
            b.sign(key, MessageDigest::sha256()).unwrap();
        }
        Some(ca) => {
            b.set_issuer_name(ca.cert.subject_name()).unwrap();
            let san = SubjectAlternativeName::new()
                .dns("localhost")
                .ip("127.0.0.1")
                .build(&b.x509v3_context(Some(&ca.cert), None))
                .unwrap();
            b.append_extension(san).unwrap();
            b.sign(&ca.key, MessageDigest::sha256()).unwrap();
        }
    }
    b.build()
}

fn ca(cn: &str) -> Ca {
    let key = key();
    Ca {
        cert: cert(cn, &key, None, 1),
        key,
    }
}

/// A leaf signed by `ca`, written as `<name>.pem` and `<name>-key.pem`.
fn leaf(dir: &Path, name: &str, ca: &Ca, serial: u32) -> (PathBuf, PathBuf) {
    let key = key();
    let cert = cert(name, &key, Some(ca), serial);
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    std::fs::write(&c, cert.to_pem().unwrap()).unwrap();
    std::fs::write(&k, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (c, k)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spoor-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What a client saw: the serial of the server's certificate and the
/// protocol ALPN chose; or the handshake's error.
async fn handshake(
    acceptor: &crate::Acceptor,
    ca: &Ca,
    client: Option<(&Path, &Path)>,
) -> Result<(Vec<u8>, Option<Vec<u8>>), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.cert.to_der().unwrap()))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(cert)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server = async {
        let mut tls = acceptor
            .accept(server_io)
            .await
            .map_err(|e| e.to_string())?;
        // the client's certificate is checked when its first data is read
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
        tls.write_all(b"k").await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    };
    let client = async {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let mut tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), client_io)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"p").await.map_err(|e| e.to_string())?;
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
        let (_, session) = tls.get_ref();
        let serial = X509::from_der(&session.peer_certificates().unwrap()[0])
            .unwrap()
            .serial_number()
            .to_bn()
            .unwrap()
            .to_vec();
        Ok::<_, String>((serial, session.alpn_protocol().map(<[u8]>::to_vec)))
    };
    let (served, seen) = tokio::join!(server, client);
    served?;
    seen
}

fn settings(cert: PathBuf, key: PathBuf) -> ServerTls {
    ServerTls {
        enabled: true,
        cert: Some(cert),
        key: Some(key),
        ..ServerTls::default()
    }
}

#[tokio::test]
async fn a_client_gets_the_certificate_and_http2_by_alpn() {
    let dir = temp_dir("alpn");
    let ca = ca("test ca");
    let (cert, key) = leaf(&dir, "server", &ca, 7);
    let acceptor = settings(cert, key).acceptor("query.http").unwrap().unwrap();
    let (serial, alpn) = handshake(&acceptor, &ca, None).await.unwrap();
    assert_eq!((serial, alpn), (vec![7], Some(b"h2".to_vec())));
}

#[tokio::test]
async fn with_a_client_ca_a_client_without_a_good_certificate_is_refused() {
    let dir = temp_dir("mtls");
    let ca = ca("server ca");
    let clients = self::ca("client ca");
    let stranger = self::ca("someone else");
    let (cert, key) = leaf(&dir, "server", &ca, 2);
    std::fs::write(dir.join("clients.pem"), clients.cert.to_pem().unwrap()).unwrap();
    let tls = ServerTls {
        client_ca: Some(dir.join("clients.pem")),
        ..settings(cert, key)
    };
    let acceptor = tls.acceptor("collector.grpc").unwrap().unwrap();
    let (good_cert, good_key) = leaf(&dir, "good-client", &clients, 3);
    let (bad_cert, bad_key) = leaf(&dir, "bad-client", &stranger, 4);
    assert!(handshake(&acceptor, &ca, None).await.is_err());
    assert!(
        handshake(&acceptor, &ca, Some((&bad_cert, &bad_key)))
            .await
            .is_err()
    );
    let (serial, _) = handshake(&acceptor, &ca, Some((&good_cert, &good_key)))
        .await
        .unwrap();
    assert_eq!(serial, vec![2]);
}

#[tokio::test]
async fn a_certificate_replaced_on_disk_is_served_after_the_reload_interval() {
    let dir = temp_dir("reload");
    let ca = ca("test ca");
    let (cert, key) = leaf(&dir, "server", &ca, 10);
    let tls = ServerTls {
        reload_interval: Duration::from_millis(50),
        ..settings(cert.clone(), key.clone())
    };
    let acceptor = tls.acceptor("query.grpc").unwrap().unwrap();
    assert_eq!(handshake(&acceptor, &ca, None).await.unwrap().0, vec![10]);

    // a half-written rotation: the key is garbage; the old pair stays in use
    std::thread::sleep(Duration::from_millis(20));
    let (next_cert, next_key) = leaf(&dir, "next", &ca, 11);
    std::fs::copy(&next_cert, &cert).unwrap();
    std::fs::write(&key, "half written").unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(handshake(&acceptor, &ca, None).await.unwrap().0, vec![10]);

    // the rotation completes: the new certificate is served, no restart
    std::fs::copy(&next_key, &key).unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(handshake(&acceptor, &ca, None).await.unwrap().0, vec![11]);
}

#[test]
fn settings_that_cannot_serve_are_errors_naming_the_flag() {
    assert!(ServerTls::default().acceptor("x").unwrap().is_none());
    let no_key = ServerTls {
        enabled: true,
        cert: Some("c.pem".into()),
        ..ServerTls::default()
    };
    let e = no_key.acceptor("collector.otlp.grpc").unwrap_err();
    assert!(matches!(e, ServerTlsError::NoIdentity { .. }));
    assert!(
        e.to_string().contains("--collector.otlp.grpc.tls.key"),
        "{e}"
    );
    let dir = temp_dir("errors");
    let ca = ca("test ca");
    let (cert, key) = leaf(&dir, "server", &ca, 1);
    let old = ServerTls {
        min_version: "1.0".into(),
        ..settings(cert.clone(), key)
    };
    assert!(matches!(
        old.acceptor("query.http").unwrap_err(),
        ServerTlsError::Version { .. }
    ));
    std::fs::write(dir.join("bad-key.pem"), "no key here").unwrap();
    let bad = settings(cert, dir.join("bad-key.pem"));
    let e = bad.acceptor("query.http").unwrap_err();
    assert!(e.to_string().contains("bad-key.pem"), "{e}");
}

#[test]
fn the_options_macro_declares_jaegers_flag_names() {
    crate::server_tls_options!(QueryHttpTls, "query.http", "QUERY_HTTP");
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        tls: QueryHttpTls,
    }
    let cli = <Cli as clap::Parser>::try_parse_from([
        "spoor",
        "--query.http.tls.enabled",
        "--query.http.tls.cert=/c.pem",
        "--query.http.tls.key=/k.pem",
        "--query.http.tls.client-ca=/ca.pem",
        "--query.http.tls.min-version=1.3",
        "--query.http.tls.reload-interval=1m",
    ])
    .unwrap();
    assert_eq!(
        cli.tls.tls(),
        ServerTls {
            enabled: true,
            cert: Some("/c.pem".into()),
            key: Some("/k.pem".into()),
            client_ca: Some("/ca.pem".into()),
            min_version: "1.3".into(),
            reload_interval: Duration::from_secs(60),
        }
    );
    let e = cli.tls.acceptor().unwrap_err();
    assert!(e.to_string().contains("/c.pem"), "{e}");
}
