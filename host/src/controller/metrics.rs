//! Prometheus metrics of the controller and the webhooks, served by [`super::metrics_server`].
//!
//! The reconcile and webhook counters carry controller-runtime's names and labels
//! (`controller_runtime_reconcile_total`, `controller_runtime_webhook_requests_total`, ...), so
//! dashboards and alerts made for upstream's manager read ours unchanged; the `lws_` ones are
//! ours alone.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::time::Duration;

/// The `controller` label: upstream's controller name for LeaderWorkerSets.
pub const CONTROLLER: &str = "leaderworkerset";

/// controller-runtime's reconcile results, each counted from zero so a rate never starts
/// from a missing series.
pub const RECONCILE_RESULTS: [&str; 4] = ["success", "error", "requeue", "requeue_after"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub controller: &'static str,
    /// One of [`RECONCILE_RESULTS`].
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The `Error` variant, in snake case.
    pub error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LwsLabels {
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// The webhook's path, `/mutate-leaderworkerset-x-k8s-io-v1-leaderworkerset`.
    pub webhook: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookCodeLabels {
    /// The HTTP status code of the reply.
    pub code: String,
    pub webhook: String,
}

/// Every metric, registered once; cloning shares the underlying values.
#[derive(Clone)]
pub struct Metrics {
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub reconcile_errors: Family<ControllerLabels, Counter>,
    /// Failed reconciles by what failed (ours: controller-runtime has no such label).
    pub errors: Family<ErrorLabels, Counter>,
    pub module_calls: Family<OperationLabels, Histogram>,
    pub groups_ready: Family<LwsLabels, Gauge>,
    pub webhook_requests: Family<WebhookCodeLabels, Counter>,
    pub webhook_in_flight: Family<WebhookLabels, Gauge>,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Metrics {
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            errors: Family::default(),
            module_calls: Family::new_with_constructor(|| {
                // 50 µs .. ~0.8 s.
                Histogram::new(exponential_buckets(0.00005, 2.0, 15))
            }),
            groups_ready: Family::default(),
            webhook_requests: Family::default(),
            webhook_in_flight: Family::default(),
        };
        for result in RECONCILE_RESULTS {
            let _ = metrics.reconciles.get_or_create(&ReconcileLabels {
                controller: CONTROLLER,
                result,
            });
        }
        let _ = metrics.reconcile_errors.get_or_create(&ControllerLabels {
            controller: CONTROLLER,
        });
        // The encoder adds `_total` to counters.
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            metrics.reconciles.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            metrics.reconcile_errors.clone(),
        );
        registry.register(
            "controller_runtime_webhook_requests",
            "Total number of admission requests by HTTP status code",
            metrics.webhook_requests.clone(),
        );
        registry.register(
            "controller_runtime_webhook_requests_in_flight",
            "Current number of admission requests being served",
            metrics.webhook_in_flight.clone(),
        );
        let lws = registry.sub_registry_with_prefix("lws");
        lws.register(
            "reconcile_errors",
            "Failed reconciles, by error",
            metrics.errors.clone(),
        );
        lws.register(
            "module_call_duration_seconds",
            "Time spent in one lws.wasm operation call",
            metrics.module_calls.clone(),
        );
        lws.register(
            "groups_ready",
            "Ready groups of each LeaderWorkerSet (status.readyReplicas)",
            metrics.groups_ready.clone(),
        );
        metrics
    }

    /// Counts one reconcile by its result (one of [`RECONCILE_RESULTS`]).
    pub fn count_reconcile(&self, result: &'static str) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                controller: CONTROLLER,
                result,
            })
            .inc();
    }

    /// Starts the series of a webhook path at zero, for the codes controller-runtime starts
    /// (200 and 500).
    pub fn register_webhook(&self, webhook: &str) {
        for code in ["200", "500"] {
            let _ = self.webhook_requests.get_or_create(&WebhookCodeLabels {
                code: code.to_string(),
                webhook: webhook.to_string(),
            });
        }
        let _ = self.webhook_in_flight.get_or_create(&WebhookLabels {
            webhook: webhook.to_string(),
        });
    }

    pub fn observe_module_call(&self, operation: &str, elapsed: Duration) {
        self.module_calls
            .get_or_create(&OperationLabels {
                operation: operation.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }
}
