//! Recording events through events.k8s.io/v1, the way client-go's event broadcaster does it.
//!
//! kube's `Recorder` folds events into a series by (type, reason, action, regarding, related)
//! and so drops a second event whose only difference is its note ("with 2 groups ready of total
//! 3 groups" after "of total 2 groups"): upstream's condition events would vanish. Here the
//! note is part of the key, as in client-go; a repeat of the very same event within
//! [`SERIES_TTL`] bumps the stored event's series instead of creating another object.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use std::collections::HashMap;
use tokio::sync::Mutex;

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
}

impl EventRecorder {
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        EventRecorder {
            client,
            controller: controller.to_string(),
            instance: instance.unwrap_or_else(|| controller.to_string()),
            recorded: Mutex::new(HashMap::new()),
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
        let mut recorded = self.recorded.lock().await;
        recorded.retain(|_, r| now.duration_since(r.last) < SERIES_TTL);
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Some(previous) = recorded.get_mut(&key) {
            previous.count += 1;
            previous.last = now;
            let series = EventSeries {
                count: previous.count,
                last_observed_time: MicroTime(now),
            };
            let patch = serde_json::json!({ "series": series });
            let api: Api<Event> = Api::namespaced(self.client.clone(), &previous.namespace);
            match api
                .patch(
                    &previous.name,
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
        api.create(&PostParams::default(), &object).await?;
        recorded.insert(
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
