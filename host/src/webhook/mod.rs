//! The admission webhooks, answered by the module: plumbing here, decisions in `lws.wasm`.
//!
//! | path | module operation | answer |
//! |---|---|---|
//! | `/mutate-leaderworkerset-x-k8s-io-v1-leaderworkerset` | `validate` (Kubewarden) | a JSONPatch from the object to `mutated_object`; never a refusal (the validating webhook refuses, as upstream) |
//! | `/validate-leaderworkerset-x-k8s-io-v1-leaderworkerset` | `validate` | the verdict, with the module's message and code |
//! | `/mutate--v1-pod` | `mutate_pod` | a JSONPatch to the mutated pod, or a refusal with the module's error |
//! | `/validate--v1-pod` | none | always allowed (upstream's handler is a no-op) |

use crate::controller::metrics::{Metrics, WebhookCodeLabels, WebhookLabels};
use crate::controller::module::Module;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::DynamicObject;
use lws_core::ops::names;
use lws_core::policy::ValidationResponse;
use serde_json::{json, Value};

pub const MUTATE_LWS_PATH: &str = "/mutate-leaderworkerset-x-k8s-io-v1-leaderworkerset";
pub const VALIDATE_LWS_PATH: &str = "/validate-leaderworkerset-x-k8s-io-v1-leaderworkerset";
pub const MUTATE_POD_PATH: &str = "/mutate--v1-pod";
pub const VALIDATE_POD_PATH: &str = "/validate--v1-pod";

/// What each handler needs: the module and the metrics.
#[derive(Clone)]
pub struct WebhookState {
    pub module: Module,
    pub metrics: Metrics,
    /// The gang-scheduling provider passed to pod mutation (`volcano` or none).
    pub scheduler_provider: Option<String>,
}

/// The four upstream paths, each counted as controller-runtime counts its webhooks.
pub fn router(state: WebhookState) -> Router {
    for path in [
        MUTATE_LWS_PATH,
        VALIDATE_LWS_PATH,
        MUTATE_POD_PATH,
        VALIDATE_POD_PATH,
    ] {
        state.metrics.register_webhook(path);
    }
    let metrics = state.metrics.clone();
    Router::new()
        .route(MUTATE_LWS_PATH, post(mutate_lws))
        .route(VALIDATE_LWS_PATH, post(validate_lws))
        .route(MUTATE_POD_PATH, post(mutate_pod))
        .route(VALIDATE_POD_PATH, post(validate_pod))
        .with_state(state)
        .route_layer(axum::middleware::from_fn_with_state(metrics, count))
}

/// `controller_runtime_webhook_requests_total` and `_in_flight` of the matched path.
async fn count(
    State(metrics): State<Metrics>,
    path: MatchedPath,
    request: Request,
    next: Next,
) -> Response {
    let webhook = path.as_str().to_string();
    let in_flight = metrics
        .webhook_in_flight
        .get_or_create(&WebhookLabels {
            webhook: webhook.clone(),
        })
        .clone();
    in_flight.inc();
    let response = next.run(request).await;
    in_flight.dec();
    metrics
        .webhook_requests
        .get_or_create(&WebhookCodeLabels {
            code: response.status().as_u16().to_string(),
            webhook,
        })
        .inc();
    response
}

type Review = Json<AdmissionReview<DynamicObject>>;

/// A parsed review: the typed request (for the reply) and the raw request (for the module,
/// which reads it as it is, with nothing dropped by a typed round trip).
struct Incoming {
    request: AdmissionRequest<DynamicObject>,
    raw: Value,
}

/// Splits a review into the typed and the raw request; `Err` carries the reply for a body
/// that is no AdmissionReview.
fn parse(body: Value) -> Result<Incoming, Box<Review>> {
    let invalid =
        |message: String| Box::new(Json(AdmissionResponse::invalid(message).into_review()));
    let raw = body.get("request").cloned().unwrap_or(Value::Null);
    let review: AdmissionReview<DynamicObject> = serde_json::from_value(body)
        .map_err(|e| invalid(format!("not an AdmissionReview: {e}")))?;
    let request: Result<AdmissionRequest<DynamicObject>, _> = review.try_into();
    match request {
        Ok(request) => Ok(Incoming { request, raw }),
        Err(e) => Err(invalid(e.to_string())),
    }
}

/// Asks the module's Kubewarden `validate` for a verdict on an LWS admission request.
async fn verdict(state: &WebhookState, raw: Value) -> Result<ValidationResponse, String> {
    let payload = json!({ "request": raw, "settings": {} });
    let answer = state
        .module
        .call(names::VALIDATE, payload.to_string().into_bytes())
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&answer)
        .map_err(|e| format!("lws.wasm validate answered no ValidationResponse: {e}"))
}

/// Defaulting: the patch from the submitted object to the module's `mutated_object`.
async fn mutate_lws(State(state): State<WebhookState>, Json(body): Json<Value>) -> Review {
    let incoming = match parse(body) {
        Ok(incoming) => incoming,
        Err(reply) => return *reply,
    };
    let response = AdmissionResponse::from(&incoming.request);
    let original = incoming.raw.get("object").cloned().unwrap_or(Value::Null);
    let reply = match verdict(&state, incoming.raw).await {
        // A refusal is the validating webhook's to give; defaulting admits as it is.
        Ok(ValidationResponse {
            accepted: true,
            mutated_object: Some(mutated),
            ..
        }) => with_diff(response, &original, &mutated),
        Ok(_) => response,
        Err(message) => deny(response, 500, "InternalError", message),
    };
    Json(reply.into_review())
}

/// Validation: the module's verdict, with its message and code (422 for an invalid object).
async fn validate_lws(State(state): State<WebhookState>, Json(body): Json<Value>) -> Review {
    let incoming = match parse(body) {
        Ok(incoming) => incoming,
        Err(reply) => return *reply,
    };
    let response = AdmissionResponse::from(&incoming.request);
    let reply = match verdict(&state, incoming.raw).await {
        Ok(v) if v.accepted => response,
        Ok(v) => {
            let code = v.code.unwrap_or(422);
            let reason = if code == 422 { "Invalid" } else { "BadRequest" };
            deny(response, code, reason, v.message.unwrap_or_default())
        }
        Err(message) => deny(response, 500, "InternalError", message),
    };
    Json(reply.into_review())
}

/// The module's answer to `mutate_pod`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
enum PodAnswer {
    Pod(Value),
    Error(String),
}

/// Pod defaulting (labels, env, affinities): a patch to the module's pod, or its refusal.
async fn mutate_pod(State(state): State<WebhookState>, Json(body): Json<Value>) -> Review {
    let incoming = match parse(body) {
        Ok(incoming) => incoming,
        Err(reply) => return *reply,
    };
    let response = AdmissionResponse::from(&incoming.request);
    if incoming.request.operation != Operation::Create {
        return Json(response.into_review());
    }
    let original = incoming.raw.get("object").cloned().unwrap_or(Value::Null);
    let payload = json!({
        "pod": original,
        "context": {
            "namespace": incoming.request.namespace,
            "schedulerProvider": state.scheduler_provider,
        },
    });
    let answer = state
        .module
        .call(names::MUTATE_POD, payload.to_string().into_bytes())
        .await
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            serde_json::from_slice::<PodAnswer>(&bytes)
                .map_err(|e| format!("lws.wasm mutate_pod answered neither pod nor error: {e}"))
        });
    let reply = match answer {
        Ok(PodAnswer::Pod(mutated)) => with_diff(response, &original, &mutated),
        Ok(PodAnswer::Error(message)) => deny(response, 403, "Forbidden", message),
        Err(message) => deny(response, 500, "InternalError", message),
    };
    Json(reply.into_review())
}

/// Pods are never refused (upstream's validator is a no-op); registered for parity.
async fn validate_pod(Json(body): Json<Value>) -> Review {
    match parse(body) {
        Ok(incoming) => Json(AdmissionResponse::from(&incoming.request).into_review()),
        Err(reply) => *reply,
    }
}

/// Adds the JSONPatch that turns `original` into `mutated` (nothing when they are equal).
fn with_diff(response: AdmissionResponse, original: &Value, mutated: &Value) -> AdmissionResponse {
    let patch = json_patch::diff(original, mutated);
    if patch.0.is_empty() {
        return response;
    }
    let uid = response.uid.clone();
    match response.with_patch(patch) {
        Ok(response) => response,
        Err(e) => {
            let mut refused = AdmissionResponse::invalid(e.to_string());
            refused.uid = uid;
            refused
        }
    }
}

/// Refuses with `message`, an HTTP-style `code` and a Status `reason`.
fn deny(
    response: AdmissionResponse,
    code: u16,
    reason: &str,
    message: String,
) -> AdmissionResponse {
    let mut response = response.deny(message);
    response.result.code = code;
    response.result.reason = reason.to_string();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_of_equal_objects_adds_no_patch() {
        let request: AdmissionRequest<DynamicObject> = serde_json::from_value(json!({
            "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE", "userInfo": {}, "name": "p", "namespace": "n",
        }))
        .unwrap();
        let response = AdmissionResponse::from(&request);
        let object = json!({"metadata": {"name": "p"}});
        assert!(with_diff(response, &object, &object).patch.is_none());
    }

    use axum::body::Body;
    use axum::http::Request;
    use base64::Engine as _;
    use tower::ServiceExt;

    fn state() -> WebhookState {
        let metrics = Metrics::register(&mut prometheus_client::registry::Registry::default());
        WebhookState {
            module: Module::new(crate::engine::Engine::Native, metrics.clone()),
            metrics,
            scheduler_provider: None,
        }
    }

    /// Posts an AdmissionReview for `object` to `path`; the reply's `response`.
    async fn review(path: &str, kind: (&str, &str), object: Value) -> Value {
        let body = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "42",
                "kind": {"group": kind.0, "version": "v1", "kind": kind.1},
                "resource": {"group": kind.0, "version": "v1", "resource": "x"},
                "operation": "CREATE",
                "userInfo": {},
                "name": object["metadata"]["name"],
                "namespace": "ns",
                "object": object,
            },
        });
        let request = Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let reply = router(state()).oneshot(request).await.unwrap();
        let bytes = axum::body::to_bytes(reply.into_body(), 1 << 20)
            .await
            .unwrap();
        let review: Value = serde_json::from_slice(&bytes).unwrap();
        review["response"].clone()
    }

    /// The JSONPatch of a response. kube serializes `patch` as a JSON array of bytes (the API
    /// server's Go decoder takes that for `[]byte` as well as base64).
    fn patch_of(response: &Value) -> Vec<Value> {
        let bytes: Vec<u8> = match &response["patch"] {
            Value::String(encoded) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap(),
            Value::Array(_) => serde_json::from_value(response["patch"].clone()).unwrap(),
            _ => panic!("a patch in {response}"),
        };
        serde_json::from_slice(&bytes).unwrap()
    }

    fn lws(size: i64) -> Value {
        json!({
            "apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
            "metadata": {"name": "sample", "namespace": "ns"},
            "spec": {"replicas": 2, "leaderWorkerTemplate": {"size": size,
                "workerTemplate": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}},
        })
    }

    /// controller-runtime's series: every path from zero, then each answer by its code.
    #[tokio::test]
    async fn requests_are_counted_by_path_and_code() {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Metrics::register(&mut registry);
        let app = router(WebhookState {
            module: Module::new(crate::engine::Engine::Native, metrics.clone()),
            metrics,
            scheduler_provider: None,
        });
        let encoded = |registry: &prometheus_client::registry::Registry| {
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
            text
        };
        let series = |code: &str, path: &str| {
            format!(
                "controller_runtime_webhook_requests_total{{code=\"{code}\",webhook=\"{path}\"}}"
            )
        };
        assert!(encoded(&registry).contains(&format!("{} 0", series("200", VALIDATE_POD_PATH))));
        let request = Request::post(VALIDATE_POD_PATH)
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let reply = app.oneshot(request).await.unwrap();
        assert_eq!(reply.status(), 200);
        let text = encoded(&registry);
        assert!(
            text.contains(&format!("{} 1", series("200", VALIDATE_POD_PATH))),
            "{text}"
        );
        assert!(
            text.contains(&format!("{} 0", series("500", MUTATE_LWS_PATH))),
            "{text}"
        );
        assert!(text.contains(&format!(
            "controller_runtime_webhook_requests_in_flight{{webhook=\"{VALIDATE_POD_PATH}\"}} 0"
        )));
    }

    #[tokio::test]
    async fn lws_defaulting_answers_a_patch() {
        let response = review(
            MUTATE_LWS_PATH,
            ("leaderworkerset.x-k8s.io", "LeaderWorkerSet"),
            lws(2),
        )
        .await;
        assert_eq!(response["uid"], "42");
        assert_eq!(response["allowed"], true);
        assert_eq!(response["patchType"], "JSONPatch");
        let mut object = lws(2);
        json_patch::patch(
            &mut object,
            &serde_json::from_value::<json_patch::Patch>(Value::Array(patch_of(&response)))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(object["spec"]["startupPolicy"], "LeaderCreated");
    }

    #[tokio::test]
    async fn invalid_lws_is_refused_with_422_and_the_field_message() {
        let response = review(
            VALIDATE_LWS_PATH,
            ("leaderworkerset.x-k8s.io", "LeaderWorkerSet"),
            lws(0),
        )
        .await;
        assert_eq!(response["allowed"], false);
        assert_eq!(response["status"]["code"], 422);
        let message = response["status"]["message"].as_str().unwrap();
        assert!(
            message.contains("spec.leaderWorkerTemplate.size"),
            "{message}"
        );
        // Defaulting never refuses: that is the validating webhook's answer.
        let response = review(
            MUTATE_LWS_PATH,
            ("leaderworkerset.x-k8s.io", "LeaderWorkerSet"),
            lws(0),
        )
        .await;
        assert_eq!(response["allowed"], true);
    }

    #[tokio::test]
    async fn pod_mutation_answers_a_patch_or_a_refusal() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "sample-0", "namespace": "ns",
                "labels": {"leaderworkerset.sigs.k8s.io/name": "sample", "leaderworkerset.sigs.k8s.io/worker-index": "0"},
                "annotations": {"leaderworkerset.sigs.k8s.io/size": "2"}},
            "spec": {"subdomain": "sample", "containers": [{"name": "c", "image": "i"}]},
        });
        let response = review(MUTATE_POD_PATH, ("", "Pod"), pod.clone()).await;
        assert_eq!(response["allowed"], true, "{response}");
        let mut mutated = pod.clone();
        json_patch::patch(
            &mut mutated,
            &serde_json::from_value::<json_patch::Patch>(Value::Array(patch_of(&response)))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            mutated["metadata"]["labels"]["leaderworkerset.sigs.k8s.io/group-index"],
            "0"
        );
        assert!(mutated["spec"]["containers"][0]["env"]
            .to_string()
            .contains("LWS_LEADER_ADDRESS"));

        let mut no_size = pod;
        no_size["metadata"]["annotations"] = json!({});
        let response = review(MUTATE_POD_PATH, ("", "Pod"), no_size).await;
        assert_eq!(response["allowed"], false);
        assert!(response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("size annotation"));
        let response = review(
            VALIDATE_POD_PATH,
            ("", "Pod"),
            json!({"metadata": {"name": "p"}}),
        )
        .await;
        assert_eq!(response["allowed"], true);
    }

    #[test]
    fn diff_patch_turns_original_into_mutated() {
        let original = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"x": [1]}});
        let mutated =
            json!({"metadata": {"labels": {"a": "1", "b/c": "2"}}, "spec": {"x": [1, 2]}});
        let patch = json_patch::diff(&original, &mutated);
        let mut patched = original.clone();
        json_patch::patch(&mut patched, &patch).unwrap();
        assert_eq!(patched, mutated);
    }
}
