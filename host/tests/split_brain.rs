//! Split brain, issue 14: a leader whose Lease calls hang (or answer 503) must stop writing
//! before a standby can take the Lease over.
//!
//! Two candidates run the real [`LeaseLock`] and write through the clients the controller
//! uses ([`Connection::client`], the writes fenced by the Lease), against a fake API server in
//! this process. It implements just the Lease API (GET, POST, PUT with `resourceVersion`
//! conflicts) and ConfigMap creation (the "work", each answered after a delay, so a write is
//! always in flight), and logs every call with the instant it was served. Leader A reaches it
//! through a fault layer (the proxy), standby B directly. Once A leads and B waits, A's Lease
//! calls are black-holed (accepted, never answered) or answered 503, while its other calls
//! still pass: then the log must show
//! - every work write of A before B's takeover, and every one of B's after it (never two
//!   writers), and
//! - A stepping down before the Lease's expiry as B observes it: B counts `lease_duration`
//!   from when it first read A's last record, and the server served that read no later.
//!
//! One process and one monotonic clock serve every instant compared here, so the comparisons
//! are the protocol's own (no threshold on how fast anything ran).

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};
use lws_host::controller::leader::{Held, LeaseLock, LeaseTiming};
use lws_host::kube_client::{ClientOptions, Connection, Timeouts};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const NAMESPACE: &str = "lws-system";
const LEASE: &str = "b8b2488c.x-k8s.io";
/// Short, in upstream's proportions (15/10/2).
const TIMING: LeaseTiming = LeaseTiming {
    lease_duration: Duration::from_secs(3),
    renew_deadline: Duration::from_secs(2),
    retry_period: Duration::from_millis(500),
};
/// Each work write is answered this late: one is nearly always in flight.
const WORK_DELAY: Duration = Duration::from_millis(300);
/// Guards against a hang only; never a pass condition.
const HANG: Duration = Duration::from_secs(40);

/// What the proxy in front of A does with A's Lease calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// Accepted and never answered.
    BlackHole,
    /// Answered 503 at once.
    Unavailable,
}

/// Which listener a call came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// The fault layer: leader A.
    Proxy,
    /// Direct: standby B.
    Direct,
}

#[derive(Clone, Debug)]
enum What {
    /// A Lease read, and the version of the record it returned.
    LeaseRead { version: u64 },
    /// A Lease write that took effect.
    LeaseWrite {
        holder: Option<String>,
        version: u64,
    },
    /// A ConfigMap created by `writer`.
    Work { writer: String },
    /// A Lease call the fault layer swallowed or refused.
    Faulted,
}

#[derive(Clone, Debug)]
struct Entry {
    at: Instant,
    via: Via,
    what: What,
}

/// The fake API server's state, shared by both listeners.
#[derive(Default)]
struct Store {
    lease: Option<Value>,
    version: u64,
    log: Vec<Entry>,
    fault: Option<Fault>,
}

#[derive(Clone)]
struct Server {
    store: Arc<Mutex<Store>>,
    via: Via,
}

impl Server {
    fn log(&self, what: What) {
        let entry = Entry {
            at: Instant::now(),
            via: self.via,
            what,
        };
        self.store.lock().unwrap().log.push(entry);
    }
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16(),
    });
    (code, Json(body)).into_response()
}

fn holder_of(lease: &Value) -> Option<String> {
    lease
        .pointer("/spec/holderIdentity")
        .and_then(Value::as_str)
        .map(str::to_string)
}

async fn get_lease(
    State(server): State<Server>,
    Path((_, name)): Path<(String, String)>,
) -> Response {
    let (lease, version) = {
        let store = server.store.lock().unwrap();
        (store.lease.clone(), store.version)
    };
    match lease {
        Some(lease) if name == LEASE => {
            server.log(What::LeaseRead { version });
            Json(lease).into_response()
        }
        _ => status(StatusCode::NOT_FOUND, "NotFound", "leases not found"),
    }
}

/// Stores `lease` as the next version; the caller holds the lock.
fn store_lease(store: &mut Store, mut lease: Value) -> (Value, u64) {
    store.version += 1;
    lease["metadata"]["resourceVersion"] = json!(store.version.to_string());
    store.lease = Some(lease.clone());
    (lease, store.version)
}

async fn create_lease(State(server): State<Server>, Json(lease): Json<Value>) -> Response {
    let mut store = server.store.lock().unwrap();
    if store.lease.is_some() {
        return status(StatusCode::CONFLICT, "AlreadyExists", "lease exists");
    }
    let holder = holder_of(&lease);
    let (lease, version) = store_lease(&mut store, lease);
    store.log.push(Entry {
        at: Instant::now(),
        via: server.via,
        what: What::LeaseWrite { holder, version },
    });
    (StatusCode::CREATED, Json(lease)).into_response()
}

async fn replace_lease(State(server): State<Server>, Json(lease): Json<Value>) -> Response {
    let mut store = server.store.lock().unwrap();
    let current = store.version.to_string();
    if store.lease.is_none() {
        return status(StatusCode::NOT_FOUND, "NotFound", "leases not found");
    }
    if lease
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        != Some(&current)
    {
        return status(
            StatusCode::CONFLICT,
            "Conflict",
            "the object has been modified",
        );
    }
    let holder = holder_of(&lease);
    let (lease, version) = store_lease(&mut store, lease);
    store.log.push(Entry {
        at: Instant::now(),
        via: server.via,
        what: What::LeaseWrite { holder, version },
    });
    Json(lease).into_response()
}

async fn create_work(State(server): State<Server>, Json(object): Json<Value>) -> Response {
    let writer = object
        .pointer("/metadata/labels/writer")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    server.log(What::Work { writer });
    tokio::time::sleep(WORK_DELAY).await;
    (StatusCode::CREATED, Json(object)).into_response()
}

/// The proxy: applies the fault to Lease calls only.
async fn fault_layer(State(server): State<Server>, request: Request, next: Next) -> Response {
    let fault = server.store.lock().unwrap().fault.unwrap_or(Fault::None);
    let lease_call = request
        .uri()
        .path()
        .starts_with("/apis/coordination.k8s.io/");
    match fault {
        Fault::BlackHole if lease_call => {
            server.log(What::Faulted);
            std::future::pending().await
        }
        Fault::Unavailable if lease_call => {
            server.log(What::Faulted);
            status(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "try later",
            )
        }
        _ => next.run(request).await,
    }
}

fn routes(server: Server) -> Router {
    let leases = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases";
    let router = Router::new()
        .route(
            &format!("{leases}/{{name}}"),
            get(get_lease).put(replace_lease),
        )
        .route(leases, post(create_lease))
        .route("/api/v1/namespaces/{ns}/configmaps", post(create_work));
    match server.via {
        Via::Proxy => router
            .layer(middleware::from_fn_with_state(server.clone(), fault_layer))
            .with_state(server),
        Via::Direct => router.with_state(server),
    }
}

/// Serves `via`'s listener; returns its URL.
async fn listen(store: Arc<Mutex<Store>>, via: Via) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = routes(Server { store, via });
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// What a candidate reports of itself.
#[derive(Default)]
struct Reports {
    stepped_down: BTreeMap<String, (Instant, String)>,
}

/// One controller: stands for the Lease, then writes ConfigMaps while it leads, through the
/// fenced client, the way the controller's reconciles do.
async fn candidate(identity: &'static str, url: String, reports: Arc<Mutex<Reports>>) {
    let config = kube::Config::new(url.parse().unwrap());
    let unlimited = ClientOptions {
        kubeconfig: None,
        qps: -1.0,
        burst: 0,
    };
    let connection = Connection::new(config, &unlimited);
    // The read timeout (70 s) outlasts the test: only the fence can end a hung call here.
    let client = connection.client(Timeouts::REQUESTS, None).unwrap();
    let lock = LeaseLock::new(
        Api::namespaced(client, NAMESPACE),
        LEASE.to_string(),
        identity.to_string(),
        TIMING,
    );
    let writer = connection
        .client(Timeouts::REQUESTS, Some(&lock.fence()))
        .unwrap();
    if !lock.acquire(&CancellationToken::new()).await {
        return;
    }
    let work = async {
        let api: Api<ConfigMap> = Api::namespaced(writer, "default");
        for n in 0u64.. {
            let object = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(format!("{identity}-{n}")),
                    labels: Some([("writer".to_string(), identity.to_string())].into()),
                    ..ObjectMeta::default()
                },
                ..ConfigMap::default()
            };
            let _ = api.create(&PostParams::default(), &object).await;
        }
    };
    let held = lock.lead(work).await;
    let reason = match held {
        Held::Lost(reason) => reason,
        Held::Finished => "finished".to_string(),
    };
    reports
        .lock()
        .unwrap()
        .stepped_down
        .insert(identity.to_string(), (Instant::now(), reason));
}

/// The scenario's instants, as the server logged them and the candidates reported them.
#[derive(Debug)]
struct Timeline {
    fault: Instant,
    /// A's last Lease write that took effect.
    last_renew: Instant,
    /// A's step-down (`lead` returned), if it stepped down.
    stepped_down: Option<(Instant, String)>,
    /// When the server first gave B A's last record: B counts the expiry from no earlier.
    standby_saw_last_record: Instant,
    /// B's write that took the Lease.
    takeover: Instant,
    leader_writes: Vec<Instant>,
    standby_writes: Vec<Instant>,
    faulted_calls: usize,
}

impl Timeline {
    fn expiry_seen_by_standby(&self) -> Instant {
        self.standby_saw_last_record + TIMING.lease_duration
    }

    fn print(&self, name: &str) {
        let at = |t: Instant| {
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            if t >= self.fault {
                format!("{:+8.1} ms", ms(t - self.fault))
            } else {
                format!("{:+8.1} ms", -ms(self.fault - t))
            }
        };
        eprintln!("split brain, {name} (instants from the fault):");
        eprintln!("  A's last successful renew        {}", at(self.last_renew));
        match &self.stepped_down {
            Some((t, reason)) => {
                eprintln!("  A stepped down                   {} ({reason})", at(*t))
            }
            None => eprintln!("  A stepped down                   never"),
        }
        eprintln!(
            "  B first read A's last record     {}",
            at(self.standby_saw_last_record)
        );
        eprintln!(
            "  the Lease's expiry as B sees it  {}",
            at(self.expiry_seen_by_standby())
        );
        eprintln!("  B took the Lease                 {}", at(self.takeover));
        if let Some(last) = self.leader_writes.last() {
            eprintln!("  A's last write                   {}", at(*last));
        }
        if let Some(first) = self.standby_writes.first() {
            eprintln!("  B's first write                  {}", at(*first));
        }
        let overlapping = self
            .leader_writes
            .iter()
            .filter(|t| **t > self.takeover)
            .count();
        eprintln!("  A's writes after the takeover    {overlapping}");
        eprintln!("  A's Lease calls faulted          {}", self.faulted_calls);
    }
}

/// Runs the scenario with `fault` and returns its timeline.
async fn run(fault: Fault) -> Timeline {
    let store = Arc::new(Mutex::new(Store::default()));
    let proxy = listen(store.clone(), Via::Proxy).await;
    let direct = listen(store.clone(), Via::Direct).await;
    let reports = Arc::new(Mutex::new(Reports::default()));
    let holder = || {
        let store = store.lock().unwrap();
        store.lease.as_ref().and_then(holder_of)
    };
    let wait_for = |who: &'static str| {
        let holder = &holder;
        async move {
            while holder().as_deref() != Some(who) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    let a = tokio::spawn(candidate("A", proxy, reports.clone()));
    tokio::time::timeout(HANG, wait_for("A"))
        .await
        .expect("A leads");
    let b = tokio::spawn(candidate("B", direct, reports.clone()));
    // A renews a few times while B watches.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let fault_at = {
        let mut store = store.lock().unwrap();
        store.fault = Some(fault);
        Instant::now()
    };
    tokio::time::timeout(HANG, wait_for("B"))
        .await
        .expect("B takes over");
    // Long enough for a leader that did not step down to show it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    a.abort();
    b.abort();

    let log = store.lock().unwrap().log.clone();
    let leader_lease_writes = |e: &&Entry| matches!(&e.what, What::LeaseWrite { holder, .. } if holder.as_deref() == Some("A"));
    let (last_renew, last_version) = log
        .iter()
        .filter(leader_lease_writes)
        .filter_map(|e| match &e.what {
            What::LeaseWrite { version, .. } => Some((e.at, *version)),
            _ => None,
        })
        .next_back()
        .expect("A renewed");
    let takeover = log
        .iter()
        .find(|e| matches!(&e.what, What::LeaseWrite { holder, .. } if holder.as_deref() == Some("B")))
        .expect("B's takeover is logged")
        .at;
    let standby_saw_last_record = log
        .iter()
        .find(|e| {
            e.via == Via::Direct
                && matches!(&e.what, What::LeaseRead { version, .. } if *version == last_version)
        })
        .expect("B read A's last record")
        .at;
    let writes = |who: &str| -> Vec<Instant> {
        log.iter()
            .filter(|e| matches!(&e.what, What::Work { writer } if writer == who))
            .map(|e| e.at)
            .collect()
    };
    let stepped_down = reports.lock().unwrap().stepped_down.get("A").cloned();
    Timeline {
        fault: fault_at,
        last_renew,
        stepped_down,
        standby_saw_last_record,
        takeover,
        leader_writes: writes("A"),
        standby_writes: writes("B"),
        faulted_calls: log
            .iter()
            .filter(|e| matches!(e.what, What::Faulted))
            .count(),
    }
}

/// The protocol's properties, checked on one timeline.
fn check(timeline: &Timeline) {
    assert!(
        timeline.faulted_calls > 0,
        "the fault must have met A's Lease calls"
    );
    assert!(
        timeline.leader_writes.iter().any(|t| *t < timeline.fault),
        "A wrote while leading"
    );
    assert!(!timeline.standby_writes.is_empty(), "B wrote once leading");
    let late = timeline
        .leader_writes
        .iter()
        .filter(|t| **t >= timeline.takeover)
        .count();
    assert_eq!(late, 0, "A wrote after B took the Lease: two writers");
    let (stepped_down, _) = timeline
        .stepped_down
        .clone()
        .expect("A must step down on its own");
    assert!(
        stepped_down < timeline.expiry_seen_by_standby(),
        "A must step down before the Lease expires as B sees it"
    );
    assert!(stepped_down < timeline.takeover);
    assert!(
        timeline
            .standby_writes
            .iter()
            .all(|t| *t > timeline.takeover),
        "B wrote before it held the Lease"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_whose_renew_hangs_steps_down_before_the_standby_takes_over() {
    let timeline = run(Fault::BlackHole).await;
    timeline.print("Lease calls black-holed");
    check(&timeline);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_whose_renew_is_refused_steps_down_before_the_standby_takes_over() {
    let timeline = run(Fault::Unavailable).await;
    timeline.print("Lease calls answered 503");
    check(&timeline);
}

/// The fake server itself: a stale `resourceVersion` is a conflict, so of two candidates
/// racing for the Lease only one can win (the check above relies on it).
#[tokio::test]
async fn the_fake_lease_api_refuses_a_stale_write() {
    let store = Arc::new(Mutex::new(Store::default()));
    let url = listen(store.clone(), Via::Direct).await;
    let client = Connection::new(
        kube::Config::new(url.parse().unwrap()),
        &ClientOptions::default(),
    )
    .client(Timeouts::REQUESTS, None)
    .unwrap();
    let api: Api<Lease> = Api::namespaced(client, NAMESPACE);
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(LEASE.to_string()),
            ..ObjectMeta::default()
        },
        ..Lease::default()
    };
    let created = api.create(&PostParams::default(), &lease).await.unwrap();
    let renewed = api
        .replace(LEASE, &PostParams::default(), &created)
        .await
        .unwrap();
    assert_ne!(
        renewed.metadata.resource_version,
        created.metadata.resource_version
    );
    match api.replace(LEASE, &PostParams::default(), &created).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 409),
        other => panic!("a stale write must conflict, got {other:?}"),
    }
    assert!(matches!(
        api.create(&PostParams::default(), &lease).await,
        Err(kube::Error::Api(status)) if status.code == 409
    ));
}
