//! Pod mutation, as the pod webhook does it on CREATE.
//!
//! Mirrors `Default` in `pkg/webhooks/pod_webhook.go` and `pkg/utils/pod` (upstream-lws.md §3.4,
//! §5.4, §5.5).

use k8s_openapi::api::core::v1::Pod;

/// What the pod webhook knows besides the pod.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodContext {
    /// The pod's namespace, when the pod object itself lacks one (admission requests carry it).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Gang-scheduling provider (only `volcano` exists); adds the PodGroup annotation.
    #[serde(default)]
    pub scheduler_provider: Option<String>,
}

/// Why a pod could not be mutated; the webhook then refuses it with this message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PodMutationError {
    #[error("{0}")]
    Invalid(String),
}

/// Mutates an LWS pod in place; pods without the name label are left untouched.
pub fn mutate_pod(pod: &mut Pod, ctx: &PodContext) -> Result<(), PodMutationError> {
    let _ = (pod, ctx);
    todo!("mutate_pod")
}
