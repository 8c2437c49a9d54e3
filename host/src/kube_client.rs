//! The controller's Kubernetes clients: which cluster (`--kubeconfig`, else kube's inference),
//! how fast they may call it, and how long a call may take.
//!
//! Upstream's manager bounds its client with client-go's token bucket (`--kube-api-qps`,
//! `--kube-api-burst`, `clientConnection`); here the same bucket is a tower layer in front of
//! kube's HTTP stack, shared by every client of a [`Connection`], so every request waits for a
//! token before it is sent.
//!
//! kube 5's client has no read timeout by default, so one hung call froze its reconcile
//! forever. Every client here has connect, read and write timeouts ([`Timeouts`]); the read
//! timeout counts from when the request was sent (kube's `reset_reader_on_write`), not from
//! when its pooled connection went idle. Watches get a client of their own whose read timeout
//! is longer than the watch: kube asks the server for 290 s and itself ends a silent watch
//! after 295 s, and the read timeout must not cut a healthy quiet watch before that.
//!
//! kube's retry layer (429, 503, 504: up to 15 retries, 5 ms doubling to 1000 s) is off: its
//! waits are invisible to the caller, and kept one Lease renew in flight far past its
//! deadline. A failed call fails its reconcile, and the controller's own per-object backoff
//! retries it ([`crate::controller::backoff`]).
//!
//! # Guarantees
//! Over any interval of length T at most `burst + qps * T` requests start. A watch is one
//! request: its long stream is not throttled, only its (re)start. No read waits longer than
//! the client's read timeout. Through a client built with a [`Fence`], no request is sent once
//! the fence has shut, and a response still awaited then is dropped (the request cancelled).

use crate::controller::leader::Fence;
use anyhow::Context as _;
use futures::future::BoxFuture;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::future::Future;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};

/// client-go's rate when the configured QPS is 0.
const ZERO_QPS_MEANS: f64 = 5.0;
/// client-go's burst when the configured burst is 0.
const ZERO_BURST_MEANS: u32 = 10;

/// How to reach the API server.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientOptions {
    /// A kubeconfig file to use instead of kube's inference ($KUBECONFIG, ~/.kube/config, or
    /// the Pod's service account).
    pub kubeconfig: Option<PathBuf>,
    /// Requests per second; 0 means 5 and a negative value means unlimited, as in client-go.
    pub qps: f32,
    /// Requests that may go at once after a quiet spell; 0 means 10, as in client-go.
    pub burst: i64,
}

impl Default for ClientOptions {
    /// Upstream's `clientConnection` defaults.
    fn default() -> Self {
        ClientOptions {
            kubeconfig: None,
            qps: 500.0,
            burst: 500,
        }
    }
}

impl ClientOptions {
    /// The token bucket these options ask for, `None` for no limit (a negative or infinite QPS).
    pub fn quota(&self) -> Option<Quota> {
        let qps = match f64::from(self.qps) {
            0.0 => ZERO_QPS_MEANS,
            q if q < 0.0 || !q.is_finite() => return None,
            q => q,
        };
        let burst = match self.burst {
            0 => ZERO_BURST_MEANS,
            b => u32::try_from(b.max(1)).unwrap_or(u32::MAX),
        };
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        // One token every 1/qps seconds; rates past one a nanosecond are unlimited anyway.
        Quota::with_period(Duration::from_secs_f64(1.0 / qps)).map(|q| q.allow_burst(burst))
    }
}

/// How long one call may wait, in each phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// For the TCP (and TLS) connection to be established.
    pub connect: Duration,
    /// Between two reads of the answer, counted from when the request was written.
    pub read: Duration,
    /// For each write of the request.
    pub write: Duration,
}

impl Timeouts {
    /// Every call but watches. The API server ends a non-watch request itself after its
    /// `--request-timeout` (60 s by default): a read still waiting later is on a dead
    /// connection.
    pub const REQUESTS: Timeouts = Timeouts {
        connect: Duration::from_secs(10),
        read: Duration::from_secs(70),
        write: Duration::from_secs(70),
    };
    /// Watches (and their lists): longer than the 290 s watch plus kube's own 5 s idle margin.
    pub const WATCHES: Timeouts = Timeouts {
        connect: Duration::from_secs(10),
        read: Duration::from_secs(300),
        write: Duration::from_secs(70),
    };
}

/// One cluster and one rate limit; [`Connection::client`] makes clients that share both.
#[derive(Clone)]
pub struct Connection {
    config: Config,
    rate: Option<RateLimitLayer>,
}

impl Connection {
    /// Finds the cluster as `options` say. Nothing is sent yet: the first request proves it.
    pub async fn open(options: &ClientOptions) -> anyhow::Result<Self> {
        let config = match &options.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path)
                    .with_context(|| format!("reading --kubeconfig {}", path.display()))?;
                Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .with_context(|| format!("using --kubeconfig {}", path.display()))?
            }
            None => Config::infer().await.context("finding the cluster")?,
        };
        Ok(Connection::new(config, options))
    }

    /// `config`'s cluster with `options`' rate limit (`options.kubeconfig` is not read).
    pub fn new(config: Config, options: &ClientOptions) -> Self {
        Connection {
            config,
            rate: options.quota().map(RateLimitLayer::new),
        }
    }

    /// A client with `timeouts`; with a `fence`, one that sends only while it is open.
    pub fn client(&self, timeouts: Timeouts, fence: Option<&Fence>) -> anyhow::Result<Client> {
        let mut config = self.config.clone();
        config.connect_timeout = Some(timeouts.connect);
        config.read_timeout = Some(timeouts.read);
        config.write_timeout = Some(timeouts.write);
        config.reset_reader_on_write = true;
        config.default_retry = false;
        let builder = ClientBuilder::try_from(config)
            .context("building the client")?
            .with_layer(&FenceLayer {
                fence: fence.cloned(),
            });
        Ok(match &self.rate {
            Some(rate) => builder.with_layer(rate).build(),
            None => builder.build(),
        })
    }
}

/// Sends a request only while its [`Fence`] is open, and cuts off the answer when it shuts;
/// without a fence it passes everything. It sits below the rate limit, so a request that
/// waited for a token is checked when it is finally sent.
#[derive(Clone)]
pub struct FenceLayer {
    fence: Option<Fence>,
}

impl<S> Layer<S> for FenceLayer {
    type Service = Fenced<S>;

    fn layer(&self, inner: S) -> Fenced<S> {
        Fenced {
            inner,
            fence: self.fence.clone(),
        }
    }
}

/// The service [`FenceLayer`] makes.
pub struct Fenced<S> {
    inner: S,
    fence: Option<Fence>,
}

/// What a request refused or cut off by the fence fails with.
#[derive(Debug, thiserror::Error)]
#[error("not the leader: the leader-election fence has shut")]
pub struct FenceShut;

impl<S, R> Service<R> for Fenced<S>
where
    S: Service<R>,
    S::Response: Send + 'static,
    S::Error: Into<tower::BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = tower::BoxError;
    type Future = BoxFuture<'static, Result<S::Response, tower::BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let Some(fence) = self.fence.clone() else {
            let answer = self.inner.call(request);
            return Box::pin(async move { answer.await.map_err(Into::into) });
        };
        if !fence.is_open() {
            return Box::pin(std::future::ready(Err(FenceShut.into())));
        }
        let answer = self.inner.call(request);
        Box::pin(async move {
            match fence.guard(answer).await {
                Some(answer) => answer.map_err(Into::into),
                None => Err(FenceShut.into()),
            }
        })
    }
}

/// Makes every request through it take a token from one shared bucket first.
#[derive(Clone)]
pub struct RateLimitLayer {
    limiter: Arc<DefaultDirectRateLimiter>,
}

impl RateLimitLayer {
    pub fn new(quota: Quota) -> Self {
        RateLimitLayer {
            limiter: Arc::new(RateLimiter::direct(quota)),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> RateLimited<S> {
        RateLimited {
            inner,
            limiter: self.limiter.clone(),
            token: Token::None,
        }
    }
}

/// Where a [`RateLimited`] service is in taking its next token.
enum Token {
    /// None taken; the next `poll_ready` starts waiting for one.
    None,
    Waiting(Pin<Box<dyn Future<Output = ()> + Send>>),
    /// Taken: the next `call` spends it.
    Held,
}

/// The service [`RateLimitLayer`] makes: not ready until it holds a token, then as ready as the
/// inner service. kube drives it from one buffer task, so waiting here queues requests in
/// order rather than dropping them.
pub struct RateLimited<S> {
    inner: S,
    limiter: Arc<DefaultDirectRateLimiter>,
    token: Token,
}

impl<S, R> Service<R> for RateLimited<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        loop {
            match &mut self.token {
                Token::Held => return self.inner.poll_ready(cx),
                Token::None => {
                    let limiter = self.limiter.clone();
                    self.token =
                        Token::Waiting(Box::pin(async move { limiter.until_ready().await }));
                }
                Token::Waiting(wait) => match wait.as_mut().poll(cx) {
                    Poll::Ready(()) => self.token = Token::Held,
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }

    fn call(&mut self, request: R) -> Self::Future {
        // tower's contract: `call` follows a ready `poll_ready`, which left a token held.
        self.token = Token::None;
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use tower::ServiceExt;

    fn options(qps: f32, burst: i64) -> ClientOptions {
        ClientOptions {
            kubeconfig: None,
            qps,
            burst,
        }
    }

    #[test]
    fn quotas_as_client_go_reads_qps_and_burst() {
        let quota = |qps, burst| options(qps, burst).quota();
        let default = quota(500.0, 500).unwrap();
        assert_eq!(default.burst_size().get(), 500);
        assert_eq!(default.replenish_interval(), Duration::from_millis(2));
        let zero = quota(0.0, 0).unwrap();
        assert_eq!(zero.burst_size().get(), 10);
        assert_eq!(zero.replenish_interval(), Duration::from_millis(200));
        let slow = quota(0.5, 3).unwrap();
        assert_eq!(slow.replenish_interval(), Duration::from_secs(2));
        assert_eq!(slow.burst_size().get(), 3);
        assert!(quota(-1.0, 10).is_none());
        assert!(quota(f32::INFINITY, 10).is_none());
        assert_eq!(ClientOptions::default(), options(500.0, 500));
    }

    /// A service that answers at once, to see the layer alone.
    #[derive(Clone)]
    struct Echo;

    impl Service<u32> for Echo {
        type Response = u32;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<u32, Self::Error>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, request: u32) -> Self::Future {
            std::future::ready(Ok(request))
        }
    }

    #[tokio::test]
    async fn a_burst_goes_then_requests_wait_for_tokens() {
        // One token every 1000 s: nothing is replenished while the test runs.
        let layer = RateLimitLayer::new(options(0.001, 3).quota().unwrap());
        let mut service = layer.layer(Echo);
        for request in 0..3 {
            let ready = service
                .ready()
                .now_or_never()
                .expect("a token of the burst");
            assert_eq!(ready.unwrap().call(request).await, Ok(request));
        }
        assert!(
            service.ready().now_or_never().is_none(),
            "the fourth request must wait for a token"
        );
        // The bucket is shared by every service the layer made.
        let mut other = layer.layer(Echo);
        assert!(other.ready().now_or_never().is_none());
    }

    /// A service whose answers never come, to see what cuts them off.
    #[derive(Clone)]
    struct Hang;

    impl Service<u32> for Hang {
        type Response = u32;
        type Error = std::convert::Infallible;
        type Future = std::future::Pending<Result<u32, Self::Error>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: u32) -> Self::Future {
            std::future::pending()
        }
    }

    /// Guards a test against hanging; never a pass condition.
    const HANG: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn a_fence_refuses_requests_once_shut_and_passes_them_while_open() {
        let fence = Fence::closed();
        let layer = FenceLayer {
            fence: Some(fence.clone()),
        };
        let refused = layer.layer(Echo).oneshot(1).await;
        assert!(
            refused.unwrap_err().is::<FenceShut>(),
            "closed: nothing is sent"
        );
        fence.open_until(std::time::Instant::now() + Duration::from_secs(3600));
        assert_eq!(layer.layer(Echo).oneshot(2).await.unwrap(), 2);
        fence.close();
        assert!(layer
            .layer(Echo)
            .oneshot(3)
            .await
            .unwrap_err()
            .is::<FenceShut>());
        // Without a fence everything passes.
        let open = FenceLayer { fence: None };
        assert_eq!(open.layer(Echo).oneshot(4).await.unwrap(), 4);
    }

    #[tokio::test]
    async fn a_fence_cuts_off_an_answer_still_awaited_when_it_shuts() {
        let fence = Fence::closed();
        fence.open_until(std::time::Instant::now() + Duration::from_millis(50));
        let layer = FenceLayer {
            fence: Some(fence.clone()),
        };
        let answer = tokio::time::timeout(HANG, layer.layer(Hang).oneshot(1)).await;
        let error = answer
            .expect("the fence's deadline ends the call")
            .unwrap_err();
        assert!(error.is::<FenceShut>(), "{error}");
    }

    #[test]
    fn watches_outlast_kubes_watch_and_idle_timeout() {
        // kube asks the server for 290 s and ends a silent watch itself after 295 s.
        assert!(Timeouts::WATCHES.read > Duration::from_secs(295));
        // The API server's own --request-timeout (60 s) ends a live request first.
        assert!(Timeouts::REQUESTS.read > Duration::from_secs(60));
        assert!(Timeouts::REQUESTS.read < Timeouts::WATCHES.read);
    }

    #[tokio::test]
    async fn a_hung_call_fails_with_the_read_timeout() {
        // Accepts connections and never answers (holding them open).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let connection =
            Connection::new(Config::new(url.parse().unwrap()), &ClientOptions::default());
        let timeouts = Timeouts {
            read: Duration::from_millis(200),
            ..Timeouts::REQUESTS
        };
        let client = connection.client(timeouts, None).unwrap();
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client, "default");
        let answer = tokio::time::timeout(HANG, api.get("x")).await;
        let error = answer.expect("the read timeout ends the call").unwrap_err();
        let timed_out =
            std::iter::successors(Some(&error as &(dyn std::error::Error + 'static)), |e| {
                e.source()
            })
            .any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
            });
        assert!(timed_out, "expected a read timeout, got {error:?}");
    }
}
