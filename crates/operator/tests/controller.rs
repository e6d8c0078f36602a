//! Reconcile against an in-process fake of the Kubernetes API (no API server
//! can run here): an axum app that keeps objects in memory and answers the
//! requests the operator makes — server-side apply, get, list by label,
//! create, replace with resourceVersion preconditions, delete, merge patches
//! of the status subresource, and watches that stream ADDED / MODIFIED /
//! DELETED events from a resourceVersion on. As a real API server does, a
//! write that changes nothing makes no event, and deleting an object deletes
//! the objects whose ownerReferences name it (the garbage collector).
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use kube::Client;
use serde_json::{Value as Json, json};
use spoor_operator::reconcile::reconcile;

struct Cluster {
    /// "<group/version>/<namespace>/<plural>/<name>" -> object
    objects: BTreeMap<String, Json>,
    /// plural resource names whose writes fail, to test failure status
    failing: Vec<String>,
    /// the last resourceVersion handed out, and every change by version
    version: u64,
    events: Vec<(u64, String, Json)>,
    changes: tokio::sync::watch::Sender<u64>,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            objects: BTreeMap::new(),
            failing: Vec::new(),
            version: 0,
            events: Vec::new(),
            changes: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl Cluster {
    /// Stores `object` under `key` as a new version, unless nothing changed.
    fn store(&mut self, key: &str, mut object: Json) -> Json {
        let kind = match self.objects.get(key) {
            Some(old) if without_version(old) == without_version(&object) => return old.clone(),
            Some(_) => "MODIFIED",
            None => "ADDED",
        };
        self.version += 1;
        object["metadata"]["resourceVersion"] = json!(self.version.to_string());
        self.objects.insert(key.to_string(), object.clone());
        self.record(kind, key, &object);
        object
    }

    /// Deletes `key` and, as the garbage collector would, what it owns.
    fn delete(&mut self, key: &str) -> bool {
        let Some(object) = self.objects.remove(key) else {
            return false;
        };
        self.version += 1;
        self.record("DELETED", key, &object);
        let uid = object["metadata"]["uid"].clone();
        let owned: Vec<String> = self
            .objects
            .iter()
            .filter(|(_, o)| {
                o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in owned {
            self.delete(&k);
        }
        true
    }

    fn record(&mut self, kind: &str, key: &str, object: &Json) {
        let event = json!({"type": kind, "object": object});
        self.events.push((self.version, key.to_string(), event));
        self.changes.send_replace(self.version);
    }
}

fn without_version(object: &Json) -> Json {
    let mut o = object.clone();
    if let Some(meta) = o["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
    }
    o
}

type Shared = Arc<Mutex<Cluster>>;

fn status(code: u16, reason: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                      "status": if code < 300 { "Success" } else { "Failure" },
                      "reason": reason, "message": reason, "code": code});
    (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response()
}

/// Where a request points: group/version, namespace, plural, name, subresource.
type Target = (String, String, String, Option<String>, Option<String>);

fn parse(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (gv, rest) = match parts.as_slice() {
        ["api", v, rest @ ..] => (v.to_string(), rest),
        ["apis", g, v, rest @ ..] => (format!("{g}/{v}"), rest),
        _ => return None,
    };
    match rest {
        ["namespaces", ns, plural] => Some((gv, ns.to_string(), plural.to_string(), None, None)),
        ["namespaces", ns, plural, name] => Some((
            gv,
            ns.to_string(),
            plural.to_string(),
            Some(name.to_string()),
            None,
        )),
        ["namespaces", ns, plural, name, sub] => Some((
            gv,
            ns.to_string(),
            plural.to_string(),
            Some(name.to_string()),
            Some(sub.to_string()),
        )),
        _ => None,
    }
}

fn labels_match(object: &Json, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|pair| {
        let (k, v) = pair.split_once('=').unwrap();
        object["metadata"]["labels"][k] == v
    })
}

/// A watch: the events under `prefix` after version `from`, one JSON per
/// line, then each new one as it happens; the stream stays open.
fn watch(cluster: Shared, prefix: String, selector: String, from: u64) -> Response {
    let changes = cluster.lock().unwrap().changes.subscribe();
    let stream = futures::stream::unfold(
        (cluster, changes, from),
        move |(cluster, mut changes, mut seen)| {
            let (prefix, selector) = (prefix.clone(), selector.clone());
            async move {
                loop {
                    let lines: String = {
                        let c = cluster.lock().unwrap();
                        let new: Vec<&(u64, String, Json)> =
                            c.events.iter().filter(|(v, _, _)| *v > seen).collect();
                        seen = c.version;
                        new.into_iter()
                            .filter(|(_, key, event)| {
                                key.starts_with(&prefix)
                                    && labels_match(&event["object"], &selector)
                            })
                            .map(|(_, _, event)| format!("{event}\n"))
                            .collect()
                    };
                    if !lines.is_empty() {
                        let chunk = Ok::<_, std::io::Error>(Bytes::from(lines));
                        return Some((chunk, (cluster, changes, seen)));
                    }
                    changes.changed().await.ok()?;
                }
            }
        },
    );
    (StatusCode::OK, axum::body::Body::from_stream(stream)).into_response()
}

async fn api(State(cluster): State<Shared>, method: Method, uri: Uri, body: Bytes) -> Response {
    let Some((gv, ns, plural, name, sub)) = parse(uri.path()) else {
        return status(404, "NotFound");
    };
    let query: BTreeMap<String, String> = uri.query().map(url_decode_pairs).unwrap_or_default();
    let prefix = format!("{gv}/{ns}/{plural}/");
    let selector = query.get("labelSelector").cloned().unwrap_or_default();
    if method == Method::GET && name.is_none() && query.contains_key("watch") {
        let from = query
            .get("resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        return watch(Arc::clone(&cluster), prefix, selector, from);
    }
    let mut c = cluster.lock().unwrap();
    match (method, name) {
        (Method::POST, None) => {
            let object: Json = serde_json::from_slice(&body).unwrap();
            let name = object["metadata"]["name"].as_str().unwrap().to_string();
            let key = format!("{prefix}{name}");
            if c.objects.contains_key(&key) {
                return status(409, "AlreadyExists");
            }
            let object = c.store(&key, object);
            (StatusCode::CREATED, axum::Json(object)).into_response()
        }
        // replace: the body's resourceVersion must be the stored one
        (Method::PUT, Some(name)) => {
            let object: Json = serde_json::from_slice(&body).unwrap();
            let key = format!("{prefix}{name}");
            let Some(current) = c.objects.get(&key) else {
                return status(404, "NotFound");
            };
            if object["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"] {
                return status(409, "Conflict");
            }
            axum::Json(c.store(&key, object)).into_response()
        }
        (Method::GET, None) => {
            let items: Vec<Json> = c
                .objects
                .iter()
                .filter(|(k, o)| k.starts_with(&prefix) && labels_match(o, &selector))
                .map(|(_, o)| o.clone())
                .collect();
            let version = c.version.to_string();
            axum::Json(json!({"apiVersion": gv, "kind": "List", "metadata": {"resourceVersion": version}, "items": items}))
                .into_response()
        }
        (Method::GET, Some(name)) => match c.objects.get(&format!("{prefix}{name}")) {
            Some(o) => axum::Json(o.clone()).into_response(),
            None => status(404, "NotFound"),
        },
        (Method::PATCH, Some(name)) => {
            if c.failing.contains(&plural) {
                return status(500, "InternalError");
            }
            let patch: Json = serde_json::from_slice(&body).unwrap();
            let key = format!("{prefix}{name}");
            let mut object = c.objects.get(&key).cloned().unwrap_or_else(|| {
                json!({"metadata": {"uid": format!("uid-{name}"), "name": name, "namespace": ns}})
            });
            if sub.as_deref() == Some("status") {
                object["status"] = patch["status"].clone();
            } else {
                // server-side apply by the one field manager: its object
                let uid = object["metadata"]["uid"].clone();
                let version = object["metadata"]["resourceVersion"].clone();
                object = patch;
                object["metadata"]["uid"] = uid;
                object["metadata"]["namespace"] = json!(ns);
                object["metadata"]["resourceVersion"] = version;
            }
            axum::Json(c.store(&key, object)).into_response()
        }
        (Method::DELETE, Some(name)) => match c.delete(&format!("{prefix}{name}")) {
            true => status(200, "Deleted"),
            false => status(404, "NotFound"),
        },
        _ => status(405, "MethodNotAllowed"),
    }
}

fn url_decode_pairs(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

async fn fake_cluster() -> (Client, Shared) {
    let cluster: Shared = Arc::default();
    let app = Router::new().fallback(api).with_state(Arc::clone(&cluster));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
    (Client::try_from(config).unwrap(), cluster)
}

fn spoor(spec: &str) -> spoor_operator::Spoor {
    let mut s = spoor_operator::parse(&format!(
        "apiVersion: spoor.dev/v1\nkind: Spoor\nmetadata: {{name: tracing, namespace: obs, uid: spoor-uid-1, generation: 1}}\n{spec}"
    ))
    .unwrap();
    s.metadata.generation = Some(1);
    s
}

const SPOOR_KEY: &str = "spoor.dev/v1/obs/spoors/tracing";

/// Creates or changes the resource, as `kubectl apply` would.
fn seed(cluster: &Shared, s: &spoor_operator::Spoor) {
    seed_at(cluster, SPOOR_KEY, s);
}

fn seed_at(cluster: &Shared, key: &str, s: &spoor_operator::Spoor) {
    let mut c = cluster.lock().unwrap();
    let mut object = serde_json::to_value(s).unwrap();
    if let Some(status) = c.objects.get(key).map(|o| o["status"].clone()) {
        object["status"] = status;
    }
    c.store(key, object);
}

fn names(cluster: &Shared) -> Vec<String> {
    cluster
        .lock()
        .unwrap()
        .objects
        .keys()
        .filter(|k| !k.contains("/spoors/") && !k.contains("/leases/"))
        .cloned()
        .collect()
}

#[tokio::test]
async fn create_update_and_status() {
    let (client, cluster) = fake_cluster().await;
    let all_in_one = spoor("spec: {}\n");
    seed(&cluster, &all_in_one);

    let outcome = reconcile(&client, &all_in_one).await.unwrap();
    assert!(outcome.applied.contains(&"Deployment/tracing".to_string()));
    assert!(outcome.deleted.is_empty());
    let created = names(&cluster);
    assert!(
        created.contains(&"apps/v1/obs/deployments/tracing".to_string()),
        "{created:?}"
    );
    assert!(created.contains(&"v1/obs/services/tracing-query".to_string()));
    {
        let c = cluster.lock().unwrap();
        // every object is owned by the resource: deleting it deletes them
        for (key, object) in c.objects.iter().filter(|(k, _)| !k.contains("/spoors/")) {
            let owner = &object["metadata"]["ownerReferences"][0];
            assert_eq!(owner["uid"], "spoor-uid-1", "{key}");
            assert_eq!(owner["controller"], true, "{key}");
        }
        let status = &c.objects[SPOOR_KEY]["status"];
        assert_eq!(status["phase"], "Running");
        assert_eq!(status["conditions"][0]["type"], "Ready");
        assert_eq!(status["conditions"][0]["status"], "True");
        assert_eq!(status["observedGeneration"], 1);
    }

    // a changed spec rolls the objects: production replaces the all-in-one
    let production = spoor("spec: {strategy: production, agent: {strategy: DaemonSet}}\n");
    let outcome = reconcile(&client, &production).await.unwrap();
    assert!(
        outcome.deleted.contains(&"Deployment/tracing".to_string()),
        "{outcome:?}"
    );
    assert!(
        outcome
            .deleted
            .contains(&"Service/tracing-agent".to_string())
    );
    let now = names(&cluster);
    assert!(now.contains(&"apps/v1/obs/deployments/tracing-collector".to_string()));
    assert!(now.contains(&"apps/v1/obs/daemonsets/tracing-agent-daemonset".to_string()));
    assert!(!now.contains(&"apps/v1/obs/deployments/tracing".to_string()));

    // reconciling again changes nothing
    let again = reconcile(&client, &production).await.unwrap();
    assert!(again.deleted.is_empty());
    assert_eq!(names(&cluster), now);
}

#[tokio::test]
async fn a_failed_apply_is_reported_in_the_status() {
    let (client, cluster) = fake_cluster().await;
    cluster.lock().unwrap().failing.push("deployments".into());
    let s = spoor("spec: {}\n");
    seed(&cluster, &s);
    let err = reconcile(&client, &s).await.unwrap_err();
    assert!(err.to_string().contains("kubernetes API"), "{err}");
    let c = cluster.lock().unwrap();
    let status = &c.objects[SPOOR_KEY]["status"];
    assert_eq!(status["phase"], "Failed");
    assert_eq!(status["conditions"][0]["status"], "False");
    assert_eq!(status["conditions"][0]["reason"], "ReconcileFailed");
}

/// `spoor-operator run` against the fake API: it takes the Lease, its
/// controller reconciles the seeded resource, the admin port reports it,
/// and the TLS webhook answers an AdmissionReview with a patch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_operator_leads_reconciles_and_injects() {
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::{X509, X509NameBuilder};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (client, cluster) = fake_cluster().await;
    seed(&cluster, &spoor("spec: {}\n"));

    // a self-signed certificate for the webhook
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "localhost").unwrap();
    let name = name.build();
    let mut cert = X509::builder().unwrap();
    cert.set_version(2).unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(&key).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    cert.sign(&key, MessageDigest::sha256()).unwrap();
    let tls = tempfile::tempdir().unwrap();
    let dir = tls.path();
    std::fs::write(dir.join("tls.crt"), cert.build().to_pem().unwrap()).unwrap();
    std::fs::write(dir.join("tls.key"), key.private_key_to_pem_pkcs8().unwrap()).unwrap();

    let options = spoor_operator::run::RunOptions {
        webhook_tls: Some((dir.join("tls.crt"), dir.join("tls.key"))),
        ..replica("replica-1", std::time::Duration::from_secs(15))
    };
    let (admin, webhook) = (options.admin_addr, options.webhook_addr);
    let running = tokio::spawn(spoor_operator::run::run(client, options));

    // the controller reconciles the resource from its initial list
    until("the resource is reconciled", || {
        has(&cluster, "apps/v1/obs/deployments/tracing")
    })
    .await;
    assert_eq!(lease_holder(&cluster), "replica-1");

    // admin: metrics
    assert_eq!(metric(admin, "spoor_operator_leader").await, 1.0);
    assert!(metric(admin, "spoor_operator_reconciles_total").await >= 1.0);

    // webhook over TLS
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u-1", "namespace": "obs",
                    "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                    "object": {"metadata": {"name": "shop", "annotations": {"sidecar.spoor.dev/inject": "true"}},
                               "spec": {"template": {"spec": {"containers": [{"name": "app"}]}}}}},
    })
    .to_string();
    let mut connector =
        openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls()).unwrap();
    connector.set_verify(openssl::ssl::SslVerifyMode::NONE);
    let ssl = connector
        .build()
        .configure()
        .unwrap()
        .into_ssl("localhost")
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(webhook).await.unwrap();
    let mut tls = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
    std::pin::Pin::new(&mut tls).connect().await.unwrap();
    let request = format!(
        "POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{review}",
        review.len()
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let body: Json = serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_eq!(body["response"]["uid"], "u-1");
    assert_eq!(body["response"]["patchType"], "JSONPatch");

    running.abort();
}

/// Polls `done` until it holds, failing after 20 s with `what`.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// One sample of the operator's admin /metrics.
async fn metric(admin: std::net::SocketAddr, name: &str) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(admin).await.unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

fn free_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn replica(identity: &str, lease: std::time::Duration) -> spoor_operator::run::RunOptions {
    spoor_operator::run::RunOptions {
        watch_namespaces: vec!["obs".into()],
        admin_addr: free_port(),
        webhook_addr: free_port(),
        webhook_tls: None,
        lease_namespace: "spoor-operator".into(),
        identity: identity.into(),
        lease_duration: lease,
    }
}

fn has(cluster: &Shared, key: &str) -> bool {
    cluster.lock().unwrap().objects.contains_key(key)
}

fn lease_holder(cluster: &Shared) -> Json {
    cluster.lock().unwrap().objects["coordination.k8s.io/v1/spoor-operator/leases/spoor-operator"]
        ["spec"]["holderIdentity"]
        .clone()
}

/// The running operator follows its watches: a changed spec is rolled out,
/// an owned Deployment deleted by hand comes back, its own status writes do
/// not make it reconcile again and again, and once the resource is deleted
/// (its objects going with it) nothing is re-created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_follows_changes_drift_and_deletion() {
    let (client, cluster) = fake_cluster().await;
    seed(&cluster, &spoor("spec: {}\n"));
    let options = replica("replica-1", std::time::Duration::from_secs(15));
    let admin = options.admin_addr;
    let running = tokio::spawn(spoor_operator::run::run(client, options));
    until("the all-in-one is created", || {
        has(&cluster, "apps/v1/obs/deployments/tracing")
    })
    .await;

    // a new generation of the spec: production replaces the all-in-one
    let mut production = spoor("spec: {strategy: production, agent: {strategy: DaemonSet}}\n");
    production.metadata.generation = Some(2);
    seed(&cluster, &production);
    until("production is rolled out", || {
        let c = cluster.lock().unwrap();
        c.objects
            .contains_key("apps/v1/obs/deployments/tracing-collector")
            && c.objects
                .contains_key("apps/v1/obs/daemonsets/tracing-agent-daemonset")
            && !c.objects.contains_key("apps/v1/obs/deployments/tracing")
            && c.objects[SPOOR_KEY]["status"]["observedGeneration"] == 2
    })
    .await;

    // drift: someone deletes an owned Deployment; the operator puts it back
    assert!(
        cluster
            .lock()
            .unwrap()
            .delete("apps/v1/obs/deployments/tracing-query")
    );
    until("the deleted Deployment is re-created", || {
        has(&cluster, "apps/v1/obs/deployments/tracing-query")
    })
    .await;

    // settled: nothing changes, so nothing is reconciled (status writes that
    // change nothing make no events)
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let before = metric(admin, "spoor_operator_reconciles_total").await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let after = metric(admin, "spoor_operator_reconciles_total").await;
    assert_eq!(after, before, "reconciling in a loop");

    // deleting the resource deletes its objects, and the operator does not
    // bring them back: a second resource is reconciled, the first stays gone
    assert!(cluster.lock().unwrap().delete(SPOOR_KEY));
    assert_eq!(
        names(&cluster),
        Vec::<String>::new(),
        "owned objects collected"
    );
    let other = spoor_operator::parse(
        "apiVersion: spoor.dev/v1\nkind: Spoor\nmetadata: {name: other, namespace: obs, uid: spoor-uid-2, generation: 1}\nspec: {}\n",
    )
    .unwrap();
    seed_at(&cluster, "spoor.dev/v1/obs/spoors/other", &other);
    until("the second resource is reconciled", || {
        has(&cluster, "apps/v1/obs/deployments/other")
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        names(&cluster).iter().all(|k| !k.contains("/tracing")),
        "{:?}",
        names(&cluster)
    );
    running.abort();
}

/// Two replicas: the first leads, the second waits as a follower; when the
/// leader stops renewing, the second takes the Lease and reconciles; when
/// another holder takes the Lease from it, it stops with an error (the
/// process exits and restarts as a follower).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_passes_to_the_second_replica() {
    let (client, cluster) = fake_cluster().await;
    seed(&cluster, &spoor("spec: {}\n"));
    let lease = std::time::Duration::from_secs(2);
    let first = replica("replica-1", lease);
    let second = replica("replica-2", lease);
    let second_admin = second.admin_addr;
    let leader = tokio::spawn(spoor_operator::run::run(client.clone(), first));
    until("replica-1 leads and reconciles", || {
        has(&cluster, "apps/v1/obs/deployments/tracing")
    })
    .await;
    assert_eq!(lease_holder(&cluster), "replica-1");

    let follower = tokio::spawn(spoor_operator::run::run(client, second));
    // several renewals later replica-1 still holds it and replica-2 waits
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(lease_holder(&cluster), "replica-1");
    assert_eq!(metric(second_admin, "spoor_operator_leader").await, 0.0);

    // replica-1 stops (its process dies): the Lease expires and passes on
    leader.abort();
    until("replica-2 takes the lease", || {
        lease_holder(&cluster) == "replica-2"
    })
    .await;
    let mut production = spoor("spec: {strategy: production}\n");
    production.metadata.generation = Some(2);
    seed(&cluster, &production);
    until("replica-2 reconciles", || {
        has(&cluster, "apps/v1/obs/deployments/tracing-collector")
    })
    .await;
    assert_eq!(metric(second_admin, "spoor_operator_leader").await, 1.0);

    // another holder takes the Lease: replica-2 gives up leading
    {
        let mut c = cluster.lock().unwrap();
        let key = "coordination.k8s.io/v1/spoor-operator/leases/spoor-operator";
        let mut lease = c.objects[key].clone();
        lease["spec"]["holderIdentity"] = json!("replica-3");
        lease["spec"]["renewTime"] = json!(
            chrono::Utc::now()
                .checked_add_signed(chrono::Duration::seconds(60))
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        );
        c.store(key, lease);
    }
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), follower)
        .await
        .expect("replica-2 stops leading")
        .unwrap();
    let error = ended.unwrap_err();
    assert!(
        format!("{error:#}").contains("leadership lost"),
        "{error:#}"
    );
    assert_eq!(metric(second_admin, "spoor_operator_leader").await, 0.0);
}
