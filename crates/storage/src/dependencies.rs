use std::collections::HashMap;

use spoor_model::DependencyLink;

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
