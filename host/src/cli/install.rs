//! `lws install`: in-cluster manifests (printed; the same objects as `helm template` of
//! `charts/lws` with default values, plus the Namespace), or `--dev`: a serving certificate for
//! a controller on this machine plus the CRD and webhook configurations by URL (applied).

use super::Format;
use anyhow::Context as _;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::Client;
use lws_core::reconcile::pod_group::SCHEDULER_PROVIDERS;
use lws_host::install::{self, CertManagement, InCluster};
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `lws install` flags.
#[derive(clap::Args)]
pub struct Args {
    /// Install for a controller running outside the cluster on `--host`:`--port`.
    #[arg(long)]
    pub dev: bool,
    /// The webhook port of the local controller (`--dev`).
    #[arg(long, default_value_t = 9443)]
    pub port: u16,
    /// The address the API server reaches the local controller at (`--dev`; loopback).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Where `--dev` writes ca.crt, ca.key, tls.crt, tls.key (the CA is kept if present).
    #[arg(long, default_value = ".cluster/certs")]
    pub cert_dir: PathBuf,
    /// Print the objects instead of applying them (`--dev`).
    #[arg(long)]
    pub dry_run: bool,
    /// Output format when printing; given with `--dev`, prints instead of applying.
    #[arg(short = 'o', long = "output", value_enum)]
    pub output: Option<Format>,
    /// The controller image of the in-cluster Deployment (`make image` builds it; no registry
    /// publishes it).
    #[arg(long, default_value = install::DEFAULT_IMAGE)]
    pub image: String,
    /// The controller's namespace (printed as a Namespace object first).
    #[arg(short = 'n', long, default_value = install::NAMESPACE)]
    pub namespace: String,
    /// cert-manager issues the serving certificate (a self-signed Issuer and a Certificate) and
    /// injects its CA; without it the controller makes and rotates its own. The chart's
    /// `certManagement.mode=cert-manager`.
    #[arg(long, conflicts_with = "dev")]
    pub cert_manager: bool,
    /// Print only the controller's identity: Namespace, ServiceAccount, its ClusterRoles, Roles
    /// and bindings, and the Secret it may fill (for a controller run outside the cluster).
    #[arg(long, conflicts_with = "dev")]
    pub rbac_only: bool,
    /// The gang-scheduling provider: the controller's `--scheduler-provider` and the RBAC rule on
    /// its PodGroups. The chart's `gangSchedulingManagement.schedulerProvider`.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(SCHEDULER_PROVIDERS))]
    pub scheduler_provider: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cert_management = if args.cert_manager {
        CertManagement::CertManager
    } else {
        CertManagement::Internal
    };
    if args.rbac_only {
        let objects = install::rbac(
            &args.namespace,
            cert_management,
            args.scheduler_provider.as_deref(),
        );
        print(&objects, args.output.unwrap_or(Format::Yaml))?;
        return Ok(ExitCode::SUCCESS);
    }
    if !args.dev {
        let objects = install::in_cluster(&InCluster {
            image: &args.image,
            namespace: &args.namespace,
            cert_management,
            scheduler_provider: args.scheduler_provider.as_deref(),
        });
        print(&objects, args.output.unwrap_or(Format::Yaml))?;
        return Ok(ExitCode::SUCCESS);
    }
    let cert = install::dev_cert(&args.cert_dir, args.host)?;
    let base = match args.host {
        IpAddr::V6(ip) => format!("https://[{ip}]:{}", args.port),
        IpAddr::V4(ip) => format!("https://{ip}:{}", args.port),
    };
    let objects = install::dev(&base, &cert.ca_pem);
    eprintln!(
        "serving certificate {} (key {}), CA {}",
        cert.cert.display(),
        cert.key.display(),
        cert.ca_cert.display()
    );
    if args.dry_run || args.output.is_some() {
        print(&objects, args.output.unwrap_or(Format::Yaml))?;
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(apply_all(&objects))?;
    Ok(ExitCode::SUCCESS)
}

/// Server-side applies each (cluster-scoped) object, then waits for the CRD to be Established.
async fn apply_all(objects: &[serde_json::Value]) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_default()
        .await
        .context("connecting to the cluster")?;
    for object in objects {
        let dynamic: DynamicObject = serde_json::from_value(object.clone())?;
        let types = dynamic
            .types
            .clone()
            .context("object without apiVersion/kind")?;
        let gvk = GroupVersionKind::try_from(&types)?;
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ApiResource::from_gvk(&gvk));
        let name = dynamic.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply("lws-install").force(),
            &Patch::Apply(&dynamic),
        )
        .await
        .with_context(|| format!("applying {} {name}", types.kind))?;
        eprintln!("applied {} {name}", types.kind);
    }
    let crds: Api<DynamicObject> = Api::all_with(
        client,
        &ApiResource::from_gvk(&GroupVersionKind::gvk(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
        )),
    );
    for _ in 0..60 {
        let crd = crds.get(lws_core::crd::CRD_NAME).await?;
        let established = crd
            .data
            .pointer("/status/conditions")
            .and_then(|c| c.as_array())
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            });
        if established {
            eprintln!("CRD {} established", lws_core::crd::CRD_NAME);
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("CRD {} not established after 30s", lws_core::crd::CRD_NAME)
}

/// Prints objects as a YAML stream or one JSON `v1` List.
pub fn print(objects: &[serde_json::Value], format: Format) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Yaml => {
            for object in objects {
                out.write_all(b"---\n")?;
                out.write_all(serde_norway::to_string(object)?.as_bytes())?;
            }
        }
        Format::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
            serde_json::to_writer_pretty(&mut out, &list)?;
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}
