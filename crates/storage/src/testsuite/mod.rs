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
        $crate::storage_conformance_tests!(@cases $make;
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
            dependencies_follow_child_of_across_services,
        );
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
}

/// Expands to one `#[tokio::test]` per sampling store case; `$make` returns
/// an empty `SamplingStore`.
#[macro_export]
macro_rules! sampling_store_conformance_tests {
    ($make:path) => {
        $crate::storage_conformance_tests!(@cases $make;
            throughput_is_kept_per_bucket_from_every_collector,
            latest_probabilities_win,
            one_holder_has_a_lease_until_it_expires_or_is_released,
        );
    };
}
