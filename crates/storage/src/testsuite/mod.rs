//! The conformance suite: one set of cases every storage backend must pass,
//! driven by Jaeger's own integration fixtures (testdata/jaeger-integration).
//!
//! A backend runs it with one line in its tests:
//! `spoor_storage::storage_conformance_tests!(make_store);` where `make_store`
//! is an `async fn() -> impl SpanWriter + SpanReader + DependencyReader` that
//! returns an empty store each time it is called.

mod cases;
mod fixtures;
mod sampling_cases;

pub use cases::*;
pub use sampling_cases::*;

/// Expands to one `#[tokio::test]` per conformance case.
#[macro_export]
macro_rules! storage_conformance_tests {
    ($make:path) => {
        $crate::span_cases!(@cases $make; dependencies_follow_child_of_across_services);
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let store = $make().await;
                $crate::testsuite::$case(&store).await;
            }
        )*
    };
    (@optional $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            #[ignore = "needs its server; scripts/test.sh runs it when SPOOR_ES_URL or SPOOR_CASSANDRA_SERVERS names one"]
            async fn $case() {
                let store = $make()
                    .await
                    .expect("no server configured for this backend: set SPOOR_ES_URL or SPOOR_CASSANDRA_SERVERS");
                $crate::testsuite::$case(&store).await;
            }
        )*
    };
}

/// The span cases, with `@cases` or `@optional`, and extra cases.
#[doc(hidden)]
#[macro_export]
macro_rules! span_cases {
    (@$mode:ident $make:path; $($extra:ident),* $(,)?) => {
        $crate::storage_conformance_tests!(@$mode $make;
            find_traces_fixture_queries,
            find_trace_ids_agree_with_find_traces,
            get_trace_returns_every_fixture_trace,
            get_trace_of_unknown_id_is_none,
            get_services_lists_every_service,
            get_operations_filters_by_kind,
            large_trace_is_returned_whole,
            duplicate_span_ids_are_kept,
            exact_duplicate_spans_are_returned_once,
            limit_keeps_the_newest_traces,
            $($extra,)*
        );
    };
}

/// For backends on an external server (Cassandra, Elasticsearch): every
/// span case; `$make` returns `Option<store>`, `None` when no server is
/// configured. The cases are `#[ignore]`d: scripts/test.sh runs them
/// with `--ignored` when a server is named, and they fail without one. Their dependencies come from a batch
/// job, so they are written and read back (`DependencyWriter`).
#[macro_export]
macro_rules! external_storage_conformance_tests {
    ($make:path) => {
        $crate::span_cases!(@optional $make; dependencies_written_by_a_job_are_read_and_summed);
    };
}

/// Expands to one `#[tokio::test]` per sampling store case; `$make` returns
/// an empty `SamplingStore`.
#[macro_export]
macro_rules! sampling_store_conformance_tests {
    ($make:path) => {
        $crate::sampling_cases!(@cases $make);
    };
}

/// The sampling store cases for an external server; `$make` returns
/// `Option<store>`, `None` skipping them.
#[macro_export]
macro_rules! external_sampling_store_conformance_tests {
    ($make:path) => {
        $crate::sampling_cases!(@optional $make);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! sampling_cases {
    (@$mode:ident $make:path) => {
        $crate::storage_conformance_tests!(@$mode $make;
            throughput_is_kept_per_bucket_from_every_collector,
            latest_probabilities_win,
            one_holder_has_a_lease_until_it_expires_or_is_released,
        );
    };
}
