//! The storage contract: traits every span store implements, the query types
//! they take, and (behind the `testsuite` feature) the conformance suite every
//! backend runs so they all answer the same way.

pub mod archive;
pub mod decorators;
mod dependencies;
mod error;
mod query;
mod sampling;
mod traits;

#[cfg(feature = "testsuite")]
pub mod testsuite;

pub use archive::{Archive, WithArchive};
pub use dependencies::{DependencyCounter, compute_dependencies};
pub use error::{BoxError, Chain, StorageError};
pub use query::{DEFAULT_NUM_TRACES, Operation, OperationQuery, TraceQuery, span_matches};
pub use sampling::{Lease, SamplingStore, ServiceProbabilities, Throughput};
pub use traits::{DependencyReader, DependencyWriter, SpanReader, SpanWriter};

pub use dedupe::dedupe_spans;
mod dedupe;
