//! The session (contact points, credentials, TLS, consistency, load
//! balancing) and the schema.
use super::*;

/// Opens a session with the options' contact points, credentials, TLS,
/// consistency and token-aware, datacenter-aware load balancing.
pub async fn connect(o: &CassandraOptions) -> Result<Session, StorageError> {
    let consistency = match o.consistency {
        ConsistencyLevel::Any => Consistency::Any,
        ConsistencyLevel::One => Consistency::One,
        ConsistencyLevel::Two => Consistency::Two,
        ConsistencyLevel::Three => Consistency::Three,
        ConsistencyLevel::Quorum => Consistency::Quorum,
        ConsistencyLevel::All => Consistency::All,
        ConsistencyLevel::LocalQuorum => Consistency::LocalQuorum,
        ConsistencyLevel::EachQuorum => Consistency::EachQuorum,
        ConsistencyLevel::LocalOne => Consistency::LocalOne,
    };
    let mut policy = DefaultPolicy::builder().token_aware(true);
    if !o.local_dc.is_empty() {
        policy = policy.prefer_datacenter(o.local_dc.clone());
    }
    let profile = ExecutionProfile::builder()
        .consistency(consistency)
        .request_timeout((!o.timeout.is_zero()).then_some(o.timeout))
        .load_balancing_policy(policy.build())
        .build();
    let mut builder = SessionBuilder::new()
        .known_nodes(o.contact_points())
        .default_execution_profile_handle(profile.into_handle());
    if !o.username.is_empty() {
        builder = builder.user(o.username.clone(), o.password.clone());
    }
    let settings = o.tls().map_err(|e| backend("TLS options", e))?;
    if settings.enabled {
        builder = builder.tls_context(Some(tls_context(&settings)?));
    }
    builder
        .build()
        .await
        .map_err(|e| backend(&format!("connecting to {:?}", o.servers), e))
}

/// Creates the keyspace and tables when missing.
pub async fn create_schema(session: &Session, o: &CassandraOptions) -> Result<(), StorageError> {
    let invalid = |e| StorageError::backend("cassandra schema options", e);
    let params = o.schema().map_err(invalid)?;
    for statement in schema::statements(&params).map_err(invalid)? {
        session
            .query_unpaged(statement.clone(), ())
            .await
            .map_err(|e| backend(&format!("schema statement {statement}"), e))?;
    }
    session
        .await_schema_agreement()
        .await
        .map_err(|e| backend("schema agreement", e))?;
    Ok(())
}

/// An OpenSSL context from the TLS settings (scylla's TLS is OpenSSL's).
fn tls_context(
    settings: &spoor_tls::ClientTls,
) -> Result<openssl::ssl::SslConnectorBuilder, StorageError> {
    use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
    let mut tls = SslConnector::builder(SslMethod::tls()).map_err(|e| backend("TLS", e))?;
    if let Some(ca) = &settings.ca {
        tls.set_ca_file(ca)
            .map_err(|e| backend(&format!("CA file {}", ca.display()), e))?;
    }
    if let (Some(cert), Some(key)) = (&settings.cert, &settings.key) {
        tls.set_certificate_chain_file(cert)
            .map_err(|e| backend(&format!("certificate {}", cert.display()), e))?;
        tls.set_private_key_file(key, SslFiletype::PEM)
            .map_err(|e| backend(&format!("key {}", key.display()), e))?;
        tls.check_private_key()
            .map_err(|e| backend("the key does not match the certificate", e))?;
    }
    if let Some(name) = &settings.server_name {
        tls.verify_param_mut()
            .set_host(name)
            .map_err(|e| backend("TLS server name", e))?;
    }
    tls.set_verify(if settings.skip_host_verify {
        SslVerifyMode::NONE
    } else {
        SslVerifyMode::PEER
    });
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_become_an_openssl_context_or_an_error_naming_the_file() {
        let settings = spoor_tls::ClientTls {
            enabled: true,
            server_name: Some("cassandra.internal".into()),
            ..spoor_tls::ClientTls::default()
        };
        assert!(tls_context(&settings).is_ok());
        let missing = spoor_tls::ClientTls {
            ca: Some("/nonexistent/ca.pem".into()),
            ..settings.clone()
        };
        let e = tls_context(&missing).err().unwrap().to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let identity = spoor_tls::ClientTls {
            cert: Some("/nonexistent/client.pem".into()),
            key: Some("/nonexistent/client.key".into()),
            ..settings
        };
        let e = tls_context(&identity).err().unwrap().to_string();
        assert!(e.contains("/nonexistent/client.pem"), "{e}");
    }
}
