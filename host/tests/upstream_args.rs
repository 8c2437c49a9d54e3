//! Upstream's Deployment arguments and configuration files, read from upstream's own v0.9.0
//! Go module (kustomize `config/manager`, `config/default`, the Helm chart's manager
//! templates), run through `lws controller`'s flag parser and settings; and our own
//! installers' arguments, which must keep working beside them.
//!
//! The module is found in `$GOMODCACHE`, else `$LWS_CACHE/go/mod`, else `~/.cache/lws/go/mod`
//! (where the cluster build downloads it). Without it the upstream tests say SKIPPED on stderr
//! and pass, unless `LWS_UPSTREAM_REQUIRED=1`, where they fail.

use lws_host::controller::leader::LeaseTiming;
use lws_host::install;
use lws_host::settings::flags::ControllerFlags;
use lws_host::settings::logging::{LogFormat, LogLevel};
use lws_host::settings::{self, CertSettings, Environment, Settings};
use serde::Deserialize as _;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const MODULE: &str = "sigs.k8s.io/lws@v0.9.0";

fn module() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("GOMODCACHE").map(PathBuf::from),
        std::env::var_os("LWS_CACHE").map(|c| Path::new(&c).join("go/mod")),
        std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/lws/go/mod")),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .map(|cache| cache.join(MODULE))
        .find(|dir| dir.join("go.mod").is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("LWS_UPSTREAM_REQUIRED").is_none(),
            "{MODULE} is not in the module cache and LWS_UPSTREAM_REQUIRED is set"
        );
        eprintln!("SKIPPED: {MODULE} is not in the module cache");
    }
    found
}

fn in_cluster() -> Environment {
    Environment {
        in_cluster: true,
        namespace: "lws-system".into(),
        enable_webhooks: None,
    }
}

/// Every YAML document of `path`.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

/// The manager container's `args` of the Deployment (or patch) in `path`.
fn manager_args(path: &Path) -> Vec<String> {
    let deployment = documents(path)
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .unwrap_or_else(|| panic!("{}: no Deployment", path.display()));
    let containers = deployment
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .expect("containers");
    let manager = containers
        .iter()
        .find(|c| c["name"] == "manager")
        .expect("the manager container");
    manager["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("a string argument").to_string())
        .collect()
}

/// The chart's Deployment is a Go template: its `args:` lines are literal, read them as lines.
fn chart_args(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines().skip_while(|l| l.trim() != "- args:");
    lines.next().expect("an args list");
    lines
        .map(str::trim)
        .take_while(|l| l.starts_with("- --"))
        .map(|l| l.trim_start_matches("- ").to_string())
        .collect()
}

/// `args` with `--config=<in-pod path>` pointed at `config` (the file the Pod mounts there).
fn with_config(args: &[String], config: &Path) -> Vec<String> {
    args.iter()
        .map(|a| match a.strip_prefix("--config=") {
            Some(_) => format!("--config={}", config.display()),
            None => a.clone(),
        })
        .collect()
}

fn resolve(args: &[String]) -> Settings {
    let flags = ControllerFlags::parse_args(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    settings::load(&flags, &in_cluster()).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// What upstream's manager runs with by default, seen in our settings.
fn assert_upstream_defaults(s: &Settings, internal_certs: bool) {
    assert_eq!(s.health_addr, Some("0.0.0.0:8081".parse().unwrap()));
    assert_eq!(s.metrics_addr, Some("0.0.0.0:8443".parse().unwrap()));
    let webhook = s.webhook.as_ref().expect("webhooks on");
    assert_eq!(webhook.addr, "0.0.0.0:9443".parse().unwrap());
    match &webhook.certs {
        CertSettings::Secret { name, internal } => {
            assert_eq!(name, "lws-webhook-server-cert");
            assert_eq!(internal.is_some(), internal_certs);
            if let Some(internal) = internal {
                assert_eq!(internal.service, "lws-webhook-service");
            }
        }
        other => panic!("certificates from {other:?}"),
    }
    let election = s.leader_election.as_ref().expect("leader election on");
    assert_eq!(election.name, "b8b2488c.x-k8s.io");
    assert_eq!(election.namespace, "lws-system");
    assert_eq!(
        election.timing,
        LeaseTiming {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    );
    assert_eq!((s.client.qps, s.client.burst), (500.0, 500));
    assert_eq!(s.scheduler_provider, None);
}

#[test]
fn kustomize_base_deployment() {
    let Some(module) = module() else { return };
    let args = manager_args(&module.join("config/manager/manager.yaml"));
    assert_eq!(args, ["--leader-elect"]);
    let s = resolve(&args);
    assert_upstream_defaults(&s, true);
    assert_eq!(s.log.filter, LogLevel::Info.filter());
}

#[test]
fn kustomize_default_deployment_with_its_config() {
    let Some(module) = module() else { return };
    let args = manager_args(&module.join("config/default/manager_config_patch.yaml"));
    assert_eq!(args.len(), 2, "{args:?}");
    let config = module.join("config/manager/controller_manager_config.yaml");
    let s = resolve(&with_config(&args, &config));
    assert_upstream_defaults(&s, true);
    assert_eq!(s.log.filter, LogLevel::Verbosity(2).filter());
    assert_eq!(s.log.format, LogFormat::Text);
}

/// The chart's ConfigMap, rendered as Helm would for `enableCertManager` and
/// `gangSchedulingManagement`, into a file.
fn chart_config(module: &Path, cert_manager: bool, volcano: bool) -> PathBuf {
    let template =
        std::fs::read_to_string(module.join("charts/lws/templates/manager/configmap.yaml"))
            .unwrap();
    let body = template
        .split_once("controller_manager_config.yaml: |2")
        .expect("the config key")
        .1;
    let mut out = String::new();
    let mut skipping = false;
    for line in body.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("{{- if .Values.gangSchedulingManagement") {
            skipping = !volcano;
            continue;
        }
        if trimmed.starts_with("{{- end") {
            skipping = false;
            continue;
        }
        if skipping {
            continue;
        }
        let line = line
            .replace(
                "{{ not .Values.enableCertManager }}",
                &(!cert_manager).to_string(),
            )
            .replace(
                "{{ toYaml .Values.gangSchedulingManagement | indent 6 }}",
                "      schedulerProvider: volcano",
            );
        assert!(!line.contains("{{"), "a template expression left: {line}");
        out.push_str(line.strip_prefix("    ").unwrap_or(&line));
        out.push('\n');
    }
    let path = std::env::temp_dir().join(format!(
        "lws-upstream-chart-{}-{cert_manager}-{volcano}.yaml",
        std::process::id()
    ));
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn helm_chart_deployment_with_its_config() {
    let Some(module) = module() else { return };
    let args = chart_args(&module.join("charts/lws/templates/manager/deployment.yaml"));
    assert_eq!(args.len(), 2, "{args:?}");
    for (cert_manager, volcano) in [(false, false), (true, false), (false, true)] {
        let config = chart_config(&module, cert_manager, volcano);
        let s = resolve(&with_config(&args, &config));
        let _ = std::fs::remove_file(&config);
        assert_upstream_defaults(
            &Settings {
                scheduler_provider: None,
                ..s.clone()
            },
            !cert_manager,
        );
        assert_eq!(s.scheduler_provider.is_some(), volcano);
        assert_eq!(s.log.filter, LogLevel::Verbosity(2).filter());
    }
}

/// `lws install` (and so the chart, which renders the same Deployment) keeps our own flag names.
#[test]
fn our_installation_arguments() {
    for cert_management in [
        install::CertManagement::Internal,
        install::CertManagement::CertManager,
    ] {
        let objects = install::in_cluster(&install::InCluster {
            cert_management,
            ..Default::default()
        });
        let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
        let args: Vec<String> = deployment
            .pointer("/spec/template/spec/containers/0/args")
            .and_then(Value::as_array)
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        assert_eq!(args[0], "controller");
        let s = resolve(&args[1..]);
        assert_upstream_defaults(&s, cert_management == install::CertManagement::Internal);
        assert_eq!(s.log.format, LogFormat::Text); // zap console, as upstream's chart
        assert_eq!(s.log.filter, "info");
    }
}
