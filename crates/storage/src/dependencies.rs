use std::collections::HashMap;

use spoor_model::DependencyLink;

/// Call counts between services, for backends that compute the dependency
/// graph from stored spans: one call per CHILD_OF reference whose parent
/// span belongs to another service.
#[derive(Default)]
pub struct DependencyCounter {
    counts: HashMap<(String, String), u64>,
}

impl DependencyCounter {
    /// Counts a call from `parent` to `child`; calls within a service are not edges.
    pub fn add_call(&mut self, parent: &str, child: &str) {
        if parent != child {
            *self
                .counts
                .entry((parent.to_string(), child.to_string()))
                .or_default() += 1;
        }
    }

    /// The links, sorted by parent then child, as `DependencyReader` returns them.
    pub fn into_links(self) -> Vec<DependencyLink> {
        let mut links: Vec<DependencyLink> = self
            .counts
            .into_iter()
            .map(|((parent, child), call_count)| DependencyLink {
                parent,
                child,
                call_count,
                source: String::new(),
            })
            .collect();
        links.sort_by(|a, b| (&a.parent, &a.child).cmp(&(&b.parent, &b.child)));
        links
    }
}
