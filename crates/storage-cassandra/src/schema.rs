//! Jaeger's v004 keyspace, written out statement by statement so
//! `spoor-cassandra-schema` (or the opt-in auto-create) makes the same
//! tables Jaeger's schema job does, and Jaeger reads what Spoor writes.
use std::time::Duration;

/// A keyspace name or replication setting CQL would not take.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum SchemaError {
    #[error("replication {0:?}: expected a factor or DATACENTER:FACTOR,…")]
    Replication(String),
    #[error("replication factor of {datacenter:?}: {source}")]
    Factor {
        datacenter: String,
        #[source]
        source: std::num::ParseIntError,
    },
    #[error("datacenter name {0:?} is not valid")]
    Datacenter(String),
    #[error("keyspace {0:?}: use 1 to 48 letters, digits and underscores, starting with a letter")]
    Keyspace(String),
}

/// Where the keyspace's replicas go.
#[derive(Clone, Debug, PartialEq)]
pub enum Replication {
    /// One replication factor for the cluster (tests, one datacenter).
    Simple(u32),
    /// Replicas per datacenter.
    NetworkTopology(Vec<(String, u32)>),
}

impl Replication {
    /// `1` → SimpleStrategy; `dc1:3,dc2:2` → NetworkTopologyStrategy.
    pub fn parse(s: &str) -> Result<Replication, SchemaError> {
        if let Ok(n) = s.trim().parse::<u32>() {
            return Ok(Replication::Simple(n.max(1)));
        }
        let dcs = s
            .split(',')
            .map(|part| {
                let (dc, n) = part
                    .split_once(':')
                    .ok_or_else(|| SchemaError::Replication(part.to_string()))?;
                let n = n
                    .trim()
                    .parse::<u32>()
                    .map_err(|source| SchemaError::Factor {
                        datacenter: dc.to_string(),
                        source,
                    })?;
                let dc = dc.trim();
                if dc.is_empty()
                    || !dc
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
                {
                    return Err(SchemaError::Datacenter(dc.to_string()));
                }
                Ok((dc.to_string(), n))
            })
            .collect::<Result<Vec<_>, SchemaError>>()?;
        Ok(Replication::NetworkTopology(dcs))
    }

    fn cql(&self) -> String {
        match self {
            Replication::Simple(n) => {
                format!("{{'class': 'SimpleStrategy', 'replication_factor': '{n}'}}")
            }
            Replication::NetworkTopology(dcs) => {
                let parts: Vec<String> =
                    dcs.iter().map(|(dc, n)| format!("'{dc}': '{n}'")).collect();
                format!(
                    "{{'class': 'NetworkTopologyStrategy', {}}}",
                    parts.join(", ")
                )
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct SchemaParams {
    pub keyspace: String,
    pub replication: Replication,
    /// How long span and index rows live (0: forever).
    pub trace_ttl: Duration,
    /// How long dependency rows live (0: forever).
    pub dependencies_ttl: Duration,
}

/// Keyspace names CQL accepts unquoted.
pub fn validate_keyspace(name: &str) -> Result<(), SchemaError> {
    let ok = !name.is_empty()
        && name.len() <= 48
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if ok {
        Ok(())
    } else {
        Err(SchemaError::Keyspace(name.to_string()))
    }
}

/// The statements, in order; each is idempotent (`IF NOT EXISTS`).
pub fn statements(p: &SchemaParams) -> Result<Vec<String>, SchemaError> {
    validate_keyspace(&p.keyspace)?;
    let ks = &p.keyspace;
    let ttl = p.trace_ttl.as_secs();
    let deps_ttl = p.dependencies_ttl.as_secs();
    // Jaeger's rule of thumb: about 30 compaction windows over the TTL
    let window_minutes = (ttl / 60 / 30).max(1);
    let common = format!(
        "AND default_time_to_live = {ttl}\n    AND speculative_retry = 'NONE'\n    AND gc_grace_seconds = 10800"
    );
    let stcs = "compaction = {'min_threshold': '4', 'max_threshold': '32', \
                'class': 'org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy'}";
    let twcs = |size: u64, unit: &str| {
        format!(
            "compaction = {{'compaction_window_size': '{size}', 'compaction_window_unit': '{unit}', \
             'class': 'org.apache.cassandra.db.compaction.TimeWindowCompactionStrategy'}}"
        )
    };
    let hourly = twcs(1, "HOURS");
    let kvs = format!("frozen<list<frozen<{ks}.keyvalue>>>");
    Ok(vec![
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {}",
            p.replication.cql()
        ),
        format!(
            "CREATE TYPE IF NOT EXISTS {ks}.keyvalue (key text, value_type text, value_string text, \
             value_bool boolean, value_long bigint, value_double double, value_binary blob)"
        ),
        format!("CREATE TYPE IF NOT EXISTS {ks}.log (ts bigint, fields {kvs})"),
        format!(
            "CREATE TYPE IF NOT EXISTS {ks}.span_ref (ref_type text, trace_id blob, span_id bigint, attributes {kvs})"
        ),
        format!("CREATE TYPE IF NOT EXISTS {ks}.process (service_name text, tags {kvs})"),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.traces (\n    trace_id blob, span_id bigint, span_hash bigint, \
             parent_id bigint, operation_name text, flags int, start_time bigint, duration bigint, \
             tags list<frozen<keyvalue>>, logs list<frozen<log>>, refs list<frozen<span_ref>>, \
             process frozen<process>, scope_name text, scope_version text,\n    \
             PRIMARY KEY (trace_id, span_id, span_hash)\n) WITH {}\n    {common}",
            twcs(window_minutes, "MINUTES")
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.service_names (service_name text, PRIMARY KEY (service_name))\n    WITH {stcs}\n    {common}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.operation_names_v2 (service_name text, span_kind text, \
             operation_name text, PRIMARY KEY ((service_name), span_kind, operation_name))\n    WITH {stcs}\n    {common}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.service_operation_index (service_name text, operation_name text, \
             start_time bigint, trace_id blob, PRIMARY KEY ((service_name, operation_name), start_time))\n    \
             WITH CLUSTERING ORDER BY (start_time DESC)\n    AND {hourly}\n    {common}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.service_name_index (service_name text, bucket int, \
             start_time bigint, trace_id blob, PRIMARY KEY ((service_name, bucket), start_time))\n    \
             WITH CLUSTERING ORDER BY (start_time DESC)\n    AND {hourly}\n    {common}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.duration_index (service_name text, operation_name text, \
             bucket timestamp, duration bigint, start_time bigint, trace_id blob, \
             PRIMARY KEY ((service_name, operation_name, bucket), duration, start_time, trace_id))\n    \
             WITH CLUSTERING ORDER BY (duration DESC, start_time DESC)\n    AND {hourly}\n    {common}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.tag_index (service_name text, tag_key text, tag_value text, \
             start_time bigint, trace_id blob, span_id bigint, \
             PRIMARY KEY ((service_name, tag_key, tag_value), start_time, trace_id, span_id))\n    \
             WITH CLUSTERING ORDER BY (start_time DESC)\n    AND {hourly}\n    {common}"
        ),
        format!(
            "CREATE TYPE IF NOT EXISTS {ks}.dependency (parent text, child text, call_count bigint, source text)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.dependencies_v2 (ts_bucket timestamp, ts timestamp, \
             dependencies list<frozen<dependency>>, PRIMARY KEY (ts_bucket, ts))\n    \
             WITH CLUSTERING ORDER BY (ts DESC)\n    AND {stcs}\n    AND default_time_to_live = {deps_ttl}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.operation_throughput (bucket int, ts timeuuid, throughput text, \
             PRIMARY KEY (bucket, ts)) WITH CLUSTERING ORDER BY (ts DESC)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.sampling_probabilities (bucket int, ts timeuuid, hostname text, \
             probabilities text, PRIMARY KEY (bucket, ts)) WITH CLUSTERING ORDER BY (ts DESC)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.leases (name text, owner text, PRIMARY KEY (name))"
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> SchemaParams {
        SchemaParams {
            keyspace: "jaeger_v1_dc1".into(),
            replication: Replication::Simple(1),
            trace_ttl: Duration::from_secs(172_800),
            dependencies_ttl: Duration::ZERO,
        }
    }

    #[test]
    fn every_v004_table_and_type_is_created_in_the_keyspace() {
        let all = statements(&params()).unwrap();
        let created: Vec<&str> = all
            .iter()
            .map(|s| s.split_whitespace().nth(5).unwrap().trim_end_matches('('))
            .collect();
        assert_eq!(
            created,
            [
                "jaeger_v1_dc1",
                "jaeger_v1_dc1.keyvalue",
                "jaeger_v1_dc1.log",
                "jaeger_v1_dc1.span_ref",
                "jaeger_v1_dc1.process",
                "jaeger_v1_dc1.traces",
                "jaeger_v1_dc1.service_names",
                "jaeger_v1_dc1.operation_names_v2",
                "jaeger_v1_dc1.service_operation_index",
                "jaeger_v1_dc1.service_name_index",
                "jaeger_v1_dc1.duration_index",
                "jaeger_v1_dc1.tag_index",
                "jaeger_v1_dc1.dependency",
                "jaeger_v1_dc1.dependencies_v2",
                "jaeger_v1_dc1.operation_throughput",
                "jaeger_v1_dc1.sampling_probabilities",
                "jaeger_v1_dc1.leases",
            ]
        );
        assert!(all.iter().all(|s| s.contains("IF NOT EXISTS")));
    }

    #[test]
    fn ttl_and_compaction_window_follow_the_options() {
        let all = statements(&params()).unwrap();
        let traces = all.iter().find(|s| s.contains(".traces (")).unwrap();
        assert!(traces.contains("default_time_to_live = 172800"), "{traces}");
        // 2 days / 30 windows = 96 minutes
        assert!(
            traces.contains("'compaction_window_size': '96'"),
            "{traces}"
        );
        assert!(traces.contains("PRIMARY KEY (trace_id, span_id, span_hash)"));
        let deps = all.iter().find(|s| s.contains("dependencies_v2")).unwrap();
        assert!(deps.ends_with("default_time_to_live = 0"), "{deps}");
    }

    #[test]
    fn replication_strategies() {
        let all = statements(&SchemaParams {
            replication: Replication::parse("dc1:3, dc2:2").unwrap(),
            ..params()
        })
        .unwrap();
        assert!(all[0].ends_with("{'class': 'NetworkTopologyStrategy', 'dc1': '3', 'dc2': '2'}"));
        assert_eq!(Replication::parse("2"), Ok(Replication::Simple(2)));
        assert!(Replication::parse("dc1").is_err());
        assert!(Replication::parse("d'c:1").is_err());
    }

    #[test]
    fn unsafe_keyspace_names_are_refused() {
        for bad in ["", "1abc", "a;DROP", "a-b", &"k".repeat(49)] {
            let p = SchemaParams {
                keyspace: bad.to_string(),
                ..params()
            };
            assert!(statements(&p).is_err(), "{bad:?}");
        }
    }
}
