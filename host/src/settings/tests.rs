//! Resolution from upstream's own Deployment arguments and configuration files (written here
//! from the facts of upstream-lws.md §6.6–§6.7, §8.1–§8.2 and the v0.9.0 module's manifests),
//! precedence, and the errors.

use super::*;
use std::path::Path;

fn in_cluster() -> Environment {
    Environment {
        in_cluster: true,
        namespace: "lws-system".into(),
        enable_webhooks: None,
    }
}

fn on_a_laptop() -> Environment {
    Environment {
        in_cluster: false,
        ..in_cluster()
    }
}

/// A configuration file with `body` under a fresh name; removed when dropped.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(body: &str) -> Self {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("lws-settings-test-{}-{n}.yaml", std::process::id()));
        std::fs::write(&path, body).unwrap();
        ConfigFile(path)
    }

    fn arg(&self) -> String {
        format!("--config={}", self.0.display())
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn settings(args: &[&str], env: &Environment) -> Result<Settings, SettingsError> {
    let flags = ControllerFlags::parse_args(args.iter().copied()).unwrap();
    load(&flags, env)
}

fn ok(args: &[&str], env: &Environment) -> Settings {
    settings(args, env).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn error(args: &[&str], env: &Environment) -> String {
    match settings(args, env) {
        Ok(s) => panic!("{args:?} resolved: {s:?}"),
        Err(e) => e.to_string(),
    }
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// The shipped configuration (kustomize's `controller_manager_config.yaml`, and Helm's
/// ConfigMap with the default values): leader election and internal certificates on.
const SHIPPED: &str = "apiVersion: config.lws.x-k8s.io/v1alpha1\nkind: Configuration\n\
                       leaderElection:\n  leaderElect: true\ninternalCertManagement:\n  enable: true\n";

/// What upstream's defaults amount to in a cluster, with `log` as given.
fn upstream_defaults(log: LogLevel) -> Settings {
    Settings {
        namespace: "lws-system".into(),
        webhook: Some(WebhookSettings {
            addr: addr("0.0.0.0:9443"),
            certs: CertSettings::Secret {
                name: "lws-webhook-server-cert".into(),
                internal: Some(InternalCerts {
                    service: "lws-webhook-service".into(),
                    extra_hosts: vec![],
                    validity: CERT_VALIDITY,
                    mutating_configuration: "lws-mutating-webhook-configuration".into(),
                    validating_configuration: "lws-validating-webhook-configuration".into(),
                }),
            },
        }),
        health_addr: Some(addr("0.0.0.0:8081")),
        metrics_addr: Some(addr("0.0.0.0:8443")),
        leader_election: Some(LeaderElectionSettings {
            namespace: "lws-system".into(),
            name: "b8b2488c.x-k8s.io".into(),
            identity: None,
            timing: LeaseTiming {
                lease_duration: Duration::from_secs(15),
                renew_deadline: Duration::from_secs(10),
                retry_period: Duration::from_secs(2),
            },
        }),
        client: ClientOptions {
            kubeconfig: None,
            qps: 500.0,
            burst: 500,
        },
        log: LogSettings {
            filter: log.filter(),
            format: LogFormat::Text,
            time: None,
        },
        scheduler_provider: None,
        feature_gates: [("WorkloadAwareScheduling".to_string(), false)].into(),
        pid_file: None,
        notes: vec![],
    }
}

fn deprecation_note() -> Note {
    Note {
        setting: "apiVersion".into(),
        message: "config.lws.x-k8s.io/v1alpha1 is deprecated upstream; v1 has the same fields"
            .into(),
        no_effect: false,
    }
}

#[test]
fn kustomize_base_args() {
    // config/manager/manager.yaml: `--leader-elect` and nothing else.
    assert_eq!(
        ok(&["--leader-elect"], &in_cluster()),
        upstream_defaults(LogLevel::Info)
    );
}

#[test]
fn kustomize_default_and_helm_args() {
    // config/default's patch and the chart's Deployment: the same two arguments.
    let file = ConfigFile::new(SHIPPED);
    let got = ok(&[&file.arg(), "--zap-log-level=2"], &in_cluster());
    let mut want = upstream_defaults(LogLevel::Verbosity(2));
    want.notes.push(deprecation_note());
    assert_eq!(got, want);
    assert_eq!(got.log.filter, "info,lws_host=trace,lws=trace");
}

#[test]
fn helm_with_cert_manager_and_volcano() {
    let file = ConfigFile::new(
        "\napiVersion: config.lws.x-k8s.io/v1alpha1\nkind: Configuration\nleaderElection:\n  \
         leaderElect: true\ninternalCertManagement:\n  enable: false\ngangSchedulingManagement:\n  \
         schedulerProvider: volcano\n",
    );
    let got = ok(&[&file.arg(), "--zap-log-level=2"], &in_cluster());
    assert_eq!(
        got.webhook.unwrap().certs,
        CertSettings::Secret {
            name: "lws-webhook-server-cert".into(),
            internal: None
        }
    );
    assert_eq!(got.scheduler_provider.as_deref(), Some("volcano"));
}

#[test]
fn no_arguments_at_all() {
    assert_eq!(ok(&[], &in_cluster()), upstream_defaults(LogLevel::Info));
    // Outside a cluster: loopback, and reconciling at once.
    let laptop = ok(&[], &on_a_laptop());
    assert_eq!(laptop.health_addr, Some(addr("127.0.0.1:8081")));
    assert_eq!(
        laptop.metrics_addr, None,
        "no metrics server unless asked for"
    );
    assert_eq!(laptop.webhook.unwrap().addr, addr("127.0.0.1:9443"));
    assert_eq!(laptop.leader_election, None);
    // A file that asks for election gets it anywhere.
    let file = ConfigFile::new(SHIPPED);
    assert!(ok(&[&file.arg()], &on_a_laptop()).leader_election.is_some());
}

/// Every field of the file reaches its setting.
#[test]
fn file_fields_map_to_settings() {
    let file = ConfigFile::new(
        "apiVersion: config.lws.x-k8s.io/v1\nkind: Configuration\n\
         webhook:\n  port: 9555\n  host: 127.0.0.2\n\
         health:\n  healthProbeBindAddress: 127.0.0.3:9081\n\
         leaderElection:\n  leaderElect: true\n  resourceName: tenant-a\n  leaseDuration: 1m\n  \
         renewDeadline: 40s\n  retryPeriod: 5s\n  resourceLock: leases\n\
         internalCertManagement:\n  webhookServiceName: lws-tenant-a-webhook-service\n  \
         webhookSecretName: lws-tenant-a-webhook-server-cert\n\
         clientConnection:\n  qps: 50\n  burst: 100\n\
         gangSchedulingManagement:\n  schedulerProvider: volcano\n\
         featureGates:\n  WorkloadAwareScheduling: false\n",
    );
    let got = ok(&[&file.arg()], &on_a_laptop());
    let webhook = got.webhook.unwrap();
    assert_eq!(webhook.addr, addr("127.0.0.2:9555"));
    let CertSettings::Secret { name, internal } = webhook.certs else {
        panic!("certificates from the Secret")
    };
    assert_eq!(name, "lws-tenant-a-webhook-server-cert");
    assert_eq!(internal.unwrap().service, "lws-tenant-a-webhook-service");
    assert_eq!(got.health_addr, Some(addr("127.0.0.3:9081")));
    let election = got.leader_election.unwrap();
    assert_eq!(election.name, "tenant-a");
    assert_eq!(
        election.timing,
        LeaseTiming {
            lease_duration: Duration::from_secs(60),
            renew_deadline: Duration::from_secs(40),
            retry_period: Duration::from_secs(5),
        }
    );
    assert_eq!((got.client.qps, got.client.burst), (50.0, 100));
    assert_eq!(got.scheduler_provider.as_deref(), Some("volcano"));
    assert!(!got.feature_gates["WorkloadAwareScheduling"]);
    assert!(got.notes.is_empty(), "{:?}", got.notes);
}

/// Upstream's precedence cases (cmd/main_test.go's "flags overwrite", "no flag overwrite",
/// "partial flag overwrite"), with values client-go accepts.
#[test]
fn flags_override_the_file_only_when_given() {
    let file = ConfigFile::new(
        "apiVersion: config.lws.x-k8s.io/v1alpha1\nkind: Configuration\n\
         health:\n  healthProbeBindAddress: :8081\n\
         leaderElection:\n  leaderElect: true\n  resourceName: test\n  leaseDuration: 5m\n  \
         renewDeadline: 4m\n  retryPeriod: 1m\n\
         clientConnection:\n  qps: 20\n  burst: 40\n",
    );
    let timing = |l, r, t| LeaseTiming {
        lease_duration: Duration::from_secs(l),
        renew_deadline: Duration::from_secs(r),
        retry_period: Duration::from_secs(t),
    };
    // No flag: the file's values.
    let none = ok(&[&file.arg()], &in_cluster());
    let election = none.leader_election.unwrap();
    assert_eq!(
        (election.name.as_str(), election.timing),
        ("test", timing(300, 240, 60))
    );
    assert_eq!(none.health_addr, Some(addr("0.0.0.0:8081")));
    assert_eq!((none.client.qps, none.client.burst), (20.0, 40));
    // Every flag: the flags' values.
    let all = ok(
        &[
            &file.arg(),
            "--health-probe-bind-address=:9443",
            "--leader-elect=true",
            "--leader-elect-lease-duration=1m",
            "--leader-elect-renew-deadline=30s",
            "--leader-elect-retry-period=10s",
            "--leader-elect-resource-name=changed",
            "--kube-api-qps=7",
            "--kube-api-burst=9",
        ],
        &in_cluster(),
    );
    let election = all.leader_election.unwrap();
    assert_eq!(
        (election.name.as_str(), election.timing),
        ("changed", timing(60, 30, 10))
    );
    assert_eq!(all.health_addr, Some(addr("0.0.0.0:9443")));
    assert_eq!((all.client.qps, all.client.burst), (7.0, 9));
    // Some flags: those win, the file keeps the rest.
    let partial = ok(
        &[
            &file.arg(),
            "--health-probe-bind-address=:9443",
            "--leader-elect=false",
        ],
        &in_cluster(),
    );
    assert_eq!(partial.health_addr, Some(addr("0.0.0.0:9443")));
    assert_eq!(partial.leader_election, None);
    assert_eq!((partial.client.qps, partial.client.burst), (20.0, 40));
}

#[test]
fn our_flags_override_the_file_too() {
    let file = ConfigFile::new(
        "apiVersion: config.lws.x-k8s.io/v1\nkind: Configuration\nwebhook:\n  port: 9555\n\
         internalCertManagement:\n  enable: false\n  webhookSecretName: from-file\n",
    );
    let got = ok(
        &[
            &file.arg(),
            "--webhook-addr=127.0.0.1:19443",
            "--cert-management=internal",
            "--cert-secret-name=from-flag",
            "--cert-host=127.0.0.1",
        ],
        &in_cluster(),
    );
    let webhook = got.webhook.unwrap();
    assert_eq!(webhook.addr, addr("127.0.0.1:19443"));
    let CertSettings::Secret { name, internal } = webhook.certs else {
        panic!("certificates from the Secret")
    };
    assert_eq!(name, "from-flag");
    assert_eq!(internal.unwrap().extra_hosts, ["127.0.0.1"]);
    let files = ok(&["--tls-cert=/c.pem", "--tls-key=/k.pem"], &in_cluster());
    assert_eq!(
        files.webhook.unwrap().certs,
        CertSettings::Files {
            cert: "/c.pem".into(),
            key: "/k.pem".into()
        }
    );
}

#[test]
fn webhooks_off() {
    assert_eq!(ok(&["--no-webhooks"], &in_cluster()).webhook, None);
    let env = Environment {
        enable_webhooks: Some("false".into()),
        ..in_cluster()
    };
    assert_eq!(ok(&[], &env).webhook, None);
    // Upstream compares with "false" exactly.
    let env = Environment {
        enable_webhooks: Some("0".into()),
        ..in_cluster()
    };
    assert!(ok(&[], &env).webhook.is_some());
}

#[test]
fn logging_flags() {
    let log = |args: &[&str]| ok(args, &in_cluster()).log;
    assert_eq!(log(&[]).filter, "info");
    assert_eq!(log(&["--zap-devel"]).filter, LogLevel::Debug.filter());
    assert_eq!(log(&["--zap-devel"]).format, LogFormat::Text);
    assert_eq!(log(&["--zap-devel=false"]).format, LogFormat::Json);
    assert_eq!(
        log(&["--zap-devel", "--zap-log-level=error"]).filter,
        "error"
    );
    assert_eq!(
        log(&["--zap-devel=false", "--zap-encoder=console"]).format,
        LogFormat::Text
    );
    assert_eq!(
        log(&["--zap-time-encoding=rfc3339nano"]).time,
        Some(TimeEncoding::Rfc3339Nano)
    );
    let notes = ok(&["--zap-stacktrace-level=error"], &in_cluster()).notes;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].setting, "--zap-stacktrace-level");
    assert!(notes[0].no_effect);
}

#[test]
fn settings_without_effect_are_noted() {
    let file = ConfigFile::new(
        "apiVersion: config.lws.x-k8s.io/v1\nkind: Configuration\n\
         webhook:\n  certDir: /certs\nmetrics:\n  bindAddress: :8443\n\
         health:\n  readinessEndpointName: /ready\n  livenessEndpointName: /healthz\n\
         leaderElection:\n  resourceNamespace: elsewhere\n\
         tls:\n  minVersion: VersionTLS13\n\
         featureGates:\n  WorkloadAwareScheduling: true\n",
    );
    let got = ok(&[&file.arg()], &in_cluster());
    let noted: Vec<&str> = got.notes.iter().map(|n| n.setting.as_str()).collect();
    assert_eq!(
        noted,
        [
            "health.readinessEndpointName",
            "webhook.certDir",
            "leaderElection.resourceNamespace",
            "featureGates.WorkloadAwareScheduling",
            "tls",
        ]
    );
    assert!(got.notes.iter().all(|n| n.no_effect));
    // The Lease stays in the controller's namespace, as upstream keeps it.
    assert_eq!(got.leader_election.unwrap().namespace, "lws-system");
    assert!(got.feature_gates["WorkloadAwareScheduling"]);
    assert_eq!(got.metrics_addr, Some(addr("0.0.0.0:8443")));
}

#[test]
fn metrics_and_probe_servers() {
    let file = ConfigFile::new(
        "apiVersion: config.lws.x-k8s.io/v1\nkind: Configuration\n\
         metrics:\n  bindAddress: 127.0.0.2:9443\n",
    );
    // The file, then the flag over it; `0` turns either server off.
    assert_eq!(
        ok(&[&file.arg()], &in_cluster()).metrics_addr,
        Some(addr("127.0.0.2:9443"))
    );
    let flag = ok(&[&file.arg(), "--metrics-bind-address=0"], &in_cluster());
    assert_eq!(flag.metrics_addr, None);
    assert!(flag.notes.is_empty(), "{:?}", flag.notes);
    let asked = ok(&["--metrics-bind-address=127.0.0.1:18443"], &on_a_laptop());
    assert_eq!(asked.metrics_addr, Some(addr("127.0.0.1:18443")));
    let health = ok(&["--health-probe-bind-address=0"], &in_cluster());
    assert_eq!(health.health_addr, None);
    assert!(health.notes.is_empty(), "{:?}", health.notes);
}

#[test]
fn file_errors_name_the_field() {
    let cases = [
        (
            "leaderElection:\n  leaseDurationn: 5s\n",
            r#"strict decoding error at "leaderElection.leaseDurationn""#,
        ),
        (
            "leaderElection:\n  leaseDuration: 5\n",
            r#"at "leaderElection.leaseDuration""#,
        ),
        (
            "webhook:\n  port: 70000\n",
            "webhook.port: 70000 is not a TCP port",
        ),
        ("webhook:\n  host: \"a:b:c\"\n", "webhook.host"),
        (
            "health:\n  healthProbeBindAddress: \"8081\"\n",
            "health.healthProbeBindAddress",
        ),
        (
            "metrics:\n  bindAddress: localhost\n",
            "metrics.bindAddress",
        ),
        (
            "gangSchedulingManagement:\n  schedulerProvider: kubernetes\n",
            r#"gangSchedulingManagement.schedulerProvider: Unsupported value: "kubernetes": supported values: "volcano""#,
        ),
        (
            "internalCertManagement:\n  webhookServiceName: Bad\n",
            "internalCertManagement.webhookServiceName: Invalid value",
        ),
        (
            "featureGates:\n  PodGroupPerReplica: true\n",
            r#"unknown LWS feature gate "PodGroupPerReplica""#,
        ),
        (
            "leaderElection:\n  resourceLock: configmaps\n",
            "leaderElection.resourceLock: configmaps lock is removed, migrate to leases",
        ),
        (
            "leaderElection:\n  resourceLock: etcd\n",
            "leaderElection.resourceLock: Invalid lock-type etcd",
        ),
        (
            "clientConnection:\n  burst: -1\n",
            "clientConnection.burst: -1 is negative",
        ),
    ];
    for (body, want) in cases {
        let file = ConfigFile::new(&format!(
            "apiVersion: config.lws.x-k8s.io/v1\nkind: Configuration\n{body}"
        ));
        let message = error(&[&file.arg()], &in_cluster());
        assert!(message.contains(want), "{body}: {message}");
        assert!(
            message.contains(&file.0.display().to_string()) || !want.contains("decoding"),
            "{message}"
        );
    }
    let missing = error(&["--config=/nonexistent/lws.yaml"], &in_cluster());
    assert!(
        missing.contains("reading the configuration file /nonexistent/lws.yaml"),
        "{missing}"
    );
}

#[test]
fn lease_timing_is_checked_as_client_go_checks_it() {
    let cases = [
        (
            ["10s", "10s", "2s"],
            "leaseDuration must be greater than renewDeadline",
        ),
        (
            ["15s", "2400ms", "2s"],
            "renewDeadline must be greater than retryPeriod*JitterFactor",
        ),
        (
            ["15s", "10s", "-1s"],
            "retryPeriod must be greater than zero",
        ),
        (
            ["15s", "-1s", "-2s"],
            "renewDeadline must be greater than zero",
        ),
    ];
    for ([lease, renew, retry], rule) in cases {
        let message = error(
            &[
                &format!("--leader-elect-lease-duration={lease}"),
                &format!("--leader-elect-renew-deadline={renew}"),
                &format!("--leader-elect-retry-period={retry}"),
            ],
            &in_cluster(),
        );
        assert!(message.contains(rule), "{lease} {renew} {retry}: {message}");
        assert!(
            message.contains("from --leader-elect-lease-duration"),
            "{message}"
        );
    }
    // The edge client-go allows: renew just over 1.2 × retry.
    assert!(settings(
        &[
            "--leader-elect-renew-deadline=2401ms",
            "--leader-elect-retry-period=2s"
        ],
        &in_cluster()
    )
    .is_ok());
    // Not checked while election is off, as client-go never sees them then.
    assert!(settings(
        &["--leader-elect=false", "--leader-elect-renew-deadline=1h"],
        &in_cluster()
    )
    .is_ok());
    // A zero in the file is unset (the default), a zero flag is zero.
    let file = ConfigFile::new(
        "apiVersion: config.lws.x-k8s.io/v1\nkind: Configuration\nleaderElection:\n  leaseDuration: 0s\n",
    );
    let timing = ok(&[&file.arg()], &in_cluster())
        .leader_election
        .unwrap()
        .timing;
    assert_eq!(timing, LeaseTiming::default());
    assert!(error(&["--leader-elect-retry-period=0"], &in_cluster())
        .contains("retryPeriod must be greater than zero"));
}

#[test]
fn flag_values_are_checked_too() {
    assert!(error(&["--scheduler-provider=kueue"], &in_cluster())
        .starts_with(r#"--scheduler-provider: Unsupported value: "kueue""#));
    assert!(
        error(&["--leader-elect-resource-lock=endpoints"], &in_cluster())
            .contains("--leader-elect-resource-lock: endpoints lock is removed")
    );
    assert!(error(&["--kube-api-burst=-5"], &in_cluster())
        .starts_with("--kube-api-burst: -5 is negative"));
    // With limiting off a negative burst is harmless.
    assert!(settings(&["--kube-api-qps=-1", "--kube-api-burst=-5"], &in_cluster()).is_ok());
}

#[test]
fn go_duration_values_on_flags() {
    let timing = ok(
        &[
            "--leader-elect-lease-duration=1m30s",
            "--leader-elect-renew-deadline=1m0.5s",
            "--leader-elect-retry-period=500ms",
        ],
        &in_cluster(),
    )
    .leader_election
    .unwrap()
    .timing;
    assert_eq!(timing.lease_duration, Duration::from_secs(90));
    assert_eq!(timing.renew_deadline, Duration::from_millis(60_500));
    assert_eq!(timing.retry_period, Duration::from_millis(500));
}

#[test]
fn fixture_paths_are_reported() {
    // The file name is part of a decoding error, so a user knows which file.
    let file =
        ConfigFile::new("apiVersion: config.lws.x-k8s.io/v1\nkind: Configuration\nbogus: 1\n");
    let message = error(&[&file.arg()], &in_cluster());
    assert!(
        message.starts_with(&format!("{}: strict decoding error", file.0.display())),
        "{message}"
    );
    assert!(Path::new(&file.0).exists());
}
