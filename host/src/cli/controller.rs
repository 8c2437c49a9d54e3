//! `lws controller`: flags and configuration file in ([`lws_host::settings`]), logging started,
//! [`lws_host::controller::run`] out.

use lws_host::certs::{CertSource, Managed};
use lws_host::controller::leader;
use lws_host::controller::{self, ControllerConfig, LeaderElection};
use lws_host::engine::{Engine, PinnedModule};
use lws_host::install;
use lws_host::settings::logging::{LogFormat, TimeEncoding};
use lws_host::settings::{self, CertSettings, Environment, LogSettings, Settings};
use lws_host::zap_console::ZapConsole;
use std::process::ExitCode;

/// `lws controller` flags: upstream's manager flags and ours (see [`settings::flags`]).
pub type Args = settings::flags::ControllerFlags;

/// Resolves the settings, starts logging, then runs the controller until SIGTERM.
pub fn run(
    args: Args,
    engine: Engine,
    module_file: Option<PinnedModule>,
) -> anyhow::Result<ExitCode> {
    if args.version {
        println!("Version: v{}", env!("CARGO_PKG_VERSION"));
        return Ok(ExitCode::SUCCESS);
    }
    let settings = settings::load(&args, &Environment::from_process())?;
    start_logging(&settings.log)?;
    for note in &settings.notes {
        if note.no_effect {
            tracing::warn!(setting = %note.setting, "{}", note.message);
        } else {
            tracing::info!(setting = %note.setting, "{}", note.message);
        }
    }
    tracing::info!(
        namespace = %settings.namespace,
        health = ?settings.health_addr,
        metrics = ?settings.metrics_addr,
        webhooks = ?settings.webhook.as_ref().map(|w| w.addr),
        leader_election = settings.leader_election.is_some(),
        qps = settings.client.qps,
        burst = settings.client.burst,
        scheduler_provider = ?settings.scheduler_provider,
        feature_gates = ?settings.feature_gates,
        "settings"
    );
    let config = controller_config(settings, engine, module_file);
    bound_malloc_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(controller::run(config))?;
    Ok(ExitCode::SUCCESS)
}

/// RUST_LOG, when set, wins over the flags.
fn start_logging(log: &LogSettings) -> anyhow::Result<()> {
    let filter = match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(_) => tracing_subscriber::EnvFilter::try_new(&log.filter)
            .map_err(|e| anyhow::anyhow!("--zap-log-level {:?}: {e}", log.filter))?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match (log.format, log.time) {
        (LogFormat::Text, time) => builder
            .event_format(ZapConsole {
                time: time.unwrap_or(TimeEncoding::Rfc3339),
            })
            .init(),
        (LogFormat::Json, None) => builder.json().init(),
        (LogFormat::Json, Some(time)) => builder.json().with_timer(time).init(),
    }
    Ok(())
}

/// The settings as the controller takes them.
fn controller_config(
    settings: Settings,
    engine: Engine,
    module_file: Option<PinnedModule>,
) -> ControllerConfig {
    let namespace = settings.namespace;
    let webhook = settings.webhook.map(|webhook| controller::WebhookListener {
        addr: webhook.addr,
        certs: match webhook.certs {
            CertSettings::Files { cert, key } => CertSource::Files { cert, key },
            CertSettings::Secret { name, internal } => CertSource::Secret {
                namespace: namespace.clone(),
                name,
                managed: internal.map(|internal| {
                    let mut hosts =
                        install::service_host_names(&internal.service, &namespace).to_vec();
                    hosts.extend(internal.extra_hosts);
                    Managed {
                        hosts,
                        validity: internal.validity,
                        mutating_configuration: internal.mutating_configuration,
                        validating_configuration: internal.validating_configuration,
                    }
                }),
            },
        },
    });
    let leader_election = settings.leader_election.map(|election| LeaderElection {
        namespace: election.namespace,
        name: election.name,
        identity: election.identity.unwrap_or_else(leader::default_identity),
        timing: election.timing,
    });
    ControllerConfig {
        engine,
        module_file,
        webhook,
        namespace: namespace.clone(),
        health_addr: settings.health_addr,
        metrics_addr: settings.metrics_addr,
        scheduler_provider: settings.scheduler_provider,
        pid_file: settings.pid_file,
        instance: None,
        leader_election,
        client: settings.client,
    }
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

/// Upstream's flags may be spelled with one dash, as Go's flag package allows: after the
/// `controller` subcommand (the first argument), `-leader-elect` becomes `--leader-elect`.
pub fn go_dashes(args: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut args: Vec<_> = args.into_iter().collect();
    if args.get(1).is_some_and(|command| command == "controller") {
        let flags = args.split_off(2);
        args.extend(settings::flags::go_dashes(
            flags,
            &settings::flags::long_names(),
        ));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::go_dashes;
    use std::ffi::OsString;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn one_dash_flags_of_the_controller_only() {
        assert_eq!(
            go_dashes(args(&[
                "lws",
                "controller",
                "-leader-elect=false",
                "-zap-log-level",
                "2"
            ])),
            args(&[
                "lws",
                "controller",
                "--leader-elect=false",
                "--zap-log-level",
                "2"
            ])
        );
        // Other subcommands and values are left alone.
        let expand = args(&["lws", "expand", "-f", "-leader-elect"]);
        assert_eq!(go_dashes(expand.clone()), expand);
        // A value that looks like a flag stays a value, as in Go.
        let value = args(&[
            "lws",
            "controller",
            "-namespace",
            "-config",
            "-leader-elect",
        ]);
        assert_eq!(
            go_dashes(value),
            args(&[
                "lws",
                "controller",
                "--namespace",
                "-config",
                "--leader-elect"
            ])
        );
    }
}
