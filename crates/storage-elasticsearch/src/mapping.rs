//! Index templates for the four Jaeger indices, as Jaeger writes them for
//! ES 7 (legacy `_template`), ES 8 and OpenSearch 2 (composable
//! `_index_template`), so a cluster set up by either reads the other's data.
use serde_json::{Value as Json, json};

/// The server family, which decides the template API and lifecycle settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Elasticsearch7,
    Elasticsearch8,
    OpenSearch,
}

/// A server this backend does not speak to.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum FlavorError {
    #[error("unreadable server version {0:?}")]
    UnreadableVersion(String),
    #[error("Elasticsearch {0} is not supported (7 or newer, or OpenSearch)")]
    Unsupported(String),
}

impl Flavor {
    /// From `GET /` : `version.number` and `version.distribution`.
    pub fn detect(version_number: &str, distribution: Option<&str>) -> Result<Flavor, FlavorError> {
        if distribution == Some("opensearch") {
            return Ok(Flavor::OpenSearch);
        }
        let major: u32 = version_number
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .ok_or_else(|| FlavorError::UnreadableVersion(version_number.to_string()))?;
        match major {
            7 => Ok(Flavor::Elasticsearch7),
            8.. => Ok(Flavor::Elasticsearch8),
            _ => Err(FlavorError::Unsupported(version_number.to_string())),
        }
    }

    /// Composable templates (`_index_template`) rather than legacy ones.
    pub fn composable(self) -> bool {
        self != Flavor::Elasticsearch7
    }
}

/// The four index families Jaeger keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexKind {
    Span,
    Service,
    Dependencies,
    Sampling,
}

impl IndexKind {
    pub const ALL: [IndexKind; 4] = [
        IndexKind::Span,
        IndexKind::Service,
        IndexKind::Dependencies,
        IndexKind::Sampling,
    ];

    pub fn name(self) -> &'static str {
        match self {
            IndexKind::Span => "jaeger-span",
            IndexKind::Service => "jaeger-service",
            IndexKind::Dependencies => "jaeger-dependencies",
            IndexKind::Sampling => "jaeger-sampling",
        }
    }

    fn priority(self) -> u32 {
        match self {
            IndexKind::Span => 500,
            IndexKind::Service => 501,
            IndexKind::Dependencies => 502,
            IndexKind::Sampling => 503,
        }
    }
}

/// What a template is rendered with.
#[derive(Clone, Debug)]
pub struct TemplateParams {
    /// With its trailing `-` when set (`prod-`), empty for none.
    pub prefix: String,
    pub shards: u32,
    pub replicas: u32,
    /// Lifecycle policy name when ILM (ES) or ISM (OpenSearch) manages rollover.
    pub lifecycle_policy: Option<String>,
}

/// The template body for `kind`, ready for `_template/<name>` (ES 7) or
/// `_index_template/<name>` (ES 8, OpenSearch).
pub fn template(flavor: Flavor, kind: IndexKind, p: &TemplateParams) -> Json {
    let alias = |suffix: &str| format!("{}{}-{suffix}", p.prefix, kind.name());
    let mut settings = json!({
        "index.number_of_shards": p.shards,
        "index.number_of_replicas": p.replicas,
        "index.mapping.nested_fields.limit": 50,
        "index.requests.cache.enable": true,
    });
    let mut body = serde_json::Map::new();
    if let Some(policy) = &p.lifecycle_policy {
        body.insert("aliases".into(), json!({ alias("read"): {} }));
        match flavor {
            Flavor::OpenSearch => {
                settings["plugins.index_state_management.rollover_alias"] = json!(alias("write"));
            }
            _ => {
                settings["lifecycle"] = json!({"name": policy, "rollover_alias": alias("write")});
            }
        }
    }
    body.insert("settings".into(), settings);
    body.insert("mappings".into(), mappings(kind));
    if flavor.composable() {
        json!({
            "priority": kind.priority(),
            "index_patterns": format!("{}{}-*", p.prefix, kind.name()),
            "template": body,
        })
    } else {
        body.insert(
            "index_patterns".into(),
            json!(format!("*{}{}-*", p.prefix, kind.name())),
        );
        Json::Object(body)
    }
}

/// The template's name on the server.
pub fn template_name(kind: IndexKind, prefix: &str) -> String {
    format!("{prefix}{}", kind.name())
}

fn keyword() -> Json {
    json!({"type": "keyword", "ignore_above": 256})
}

fn nested_key_values() -> Json {
    json!({
        "type": "nested",
        "dynamic": false,
        "properties": {"key": keyword(), "value": keyword(), "type": keyword()},
    })
}

fn dynamic_templates() -> Json {
    json!([
        {"span_tags_map": {"mapping": keyword(), "path_match": "tag.*"}},
        {"process_tags_map": {"mapping": keyword(), "path_match": "process.tag.*"}},
    ])
}

fn mappings(kind: IndexKind) -> Json {
    match kind {
        IndexKind::Span => json!({
            "dynamic_templates": dynamic_templates(),
            "properties": {
                "traceID": keyword(),
                "parentSpanID": keyword(),
                "spanID": keyword(),
                "operationName": keyword(),
                "startTime": {"type": "long"},
                "startTimeMillis": {"type": "date", "format": "epoch_millis"},
                "duration": {"type": "long"},
                "flags": {"type": "integer"},
                "logs": {
                    "type": "nested",
                    "dynamic": false,
                    "properties": {
                        "timestamp": {"type": "long"},
                        "fields": nested_key_values(),
                    },
                },
                "process": {
                    "properties": {
                        "serviceName": keyword(),
                        "tag": {"type": "object"},
                        "tags": nested_key_values(),
                    },
                },
                "references": {
                    "type": "nested",
                    "dynamic": false,
                    "properties": {
                        "refType": keyword(),
                        "traceID": keyword(),
                        "spanID": keyword(),
                    },
                },
                "tag": {"type": "object"},
                "tags": nested_key_values(),
            },
        }),
        IndexKind::Service => json!({
            "dynamic_templates": dynamic_templates(),
            "properties": {
                "serviceName": keyword(),
                "operationName": keyword(),
                // Spoor's addition: operations by span kind
                "spanKind": keyword(),
            },
        }),
        IndexKind::Dependencies | IndexKind::Sampling => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jaegers(name: &str) -> Json {
        let path = format!(
            "{}/../../testdata/elasticsearch/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn params() -> TemplateParams {
        TemplateParams {
            prefix: "test-".into(),
            shards: 3,
            replicas: 3,
            lifecycle_policy: Some("jaeger-test-policy".into()),
        }
    }

    /// Jaeger's rendering with Spoor's two deliberate differences applied:
    /// the service index maps `spanKind`, and the ES 7 dependencies and
    /// sampling patterns carry the prefix (Jaeger's match every prefix, so
    /// two installs with different prefixes would share aliases).
    fn expected(kind: IndexKind, version: u32) -> Json {
        let mut want = jaegers(&format!("{}-{version}.json", kind.name()));
        let body = if version == 7 {
            &mut want
        } else {
            &mut want["template"]
        };
        if kind == IndexKind::Service {
            body["mappings"]["properties"]["spanKind"] = keyword();
        }
        if version == 7 {
            want["index_patterns"] = json!(format!("*test-{}-*", kind.name()));
        }
        want
    }

    #[test]
    fn es7_templates_match_jaegers() {
        for kind in IndexKind::ALL {
            assert_eq!(
                template(Flavor::Elasticsearch7, kind, &params()),
                expected(kind, 7),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn es8_templates_match_jaegers() {
        for kind in IndexKind::ALL {
            assert_eq!(
                template(Flavor::Elasticsearch8, kind, &params()),
                expected(kind, 8),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn span_mappings_are_jaegers_exactly() {
        let ours = template(Flavor::Elasticsearch8, IndexKind::Span, &params());
        assert_eq!(ours, jaegers("jaeger-span-8.json"));
    }

    #[test]
    fn opensearch_uses_ism_rollover_alias() {
        let t = template(Flavor::OpenSearch, IndexKind::Span, &params());
        let settings = &t["template"]["settings"];
        assert_eq!(
            settings["plugins.index_state_management.rollover_alias"],
            "test-jaeger-span-write"
        );
        assert!(settings.get("lifecycle").is_none());
        assert_eq!(t["index_patterns"], "test-jaeger-span-*");
    }

    #[test]
    fn without_lifecycle_there_are_no_aliases() {
        let p = TemplateParams {
            lifecycle_policy: None,
            prefix: String::new(),
            ..params()
        };
        let t = template(Flavor::Elasticsearch7, IndexKind::Span, &p);
        assert!(t.get("aliases").is_none());
        assert!(t["settings"].get("lifecycle").is_none());
        assert_eq!(t["index_patterns"], "*jaeger-span-*");
    }

    #[test]
    fn flavors_are_detected_from_the_root_endpoint() {
        assert_eq!(Flavor::detect("7.17.2", None), Ok(Flavor::Elasticsearch7));
        assert_eq!(Flavor::detect("8.13.0", None), Ok(Flavor::Elasticsearch8));
        assert_eq!(Flavor::detect("9.0.1", None), Ok(Flavor::Elasticsearch8));
        assert_eq!(
            Flavor::detect("2.11.0", Some("opensearch")),
            Ok(Flavor::OpenSearch)
        );
        assert_eq!(
            Flavor::detect("6.8.0", None),
            Err(FlavorError::Unsupported("6.8.0".into()))
        );
        assert!(Flavor::detect("x", None).is_err());
    }
}
