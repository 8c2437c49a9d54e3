//! The module as the async parts of the process see it: one shared [`Engine`], each call on
//! the blocking pool (a guest call is synchronous and may take milliseconds), timed. The engine
//! can be swapped while calls run ([`Module::swap`]): a call keeps the engine it started on.

use super::metrics::Metrics;
use crate::engine::Engine;
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// A cheap handle on the process's one engine.
#[derive(Clone)]
pub struct Module {
    engine: Arc<RwLock<Arc<Engine>>>,
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
            engine: Arc::new(RwLock::new(Arc::new(engine))),
            metrics,
        }
    }

    /// The engine calls start on from now on; returns the one it replaces.
    pub fn swap(&self, engine: Engine) -> Arc<Engine> {
        let mut current = self.engine.write().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *current, Arc::new(engine))
    }

    /// The engine a call would start on now.
    pub fn current(&self) -> Arc<Engine> {
        self.engine
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs `operation` on `payload` on the blocking pool and records how long it took.
    pub async fn call(
        &self,
        operation: &'static str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, ModuleError> {
        let engine = self.current();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::{GuestRuntime, Limits};

    #[tokio::test]
    async fn a_swap_leaves_calls_under_way_on_their_engine() {
        let module = Module::new(Engine::Native, Metrics::register(&mut Default::default()));
        let under_way = module.current();
        let wasm = Engine::Wasm(GuestRuntime::embedded(Limits::default()).unwrap());
        let sha256 = wasm.describe().to_string();
        let replaced = module.swap(wasm);
        assert_eq!(replaced.describe(), "native");
        assert_eq!(under_way.describe(), "native");
        assert_eq!(module.current().describe(), sha256);
        let answer = module
            .call(lws_core::ops::names::PROTOCOL_VERSION, Vec::new())
            .await;
        assert!(answer.is_ok(), "{answer:?}");
    }
}
