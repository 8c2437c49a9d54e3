//! The module as the async parts of the process see it: one shared [`Engine`], each call on
//! the blocking pool (a guest call is synchronous and may take milliseconds), timed.

use super::metrics::Metrics;
use crate::engine::Engine;
use std::sync::Arc;
use std::time::Instant;

/// A cheap handle on the process's one engine.
#[derive(Clone)]
pub struct Module {
    engine: Arc<Engine>,
    metrics: Metrics,
}

/// A module call that did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The guest trapped, timed out, ran out of memory or refused the payload.
    #[error("lws.wasm {operation}: {message}")]
    Call { operation: String, message: String },
    /// The blocking task was cancelled or panicked (the runtime is shutting down).
    #[error("lws.wasm {operation}: the call did not complete: {source}")]
    Join {
        operation: String,
        #[source]
        source: tokio::task::JoinError,
    },
}

impl Module {
    pub fn new(engine: Engine, metrics: Metrics) -> Self {
        Module {
            engine: Arc::new(engine),
            metrics,
        }
    }

    /// Runs `operation` on `payload` on the blocking pool and records how long it took.
    pub async fn call(
        &self,
        operation: &'static str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, ModuleError> {
        let engine = self.engine.clone();
        let started = Instant::now();
        let answer = tokio::task::spawn_blocking(move || engine.call(operation, &payload))
            .await
            .map_err(|source| ModuleError::Join {
                operation: operation.to_string(),
                source,
            })?;
        self.metrics
            .observe_module_call(operation, started.elapsed());
        answer.map_err(|e| ModuleError::Call {
            operation: operation.to_string(),
            message: format!("{e:#}"),
        })
    }
}
