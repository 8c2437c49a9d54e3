//! What installing lws puts in a cluster, as plain objects: the CRD, the webhook
//! configurations, the least-privilege RBAC, the in-cluster Deployment and Service, and the
//! development serving certificate for a controller running outside the cluster.

use crate::webhook::{MUTATE_LWS_PATH, MUTATE_POD_PATH, VALIDATE_LWS_PATH, VALIDATE_POD_PATH};
use base64::Engine as _;
use lws_core::labels::SET_NAME_LABEL_KEY;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub const NAMESPACE: &str = "lws-system";
pub const SERVICE_ACCOUNT: &str = "lws-controller-manager";
pub const CLUSTER_ROLE: &str = "lws-manager-role";
pub const DEPLOYMENT: &str = "lws-controller-manager";
pub const WEBHOOK_SERVICE: &str = "lws-webhook-service";
pub const WEBHOOK_SECRET: &str = "lws-webhook-server-cert";
pub const MUTATING_CONFIGURATION: &str = "lws-mutating-webhook-configuration";
pub const VALIDATING_CONFIGURATION: &str = "lws-validating-webhook-configuration";
/// Where the in-cluster Deployment mounts the serving certificate (upstream's path).
pub const CERT_MOUNT: &str = "/tmp/k8s-webhook-server/serving-certs";

/// How the API server reaches the webhooks.
pub enum WebhookClient {
    /// `clientConfig.url`: a controller outside the cluster, e.g. `https://127.0.0.1:9443`.
    Url { base: String, ca_bundle: String },
    /// `clientConfig.service`: the in-cluster Service; the CA bundle when known.
    Service {
        namespace: String,
        ca_bundle: Option<String>,
    },
}

impl WebhookClient {
    fn client_config(&self, path: &str) -> Value {
        match self {
            WebhookClient::Url { base, ca_bundle } => json!({
                "url": format!("{}{path}", base.trim_end_matches('/')),
                "caBundle": base64::engine::general_purpose::STANDARD.encode(ca_bundle),
            }),
            WebhookClient::Service {
                namespace,
                ca_bundle,
            } => {
                let mut config = json!({
                    "service": {"name": WEBHOOK_SERVICE, "namespace": namespace, "path": path, "port": 443},
                });
                if let Some(ca) = ca_bundle {
                    config["caBundle"] =
                        base64::engine::general_purpose::STANDARD.encode(ca).into();
                }
                config
            }
        }
    }
}

/// One webhook entry: upstream's name, path, rules, failurePolicy Fail, sideEffects None.
fn webhook(
    client: &WebhookClient,
    name: &str,
    path: &str,
    group: &str,
    resource: &str,
    operations: &[&str],
) -> Value {
    let mut hook = json!({
        "name": name,
        "admissionReviewVersions": ["v1"],
        "clientConfig": client.client_config(path),
        "failurePolicy": "Fail",
        "sideEffects": "None",
        "rules": [{
            "apiGroups": [group],
            "apiVersions": ["v1"],
            "operations": operations,
            "resources": [resource],
        }],
    });
    if resource == "pods" {
        // Only LWS pods go to the webhook, so the pod webhook failing closed cannot block others.
        hook["objectSelector"] = json!({
            "matchExpressions": [{"key": SET_NAME_LABEL_KEY, "operator": "Exists"}],
        });
    }
    hook
}

/// `lws-mutating-webhook-configuration` and `lws-validating-webhook-configuration`.
pub fn webhook_configurations(client: &WebhookClient) -> [Value; 2] {
    let group = lws_core::api::GROUP;
    let plural = lws_core::api::PLURAL;
    [
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": MUTATING_CONFIGURATION},
            "webhooks": [
                webhook(client, "mleaderworkerset.kb.io", MUTATE_LWS_PATH, group, plural, &["CREATE", "UPDATE"]),
                webhook(client, "mpod.kb.io", MUTATE_POD_PATH, "", "pods", &["CREATE"]),
            ],
        }),
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": VALIDATING_CONFIGURATION},
            "webhooks": [
                webhook(client, "vleaderworkerset.kb.io", VALIDATE_LWS_PATH, group, plural, &["CREATE", "UPDATE"]),
                webhook(client, "vpod.kb.io", VALIDATE_POD_PATH, "", "pods", &["CREATE", "UPDATE"]),
            ],
        }),
    ]
}

/// The ClusterRole: exactly the verbs `lws controller` uses.
///
/// Reads are list + watch (reflectors); writes are what the plan executor does: create
/// (ControllerRevisions, Services, worker StatefulSets), server-side apply (the leader
/// StatefulSet: patch, plus create the first time), delete (ControllerRevisions, leader pods),
/// the status subresource (merge patch), and events. `*/finalizers update` is what setting
/// `blockOwnerDeletion` on an owner reference needs where the OwnerReferencesPermissionEnforcement
/// admission plugin is on.
pub fn cluster_role(name: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": [
            {"apiGroups": [lws_core::api::GROUP], "resources": ["leaderworkersets"], "verbs": ["list", "watch"]},
            {"apiGroups": [lws_core::api::GROUP], "resources": ["leaderworkersets/status"], "verbs": ["patch"]},
            {"apiGroups": [lws_core::api::GROUP], "resources": ["leaderworkersets/finalizers"], "verbs": ["update"]},
            {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["create", "list", "watch", "patch"]},
            {"apiGroups": ["apps"], "resources": ["controllerrevisions"], "verbs": ["create", "list", "watch", "delete"]},
            {"apiGroups": [""], "resources": ["services"], "verbs": ["create", "list", "watch"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch", "delete"]},
            {"apiGroups": [""], "resources": ["pods/finalizers"], "verbs": ["update"]},
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        ],
    })
}

/// Binds `role` to the ServiceAccount `namespace/account`.
pub fn cluster_role_binding(name: &str, role: &str, namespace: &str, account: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    })
}

/// The leader-election Role in the controller's namespace (upstream's `leader-election-role`,
/// without the configmaps it no longer uses): the Lease it reads, creates and renews.
pub fn leader_election_role() -> [Value; 2] {
    [
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "lws-leader-election-role", "namespace": NAMESPACE},
            "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                       "verbs": ["get", "create", "update"]}],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "lws-leader-election-rolebinding", "namespace": NAMESPACE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": "lws-leader-election-role"},
            "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}],
        }),
    ]
}

/// The controller's identity: Namespace, ServiceAccount, ClusterRole, ClusterRoleBinding, and
/// the leader-election Role and RoleBinding.
pub fn rbac() -> Vec<Value> {
    let [role, binding] = leader_election_role();
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE}}),
        cluster_role(CLUSTER_ROLE),
        cluster_role_binding(
            "lws-manager-rolebinding",
            CLUSTER_ROLE,
            NAMESPACE,
            SERVICE_ACCOUNT,
        ),
        role,
        binding,
    ]
}

/// Everything an in-cluster installation needs, in apply order. The serving certificate is the
/// Secret `lws-webhook-server-cert` (keys `tls.crt`, `tls.key`), made by cert-manager or by hand;
/// its CA goes in `ca_bundle`.
pub fn in_cluster(image: &str, ca_bundle: Option<String>) -> Vec<Value> {
    let labels =
        json!({"app.kubernetes.io/name": "lws", "app.kubernetes.io/component": "controller"});
    let client = WebhookClient::Service {
        namespace: NAMESPACE.into(),
        ca_bundle,
    };
    let [mutating, validating] = webhook_configurations(&client);
    let mut objects = rbac();
    objects.insert(1, lws_core::crd::custom_resource_definition());
    objects.extend([
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": WEBHOOK_SERVICE, "namespace": NAMESPACE},
            "spec": {"selector": labels, "ports": [{"port": 443, "targetPort": 9443, "protocol": "TCP"}]},
        }),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": DEPLOYMENT, "namespace": NAMESPACE, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": SERVICE_ACCOUNT,
                        "terminationGracePeriodSeconds": 10,
                        "securityContext": {"runAsNonRoot": true},
                        "containers": [{
                            "name": "manager",
                            "image": image,
                            "command": ["/lws"],
                            "args": [
                                "controller",
                                "--webhook-addr=0.0.0.0:9443",
                                "--health-addr=0.0.0.0:8081",
                                format!("--tls-cert={CERT_MOUNT}/tls.crt"),
                                format!("--tls-key={CERT_MOUNT}/tls.key"),
                                "--log-format=json",
                            ],
                            "ports": [
                                {"containerPort": 9443, "name": "webhook-server", "protocol": "TCP"},
                                {"containerPort": 8081, "name": "health", "protocol": "TCP"},
                            ],
                            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8081},
                                              "initialDelaySeconds": 15, "periodSeconds": 20},
                            "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8081},
                                               "initialDelaySeconds": 5, "periodSeconds": 10},
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                            "securityContext": {
                                "allowPrivilegeEscalation": false,
                                "readOnlyRootFilesystem": true,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "cert", "mountPath": CERT_MOUNT, "readOnly": true}],
                        }],
                        "volumes": [{"name": "cert", "secret": {"secretName": WEBHOOK_SECRET, "defaultMode": 420}}],
                    },
                },
            },
        }),
        mutating,
        validating,
    ]);
    objects
}

/// The development installation: the CRD and the webhook configurations by URL.
pub fn dev(base_url: &str, ca_pem: &str) -> Vec<Value> {
    let client = WebhookClient::Url {
        base: base_url.to_string(),
        ca_bundle: ca_pem.to_string(),
    };
    let [mutating, validating] = webhook_configurations(&client);
    vec![
        lws_core::crd::custom_resource_definition(),
        mutating,
        validating,
    ]
}

/// Files of a development serving certificate.
pub struct DevCert {
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA in PEM, for the webhook configurations' caBundle.
    pub ca_pem: String,
}

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("generating the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes `ca.crt`/`ca.key` (kept if present, so a re-install does not invalidate a running
/// controller's certificate) and a fresh `tls.crt`/`tls.key` for `ip`, signed by that CA.
pub fn dev_cert(dir: &Path, ip: IpAddr) -> Result<DevCert, CertError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CertError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let (ca_cert, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    let (ca_pem, issuer) = match (
        std::fs::read_to_string(&ca_cert),
        std::fs::read_to_string(&ca_key),
    ) {
        (Ok(cert_pem), Ok(key_pem)) => {
            let key = KeyPair::from_pem(&key_pem)?;
            (cert_pem.clone(), Issuer::from_ca_cert_pem(&cert_pem, key)?)
        }
        _ => {
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(DnType::CommonName, "lws-dev-ca");
            params
                .distinguished_name
                .push(DnType::OrganizationName, "lws");
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            let key = KeyPair::generate()?;
            let cert = params.self_signed(&key)?;
            std::fs::write(&ca_key, key.serialize_pem()).map_err(io(&ca_key))?;
            std::fs::write(&ca_cert, cert.pem()).map_err(io(&ca_cert))?;
            (cert.pem(), Issuer::new(params, key))
        }
    };
    let mut params = CertificateParams::new(vec![ip.to_string()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "lws-webhook");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    let (cert_path, key_path) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert_path, cert.pem()).map_err(io(&cert_path))?;
    std::fs::write(&key_path, key.serialize_pem()).map_err(io(&key_path))?;
    Ok(DevCert {
        ca_cert,
        cert: cert_path,
        key: key_path,
        ca_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_fail_closed_and_pods_are_selected_by_name_label() {
        let client = WebhookClient::Url {
            base: "https://127.0.0.1:9443".into(),
            ca_bundle: "x".into(),
        };
        let [mutating, validating] = webhook_configurations(&client);
        for config in [&mutating, &validating] {
            for hook in config["webhooks"].as_array().unwrap() {
                assert_eq!(hook["failurePolicy"], "Fail");
                assert_eq!(hook["sideEffects"], "None");
                let url = hook["clientConfig"]["url"].as_str().unwrap();
                assert!(url.starts_with("https://127.0.0.1:9443/"));
                if hook["rules"][0]["resources"][0] == "pods" {
                    assert_eq!(
                        hook["objectSelector"]["matchExpressions"][0]["key"],
                        SET_NAME_LABEL_KEY
                    );
                }
            }
        }
        assert_eq!(
            mutating["webhooks"][1]["clientConfig"]["url"],
            "https://127.0.0.1:9443/mutate--v1-pod"
        );
    }

    #[test]
    fn dev_cert_reuses_its_ca() {
        let dir = std::env::temp_dir().join(format!("lws-cert-test-{}", std::process::id()));
        let first = dev_cert(&dir, "127.0.0.1".parse().unwrap()).unwrap();
        let second = dev_cert(&dir, "127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(first.ca_pem, second.ca_pem);
        assert!(std::fs::read_to_string(&second.cert)
            .unwrap()
            .contains("BEGIN CERTIFICATE"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
