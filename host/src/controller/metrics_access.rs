//! Who may read `/metrics`: the API server says, through a TokenReview (who the bearer token
//! is) and a SubjectAccessReview (may they `get` the non-resource URL `/metrics`). Answers are
//! cached per token for a short while, as controller-runtime's delegating authenticator and
//! authorizer cache theirs, so a scraper costs the API server two calls a minute, not two a
//! scrape.

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an allowed token is trusted without asking again.
const ALLOWED_TTL: Duration = Duration::from_secs(60);
/// How long a refused token stays refused (short: a binding may be just being created).
const REFUSED_TTL: Duration = Duration::from_secs(10);
/// At most this many tokens are remembered; beyond it expired entries go, then all.
const MAX_CACHED: usize = 1024;
/// Each review call's limit.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// The token is not valid (401).
    Unauthenticated,
    /// Valid, but `user` may not `get /metrics` (403).
    Forbidden {
        user: String,
    },
}

/// A review that could not be made (the request gets a 500 and is not cached).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("creating a {kind}: {source}")]
    Create {
        kind: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("the {0} got no answer within {REVIEW_TIMEOUT:?}")]
    Timeout(&'static str),
}

pub struct AccessCache {
    client: kube::Client,
    answers: Mutex<HashMap<String, (Access, Instant)>>,
}

impl AccessCache {
    pub fn new(client: kube::Client) -> Self {
        AccessCache {
            client,
            answers: Mutex::new(HashMap::new()),
        }
    }

    /// May the holder of `token` read `/metrics`?
    pub async fn check(&self, token: &str) -> Result<Access, ReviewError> {
        if let Some(access) = self.cached(token, Instant::now()) {
            return Ok(access);
        }
        let access = self.review(token).await?;
        self.remember(token, access.clone(), Instant::now());
        Ok(access)
    }

    fn cached(&self, token: &str, now: Instant) -> Option<Access> {
        let answers = self.answers.lock().ok()?;
        let (access, until) = answers.get(token)?;
        (now < *until).then(|| access.clone())
    }

    fn remember(&self, token: &str, access: Access, now: Instant) {
        let Ok(mut answers) = self.answers.lock() else {
            return;
        };
        if answers.len() >= MAX_CACHED {
            answers.retain(|_, (_, until)| now < *until);
            if answers.len() >= MAX_CACHED {
                answers.clear();
            }
        }
        let ttl = match access {
            Access::Allowed => ALLOWED_TTL,
            _ => REFUSED_TTL,
        };
        answers.insert(token.to_string(), (access, now + ttl));
    }

    async fn review(&self, token: &str) -> Result<Access, ReviewError> {
        let tokens: Api<TokenReview> = Api::all(self.client.clone());
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_string(),
                ..Default::default()
            },
            ..Default::default()
        };
        let reviewed = create(&tokens, "TokenReview", &review).await?;
        let status = reviewed.status.unwrap_or_default();
        let Some(user) = status.user.filter(|_| status.authenticated == Some(true)) else {
            return Ok(Access::Unauthenticated);
        };
        let access: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username.clone(),
                groups: user.groups,
                uid: user.uid,
                extra: user.extra,
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some("/metrics".to_string()),
                    verb: Some("get".to_string()),
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let reviewed = create(&access, "SubjectAccessReview", &review).await?;
        Ok(match reviewed.status {
            Some(status) if status.allowed => Access::Allowed,
            _ => Access::Forbidden {
                user: user.username.unwrap_or_default(),
            },
        })
    }
}

async fn create<K>(api: &Api<K>, kind: &'static str, object: &K) -> Result<K, ReviewError>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    tokio::time::timeout(REVIEW_TIMEOUT, api.create(&PostParams::default(), object))
        .await
        .map_err(|_| ReviewError::Timeout(kind))?
        .map_err(|source| ReviewError::Create { kind, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client that is never called: these tests only touch the cache.
    fn cache() -> AccessCache {
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        AccessCache::new(kube::Client::try_from(config).unwrap())
    }

    #[tokio::test]
    async fn answers_expire_by_kind() {
        let cache = cache();
        let t0 = Instant::now();
        cache.remember("good", Access::Allowed, t0);
        cache.remember("bad", Access::Unauthenticated, t0);
        let later = t0 + REFUSED_TTL + Duration::from_millis(1);
        assert_eq!(cache.cached("good", later), Some(Access::Allowed));
        assert_eq!(
            cache.cached("bad", later),
            None,
            "a refusal is re-asked soon"
        );
        assert_eq!(cache.cached("good", t0 + ALLOWED_TTL), None);
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let cache = cache();
        let t0 = Instant::now();
        for i in 0..MAX_CACHED + 10 {
            cache.remember(&format!("token-{i}"), Access::Allowed, t0);
        }
        assert!(cache.answers.lock().unwrap().len() <= MAX_CACHED);
        let last = format!("token-{}", MAX_CACHED + 9);
        assert_eq!(cache.cached(&last, t0), Some(Access::Allowed));
    }
}
