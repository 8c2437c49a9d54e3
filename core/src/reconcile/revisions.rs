//! Which ControllerRevision is current, which to create, which to truncate.
//!
//! Mirrors `getOrCreateRevisionIfNonExist` and `getUpdatedRevision` in
//! `pkg/controllers/leaderworkerset_controller.go`, and `NewRevision`, `GetRevision`,
//! `EqualRevision`, `TruncateRevisions` in `pkg/utils/revision/revision_utils.go` upstream
//! (upstream-lws.md §4.3).

use super::events::{normal, with_related, CREATE, CREATING_REVISION};
use super::observed::{controller_of, label, object_ref, revision_label};
use super::wire::{ObjectRef, PlannedEvent};
use crate::api::LeaderWorkerSet;
use crate::labels::{REVISION_KEY, SET_NAME_LABEL_KEY};
use crate::revision::{apply_revision, revision_key_of_patch, revision_patch};
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use std::collections::BTreeMap;

/// `apiVersion` of ControllerRevisions.
const APPS_V1: &str = "apps/v1";
/// Upstream keeps revision names within the 253-character limit by cutting the prefix at 220.
const MAX_PREFIX_LENGTH: usize = 220;

/// The current revision and what it takes to have it.
#[derive(Clone, Debug, PartialEq)]
pub struct RevisionDecision {
    /// The current revision key: the leader StatefulSet's, or the spec's after an update.
    pub key: String,
    /// The stored patch of the current revision (what [`apply_revision`] takes).
    pub patch: Vec<u8>,
    /// The spec's template changed since the current revision (upstream `lwsUpdated`).
    pub updated: bool,
    /// Revisions to create (at most two: a missing one and an updated one).
    pub create: Vec<ControllerRevision>,
    /// `CreatingRevision` events.
    pub events: Vec<PlannedEvent>,
}

/// Decides the current revision (upstream `getOrCreateRevisionIfNonExist` followed by
/// `getUpdatedRevision`). `revisions` are sorted by revision number.
pub fn decide_revision(
    lws: &LeaderWorkerSet,
    leader_sts: Option<&StatefulSet>,
    revisions: &[&ControllerRevision],
) -> RevisionDecision {
    let spec_patch = revision_patch(lws);
    let sts_key = leader_sts.map_or("", |s| revision_label(&s.metadata));
    let mut next_number = highest_revision(lws, revisions) + 1;
    let mut decision = RevisionDecision {
        key: String::new(),
        patch: Vec::new(),
        updated: false,
        create: Vec::new(),
        events: Vec::new(),
    };

    // getOrCreateRevisionIfNonExist: the sts's key, or a fresh one for a new LWS.
    match find_revision(lws, revisions, sts_key) {
        Some(stored) => {
            decision.key = sts_key.to_string();
            decision.patch = revision_data(stored);
        }
        None => {
            let key = if sts_key.is_empty() {
                revision_key_of_patch(&spec_patch)
            } else {
                sts_key.to_string()
            };
            let revision = build_revision(lws, &key, &spec_patch, next_number);
            next_number += 1;
            let note = if sts_key.is_empty() {
                format!("Creating revision with key {key} for a newly created LeaderWorkerSet")
            } else {
                format!("Creating missing revision with key {key} for existing LeaderWorkerSet")
            };
            decision.events.push(revision_event(note, &revision, lws));
            decision.create.push(revision);
            decision.key = key;
            decision.patch = spec_patch.clone();
        }
    }

    // getUpdatedRevision: only once a leader StatefulSet exists.
    if leader_sts.is_none() || is_same_revision(lws, &spec_patch, &decision.patch) {
        return decision;
    }
    let key = revision_key_of_patch(&spec_patch);
    decision.updated = true;
    let note = format!("Creating revision with key {key} for updated LWS");
    match find_revision(lws, revisions, &key) {
        // Back to a template whose revision is still stored (not truncated yet): reuse it.
        Some(stored) => {
            let mut event = normal(CREATING_REVISION, CREATE, note);
            event.related = Some(object_ref(
                APPS_V1,
                "ControllerRevision",
                &stored.metadata,
                lws.namespace(),
            ));
            decision.events.push(event);
        }
        None => {
            let revision = build_revision(lws, &key, &spec_patch, next_number);
            decision.events.push(revision_event(note, &revision, lws));
            decision.create.push(revision);
        }
    }
    decision.key = key;
    decision.patch = spec_patch;
    decision
}

/// The stored revision is the spec's (upstream `EqualRevision`): equal bytes, or, when the
/// bytes differ (another encoder wrote them), equal after restoring the stored patch onto the
/// LWS and re-encoding it.
pub fn is_same_revision(lws: &LeaderWorkerSet, spec_patch: &[u8], stored: &[u8]) -> bool {
    if spec_patch == stored {
        return true;
    }
    match apply_revision(lws, stored) {
        Ok(restored) => revision_patch(&restored) == spec_patch,
        Err(_) => false,
    }
}

/// The highest-numbered revision with `key`, owned by this LWS or by nobody (upstream
/// `GetRevision`); none for an empty key.
pub fn find_revision<'a>(
    lws: &LeaderWorkerSet,
    revisions: &[&'a ControllerRevision],
    key: &str,
) -> Option<&'a ControllerRevision> {
    if key.is_empty() {
        return None;
    }
    revisions
        .iter()
        .copied()
        .filter(|r| is_ours(lws, r) && revision_label(&r.metadata) == key)
        .max_by_key(|r| r.revision)
}

/// Revisions to delete once an update is done: every revision of ours with another key
/// (upstream `TruncateRevisions`).
pub fn truncate_revisions(
    lws: &LeaderWorkerSet,
    revisions: &[&ControllerRevision],
    key: &str,
) -> Vec<ObjectRef> {
    revisions
        .iter()
        .filter(|r| is_ours(lws, r) && revision_label(&r.metadata) != key)
        .map(|r| object_ref(APPS_V1, "ControllerRevision", &r.metadata, lws.namespace()))
        .collect()
}

/// The stored patch bytes of a revision.
pub fn revision_data(revision: &ControllerRevision) -> Vec<u8> {
    revision
        .data
        .as_ref()
        .map(|raw| serde_json::to_vec(&raw.0).unwrap_or_default())
        .unwrap_or_default()
}

/// The ControllerRevision upstream's `NewRevision` builds: `<lws≤220>-<key>-<n>`.
pub fn build_revision(
    lws: &LeaderWorkerSet,
    key: &str,
    patch: &[u8],
    number: i64,
) -> ControllerRevision {
    let prefix: String = lws.name().chars().take(MAX_PREFIX_LENGTH).collect();
    // The patch is JSON we wrote ourselves; a parse failure would be a bug in revision_patch.
    let data = serde_json::from_slice(patch).expect("revision_patch writes JSON");
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{prefix}-{key}-{number}")),
            namespace: Some(lws.namespace().to_string()),
            labels: Some(BTreeMap::from([
                (SET_NAME_LABEL_KEY.to_string(), lws.name().to_string()),
                (REVISION_KEY.to_string(), key.to_string()),
            ])),
            owner_references: Some(vec![crate::group::lws_owner_reference(lws)]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(data)),
        revision: number,
    }
}

/// Highest revision number among ours; 0 when none.
fn highest_revision(lws: &LeaderWorkerSet, revisions: &[&ControllerRevision]) -> i64 {
    revisions
        .iter()
        .filter(|r| is_ours(lws, r))
        .map(|r| r.revision)
        .max()
        .unwrap_or(0)
}

/// Labelled with this LWS's name and controlled by it (same uid) or by nobody.
fn is_ours(lws: &LeaderWorkerSet, revision: &ControllerRevision) -> bool {
    if label(&revision.metadata, SET_NAME_LABEL_KEY) != Some(lws.name()) {
        return false;
    }
    match controller_of(&revision.metadata) {
        None => true,
        Some(owner) => Some(owner.uid.as_str()) == lws.metadata.uid.as_deref(),
    }
}

fn revision_event(
    note: String,
    revision: &ControllerRevision,
    lws: &LeaderWorkerSet,
) -> PlannedEvent {
    with_related(
        normal(CREATING_REVISION, CREATE, note),
        object_ref(
            APPS_V1,
            "ControllerRevision",
            &revision.metadata,
            lws.namespace(),
        ),
    )
}
