//! Upstream's controller configuration file (`--config`): kind `Configuration` of
//! `config.lws.x-k8s.io`, versions `v1alpha1` and `v1` (the same fields; `v1` is the stable
//! name since upstream v0.11). Decoded strictly as upstream decodes it: an unknown or
//! duplicated field is an error naming its path, so a typo fails start-up instead of being
//! ignored.
//!
//! Only the file's shape and its own rules live here; [`super::resolve`] merges it with the
//! flags and the defaults.

use lws_core::{FieldError, FieldPath};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The API group of the file.
pub const GROUP: &str = "config.lws.x-k8s.io";
/// `apiVersion`s a file may have; `v1alpha1` is deprecated upstream in favour of `v1`.
pub const API_VERSIONS: [&str; 2] = ["config.lws.x-k8s.io/v1alpha1", "config.lws.x-k8s.io/v1"];
pub const KIND: &str = "Configuration";

/// The whole file. Every field is optional: what is absent takes its default when resolved.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Configuration {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub webhook: Option<Webhook>,
    pub leader_election: Option<LeaderElection>,
    pub metrics: Option<Metrics>,
    pub health: Option<Health>,
    pub tls: Option<TlsOptions>,
    pub internal_cert_management: Option<InternalCertManagement>,
    pub gang_scheduling_management: Option<GangSchedulingManagement>,
    /// Feature name to on/off; an unknown name fails start-up.
    pub feature_gates: Option<BTreeMap<String, bool>>,
    pub client_connection: Option<ClientConnection>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Webhook {
    /// 0 or absent: 9443.
    pub port: Option<i64>,
    /// Empty or absent: every interface.
    pub host: Option<String>,
    pub cert_dir: Option<String>,
}

/// Kubernetes component-base's `LeaderElectionConfiguration`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LeaderElection {
    pub leader_elect: Option<bool>,
    pub lease_duration: Option<GoDuration>,
    pub renew_deadline: Option<GoDuration>,
    pub retry_period: Option<GoDuration>,
    pub resource_lock: Option<String>,
    pub resource_name: Option<String>,
    pub resource_namespace: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metrics {
    pub bind_address: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Health {
    pub health_probe_bind_address: Option<String>,
    pub readiness_endpoint_name: Option<String>,
    pub liveness_endpoint_name: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsOptions {
    pub min_version: Option<String>,
    pub cipher_suites: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InternalCertManagement {
    pub enable: Option<bool>,
    pub webhook_service_name: Option<String>,
    pub webhook_secret_name: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientConnection {
    pub qps: Option<f32>,
    pub burst: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GangSchedulingManagement {
    pub scheduler_provider: Option<String>,
}

/// A `metav1.Duration`: a string in Go's duration syntax (a bare number is not one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoDuration(pub i64);

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::go::parse_duration(&text)
            .map(GoDuration)
            .map_err(serde::de::Error::custom)
    }
}

/// Why the file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("reading the configuration file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not YAML, a field of the wrong type, or a field the kind does not have.
    #[error("{}: strict decoding error at {path:?}: {message}", file.display())]
    Decode {
        file: PathBuf,
        /// Where in the document (`leaderElection.leaseDurationn`); empty for the whole.
        path: String,
        message: String,
    },
    #[error("{}: Object 'apiVersion' is missing", file.display())]
    MissingApiVersion { file: PathBuf },
    #[error("{}: Object 'Kind' is missing", file.display())]
    MissingKind { file: PathBuf },
    #[error(
        "{}: no kind {kind:?} is registered for version {api_version:?} (this controller reads \
         kind {KIND:?} of {})",
        file.display(), API_VERSIONS.join(", ")
    )]
    UnknownType {
        file: PathBuf,
        api_version: String,
        kind: String,
    },
    /// The fields decoded but break a rule of the configuration (one line each).
    #[error("{}: {}", file.display(), errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid {
        file: PathBuf,
        errors: Vec<FieldError>,
    },
}

impl Configuration {
    /// Reads and decodes `path` strictly, then checks its type.
    pub fn load(path: &Path) -> Result<Self, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Decodes `text` (named `file` in errors).
    pub fn parse(text: &str, file: &Path) -> Result<Self, ConfigFileError> {
        let deserializer = serde_norway::Deserializer::from_str(text);
        let config: Configuration =
            serde_path_to_error::deserialize(deserializer).map_err(|error| {
                ConfigFileError::Decode {
                    file: file.to_path_buf(),
                    path: match error.path().to_string() {
                        dot if dot == "." => String::new(),
                        path => path,
                    },
                    message: error.into_inner().to_string(),
                }
            })?;
        let file = file.to_path_buf();
        let api_version = match config.api_version.as_deref() {
            None | Some("") => return Err(ConfigFileError::MissingApiVersion { file }),
            Some(version) => version,
        };
        let kind = match config.kind.as_deref() {
            None | Some("") => return Err(ConfigFileError::MissingKind { file }),
            Some(kind) => kind,
        };
        if kind != KIND || !API_VERSIONS.contains(&api_version) {
            return Err(ConfigFileError::UnknownType {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
                file,
            });
        }
        Ok(config)
    }

    /// `v1alpha1`, which upstream converts to `v1` with a deprecation warning.
    pub fn is_deprecated_version(&self) -> bool {
        self.api_version.as_deref() == Some(API_VERSIONS[0])
    }

    /// Whether internal certificate management is on (upstream's default: yes).
    pub fn internal_certs(&self) -> Option<bool> {
        self.internal_cert_management.as_ref()?.enable
    }

    /// Upstream's own checks of a decoded file, in its order: the gang-scheduling provider,
    /// then the names internal certificate management uses, then the TLS options.
    pub fn validate(&self, supported_providers: &[&str]) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Some(gang) = &self.gang_scheduling_management {
            let path = FieldPath::new("gangSchedulingManagement").child("schedulerProvider");
            match gang.scheduler_provider.as_deref() {
                None | Some("") => errors.push(FieldError::required(
                    path,
                    "must be set when gang scheduling is enabled",
                )),
                Some(provider) if !supported_providers.contains(&provider) => errors.push(
                    FieldError::not_supported(path, provider, supported_providers),
                ),
                Some(_) => {}
            }
        }
        if let Some(certs) = self
            .internal_cert_management
            .as_ref()
            .filter(|c| c.enable.unwrap_or(true))
        {
            let path = FieldPath::new("internalCertManagement");
            if let Some(name) = &certs.webhook_service_name {
                let problems = lws_core::validation::dns1035_label_errors(name);
                if !problems.is_empty() {
                    errors.push(FieldError::invalid(
                        path.child("webhookServiceName"),
                        format!("{name:?}"),
                        problems.join(","),
                    ));
                }
            }
            if let Some(name) = &certs.webhook_secret_name {
                let problems = dns1123_subdomain_errors(name);
                if !problems.is_empty() {
                    errors.push(FieldError::invalid(
                        path.child("webhookSecretName"),
                        format!("{name:?}"),
                        problems.join(","),
                    ));
                }
            }
        }
        if let Some(tls) = &self.tls {
            errors.extend(validate_tls(tls));
        }
        errors
    }
}

const DNS1123_SUBDOMAIN_MESSAGE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// apimachinery's `IsDNS1123Subdomain` messages for `value` (empty when valid).
fn dns1123_subdomain_errors(value: &str) -> Vec<&'static str> {
    let mut errors = Vec::new();
    if value.len() > 253 {
        errors.push("must be no more than 253 characters");
    }
    let alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        match (bytes.first(), bytes.last()) {
            (Some(&first), Some(&last)) => {
                alphanumeric(first)
                    && alphanumeric(last)
                    && bytes.iter().all(|&b| alphanumeric(b) || b == b'-')
            }
            _ => false,
        }
    };
    if !value.split('.').all(label_ok) {
        errors.push(DNS1123_SUBDOMAIN_MESSAGE);
    }
    errors
}

/// TLS versions by the names Go's `crypto/tls` constants have.
const TLS_VERSIONS: [&str; 4] = [
    "VersionTLS10",
    "VersionTLS11",
    "VersionTLS12",
    "VersionTLS13",
];

/// Cipher suite names Kubernetes' component-base accepts: every suite Go's `crypto/tls`
/// implements, secure or not, plus two short aliases of the ChaCha20 ones.
const CIPHER_SUITES: [&str; 27] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_RSA_WITH_RC4_128_SHA",
];

/// Upstream's TLS option rules: TLS 1.0 and 1.1 are refused, TLS 1.3 takes no cipher suites
/// (Go does not let them be chosen), and every suite must have a known name.
fn validate_tls(tls: &TlsOptions) -> Vec<FieldError> {
    let path = FieldPath::new("tls");
    let mut errors = Vec::new();
    let suites = tls.cipher_suites.as_deref().unwrap_or_default();
    let min = tls.min_version.as_deref().unwrap_or_default();
    if min == "VersionTLS13" && !suites.is_empty() {
        errors.push(FieldError::invalid(
            path.child("cipherSuites"),
            format!("{suites:?}"),
            "cipher suites may not be specified when minVersion is 'VersionTLS13'",
        ));
        return errors;
    }
    match min {
        "" | "VersionTLS12" | "VersionTLS13" => {}
        "VersionTLS10" | "VersionTLS11" => errors.push(FieldError::invalid(
            path.child("minVersion"),
            format!("{min:?}"),
            "invalid minVersion. Please use VersionTLS12 or VersionTLS13",
        )),
        other => errors.push(FieldError::not_supported(
            path.child("minVersion"),
            other,
            &TLS_VERSIONS[2..],
        )),
    }
    for (index, suite) in suites.iter().enumerate() {
        if !CIPHER_SUITES.contains(&suite.as_str()) {
            errors.push(FieldError::invalid(
                path.child("cipherSuites").index(index),
                format!("{suite:?}"),
                "unknown cipher suite name",
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Configuration, ConfigFileError> {
        Configuration::parse(text, Path::new("c.yaml"))
    }

    fn decode_error(text: &str) -> (String, String) {
        match parse(text) {
            Err(ConfigFileError::Decode { path, message, .. }) => (path, message),
            other => panic!("expected a decode error, got {other:?}"),
        }
    }

    const HEAD: &str = "apiVersion: config.lws.x-k8s.io/v1alpha1\nkind: Configuration\n";

    #[test]
    fn every_field_decodes() {
        let text = format!(
            "{HEAD}webhook:\n  port: 9444\n  host: 127.0.0.1\n  certDir: /certs\n\
             leaderElection:\n  leaderElect: false\n  leaseDuration: 1m30s\n  renewDeadline: 500ms\n  \
             retryPeriod: 1.5s\n  resourceLock: leases\n  resourceName: my-lease\n  resourceNamespace: ns\n\
             metrics:\n  bindAddress: \"0\"\nhealth:\n  healthProbeBindAddress: :9081\n  \
             readinessEndpointName: /ready\n  livenessEndpointName: /live\n\
             tls:\n  minVersion: VersionTLS12\n  cipherSuites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n\
             internalCertManagement:\n  enable: false\n  webhookServiceName: svc\n  webhookSecretName: sec\n\
             gangSchedulingManagement:\n  schedulerProvider: volcano\n\
             featureGates:\n  WorkloadAwareScheduling: true\n\
             clientConnection:\n  qps: 12.5\n  burst: 30\n"
        );
        let config = parse(&text).unwrap();
        let election = config.leader_election.as_ref().unwrap();
        assert_eq!(election.lease_duration, Some(GoDuration(90_000_000_000)));
        assert_eq!(election.renew_deadline, Some(GoDuration(500_000_000)));
        assert_eq!(election.retry_period, Some(GoDuration(1_500_000_000)));
        assert_eq!(election.resource_namespace.as_deref(), Some("ns"));
        assert_eq!(config.webhook.as_ref().unwrap().port, Some(9444));
        assert_eq!(config.client_connection.as_ref().unwrap().qps, Some(12.5));
        assert_eq!(config.client_connection.as_ref().unwrap().burst, Some(30));
        assert_eq!(config.internal_certs(), Some(false));
        assert!(config.feature_gates.as_ref().unwrap()["WorkloadAwareScheduling"]);
        assert!(config.is_deprecated_version());
        assert!(config.validate(&["volcano"]).is_empty());
    }

    #[test]
    fn unknown_fields_are_errors_with_their_path() {
        let (path, message) =
            decode_error(&format!("{HEAD}leaderElection:\n  leaseDurationn: 5s\n"));
        assert_eq!(path, "leaderElection.leaseDurationn");
        assert!(
            message.contains("unknown field `leaseDurationn`"),
            "{message}"
        );
        let (path, _) = decode_error(&format!("{HEAD}metric:\n  bindAddress: :8443\n"));
        assert_eq!(path, "metric");
        // Field names are case-sensitive, as Kubernetes' strict decoding is.
        let (path, _) = decode_error(&format!("{HEAD}LeaderElection: {{}}\n"));
        assert_eq!(path, "LeaderElection");
        let (path, message) = decode_error(&format!(
            "{HEAD}leaderElection:\n  leaderElect: true\n  leaderElect: false\n"
        ));
        assert_eq!(path, "leaderElection");
        assert!(
            message.contains("duplicate field `leaderElect`"),
            "{message}"
        );
    }

    #[test]
    fn wrong_types_are_errors_with_their_path() {
        // A bare number is not a duration (Go refuses a JSON number; YAML hands us "15").
        let (path, message) =
            decode_error(&format!("{HEAD}leaderElection:\n  leaseDuration: 15\n"));
        assert_eq!(path, "leaderElection.leaseDuration");
        assert!(
            message.contains(r#"missing unit in duration "15""#),
            "{message}"
        );
        let (path, message) =
            decode_error(&format!("{HEAD}leaderElection:\n  leaseDuration: [1]\n"));
        assert_eq!(path, "leaderElection.leaseDuration");
        assert!(message.contains("expected a string"), "{message}");
        let (path, message) = decode_error(&format!("{HEAD}leaderElection:\n  retryPeriod: 2x\n"));
        assert_eq!(path, "leaderElection.retryPeriod");
        assert!(
            message.contains(r#"unknown unit "x" in duration "2x""#),
            "{message}"
        );
        let (path, _) = decode_error(&format!("{HEAD}clientConnection:\n  burst: 1.5\n"));
        assert_eq!(path, "clientConnection.burst");
        let (path, _) = decode_error(&format!(
            "{HEAD}featureGates:\n  WorkloadAwareScheduling: on\n"
        ));
        assert_eq!(path, "featureGates.WorkloadAwareScheduling");
        let (path, _) = decode_error(&format!("{HEAD}webhook:\n  port: [9443]\n"));
        assert_eq!(path, "webhook.port");
    }

    #[test]
    fn the_type_must_be_named_and_known() {
        assert!(matches!(
            parse("kind: Configuration\n"),
            Err(ConfigFileError::MissingApiVersion { .. })
        ));
        assert!(matches!(
            parse("apiVersion: config.lws.x-k8s.io/v1\n"),
            Err(ConfigFileError::MissingKind { .. })
        ));
        let error = parse("apiVersion: config.lws.x-k8s.io/v2\nkind: Configuration\n").unwrap_err();
        assert!(
            error.to_string().contains(
                r#"no kind "Configuration" is registered for version "config.lws.x-k8s.io/v2""#
            ),
            "{error}"
        );
        assert!(matches!(
            parse("apiVersion: config.lws.x-k8s.io/v1\nkind: Config\n"),
            Err(ConfigFileError::UnknownType { .. })
        ));
        let v1 = parse("apiVersion: config.lws.x-k8s.io/v1\nkind: Configuration\n").unwrap();
        assert!(!v1.is_deprecated_version());
        assert!(matches!(
            parse("a: [1\n"),
            Err(ConfigFileError::Decode { .. })
        ));
    }

    #[test]
    fn upstreams_rules() {
        let errors = |body: &str| {
            parse(&format!("{HEAD}{body}"))
                .unwrap()
                .validate(&["volcano"])
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            errors("gangSchedulingManagement: {}\n"),
            ["gangSchedulingManagement.schedulerProvider: Required value: must be set when gang scheduling is enabled"]
        );
        assert_eq!(
            errors("gangSchedulingManagement:\n  schedulerProvider: kueue\n"),
            [
                r#"gangSchedulingManagement.schedulerProvider: Unsupported value: "kueue": supported values: "volcano""#
            ]
        );
        let names = errors(
            "internalCertManagement:\n  webhookServiceName: 1svc\n  webhookSecretName: Sec_ret\n",
        );
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names[0].starts_with(r#"internalCertManagement.webhookServiceName: Invalid value: "1svc": a DNS-1035 label"#), "{names:?}");
        assert!(names[1].starts_with(r#"internalCertManagement.webhookSecretName: Invalid value: "Sec_ret": a lowercase RFC 1123 subdomain"#), "{names:?}");
        // With internal management off the names are not used, and not checked.
        assert!(
            errors("internalCertManagement:\n  enable: false\n  webhookServiceName: 1svc\n")
                .is_empty()
        );
        assert!(
            errors("internalCertManagement:\n  webhookSecretName: lws.webhook-cert\n").is_empty()
        );
        assert_eq!(
            errors("tls:\n  minVersion: VersionTLS11\n"),
            [
                r#"tls.minVersion: Invalid value: "VersionTLS11": invalid minVersion. Please use VersionTLS12 or VersionTLS13"#
            ]
        );
        assert_eq!(
            errors("tls:\n  minVersion: VersionTLS13\n  cipherSuites: [TLS_AES_128_GCM_SHA256]\n")
                .len(),
            1
        );
        assert_eq!(
            errors("tls:\n  cipherSuites: [TLS_AES_128_GCM_SHA256, NOPE]\n"),
            [r#"tls.cipherSuites[1]: Invalid value: "NOPE": unknown cipher suite name"#]
        );
    }

    #[test]
    fn subdomains() {
        for ok in ["a", "lws-webhook-server-cert", "a.b-c.d1", "0abc"] {
            assert!(dns1123_subdomain_errors(ok).is_empty(), "{ok}");
        }
        for bad in ["", "A", "a..b", "-a", "a-", "a_b", ".a"] {
            assert!(!dns1123_subdomain_errors(bad).is_empty(), "{bad}");
        }
        assert_eq!(dns1123_subdomain_errors(&"a".repeat(254)).len(), 1);
    }
}
