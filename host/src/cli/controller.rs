//! `lws controller`: flags in, [`lws_host::controller::run`] out.

use lws_host::certs::{CertSource, Managed};
use lws_host::controller::leader::{self, LeaseTiming};
use lws_host::controller::{self, ControllerConfig, LeaderElection};
use lws_host::engine::Engine;
use lws_host::install;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// `lws controller` flags.
#[derive(clap::Args)]
pub struct Args {
    /// Where the admission webhooks listen (HTTPS).
    #[arg(long, default_value = "127.0.0.1:9443")]
    pub webhook_addr: SocketAddr,
    /// The webhooks' serving certificate from a PEM file, re-read when it changes (`lws install
    /// --dev` writes one); without it the certificate comes from the Secret `--cert-secret-name`.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The key of `--tls-cert` (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Who writes the Secret: `internal` (this controller makes a CA and a serving
    /// certificate, rotates them and injects the CA into the webhook configurations) or
    /// `external` (cert-manager or another party; the controller only reads it).
    #[arg(long, value_enum, default_value_t = CertManagement::Internal)]
    pub cert_management: CertManagement,
    /// The Secret with `tls.crt`, `tls.key` and `ca.crt`, in `--namespace`.
    #[arg(long, default_value = install::WEBHOOK_SECRET)]
    pub cert_secret_name: String,
    /// The webhook Service; the serving certificate names `<service>.<namespace>.svc` and
    /// `<service>.<namespace>.svc.cluster.local`.
    #[arg(long, default_value = install::WEBHOOK_SERVICE)]
    pub webhook_service_name: String,
    /// More names (DNS or IP) for the serving certificate, e.g. 127.0.0.1 for webhooks by URL.
    #[arg(long = "cert-host", value_parser = cert_host)]
    pub cert_hosts: Vec<String>,
    /// Lifetime of a serving certificate (`8760h`, `2m`); renewed when a third is left.
    #[arg(long, default_value = "8760h", value_parser = humantime::parse_duration)]
    pub cert_validity: std::time::Duration,
    /// The MutatingWebhookConfiguration that gets the CA bundle.
    #[arg(long, default_value = install::MUTATING_CONFIGURATION)]
    pub mutating_webhook_configuration: String,
    /// The ValidatingWebhookConfiguration that gets the CA bundle.
    #[arg(long, default_value = install::VALIDATING_CONFIGURATION)]
    pub validating_webhook_configuration: String,
    /// The controller's namespace (the Secret's, and the Lease's by default). Default:
    /// $POD_NAMESPACE, else the Pod's service account namespace, else lws-system.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Run the controller without the webhook server.
    #[arg(long)]
    pub no_webhooks: bool,
    /// Where `/healthz`, `/readyz` and `/metrics` are served (HTTP).
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub health_addr: SocketAddr,
    /// Gang-scheduling provider (`volcano`), as upstream's configuration file sets it.
    #[arg(long)]
    pub scheduler_provider: Option<String>,
    /// Write the process id here once serving; removed on exit.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log level (`error`, `warn`, `info`, `debug`, `trace`, or a tracing filter such as
    /// `info,lws_host=debug`); RUST_LOG, when set, wins.
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// Reconcile only while holding the leader Lease (webhooks serve either way). Default: on
    /// inside a cluster (KUBERNETES_SERVICE_HOST set), off elsewhere.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: Option<bool>,
    /// The Lease's name (upstream's election id).
    #[arg(long, default_value = leader::DEFAULT_LEASE_NAME)]
    pub leader_election_id: String,
    /// The Lease's namespace. Default: `--namespace`.
    #[arg(long)]
    pub leader_election_namespace: Option<String>,
    /// This candidate's identity. Default: host name, process id and start time.
    #[arg(long)]
    pub leader_election_identity: Option<String>,
    /// Seconds a Lease not renewed keeps other candidates out.
    #[arg(long, default_value_t = 15)]
    pub lease_duration: u64,
    /// Seconds the leader keeps leading without a successful renewal (< --lease-duration).
    #[arg(long, default_value_t = 10)]
    pub renew_deadline: u64,
    /// Seconds between tries and renewals.
    #[arg(long, default_value_t = 2)]
    pub retry_period: u64,
}

fn cert_host(host: &str) -> Result<String, String> {
    lws_host::certs::issue::san(host)
        .map(|_| host.to_string())
        .map_err(|e| e.to_string())
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CertManagement {
    Internal,
    External,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Starts logging, then runs the controller until SIGTERM.
pub fn run(args: Args, engine: Engine) -> anyhow::Result<ExitCode> {
    let filter = match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(_) => tracing_subscriber::EnvFilter::try_new(&args.log_level)
            .map_err(|e| anyhow::anyhow!("--log-level {:?}: {e}", args.log_level))?,
    };
    let builder = tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    let namespace = args.namespace.unwrap_or_else(leader::default_namespace);
    let certs = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => CertSource::Files { cert, key },
        _ => CertSource::Secret {
            namespace: namespace.clone(),
            name: args.cert_secret_name,
            managed: (args.cert_management == CertManagement::Internal).then(|| {
                let service = &args.webhook_service_name;
                let mut hosts = vec![
                    format!("{service}.{namespace}.svc"),
                    format!("{service}.{namespace}.svc.cluster.local"),
                ];
                hosts.extend(args.cert_hosts);
                Managed {
                    hosts,
                    validity: args.cert_validity,
                    mutating_configuration: args.mutating_webhook_configuration,
                    validating_configuration: args.validating_webhook_configuration,
                }
            }),
        },
    };
    let webhook = (!args.no_webhooks).then_some(controller::WebhookListener {
        addr: args.webhook_addr,
        certs,
    });
    let elect = args
        .leader_elect
        .unwrap_or_else(|| std::env::var_os("KUBERNETES_SERVICE_HOST").is_some());
    anyhow::ensure!(
        args.renew_deadline < args.lease_duration && args.retry_period < args.renew_deadline,
        "need --retry-period < --renew-deadline < --lease-duration"
    );
    let leader_election = elect.then(|| LeaderElection {
        namespace: args.leader_election_namespace.unwrap_or(namespace),
        name: args.leader_election_id,
        identity: args
            .leader_election_identity
            .unwrap_or_else(leader::default_identity),
        timing: LeaseTiming {
            lease_duration: std::time::Duration::from_secs(args.lease_duration),
            renew_deadline: std::time::Duration::from_secs(args.renew_deadline),
            retry_period: std::time::Duration::from_secs(args.retry_period),
        },
    });
    let config = ControllerConfig {
        engine,
        webhook,
        health_addr: args.health_addr,
        scheduler_provider: args.scheduler_provider,
        pid_file: args.pid_file,
        instance: None,
        leader_election,
    };
    bound_malloc_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(controller::run(config))?;
    Ok(ExitCode::SUCCESS)
}

/// Caps glibc malloc at two arenas before any thread starts. By default each thread that
/// allocates gets an arena of its own (up to 8 per core) and each keeps its high-water mark; with
/// tokio's workers and the blocking pool that was most of the controller's peak RSS
/// (BENCHMARKS.md), for no measurable speed.
fn bound_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
