//! Adaptive sampling's shared state in Jaeger's tables and Jaeger's text
//! format, so Jaeger and Spoor collectors on one keyspace read each other's
//! counts and probabilities: `operation_throughput` (rows spread over
//! buckets 0-9, each a CSV of `service,operation,count,"p1,p2"`),
//! `sampling_probabilities` (bucket 1, newest first, a CSV of
//! `service,operation,probability,qps`), and `leases`, changed only with
//! lightweight transactions so two collectors never both lead.
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlTimestamp, CqlTimeuuid, CqlValue, Row};
use spoor_model::time::{from_unix_micros_i64, unix_micros_i64};
use spoor_storage::{Lease, SamplingStore, ServiceProbabilities, StorageError, Throughput};
use uuid::Uuid;

/// Jaeger writes throughput to a random one of ten partitions and reads all
/// ten; probabilities live in partition 1.
const THROUGHPUT_BUCKETS: i32 = 10;
const PROBABILITIES_BUCKET: i32 = 1;

fn backend(context: &str, e: impl Into<spoor_storage::BoxError>) -> StorageError {
    StorageError::backend(format!("cassandra sampling store: {context}"), e)
}

/// Gregorian 100 ns ticks between 1582-10-15 and 1970-01-01.
const GREGORIAN_OFFSET: u64 = 0x01B2_1DD2_1381_4000;

/// A version-1 (time) UUID for `t` with random clock sequence and node, so
/// rows of two collectors for the same bucket never collide.
pub fn time_uuid(t: SystemTime) -> Uuid {
    let nanos = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let ticks = (nanos / 100) as u64 + GREGORIAN_OFFSET;
    let random = RandomState::new().hash_one(nanos).to_be_bytes();
    let mut tail = [0u8; 8];
    tail[0] = (random[0] & 0x3f) | 0x80; // RFC 4122 variant
    tail[1..].copy_from_slice(&random[1..]);
    Uuid::from_fields(
        ticks as u32,
        (ticks >> 32) as u16,
        ((ticks >> 48) as u16 & 0x0fff) | 0x1000,
        &tail,
    )
}

/// The time a version-1 UUID carries.
pub fn uuid_time(u: &Uuid) -> Option<SystemTime> {
    let (secs, nanos) = u.get_timestamp()?.to_unix();
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Jaeger's `operation_throughput.throughput` text: one CSV record per
/// operation, the reported probabilities joined by commas in the last field.
pub fn throughput_to_text(throughput: &[Throughput]) -> String {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    for t in throughput {
        w.write_record([
            t.service.as_str(),
            &t.operation,
            &t.count.to_string(),
            &t.probabilities.join(","),
        ])
        .expect("csv to memory");
    }
    String::from_utf8(w.into_inner().expect("csv to memory")).expect("utf-8 in, utf-8 out")
}

/// Records of four fields; others are skipped, as Jaeger skips them.
fn records(text: &str) -> impl Iterator<Item = csv::StringRecord> + '_ {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes())
        .into_records()
        .filter_map(Result::ok)
        .filter(|r| r.len() == 4)
}

pub fn throughput_from_text(text: &str) -> Vec<Throughput> {
    records(text)
        .filter_map(|r| {
            Some(Throughput {
                service: r[0].to_string(),
                operation: r[1].to_string(),
                count: r[2].parse().ok()?,
                probabilities: r[3]
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// Jaeger's `sampling_probabilities.probabilities` text. Spoor's leader does
/// not keep per-operation QPS with the probabilities, so that field is 0
/// (Jaeger's readers of the latest probabilities use only the probability).
pub fn probabilities_to_text(probabilities: &ServiceProbabilities) -> String {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    for (service, operations) in probabilities {
        for (operation, p) in operations {
            w.write_record([service.as_str(), operation, &p.to_string(), "0"])
                .expect("csv to memory");
        }
    }
    String::from_utf8(w.into_inner().expect("csv to memory")).expect("utf-8 in, utf-8 out")
}

pub fn probabilities_from_text(text: &str) -> ServiceProbabilities {
    let mut out = ServiceProbabilities::new();
    for r in records(text) {
        if let Ok(p) = r[2].parse::<f64>() {
            out.entry(r[0].to_string())
                .or_default()
                .insert(r[1].to_string(), p);
        }
    }
    out
}

pub struct CassandraSamplingStore {
    session: Arc<Session>,
    insert_throughput: PreparedStatement,
    select_throughput: PreparedStatement,
    insert_probabilities: PreparedStatement,
    select_probabilities: PreparedStatement,
    select_lease: PreparedStatement,
    insert_lease: PreparedStatement,
    update_lease: PreparedStatement,
    delete_lease: PreparedStatement,
}

impl CassandraSamplingStore {
    pub async fn new(session: Arc<Session>, ks: &str) -> Result<Self, StorageError> {
        let prepare = |cql: String| {
            let session = Arc::clone(&session);
            async move {
                session
                    .prepare(cql.clone())
                    .await
                    .map_err(|e| backend(&format!("preparing {cql}"), e))
            }
        };
        Ok(CassandraSamplingStore {
            insert_throughput: prepare(format!(
                "INSERT INTO {ks}.operation_throughput (bucket, ts, throughput) VALUES (?, ?, ?)"
            ))
            .await?,
            select_throughput: prepare(format!(
                "SELECT ts, throughput FROM {ks}.operation_throughput \
                 WHERE bucket IN (0,1,2,3,4,5,6,7,8,9) AND ts >= minTimeuuid(?) AND ts < minTimeuuid(?)"
            ))
            .await?,
            insert_probabilities: prepare(format!(
                "INSERT INTO {ks}.sampling_probabilities (bucket, ts, hostname, probabilities) VALUES (?, ?, ?, ?)"
            ))
            .await?,
            select_probabilities: prepare(format!(
                "SELECT probabilities FROM {ks}.sampling_probabilities WHERE bucket = ? LIMIT 1"
            ))
            .await?,
            select_lease: prepare(format!("SELECT owner FROM {ks}.leases WHERE name = ?")).await?,
            insert_lease: prepare(format!(
                "INSERT INTO {ks}.leases (name, owner) VALUES (?, ?) IF NOT EXISTS USING TTL ?"
            ))
            .await?,
            update_lease: prepare(format!(
                "UPDATE {ks}.leases USING TTL ? SET owner = ? WHERE name = ? IF owner = ?"
            ))
            .await?,
            delete_lease: prepare(format!("DELETE FROM {ks}.leases WHERE name = ? IF owner = ?")).await?,
            session,
        })
    }

    /// Runs a lightweight transaction; true when it was applied.
    async fn applied(
        &self,
        st: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<bool, StorageError> {
        let result = self
            .session
            .execute_unpaged(st, values)
            .await
            .map_err(|e| backend("lease", e))?;
        let rows = result.into_rows_result().map_err(|e| backend("lease", e))?;
        let row = rows
            .maybe_first_row::<Row>()
            .map_err(|e| backend("lease", e))?;
        Ok(matches!(
            row.and_then(|r| r.columns.into_iter().next().flatten()),
            Some(CqlValue::Boolean(true))
        ))
    }

    async fn lease_owner(&self, name: &str) -> Result<Option<String>, StorageError> {
        let result = self
            .session
            .execute_unpaged(&self.select_lease, (name,))
            .await
            .map_err(|e| backend("lease", e))?;
        let rows = result.into_rows_result().map_err(|e| backend("lease", e))?;
        Ok(rows
            .maybe_first_row::<(Option<String>,)>()
            .map_err(|e| backend("lease", e))?
            .and_then(|(owner,)| owner))
    }
}

/// The `owner` column holds `holder@expiry-in-µs`: the lease's end travels
/// with it, so expiry follows the callers' clock, not the server's.
fn lease_value(holder: &str, expires: SystemTime) -> String {
    format!("{holder}@{}", unix_micros_i64(expires))
}

fn parse_lease(value: &str) -> Lease {
    let (holder, expires) = match value.rsplit_once('@') {
        Some((holder, expires)) => (holder, expires.parse().unwrap_or(0)),
        None => (value, 0),
    };
    Lease {
        holder: holder.to_string(),
        expires: from_unix_micros_i64(expires),
    }
}

#[async_trait]
impl SamplingStore for CassandraSamplingStore {
    async fn insert_throughput(
        &self,
        bucket: SystemTime,
        throughput: Vec<Throughput>,
    ) -> Result<(), StorageError> {
        let uuid = time_uuid(bucket);
        // the UUID's random tail picks the partition, as Jaeger's clock does
        let partition = i32::from(uuid.as_bytes()[15]) % THROUGHPUT_BUCKETS;
        self.session
            .execute_unpaged(
                &self.insert_throughput,
                (
                    partition,
                    CqlTimeuuid::from(uuid),
                    throughput_to_text(&throughput),
                ),
            )
            .await
            .map_err(|e| backend("writing throughput", e))?;
        Ok(())
    }

    async fn get_throughput(
        &self,
        start: SystemTime,
        end: SystemTime,
    ) -> Result<Vec<(SystemTime, Throughput)>, StorageError> {
        let ms = |t: SystemTime| CqlTimestamp(unix_micros_i64(t) / 1000);
        let result = self
            .session
            .execute_unpaged(&self.select_throughput, (ms(start), ms(end)))
            .await
            .map_err(|e| backend("reading throughput", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| backend("reading throughput", e))?;
        let mut out = Vec::new();
        for row in rows
            .rows::<(CqlTimeuuid, String)>()
            .map_err(|e| backend("reading throughput", e))?
        {
            let (ts, text) = row.map_err(|e| backend("reading throughput", e))?;
            let at = uuid_time(ts.as_ref())
                .ok_or_else(|| backend("throughput", "ts is not a time UUID"))?;
            out.extend(throughput_from_text(&text).into_iter().map(|t| (at, t)));
        }
        out.sort_by_key(|(at, _)| *at);
        Ok(out)
    }

    async fn insert_probabilities(
        &self,
        at: SystemTime,
        probabilities: ServiceProbabilities,
    ) -> Result<(), StorageError> {
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        let text = probabilities_to_text(&probabilities);
        self.session
            .execute_unpaged(
                &self.insert_probabilities,
                (
                    PROBABILITIES_BUCKET,
                    CqlTimeuuid::from(time_uuid(at)),
                    host,
                    text,
                ),
            )
            .await
            .map_err(|e| backend("writing probabilities", e))?;
        Ok(())
    }

    async fn get_latest_probabilities(&self) -> Result<Option<ServiceProbabilities>, StorageError> {
        let result = self
            .session
            .execute_unpaged(&self.select_probabilities, (PROBABILITIES_BUCKET,))
            .await
            .map_err(|e| backend("reading probabilities", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| backend("reading probabilities", e))?;
        Ok(rows
            .maybe_first_row::<(String,)>()
            .map_err(|e| backend("reading probabilities", e))?
            .map(|(text,)| probabilities_from_text(&text)))
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<bool, StorageError> {
        let value = lease_value(holder, now + ttl);
        let ttl_secs = ttl.as_secs().max(1) as i32;
        match self.lease_owner(name).await? {
            None => {
                self.applied(&self.insert_lease, (name, &value, ttl_secs))
                    .await
            }
            Some(current) => {
                if !Lease::may_take(Some(&parse_lease(&current)), holder, now) {
                    return Ok(false);
                }
                self.applied(&self.update_lease, (ttl_secs, &value, name, &current))
                    .await
            }
        }
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StorageError> {
        if let Some(current) = self.lease_owner(name).await?
            && parse_lease(&current).holder == holder
        {
            self.applied(&self.delete_lease, (name, &current)).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_uuids_carry_their_time_and_differ() {
        let t = UNIX_EPOCH + Duration::from_micros(1_764_000_000_123_456);
        let a = time_uuid(t);
        let b = time_uuid(t);
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 1);
        assert_eq!(
            uuid_time(&a),
            Some(UNIX_EPOCH + Duration::from_nanos(1_764_000_000_123_456_000))
        );
    }

    fn throughput(service: &str, operation: &str, count: u64, ps: &[&str]) -> Throughput {
        Throughput {
            service: service.into(),
            operation: operation.into(),
            count,
            probabilities: ps.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn throughput_text_is_jaegers_csv() {
        // as Jaeger's collector writes it (Go's encoding/csv)
        let jaeger =
            "frontend,HTTP GET /dispatch,25,\"0.001,0.5\"\nredis,\"GetDriver, cached\",3,1\n";
        let parsed = throughput_from_text(jaeger);
        assert_eq!(
            parsed,
            vec![
                throughput("frontend", "HTTP GET /dispatch", 25, &["0.001", "0.5"]),
                throughput("redis", "GetDriver, cached", 3, &["1"]),
            ]
        );
        assert_eq!(throughput_to_text(&parsed), jaeger);
        let quoted = vec![throughput("s", "say \"hi\"", 1, &[])];
        assert_eq!(throughput_to_text(&quoted), "s,\"say \"\"hi\"\"\",1,\n");
        assert_eq!(throughput_from_text(&throughput_to_text(&quoted)), quoted);
    }

    #[test]
    fn records_jaeger_would_skip_are_skipped() {
        let text = "a,op,1,0.1\nshort,row\nb,op,not-a-number,0.1\nc,op,2,\n";
        assert_eq!(
            throughput_from_text(text),
            vec![
                throughput("a", "op", 1, &["0.1"]),
                throughput("c", "op", 2, &[])
            ]
        );
        assert_eq!(throughput_from_text(""), vec![]);
    }

    #[test]
    fn probabilities_text_is_jaegers_csv() {
        let jaeger = "frontend,HTTP GET /dispatch,0.0005,12.5\nredis,GetDriver,1,0.2\n";
        let parsed = probabilities_from_text(jaeger);
        assert_eq!(parsed["frontend"]["HTTP GET /dispatch"], 0.0005);
        assert_eq!(parsed["redis"]["GetDriver"], 1.0);
        assert_eq!(
            probabilities_to_text(&parsed),
            "frontend,HTTP GET /dispatch,0.0005,0\nredis,GetDriver,1,0\n"
        );
        assert_eq!(
            probabilities_from_text(&probabilities_to_text(&parsed)),
            parsed
        );
    }

    #[test]
    fn lease_values_round_trip_even_with_at_signs_in_holders() {
        let t = UNIX_EPOCH + Duration::from_secs(10);
        let v = lease_value("host@1", t);
        let lease = parse_lease(&v);
        assert_eq!(lease.holder, "host@1");
        assert_eq!(lease.expires, UNIX_EPOCH + Duration::from_secs(10));
        assert_eq!(parse_lease("jaeger-host").expires, UNIX_EPOCH);
    }
}
