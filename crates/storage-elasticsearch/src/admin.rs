//! Index management without cron glue: templates, lifecycle policies,
//! rollover, lookback and deletion of old indices. `spoor-es-index` calls
//! these.
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    for &kind in layout.families() {
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

/// Starts a new write index for every family whose current one meets
/// `conditions` (Elasticsearch's rollover conditions, such as
/// `{"max_age": "2d"}`; none: unconditionally); the read alias grows to
/// include it.
pub async fn rollover(
    client: &EsClient,
    layout: &IndexLayout,
    conditions: Option<&Json>,
) -> Result<Vec<String>, EsError> {
    let mut rolled = Vec::new();
    for &kind in layout.families() {
        let write = layout.write_alias(kind);
        let body = match conditions {
            Some(c) => json!({"conditions": c}),
            None => json!({}),
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
            layout.families().iter().any(|&kind| {
                layout
                    .index_date(kind, name)
                    .is_some_and(|date| date < cutoff)
            })
        })
        .cloned()
        .collect()
}

/// Deletes dated indices older than `keep` and, with rollover aliases,
/// rollover indices created longer than `keep` ago except the write ones
/// (Jaeger's es-index-cleaner, with and without `--rollover`); returns
/// their names.
pub async fn delete_old_indices(
    client: &EsClient,
    layout: &IndexLayout,
    keep: Duration,
) -> Result<Vec<String>, EsError> {
    let created = indices_created(client, layout).await?;
    let names: Vec<String> = created.iter().map(|(name, _)| name.clone()).collect();
    let now = SystemTime::now();
    let mut expired = expired_indices(layout, &names, keep, now);
    if layout.use_aliases {
        let writes = write_indices(client, layout).await?;
        expired.extend(old_rollover_indices(layout, &created, &writes, keep, now));
    }
    for chunk in expired.chunks(50) {
        client
            .request(Method::Delete, &format!("/{}", chunk.join(",")), &[], None)
            .await?;
    }
    Ok(expired)
}

/// Rollover indices (`<base>NNNNNN`) created more than `keep` before `now`,
/// never a family's current write index.
pub fn old_rollover_indices(
    layout: &IndexLayout,
    created: &[(String, SystemTime)],
    write_indices: &BTreeSet<String>,
    keep: Duration,
    now: SystemTime,
) -> Vec<String> {
    let cutoff = now - keep;
    created
        .iter()
        .filter(|(name, at)| {
            *at < cutoff
                && !write_indices.contains(name)
                && layout.families().iter().any(|&kind| {
                    name.strip_prefix(&layout.base(kind))
                        .is_some_and(|n| n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit()))
                })
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// The instance's indices with their creation times.
async fn indices_created(
    client: &EsClient,
    layout: &IndexLayout,
) -> Result<Vec<(String, SystemTime)>, EsError> {
    let listing = client
        .request(
            Method::Get,
            &format!("/_cat/indices/{}jaeger-*", layout.prefix),
            &[("format", "json"), ("h", "index,creation.date")],
            None,
        )
        .await?;
    Ok(listing
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| {
            let name = row["index"].as_str()?.to_string();
            let millis: u64 = row["creation.date"].as_str()?.parse().ok()?;
            Some((name, UNIX_EPOCH + Duration::from_millis(millis)))
        })
        .collect())
}

/// The indices an alias points at (none when it does not exist).
async fn alias_members(client: &EsClient, alias: &str) -> Result<BTreeSet<String>, EsError> {
    let (status, answer) = client
        .request_status(Method::Get, &format!("/_alias/{alias}"), &[], None)
        .await?;
    if status == StatusCode::NOT_FOUND {
        return Ok(BTreeSet::new());
    }
    Ok(answer
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default())
}

async fn write_indices(
    client: &EsClient,
    layout: &IndexLayout,
) -> Result<BTreeSet<String>, EsError> {
    let mut out = BTreeSet::new();
    for &kind in layout.families() {
        out.extend(alias_members(client, &layout.write_alias(kind)).await?);
    }
    Ok(out)
}

/// Takes rollover indices created more than `read_ttl` ago out of the read
/// aliases (Jaeger's es-rollover `lookback`): searches stop reaching them,
/// the data stays until the cleaner deletes it. Returns the indices taken out.
pub async fn lookback(
    client: &EsClient,
    layout: &IndexLayout,
    read_ttl: Duration,
) -> Result<Vec<String>, EsError> {
    let created = indices_created(client, layout).await?;
    let writes = write_indices(client, layout).await?;
    let old = old_rollover_indices(layout, &created, &writes, read_ttl, SystemTime::now());
    let mut removed = Vec::new();
    for &kind in layout.families() {
        let read = layout.read_alias(kind);
        let members = alias_members(client, &read).await?;
        let actions: Vec<Json> = old
            .iter()
            .filter(|index| members.contains(*index))
            .map(|index| json!({"remove": {"index": index, "alias": read}}))
            .collect();
        if actions.is_empty() {
            continue;
        }
        client
            .request(
                Method::Post,
                "/_aliases",
                &[],
                Some(json!({"actions": actions})),
            )
            .await?;
        removed.extend(
            actions
                .iter()
                .filter_map(|a| a["remove"]["index"].as_str().map(str::to_string)),
        );
    }
    Ok(removed)
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
    fn old_rollover_indices_spare_the_write_index_and_other_names() {
        let layout = IndexLayout {
            prefix: "p-".into(),
            use_aliases: true,
            ..IndexLayout::default()
        };
        let created: Vec<(String, SystemTime)> = [
            ("p-jaeger-span-000001", "2026-11-10"),
            ("p-jaeger-span-000002", "2026-11-20"),
            ("p-jaeger-span-000003", "2026-11-23"),
            ("p-jaeger-service-000001", "2026-11-01"),
            ("p-jaeger-span-2026-11-01", "2026-11-01"),
            ("q-jaeger-span-000001", "2026-11-01"),
            ("p-jaeger-span-00001", "2026-11-01"),
        ]
        .iter()
        .map(|(n, d)| (n.to_string(), day(d)))
        .collect();
        let writes: BTreeSet<String> = ["p-jaeger-service-000001".to_string()].into();
        let got = old_rollover_indices(
            &layout,
            &created,
            &writes,
            Duration::from_secs(3 * 86_400),
            day("2026-11-24"),
        );
        assert_eq!(got, ["p-jaeger-span-000001", "p-jaeger-span-000002"]);
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

/// Lookback and cleaning against a small HTTP endpoint that keeps indices,
/// their creation times and aliases as a cluster does, and answers the
/// `_cat/indices`, `_alias`, `_aliases` and delete requests they make.
#[cfg(test)]
mod over_http {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::{Path, State};
    use axum::routing::{delete, get, post};

    use super::*;
    use crate::client::ConnectOptions;

    #[derive(Default)]
    struct Cluster {
        /// index -> creation time in ms
        created: BTreeMap<String, u64>,
        /// alias -> indices
        aliases: BTreeMap<String, BTreeSet<String>>,
    }

    type Shared = Arc<Mutex<Cluster>>;

    async fn serve(cluster: Shared) -> EsClient {
        let app = Router::new()
            .route(
                "/_cat/indices/{pattern}",
                get(|State(c): State<Shared>| async move {
                    let rows: Vec<Json> = c
                        .lock()
                        .unwrap()
                        .created
                        .iter()
                        .map(|(i, ms)| json!({"index": i, "creation.date": ms.to_string()}))
                        .collect();
                    axum::Json(json!(rows))
                }),
            )
            .route(
                "/_alias/{alias}",
                get(
                    |State(c): State<Shared>, Path(alias): Path<String>| async move {
                        match c.lock().unwrap().aliases.get(&alias) {
                            Some(members) => {
                                let body: serde_json::Map<String, Json> = members
                                    .iter()
                                    .map(|i| (i.clone(), json!({"aliases": {alias.clone(): {}}})))
                                    .collect();
                                (StatusCode::OK, axum::Json(Json::Object(body)))
                            }
                            None => (StatusCode::NOT_FOUND, axum::Json(json!({"status": 404}))),
                        }
                    },
                ),
            )
            .route(
                "/_aliases",
                post(
                    |State(c): State<Shared>, axum::Json(body): axum::Json<Json>| async move {
                        let mut c = c.lock().unwrap();
                        for action in body["actions"].as_array().unwrap() {
                            let r = &action["remove"];
                            let removed = c
                                .aliases
                                .get_mut(r["alias"].as_str().unwrap())
                                .is_some_and(|m| m.remove(r["index"].as_str().unwrap()));
                            assert!(
                                removed,
                                "removing an alias the index does not have fails: {r}"
                            );
                        }
                        axum::Json(json!({"acknowledged": true}))
                    },
                ),
            )
            .route(
                "/{indices}",
                delete(
                    |State(c): State<Shared>, Path(indices): Path<String>| async move {
                        let mut c = c.lock().unwrap();
                        for index in indices.split(',') {
                            c.created.remove(index);
                            for members in c.aliases.values_mut() {
                                members.remove(index);
                            }
                        }
                        axum::Json(json!({"acknowledged": true}))
                    },
                )
                .put(
                    |State(c): State<Shared>,
                     Path(index): Path<String>,
                     axum::Json(body): axum::Json<Json>| async move {
                        let mut c = c.lock().unwrap();
                        c.created.insert(index.clone(), days_ago(0));
                        for alias in body["aliases"]
                            .as_object()
                            .into_iter()
                            .flatten()
                            .map(|(a, _)| a)
                        {
                            c.aliases
                                .entry(alias.clone())
                                .or_default()
                                .insert(index.clone());
                        }
                        axum::Json(json!({"acknowledged": true}))
                    },
                ),
            )
            .with_state(cluster);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        EsClient::connect(&ConnectOptions {
            urls: vec![format!("http://{addr}")],
            timeout: Duration::from_secs(5),
            ..ConnectOptions::default()
        })
        .unwrap()
    }

    fn days_ago(days: u64) -> u64 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        (now - Duration::from_secs(days * 86_400)).as_millis() as u64
    }

    /// Three generations of spans, the newest the write index.
    fn cluster() -> Shared {
        let mut c = Cluster::default();
        for (index, age) in [
            ("jaeger-span-000001", 10),
            ("jaeger-span-000002", 5),
            ("jaeger-span-000003", 0),
        ] {
            c.created.insert(index.into(), days_ago(age));
        }
        c.created
            .insert("jaeger-service-000001".into(), days_ago(30));
        let all = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
        c.aliases.insert(
            "jaeger-span-read".into(),
            all(&[
                "jaeger-span-000001",
                "jaeger-span-000002",
                "jaeger-span-000003",
            ]),
        );
        c.aliases
            .insert("jaeger-span-write".into(), all(&["jaeger-span-000003"]));
        c.aliases.insert(
            "jaeger-service-read".into(),
            all(&["jaeger-service-000001"]),
        );
        c.aliases.insert(
            "jaeger-service-write".into(),
            all(&["jaeger-service-000001"]),
        );
        Arc::new(Mutex::new(c))
    }

    fn layout() -> IndexLayout {
        IndexLayout {
            use_aliases: true,
            ..IndexLayout::default()
        }
    }

    #[tokio::test]
    async fn lookback_takes_old_indices_out_of_the_read_alias_only() {
        let state = cluster();
        let client = serve(Arc::clone(&state)).await;
        let removed = lookback(&client, &layout(), Duration::from_secs(3 * 86_400))
            .await
            .unwrap();
        assert_eq!(removed, ["jaeger-span-000001", "jaeger-span-000002"]);
        {
            let c = state.lock().unwrap();
            assert_eq!(
                c.aliases["jaeger-span-read"],
                ["jaeger-span-000003".to_string()].into()
            );
            assert_eq!(c.created.len(), 4, "nothing deleted");
            assert_eq!(
                c.aliases["jaeger-service-read"].len(),
                1,
                "the write index stays readable"
            );
        }
        // a second run finds nothing left to do
        let again = lookback(&client, &layout(), Duration::from_secs(3 * 86_400))
            .await
            .unwrap();
        assert!(again.is_empty());
    }

    #[tokio::test]
    async fn cleaning_deletes_old_rollover_indices_but_never_a_write_index() {
        let state = cluster();
        let client = serve(Arc::clone(&state)).await;
        let deleted = delete_old_indices(&client, &layout(), Duration::from_secs(7 * 86_400))
            .await
            .unwrap();
        assert_eq!(deleted, ["jaeger-span-000001"]);
        let c = state.lock().unwrap();
        let left: Vec<&String> = c.created.keys().collect();
        assert_eq!(
            left,
            [
                "jaeger-service-000001",
                "jaeger-span-000002",
                "jaeger-span-000003"
            ]
        );
    }

    #[tokio::test]
    async fn the_archive_gets_jaegers_one_rollover_family() {
        let c = Shared::default();
        let client = serve(Arc::clone(&c)).await;
        let layout = IndexLayout {
            use_aliases: true,
            archive: true,
            ..IndexLayout::default()
        };
        init_rollover(&client, &layout).await.unwrap();
        let c = c.lock().unwrap();
        assert_eq!(
            c.created.keys().collect::<Vec<_>>(),
            ["jaeger-span-archive-000001"]
        );
        assert_eq!(
            c.aliases.keys().collect::<Vec<_>>(),
            ["jaeger-span-archive-read", "jaeger-span-archive-write"]
        );
    }
}
