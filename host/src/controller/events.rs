//! Recording events through events.k8s.io/v1, the way client-go's event broadcaster does it.
//!
//! kube's `Recorder` folds events into a series by (type, reason, action, regarding, related)
//! and so drops a second event whose only difference is its note ("with 2 groups ready of total
//! 3 groups" after "of total 2 groups"): upstream's condition events would vanish. Here the
//! note is part of the key, as in client-go; a repeat of the very same event within
//! [`SERIES_TTL`] bumps the stored event's series instead of creating another object.
//!
//! An event is a report, not a step of the reconcile: [`EventRecorder::record`] logs and counts
//! a failure (`lws_event_failures_total`) and never fails the reconcile. The table of recorded
//! events is locked only to read or update it, never across an API call, so one slow event
//! POST holds up no other reconcile. Two identical events recorded at the same moment may
//! therefore both be created rather than one continuing the other's series.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use prometheus_client::metrics::counter::Counter;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// How long a recorded event can still be continued as a series.
const SERIES_TTL: SignedDuration = SignedDuration::from_mins(6);

/// One event to record, regarding an object.
pub struct NewEvent {
    pub type_: &'static str,
    pub reason: String,
    pub action: String,
    pub note: String,
    pub related: Option<ObjectReference>,
}

/// What identifies "the same event again".
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    regarding: (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ),
    related: Option<(Option<String>, Option<String>, Option<String>)>,
    type_: &'static str,
    reason: String,
    action: String,
    note: String,
}

struct Recorded {
    namespace: String,
    name: String,
    count: i32,
    last: Timestamp,
}

/// Publishes events as controller `controller`, instance `instance`.
pub struct EventRecorder {
    client: Client,
    controller: String,
    instance: String,
    recorded: Mutex<HashMap<Key, Recorded>>,
    failures: Counter,
}

impl EventRecorder {
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        EventRecorder {
            client,
            controller: controller.to_string(),
            instance: instance.unwrap_or_else(|| controller.to_string()),
            recorded: Mutex::new(HashMap::new()),
            failures: Counter::default(),
        }
    }

    /// Events that could not be recorded; register it to expose it.
    pub fn failures(&self) -> Counter {
        self.failures.clone()
    }

    /// [`Self::publish`], with a failure logged and counted instead of returned.
    pub async fn record(&self, event: NewEvent, regarding: &ObjectReference) {
        let reason = event.reason.clone();
        if let Err(error) = self.publish(event, regarding).await {
            self.failures.inc();
            tracing::warn!(%reason, regarding = ?regarding.name, %error, "recording an event");
        }
    }

    /// Creates the event, or continues its series when the same event was recorded recently.
    pub async fn publish(
        &self,
        event: NewEvent,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let key = Key {
            regarding: (
                regarding.namespace.clone(),
                regarding.name.clone(),
                regarding.uid.clone(),
                regarding.kind.clone(),
            ),
            related: event
                .related
                .as_ref()
                .map(|r| (r.namespace.clone(), r.name.clone(), r.kind.clone())),
            type_: event.type_,
            reason: event.reason.clone(),
            action: event.action.clone(),
            note: event.note.clone(),
        };
        let previous = {
            let mut recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);
            recorded.retain(|_, r| now.duration_since(r.last) < SERIES_TTL);
            recorded.get_mut(&key).map(|previous| {
                previous.count = previous.count.saturating_add(1);
                previous.last = now;
                (
                    previous.namespace.clone(),
                    previous.name.clone(),
                    previous.count,
                )
            })
        };
        if let Some((previous_namespace, previous_name, count)) = previous {
            let series = EventSeries {
                count,
                last_observed_time: MicroTime(now),
            };
            let patch = serde_json::json!({ "series": series });
            let api: Api<Event> = Api::namespaced(self.client.clone(), &previous_namespace);
            match api
                .patch(
                    &previous_name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => return Ok(()),
                // Expired or deleted: record it afresh.
                Err(kube::Error::Api(status)) if status.is_not_found() => {}
                Err(error) => return Err(error),
            }
        }
        let name = format!(
            "{}.{:x}",
            regarding.name.as_deref().unwrap_or(&self.controller),
            now.as_nanosecond()
        );
        let object = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(event.type_.to_string()),
            reason: Some(event.reason),
            action: Some(event.action),
            note: Some(event.note),
            regarding: Some(regarding.clone()),
            related: event.related,
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        api.create(&PostParams::default(), &object).await?;
        self.recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                key,
                Recorded {
                    namespace,
                    name,
                    count: 1,
                    last: now,
                },
            );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{Request, Response, StatusCode};
    use kube::client::Body;
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::sync::Notify;

    /// Guards a test against hanging; never a pass condition.
    const HANG: Duration = Duration::from_secs(30);

    /// A client whose event POSTs in namespace `slow` never answer, in `broken` fail with 500,
    /// and elsewhere succeed. `slow_seen` is notified when a slow one arrives.
    fn client(slow_seen: Arc<Notify>) -> Client {
        let service = tower::service_fn(move |request: Request<Body>| {
            let slow_seen = slow_seen.clone();
            async move {
                let path = request.uri().path().to_string();
                if path.contains("/namespaces/slow/") {
                    slow_seen.notify_one();
                    std::future::pending::<()>().await;
                }
                let (code, body) = if path.contains("/namespaces/broken/") {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        serde_json::json!({
                            "kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "message": "etcd is down", "reason": "InternalError", "code": 500,
                        }),
                    )
                } else {
                    (
                        StatusCode::CREATED,
                        serde_json::json!({
                            "apiVersion": "events.k8s.io/v1", "kind": "Event",
                            "metadata": { "name": "e" }, "eventTime": null,
                        }),
                    )
                };
                let body = Body::from(serde_json::to_vec(&body).unwrap_or_default());
                Ok::<_, Infallible>(Response::builder().status(code).body(body).unwrap())
            }
        });
        Client::new(service, "default")
    }

    fn regarding(namespace: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("leaderworkerset.x-k8s.io/v1".to_string()),
            kind: Some("LeaderWorkerSet".to_string()),
            namespace: Some(namespace.to_string()),
            name: Some("lws".to_string()),
            ..ObjectReference::default()
        }
    }

    fn event() -> NewEvent {
        NewEvent {
            type_: "Normal",
            reason: "GroupsProgressing".to_string(),
            action: "Create".to_string(),
            note: "Created leader statefulset lws".to_string(),
            related: None,
        }
    }

    #[tokio::test]
    async fn a_failed_event_is_counted_not_returned() {
        let recorder = EventRecorder::new(client(Arc::default()), "leaderworkerset", None);
        recorder.record(event(), &regarding("broken")).await;
        assert_eq!(recorder.failures().get(), 1);
        recorder.record(event(), &regarding("fine")).await;
        assert_eq!(
            recorder.failures().get(),
            1,
            "a recorded event is no failure"
        );
    }

    #[tokio::test]
    async fn a_hung_event_call_holds_up_no_other_event() {
        let slow_seen = Arc::new(Notify::new());
        let recorder = Arc::new(EventRecorder::new(
            client(slow_seen.clone()),
            "leaderworkerset",
            None,
        ));
        let slow = tokio::spawn({
            let recorder = recorder.clone();
            async move { recorder.record(event(), &regarding("slow")).await }
        });
        tokio::time::timeout(HANG, slow_seen.notified())
            .await
            .expect("the slow event was sent");
        // The same event about another object, and so another entry of the same table.
        let fast = tokio::time::timeout(HANG, recorder.publish(event(), &regarding("fine"))).await;
        assert!(matches!(fast, Ok(Ok(()))), "{fast:?}");
        assert!(!slow.is_finished());
        slow.abort();
    }
}
