use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use spoor_model::{DependencyLink, RefType, Span, SpanId};

use crate::{SpanReader, StorageError, TraceQuery};

/// Call counts between services: counted one call at a time from stored
/// spans (one per CHILD_OF reference whose parent span belongs to another
/// service), or summed from links a dependencies job wrote.
#[derive(Default)]
pub struct DependencyCounter {
    counts: HashMap<(String, String), (u64, String)>,
}

impl DependencyCounter {
    /// Counts a call from `parent` to `child`; calls within a service are not edges.
    pub fn add_call(&mut self, parent: &str, child: &str) {
        if parent != child {
            self.counts
                .entry((parent.to_string(), child.to_string()))
                .or_default()
                .0 += 1;
        }
    }

    /// Counts the calls of one trace's spans that started in `[start, end]`:
    /// each CHILD_OF reference to a span of another service is one call.
    pub fn add_trace(&mut self, spans: &[Span], start: SystemTime, end: SystemTime) {
        let service_of: HashMap<SpanId, &str> = spans
            .iter()
            .map(|s| (s.span_id, s.process.service_name.as_str()))
            .collect();
        for span in spans {
            if span.start_time < start || span.start_time > end {
                continue;
            }
            let parent = span
                .references
                .iter()
                .find(|r| r.ref_type == RefType::ChildOf && r.trace_id == span.trace_id)
                .and_then(|r| service_of.get(&r.span_id));
            if let Some(parent) = parent {
                self.add_call(parent, &span.process.service_name);
            }
        }
    }

    /// Adds a stored link's calls; the last non-empty source is kept.
    pub fn add_link(&mut self, link: DependencyLink) {
        let entry = self.counts.entry((link.parent, link.child)).or_default();
        entry.0 += link.call_count;
        if !link.source.is_empty() {
            entry.1 = link.source;
        }
    }

    /// The links, sorted by parent then child, as `DependencyReader` returns them.
    pub fn into_links(self) -> Vec<DependencyLink> {
        let mut links: Vec<DependencyLink> = self
            .counts
            .into_iter()
            .map(|((parent, child), (call_count, source))| DependencyLink {
                parent,
                child,
                call_count,
                source,
            })
            .collect();
        links.sort_by(|a, b| (&a.parent, &a.child).cmp(&(&b.parent, &b.child)));
        links
    }
}

/// The dependency links of the spans that started in `[end - window, end]`,
/// read through any `SpanReader`: what a dependencies job computes for
/// stores that keep links rather than derive them (Jaeger runs a Spark job
/// for this). Each service's traces are found (at most `per_service` of
/// them), each trace is read once, and its calls are counted.
pub async fn compute_dependencies(
    reader: &dyn SpanReader,
    end: SystemTime,
    window: Duration,
    per_service: usize,
) -> Result<Vec<DependencyLink>, StorageError> {
    let start = end - window;
    let mut seen = HashSet::new();
    let mut counter = DependencyCounter::default();
    for service in reader.get_services().await? {
        let query = TraceQuery {
            service_name: service,
            operation_name: None,
            tags: Vec::new(),
            start_time_min: start,
            start_time_max: end,
            duration_min: None,
            duration_max: None,
            num_traces: per_service,
        };
        for id in reader.find_trace_ids(&query).await? {
            if seen.insert(id)
                && let Some(trace) = reader.get_trace(id).await?
            {
                counter.add_trace(&trace.spans, start, end);
            }
        }
    }
    Ok(counter.into_links())
}
