//! The command line: flags in, one small function per subcommand.

mod controller;
mod crd;
mod expand;
mod install;
mod module;
mod preview;
mod validate;

use clap::{Parser, Subcommand, ValueEnum};
use lws_host::engine::{Engine, PinnedModule};
use std::path::PathBuf;
use std::process::ExitCode;

/// LeaderWorkerSet for Kubernetes: controller, webhooks and offline tools, all deciding
/// through one WebAssembly module.
#[derive(Parser)]
#[command(name = "lws", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every object the cluster would end up with for the given LeaderWorkerSets:
    /// the leader StatefulSet, the Services, the worker StatefulSets and every Pod.
    Expand {
        /// Manifest file with one or more LeaderWorkerSets (YAML or JSON); `-` reads stdin.
        #[arg(short = 'f', long = "filename")]
        file: String,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Yaml)]
        output: Format,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Check LeaderWorkerSets as the admission webhooks would: exit 0 when valid, else exit 1
    /// with one `path: message` line per problem.
    Validate {
        /// Manifest file with one or more LeaderWorkerSets (YAML or JSON); `-` reads stdin.
        #[arg(short = 'f', long = "filename")]
        file: String,
        /// The stored object, to validate the change from it (an update).
        #[arg(long)]
        old: Option<String>,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Run the controller and the admission webhooks until SIGTERM.
    Controller {
        #[command(flatten)]
        args: Box<controller::Args>,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Print the LeaderWorkerSet CustomResourceDefinition.
    Crd {
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Yaml)]
        output: Format,
    },
    /// Print the in-cluster installation, or with `--dev` set up a cluster for a controller
    /// running on this machine (serving certificate, CRD, webhook configurations by URL).
    Install(install::Args),
    /// Serve the browser preview on 127.0.0.1 and print its URL: paste a manifest, see every
    /// pod, label, env var and placement, computed by lws.wasm in the browser.
    Preview {
        /// Port to listen on; 0 picks a free one.
        #[arg(long, default_value_t = 8100)]
        port: u16,
    },
    /// The embedded module: its identity, and its code compiled ahead of time (image builds).
    #[command(hide = true, subcommand)]
    Module(ModuleCommand),
}

/// `lws module` subcommands.
#[derive(Subcommand)]
enum ModuleCommand {
    /// Compile the embedded module for this binary's engine into DIR (for `$LWS_MODULE_DIR`),
    /// for a CPU baseline rather than this machine's features; print the file written.
    Precompile {
        /// Directory to write `<module sha256>-<engine key>.cwasm` into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Load the embedded module as a start would; print its sha256, size, and where its code
    /// came from (precompiled, cached or compiled).
    Info,
}

/// Output formats of `lws expand`.
#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// A multi-document YAML stream, one object per document.
    Yaml,
    /// One `v1` List.
    Json,
}

/// Which implementation decides.
#[derive(clap::Args)]
struct EngineArgs {
    /// `wasm` runs lws.wasm (the default); `native` runs the same core compiled in.
    #[arg(long, value_enum, default_value_t = EngineKind::Wasm)]
    engine: EngineKind,
    /// Load this module instead of the embedded one (`lws controller` loads it again on
    /// SIGHUP and swaps it in without a restart).
    #[arg(long, requires = "module_sha256")]
    module: Option<String>,
    /// The sha256 the module must have, or several, comma-separated (the running module's and
    /// the next one's); any other is refused.
    #[arg(long)]
    module_sha256: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EngineKind {
    Wasm,
    Native,
}

impl EngineArgs {
    fn engine(&self) -> anyhow::Result<Engine> {
        match self.engine {
            EngineKind::Native => Ok(Engine::Native),
            EngineKind::Wasm => Engine::wasm(self.pinned().as_ref()),
        }
    }

    /// The module file a controller reloads on SIGHUP, if one was given.
    fn pinned(&self) -> Option<PinnedModule> {
        match (self.engine, &self.module, &self.module_sha256) {
            (EngineKind::Wasm, Some(path), Some(pins)) => Some(PinnedModule {
                path: path.clone(),
                pins: pins.clone(),
            }),
            _ => None,
        }
    }
}

/// Parses the command line and runs it; the exit code says valid (0) or invalid input (1).
pub fn run() -> anyhow::Result<ExitCode> {
    match Cli::parse_from(controller::go_dashes(std::env::args_os())).command {
        Command::Expand {
            file,
            output,
            engine,
        } => expand::run(&file, output, &engine.engine()?),
        Command::Validate { file, old, engine } => {
            validate::run(&file, old.as_deref(), &engine.engine()?)
        }
        Command::Controller { args, engine } => {
            controller::run(*args, engine.engine()?, engine.pinned())
        }
        Command::Crd { output } => crd::run(output),
        Command::Install(args) => install::run(args),
        Command::Preview { port } => preview::run(port),
        Command::Module(ModuleCommand::Precompile { out }) => module::precompile(&out),
        Command::Module(ModuleCommand::Info) => module::info(),
    }
}
