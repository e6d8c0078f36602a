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
    if o.tls_enabled {
        use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
        let mut tls = SslConnector::builder(SslMethod::tls()).map_err(|e| backend("TLS", e))?;
        if let Some(ca) = &o.tls_ca {
            tls.set_ca_file(ca)
                .map_err(|e| backend(&format!("CA file {}", ca.display()), e))?;
        }
        tls.set_verify(if o.tls_skip_host_verify {
            SslVerifyMode::NONE
        } else {
            SslVerifyMode::PEER
        });
        builder = builder.tls_context(Some(tls));
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
