//! Wiring: the client, the reflectors, the controller, the webhook server, the health server,
//! the metrics server, and the shutdown that stops them together.

use super::backoff::Backoff;
use super::events::EventRecorder;
use super::execute;
use super::leader::{Held, LeaseLock, LeaseTiming};
use super::metrics::{LwsLabels, Metrics};
use super::metrics_server;
use super::module::Module;
use super::observe::Stores;
use super::{error_policy, reconcile, reconcile_gone, Context};
use crate::certs::{self, CertSource, ServingCert};
use crate::engine::{Engine, PinnedModule};
use crate::kube_client::{Connection, Timeouts};
use crate::webhook::{self, WebhookState};
use anyhow::Context as _;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{watcher, Controller, WatchStreamExt};
use kube::{Resource, ResourceExt};
use lws_core::labels::SET_NAME_LABEL_KEY;
use lws_core::reconcile::pod_group::{POD_GROUP_API_VERSION, POD_GROUP_KIND};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long the controller may drain after SIGTERM.
const DRAIN: Duration = Duration::from_secs(5);
/// At most this many LeaderWorkerSets reconcile at once (one object never twice at once).
/// Upstream runs two controllers (LeaderWorkerSets, leader Pods) with controller-runtime's
/// default of one worker each; ours does both jobs in one, so two.
pub const MAX_CONCURRENT_RECONCILES: u16 = 2;
// kube reads a concurrency of 0 as unbounded.
const _: () = assert!(MAX_CONCURRENT_RECONCILES > 0);

/// What `lws controller` is told on the command line.
pub struct ControllerConfig {
    pub engine: Engine,
    /// Loaded again on SIGHUP and swapped in when it passes its pins (`--module`).
    pub module_file: Option<PinnedModule>,
    /// Where the webhooks listen (HTTPS); `None` runs the controller alone.
    pub webhook: Option<WebhookListener>,
    /// The controller's namespace (the metrics Service's, named in its certificate).
    pub namespace: String,
    /// Where `/healthz` and `/readyz` are served (HTTP); `None`: nowhere.
    pub health_addr: Option<SocketAddr>,
    /// Where `/metrics` is served (HTTPS, token-authorised); `None`: nowhere.
    pub metrics_addr: Option<SocketAddr>,
    /// The gang-scheduling provider (`volcano`), passed to the module.
    pub scheduler_provider: Option<String>,
    /// Written with the process id once running, removed on exit.
    pub pid_file: Option<PathBuf>,
    /// `reportingInstance` of events (defaults to the host name).
    pub instance: Option<String>,
    /// Run the reconcilers only while holding this Lease; `None` runs them at once.
    pub leader_election: Option<LeaderElection>,
    /// Which cluster, and the client's rate limit (upstream's QPS and burst).
    pub client: crate::kube_client::ClientOptions,
}

/// Which Lease to hold, as whom, with which durations (see [`super::leader`]).
pub struct LeaderElection {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub timing: LeaseTiming,
}

/// The webhook server's address and where its serving certificate comes from.
pub struct WebhookListener {
    pub addr: SocketAddr,
    pub certs: CertSource,
}

/// The label-exists selector every child watch uses.
fn children() -> watcher::Config {
    watcher::Config::default().labels(SET_NAME_LABEL_KEY)
}

/// A reflector feeding `writer` from a watch on `api`; yields every object it touches.
///
/// `managedFields` are dropped before the store: no decision reads them, and they are often
/// the largest part of an object, both in memory and in every input sent to the module.
fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    let objects = watcher(api, config)
        .default_backoff()
        .modify(|object| object.managed_fields_mut().clear());
    reflector::reflector(writer, objects).touched_objects()
}

/// The LeaderWorkerSet a child belongs to, by its name label.
fn owner_by_label<K: Resource>(
    resource: ApiResource,
) -> impl Fn(K) -> Option<ObjectRef<DynamicObject>> {
    move |child: K| {
        let name = child.labels().get(SET_NAME_LABEL_KEY)?;
        let namespace = child.namespace()?;
        Some(ObjectRef::new_with(name, resource.clone()).within(&namespace))
    }
}

/// Runs until SIGTERM or SIGINT; returns once everything has stopped.
pub async fn run(config: ControllerConfig) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Three clients of one connection (one rate limit): calls anyone may make (the Lease,
    // certificates, token reviews), watches, and the reconciles' writes, fenced by the Lease.
    let connection = Connection::open(&config.client)
        .await
        .context("connecting to the cluster")?;
    let client = connection.client(Timeouts::REQUESTS, None)?;
    let watch_client = connection.client(Timeouts::WATCHES, None)?;
    let lease = config.leader_election.map(|election| {
        let api = kube::Api::namespaced(client.clone(), &election.namespace);
        LeaseLock::new(api, election.name, election.identity, election.timing)
    });
    let fence = lease.as_ref().map(LeaseLock::fence);
    let writer = connection.client(Timeouts::REQUESTS, fence.as_ref())?;
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());

    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let module = Module::new(config.engine, metrics.clone());
    if let Some(file) = config.module_file {
        spawn_module_reloader(module.clone(), file);
    }

    let lws_resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(
            lws_core::api::GROUP,
            lws_core::api::VERSION,
            lws_core::api::KIND,
        ),
        lws_core::api::PLURAL,
    );

    // Stores: the three kinds whose changes also trigger a reconcile are reflected in the
    // controller's own trigger streams (so a trigger is never ahead of its store); the other
    // two are reflected by tasks of their own.
    let (sts_store, sts_writer) = reflector::store();
    let (pod_store, pod_writer) = reflector::store();
    let (svc_store, svc_writer) = reflector::store();
    let (rev_store, rev_writer) = reflector::store();
    let (node_store, node_writer) = reflector::store();
    // Volcano PodGroups only with a provider (its CRD is then a prerequisite, as upstream's);
    // a change to one (a PodGroup deleted by hand) queues its LeaderWorkerSet.
    let pod_group_resource = execute::api_resource(POD_GROUP_API_VERSION, POD_GROUP_KIND)?;
    let (pod_group_store, pod_group_stream) = match &config.scheduler_provider {
        Some(_) => {
            let writer = reflector::store::Writer::new(pod_group_resource.clone());
            let store = writer.as_reader();
            let api = Api::<DynamicObject>::all_with(watch_client.clone(), &pod_group_resource);
            (Some(store), reflect(api, children(), writer).boxed())
        }
        None => (None, futures::stream::pending().boxed()),
    };
    let (stores, synced) = Stores::new(
        sts_store,
        pod_store,
        svc_store,
        rev_store,
        node_store,
        pod_group_store,
    );
    let sts_stream = reflect(
        Api::<StatefulSet>::all(watch_client.clone()),
        children(),
        sts_writer,
    );
    let pod_stream = reflect(
        Api::<Pod>::all(watch_client.clone()),
        children(),
        pod_writer,
    );
    let svc_stream = reflect(
        Api::<Service>::all(watch_client.clone()),
        children(),
        svc_writer,
    );
    let rev_stream = reflect(
        Api::<ControllerRevision>::all(watch_client.clone()),
        children(),
        rev_writer,
    );
    let node_stream = reflect(
        Api::<Node>::all(watch_client.clone()),
        watcher::Config::default(),
        node_writer,
    );
    tokio::spawn(drain("controllerrevisions", rev_stream));
    tokio::spawn(drain("nodes", node_stream));

    {
        let stores = stores.clone();
        tokio::spawn(async move {
            stores.clone().track_sync(synced).await;
            if stores.is_synced() {
                tracing::info!("caches synced");
            }
        });
    }

    let instance = config.instance.or_else(|| std::env::var("HOSTNAME").ok());
    let recorder = EventRecorder::new(writer.clone(), "leaderworkerset", instance);
    registry.register(
        "lws_event_failures",
        "Events that could not be recorded (the reconcile went on)",
        recorder.failures(),
    );
    let context_stores = stores.clone();
    let context = Arc::new(Context {
        client: writer,
        module: module.clone(),
        stores,
        recorder,
        metrics: metrics.clone(),
        lws_resource: lws_resource.clone(),
        scheduler_provider: config.scheduler_provider.clone(),
        backoff: Backoff::default(),
    });

    let lws_api = Api::<DynamicObject>::all_with(watch_client.clone(), &lws_resource);
    let gauges = metrics.groups_ready.clone();
    let forget = context.clone();
    let stop = shutdown.clone();
    let controller =
        Controller::new_with(lws_api, watcher::Config::default(), lws_resource.clone())
            .watches_stream(
                sts_stream,
                owner_by_label::<StatefulSet>(lws_resource.clone()),
            )
            .watches_stream(pod_stream, owner_by_label::<Pod>(lws_resource.clone()))
            .watches_stream(svc_stream, owner_by_label::<Service>(lws_resource.clone()))
            .watches_stream_with(
                pod_group_stream,
                owner_by_label::<DynamicObject>(lws_resource.clone()),
                pod_group_resource,
            )
            .with_config(
                kube::runtime::controller::Config::default().concurrency(MAX_CONCURRENT_RECONCILES),
            )
            .graceful_shutdown_on(async move { stop.cancelled().await })
            .run(reconcile, error_policy, context)
            .for_each(move |result| {
                let gauges = gauges.clone();
                let forget = forget.clone();
                async move {
                    match result {
                        Ok((object, _)) => tracing::debug!(lws = %object.name, "reconciled"),
                        // Deleted: its series would otherwise report the last value forever.
                        Err(kube::runtime::controller::Error::ObjectNotFound(object)) => {
                            tracing::debug!(lws = %object.name, "gone");
                            forget
                                .backoff
                                .forget(&(object.namespace.clone(), object.name.clone()));
                            gauges.remove(&LwsLabels {
                                namespace: object.namespace.clone().unwrap_or_default(),
                                name: object.name.clone(),
                            });
                            let (ctx, namespace, name) = (
                                forget.clone(),
                                object.namespace.clone().unwrap_or_default(),
                                object.name.clone(),
                            );
                            tokio::spawn(async move {
                                if let Err(error) = reconcile_gone(ctx, &namespace, &name).await {
                                    tracing::warn!(lws = %name, %namespace, %error, "reconciling a gone LeaderWorkerSet");
                                }
                            });
                        }
                        Err(error) => tracing::debug!(%error, "controller"),
                    }
                }
            });

    // A standby (waiting for the Lease) is ready: it serves the webhooks.
    let standby = Arc::new(AtomicBool::new(lease.is_some()));
    let webhook = config
        .webhook
        .map(|listener| (listener, Arc::new(ServingCert::default())));
    let health = match config.health_addr {
        Some(addr) => Some(
            serve_health(
                addr,
                Readiness {
                    stores: context_stores,
                    standby: standby.clone(),
                    serving: webhook.as_ref().map(|(_, serving)| serving.clone()),
                },
                shutdown.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let metrics_server = match config.metrics_addr {
        Some(addr) => Some(
            metrics_server::serve(
                addr,
                &config.namespace,
                Arc::new(registry),
                client.clone(),
                shutdown.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let webhooks = match webhook {
        Some((listener, serving)) => {
            tokio::spawn(certs::keep(
                listener.certs,
                serving.clone(),
                client.clone(),
                shutdown.clone(),
            ));
            Some(
                serve_webhooks(
                    listener.addr,
                    serving,
                    WebhookState {
                        module,
                        metrics,
                        scheduler_provider: config.scheduler_provider,
                    },
                    shutdown.clone(),
                )
                .await?,
            )
        }
        None => None,
    };
    if let Some(path) = &config.pid_file {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    tracing::info!(health = ?config.health_addr, metrics = ?config.metrics_addr, "controller started");

    let elected = match &lease {
        Some(lock) => {
            tracing::info!(identity = %lock.identity(), "standing for the leader lease");
            lock.acquire(&shutdown).await
        }
        None => true,
    };
    standby.store(false, Ordering::Relaxed);

    // After SIGTERM the controller takes no new work and finishes the reconciles in flight; it
    // also holds on to scheduled requeues, so it gets DRAIN and is then dropped (every
    // reconcile starts over from the stores, so an abandoned one loses nothing). The Lease is
    // renewed meanwhile.
    let drain_deadline = {
        let shutdown = shutdown.clone();
        async move {
            shutdown.cancelled().await;
            tokio::time::sleep(DRAIN).await;
        }
    };
    let work = async {
        tokio::select! {
            () = controller => {}
            () = drain_deadline => tracing::info!(drain = ?DRAIN, "stopping with reconciles still queued"),
        }
    };
    let mut lost = None;
    match &lease {
        // Losing the Lease drops the controller, reconciles in flight included, by the
        // renew deadline (see `leader`): then this process exits.
        Some(lock) if elected => match lock.lead(work).await {
            Held::Finished => lock.release().await,
            Held::Lost(reason) => {
                tracing::error!(%reason, "lost the leader lease: stopping");
                lost = Some(reason);
            }
        },
        Some(_) => {}
        None => work.await,
    }
    shutdown.cancel();
    if let Some(webhooks) = webhooks {
        let _ = webhooks.await;
    }
    for server in [health, metrics_server].into_iter().flatten() {
        let _ = server.await;
    }
    if let Some(path) = &config.pid_file {
        let _ = std::fs::remove_file(path);
    }
    tracing::info!("controller stopped");
    match lost {
        Some(reason) => Err(anyhow::anyhow!("lost the leader lease: {reason}")),
        None => Ok(()),
    }
}

/// Polls a reflector stream that only feeds a store; watch errors are retried by the backoff.
async fn drain<K>(kind: &'static str, stream: impl Stream<Item = Result<K, watcher::Error>>) {
    futures::pin_mut!(stream);
    while let Some(item) = stream.next().await {
        if let Err(error) = item {
            tracing::warn!(kind, %error, "watch");
        }
    }
}

/// On each SIGHUP, loads `file` again and swaps it in; a file that fails its pins or does not
/// compile is refused and the running module stays. Calls under way finish on the module they
/// started on.
fn spawn_module_reloader(module: Module, file: PinnedModule) {
    tokio::spawn(async move {
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(hup) => hup,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGHUP: no module reload");
                return;
            }
        };
        while hup.recv().await.is_some() {
            let load = file.clone();
            let loaded = tokio::task::spawn_blocking(move || load.load()).await;
            let running = module.current().describe().to_string();
            match loaded {
                Ok(Ok(engine)) => {
                    let sha256 = engine.describe().to_string();
                    module.swap(engine);
                    tracing::info!(path = %file.path, from = %running, to = %sha256, "module swapped");
                }
                Ok(Err(error)) => tracing::error!(
                    path = %file.path, running = %running, error = %format!("{error:#}"),
                    "module reload refused; the running module stays"
                ),
                Err(error) => tracing::error!(%error, "module reload did not complete"),
            }
        }
    });
}

/// Cancels `token` on SIGTERM or SIGINT.
fn spawn_signal_handler(token: CancellationToken) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGTERM");
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        }
        token.cancel();
    });
}

/// What `/readyz` looks at.
#[derive(Clone)]
struct Readiness {
    stores: Stores,
    /// Waiting for the Lease: ready without synced caches, as it only serves webhooks.
    standby: Arc<AtomicBool>,
    /// The webhooks' certificate, when they serve: not ready until a valid one is loaded.
    serving: Option<Arc<ServingCert>>,
}

impl Readiness {
    /// `Err` says why not.
    fn check(&self) -> Result<(), &'static str> {
        if !(self.stores.is_synced() || self.standby.load(Ordering::Relaxed)) {
            return Err("caches not synced");
        }
        match &self.serving {
            Some(serving) if !serving.is_serving() => Err("no valid webhook serving certificate"),
            _ => Ok(()),
        }
    }
}

/// `/healthz` (the process answers), `/readyz` (caches synced, certificate served).
async fn serve_health(
    addr: SocketAddr,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(readiness): State<Readiness>| async move {
                match readiness.check() {
                    Ok(()) => (StatusCode::OK, "ok"),
                    Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
                }
            }),
        )
        .with_state(readiness);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr} for /healthz and /readyz"))?;
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "health server");
        }
    }))
}

/// The HTTPS webhook server (rustls, ring), presenting whatever `serving` holds at each
/// handshake.
async fn serve_webhooks(
    addr: SocketAddr,
    serving: Arc<ServingCert>,
    state: WebhookState,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(
        serving
            .server_config(certs::HTTP2_AND_HTTP1)
            .context("the webhook server's TLS configuration")?,
    ));
    let handle = axum_server::Handle::new();
    {
        let handle = handle.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            handle.graceful_shutdown(Some(Duration::from_secs(5)));
        });
    }
    let app = webhook::router(state);
    // Bind before returning, so a taken port fails start-up rather than a background task.
    let socket = std::net::TcpListener::bind(addr)
        .with_context(|| format!("binding {addr} for the webhooks"))?;
    socket.set_nonblocking(true)?;
    // TCP_NODELAY, as Go's servers set it: without it a reply written in two segments waits
    // for the API server's delayed ACK, ~40 ms on Linux, which was our webhook's p99.
    let server = axum_server::from_tcp_rustls(socket, tls)?
        .map(|tls| tls.acceptor(axum_server::accept::NoDelayAcceptor::new()))
        .handle(handle);
    tracing::info!(%addr, "webhook server listening");
    Ok(tokio::spawn(async move {
        if let Err(error) = server.serve(app.into_make_service()).await {
            tracing::error!(%error, "webhook server");
        }
    }))
}
