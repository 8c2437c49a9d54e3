//! Prometheus metrics of the controller and the webhooks, served at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `success` or `error`.
    pub result: &'static str,
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

/// Every metric, registered once; cloning shares the underlying values.
#[derive(Clone)]
pub struct Metrics {
    pub reconciles: Family<ResultLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
    pub module_calls: Family<OperationLabels, Histogram>,
    pub groups_ready: Family<LwsLabels, Gauge>,
    pub admissions: Family<OperationLabels, Counter>,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry` under the `lws` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Metrics {
            reconciles: Family::default(),
            errors: Family::default(),
            module_calls: Family::new_with_constructor(|| {
                // 50 µs .. ~0.8 s.
                Histogram::new(exponential_buckets(0.00005, 2.0, 15))
            }),
            groups_ready: Family::default(),
            admissions: Family::default(),
        };
        let lws = registry.sub_registry_with_prefix("lws");
        lws.register(
            "reconciles",
            "Reconciles of LeaderWorkerSets, by result",
            metrics.reconciles.clone(),
        );
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
        lws.register(
            "admission_reviews",
            "Admission reviews answered, by webhook path",
            metrics.admissions.clone(),
        );
        metrics
    }

    pub fn observe_module_call(&self, operation: &str, elapsed: Duration) {
        self.module_calls
            .get_or_create(&OperationLabels {
                operation: operation.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }
}
