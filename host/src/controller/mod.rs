//! `lws controller`: the LeaderWorkerSet controller and the admission webhooks in one process.
//!
//! # Expected flow (one reconcile)
//! 1. A watch event (the LeaderWorkerSet, or a StatefulSet, Pod or Service carrying its name
//!    label) queues the LeaderWorkerSet.
//! 2. [`reconcile`] reads the reflector stores ([`observe::Stores::observe`]): one consistent
//!    `ReconcileInput`, stamped with the current time, encoded without copying the objects.
//! 3. One module call, `reconcile`, on the blocking pool, returns the [`ReconcilePlan`].
//! 4. [`execute::Executor`] carries it out: create, apply (field manager `lws`), delete, status,
//!    events; then the controller requeues when the plan asks.
//! 5. A failure is retried after a per-object exponential backoff with a shared rate limit
//!    ([`backoff`]); at most [`serve::MAX_CONCURRENT_RECONCILES`] reconciles run at once.
//!
//! # Guarantees
//! The host takes no LeaderWorkerSet decision: what to create, what the status says, which event
//! to emit, all come from the plan. A failed step ends the reconcile with an [`Error`]; the
//! next reconcile starts from the stores again, so every step is safe to repeat.

pub mod backoff;
pub mod events;
pub mod execute;
pub mod leader;
pub mod metrics;
mod metrics_access;
mod metrics_server;
pub mod module;
pub mod observe;
mod serve;

pub use serve::{
    run, ControllerConfig, LeaderElection, WebhookListener, MAX_CONCURRENT_RECONCILES,
};

use backoff::Backoff;
use events::EventRecorder;
use execute::Executor;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::controller::Action;
use kube::{Client, Resource, ResourceExt};
use lws_core::reconcile::ReconcilePlan;
use lws_core::LeaderWorkerSet;
use metrics::{ControllerLabels, ErrorLabels, LwsLabels, Metrics, CONTROLLER};
use module::{Module, ModuleError};
use observe::Stores;
use std::sync::Arc;
use std::time::Duration;

/// Why a reconcile failed. Each variant says which step; [`error_policy`] picks the retry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The stored LeaderWorkerSet does not decode into the API type (e.g. written while the
    /// webhooks were off).
    #[error("the LeaderWorkerSet does not decode: {0}")]
    DecodeLws(#[source] serde_json::Error),
    /// The module call failed (trap, deadline, memory cap).
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// The module answered something that is not a ReconcilePlan.
    #[error("lws.wasm reconcile answered no plan: {0}")]
    BadAnswer(#[source] serde_json::Error),
    /// An object in the plan has no usable apiVersion, kind or name.
    #[error("the plan names an object the host cannot address: {0}")]
    BadPlan(String),
    #[error("creating {what}: {source}")]
    Create {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("applying {what}: {source}")]
    Apply {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting {what}: {source}")]
    Delete {
        what: String,
        #[source]
        source: kube::Error,
    },
    /// Reading an object the reconcile needs from the API server failed.
    #[error("reading {what}: {source}")]
    Read {
        what: String,
        #[source]
        source: kube::Error,
    },
    /// Writing the status subresource failed (a conflict is retried at once).
    #[error("writing status: {0}")]
    StatusWrite(#[source] kube::Error),
}

impl Error {
    /// The variant's name, as the `error` label of `lws_reconcile_errors_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::DecodeLws(_) => "decode_lws",
            Error::Module(_) => "module",
            Error::BadAnswer(_) => "bad_answer",
            Error::BadPlan(_) => "bad_plan",
            Error::Create { .. } => "create",
            Error::Apply { .. } => "apply",
            Error::Delete { .. } => "delete",
            Error::Read { .. } => "read",
            Error::StatusWrite(_) => "status_write",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Handles only: the client, the module, the stores, the recorder, the metrics, the backoff.
pub struct Context {
    /// Writes only while this process leads (see [`leader::Fence`]).
    pub client: Client,
    pub module: Module,
    pub stores: Stores,
    pub recorder: EventRecorder,
    pub metrics: Metrics,
    /// The LeaderWorkerSet resource (group, version, plural) for dynamic API handles.
    pub lws_resource: ApiResource,
    /// Passed through to the module (`volcano` or none).
    pub scheduler_provider: Option<String>,
    /// Failures per LeaderWorkerSet, for [`error_policy`]'s delays.
    pub backoff: Backoff,
}

/// How long a reconcile waits for the stores' first list before it requeues instead.
const STORES_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// A reconcile with nothing pending still runs this often, in case a watch event was missed.
const RESYNC: Duration = Duration::from_secs(300);
/// The first retry of a failure that the same input would repeat (a module or decode error):
/// waiting for a change or a fix, not hammering.
const PERSISTENT_BASE_DELAY: Duration = Duration::from_secs(30);

/// The backoff's key of a LeaderWorkerSet.
pub fn backoff_key(obj: &DynamicObject) -> backoff::Key {
    (obj.namespace(), obj.name_any())
}

/// Observes, asks the module, applies. See the module docs for the flow.
pub async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action> {
    if !ctx.stores.ready(STORES_READY_TIMEOUT).await {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let namespace = obj.namespace().unwrap_or_default();
    let lws: LeaderWorkerSet = serde_json::to_value(obj.as_ref())
        .and_then(serde_json::from_value)
        .map_err(Error::DecodeLws)?;
    let payload = ctx
        .stores
        .observe(&lws)
        .encode(&lws, ctx.scheduler_provider.as_deref())
        .map_err(Error::BadAnswer)?;
    let answer = ctx
        .module
        .call(lws_core::ops::names::RECONCILE, payload)
        .await?;
    let plan: ReconcilePlan = serde_json::from_slice(&answer).map_err(Error::BadAnswer)?;
    tracing::debug!(reasons = ?plan.reasons, create = plan.create.len(), apply = plan.apply.len(),
        delete = plan.delete.len(), status = plan.status.is_some(), events = plan.events.len(), "plan");

    let lws_api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &namespace, &ctx.lws_resource);
    let executor = Executor {
        client: &ctx.client,
        lws_api: &lws_api,
        recorder: &ctx.recorder,
        regarding: obj.object_ref(&ctx.lws_resource),
    };
    executor.execute(&plan).await?;
    ctx.backoff.forget(&backoff_key(&obj));

    let ready = match &plan.status {
        Some(status) => i64::from(status.ready_replicas),
        None => obj
            .data
            .pointer("/status/readyReplicas")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0),
    };
    ctx.metrics
        .groups_ready
        .get_or_create(&LwsLabels {
            namespace,
            name: obj.name_any(),
        })
        .set(ready);
    // controller-runtime's results: a plan that asks to be looked at again is `requeue_after`;
    // the periodic resync is not part of the result.
    Ok(match plan.requeue_after_seconds {
        Some(seconds) => {
            ctx.metrics.count_reconcile("requeue_after");
            Action::requeue(Duration::from_secs(seconds))
        }
        None => {
            ctx.metrics.count_reconcile("success");
            Action::requeue(RESYNC)
        }
    })
}

/// A LeaderWorkerSet the controller's cache no longer has, while objects labelled with its name
/// still change: once a GET confirms it is gone (a cache still filling must not pass for that),
/// the module plans it as [`LeaderWorkerSet::gone`] with those objects, and the plan is carried
/// out like any other. Not retried: the next change of one of its objects comes back here.
pub async fn reconcile_gone(ctx: Arc<Context>, namespace: &str, name: &str) -> Result<()> {
    if !ctx.stores.is_synced() {
        return Ok(());
    }
    let lws_api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), namespace, &ctx.lws_resource);
    match lws_api.get_opt(name).await {
        Ok(None) => {}
        Ok(Some(_)) => return Ok(()),
        Err(source) => {
            return Err(Error::Read {
                what: format!("LeaderWorkerSet {namespace}/{name}"),
                source,
            })
        }
    }
    let lws = LeaderWorkerSet::gone(
        namespace,
        name,
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()),
    );
    let payload = ctx
        .stores
        .observe(&lws)
        .encode(&lws, ctx.scheduler_provider.as_deref())
        .map_err(Error::BadAnswer)?;
    let answer = ctx
        .module
        .call(lws_core::ops::names::RECONCILE, payload)
        .await?;
    let plan: ReconcilePlan = serde_json::from_slice(&answer).map_err(Error::BadAnswer)?;
    let regarding = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some(lws_core::api::API_VERSION.to_string()),
        kind: Some(lws_core::api::KIND.to_string()),
        namespace: Some(namespace.to_string()),
        name: Some(name.to_string()),
        ..Default::default()
    };
    let executor = Executor {
        client: &ctx.client,
        lws_api: &lws_api,
        recorder: &ctx.recorder,
        regarding,
    };
    executor.execute(&plan).await
}

/// Logs the failure, counts it, and picks the retry delay: per object, doubling from a base
/// chosen by what failed, within the shared retry rate ([`backoff`]).
pub fn error_policy(obj: Arc<DynamicObject>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(lws = %obj.name_any(), namespace = ?obj.namespace(), %error, "reconcile failed");
    ctx.metrics.count_reconcile("error");
    ctx.metrics
        .reconcile_errors
        .get_or_create(&ControllerLabels {
            controller: CONTROLLER,
        })
        .inc();
    ctx.metrics
        .errors
        .get_or_create(&ErrorLabels {
            error: error.metric_label(),
        })
        .inc();
    let base = retry_base(error);
    Action::requeue(ctx.backoff.next_delay(&backoff_key(&obj), base))
}

/// The first retry's delay after `error`; each further failure doubles it.
fn retry_base(error: &Error) -> Duration {
    match error {
        // Another writer got there first, or the API server failed: the stores catch up
        // within moments, so retry soon.
        Error::StatusWrite(_)
        | Error::Create { .. }
        | Error::Apply { .. }
        | Error::Delete { .. }
        | Error::Read { .. } => backoff::API_BASE_DELAY,
        // Retrying the same input gives the same answer; wait for a change or a fix.
        Error::DecodeLws(_) | Error::Module(_) | Error::BadAnswer(_) | Error::BadPlan(_) => {
            PERSISTENT_BASE_DELAY
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconcile_future_is_send() {
        fn assert_send<T: Send>(_: T) {}
        #[allow(unreachable_code, unused_variables, clippy::diverging_sub_expression)]
        fn check() {
            let obj: Arc<DynamicObject> = unimplemented!();
            let ctx: Arc<Context> = unimplemented!();
            assert_send(reconcile(obj, ctx));
        }
        let _ = check;
    }

    #[test]
    fn api_failures_retry_soon_and_repeatable_ones_late() {
        let api = || {
            kube::Error::Api(Box::new(kube::core::Status::failure(
                "conflict", "Conflict",
            )))
        };
        let what = || "StatefulSet default/lws".to_string();
        for error in [
            Error::StatusWrite(api()),
            Error::Create {
                what: what(),
                source: api(),
            },
            Error::Apply {
                what: what(),
                source: api(),
            },
            Error::Delete {
                what: what(),
                source: api(),
            },
        ] {
            assert_eq!(retry_base(&error), backoff::API_BASE_DELAY, "{error}");
        }
        let bad_json = || serde_json::from_str::<u8>("x").unwrap_err();
        for error in [
            Error::DecodeLws(bad_json()),
            Error::BadAnswer(bad_json()),
            Error::BadPlan("no kind".to_string()),
        ] {
            assert_eq!(retry_base(&error), PERSISTENT_BASE_DELAY, "{error}");
        }
    }
}
