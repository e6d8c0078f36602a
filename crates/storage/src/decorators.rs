//! Wrappers any backend can be put in: a timeout per call, retries with
//! exponential backoff for errors that may pass (`StorageError::Unavailable`),
//! and an observer told each call's operation, latency and outcome (the
//! server turns that into Prometheus metrics).
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use spoor_model::{DependencyLink, Span, Trace, TraceId};

use crate::{
    DependencyReader, Operation, OperationQuery, SamplingStore, ServiceProbabilities, SpanReader,
    SpanWriter, StorageError, Throughput, TraceQuery,
};

/// How a call ended, for the observer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Failed after its retries (or with an error not worth retrying).
    Failed,
    /// One failed attempt that is tried again.
    Retried,
}

pub trait CallObserver: Send + Sync + 'static {
    fn observe(&self, operation: &'static str, elapsed: Duration, outcome: Outcome);
}

#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Longest one attempt may take; zero for no bound.
    pub timeout: Duration,
    /// Attempts after the first, for retryable errors.
    pub retries: u32,
    /// First retry delay, doubled each time.
    pub backoff: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            timeout: Duration::ZERO,
            retries: 0,
            backoff: Duration::from_millis(100),
        }
    }
}

/// A store behind the policy and the observer.
pub struct Guarded<T: ?Sized> {
    inner: Arc<T>,
    policy: Policy,
    observer: Option<Arc<dyn CallObserver>>,
}

impl<T: ?Sized> Guarded<T> {
    pub fn new(inner: Arc<T>, policy: Policy, observer: Option<Arc<dyn CallObserver>>) -> Self {
        Guarded {
            inner,
            policy,
            observer,
        }
    }

    async fn call<R, F, Fut>(&self, operation: &'static str, f: F) -> Result<R, StorageError>
    where
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<R, StorageError>> + Send,
        R: Send,
    {
        let mut attempt = 0;
        loop {
            let started = Instant::now();
            let result = if self.policy.timeout.is_zero() {
                f().await
            } else {
                tokio::time::timeout(self.policy.timeout, f())
                    .await
                    .unwrap_or_else(|_| {
                        Err(StorageError::unavailable_msg(format!(
                            "{operation} timed out after {:?}",
                            self.policy.timeout
                        )))
                    })
            };
            let retry = matches!(result, Err(StorageError::Unavailable { .. }))
                && attempt < self.policy.retries;
            let outcome = match (&result, retry) {
                (Ok(_), _) => Outcome::Ok,
                (Err(_), true) => Outcome::Retried,
                (Err(_), false) => Outcome::Failed,
            };
            if let Some(observer) = &self.observer {
                observer.observe(operation, started.elapsed(), outcome);
            }
            if !retry {
                return result;
            }
            tokio::time::sleep(self.policy.backoff * 2u32.pow(attempt.min(16))).await;
            attempt += 1;
        }
    }
}

#[async_trait]
impl SpanWriter for Guarded<dyn SpanWriter> {
    async fn write_spans(&self, spans: Vec<Span>) -> Result<(), StorageError> {
        // the spans are kept for a retry only when one may come
        if self.policy.retries == 0 {
            let once = std::sync::Mutex::new(Some(spans));
            return self
                .call("write_spans", || {
                    let spans = once
                        .lock()
                        .expect("not poisoned")
                        .take()
                        .unwrap_or_default();
                    self.inner.write_spans(spans)
                })
                .await;
        }
        self.call("write_spans", || self.inner.write_spans(spans.clone()))
            .await
    }
}

#[async_trait]
impl SpanReader for Guarded<dyn SpanReader> {
    async fn get_trace(&self, trace_id: TraceId) -> Result<Option<Trace>, StorageError> {
        self.call("get_trace", || self.inner.get_trace(trace_id))
            .await
    }

    async fn get_services(&self) -> Result<Vec<String>, StorageError> {
        self.call("get_services", || self.inner.get_services())
            .await
    }

    async fn get_operations(&self, query: &OperationQuery) -> Result<Vec<Operation>, StorageError> {
        self.call("get_operations", || self.inner.get_operations(query))
            .await
    }

    async fn find_traces(&self, query: &TraceQuery) -> Result<Vec<Trace>, StorageError> {
        self.call("find_traces", || self.inner.find_traces(query))
            .await
    }

    async fn find_trace_ids(&self, query: &TraceQuery) -> Result<Vec<TraceId>, StorageError> {
        self.call("find_trace_ids", || self.inner.find_trace_ids(query))
            .await
    }
}

#[async_trait]
impl DependencyReader for Guarded<dyn DependencyReader> {
    async fn get_dependencies(
        &self,
        end_time: SystemTime,
        lookback: Duration,
    ) -> Result<Vec<DependencyLink>, StorageError> {
        self.call("get_dependencies", || {
            self.inner.get_dependencies(end_time, lookback)
        })
        .await
    }
}

#[async_trait]
impl SamplingStore for Guarded<dyn SamplingStore> {
    async fn insert_throughput(
        &self,
        bucket: SystemTime,
        throughput: Vec<Throughput>,
    ) -> Result<(), StorageError> {
        self.call("insert_throughput", || {
            self.inner.insert_throughput(bucket, throughput.clone())
        })
        .await
    }

    async fn get_throughput(
        &self,
        start: SystemTime,
        end: SystemTime,
    ) -> Result<Vec<(SystemTime, Throughput)>, StorageError> {
        self.call("get_throughput", || self.inner.get_throughput(start, end))
            .await
    }

    async fn insert_probabilities(
        &self,
        at: SystemTime,
        probabilities: ServiceProbabilities,
    ) -> Result<(), StorageError> {
        self.call("insert_probabilities", || {
            self.inner.insert_probabilities(at, probabilities.clone())
        })
        .await
    }

    async fn get_latest_probabilities(&self) -> Result<Option<ServiceProbabilities>, StorageError> {
        self.call("get_latest_probabilities", || {
            self.inner.get_latest_probabilities()
        })
        .await
    }

    // Leases are not retried: a retried acquire after a lost answer could
    // report "not acquired" for a lease this holder got.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<bool, StorageError> {
        let once = Guarded {
            policy: Policy {
                retries: 0,
                ..self.policy
            },
            inner: Arc::clone(&self.inner),
            observer: self.observer.clone(),
        };
        once.call("acquire_lease", || {
            self.inner.acquire_lease(name, holder, ttl, now)
        })
        .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StorageError> {
        self.call("release_lease", || self.inner.release_lease(name, holder))
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// Fails the first `failures` reads with `error`, then answers.
    struct Flaky {
        failures: u32,
        calls: AtomicU32,
        error: fn() -> StorageError,
        delay: Duration,
    }

    #[async_trait]
    impl SpanReader for Flaky {
        async fn get_trace(&self, _: TraceId) -> Result<Option<Trace>, StorageError> {
            Ok(None)
        }
        async fn get_services(&self) -> Result<Vec<String>, StorageError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            if n < self.failures {
                Err((self.error)())
            } else {
                Ok(vec!["svc".into()])
            }
        }
        async fn get_operations(&self, _: &OperationQuery) -> Result<Vec<Operation>, StorageError> {
            Ok(Vec::new())
        }
        async fn find_traces(&self, _: &TraceQuery) -> Result<Vec<Trace>, StorageError> {
            Ok(Vec::new())
        }
        async fn find_trace_ids(&self, _: &TraceQuery) -> Result<Vec<TraceId>, StorageError> {
            Ok(Vec::new())
        }
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(&'static str, Outcome)>>);

    impl CallObserver for Recorder {
        fn observe(&self, operation: &'static str, _: Duration, outcome: Outcome) {
            self.0.lock().unwrap().push((operation, outcome));
        }
    }

    fn guarded(flaky: Flaky, policy: Policy) -> (Guarded<dyn SpanReader>, Arc<Recorder>) {
        let recorder = Arc::new(Recorder::default());
        let inner: Arc<dyn SpanReader> = Arc::new(flaky);
        let observer: Arc<dyn CallObserver> = recorder.clone();
        (Guarded::new(inner, policy, Some(observer)), recorder)
    }

    fn unavailable() -> StorageError {
        StorageError::unavailable_msg("overloaded")
    }

    fn invalid() -> StorageError {
        StorageError::InvalidQuery("bad".into())
    }

    #[tokio::test]
    async fn unavailable_errors_are_retried_until_success() {
        let flaky = Flaky {
            failures: 2,
            calls: AtomicU32::new(0),
            error: unavailable,
            delay: Duration::ZERO,
        };
        let policy = Policy {
            retries: 3,
            backoff: Duration::from_millis(1),
            ..Policy::default()
        };
        let (store, recorder) = guarded(flaky, policy);
        assert_eq!(store.get_services().await.unwrap(), ["svc"]);
        assert_eq!(
            *recorder.0.lock().unwrap(),
            [
                ("get_services", Outcome::Retried),
                ("get_services", Outcome::Retried),
                ("get_services", Outcome::Ok)
            ]
        );
    }

    #[tokio::test]
    async fn other_errors_and_exhausted_retries_fail() {
        let policy = Policy {
            retries: 1,
            backoff: Duration::from_millis(1),
            ..Policy::default()
        };
        let (store, recorder) = guarded(
            Flaky {
                failures: 5,
                calls: AtomicU32::new(0),
                error: invalid,
                delay: Duration::ZERO,
            },
            policy,
        );
        assert!(matches!(
            store.get_services().await,
            Err(StorageError::InvalidQuery(_))
        ));
        assert_eq!(
            *recorder.0.lock().unwrap(),
            [("get_services", Outcome::Failed)]
        );
        let (store, _) = guarded(
            Flaky {
                failures: 5,
                calls: AtomicU32::new(0),
                error: unavailable,
                delay: Duration::ZERO,
            },
            policy,
        );
        assert!(matches!(
            store.get_services().await,
            Err(StorageError::Unavailable { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_calls_time_out() {
        let (store, _) = guarded(
            Flaky {
                failures: 0,
                calls: AtomicU32::new(0),
                error: unavailable,
                delay: Duration::from_secs(60),
            },
            Policy {
                timeout: Duration::from_secs(1),
                ..Policy::default()
            },
        );
        let err = store.get_services().await.unwrap_err();
        assert!(err.to_string().contains("timed out after 1s"), "{err}");
    }
}
