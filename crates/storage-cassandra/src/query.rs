//! Which index tables answer a search, as Jaeger's Cassandra reader decides:
//! tags from `tag_index` (each tag's trace ids intersected, and with the
//! operation's when one is given), durations from `duration_index` by hour
//! bucket, else the operation's or the service's index. Pure, unit-tested.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use spoor_storage::TraceQuery;

/// Rows read from an index per trace wanted: spans of one trace share rows.
pub const INDEX_ROWS_PER_TRACE: usize = 5;

/// Partitions of `service_name_index` (Jaeger's `defaultNumBuckets`).
pub const SERVICE_BUCKETS: i32 = 10;

#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Intersect the trace ids of every tag (and of the operation, if any).
    /// A duration bound, which Jaeger refuses with tags, is checked on the
    /// traces found.
    Tags {
        tags: Vec<(String, String)>,
        operation: Option<String>,
        check_duration: bool,
    },
    /// `duration_index`, newest hour bucket first; operation "" for any.
    Duration {
        operation: String,
        buckets: Vec<SystemTime>,
        min_us: i64,
        max_us: i64,
    },
    Operation(String),
    Service,
}

pub fn plan(q: &TraceQuery) -> Plan {
    let has_duration = q.duration_min.is_some() || q.duration_max.is_some();
    if !q.tags.is_empty() {
        return Plan::Tags {
            tags: q.tags.clone(),
            operation: q.operation_name.clone(),
            check_duration: has_duration,
        };
    }
    if has_duration {
        return Plan::Duration {
            operation: q.operation_name.clone().unwrap_or_default(),
            buckets: hour_buckets(q.start_time_min, q.start_time_max),
            min_us: q.duration_min.map_or(0, |d| d.as_micros() as i64),
            max_us: q.duration_max.map_or(i64::MAX, |d| d.as_micros() as i64),
        };
    }
    match &q.operation_name {
        Some(op) => Plan::Operation(op.clone()),
        None => Plan::Service,
    }
}

/// The start of the hour `t` falls in: `duration_index`'s partition bucket.
pub fn hour_bucket(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    UNIX_EPOCH + Duration::from_secs(secs - secs % 3600)
}

/// Every hour bucket from `max` down to `min`.
pub fn hour_buckets(min: SystemTime, max: SystemTime) -> Vec<SystemTime> {
    let first = hour_bucket(min);
    let mut out = Vec::new();
    let mut b = hour_bucket(max);
    while b >= first {
        out.push(b);
        match b.checked_sub(Duration::from_secs(3600)) {
            Some(prev) => b = prev,
            None => break,
        }
    }
    out
}

/// Ids in every list, in the order of the first.
pub fn intersect<T: PartialEq + Clone>(lists: &[Vec<T>]) -> Vec<T> {
    let Some((first, rest)) = lists.split_first() else {
        return Vec::new();
    };
    let mut out: Vec<T> = Vec::new();
    for id in first {
        if rest.iter().all(|l| l.contains(id)) && !out.contains(id) {
            out.push(id.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn query() -> TraceQuery {
        TraceQuery {
            service_name: "svc".into(),
            operation_name: None,
            tags: vec![],
            start_time_min: at(7200 + 1800),
            start_time_max: at(4 * 3600 + 5),
            duration_min: None,
            duration_max: None,
            num_traces: 20,
        }
    }

    #[test]
    fn plans_follow_jaegers_choice_of_index() {
        assert_eq!(plan(&query()), Plan::Service);
        let op = TraceQuery {
            operation_name: Some("GET".into()),
            ..query()
        };
        assert_eq!(plan(&op), Plan::Operation("GET".into()));
        let tags = TraceQuery {
            tags: vec![("error".into(), "true".into())],
            duration_min: Some(Duration::from_millis(5)),
            ..op.clone()
        };
        assert_eq!(
            plan(&tags),
            Plan::Tags {
                tags: vec![("error".into(), "true".into())],
                operation: Some("GET".into()),
                check_duration: true,
            }
        );
        let duration = TraceQuery {
            duration_min: Some(Duration::from_millis(5)),
            ..op
        };
        assert_eq!(
            plan(&duration),
            Plan::Duration {
                operation: "GET".into(),
                buckets: vec![at(4 * 3600), at(3 * 3600), at(2 * 3600)],
                min_us: 5000,
                max_us: i64::MAX,
            }
        );
    }

    #[test]
    fn buckets_cover_partial_hours_at_both_ends() {
        assert_eq!(hour_buckets(at(3599), at(3600)), [at(3600), at(0)]);
        assert_eq!(hour_buckets(at(10), at(20)), [at(0)]);
        assert!(hour_buckets(at(7200), at(10)).is_empty());
    }

    #[test]
    fn intersection_keeps_the_first_lists_order() {
        assert_eq!(
            intersect(&[vec![3, 1, 2, 3], vec![2, 3], vec![9, 3, 2]]),
            [3, 2]
        );
        assert!(intersect::<u8>(&[]).is_empty());
        assert_eq!(intersect(&[vec![1, 2]]), [1, 2]);
    }
}
