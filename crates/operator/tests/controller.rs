//! Reconcile against an in-process fake of the Kubernetes API (no API server
//! can run here): an axum app that keeps objects in memory and answers the
//! requests the operator makes — server-side apply, get, list by label,
//! delete, and merge patches of the status subresource.
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

#[derive(Default)]
struct Cluster {
    /// "<group/version>/<namespace>/<plural>/<name>" -> object
    objects: BTreeMap<String, Json>,
    /// plural resource names whose writes fail, to test failure status
    failing: Vec<String>,
    next_version: u64,
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

async fn api(State(cluster): State<Shared>, method: Method, uri: Uri, body: Bytes) -> Response {
    let Some((gv, ns, plural, name, sub)) = parse(uri.path()) else {
        return status(404, "NotFound");
    };
    let query: BTreeMap<String, String> = uri.query().map(url_decode_pairs).unwrap_or_default();
    let mut c = cluster.lock().unwrap();
    let prefix = format!("{gv}/{ns}/{plural}/");
    match (method, name) {
        // watches stay open and quiet: the initial list is what these tests use
        (Method::GET, None) if query.contains_key("watch") => {
            let never = futures::stream::pending::<Result<Bytes, std::io::Error>>();
            (StatusCode::OK, axum::body::Body::from_stream(never)).into_response()
        }
        (Method::POST, None) => {
            let mut object: Json = serde_json::from_slice(&body).unwrap();
            let name = object["metadata"]["name"].as_str().unwrap().to_string();
            let key = format!("{prefix}{name}");
            if c.objects.contains_key(&key) {
                return status(409, "AlreadyExists");
            }
            object["metadata"]["resourceVersion"] = json!("1");
            c.objects.insert(key, object.clone());
            (StatusCode::CREATED, axum::Json(object)).into_response()
        }
        (Method::PUT, Some(name)) => {
            let object: Json = serde_json::from_slice(&body).unwrap();
            c.objects.insert(format!("{prefix}{name}"), object.clone());
            axum::Json(object).into_response()
        }
        (Method::GET, None) => {
            let selector = query.get("labelSelector").cloned().unwrap_or_default();
            let items: Vec<Json> = c
                .objects
                .iter()
                .filter(|(k, o)| k.starts_with(&prefix) && labels_match(o, &selector))
                .map(|(_, o)| o.clone())
                .collect();
            axum::Json(json!({"apiVersion": gv, "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items}))
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
            c.next_version += 1;
            let version = c.next_version.to_string();
            let key = format!("{prefix}{name}");
            let entry = c.objects.entry(key).or_insert_with(|| {
                json!({"metadata": {"uid": format!("uid-{name}"), "name": name, "namespace": ns}})
            });
            if sub.as_deref() == Some("status") {
                entry["status"] = patch["status"].clone();
            } else {
                let uid = entry["metadata"]["uid"].clone();
                *entry = patch;
                entry["metadata"]["uid"] = uid;
                entry["metadata"]["namespace"] = json!(ns);
            }
            entry["metadata"]["resourceVersion"] = json!(version);
            axum::Json(entry.clone()).into_response()
        }
        (Method::DELETE, Some(name)) => match c.objects.remove(&format!("{prefix}{name}")) {
            Some(_) => status(200, "Deleted"),
            None => status(404, "NotFound"),
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

fn seed(cluster: &Shared, s: &spoor_operator::Spoor) {
    cluster.lock().unwrap().objects.insert(
        "spoor.dev/v1/obs/spoors/tracing".into(),
        serde_json::to_value(s).unwrap(),
    );
}

fn names(cluster: &Shared) -> Vec<String> {
    cluster
        .lock()
        .unwrap()
        .objects
        .keys()
        .filter(|k| !k.contains("/spoors/"))
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
        let status = &c.objects["spoor.dev/v1/obs/spoors/tracing"]["status"];
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
    let status = &c.objects["spoor.dev/v1/obs/spoors/tracing"]["status"];
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
    let dir = std::env::temp_dir().join(format!("spoor-operator-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tls.crt"), cert.build().to_pem().unwrap()).unwrap();
    std::fs::write(dir.join("tls.key"), key.private_key_to_pem_pkcs8().unwrap()).unwrap();

    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (admin, webhook) = (free(), free());
    let options = spoor_operator::run::RunOptions {
        watch_namespaces: vec!["obs".into()],
        admin_addr: admin,
        webhook_addr: webhook,
        webhook_tls: Some((dir.join("tls.crt"), dir.join("tls.key"))),
        lease_namespace: "spoor-operator".into(),
        identity: "replica-1".into(),
        lease_duration: std::time::Duration::from_secs(15),
    };
    let running = tokio::spawn(spoor_operator::run::run(client, options));

    // the controller reconciles the resource from its initial list
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !names(&cluster).contains(&"apps/v1/obs/deployments/tracing".to_string()) {
        assert!(
            std::time::Instant::now() < deadline,
            "not reconciled: {:?}",
            names(&cluster)
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    {
        let c = cluster.lock().unwrap();
        let lease = &c.objects["coordination.k8s.io/v1/spoor-operator/leases/spoor-operator"];
        assert_eq!(lease["spec"]["holderIdentity"], "replica-1");
    }

    // admin: health and metrics
    let mut conn = tokio::net::TcpStream::connect(admin).await.unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).await.unwrap();
    assert!(text.contains("spoor_operator_leader 1"), "{text}");
    assert!(text.contains("spoor_operator_reconciles_total"), "{text}");

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
