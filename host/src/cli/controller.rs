//! `lws controller`: flags in, [`lws_host::controller::run`] out.

use lws_host::controller::leader::{self, LeaseTiming};
use lws_host::controller::{self, ControllerConfig, LeaderElection};
use lws_host::engine::Engine;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// `lws controller` flags.
#[derive(clap::Args)]
pub struct Args {
    /// Where the admission webhooks listen (HTTPS).
    #[arg(long, default_value = "127.0.0.1:9443")]
    pub webhook_addr: SocketAddr,
    /// The webhooks' serving certificate (PEM); `lws install --dev` writes one.
    #[arg(long, required_unless_present = "no_webhooks")]
    pub tls_cert: Option<PathBuf>,
    /// The key of `--tls-cert` (PEM).
    #[arg(long, required_unless_present = "no_webhooks")]
    pub tls_key: Option<PathBuf>,
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
    /// Reconcile only while holding the leader Lease (webhooks serve either way). Default: on
    /// inside a cluster (KUBERNETES_SERVICE_HOST set), off elsewhere.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: Option<bool>,
    /// The Lease's name (upstream's election id).
    #[arg(long, default_value = leader::DEFAULT_LEASE_NAME)]
    pub leader_election_id: String,
    /// The Lease's namespace. Default: the Pod's own, else lws-system.
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

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Starts logging, then runs the controller until SIGTERM.
pub fn run(args: Args, engine: Engine) -> anyhow::Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    let webhook = match (args.no_webhooks, args.tls_cert, args.tls_key) {
        (false, Some(cert), Some(key)) => Some(controller::WebhookListener {
            addr: args.webhook_addr,
            cert,
            key,
        }),
        _ => None,
    };
    let elect = args
        .leader_elect
        .unwrap_or_else(|| std::env::var_os("KUBERNETES_SERVICE_HOST").is_some());
    anyhow::ensure!(
        args.renew_deadline < args.lease_duration && args.retry_period < args.renew_deadline,
        "need --retry-period < --renew-deadline < --lease-duration"
    );
    let leader_election = elect.then(|| LeaderElection {
        namespace: args
            .leader_election_namespace
            .unwrap_or_else(leader::default_namespace),
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
