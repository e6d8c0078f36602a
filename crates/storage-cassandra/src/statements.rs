//! Every CQL statement the store runs, prepared once per session.
use super::*;

pub(crate) struct Statements {
    pub(crate) insert_span: PreparedStatement,
    pub(crate) insert_service: PreparedStatement,
    pub(crate) insert_operation: PreparedStatement,
    pub(crate) insert_service_index: PreparedStatement,
    pub(crate) insert_operation_index: PreparedStatement,
    pub(crate) insert_duration: PreparedStatement,
    pub(crate) insert_tag: PreparedStatement,
    pub(crate) insert_dependencies: PreparedStatement,
    pub(crate) select_trace: PreparedStatement,
    pub(crate) select_services: PreparedStatement,
    pub(crate) select_operations: PreparedStatement,
    pub(crate) select_operations_by_kind: PreparedStatement,
    pub(crate) by_service: PreparedStatement,
    pub(crate) by_operation: PreparedStatement,
    pub(crate) by_tag: PreparedStatement,
    pub(crate) by_duration: PreparedStatement,
    pub(crate) select_dependencies: PreparedStatement,
}

impl Statements {
    pub(crate) async fn prepare(s: &Session, ks: &str) -> Result<Statements, StorageError> {
        let p = |cql: String| async move {
            s.prepare(cql.clone())
                .await
                .map_err(|e| backend(&format!("preparing {cql}"), e))
        };
        let range = "start_time >= ? AND start_time <= ?";
        Ok(Statements {
            insert_span: p(format!(
                "INSERT INTO {ks}.traces ({SPAN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .await?,
            insert_service: p(format!("INSERT INTO {ks}.service_names (service_name) VALUES (?)")).await?,
            insert_operation: p(format!(
                "INSERT INTO {ks}.operation_names_v2 (service_name, span_kind, operation_name) VALUES (?, ?, ?)"
            ))
            .await?,
            insert_service_index: p(format!(
                "INSERT INTO {ks}.service_name_index (service_name, bucket, start_time, trace_id) VALUES (?, ?, ?, ?)"
            ))
            .await?,
            insert_operation_index: p(format!(
                "INSERT INTO {ks}.service_operation_index (service_name, operation_name, start_time, trace_id) \
                 VALUES (?, ?, ?, ?)"
            ))
            .await?,
            insert_duration: p(format!(
                "INSERT INTO {ks}.duration_index (service_name, operation_name, bucket, duration, start_time, trace_id) \
                 VALUES (?, ?, ?, ?, ?, ?)"
            ))
            .await?,
            insert_tag: p(format!(
                "INSERT INTO {ks}.tag_index (service_name, tag_key, tag_value, start_time, trace_id, span_id) \
                 VALUES (?, ?, ?, ?, ?, ?)"
            ))
            .await?,
            insert_dependencies: p(format!(
                "INSERT INTO {ks}.dependencies_v2 (ts_bucket, ts, dependencies) VALUES (?, ?, ?)"
            ))
            .await?,
            select_trace: p(format!("SELECT {SPAN_COLUMNS} FROM {ks}.traces WHERE trace_id = ?")).await?,
            select_services: p(format!("SELECT service_name FROM {ks}.service_names")).await?,
            select_operations: p(format!(
                "SELECT span_kind, operation_name FROM {ks}.operation_names_v2 WHERE service_name = ?"
            ))
            .await?,
            select_operations_by_kind: p(format!(
                "SELECT span_kind, operation_name FROM {ks}.operation_names_v2 WHERE service_name = ? AND span_kind = ?"
            ))
            .await?,
            by_service: p(format!(
                "SELECT start_time, trace_id FROM {ks}.service_name_index \
                 WHERE service_name = ? AND bucket = ? AND {range} LIMIT ?"
            ))
            .await?,
            by_operation: p(format!(
                "SELECT start_time, trace_id FROM {ks}.service_operation_index \
                 WHERE service_name = ? AND operation_name = ? AND {range} LIMIT ?"
            ))
            .await?,
            by_tag: p(format!(
                "SELECT start_time, trace_id FROM {ks}.tag_index \
                 WHERE service_name = ? AND tag_key = ? AND tag_value = ? AND {range} LIMIT ?"
            ))
            .await?,
            by_duration: p(format!(
                "SELECT start_time, trace_id FROM {ks}.duration_index \
                 WHERE service_name = ? AND operation_name = ? AND bucket = ? AND duration >= ? AND duration <= ? LIMIT ?"
            ))
            .await?,
            select_dependencies: p(format!(
                "SELECT ts, dependencies FROM {ks}.dependencies_v2 WHERE ts_bucket = ? AND ts >= ? AND ts <= ?"
            ))
            .await?,
        })
    }
}
