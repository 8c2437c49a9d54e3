//! `lws controller`'s settings: one struct, fed by the command line ([`flags`]), upstream's
//! configuration file ([`file`]) and the environment, with upstream's precedence: a flag given
//! on the command line beats the file, the file beats the default.
//!
//! # Expected flow
//! 1. [`flags::ControllerFlags`] parses the command line; every setting not on it is `None`.
//! 2. [`load`] reads `--config` when given (strictly: an unknown field is an error with its
//!    path) and checks it with upstream's rules.
//! 3. [`resolve`] picks each setting's value and checks the combination (leader-election
//!    durations as client-go checks them, feature gates, providers). A setting this controller
//!    accepts but does not act on becomes a [`Note`], logged at start-up, never dropped
//!    silently.
//!
//! Nothing here touches the cluster; the environment comes in as an [`Environment`], so the
//! same inputs always give the same settings.

pub mod file;
pub mod flags;
pub mod go;
pub mod logging;

use crate::controller::leader::{self, LeaseTiming};
use crate::install::{self, HEALTH_PORT, METRICS_PORT, WEBHOOK_PORT};
use crate::kube_client::ClientOptions;
use file::{ConfigFileError, Configuration};
use flags::{BindAddress, CertManagement, ControllerFlags};
use logging::{LogFormat, LogLevel, TimeEncoding};
use lws_core::reconcile::pod_group::SCHEDULER_PROVIDERS;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// LWS feature gates by name: whether each is on by default and what turning it on does here.
pub const FEATURE_GATES: [(&str, bool, &str); 1] = [(
    "WorkloadAwareScheduling",
    false,
    "spec.scheduling is not implemented here: a LeaderWorkerSet asking for it is refused at \
     admission whatever the gate says",
)];

/// Upstream's cert directory default; anything else was chosen and gets a note.
const DEFAULT_CERT_DIR: &str = "/tmp/k8s-webhook-server/serving-certs";
/// Our default serving certificate lifetime (8760h).
const CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// client-go's factor: the renew deadline must exceed this many retry periods.
const JITTER_FACTOR: f64 = 1.2;

/// What the process environment contributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Environment {
    /// Running in a Pod (KUBERNETES_SERVICE_HOST set): the defaults are upstream's (every
    /// interface, leader election on); elsewhere loopback and no election.
    pub in_cluster: bool,
    /// The namespace when `--namespace` is not given (see [`leader::default_namespace`]).
    pub namespace: String,
    /// `ENABLE_WEBHOOKS`: `false` runs without webhooks, as upstream.
    pub enable_webhooks: Option<String>,
}

impl Environment {
    pub fn from_process() -> Self {
        Environment {
            in_cluster: std::env::var_os("KUBERNETES_SERVICE_HOST").is_some(),
            namespace: leader::default_namespace(),
            enable_webhooks: std::env::var("ENABLE_WEBHOOKS").ok(),
        }
    }
}

/// Everything `lws controller` runs with.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The controller's namespace (the Secret's, and the Lease's by default).
    pub namespace: String,
    /// `None`: no webhook server.
    pub webhook: Option<WebhookSettings>,
    /// `/healthz` and `/readyz`; `None`: no probe server.
    pub health_addr: Option<SocketAddr>,
    /// The HTTPS `/metrics` server; `None`: none.
    pub metrics_addr: Option<SocketAddr>,
    /// `None`: reconcile at once, without a Lease.
    pub leader_election: Option<LeaderElectionSettings>,
    pub client: ClientOptions,
    pub log: LogSettings,
    pub scheduler_provider: Option<String>,
    /// Every known gate with its value (default or configured).
    pub feature_gates: BTreeMap<String, bool>,
    pub pid_file: Option<PathBuf>,
    /// Settings accepted without effect here, and other things worth a line at start-up.
    pub notes: Vec<Note>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct WebhookSettings {
    pub addr: SocketAddr,
    pub certs: CertSettings,
}

/// Where the serving certificate comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum CertSettings {
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    Secret {
        name: String,
        /// `Some`: this controller issues and rotates it (upstream's internal management).
        internal: Option<InternalCerts>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct InternalCerts {
    pub service: String,
    /// Names beyond the Service's.
    pub extra_hosts: Vec<String>,
    pub validity: Duration,
    pub mutating_configuration: String,
    pub validating_configuration: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LeaderElectionSettings {
    pub namespace: String,
    pub name: String,
    /// `None`: [`leader::default_identity`].
    pub identity: Option<String>,
    pub timing: LeaseTiming,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LogSettings {
    /// A `tracing` filter.
    pub filter: String,
    pub format: LogFormat,
    /// `None`: tracing's own RFC 3339 timestamps.
    pub time: Option<TimeEncoding>,
}

/// A line for the start-up log about a setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The flag (`--metrics-bind-address`) or file field (`webhook.certDir`).
    pub setting: String,
    pub message: String,
    /// `true`: the setting was asked for and does nothing here (logged as a warning).
    pub no_effect: bool,
}

/// Why the settings cannot be used; each names the flag or file field.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    File(#[from] ConfigFileError),
    /// Upstream's message, word for word.
    #[error("unknown LWS feature gate {0:?}")]
    UnknownFeatureGate(String),
    #[error("{setting}: {message}")]
    Invalid { setting: String, message: String },
    /// client-go's checks of the three durations, with where each value came from.
    #[error("leader election: {rule} ({values})")]
    LeaseTiming { rule: &'static str, values: String },
}

fn invalid(setting: &str, message: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        setting: setting.to_string(),
        message: message.into(),
    }
}

/// Reads `--config` (if given) and resolves.
pub fn load(flags: &ControllerFlags, env: &Environment) -> Result<Settings, SettingsError> {
    let file = match &flags.config {
        Some(path) => {
            let config = Configuration::load(path)?;
            let errors = config.validate(SCHEDULER_PROVIDERS);
            if !errors.is_empty() {
                return Err(ConfigFileError::Invalid {
                    file: path.clone(),
                    errors,
                }
                .into());
            }
            Some(config)
        }
        None => None,
    };
    resolve(flags, file.as_ref(), env)
}

/// A value and where it came from, for messages.
struct Picked<T> {
    value: T,
    from: String,
}

/// The flag's value if given, else the file's, else the default.
fn pick<T>(
    flag: Option<T>,
    flag_name: &str,
    field: Option<T>,
    field_path: &str,
    default: T,
) -> Picked<T> {
    match (flag, field) {
        (Some(value), _) => Picked {
            value,
            from: flag_name.to_string(),
        },
        (None, Some(value)) => Picked {
            value,
            from: field_path.to_string(),
        },
        (None, None) => Picked {
            value: default,
            from: "default".to_string(),
        },
    }
}

/// A string field upstream treats as unset when empty.
fn given(value: &Option<String>) -> Option<String> {
    value.clone().filter(|s| !s.is_empty())
}

/// Merges flags, file and environment into [`Settings`].
pub fn resolve(
    flags: &ControllerFlags,
    file: Option<&Configuration>,
    env: &Environment,
) -> Result<Settings, SettingsError> {
    let empty = Configuration::default();
    let file = file.unwrap_or(&empty);
    let mut notes = Vec::new();
    let mut note = |setting: &str, message: String, no_effect: bool| {
        notes.push(Note {
            setting: setting.to_string(),
            message,
            no_effect,
        })
    };
    if file.is_deprecated_version() {
        note(
            "apiVersion",
            "config.lws.x-k8s.io/v1alpha1 is deprecated upstream; v1 has the same fields".into(),
            false,
        );
    }
    let namespace = flags
        .namespace
        .clone()
        .unwrap_or_else(|| env.namespace.clone());
    let default_host = if env.in_cluster {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    };

    // Health probes.
    let health_file = file.health.clone().unwrap_or_default();
    let health_field = given(&health_file.health_probe_bind_address)
        .map(|text| {
            BindAddress::parse(&text)
                .map_err(|e| invalid("health.healthProbeBindAddress", e.to_string()))
        })
        .transpose()?;
    let health_addr = pick(
        flags.health_probe_bind_address,
        "--health-probe-bind-address",
        health_field,
        "health.healthProbeBindAddress",
        BindAddress::At(SocketAddr::new(default_host, HEALTH_PORT)),
    )
    .value
    .addr();
    for (field, value, served) in [
        (
            "health.readinessEndpointName",
            &health_file.readiness_endpoint_name,
            "/readyz",
        ),
        (
            "health.livenessEndpointName",
            &health_file.liveness_endpoint_name,
            "/healthz",
        ),
    ] {
        if let Some(name) = given(value).filter(|name| name != served) {
            note(
                field,
                format!("{name:?} has no effect: the endpoint is {served}"),
                true,
            );
        }
    }

    // The metrics server: upstream's `:8443` in a cluster. Elsewhere it is off unless asked
    // for: the controllers of one machine (a developer's, a test's) would share the port.
    let metrics_field = file
        .metrics
        .as_ref()
        .and_then(|m| given(&m.bind_address))
        .map(|text| {
            BindAddress::parse(&text).map_err(|e| invalid("metrics.bindAddress", e.to_string()))
        })
        .transpose()?;
    let metrics_addr = pick(
        flags.metrics_bind_address,
        "--metrics-bind-address",
        metrics_field,
        "metrics.bindAddress",
        if env.in_cluster {
            BindAddress::At(SocketAddr::new(default_host, METRICS_PORT))
        } else {
            BindAddress::Disabled
        },
    )
    .value
    .addr();

    let webhook = resolve_webhook(flags, file, env, default_host, &mut note)?;
    let leader_election = resolve_leader_election(flags, file, env, &namespace, &mut note)?;
    let client = resolve_client(flags, file)?;
    let log = resolve_log(flags, &mut note);

    let provider = pick(
        given(&flags.scheduler_provider),
        "--scheduler-provider",
        file.gang_scheduling_management
            .as_ref()
            .and_then(|g| given(&g.scheduler_provider)),
        "gangSchedulingManagement.schedulerProvider",
        String::new(),
    );
    if !provider.value.is_empty() && !SCHEDULER_PROVIDERS.contains(&provider.value.as_str()) {
        return Err(invalid(
            &provider.from,
            format!(
                "Unsupported value: {:?}: supported values: {}",
                provider.value,
                SCHEDULER_PROVIDERS
                    .iter()
                    .map(|p| format!("{p:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }

    let mut feature_gates: BTreeMap<String, bool> = FEATURE_GATES
        .iter()
        .map(|(name, default, _)| (name.to_string(), *default))
        .collect();
    for (name, &on) in file.feature_gates.iter().flatten() {
        let Some((_, _, effect)) = FEATURE_GATES.iter().find(|(known, ..)| known == name) else {
            return Err(SettingsError::UnknownFeatureGate(name.clone()));
        };
        feature_gates.insert(name.clone(), on);
        if on {
            note(
                &format!("featureGates.{name}"),
                format!("on: {effect}"),
                true,
            );
        }
    }

    if let Some(tls) = &file.tls {
        if tls.min_version.is_some() || tls.cipher_suites.is_some() {
            note(
                "tls",
                "minVersion and cipherSuites have no effect: the webhook server offers TLS 1.2 \
                 and 1.3 with rustls's default cipher suites"
                    .into(),
                true,
            );
        }
    }

    Ok(Settings {
        namespace,
        webhook,
        health_addr,
        metrics_addr,
        leader_election,
        client,
        log,
        scheduler_provider: Some(provider.value).filter(|p| !p.is_empty()),
        feature_gates,
        pid_file: flags.pid_file.clone(),
        notes,
    })
}

fn resolve_webhook(
    flags: &ControllerFlags,
    file: &Configuration,
    env: &Environment,
    default_host: IpAddr,
    note: &mut impl FnMut(&str, String, bool),
) -> Result<Option<WebhookSettings>, SettingsError> {
    let webhook_file = file.webhook.clone().unwrap_or_default();
    if let Some(dir) = given(&webhook_file.cert_dir).filter(|d| d != DEFAULT_CERT_DIR) {
        note(
            "webhook.certDir",
            format!(
                "{dir:?} has no effect: the serving certificate is read from its Secret through \
                 the API (or from --tls-cert/--tls-key), not from a directory"
            ),
            true,
        );
    }
    if flags.no_webhooks || env.enable_webhooks.as_deref() == Some("false") {
        return Ok(None);
    }
    let file_addr = if webhook_file.port.is_some() || given(&webhook_file.host).is_some() {
        // As controller-runtime: a port of 0 or less is 9443, an empty host every interface.
        let port = match webhook_file.port {
            Some(port) if port > 0 => u16::try_from(port)
                .map_err(|_| invalid("webhook.port", format!("{port} is not a TCP port")))?,
            _ => WEBHOOK_PORT,
        };
        let host = given(&webhook_file.host).unwrap_or_default();
        let text = match host.contains(':') {
            true => format!("[{host}]:{port}"),
            false => format!("{host}:{port}"),
        };
        Some(go::parse_listen_address(&text).map_err(|e| invalid("webhook.host", e.to_string()))?)
    } else {
        None
    };
    let addr = pick(
        flags.webhook_addr,
        "--webhook-addr",
        file_addr,
        "webhook",
        SocketAddr::new(default_host, WEBHOOK_PORT),
    )
    .value;

    let certs_file = file.internal_cert_management.clone().unwrap_or_default();
    let certs = match (&flags.tls_cert, &flags.tls_key) {
        (Some(cert), Some(key)) => CertSettings::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => {
            let internal = pick(
                flags.cert_management.map(|m| m == CertManagement::Internal),
                "--cert-management",
                certs_file.enable,
                "internalCertManagement.enable",
                true,
            )
            .value;
            CertSettings::Secret {
                name: pick(
                    given(&flags.cert_secret_name),
                    "--cert-secret-name",
                    given(&certs_file.webhook_secret_name),
                    "internalCertManagement.webhookSecretName",
                    install::WEBHOOK_SECRET.to_string(),
                )
                .value,
                internal: internal.then(|| InternalCerts {
                    service: pick(
                        given(&flags.webhook_service_name),
                        "--webhook-service-name",
                        given(&certs_file.webhook_service_name),
                        "internalCertManagement.webhookServiceName",
                        install::WEBHOOK_SERVICE.to_string(),
                    )
                    .value,
                    extra_hosts: flags.cert_hosts.clone(),
                    validity: flags.cert_validity.unwrap_or(CERT_VALIDITY),
                    mutating_configuration: flags
                        .mutating_webhook_configuration
                        .clone()
                        .unwrap_or_else(|| install::MUTATING_CONFIGURATION.to_string()),
                    validating_configuration: flags
                        .validating_webhook_configuration
                        .clone()
                        .unwrap_or_else(|| install::VALIDATING_CONFIGURATION.to_string()),
                }),
            }
        }
    };
    Ok(Some(WebhookSettings { addr, certs }))
}

/// A duration as a message shows it: Go's spelling for whole seconds and milliseconds.
fn show(nanos: i64) -> String {
    match nanos {
        n if n % 1_000_000_000 == 0 => format!("{}s", n / 1_000_000_000),
        n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
        n => format!("{n}ns"),
    }
}

fn resolve_leader_election(
    flags: &ControllerFlags,
    file: &Configuration,
    env: &Environment,
    namespace: &str,
    note: &mut impl FnMut(&str, String, bool),
) -> Result<Option<LeaderElectionSettings>, SettingsError> {
    let election = file.leader_election.clone().unwrap_or_default();
    if let Some(ns) = given(&election.resource_namespace) {
        // Upstream's manager sets the Lease's namespace to its own after reading the file.
        note(
            "leaderElection.resourceNamespace",
            format!(
                "{ns:?} is ignored, as upstream ignores it: the Lease is in the controller's \
                 namespace (--leader-election-namespace sets another)"
            ),
            true,
        );
    }
    let enabled = pick(
        flags.leader_elect,
        "--leader-elect",
        election.leader_elect,
        "leaderElection.leaderElect",
        env.in_cluster,
    )
    .value;
    if !enabled {
        return Ok(None);
    }
    let lock = pick(
        given(&flags.leader_elect_resource_lock),
        "--leader-elect-resource-lock",
        given(&election.resource_lock),
        "leaderElection.resourceLock",
        "leases".to_string(),
    );
    match lock.value.as_str() {
        "leases" => {}
        removed @ ("endpoints" | "configmaps" | "endpointsleases" | "configmapsleases") => {
            return Err(invalid(
                &lock.from,
                format!("{removed} lock is removed, migrate to leases"),
            ))
        }
        other => return Err(invalid(&lock.from, format!("Invalid lock-type {other}"))),
    }
    let defaults = LeaseTiming::default();
    let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    // A zero duration in the file is unset, as upstream compares it with the zero value.
    let field = |d: Option<file::GoDuration>| d.map(|d| d.0).filter(|&n| n != 0);
    let lease = pick(
        flags.leader_elect_lease_duration,
        "--leader-elect-lease-duration",
        field(election.lease_duration),
        "leaderElection.leaseDuration",
        nanos(defaults.lease_duration),
    );
    let renew = pick(
        flags.leader_elect_renew_deadline,
        "--leader-elect-renew-deadline",
        field(election.renew_deadline),
        "leaderElection.renewDeadline",
        nanos(defaults.renew_deadline),
    );
    let retry = pick(
        flags.leader_elect_retry_period,
        "--leader-elect-retry-period",
        field(election.retry_period),
        "leaderElection.retryPeriod",
        nanos(defaults.retry_period),
    );
    let values = format!(
        "leaseDuration {} from {}, renewDeadline {} from {}, retryPeriod {} from {}",
        show(lease.value),
        lease.from,
        show(renew.value),
        renew.from,
        show(retry.value),
        retry.from
    );
    let rule = if lease.value <= renew.value {
        Some("leaseDuration must be greater than renewDeadline")
    } else if renew.value as f64 <= JITTER_FACTOR * retry.value as f64 {
        Some("renewDeadline must be greater than retryPeriod*JitterFactor")
    } else if lease.value < 1 {
        Some("leaseDuration must be greater than zero")
    } else if renew.value < 1 {
        Some("renewDeadline must be greater than zero")
    } else if retry.value < 1 {
        Some("retryPeriod must be greater than zero")
    } else {
        None
    };
    if let Some(rule) = rule {
        return Err(SettingsError::LeaseTiming { rule, values });
    }
    let duration = |n: i64| Duration::from_nanos(n as u64);
    Ok(Some(LeaderElectionSettings {
        namespace: flags
            .leader_election_namespace
            .clone()
            .unwrap_or_else(|| namespace.to_string()),
        name: pick(
            given(&flags.leader_elect_resource_name),
            "--leader-elect-resource-name",
            given(&election.resource_name),
            "leaderElection.resourceName",
            leader::DEFAULT_LEASE_NAME.to_string(),
        )
        .value,
        identity: flags.leader_election_identity.clone(),
        timing: LeaseTiming {
            lease_duration: duration(lease.value),
            renew_deadline: duration(renew.value),
            retry_period: duration(retry.value),
        },
    }))
}

fn resolve_client(
    flags: &ControllerFlags,
    file: &Configuration,
) -> Result<ClientOptions, SettingsError> {
    let defaults = ClientOptions::default();
    let connection = file.client_connection.clone().unwrap_or_default();
    let qps = pick(
        flags.kube_api_qps,
        "--kube-api-qps",
        connection.qps,
        "clientConnection.qps",
        defaults.qps,
    );
    if qps.value.is_nan() {
        return Err(invalid(&qps.from, "not a number"));
    }
    let burst = pick(
        flags.kube_api_burst,
        "--kube-api-burst",
        connection.burst.map(i64::from),
        "clientConnection.burst",
        defaults.burst,
    );
    // client-go would fail every request: a bucket of negative size never has a token.
    if burst.value < 0 && qps.value >= 0.0 && qps.value.is_finite() {
        return Err(invalid(
            &burst.from,
            format!(
                "{} is negative; it must be 0 or more while the QPS ({}) limits requests",
                burst.value, qps.value
            ),
        ));
    }
    Ok(ClientOptions {
        kubeconfig: flags.kubeconfig.clone(),
        qps: qps.value,
        burst: burst.value,
    })
}

fn resolve_log(flags: &ControllerFlags, note: &mut impl FnMut(&str, String, bool)) -> LogSettings {
    let level = match (&flags.zap_log_level, flags.zap_devel) {
        (Some(level), _) => level.clone(),
        (None, Some(true)) => LogLevel::Debug,
        (None, _) => LogLevel::Info,
    };
    let format = match (flags.zap_encoder, flags.zap_devel) {
        (Some(format), _) => format,
        (None, Some(false)) => LogFormat::Json,
        (None, _) => LogFormat::Text,
    };
    if let Some(level) = flags.zap_stacktrace_level {
        note(
            "--zap-stacktrace-level",
            format!("{level:?} has no effect: these logs carry no stack traces"),
            true,
        );
    }
    LogSettings {
        filter: level.filter(),
        format,
        time: flags.zap_time_encoding,
    }
}

#[cfg(test)]
mod tests;
