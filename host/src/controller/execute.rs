//! Carries out a [`ReconcilePlan`] against the API server, in the order the contract states:
//! create, apply, delete, status, events. Nothing here looks inside the objects beyond what
//! addressing them needs (apiVersion, kind, namespace, name). Events are reports: one that
//! cannot be recorded is logged and counted, and the reconcile goes on.

use super::events::{EventRecorder, NewEvent};
use super::Error;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
    PostParams, Preconditions, PropagationPolicy,
};
use kube::Client;
use lws_core::labels::FIELD_MANAGER;
use lws_core::reconcile::{EventType, ObjectRef, PlannedEvent, ReconcilePlan};

/// Where plan results go: the client, the LWS's own API handle and the event recorder.
pub struct Executor<'a> {
    pub client: &'a Client,
    pub lws_api: &'a Api<DynamicObject>,
    pub recorder: &'a EventRecorder,
    /// The LeaderWorkerSet, as the `regarding` object of every event.
    pub regarding: ObjectReference,
}

impl Executor<'_> {
    /// Runs every step of `plan`; stops at the first failure (the next reconcile retries).
    pub async fn execute(&self, plan: &ReconcilePlan) -> Result<(), Error> {
        for object in &plan.create {
            self.create(object).await?;
        }
        for object in &plan.apply {
            self.apply(object).await?;
        }
        for target in &plan.delete {
            self.delete(target).await?;
        }
        if let Some(status) = &plan.status {
            let name = self.regarding.name.clone().unwrap_or_default();
            let patch = serde_json::json!({ "status": status });
            self.lws_api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(Error::StatusWrite)?;
        }
        for event in &plan.events {
            self.publish(event).await;
        }
        Ok(())
    }

    /// Creates `object` unless it exists (`AlreadyExists` is success: the plan only creates
    /// objects it never updates).
    async fn create(&self, object: &serde_json::Value) -> Result<(), Error> {
        let (api, dynamic) = self.api_for(object)?;
        match api.create(&PostParams::default(), &dynamic).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(()),
            // The namespace is going away with everything in it: nothing left to create.
            Err(kube::Error::Api(status)) if namespace_terminating(&status) => Ok(()),
            Err(source) => Err(Error::Create {
                what: describe(object),
                source,
            }),
        }
    }

    /// Server-side applies `object` with field manager `lws`, taking over conflicting fields.
    async fn apply(&self, object: &serde_json::Value) -> Result<(), Error> {
        let (api, dynamic) = self.api_for(object)?;
        let name = dynamic.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&dynamic),
        )
        .await
        .map(drop)
        .map_err(|source| Error::Apply {
            what: describe(object),
            source,
        })
    }

    /// Deletes `target`; NotFound (already gone) and Conflict (the uid precondition names an
    /// incarnation that is already gone) are success.
    async fn delete(&self, target: &ObjectRef) -> Result<(), Error> {
        let resource = api_resource(&target.api_version, &target.kind)?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &target.namespace, &resource);
        let params = DeleteParams {
            propagation_policy: match target.propagation_policy.as_deref() {
                Some("Foreground") => Some(PropagationPolicy::Foreground),
                Some("Background") => Some(PropagationPolicy::Background),
                Some("Orphan") => Some(PropagationPolicy::Orphan),
                _ => None,
            },
            preconditions: target.uid.clone().map(|uid| Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&target.name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.is_not_found() || status.code == 409 => Ok(()),
            Err(source) => Err(Error::Delete {
                what: format!("{} {}/{}", target.kind, target.namespace, target.name),
                source,
            }),
        }
    }

    /// Records one event through events.k8s.io, regarding the LeaderWorkerSet.
    async fn publish(&self, planned: &PlannedEvent) {
        let event = NewEvent {
            type_: match planned.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            },
            reason: planned.reason.clone(),
            action: planned.action.clone(),
            note: planned.note.clone(),
            related: planned.related.as_ref().map(|r| ObjectReference {
                api_version: Some(r.api_version.clone()),
                kind: Some(r.kind.clone()),
                namespace: Some(r.namespace.clone()),
                name: Some(r.name.clone()),
                uid: r.uid.clone(),
                ..ObjectReference::default()
            }),
        };
        self.recorder.record(event, &self.regarding).await
    }

    /// The namespaced API for `object`'s kind, and `object` as a [`DynamicObject`].
    fn api_for(
        &self,
        object: &serde_json::Value,
    ) -> Result<(Api<DynamicObject>, DynamicObject), Error> {
        let api_version = str_at(object, "/apiVersion")?;
        let kind = str_at(object, "/kind")?;
        let resource = api_resource(api_version, kind)?;
        let dynamic: DynamicObject = serde_json::from_value(object.clone())
            .map_err(|e| Error::BadPlan(format!("{}: {e}", describe(object))))?;
        let namespace = dynamic
            .metadata
            .namespace
            .clone()
            .or_else(|| self.regarding.namespace.clone())
            .unwrap_or_default();
        Ok((
            Api::namespaced_with(self.client.clone(), &namespace, &resource),
            dynamic,
        ))
    }
}

/// The API resource for an apiVersion and kind; the plural is derived the way kube does it
/// (every kind the plan names has a regular plural: statefulsets, services, controllerrevisions,
/// pods, podgroups).
pub fn api_resource(api_version: &str, kind: &str) -> Result<ApiResource, Error> {
    let (group, version) = match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    };
    if version.is_empty() || kind.is_empty() {
        return Err(Error::BadPlan(format!(
            "no apiVersion/kind in {api_version:?} {kind:?}"
        )));
    }
    Ok(ApiResource::from_gvk(&GroupVersionKind::gvk(
        group, version, kind,
    )))
}

fn str_at<'a>(object: &'a serde_json::Value, pointer: &str) -> Result<&'a str, Error> {
    object
        .pointer(pointer)
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| Error::BadPlan(format!("object without {pointer}: {}", describe(object))))
}

/// `Kind namespace/name`, for errors and logs.
fn describe(object: &serde_json::Value) -> String {
    let get = |p: &str| {
        object
            .pointer(p)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?")
    };
    format!(
        "{} {}/{}",
        get("/kind"),
        get("/metadata/namespace"),
        get("/metadata/name")
    )
}

/// A Forbidden answer because the namespace is being deleted.
fn namespace_terminating(status: &kube::core::Status) -> bool {
    status
        .details
        .as_ref()
        .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
}
