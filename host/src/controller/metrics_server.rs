//! `/metrics` as upstream's manager serves it: HTTPS (HTTP/1.1 only) on its own address
//! (`--metrics-bind-address`, `:8443` in a cluster), every request authenticated by a
//! TokenReview of its bearer token and authorised by a SubjectAccessReview for `get` on the
//! non-resource URL `/metrics` (controller-runtime's `filters.WithAuthenticationAndAuthorization`),
//! behind a certificate of its own making (controller-runtime's, too, is self-signed when no
//! certificate directory is given).

use super::metrics_access::{Access, AccessCache};
use crate::certs::issue::{self, Pems, Verdict, Want};
use crate::certs::{self, ServingCert};
use crate::install::{service_host_names, METRICS_SERVICE};
use anyhow::Context as _;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// Lifetime of the server's certificate; [`issue::check`] renews it a third before its end.
const CERT_VALIDITY: Duration = Duration::from_secs(90 * 24 * 3600);
/// How often the certificate is looked at for renewal.
const CERT_CHECK: Duration = Duration::from_secs(3600);

#[derive(Clone)]
struct MetricsState {
    registry: Arc<Registry>,
    access: Arc<AccessCache>,
}

/// Binds `addr`, issues the certificate and serves `/metrics` until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    namespace: &str,
    registry: Arc<Registry>,
    client: kube::Client,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let serving = Arc::new(ServingCert::default());
    let mut hosts = service_host_names(METRICS_SERVICE, namespace).to_vec();
    hosts.push("localhost".to_string());
    let pems = renew(&serving, &hosts, Pems::default()).context("the metrics certificate")?;
    tokio::spawn(keep_cert(serving.clone(), hosts, pems, shutdown.clone()));

    let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(
        serving
            .server_config(certs::HTTP1_ONLY)
            .context("the metrics server's TLS configuration")?,
    ));
    let state = MetricsState {
        registry,
        access: Arc::new(AccessCache::new(client)),
    };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(state);
    // Bind before returning, so a taken port fails start-up rather than a background task.
    let socket = std::net::TcpListener::bind(addr)
        .with_context(|| format!("binding {addr} for /metrics"))?;
    socket.set_nonblocking(true)?;
    let handle = axum_server::Handle::new();
    {
        let handle = handle.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            handle.graceful_shutdown(Some(Duration::from_secs(5)));
        });
    }
    let server = axum_server::from_tcp_rustls(socket, tls)?
        .map(|tls| tls.acceptor(axum_server::accept::NoDelayAcceptor::new()))
        .handle(handle);
    // Upstream's logger name and message: tools (and upstream's e2e suite) wait for this line.
    tracing::info!(target: "controller-runtime.metrics", bindAddress = %addr, secure = true,
        "Serving metrics server");
    Ok(tokio::spawn(async move {
        if let Err(error) = server.serve(app.into_make_service()).await {
            tracing::error!(%error, "metrics server");
        }
    }))
}

/// Checks `current` against the wanted names and lifetime; loads and returns the renewed PEMs
/// when they need renewing (at first, when `current` is empty).
fn renew(serving: &ServingCert, hosts: &[String], current: Pems) -> anyhow::Result<Pems> {
    let want = Want {
        hosts: hosts.to_vec(),
        validity: CERT_VALIDITY,
        // Nobody verifies this CA (scrapers skip verification, as for upstream's), so a
        // new one may sign at once.
        bundle_trusted: true,
    };
    match issue::check(&current, &want, SystemTime::now())? {
        Verdict::Keep => Ok(current),
        Verdict::Write { pems, reason } => {
            serving.load(&pems.tls_cert, &pems.tls_key)?;
            tracing::info!(reason, "metrics server certificate issued");
            Ok(pems)
        }
    }
}

/// Renews the certificate before it expires, until `shutdown`.
async fn keep_cert(
    serving: Arc<ServingCert>,
    hosts: Vec<String>,
    mut pems: Pems,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(CERT_CHECK) => {}
        }
        match renew(&serving, &hosts, pems.clone()) {
            Ok(renewed) => pems = renewed,
            Err(error) => tracing::error!(%error, "renewing the metrics server certificate"),
        }
    }
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

async fn metrics(State(state): State<MetricsState>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
    };
    match state.access.check(token).await {
        Ok(Access::Allowed) => encode(&state.registry),
        Ok(Access::Unauthenticated) => (StatusCode::UNAUTHORIZED, "Unauthorized").into_response(),
        Ok(Access::Forbidden { user }) => (
            StatusCode::FORBIDDEN,
            format!("Forbidden (user={user}, verb=get, path=/metrics)"),
        )
            .into_response(),
        Err(error) => {
            tracing::warn!(%error, "authorising a /metrics request");
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
        }
    }
}

fn encode(registry: &Registry) -> Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            headers
        };
        assert_eq!(bearer(&with("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&with("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&with("Basic abc")), None);
        assert_eq!(bearer(&with("Bearer ")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn the_certificate_names_the_service_and_is_kept_until_due() {
        let serving = ServingCert::default();
        let hosts = vec!["lws-controller-manager-metrics-service.lws-system.svc".to_string()];
        let first = renew(&serving, &hosts, Pems::default()).unwrap();
        assert!(serving.is_serving());
        let again = renew(&serving, &hosts, first.clone()).unwrap();
        assert_eq!(again, first, "a fresh certificate is kept");
    }
}
