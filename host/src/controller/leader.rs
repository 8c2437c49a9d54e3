//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas exactly one
//! runs the reconcilers (upstream-lws.md §6.4: lock `leases`, id `b8b2488c.x-k8s.io`, lease 15s,
//! renew deadline 10s, retry 2s). Webhooks serve on every replica.
//!
//! # Expected flow
//! 1. [`LeaseLock::acquire`] tries every `retry_period`: the Lease is created if absent, taken
//!    over if its holder has not renewed it for `lease_duration` (as observed by this process),
//!    and otherwise left alone.
//! 2. Once held, [`LeaseLock::lead`] runs the work (the controller) and renews the Lease every
//!    `retry_period`. Each successful renew moves the [`Fence`] to that renew's *start* plus
//!    `renew_deadline`. Every Lease call is cut off at the fence's deadline (no call, and no
//!    retry inside kube's client, outlives it). When the deadline passes without a renew, or
//!    another holder is seen, leadership is lost: the work future is dropped (reconciles in
//!    flight included) and `lead` returns; the caller exits, as controller-runtime's manager does.
//! 3. On a clean shutdown [`LeaseLock::release`] empties the holder, so a standby takes over
//!    within one `retry_period` instead of waiting for the lease to expire.
//!
//! # Guarantees (the fencing)
//! Let a renew start at `s` on the leader's clock and be committed by the API server at `c`
//! (`s <= c`). From `s + renew_deadline` on, the leader sends nothing: the work future is
//! dropped, and the client it writes with ([`crate::kube_client::FenceLayer`]) refuses every
//! request and drops every response future still waiting. A standby sees that record at some
//! `o >= c`, and takes the Lease only once `leaseDurationSeconds` has passed on *its* clock
//! since `o`, with a write conditional on the record's `resourceVersion` (a renew in between
//! makes it a conflict). So the standby's first write is at `>= o + lease_duration >
//! s + renew_deadline`: the two never write at the same time. `leaseDurationSeconds` is
//! written rounded *up* to whole seconds, so it is never shorter than the leader assumes.
//!
//! # Assumptions
//! - `renew_deadline < lease_duration`, as client-go requires (the settings refuse others).
//! - Clocks: no agreement on wall time is needed (renewTime is never compared across
//!   processes; client-go does the same). Each process measures on its monotonic clock, and
//!   the two must not drift apart by more than `lease_duration - renew_deadline` over one
//!   `lease_duration` (5 s in 15 s with upstream's defaults).
//! - A request sent before the deadline may still reach the API server after it (it cannot be
//!   recalled): its delivery and processing must take less than
//!   `lease_duration - renew_deadline`. client-go leaves the same gap; only the API server
//!   could close it, and it has no fencing tokens.
//! - A reconcile task is aborted when the controller future is dropped: it stops at its next
//!   `.await`. A module call already on the blocking pool finishes, but its plan is discarded.
//!
//! # Why not `kube-lease-manager`
//! It targets kube 5, but (0.13.1) its calls carry no timeout, so a hung renew keeps it
//! "leader" for as long as the call hangs; it has no renew deadline (it learns it lost only
//! when a call answers); it judges expiry by the holder's `renewTime` against the local wall
//! clock (a clock skew above its `grace` splits the brain); and it panics on a Lease whose
//! renewTime plus duration overflows. Wrapping it would leave all four, so the lock is ours.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
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

impl LeaseTiming {
    /// `leaseDurationSeconds` as written: rounded up, so a standby never waits less than the
    /// leader's fencing assumes.
    fn lease_duration_seconds(&self) -> i32 {
        let lease = self.lease_duration;
        let seconds = lease
            .as_secs()
            .saturating_add(u64::from(lease.subsec_nanos() > 0));
        i32::try_from(seconds).unwrap_or(i32::MAX).max(1)
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

/// Until when this process may write as the leader. Closed until the Lease is acquired, and
/// again once leadership is lost; each renew moves the deadline on. Clones share it: the
/// [`LeaseLock`] moves it, and the controller's client ([`crate::kube_client::FenceLayer`])
/// and [`Fence::guard`] obey it.
#[derive(Clone, Debug)]
pub struct Fence {
    deadline: Arc<watch::Sender<Option<Instant>>>,
}

impl Default for Fence {
    fn default() -> Self {
        Fence::closed()
    }
}

impl Fence {
    /// A fence that lets nothing through until opened.
    pub fn closed() -> Self {
        Fence {
            deadline: Arc::new(watch::Sender::new(None)),
        }
    }

    /// Lets work through until `deadline`.
    pub fn open_until(&self, deadline: Instant) {
        self.deadline.send_replace(Some(deadline));
    }

    pub fn close(&self) {
        self.deadline.send_replace(None);
    }

    /// `None` while closed.
    pub fn deadline(&self) -> Option<Instant> {
        *self.deadline.borrow()
    }

    pub fn is_open(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() < d)
    }

    /// Resolves once the fence is closed, or its deadline passes without being moved.
    pub async fn shut(&self) {
        let mut deadline = self.deadline.subscribe();
        loop {
            let Some(until) = *deadline.borrow_and_update() else {
                return;
            };
            if Instant::now() >= until {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(until.into()) => {}
                // The sender lives as long as `self`: this never errs while we wait.
                changed = deadline.changed() => if changed.is_err() { return },
            }
        }
    }

    /// Runs `work` while the fence is open; `None` (and `work` dropped) once it shuts.
    pub async fn guard<F: Future>(&self, work: F) -> Option<F::Output> {
        tokio::select! {
            biased;
            () = self.shut() => None,
            out = work => Some(out),
        }
    }
}

/// Why [`LeaseLock::lead`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Held {
    /// The work ended by itself (a graceful shutdown) while leading.
    Finished,
    /// Leadership is gone and the work was dropped: `reason` says why.
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

/// Why a try did not get an answer.
#[derive(Debug, thiserror::Error)]
enum TryError {
    #[error(transparent)]
    Api(#[from] kube::Error),
    #[error("no answer before the renew deadline")]
    Timeout,
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
    fence: Fence,
}

impl LeaseLock {
    pub fn new(api: Api<Lease>, name: String, identity: String, timing: LeaseTiming) -> Self {
        LeaseLock {
            api,
            name,
            identity,
            timing,
            fence: Fence::closed(),
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The fence this lock moves: give it to the client the work writes with.
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// Tries until this process holds the Lease (true) or `shutdown` is cancelled (false).
    pub async fn acquire(&self, shutdown: &CancellationToken) -> bool {
        let mut last_seen = LastSeen::default();
        let mut waiting_on = None;
        loop {
            // A try slower than the renew deadline would win a lease already past it.
            let deadline = Instant::now() + self.timing.renew_deadline;
            let attempt =
                tokio::time::timeout_at(deadline.into(), self.try_acquire_or_renew(&mut last_seen));
            match attempt.await.unwrap_or(Err(TryError::Timeout)) {
                Ok(Attempt::Held) => {
                    self.fence.open_until(deadline);
                    return true;
                }
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

    /// Runs `work` while renewing the held Lease. Returns when `work` ends, or when leadership
    /// is lost, and then `work` has been dropped by the fence's deadline at the latest.
    pub async fn lead<W: Future<Output = ()>>(&self, work: W) -> Held {
        tokio::select! {
            biased;
            reason = self.renew_until_lost() => Held::Lost(reason),
            done = self.fence.guard(work) => match done {
                Some(()) => Held::Finished,
                None => Held::Lost(format!(
                    "not renewed within the renew deadline ({:?})",
                    self.timing.renew_deadline
                )),
            },
        }
    }

    /// client-go's renew loop: a try every `retry_period`, each cut off at the deadline.
    async fn renew_until_lost(&self) -> String {
        let mut last_seen = LastSeen::default();
        loop {
            let Some(deadline) = self.fence.deadline() else {
                return "the fence is closed".to_string();
            };
            let next = (Instant::now() + self.timing.retry_period).min(deadline);
            tokio::time::sleep_until(next.into()).await;
            let start = Instant::now();
            if start >= deadline {
                self.fence.close();
                return format!(
                    "not renewed within the renew deadline ({:?})",
                    self.timing.renew_deadline
                );
            }
            let attempt =
                tokio::time::timeout_at(deadline.into(), self.try_acquire_or_renew(&mut last_seen));
            match attempt.await.unwrap_or(Err(TryError::Timeout)) {
                // The server committed it no earlier than `start`: count from there.
                Ok(Attempt::Held) => self.fence.open_until(start + self.timing.renew_deadline),
                Ok(Attempt::Other(holder)) => {
                    self.fence.close();
                    return format!("the lease is held by {holder}");
                }
                // Someone else wrote it: the next read says who.
                Ok(Attempt::Busy) => {}
                Err(error) => {
                    tracing::warn!(lease = %self.name, %error, "renewing the leader lease")
                }
            }
        }
    }

    /// Empties the holder if it is still this process, so a standby need not wait for expiry.
    /// Call it only once the work has stopped; the fence is closed first.
    pub async fn release(&self) {
        self.fence.close();
        let deadline = Instant::now() + self.timing.renew_deadline;
        match tokio::time::timeout_at(deadline.into(), self.try_release()).await {
            Ok(Ok(true)) => tracing::info!(lease = %self.name, "released the leader lease"),
            Ok(Ok(false)) => {}
            Ok(Err(error)) => {
                tracing::warn!(lease = %self.name, %error, "releasing the leader lease")
            }
            Err(_) => tracing::warn!(lease = %self.name, "releasing the leader lease: no answer"),
        }
    }

    /// True when this process was the holder and the Lease now has none.
    async fn try_release(&self) -> Result<bool, kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(false);
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(false);
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await?;
        Ok(true)
    }

    /// client-go's `tryAcquireOrRenew`: create, take over an expired lease, or renew ours.
    async fn try_acquire_or_renew(&self, last_seen: &mut LastSeen) -> Result<Attempt, TryError> {
        let now = MicroTime(Timestamp::now());
        let duration_seconds = self.timing.lease_duration_seconds();
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
                Err(error) => Err(error.into()),
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
                Duration::from_secs(u64::try_from(s).unwrap_or(0))
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
            next.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
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
            Err(error) => Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards a test against hanging; the assertions are about what happened, not how fast.
    const HANG: Duration = Duration::from_secs(30);

    #[test]
    fn default_timing_is_upstreams_and_renews_before_expiry() {
        let timing = LeaseTiming::default();
        assert_eq!(timing.lease_duration, Duration::from_secs(15));
        assert_eq!(timing.renew_deadline, Duration::from_secs(10));
        assert_eq!(timing.retry_period, Duration::from_secs(2));
        assert!(timing.renew_deadline < timing.lease_duration);
    }

    #[test]
    fn lease_duration_seconds_round_up() {
        let timing = |lease| LeaseTiming {
            lease_duration: lease,
            ..LeaseTiming::default()
        };
        assert_eq!(timing(Duration::from_secs(15)).lease_duration_seconds(), 15);
        assert_eq!(
            timing(Duration::from_millis(1500)).lease_duration_seconds(),
            2
        );
        assert_eq!(timing(Duration::from_millis(1)).lease_duration_seconds(), 1);
        assert_eq!(timing(Duration::ZERO).lease_duration_seconds(), 1);
        assert_eq!(timing(Duration::MAX).lease_duration_seconds(), i32::MAX);
    }

    #[test]
    fn identities_differ_between_candidates() {
        let a = default_identity();
        std::thread::sleep(Duration::from_millis(2));
        assert_ne!(a, default_identity());
    }

    #[test]
    fn a_fence_is_closed_until_opened_and_after_its_deadline() {
        let fence = Fence::default();
        assert!(!fence.is_open());
        fence.open_until(Instant::now() + Duration::from_secs(3600));
        assert!(fence.is_open());
        assert!(fence.clone().is_open(), "clones share the deadline");
        fence.open_until(Instant::now());
        assert!(!fence.is_open(), "a deadline reached lets nothing through");
        fence.open_until(Instant::now() + Duration::from_secs(3600));
        fence.close();
        assert!(!fence.is_open());
        assert_eq!(fence.deadline(), None);
    }

    #[tokio::test]
    async fn guard_drops_the_work_at_the_deadline() {
        let fence = Fence::closed();
        fence.open_until(Instant::now() + Duration::from_millis(50));
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
        let work = async move {
            let _dropped = dropped_tx;
            std::future::pending::<()>().await
        };
        let out = tokio::time::timeout(HANG, fence.guard(work)).await;
        assert_eq!(out.ok(), Some(None), "the deadline must end the work");
        assert!(dropped_rx.await.is_err(), "the work future was dropped");
        // Finished work is returned, while the fence is open.
        fence.open_until(Instant::now() + Duration::from_secs(3600));
        assert_eq!(fence.guard(async { 7 }).await, Some(7));
    }

    #[tokio::test]
    async fn guard_follows_a_moved_deadline_and_a_close() {
        let fence = Fence::closed();
        fence.open_until(Instant::now() + Duration::from_millis(20));
        // Moved on before it passes: the work goes on past the first deadline.
        fence.open_until(Instant::now() + Duration::from_secs(3600));
        let guarded = tokio::spawn({
            let fence = fence.clone();
            async move { fence.guard(std::future::pending::<()>()).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !guarded.is_finished(),
            "a moved deadline must not end the work"
        );
        fence.close();
        let out = tokio::time::timeout(HANG, guarded).await;
        assert_eq!(
            out.ok().and_then(Result::ok),
            Some(None),
            "closing ends the work"
        );
        // A closed fence never runs the work at all.
        let ran = std::sync::atomic::AtomicBool::new(false);
        let out = fence
            .guard(async { ran.store(true, std::sync::atomic::Ordering::SeqCst) })
            .await;
        assert_eq!(out, None);
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }
}
