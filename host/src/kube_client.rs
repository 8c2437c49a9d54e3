//! The controller's Kubernetes client: which cluster (`--kubeconfig`, else kube's inference) and
//! how fast it may call it. Upstream's manager bounds its client with client-go's token bucket
//! (`--kube-api-qps`, `--kube-api-burst`, `clientConnection`); here the same bucket is a tower
//! layer in front of kube's HTTP stack, so every request waits for a token before it is sent.
//!
//! # Guarantees
//! Over any interval of length T at most `burst + qps * T` requests start. A watch is one
//! request: its long stream is not throttled, only its (re)start.

use anyhow::Context as _;
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

/// Connects as `options` say. Nothing is sent yet: the first request proves the connection.
pub async fn connect(options: &ClientOptions) -> anyhow::Result<Client> {
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
    let builder = ClientBuilder::try_from(config).context("building the client")?;
    Ok(match options.quota() {
        Some(quota) => builder.with_layer(&RateLimitLayer::new(quota)).build(),
        None => builder.build(),
    })
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
}
