//! `lws controller`'s command line: upstream's manager flags under upstream's names (so its
//! Deployment arguments work unchanged), and ours, some of them aliases of upstream's.
//!
//! Every setting is an `Option` here: `None` means "not on the command line", so that the
//! configuration file and then the default decide, as upstream lets a flag override the file
//! only when it is passed (`flag.Visit`). The values are parsed with Go's syntaxes
//! ([`super::go`]), so `--leader-elect-lease-duration=1m30s` and `--kube-api-burst=0x1f4` mean
//! what they mean to upstream.

use super::go;
use super::logging::{LogFormat, LogLevel, StacktraceLevel, TimeEncoding};
use clap::CommandFactory as _;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `lws controller` flags. Repeating a flag keeps the last value, as Go's flag package does.
#[derive(clap::Args, Clone, Debug, Default, PartialEq)]
#[command(args_override_self = true)]
pub struct ControllerFlags {
    /// Upstream's configuration file (`config.lws.x-k8s.io` `Configuration`, `v1alpha1` or
    /// `v1`); a flag given on the command line overrides the file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print the version and exit.
    #[arg(long)]
    pub version: bool,

    /// Where `/healthz` and `/readyz` are served (HTTP); `:8081` is every interface, `0`
    /// turns the probes off. Default: `:8081` in a cluster, `127.0.0.1:8081` elsewhere.
    #[arg(long, visible_alias = "health-addr", value_name = "ADDR", value_parser = bind_address)]
    pub health_probe_bind_address: Option<BindAddress>,

    /// Where `/metrics` is served: HTTPS, each request authorised by the API server
    /// (TokenReview, SubjectAccessReview), as upstream's. Default: `:8443` in a cluster, off
    /// (`0`) elsewhere.
    #[arg(long, value_name = "ADDR", value_parser = bind_address)]
    pub metrics_bind_address: Option<BindAddress>,

    /// Where the admission webhooks listen (HTTPS); the configuration file's `webhook.host`
    /// and `webhook.port` say it too. Default: `:9443` in a cluster, `127.0.0.1:9443`
    /// elsewhere.
    #[arg(long, value_name = "ADDR", value_parser = socket_address)]
    pub webhook_addr: Option<SocketAddr>,

    /// The webhooks' serving certificate from a PEM file, re-read when it changes (`lws install
    /// --dev` writes one); without it the certificate comes from the Secret `--cert-secret-name`.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The key of `--tls-cert` (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Who writes the Secret: `internal` (this controller makes a CA and a serving
    /// certificate, rotates them and injects the CA into the webhook configurations) or
    /// `external` (cert-manager or another party; the controller only reads it). The file's
    /// `internalCertManagement.enable` says it too. Default: internal.
    #[arg(long, value_enum)]
    pub cert_management: Option<CertManagement>,
    /// The Secret with `tls.crt`, `tls.key` and `ca.crt`, in `--namespace`
    /// (`internalCertManagement.webhookSecretName`). Default: lws-webhook-server-cert.
    #[arg(long)]
    pub cert_secret_name: Option<String>,
    /// The webhook Service; the serving certificate names `<service>.<namespace>.svc` and
    /// `<service>.<namespace>.svc.cluster.local` (`internalCertManagement.webhookServiceName`).
    /// Default: lws-webhook-service.
    #[arg(long)]
    pub webhook_service_name: Option<String>,
    /// More names (DNS or IP) for the serving certificate, e.g. 127.0.0.1 for webhooks by URL.
    #[arg(long = "cert-host", value_parser = cert_host)]
    pub cert_hosts: Vec<String>,
    /// Lifetime of a serving certificate (`8760h`, `2m`); renewed when a third is left.
    /// Default: 8760h.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub cert_validity: Option<std::time::Duration>,
    /// The MutatingWebhookConfiguration that gets the CA bundle.
    /// Default: lws-mutating-webhook-configuration.
    #[arg(long)]
    pub mutating_webhook_configuration: Option<String>,
    /// The ValidatingWebhookConfiguration that gets the CA bundle.
    /// Default: lws-validating-webhook-configuration.
    #[arg(long)]
    pub validating_webhook_configuration: Option<String>,
    /// The controller's namespace (the Secret's and the Lease's). Default: $POD_NAMESPACE,
    /// else the Pod's service account namespace, else lws-system.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Run the controller without the webhook server (as upstream's `ENABLE_WEBHOOKS=false`).
    #[arg(long)]
    pub no_webhooks: bool,
    /// Gang-scheduling provider (`volcano`); the file's
    /// `gangSchedulingManagement.schedulerProvider` says it too.
    #[arg(long)]
    pub scheduler_provider: Option<String>,
    /// Write the process id here once serving; removed on exit.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,

    /// Reconcile only while holding the leader Lease (webhooks serve either way); a Go
    /// boolean (`--leader-elect`, `--leader-elect=false`). Default: on in a cluster
    /// (KUBERNETES_SERVICE_HOST set), off elsewhere.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = go_bool)]
    pub leader_elect: Option<bool>,
    /// How long a Lease not renewed keeps other candidates out (Go duration: `15s`, `1m30s`;
    /// a bare number is seconds). Default: 15s.
    #[arg(long, visible_alias = "lease-duration", value_name = "DURATION", value_parser = duration)]
    pub leader_elect_lease_duration: Option<i64>,
    /// How long the leader keeps leading without a successful renewal. Default: 10s.
    #[arg(long, visible_alias = "renew-deadline", value_name = "DURATION", value_parser = duration)]
    pub leader_elect_renew_deadline: Option<i64>,
    /// Time between tries and renewals. Default: 2s.
    #[arg(long, visible_alias = "retry-period", value_name = "DURATION", value_parser = duration)]
    pub leader_elect_retry_period: Option<i64>,
    /// The lock's kind; only `leases` exists (client-go removed the others). Default: leases.
    #[arg(long, value_name = "KIND")]
    pub leader_elect_resource_lock: Option<String>,
    /// The Lease's name (upstream's election id). Default: b8b2488c.x-k8s.io.
    #[arg(long, visible_alias = "leader-election-id", value_name = "NAME")]
    pub leader_elect_resource_name: Option<String>,
    /// The Lease's namespace. Default: `--namespace`.
    #[arg(long)]
    pub leader_election_namespace: Option<String>,
    /// This candidate's identity. Default: Pod name (or host name), process id, start time.
    #[arg(long)]
    pub leader_election_identity: Option<String>,

    /// A kubeconfig file. Default: $KUBECONFIG, ~/.kube/config, or the Pod's service account.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Requests per second to the API server (`clientConnection.qps`); 0 means 5, negative
    /// means unlimited, as in client-go. Default: 500.
    #[arg(long, value_name = "QPS", value_parser = float, allow_negative_numbers = true)]
    pub kube_api_qps: Option<f32>,
    /// Requests that may go at once above the rate (`clientConnection.burst`); 0 means 10.
    /// Default: 500.
    #[arg(long, value_name = "N", value_parser = int, allow_negative_numbers = true)]
    pub kube_api_burst: Option<i64>,

    /// Log level: zap's `debug`, `info`, `error`, `panic` or a verbosity > 0 (`2`: this
    /// controller's trace), or a tracing filter (`warn`, `info,kube=debug`); RUST_LOG, when
    /// set, wins. Default: info (`debug` with `--zap-devel`).
    #[arg(long, visible_alias = "log-level", value_name = "LEVEL", value_parser = LogLevel::parse)]
    pub zap_log_level: Option<LogLevel>,
    /// Log format: `json`, or `console` (also `text`). Default: console (json with
    /// `--zap-devel=false`).
    #[arg(long, visible_alias = "log-format", value_name = "ENCODER", value_parser = LogFormat::parse)]
    pub zap_encoder: Option<LogFormat>,
    /// zap's development mode (a Go boolean): debug level and console format unless those are
    /// given; `false` is production mode, info and json.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = go_bool)]
    pub zap_devel: Option<bool>,
    /// Level from which zap adds stack traces (`info`, `error`, `panic`); accepted and
    /// reported, as these logs carry no stack traces.
    #[arg(long, value_name = "LEVEL", value_parser = StacktraceLevel::parse)]
    pub zap_stacktrace_level: Option<StacktraceLevel>,
    /// Timestamps: `epoch`, `millis`, `nanos`, `iso8601`, `rfc3339` or `rfc3339nano` (UTC).
    /// Default: RFC 3339 with microseconds.
    #[arg(long, value_name = "ENCODING", value_parser = TimeEncoding::parse)]
    pub zap_time_encoding: Option<TimeEncoding>,
}

/// Who writes the webhook Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CertManagement {
    Internal,
    External,
}

/// A listen address, or `0`: upstream's word for "do not serve".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindAddress {
    Disabled,
    At(SocketAddr),
}

impl BindAddress {
    /// The address to listen on; `None` when disabled.
    pub fn addr(self) -> Option<SocketAddr> {
        match self {
            BindAddress::Disabled => None,
            BindAddress::At(addr) => Some(addr),
        }
    }

    /// Go's `net.Listen` address (`:8081`, `127.0.0.1:8081`, `[::1]:8081`, `host:8081`) or `0`.
    pub fn parse(text: &str) -> Result<Self, go::GoSyntaxError> {
        match text {
            "0" => Ok(BindAddress::Disabled),
            _ => go::parse_listen_address(text).map(BindAddress::At),
        }
    }
}

fn bind_address(text: &str) -> Result<BindAddress, String> {
    BindAddress::parse(text).map_err(|e| e.to_string())
}

fn socket_address(text: &str) -> Result<SocketAddr, String> {
    go::parse_listen_address(text).map_err(|e| e.to_string())
}

fn go_bool(text: &str) -> Result<bool, String> {
    go::parse_bool(text).map_err(|e| e.to_string())
}

/// A Go duration in nanoseconds; a bare number is seconds (what our own flags always took).
fn duration(text: &str) -> Result<i64, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .ok()
            .and_then(|s| s.checked_mul(1_000_000_000))
            .ok_or_else(|| format!("{text} seconds is out of range"));
    }
    go::parse_duration(text).map_err(|e| e.to_string())
}

fn float(text: &str) -> Result<f32, String> {
    text.parse::<f32>()
        .ok()
        .filter(|q| !q.is_nan())
        .ok_or_else(|| format!("strconv.ParseFloat: parsing {text:?}: invalid syntax"))
}

fn int(text: &str) -> Result<i64, String> {
    go::parse_int(text).map_err(|e| e.to_string())
}

fn cert_host(host: &str) -> Result<String, String> {
    crate::certs::issue::san(host)
        .map(|_| host.to_string())
        .map_err(|e| e.to_string())
}

/// A command to parse [`ControllerFlags`] alone (tests, and the long names below).
#[derive(clap::Parser, Debug)]
#[command(name = "lws-controller", no_binary_name = true)]
pub struct Standalone {
    #[command(flatten)]
    pub flags: ControllerFlags,
}

impl ControllerFlags {
    /// Parses upstream-style arguments (no program name), one or two dashes each.
    pub fn parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        use clap::Parser as _;
        let args = go_dashes(args.into_iter().map(Into::into), &long_names());
        Standalone::try_parse_from(args).map(|s| s.flags)
    }
}

/// A long flag name (or alias) of [`ControllerFlags`], and whether it takes the next argument
/// as its value when given without `=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LongName {
    pub name: String,
    pub takes_next: bool,
}

/// Every long flag name and alias of [`ControllerFlags`].
pub fn long_names() -> Vec<LongName> {
    let command = Standalone::command();
    let mut names = vec![LongName {
        name: "help".to_string(),
        takes_next: false,
    }];
    for arg in command.get_arguments() {
        let takes_next = arg.get_action().takes_values() && !arg.is_require_equals_set();
        let spellings = arg
            .get_long()
            .into_iter()
            .chain(arg.get_all_aliases().into_iter().flatten());
        names.extend(spellings.map(|name| LongName {
            name: name.to_string(),
            takes_next,
        }));
    }
    names
}

/// Go's flag package takes `-name` as well as `--name`: rewrite the single-dash spelling of a
/// known long flag so clap sees it. The value after a flag that takes one (`--namespace
/// -x`) is left alone, and so is everything after `--`.
pub fn go_dashes(args: impl IntoIterator<Item = OsString>, names: &[LongName]) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut flags_over = false;
    let mut value_next = false;
    for arg in args {
        if flags_over || std::mem::take(&mut value_next) {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            flags_over = true;
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        let (dashes, rest) = match text.strip_prefix("--") {
            Some(rest) => (2, rest),
            None => (1, text.strip_prefix('-').unwrap_or(text)),
        };
        let (name, has_value) = match rest.split_once('=') {
            Some((name, _)) => (name, true),
            None => (rest, false),
        };
        let known = text
            .starts_with('-')
            .then(|| names.iter().find(|n| n.name == name))
            .flatten();
        match known {
            Some(long) => {
                value_next = long.takes_next && !has_value;
                out.push(match dashes {
                    1 => OsString::from(format!("-{text}")),
                    _ => arg,
                });
            }
            None => out.push(arg),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> ControllerFlags {
        ControllerFlags::parse_args(args.iter().copied())
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn error(args: &[&str]) -> String {
        ControllerFlags::parse_args(args.iter().copied())
            .map(|f| format!("parsed: {f:?}"))
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn nothing_given_is_all_none() {
        assert_eq!(parse(&[]), ControllerFlags::default());
    }

    #[test]
    fn upstream_flags_and_values() {
        let flags = parse(&[
            "--config=/controller_manager_config.yaml",
            "--zap-log-level=2",
            "--leader-elect",
            "--health-probe-bind-address=:8081",
            "--metrics-bind-address",
            "127.0.0.1:8443",
            "--leader-elect-lease-duration=1m30s",
            "--leader-elect-renew-deadline",
            "500ms",
            "--leader-elect-retry-period=100ms",
            "--leader-elect-resource-lock=leases",
            "--leader-elect-resource-name=my-id",
            "--kube-api-qps=12.5",
            "--kube-api-burst=0x20",
            "--zap-devel=false",
            "--zap-encoder=JSON",
            "--zap-stacktrace-level=panic",
            "--zap-time-encoding=iso8601",
            "--kubeconfig=/k",
        ]);
        assert_eq!(
            flags.config.as_deref(),
            Some(std::path::Path::new("/controller_manager_config.yaml"))
        );
        assert_eq!(flags.zap_log_level, Some(LogLevel::Verbosity(2)));
        assert_eq!(flags.leader_elect, Some(true));
        assert_eq!(
            flags.health_probe_bind_address,
            Some(BindAddress::At("0.0.0.0:8081".parse().unwrap()))
        );
        assert_eq!(
            flags.metrics_bind_address,
            Some(BindAddress::At("127.0.0.1:8443".parse().unwrap()))
        );
        assert_eq!(flags.leader_elect_lease_duration, Some(90_000_000_000));
        assert_eq!(flags.leader_elect_renew_deadline, Some(500_000_000));
        assert_eq!(flags.leader_elect_retry_period, Some(100_000_000));
        assert_eq!(flags.leader_elect_resource_lock.as_deref(), Some("leases"));
        assert_eq!(flags.leader_elect_resource_name.as_deref(), Some("my-id"));
        assert_eq!(flags.kube_api_qps, Some(12.5));
        assert_eq!(flags.kube_api_burst, Some(32));
        assert_eq!(flags.zap_devel, Some(false));
        assert_eq!(flags.zap_encoder, Some(LogFormat::Json));
        assert_eq!(flags.zap_stacktrace_level, Some(StacktraceLevel::Panic));
        assert_eq!(flags.zap_time_encoding, Some(TimeEncoding::Iso8601));
        assert_eq!(
            flags.kubeconfig.as_deref(),
            Some(std::path::Path::new("/k"))
        );
    }

    #[test]
    fn go_booleans() {
        for (arg, want) in [
            ("--leader-elect", true),
            ("--leader-elect=true", true),
            ("--leader-elect=1", true),
            ("--leader-elect=T", true),
            ("--leader-elect=false", false),
            ("--leader-elect=0", false),
            ("--leader-elect=F", false),
        ] {
            assert_eq!(parse(&[arg]).leader_elect, Some(want), "{arg}");
        }
        // Go takes a boolean's value only after `=`.
        assert!(error(&["--leader-elect", "false"]).contains("unexpected argument 'false'"));
        assert!(error(&["--leader-elect=yes"]).contains(r#"strconv.ParseBool: parsing "yes""#));
        assert_eq!(parse(&["--zap-devel"]).zap_devel, Some(true));
    }

    #[test]
    fn our_names_are_aliases() {
        let ours = parse(&[
            "--health-addr=127.0.0.1:18081",
            "--lease-duration=4",
            "--renew-deadline=3",
            "--retry-period=1",
            "--leader-election-id=lease-x",
            "--log-level=info,lws_host=debug",
            "--log-format=text",
        ]);
        let upstream = parse(&[
            "--health-probe-bind-address=127.0.0.1:18081",
            "--leader-elect-lease-duration=4s",
            "--leader-elect-renew-deadline=3s",
            "--leader-elect-retry-period=1s",
            "--leader-elect-resource-name=lease-x",
            "--zap-log-level=info,lws_host=debug",
            "--zap-encoder=console",
        ]);
        assert_eq!(ours, upstream);
    }

    #[test]
    fn one_dash_works_as_in_go_and_the_last_value_wins() {
        let flags = parse(&[
            "-leader-elect=false",
            "-zap-log-level",
            "debug",
            "-config=/c.yaml",
        ]);
        assert_eq!(flags.leader_elect, Some(false));
        assert_eq!(flags.zap_log_level, Some(LogLevel::Debug));
        assert!(flags.config.is_some());
        assert_eq!(
            parse(&["--zap-log-level=info", "--zap-log-level=error"]).zap_log_level,
            Some(LogLevel::Error)
        );
        assert_eq!(
            parse(&["--kube-api-qps=1", "--kube-api-qps=-1"]).kube_api_qps,
            Some(-1.0)
        );
        // An unknown single-dash word is not rewritten, and still refused.
        assert!(error(&["-bogus"]).contains("unexpected argument"));
        let after = go_dashes(
            ["-config=/a", "--", "-config=/b"].map(OsString::from),
            &long_names(),
        );
        assert_eq!(
            after,
            ["--config=/a", "--", "-config=/b"].map(OsString::from)
        );
    }

    #[test]
    fn bad_values_name_the_flag() {
        let cases = [
            (
                &["--leader-elect-lease-duration=15x"][..],
                "--leader-elect-lease-duration",
                r#"unknown unit "x""#,
            ),
            (
                &["--leader-elect-retry-period=1.5"],
                "--leader-elect-retry-period",
                "missing unit",
            ),
            (
                &["--zap-log-level=0"],
                "--zap-log-level",
                r#"invalid log level "0""#,
            ),
            (
                &["--zap-log-level=verbose=x=y"],
                "--zap-log-level",
                "invalid log level",
            ),
            (
                &["--zap-encoder=logfmt"],
                "--zap-encoder",
                "invalid encoder value",
            ),
            (
                &["--zap-stacktrace-level=debug"],
                "--zap-stacktrace-level",
                "invalid stacktrace level",
            ),
            (
                &["--zap-time-encoding=unix"],
                "--zap-time-encoding",
                "invalid time-encoding",
            ),
            (&["--kube-api-qps=fast"], "--kube-api-qps", "ParseFloat"),
            (&["--kube-api-burst=1.5"], "--kube-api-burst", "ParseInt"),
            (
                &["--health-probe-bind-address=8081"],
                "--health-probe-bind-address",
                "missing port",
            ),
            (
                &["--metrics-bind-address=:https"],
                "--metrics-bind-address",
                "port must be a number",
            ),
        ];
        for (args, flag, why) in cases {
            let message = error(args);
            assert!(
                message.contains(flag) && message.contains(why),
                "{args:?}: {message}"
            );
        }
    }

    #[test]
    fn zero_disables_a_server_address() {
        assert_eq!(
            parse(&["--metrics-bind-address=0"]).metrics_bind_address,
            Some(BindAddress::Disabled)
        );
    }
}
