//! Index management without cron glue: templates, lifecycle policies,
//! rollover and deletion of old indices. `spoor-es-index` calls these.
use std::time::{Duration, SystemTime};

use elasticsearch::http::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::client::{EsClient, EsError};
use crate::indices::IndexLayout;
use crate::mapping::{Flavor, IndexKind, TemplateParams, template, template_name};

/// Puts the four index templates.
pub async fn put_templates(
    client: &EsClient,
    flavor: Flavor,
    params: &TemplateParams,
) -> Result<(), EsError> {
    let api = if flavor.composable() {
        "_index_template"
    } else {
        "_template"
    };
    for kind in IndexKind::ALL {
        let name = template_name(kind, &params.prefix);
        client
            .request(
                Method::Put,
                &format!("/{api}/{name}"),
                &[],
                Some(template(flavor, kind, params)),
            )
            .await?;
    }
    Ok(())
}

/// A lifecycle policy that rolls the write index over at `rollover_age`
/// and deletes indices `delete_after` after their rollover.
pub fn lifecycle_policy(
    flavor: Flavor,
    layout: &IndexLayout,
    rollover_age: Duration,
    delete_after: Duration,
) -> Json {
    let age = |d: Duration| format!("{}s", d.as_secs());
    match flavor {
        Flavor::OpenSearch => json!({"policy": {
            "description": "Spoor: roll over span and service indices, delete old ones",
            "default_state": "hot",
            "states": [
                {"name": "hot",
                 "actions": [{"rollover": {"min_index_age": age(rollover_age)}}],
                 "transitions": [{"state_name": "delete", "conditions": {"min_index_age": age(delete_after)}}]},
                {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
            ],
            "ism_template": [{
                "index_patterns": IndexKind::ALL.map(|k| format!("{}*", layout.base(k))),
                "priority": 100,
            }],
        }}),
        _ => json!({"policy": {"phases": {
            "hot": {"min_age": "0ms", "actions": {"rollover": {"max_age": age(rollover_age)}}},
            "delete": {"min_age": age(delete_after), "actions": {"delete": {}}},
        }}}),
    }
}

/// Puts the lifecycle policy under `name` (ILM or ISM).
pub async fn put_lifecycle_policy(
    client: &EsClient,
    flavor: Flavor,
    name: &str,
    policy: Json,
) -> Result<(), EsError> {
    let path = match flavor {
        Flavor::OpenSearch => format!("/_plugins/_ism/policies/{name}"),
        _ => format!("/_ilm/policy/{name}"),
    };
    client
        .request(Method::Put, &path, &[], Some(policy))
        .await?;
    Ok(())
}

/// The first index of each rollover family, `<base>000001`, with the read
/// alias and the write alias pointing at it; kept when it already exists.
pub async fn init_rollover(client: &EsClient, layout: &IndexLayout) -> Result<(), EsError> {
    for kind in IndexKind::ALL {
        let (read, write) = (layout.read_alias(kind), layout.write_alias(kind));
        let (status, _) = client
            .request_status(Method::Get, &format!("/_alias/{write}"), &[], None)
            .await?;
        if status == StatusCode::OK {
            continue;
        }
        let index = format!("{}000001", layout.base(kind));
        client
            .request(
                Method::Put,
                &format!("/{index}"),
                &[],
                Some(json!({"aliases": {
                    read: {},
                    write: {"is_write_index": true},
                }})),
            )
            .await?;
    }
    Ok(())
}

/// Starts a new write index for every family whose current one is older
/// than `max_age` (zero: unconditionally); the read alias grows to include it.
pub async fn rollover(
    client: &EsClient,
    layout: &IndexLayout,
    max_age: Duration,
) -> Result<Vec<String>, EsError> {
    let mut rolled = Vec::new();
    for kind in IndexKind::ALL {
        let write = layout.write_alias(kind);
        let body = if max_age.is_zero() {
            json!({})
        } else {
            json!({"conditions": {"max_age": format!("{}s", max_age.as_secs())}})
        };
        let answer = client
            .request(
                Method::Post,
                &format!("/{write}/_rollover"),
                &[],
                Some(body),
            )
            .await?;
        if answer["rolled_over"] == true {
            let new_index = answer["new_index"].as_str().unwrap_or_default().to_string();
            client
                .request(
                    Method::Post,
                    "/_aliases",
                    &[],
                    Some(json!({"actions": [{"add": {
                        "index": new_index,
                        "alias": layout.read_alias(kind),
                    }}]})),
                )
                .await?;
            rolled.push(new_index);
        }
    }
    Ok(rolled)
}

/// The dated indices to delete: those whose date is more than `keep` before `now`.
pub fn expired_indices(
    layout: &IndexLayout,
    names: &[String],
    keep: Duration,
    now: SystemTime,
) -> Vec<String> {
    let cutoff = now - keep;
    names
        .iter()
        .filter(|name| {
            IndexKind::ALL.iter().any(|&kind| {
                layout
                    .index_date(kind, name)
                    .is_some_and(|date| date < cutoff)
            })
        })
        .cloned()
        .collect()
}

/// Deletes dated indices older than `keep`; returns their names.
pub async fn delete_old_indices(
    client: &EsClient,
    layout: &IndexLayout,
    keep: Duration,
) -> Result<Vec<String>, EsError> {
    let listing = client
        .request(
            Method::Get,
            &format!("/_cat/indices/{}jaeger-*", layout.prefix),
            &[("format", "json"), ("h", "index")],
            None,
        )
        .await?;
    let names: Vec<String> = listing
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| row["index"].as_str().map(str::to_string))
        .collect();
    let expired = expired_indices(layout, &names, keep, SystemTime::now());
    for chunk in expired.chunks(50) {
        client
            .request(Method::Delete, &format!("/{}", chunk.join(",")), &[], None)
            .await?;
    }
    Ok(expired)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: &str) -> SystemTime {
        chrono::DateTime::parse_from_rfc3339(&format!("{d}T00:00:00Z"))
            .unwrap()
            .into()
    }

    #[test]
    fn indices_older_than_the_retention_are_expired() {
        let layout = IndexLayout {
            prefix: "p-".into(),
            ..IndexLayout::default()
        };
        let names: Vec<String> = [
            "p-jaeger-span-2026-11-20",
            "p-jaeger-span-2026-11-23",
            "p-jaeger-service-2026-11-19",
            "p-jaeger-dependencies-2026-11-21",
            "p-jaeger-span-000001",
            "other-jaeger-span-2026-01-01",
            "p-jaeger-leases",
        ]
        .map(String::from)
        .to_vec();
        let got = expired_indices(
            &layout,
            &names,
            Duration::from_secs(2 * 86_400),
            day("2026-11-24"),
        );
        assert_eq!(
            got,
            [
                "p-jaeger-span-2026-11-20",
                "p-jaeger-service-2026-11-19",
                "p-jaeger-dependencies-2026-11-21"
            ]
        );
    }

    #[test]
    fn ilm_and_ism_policies_roll_over_and_delete() {
        let layout = IndexLayout::default();
        let ilm = lifecycle_policy(
            Flavor::Elasticsearch8,
            &layout,
            Duration::from_secs(86_400),
            Duration::from_secs(7 * 86_400),
        );
        assert_eq!(
            ilm["policy"]["phases"]["hot"]["actions"]["rollover"]["max_age"],
            "86400s"
        );
        assert_eq!(ilm["policy"]["phases"]["delete"]["min_age"], "604800s");
        let ism = lifecycle_policy(
            Flavor::OpenSearch,
            &layout,
            Duration::from_secs(3600),
            Duration::from_secs(7200),
        );
        let states = ism["policy"]["states"].as_array().unwrap();
        assert_eq!(
            states[0]["actions"][0]["rollover"]["min_index_age"],
            "3600s"
        );
        assert_eq!(
            states[0]["transitions"][0]["conditions"]["min_index_age"],
            "7200s"
        );
        assert_eq!(
            ism["policy"]["ism_template"][0]["index_patterns"][0],
            "jaeger-span-*"
        );
    }
}
