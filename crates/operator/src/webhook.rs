//! Sidecar injection: a mutating admission webhook for Deployments. A
//! Deployment annotated `sidecar.spoor.dev/inject` (or Jaeger's
//! `sidecar.jaegertracing.io/inject`) with `"true"` or an instance name, or
//! living in a namespace annotated so, gets the instance's agent container;
//! one that no longer asks for it loses it. The answer is a JSON patch, and
//! an already injected, unchanged Deployment gets an empty one (idempotent).
use base64::Engine;
use serde_json::{Value as Json, json};

use crate::crd::Spoor;
use crate::render::{RenderError, agent_container};

pub const INJECT: &str = "sidecar.spoor.dev/inject";
pub const JAEGER_INJECT: &str = "sidecar.jaegertracing.io/inject";
/// Set on the pod template of an injected Deployment: which instance.
pub const INJECTED: &str = "sidecar.spoor.dev/injected";
const SIDECAR: &str = "spoor-agent";

fn annotation<'a>(annotations: &'a Json, key: &str) -> Option<&'a str> {
    annotations.get(key).and_then(Json::as_str)
}

/// What the object (or failing that its namespace) asks for.
fn request<'a>(object: &'a Json, namespace_annotations: &'a Json) -> Option<&'a str> {
    let own = &object["metadata"]["annotations"];
    annotation(own, INJECT)
        .or_else(|| annotation(own, JAEGER_INJECT))
        .or_else(|| annotation(namespace_annotations, INJECT))
        .or_else(|| annotation(namespace_annotations, JAEGER_INJECT))
}

/// The instance a Deployment's request names: "true" means the only
/// instance of its namespace, or the only one anywhere; a name means that
/// instance, preferring the Deployment's namespace.
pub fn select<'a>(request: &str, namespace: &str, instances: &'a [Spoor]) -> Option<&'a Spoor> {
    let in_namespace = |s: &&Spoor| s.metadata.namespace.as_deref() == Some(namespace);
    match request.trim() {
        "" | "false" => None,
        "true" => {
            let local: Vec<&Spoor> = instances.iter().filter(in_namespace).collect();
            match (local.as_slice(), instances) {
                ([one], _) => Some(one),
                ([], [only]) => Some(only),
                _ => None,
            }
        }
        name => {
            let named = |s: &&Spoor| s.metadata.name.as_deref() == Some(name);
            instances
                .iter()
                .filter(in_namespace)
                .find(named)
                .or_else(|| instances.iter().find(named))
        }
    }
}

/// JSON patch operations that bring the Deployment in line with its request.
pub fn patch(
    deployment: &Json,
    namespace_annotations: &Json,
    instances: &[Spoor],
) -> Result<Vec<Json>, RenderError> {
    let namespace = deployment["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    let wanted =
        request(deployment, namespace_annotations).and_then(|r| select(r, namespace, instances));
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let existing = containers.iter().position(|c| c["name"] == SIDECAR);
    let base = "/spec/template/spec/containers";
    let marker = format!(
        "/spec/template/metadata/annotations/{}",
        INJECTED.replace('~', "~0").replace('/', "~1")
    );
    let has_annotations = deployment["spec"]["template"]["metadata"]["annotations"].is_object();
    Ok(match (wanted, existing) {
        (None, None) => Vec::new(),
        (None, Some(i)) => {
            let mut ops = vec![json!({"op": "remove", "path": format!("{base}/{i}")})];
            if annotation(
                &deployment["spec"]["template"]["metadata"]["annotations"],
                INJECTED,
            )
            .is_some()
            {
                ops.push(json!({"op": "remove", "path": marker}));
            }
            ops
        }
        (Some(instance), existing) => {
            let mut container = agent_container(instance, false)?;
            container.name = SIDECAR.into();
            let container = serde_json::to_value(container).expect("a container serializes");
            let name = instance.metadata.name.clone().unwrap_or_default();
            let mut ops = match existing {
                Some(i) if containers[i] == container => Vec::new(),
                Some(i) => vec![
                    json!({"op": "replace", "path": format!("{base}/{i}"), "value": container}),
                ],
                None => vec![json!({"op": "add", "path": format!("{base}/-"), "value": container})],
            };
            let marked = annotation(
                &deployment["spec"]["template"]["metadata"]["annotations"],
                INJECTED,
            );
            if marked != Some(name.as_str()) {
                if has_annotations {
                    ops.push(json!({"op": "add", "path": marker, "value": name}));
                } else {
                    ops.push(json!({"op": "add", "path": "/spec/template/metadata/annotations", "value": {INJECTED: name}}));
                }
            }
            ops
        }
    })
}

/// Answers an `admission.k8s.io/v1` AdmissionReview for a Deployment.
pub fn review(request: &Json, namespace_annotations: &Json, instances: &[Spoor]) -> Json {
    let uid = request["request"]["uid"].clone();
    let object = &request["request"]["object"];
    let mut response = json!({"uid": uid, "allowed": true});
    if request["request"]["kind"]["kind"] == "Deployment" && object.is_object() {
        let mut object = object.clone();
        if object["metadata"]["namespace"].is_null() {
            object["metadata"]["namespace"] = request["request"]["namespace"].clone();
        }
        match patch(&object, namespace_annotations, instances) {
            Ok(ops) if ops.is_empty() => {}
            Ok(ops) => {
                response["patchType"] = json!("JSONPatch");
                response["patch"] = json!(
                    base64::engine::general_purpose::STANDARD
                        .encode(serde_json::to_vec(&ops).expect("json"))
                );
            }
            // the Deployment is let through as it is: a broken instance
            // must not stop an application from rolling out
            Err(e) => {
                tracing::warn!(error = %e, "sidecar not injected");
                response["warnings"] = json!([format!("spoor sidecar not injected: {e}")]);
            }
        }
    }
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(name: &str, namespace: &str) -> Spoor {
        crate::parse(&format!(
            "apiVersion: spoor.dev/v1\nkind: Spoor\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec: {{strategy: production}}\n"
        ))
        .unwrap()
    }

    fn deployment(annotations: Json, containers: Json) -> Json {
        json!({
            "metadata": {"name": "shop", "namespace": "apps", "annotations": annotations},
            "spec": {"template": {"metadata": {"labels": {"app": "shop"}}, "spec": {"containers": containers}}},
        })
    }

    /// Applies a JSON patch (add with "-", replace, remove; the ops used here).
    fn apply(mut doc: Json, ops: &[Json]) -> Json {
        for op in ops {
            let path: Vec<String> = op["path"].as_str().unwrap()[1..]
                .split('/')
                .map(|p| p.replace("~1", "/").replace("~0", "~"))
                .collect();
            let (last, parents) = path.split_last().unwrap();
            let mut target = &mut doc;
            for p in parents {
                target = match target {
                    Json::Array(a) => &mut a[p.parse::<usize>().unwrap()],
                    other => &mut other[p.as_str()],
                };
            }
            match (op["op"].as_str().unwrap(), target) {
                ("add", Json::Array(a)) if last == "-" => a.push(op["value"].clone()),
                ("add" | "replace", Json::Array(a)) => {
                    a[last.parse::<usize>().unwrap()] = op["value"].clone()
                }
                ("add" | "replace", Json::Object(m)) => {
                    m.insert(last.clone(), op["value"].clone());
                }
                ("remove", Json::Array(a)) => {
                    a.remove(last.parse::<usize>().unwrap());
                }
                ("remove", Json::Object(m)) => {
                    m.remove(last);
                }
                (op, _) => panic!("unexpected {op}"),
            }
        }
        doc
    }

    #[test]
    fn annotated_deployments_get_the_agent_once() {
        let instances = [instance("tracing", "apps")];
        let d = deployment(
            json!({INJECT: "true"}),
            json!([{"name": "app", "image": "shop"}]),
        );
        let ops = patch(&d, &json!({}), &instances).unwrap();
        let injected = apply(d, &ops);
        let containers = injected["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[1]["name"], SIDECAR);
        assert!(
            containers[1]["args"][0]
                .as_str()
                .unwrap()
                .contains("tracing-collector.apps.svc:14250")
        );
        assert_eq!(
            injected["spec"]["template"]["metadata"]["annotations"][INJECTED],
            "tracing"
        );
        // idempotent: a second admission changes nothing
        assert!(patch(&injected, &json!({}), &instances).unwrap().is_empty());
    }

    #[test]
    fn jaegers_annotation_and_instance_names_are_honoured() {
        let instances = [
            instance("a", "apps"),
            instance("b", "apps"),
            instance("c", "other"),
        ];
        let by_name = deployment(json!({JAEGER_INJECT: "c"}), json!([]));
        let ops = patch(&by_name, &json!({}), &instances).unwrap();
        assert!(
            ops[0]["value"]["args"][0]
                .as_str()
                .unwrap()
                .contains("c-collector.other.svc")
        );
        // "true" with two instances in the namespace is ambiguous: nothing
        let ambiguous = deployment(json!({INJECT: "true"}), json!([]));
        assert!(
            patch(&ambiguous, &json!({}), &instances)
                .unwrap()
                .is_empty()
        );
        // the namespace's annotation names one
        let ops = patch(
            &deployment(json!({}), json!([])),
            &json!({INJECT: "b"}),
            &instances,
        )
        .unwrap();
        assert!(
            ops[0]["value"]["args"][0]
                .as_str()
                .unwrap()
                .contains("b-collector.apps.svc")
        );
        // and the Deployment can opt out
        assert!(
            patch(
                &deployment(json!({INJECT: "false"}), json!([])),
                &json!({INJECT: "b"}),
                &instances
            )
            .unwrap()
            .is_empty()
        );
    }

    #[test]
    fn removing_the_annotation_removes_the_sidecar() {
        let instances = [instance("tracing", "apps")];
        let d = deployment(json!({INJECT: "true"}), json!([{"name": "app"}]));
        let injected = apply(d.clone(), &patch(&d, &json!({}), &instances).unwrap());
        let mut unannotated = injected.clone();
        unannotated["metadata"]["annotations"] = json!({});
        let cleaned = apply(
            unannotated.clone(),
            &patch(&unannotated, &json!({}), &instances).unwrap(),
        );
        assert_eq!(
            cleaned["spec"]["template"]["spec"]["containers"],
            json!([{"name": "app"}])
        );
        assert!(
            cleaned["spec"]["template"]["metadata"]["annotations"]
                .get(INJECTED)
                .is_none()
        );
    }

    #[test]
    fn admission_reviews_come_back_with_a_base64_json_patch() {
        let instances = [instance("tracing", "apps")];
        let request = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                "namespace": "apps",
                "operation": "CREATE",
                "object": {"metadata": {"name": "shop", "annotations": {INJECT: "true"}},
                           "spec": {"template": {"spec": {"containers": [{"name": "app"}]}}}},
            },
        });
        let answer = review(&request, &json!({}), &instances);
        assert_eq!(answer["kind"], "AdmissionReview");
        assert_eq!(
            answer["response"]["uid"],
            "705ab4f5-6393-11e8-b7cc-42010a800002"
        );
        assert_eq!(answer["response"]["allowed"], true);
        assert_eq!(answer["response"]["patchType"], "JSONPatch");
        let ops: Vec<Json> = serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode(answer["response"]["patch"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(ops[0]["op"], "add");
        assert_eq!(ops[0]["path"], "/spec/template/spec/containers/-");
        // other kinds pass untouched
        let mut pod = request.clone();
        pod["request"]["kind"]["kind"] = json!("Pod");
        assert!(
            review(&pod, &json!({}), &instances)["response"]
                .get("patch")
                .is_none()
        );
    }

    #[test]
    fn a_broken_instance_lets_the_deployment_through_with_a_warning() {
        let broken = crate::parse(
            "apiVersion: spoor.dev/v1\nkind: Spoor\nmetadata: {name: tracing, namespace: apps}\n\
             spec: {strategy: production, volumeMounts: [{name: 7}]}\n",
        )
        .unwrap();
        let request = json!({"request": {
            "uid": "u", "namespace": "apps",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "object": {"metadata": {"name": "shop", "annotations": {INJECT: "true"}},
                       "spec": {"template": {"spec": {"containers": [{"name": "app"}]}}}},
        }});
        let response = &review(&request, &json!({}), &[broken])["response"];
        assert_eq!(response["allowed"], true);
        assert!(response.get("patch").is_none());
        assert!(
            response["warnings"][0]
                .as_str()
                .unwrap()
                .contains("volumeMounts"),
            "{response}"
        );
    }
}
