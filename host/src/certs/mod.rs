//! The webhook server's certificate: where it comes from, how it is kept fresh, and the rustls
//! resolver that always serves the current one, so a rotation needs no restart and drops no
//! connection.
//!
//! # Expected flow
//! 1. [`keep`] runs beside the webhook server from the start. Each round it reads the source
//!    (PEM files, or the Secret `lws-webhook-server-cert` by name) and, when the controller
//!    manages the certificates ([`Managed`]), first makes the two webhook configurations trust
//!    the Secret's CA bundle, then asks [`issue::check`] whether the Secret needs a new CA or
//!    serving certificate and writes it with the `resourceVersion` it read.
//! 2. Whatever valid certificate the source holds is loaded into [`ServingCert`], which answers
//!    every TLS handshake with the newest loaded one.
//! 3. `/readyz` stays false until a valid certificate is loaded ([`ServingCert::is_serving`]).
//!
//! # Several replicas
//! Every replica runs the same rounds. Writes are conditional on the `resourceVersion` read, so
//! of two replicas renewing at once one write wins and the other reads it in its next round;
//! each replica serves whatever the Secret holds, so all converge on one certificate.

pub mod issue;

use issue::{Pems, Verdict, Want};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::Client;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// Where the serving certificate comes from.
#[derive(Clone, Debug)]
pub enum CertSource {
    /// PEM files (a controller outside the cluster: `lws install --dev` writes them); re-read
    /// when they change.
    Files { cert: PathBuf, key: PathBuf },
    /// The Secret `namespace/name` (keys `tls.crt`, `tls.key`, `ca.crt`).
    Secret {
        namespace: String,
        name: String,
        /// `Some`: this controller makes and rotates the certificates (upstream's internal
        /// certificate management); `None`: another party writes the Secret (cert-manager).
        managed: Option<Managed>,
    },
}

/// What internal certificate management needs to know.
#[derive(Clone, Debug)]
pub struct Managed {
    /// Subject alternative names of the serving certificate.
    pub hosts: Vec<String>,
    /// Lifetime of a serving certificate; renewed when a third is left.
    pub validity: Duration,
    /// The MutatingWebhookConfiguration whose caBundle is kept equal to the Secret's CA bundle.
    pub mutating_configuration: String,
    /// The ValidatingWebhookConfiguration, likewise.
    pub validating_configuration: String,
}

impl CertSource {
    /// How long to wait between rounds: short enough that a third of the serving
    /// certificate's lifetime spans several rounds.
    fn period(&self) -> Duration {
        let ten = Duration::from_secs(10);
        match self {
            CertSource::Secret {
                managed: Some(managed),
                ..
            } => (managed.validity / 10).clamp(Duration::from_secs(1), ten),
            _ => ten,
        }
    }
}

/// Why a round failed; the next round retries.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("reading {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading Secret {0}: {1}")]
    ReadSecret(String, #[source] kube::Error),
    #[error(
        "Secret {0} does not exist and could not be created (the installation renders it): {1}"
    )]
    CreateSecret(String, #[source] kube::Error),
    #[error("writing Secret {0}: {1}")]
    WriteSecret(String, #[source] kube::Error),
    #[error("injecting the CA bundle into {0}: {1}")]
    Inject(String, #[source] kube::Error),
    #[error(transparent)]
    Issue(#[from] issue::IssueError),
    #[error("the certificate or key does not load: {0}")]
    Load(String),
}

/// ALPN of the webhook server: the API server multiplexes its calls over HTTP/2.
pub const HTTP2_AND_HTTP1: &[&[u8]] = &[b"h2", b"http/1.1"];
/// ALPN of the metrics server: HTTP/1.1 only, as upstream's manager serves it (it turns
/// HTTP/2 off against the Rapid Reset attacks, CVE-2023-44487).
pub const HTTP1_ONLY: &[&[u8]] = &[b"http/1.1"];

/// The certificate the webhook server presents; swapped in place by [`keep`].
#[derive(Debug, Default)]
pub struct ServingCert {
    current: RwLock<Option<Loaded>>,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    not_after: SystemTime,
    /// The PEMs it was loaded from, so an unchanged source is not parsed again.
    source: (String, String),
}

impl ServingCert {
    /// A valid certificate is loaded now.
    pub fn is_serving(&self) -> bool {
        let now = SystemTime::now();
        self.current
            .read()
            .map(|current| current.as_ref().is_some_and(|l| now < l.not_after))
            .unwrap_or(false)
    }

    /// Serves `cert_pem`/`key_pem` from the next handshake on, if they load and are valid now;
    /// returns whether anything changed.
    pub fn load(&self, cert_pem: &str, key_pem: &str) -> Result<bool, CertError> {
        let source = (cert_pem.to_string(), key_pem.to_string());
        if self
            .current
            .read()
            .map(|c| c.as_ref().is_some_and(|l| l.source == source))
            .unwrap_or(false)
        {
            return Ok(false);
        }
        let (not_before, not_after) = issue::validity(cert_pem)
            .ok_or_else(|| CertError::Load("no certificate in the PEM".into()))?;
        let now = SystemTime::now();
        if now < not_before || not_after <= now {
            return Err(CertError::Load("the certificate is not valid now".into()));
        }
        let key = certified_key(cert_pem, key_pem)?;
        let mut current = self
            .current
            .write()
            .map_err(|_| CertError::Load("poisoned".into()))?;
        *current = Some(Loaded {
            key: Arc::new(key),
            not_after,
            source,
        });
        Ok(true)
    }

    /// A rustls server configuration that resolves through `self`, offering `protocols` by
    /// ALPN ([`HTTP2_AND_HTTP1`] or [`HTTP1_ONLY`]).
    pub fn server_config(
        self: &Arc<Self>,
        protocols: &[&[u8]],
    ) -> Result<rustls::ServerConfig, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self.current.read().ok()?;
        current.as_ref().map(|loaded| loaded.key.clone())
    }
}

fn certified_key(cert_pem: &str, key_pem: &str) -> Result<CertifiedKey, CertError> {
    let load = |e: &dyn std::fmt::Display| CertError::Load(e.to_string());
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| load(&e))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| load(&e))?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| load(&e))?;
    Ok(certified)
}

/// Keeps `serving` loaded from `source` until `shutdown`; see the module docs.
pub async fn keep(
    source: CertSource,
    serving: Arc<ServingCert>,
    client: Client,
    shutdown: CancellationToken,
) {
    let mut trusted_before = false;
    loop {
        let wait = match round(&source, &serving, &client, &mut trusted_before).await {
            Ok(wait) => wait,
            Err(CertError::WriteSecret(secret, kube::Error::Api(status))) if status.code == 409 => {
                tracing::info!(%secret, "another replica wrote the certificate first: reading it");
                Duration::from_secs(1)
            }
            Err(error) => {
                tracing::warn!(%error, "webhook certificate");
                // A conflict or a missing object usually resolves within a second.
                Duration::from_secs(1).max(source.period() / 5)
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// One round: returns how long to wait for the next.
async fn round(
    source: &CertSource,
    serving: &ServingCert,
    client: &Client,
    trusted_before: &mut bool,
) -> Result<Duration, CertError> {
    let period = source.period();
    let (namespace, name, managed) = match source {
        CertSource::Files { cert, key } => {
            let read = |path: &PathBuf| {
                std::fs::read_to_string(path).map_err(|source| CertError::ReadFile {
                    path: path.clone(),
                    source,
                })
            };
            if serving.load(&read(cert)?, &read(key)?)? {
                tracing::info!(cert = %cert.display(), "webhook serving certificate loaded");
            }
            return Ok(period);
        }
        CertSource::Secret {
            namespace,
            name,
            managed,
        } => (namespace, name, managed),
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let what = format!("{namespace}/{name}");
    let mut secret = match secrets
        .get_opt(name)
        .await
        .map_err(|e| CertError::ReadSecret(what.clone(), e))?
    {
        Some(secret) => secret,
        None if managed.is_some() => create_secret(&secrets, name, &what).await?,
        None => return Err(CertError::Load(format!("Secret {what} does not exist yet"))),
    };
    let mut pems = pems_of(&secret);
    let mut wait = period;
    if let Some(managed) = managed {
        let trusted_now = inject_ca_bundle(client, managed, &pems.ca_cert).await?;
        let want = Want {
            hosts: managed.hosts.clone(),
            validity: managed.validity,
            // Trusted for a whole round: the API server has had time to see the bundle.
            bundle_trusted: *trusted_before && trusted_now,
        };
        *trusted_before = trusted_now;
        if let Verdict::Write { pems: next, reason } =
            issue::check(&pems, &want, SystemTime::now())?
        {
            set_pems(&mut secret, &next);
            let written = secrets
                .replace(name, &PostParams::default(), &secret)
                .await
                .map_err(|e| CertError::WriteSecret(what.clone(), e))?;
            tracing::info!(secret = %what, reason, "webhook certificate written");
            pems = pems_of(&written);
            // Inject the new bundle soon rather than a whole period later.
            *trusted_before = false;
            wait = Duration::from_secs(1).min(period);
        }
        if let Some(at) = issue::renew_at(&pems.tls_cert) {
            let until = at.duration_since(SystemTime::now()).unwrap_or_default();
            wait = wait.min(until.max(Duration::from_secs(1)));
        }
    }
    if pems.tls_cert.is_empty() {
        return Err(CertError::Load(format!(
            "Secret {what} holds no tls.crt yet"
        )));
    }
    if serving.load(&pems.tls_cert, &pems.tls_key)? {
        let not_after = issue::validity(&pems.tls_cert)
            .map(|(_, after)| rfc3339(after))
            .unwrap_or_default();
        tracing::info!(secret = %what, %not_after, "webhook serving certificate loaded");
    }
    Ok(wait)
}

fn rfc3339(t: SystemTime) -> String {
    let seconds = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    k8s_openapi::jiff::Timestamp::from_second(seconds as i64)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Creates the Secret empty, where the installation did not (a controller run by hand).
async fn create_secret(api: &Api<Secret>, name: &str, what: &str) -> Result<Secret, CertError> {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        ..Secret::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(created) => Ok(created),
        Err(error) => Err(CertError::CreateSecret(what.to_string(), error)),
    }
}

fn pems_of(secret: &Secret) -> Pems {
    Pems::from_keys(|key| {
        secret
            .data
            .as_ref()
            .and_then(|data| data.get(key))
            .map(|bytes| String::from_utf8_lossy(&bytes.0).into_owned())
            .unwrap_or_default()
    })
}

fn set_pems(secret: &mut Secret, pems: &Pems) {
    let data = secret.data.get_or_insert_with(BTreeMap::new);
    for (key, pem) in pems.by_key() {
        data.insert(key.to_string(), ByteString(pem.as_bytes().to_vec()));
    }
}

/// Sets every webhook's caBundle of both configurations to `bundle`. Returns whether all of
/// them already had it (nothing needed writing).
async fn inject_ca_bundle(
    client: &Client,
    managed: &Managed,
    bundle: &str,
) -> Result<bool, CertError> {
    if bundle.is_empty() {
        return Ok(false);
    }
    let mutating = inject(
        &Api::<MutatingWebhookConfiguration>::all(client.clone()),
        &managed.mutating_configuration,
        bundle,
    )
    .await?;
    let validating = inject(
        &Api::<ValidatingWebhookConfiguration>::all(client.clone()),
        &managed.validating_configuration,
        bundle,
    )
    .await?;
    Ok(mutating && validating)
}

/// A webhook configuration's caBundle fields, one per webhook.
trait CaBundles {
    fn ca_bundles(&mut self) -> Vec<&mut Option<ByteString>>;
}

impl CaBundles for MutatingWebhookConfiguration {
    fn ca_bundles(&mut self) -> Vec<&mut Option<ByteString>> {
        let hooks = self.webhooks.iter_mut().flatten();
        hooks
            .map(|hook| &mut hook.client_config.ca_bundle)
            .collect()
    }
}

impl CaBundles for ValidatingWebhookConfiguration {
    fn ca_bundles(&mut self) -> Vec<&mut Option<ByteString>> {
        let hooks = self.webhooks.iter_mut().flatten();
        hooks
            .map(|hook| &mut hook.client_config.ca_bundle)
            .collect()
    }
}

/// Sets every caBundle of configuration `name`; true when none changed. A configuration
/// that does not exist (not installed yet) is not trusted.
async fn inject<K>(api: &Api<K>, name: &str, bundle: &str) -> Result<bool, CertError>
where
    K: kube::Resource
        + CaBundles
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let error = |e| CertError::Inject(name.to_string(), e);
    let Some(mut config) = api.get_opt(name).await.map_err(error)? else {
        tracing::warn!(
            configuration = name,
            "webhook configuration not found: nothing to inject the CA bundle into"
        );
        return Ok(false);
    };
    let want = ByteString(bundle.as_bytes().to_vec());
    let mut changed = false;
    for slot in config.ca_bundles() {
        if slot.as_ref() != Some(&want) {
            *slot = Some(want.clone());
            changed = true;
        }
    }
    if changed {
        api.replace(name, &PostParams::default(), &config)
            .await
            .map_err(error)?;
        tracing::info!(configuration = name, "CA bundle injected");
    }
    Ok(!changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(hosts: &[&str], validity: Duration) -> Pems {
        let want = Want {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            validity,
            bundle_trusted: false,
        };
        match issue::check(&Pems::default(), &want, SystemTime::now()).unwrap() {
            Verdict::Write { pems, .. } => pems,
            Verdict::Keep => unreachable!("an empty Secret is always written"),
        }
    }

    #[test]
    fn serving_cert_swaps_in_place_and_refuses_what_does_not_load() {
        let serving = ServingCert::default();
        assert!(!serving.is_serving(), "nothing loaded yet");
        let first = issued(&["127.0.0.1"], Duration::from_secs(3600));
        assert!(serving.load(&first.tls_cert, &first.tls_key).unwrap());
        assert!(serving.is_serving());
        assert!(
            !serving.load(&first.tls_cert, &first.tls_key).unwrap(),
            "unchanged"
        );
        let second = issued(&["127.0.0.1"], Duration::from_secs(3600));
        assert!(
            serving.load(&first.tls_cert, &second.tls_key).is_err(),
            "a key that is not the certificate's"
        );
        assert!(serving.load("garbage", &second.tls_key).is_err());
        assert!(serving.load(&second.tls_cert, &second.tls_key).unwrap());
        let served = serving.current.read().unwrap();
        assert_eq!(served.as_ref().unwrap().source.0, second.tls_cert);
    }

    #[test]
    fn secret_round_trips_the_pems() {
        let pems = issued(
            &["lws-webhook-service.lws-system.svc"],
            Duration::from_secs(60),
        );
        let mut secret = Secret::default();
        set_pems(&mut secret, &pems);
        assert_eq!(pems_of(&secret), pems);
    }

    #[test]
    fn the_round_period_shrinks_with_short_validity() {
        let managed = |validity| CertSource::Secret {
            namespace: "ns".into(),
            name: "s".into(),
            managed: Some(Managed {
                hosts: vec![],
                validity,
                mutating_configuration: "m".into(),
                validating_configuration: "v".into(),
            }),
        };
        assert_eq!(
            managed(Duration::from_secs(8760 * 3600)).period(),
            Duration::from_secs(10)
        );
        assert_eq!(
            managed(Duration::from_secs(60)).period(),
            Duration::from_secs(6)
        );
    }
}
