//! Reconciling one `Spoor` resource: its rendered objects are applied with
//! server-side apply (field manager `spoor-operator`), objects it no longer
//! renders are deleted, and the status says what happened. Deleting the
//! resource deletes its objects through their owner references.
use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::ApiResource;
use kube::{Client, ResourceExt};
use serde_json::{Value as Json, json};

use crate::crd::{Condition, Spoor, SpoorStatus};
use crate::render::{RenderError, render};

pub const FIELD_MANAGER: &str = "spoor-operator";

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("rendered an object of unknown kind {0}")]
    UnknownKind(String),
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// The kinds an instance is made of, as k8s-openapi names them.
pub fn kinds() -> Vec<ApiResource> {
    vec![
        ApiResource::erase::<ServiceAccount>(&()),
        ApiResource::erase::<ConfigMap>(&()),
        ApiResource::erase::<Service>(&()),
        ApiResource::erase::<Deployment>(&()),
        ApiResource::erase::<DaemonSet>(&()),
        ApiResource::erase::<PodDisruptionBudget>(&()),
        ApiResource::erase::<HorizontalPodAutoscaler>(&()),
        ApiResource::erase::<Ingress>(&()),
        ApiResource::erase::<Job>(&()),
        ApiResource::erase::<CronJob>(&()),
    ]
}

fn resource_of(object: &Json) -> Result<ApiResource, ReconcileError> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    kinds()
        .into_iter()
        .find(|r| r.api_version == api_version && r.kind == kind)
        .ok_or_else(|| ReconcileError::UnknownKind(format!("{api_version}/{kind}")))
}

/// What one reconcile did.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub applied: Vec<String>,
    pub deleted: Vec<String>,
}

/// Brings the cluster in line with `spoor` and records it in its status.
pub async fn reconcile(client: &Client, spoor: &Spoor) -> Result<Outcome, ReconcileError> {
    let namespace = spoor.namespace().unwrap_or_else(|| "default".into());
    let name = spoor.name_any();
    let mut rendered = spoor.clone();
    rendered.metadata.namespace = Some(namespace.clone());
    let result = apply_all(client, &namespace, &name, &rendered).await;
    let status = match &result {
        Ok(outcome) => SpoorStatus {
            phase: "Running".into(),
            conditions: vec![condition(
                spoor,
                "True",
                "Reconciled",
                &format!(
                    "{} objects applied, {} deleted",
                    outcome.applied.len(),
                    outcome.deleted.len()
                ),
            )],
            observed_generation: spoor.metadata.generation,
        },
        Err(e) => SpoorStatus {
            phase: "Failed".into(),
            conditions: vec![condition(spoor, "False", "ReconcileFailed", &e.to_string())],
            observed_generation: spoor.metadata.generation,
        },
    };
    let api: Api<Spoor> = Api::namespaced(client.clone(), &namespace);
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await?;
    result
}

/// The Ready condition; its transition time moves only when its status
/// does, so a reconcile that finds nothing new writes an unchanged status
/// (which makes no watch event, and no reconcile after it).
fn condition(spoor: &Spoor, status: &str, reason: &str, message: &str) -> Condition {
    let since = spoor
        .status
        .iter()
        .flat_map(|s| &s.conditions)
        .find(|c| c.kind == "Ready" && c.status == status)
        .and_then(|c| c.last_transition_time.clone());
    Condition {
        kind: "Ready".into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: since.or_else(|| {
            Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        }),
    }
}

async fn apply_all(
    client: &Client,
    namespace: &str,
    name: &str,
    spoor: &Spoor,
) -> Result<Outcome, ReconcileError> {
    let mut outcome = Outcome::default();
    let mut wanted = BTreeSet::new();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for object in render(spoor)? {
        let resource = resource_of(&object)?;
        let object_name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        api.patch(&object_name, &params, &Patch::Apply(&object))
            .await?;
        let key = format!("{}/{object_name}", resource.kind);
        wanted.insert(key.clone());
        outcome.applied.push(key);
    }
    // objects of this instance that the spec no longer calls for
    let selector =
        format!("app.kubernetes.io/instance={name},app.kubernetes.io/managed-by={FIELD_MANAGER}");
    for resource in kinds() {
        let kind = &resource.kind;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        for existing in api.list(&ListParams::default().labels(&selector)).await? {
            let existing_name = existing.name_any();
            if !wanted.contains(&format!("{kind}/{existing_name}")) {
                api.delete(&existing_name, &DeleteParams::background())
                    .await?;
                outcome.deleted.push(format!("{kind}/{existing_name}"));
            }
        }
    }
    Ok(outcome)
}
