//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas exactly one
//! runs the reconcilers (upstream-lws.md §6.4: lock `leases`, id `b8b2488c.x-k8s.io`, lease 15s,
//! renew deadline 10s, retry 2s). Webhooks serve on every replica.
//!
//! # Expected flow
//! 1. [`LeaseLock::acquire`] tries every `retry_period`: the Lease is created if absent, taken
//!    over if its holder has not renewed it for `lease_duration` (as observed by this process,
//!    so clocks need not agree, as in client-go), and otherwise left alone.
//! 2. Once held, [`LeaseLock::hold`] renews it every `retry_period`. If no renewal succeeds for
//!    `renew_deadline`, or another holder is seen, leadership is lost: the caller stops
//!    reconciling at once (the process exits, as controller-runtime's manager does).
//! 3. On a clean shutdown [`LeaseLock::release`] empties the holder, so a standby takes over
//!    within one `retry_period` instead of waiting for the lease to expire.
//!
//! # Guarantees
//! Every write is an update with the observed `resourceVersion`: of two candidates racing for
//! an expired Lease exactly one wins. `renew_deadline < lease_duration`, so a leader that cannot
//! renew stops before anyone else may take over.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Upstream's election id (`cmd/main.go`), also the Lease name.
pub const DEFAULT_LEASE_NAME: &str = "b8b2488c.x-k8s.io";
/// Upstream's fallback namespace when not running in a Pod.
pub const DEFAULT_NAMESPACE: &str = "lws-system";
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Durations of the election; the defaults are upstream's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a Lease not renewed keeps others out.
    pub lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// How often candidates try and the leader renews.
    pub retry_period: Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        LeaseTiming {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// The controller's namespace: `$POD_NAMESPACE` (the downward API), else the Pod's own (service
/// account mount), else `lws-system`.
pub fn default_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string())
}

/// A unique identity for this process: host name, process id, start time.
pub fn default_identity() -> String {
    // With hostNetwork every Pod on a node has the node's host name: prefer the Pod's name.
    let host = ["POD_NAME", "HOSTNAME"]
        .iter()
        .find_map(|key| std::env::var(key).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "lws".to_string());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{host}_{}_{nanos:08x}", std::process::id())
}

/// Why [`LeaseLock::hold`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Held {
    /// Shutdown was asked for while leading.
    Shutdown,
    /// Leadership is gone: `reason` says why.
    Lost(String),
}

/// One try's outcome.
enum Attempt {
    Held,
    /// Another candidate holds a live lease.
    Other(String),
    /// A write raced with another candidate's; try again.
    Busy,
}

/// The Lease record last seen, and when this process first saw it.
#[derive(Default)]
struct LastSeen {
    record: Option<(String, Option<String>, Option<String>)>,
    since: Option<Instant>,
}

/// One candidate's handle on the Lease.
pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: LeaseTiming,
}

impl LeaseLock {
    pub fn new(api: Api<Lease>, name: String, identity: String, timing: LeaseTiming) -> Self {
        LeaseLock {
            api,
            name,
            identity,
            timing,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Tries until this process holds the Lease (true) or `shutdown` is cancelled (false).
    pub async fn acquire(&self, shutdown: &CancellationToken) -> bool {
        let mut last_seen = LastSeen::default();
        let mut waiting_on = None;
        loop {
            match self.try_acquire_or_renew(&mut last_seen).await {
                Ok(Attempt::Held) => return true,
                Ok(Attempt::Other(holder)) => {
                    if waiting_on.as_ref() != Some(&holder) {
                        tracing::info!(lease = %self.name, %holder, "waiting for the leader lease");
                        waiting_on = Some(holder);
                    }
                }
                Ok(Attempt::Busy) => {}
                Err(error) => tracing::warn!(lease = %self.name, %error, "leader lease"),
            }
            tokio::select! {
                () = tokio::time::sleep(self.timing.retry_period) => {}
                () = shutdown.cancelled() => return false,
            }
        }
    }

    /// Renews the held Lease until leadership is lost or `shutdown` is cancelled.
    pub async fn hold(&self, shutdown: &CancellationToken) -> Held {
        let mut last_seen = LastSeen::default();
        let mut renewed = Instant::now();
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.timing.retry_period) => {}
                () = shutdown.cancelled() => return Held::Shutdown,
            }
            match self.try_acquire_or_renew(&mut last_seen).await {
                Ok(Attempt::Held) => renewed = Instant::now(),
                Ok(Attempt::Other(holder)) => {
                    return Held::Lost(format!("the lease is held by {holder}"))
                }
                Ok(Attempt::Busy) => {}
                Err(error) => {
                    tracing::warn!(lease = %self.name, %error, "renewing the leader lease")
                }
            }
            if renewed.elapsed() > self.timing.renew_deadline {
                return Held::Lost(format!(
                    "not renewed for {:?} (renew deadline {:?})",
                    renewed.elapsed(),
                    self.timing.renew_deadline
                ));
            }
        }
    }

    /// Empties the holder if it is still this process, so a standby need not wait for expiry.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.name, "released the leader lease"),
            Err(error) => tracing::warn!(lease = %self.name, %error, "releasing the leader lease"),
        }
    }

    /// client-go's `tryAcquireOrRenew`: create, take over an expired lease, or renew ours.
    async fn try_acquire_or_renew(&self, last_seen: &mut LastSeen) -> Result<Attempt, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let duration_seconds = self.timing.lease_duration.as_secs().max(1) as i32;
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(duration_seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    tracing::info!(lease = %self.name, identity = %self.identity,
                        "acquired the leader lease (created it)");
                    Ok(Attempt::Held)
                }
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::Busy),
                Err(error) => Err(error),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let record = (
            holder.clone(),
            spec.renew_time.as_ref().map(|t| t.0.to_string()),
            lease.metadata.resource_version.clone(),
        );
        if last_seen.record.as_ref() != Some(&record) {
            last_seen.record = Some(record);
            last_seen.since = Some(Instant::now());
        }
        // Expiry is judged by when this process saw the record change, not by renewTime: the
        // holder's clock may differ from ours.
        let their_duration = spec
            .lease_duration_seconds
            .map_or(self.timing.lease_duration, |s| {
                Duration::from_secs(s.max(0) as u64)
            });
        let expired = last_seen
            .since
            .is_none_or(|since| since.elapsed() >= their_duration);
        if !holder.is_empty() && holder != self.identity && !expired {
            return Ok(Attempt::Other(holder));
        }
        let mut next = spec.clone();
        if holder != self.identity {
            next.acquire_time = Some(now.clone());
            next.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        next.holder_identity = Some(self.identity.clone());
        next.lease_duration_seconds = Some(duration_seconds);
        next.renew_time = Some(now);
        lease.spec = Some(next);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                if holder != self.identity {
                    tracing::info!(lease = %self.name, identity = %self.identity,
                        previous = %holder, "acquired the leader lease");
                }
                Ok(Attempt::Held)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::Busy),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_timing_is_upstreams_and_renews_before_expiry() {
        let timing = LeaseTiming::default();
        assert_eq!(timing.lease_duration, Duration::from_secs(15));
        assert_eq!(timing.renew_deadline, Duration::from_secs(10));
        assert_eq!(timing.retry_period, Duration::from_secs(2));
        assert!(timing.renew_deadline < timing.lease_duration);
    }

    #[test]
    fn identities_differ_between_candidates() {
        let a = default_identity();
        std::thread::sleep(Duration::from_millis(2));
        assert_ne!(a, default_identity());
    }
}
