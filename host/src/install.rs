//! What installing lws puts in a cluster, as plain objects: the CRD, the webhook
//! configurations, the least-privilege RBAC, the in-cluster Deployment and Services, and the
//! development serving certificate for a controller running outside the cluster.
//!
//! The Helm chart `charts/lws` renders the same objects from its templates; with default values
//! `helm template lws charts/lws -n lws-system --include-crds` equals [`in_cluster`] less the
//! Namespace and Helm's own labels (`host/tests/chart.rs` checks it). Change both together.

use crate::webhook::{MUTATE_LWS_PATH, MUTATE_POD_PATH, VALIDATE_LWS_PATH, VALIDATE_POD_PATH};
use base64::Engine as _;
use lws_core::labels::SET_NAME_LABEL_KEY;
use lws_core::reconcile::pod_group::POD_GROUP_API_VERSION;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub const NAMESPACE: &str = "lws-system";
pub const SERVICE_ACCOUNT: &str = "lws-controller-manager";
pub const CLUSTER_ROLE: &str = "lws-manager-role";
pub const LEADER_ELECTION_ROLE: &str = "lws-leader-election-role";
/// The Role on the Secret and the ClusterRole on the webhook configurations (same name).
pub const CERT_ROLE: &str = "lws-webhook-cert-role";
pub const DEPLOYMENT: &str = "lws-controller-manager";
pub const WEBHOOK_SERVICE: &str = "lws-webhook-service";
pub const METRICS_SERVICE: &str = "lws-controller-manager-metrics-service";
/// TokenReviews and SubjectAccessReviews, for the metrics server (upstream's `proxy-role`).
pub const METRICS_AUTH_ROLE: &str = "lws-proxy-role";
/// `get /metrics` (upstream's `metrics-reader`).
pub const METRICS_READER_ROLE: &str = "lws-metrics-reader";
pub const WEBHOOK_SECRET: &str = "lws-webhook-server-cert";
pub const MUTATING_CONFIGURATION: &str = "lws-mutating-webhook-configuration";
pub const VALIDATING_CONFIGURATION: &str = "lws-validating-webhook-configuration";
/// cert-manager mode: the Certificate the webhook configurations' CA is injected from.
pub const SERVING_CERTIFICATE: &str = "lws-serving-cert";
/// cert-manager mode: the self-signed Issuer of [`SERVING_CERTIFICATE`].
pub const ISSUER: &str = "lws-selfsigned-issuer";
/// The image `lws install` and the chart (its appVersion) default to.
pub const DEFAULT_IMAGE: &str = concat!("lws:", env!("CARGO_PKG_VERSION"));
/// The webhook server's port in the pod; the Service's 443 points here.
pub const WEBHOOK_PORT: u16 = 9443;
/// `/healthz` and `/readyz` (HTTP), for the kubelet's probes.
pub const HEALTH_PORT: u16 = 8081;
/// The HTTPS `/metrics` server (upstream's port); the metrics Service's 8443 points here.
pub const METRICS_PORT: u16 = 8443;

/// Who issues the webhooks' serving certificate in the Secret [`WEBHOOK_SECRET`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertManagement {
    /// The controller (`--cert-management=internal`): the installation renders the Secret empty,
    /// the controller fills and rotates it and writes its CA into the webhook configurations.
    Internal,
    /// cert-manager (`--cert-management=external`): a self-signed Issuer and a Certificate write
    /// the Secret, and cert-manager's CA injector writes the caBundle; the controller only reads.
    CertManager,
}

/// What an in-cluster installation varies on.
pub struct InCluster<'a> {
    pub image: &'a str,
    pub namespace: &'a str,
    pub cert_management: CertManagement,
    /// The gang-scheduling provider (`volcano`): the controller's flag and the PodGroups rule.
    pub scheduler_provider: Option<&'a str>,
}

impl Default for InCluster<'_> {
    /// The chart's default values.
    fn default() -> Self {
        InCluster {
            image: DEFAULT_IMAGE,
            namespace: NAMESPACE,
            cert_management: CertManagement::Internal,
            scheduler_provider: None,
        }
    }
}

/// How the API server reaches the webhooks.
pub enum WebhookClient {
    /// `clientConfig.url`: a controller outside the cluster, e.g. `https://127.0.0.1:9443`.
    Url { base: String, ca_bundle: String },
    /// `clientConfig.service`: the in-cluster Service, without a CA bundle (the controller or
    /// cert-manager writes it, and re-applying the installation leaves it alone).
    Service { namespace: String },
}

impl WebhookClient {
    fn client_config(&self, path: &str) -> Value {
        match self {
            WebhookClient::Url { base, ca_bundle } => json!({
                "url": format!("{}{path}", base.trim_end_matches('/')),
                "caBundle": base64::engine::general_purpose::STANDARD.encode(ca_bundle),
            }),
            WebhookClient::Service { namespace } => json!({
                "service": {"name": WEBHOOK_SERVICE, "namespace": namespace, "path": path, "port": 443},
            }),
        }
    }
}

/// The names the API server calls Service `service` in `namespace` by: what the webhooks'
/// serving certificate must name (the controller's own, or cert-manager's Certificate).
pub fn service_host_names(service: &str, namespace: &str) -> [String; 2] {
    [
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// Labels of every object but the CRD (the chart adds Helm's own on top).
fn labels() -> Value {
    json!({"app.kubernetes.io/name": "lws"})
}

/// The controller pods' labels: the Deployment's and both Services' selector.
fn selector_labels() -> Value {
    json!({"app.kubernetes.io/name": "lws", "app.kubernetes.io/component": "controller"})
}

/// Upstream's label of its manager pods (and its metrics Service), which tools and upstream's
/// e2e suite select by (`control-plane=controller-manager`). On the pods, not in the selector:
/// a Deployment's selector cannot change on upgrade.
const CONTROL_PLANE_LABEL: (&str, &str) = ("control-plane", "controller-manager");

/// The controller pods' labels: [`selector_labels`] and [`CONTROL_PLANE_LABEL`].
fn pod_labels() -> Value {
    let mut labels = selector_labels();
    labels[CONTROL_PLANE_LABEL.0] = json!(CONTROL_PLANE_LABEL.1);
    labels
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
/// Reads are list + watch (reflectors), and a get of a LeaderWorkerSet the cache lost (to confirm
/// it is gone, `reconcile_gone`); writes are what the plan executor does: create
/// (ControllerRevisions, Services, worker StatefulSets), server-side apply (the leader
/// StatefulSet: patch, plus create the first time; under `maxGroupRestarts` the restart counts
/// on the LeaderWorkerSet and the finalizer and marks on pods: patch), delete (ControllerRevisions, leader pods,
/// worker pods left behind, and worker StatefulSets under `podTerminationPolicy: Parallel`),
/// the status subresource (merge patch), and events. `*/finalizers update` is what setting
/// `blockOwnerDeletion` on an owner reference needs where the OwnerReferencesPermissionEnforcement
/// admission plugin is on.
///
/// With a gang-scheduling provider (only Volcano exists), also `podgroups` create, list and watch:
/// the controller reflects them and creates one per group Volcano schedules.
pub fn cluster_role(name: &str, scheduler_provider: Option<&str>) -> Value {
    let mut role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels()},
        "rules": [
            {"apiGroups": [lws_core::api::GROUP], "resources": ["leaderworkersets"], "verbs": ["get", "list", "watch", "patch"]},
            {"apiGroups": [lws_core::api::GROUP], "resources": ["leaderworkersets/status"], "verbs": ["patch"]},
            {"apiGroups": [lws_core::api::GROUP], "resources": ["leaderworkersets/finalizers"], "verbs": ["update"]},
            {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["create", "list", "watch", "patch", "delete"]},
            {"apiGroups": ["apps"], "resources": ["controllerrevisions"], "verbs": ["create", "list", "watch", "delete"]},
            {"apiGroups": [""], "resources": ["services"], "verbs": ["create", "list", "watch"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch", "patch", "delete"]},
            {"apiGroups": [""], "resources": ["pods/finalizers"], "verbs": ["update"]},
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        ],
    });
    if scheduler_provider.is_some() {
        let group = POD_GROUP_API_VERSION.split('/').next().unwrap_or_default();
        role["rules"].as_array_mut().expect("rules").push(
            json!({"apiGroups": [group], "resources": ["podgroups"], "verbs": ["create", "list", "watch"]}),
        );
    }
    role
}

/// Binds the ClusterRole `role` to the ServiceAccount `namespace/account`.
pub fn cluster_role_binding(name: &str, role: &str, namespace: &str, account: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": labels()},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    })
}

/// Binds the Role `role` in `namespace` to the controller's ServiceAccount there.
fn role_binding(name: &str, role: &str, namespace: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace, "labels": labels()},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}],
    })
}

/// The leader-election Role in the controller's namespace (upstream's `leader-election-role`,
/// without the configmaps it no longer uses): the Lease it reads, creates and renews. Not by
/// name: `create` cannot be limited to one.
pub fn leader_election_role(namespace: &str) -> [Value; 2] {
    [
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": LEADER_ELECTION_ROLE, "namespace": namespace, "labels": labels()},
            "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                       "verbs": ["get", "create", "update"]}],
        }),
        role_binding(
            "lws-leader-election-rolebinding",
            LEADER_ELECTION_ROLE,
            namespace,
        ),
    ]
}

/// The serving certificate's objects, each only by name: the Secret (read; updated too when the
/// controller issues it, never created: the installation renders it) and, in internal mode, the
/// two webhook configurations whose caBundle the controller writes. Role, RoleBinding, then
/// ClusterRole and ClusterRoleBinding (internal mode only).
pub fn cert_roles(namespace: &str, cert_management: CertManagement) -> Vec<Value> {
    let secret_verbs = match cert_management {
        CertManagement::Internal => json!(["get", "list", "watch", "update"]),
        CertManagement::CertManager => json!(["get", "list", "watch"]),
    };
    let mut objects = vec![
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": CERT_ROLE, "namespace": namespace, "labels": labels()},
            "rules": [{"apiGroups": [""], "resources": ["secrets"],
                       "resourceNames": [WEBHOOK_SECRET], "verbs": secret_verbs}],
        }),
        role_binding("lws-webhook-cert-rolebinding", CERT_ROLE, namespace),
    ];
    if cert_management == CertManagement::Internal {
        let by_name = |resource: &str, name: &str| {
            json!({"apiGroups": ["admissionregistration.k8s.io"], "resources": [resource],
                   "resourceNames": [name], "verbs": ["get", "update", "patch"]})
        };
        objects.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": CERT_ROLE, "labels": labels()},
            "rules": [
                by_name("mutatingwebhookconfigurations", MUTATING_CONFIGURATION),
                by_name("validatingwebhookconfigurations", VALIDATING_CONFIGURATION),
            ],
        }));
        objects.push(cluster_role_binding(
            "lws-webhook-cert-rolebinding",
            CERT_ROLE,
            namespace,
            SERVICE_ACCOUNT,
        ));
    }
    objects
}

/// The controller's namespace (`lws install` only: Helm creates it with `--create-namespace`).
fn namespace_object(namespace: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": namespace, "labels": labels()}})
}

/// The controller's identity: ServiceAccount, ClusterRole and binding, the leader-election Role
/// and binding, [`cert_roles`] and [`metrics_roles`].
fn identity(
    namespace: &str,
    cert_management: CertManagement,
    scheduler_provider: Option<&str>,
) -> Vec<Value> {
    let mut objects = vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace, "labels": labels()}}),
        cluster_role(CLUSTER_ROLE, scheduler_provider),
        cluster_role_binding(
            "lws-manager-rolebinding",
            CLUSTER_ROLE,
            namespace,
            SERVICE_ACCOUNT,
        ),
    ];
    objects.extend(leader_election_role(namespace));
    objects.extend(cert_roles(namespace, cert_management));
    objects.extend(metrics_roles(namespace));
    objects
}

/// The metrics server's RBAC, with upstream's names: the controller may create TokenReviews and
/// SubjectAccessReviews (to check each scraper), and its own ServiceAccount may read `/metrics`
/// (as upstream binds it; its e2e suite scrapes with that account's token).
pub fn metrics_roles(namespace: &str) -> [Value; 4] {
    let role = |name: &str, rules: Value| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": name, "labels": labels()}, "rules": rules})
    };
    [
        role(
            METRICS_AUTH_ROLE,
            json!([
                {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
                {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
            ]),
        ),
        cluster_role_binding(
            "lws-proxy-rolebinding",
            METRICS_AUTH_ROLE,
            namespace,
            SERVICE_ACCOUNT,
        ),
        role(
            METRICS_READER_ROLE,
            json!([{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]),
        ),
        cluster_role_binding(
            "lws-metrics-reader-rolebinding",
            METRICS_READER_ROLE,
            namespace,
            SERVICE_ACCOUNT,
        ),
    ]
}

/// The empty Secret the controller fills with its serving certificate (internal mode). An apply
/// or `helm upgrade` never sets `data`, so neither takes the certificate away.
fn webhook_secret(namespace: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
           "metadata": {"name": WEBHOOK_SECRET, "namespace": namespace, "labels": labels()}})
}

/// `lws install --rbac-only`: what a controller running elsewhere (tests/e2e) needs to act as
/// the in-cluster one: the Namespace, [`identity`], and in internal mode the Secret it may fill
/// but not create.
pub fn rbac(
    namespace: &str,
    cert_management: CertManagement,
    scheduler_provider: Option<&str>,
) -> Vec<Value> {
    let mut objects = vec![namespace_object(namespace)];
    objects.extend(identity(namespace, cert_management, scheduler_provider));
    if cert_management == CertManagement::Internal {
        objects.push(webhook_secret(namespace));
    }
    objects
}

/// cert-manager mode: the self-signed Issuer and the Certificate that writes the Secret.
fn cert_manager_objects(namespace: &str) -> [Value; 2] {
    [
        json!({
            "apiVersion": "cert-manager.io/v1", "kind": "Issuer",
            "metadata": {"name": ISSUER, "namespace": namespace, "labels": labels()},
            "spec": {"selfSigned": {}},
        }),
        json!({
            "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": SERVING_CERTIFICATE, "namespace": namespace, "labels": labels()},
            "spec": {
                "secretName": WEBHOOK_SECRET,
                "dnsNames": service_host_names(WEBHOOK_SERVICE, namespace),
                "issuerRef": {"kind": "Issuer", "name": ISSUER},
            },
        }),
    ]
}

/// The webhook Service (443 to the webhook port) and the metrics Service (upstream's name, port
/// and label: 8443, `https`, to the metrics server).
fn services(namespace: &str) -> [Value; 2] {
    [
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": WEBHOOK_SERVICE, "namespace": namespace, "labels": selector_labels()},
            "spec": {"selector": selector_labels(),
                     "ports": [{"port": 443, "targetPort": WEBHOOK_PORT, "protocol": "TCP"}]},
        }),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": METRICS_SERVICE, "namespace": namespace,
                         "labels": {"app.kubernetes.io/name": "lws", "app.kubernetes.io/component": "metrics",
                                    CONTROL_PLANE_LABEL.0: CONTROL_PLANE_LABEL.1}},
            "spec": {"selector": selector_labels(),
                     "ports": [{"name": "https", "port": METRICS_PORT, "targetPort": METRICS_PORT,
                                "protocol": "TCP"}]},
        }),
    ]
}

/// The controller Deployment with the chart's default values: 2 replicas (one leads, all serve
/// the webhooks) spread over nodes, non-root with a read-only root file system, no certificate
/// volume (the controller reads its Secret through the API).
fn deployment(options: &InCluster) -> Value {
    let cert_flag = match options.cert_management {
        CertManagement::Internal => "--cert-management=internal",
        CertManagement::CertManager => "--cert-management=external",
    };
    let mut args = vec![
        "controller".to_string(),
        format!("--webhook-addr=0.0.0.0:{WEBHOOK_PORT}"),
        format!("--health-addr=0.0.0.0:{HEALTH_PORT}"),
        format!("--metrics-bind-address=0.0.0.0:{METRICS_PORT}"),
        cert_flag.to_string(),
        "--leader-elect=true".to_string(),
        "--log-format=console".to_string(),
        "--log-level=info".to_string(),
    ];
    if let Some(provider) = options.scheduler_provider {
        args.push(format!("--scheduler-provider={provider}"));
    }
    let (image, namespace) = (options.image, options.namespace);
    let field = |path: &str| json!({"fieldRef": {"fieldPath": path}});
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": DEPLOYMENT, "namespace": namespace, "labels": selector_labels()},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": selector_labels()},
            "template": {
                "metadata": {"labels": pod_labels()},
                "spec": {
                    "serviceAccountName": SERVICE_ACCOUNT,
                    "terminationGracePeriodSeconds": 10,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                        "weight": 100,
                        "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                            "labelSelector": {"matchLabels": selector_labels()}},
                    }]}},
                    "containers": [{
                        "name": "manager",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["/lws"],
                        "args": args,
                        "env": [
                            {"name": "POD_NAMESPACE", "valueFrom": field("metadata.namespace")},
                            {"name": "POD_NAME", "valueFrom": field("metadata.name")},
                            {"name": "POD_IP", "valueFrom": field("status.podIP")},
                        ],
                        "ports": [
                            {"containerPort": WEBHOOK_PORT, "name": "webhook-server", "protocol": "TCP"},
                            {"containerPort": HEALTH_PORT, "name": "health", "protocol": "TCP"},
                            {"containerPort": METRICS_PORT, "name": "metrics", "protocol": "TCP"},
                        ],
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": HEALTH_PORT},
                                          "initialDelaySeconds": 15, "periodSeconds": 20},
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": HEALTH_PORT},
                                           "initialDelaySeconds": 5, "periodSeconds": 10},
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                                      "limits": {"memory": "256Mi"}},
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }],
                },
            },
        },
    })
}

/// Everything an in-cluster installation needs, in apply order: the Namespace, the CRD, the
/// identity, the Secret (internal mode) or cert-manager's Issuer and Certificate, the Services,
/// the Deployment, the webhook configurations. What the chart renders with default values (and
/// `certManagement.mode=cert-manager`), plus the Namespace.
pub fn in_cluster(options: &InCluster) -> Vec<Value> {
    let namespace = options.namespace;
    let mut objects = vec![
        namespace_object(namespace),
        lws_core::crd::custom_resource_definition(),
    ];
    objects.extend(identity(
        namespace,
        options.cert_management,
        options.scheduler_provider,
    ));
    match options.cert_management {
        CertManagement::Internal => objects.push(webhook_secret(namespace)),
        CertManagement::CertManager => objects.extend(cert_manager_objects(namespace)),
    }
    objects.extend(services(namespace));
    objects.push(deployment(options));
    let client = WebhookClient::Service {
        namespace: namespace.into(),
    };
    for mut configuration in webhook_configurations(&client) {
        configuration["metadata"]["labels"] = labels();
        if options.cert_management == CertManagement::CertManager {
            configuration["metadata"]["annotations"] = json!({
                "cert-manager.io/inject-ca-from": format!("{namespace}/{SERVING_CERTIFICATE}"),
            });
        }
        objects.push(configuration);
    }
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
    #[error(transparent)]
    Issue(#[from] crate::certs::issue::IssueError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Lifetime of a development serving certificate; `lws install --dev` renews it once a third
/// is left, by the rules the controller rotates its own by.
const DEV_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// Keeps `ca.crt`/`ca.key` and `tls.crt`/`tls.key` (for `ip`) in `dir` valid: what is there and
/// still good stays (so a re-install does not invalidate a running controller's certificate),
/// what is missing, expiring or for another address is issued anew ([`issue::check`]).
pub fn dev_cert(dir: &Path, ip: IpAddr) -> Result<DevCert, CertError> {
    use crate::certs::issue::{self, Pems, Verdict, Want};
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CertError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    // The files are named as the Secret's keys.
    let file = |key: &str| dir.join(key);
    let current = Pems::from_keys(|key| std::fs::read_to_string(file(key)).unwrap_or_default());
    let want = Want {
        hosts: vec![ip.to_string()],
        validity: DEV_CERT_VALIDITY,
        // `lws install --dev` writes the bundle into the webhook configurations right after.
        bundle_trusted: true,
    };
    let pems = match issue::check(&current, &want, SystemTime::now())? {
        Verdict::Keep => current,
        Verdict::Write { pems, .. } => {
            for (key, pem) in pems.by_key() {
                std::fs::write(file(key), pem).map_err(io(&file(key)))?;
            }
            pems
        }
    };
    Ok(DevCert {
        ca_cert: file(issue::CA_CERT_KEY),
        cert: file(issue::TLS_CERT_KEY),
        key: file(issue::TLS_KEY_KEY),
        ca_pem: pems.ca_cert,
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

    fn names(objects: &[Value]) -> Vec<String> {
        objects
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    }

    /// The PodGroups rule and the controller's flag come with a provider, and only then.
    #[test]
    fn a_scheduler_provider_adds_the_pod_groups_rule_and_the_flag() {
        let rules_on_pod_groups = |objects: &[Value]| {
            let role = objects
                .iter()
                .find(|o| o["kind"] == "ClusterRole" && o["metadata"]["name"] == CLUSTER_ROLE)
                .unwrap();
            role["rules"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["resources"] == json!(["podgroups"]))
                .cloned()
                .collect::<Vec<_>>()
        };
        let args = |objects: &[Value]| {
            objects.iter().find(|o| o["kind"] == "Deployment").unwrap()["spec"]["template"]["spec"]
                ["containers"][0]["args"]
                .clone()
        };
        let plain = in_cluster(&InCluster::default());
        assert!(rules_on_pod_groups(&plain).is_empty());
        assert!(!args(&plain).to_string().contains("scheduler-provider"));
        let gang = in_cluster(&InCluster {
            scheduler_provider: Some("volcano"),
            ..Default::default()
        });
        assert_eq!(
            rules_on_pod_groups(&gang),
            [
                json!({"apiGroups": ["scheduling.volcano.sh"], "resources": ["podgroups"],
                    "verbs": ["create", "list", "watch"]})
            ]
        );
        assert_eq!(
            args(&gang).as_array().unwrap().last().unwrap(),
            "--scheduler-provider=volcano"
        );
        let identity = rbac(NAMESPACE, CertManagement::Internal, Some("volcano"));
        assert_eq!(rules_on_pod_groups(&identity).len(), 1);
    }

    #[test]
    fn internal_mode_renders_the_empty_secret_and_may_update_only_it_and_the_webhooks() {
        let objects = in_cluster(&InCluster::default());
        let names = names(&objects);
        assert_eq!(names[0], "Namespace/lws-system");
        assert!(names.contains(&format!("Secret/{WEBHOOK_SECRET}")));
        assert!(!names
            .iter()
            .any(|n| n.starts_with("Certificate/") || n.starts_with("Issuer/")));
        let secret = objects.iter().find(|o| o["kind"] == "Secret").unwrap();
        assert_eq!(secret["type"], "Opaque");
        assert!(secret.get("data").is_none());
        let role = objects
            .iter()
            .find(|o| o["kind"] == "Role" && o["metadata"]["name"] == CERT_ROLE)
            .unwrap();
        assert_eq!(role["rules"][0]["resourceNames"], json!([WEBHOOK_SECRET]));
        assert_eq!(
            role["rules"][0]["verbs"],
            json!(["get", "list", "watch", "update"])
        );
        let cluster_role = objects
            .iter()
            .find(|o| o["kind"] == "ClusterRole" && o["metadata"]["name"] == CERT_ROLE)
            .unwrap();
        let named: Vec<&Value> = cluster_role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["resourceNames"][0])
            .collect();
        assert_eq!(named, [MUTATING_CONFIGURATION, VALIDATING_CONFIGURATION]);
        let args = &objects.iter().find(|o| o["kind"] == "Deployment").unwrap()["spec"]["template"]
            ["spec"]["containers"][0]["args"];
        assert!(args
            .as_array()
            .unwrap()
            .contains(&json!("--cert-management=internal")));
    }

    #[test]
    fn cert_manager_mode_reads_the_secret_and_lets_cert_manager_inject_the_ca() {
        let objects = in_cluster(&InCluster {
            cert_management: CertManagement::CertManager,
            ..InCluster::default()
        });
        let names = names(&objects);
        assert!(!names.contains(&format!("Secret/{WEBHOOK_SECRET}")));
        assert!(!names.contains(&format!("ClusterRole/{CERT_ROLE}")));
        assert!(names.contains(&format!("Certificate/{SERVING_CERTIFICATE}")));
        let role = objects
            .iter()
            .find(|o| o["kind"] == "Role" && o["metadata"]["name"] == CERT_ROLE)
            .unwrap();
        assert_eq!(role["rules"][0]["verbs"], json!(["get", "list", "watch"]));
        for config in objects.iter().filter(|o| {
            o["kind"]
                .as_str()
                .unwrap()
                .ends_with("WebhookConfiguration")
        }) {
            assert_eq!(
                config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
                "lws-system/lws-serving-cert"
            );
            for hook in config["webhooks"].as_array().unwrap() {
                assert!(hook["clientConfig"].get("caBundle").is_none());
                assert_eq!(hook["clientConfig"]["service"]["name"], WEBHOOK_SERVICE);
            }
        }
    }

    #[test]
    fn rbac_only_carries_the_cert_roles_and_no_workload() {
        let names = names(&rbac(NAMESPACE, CertManagement::Internal, None));
        for expected in [
            "Namespace/lws-system",
            "ServiceAccount/lws-controller-manager",
            "ClusterRole/lws-manager-role",
            "Role/lws-webhook-cert-role",
            "ClusterRole/lws-webhook-cert-role",
            "ClusterRoleBinding/lws-webhook-cert-rolebinding",
            "Secret/lws-webhook-server-cert",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
        assert!(!names
            .iter()
            .any(|n| n.starts_with("Deployment/") || n.contains("WebhookConfiguration")));
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
