//! The guest runtime: `lws.wasm` in wasmtime, spoken to over waPC.
//!
//! Lifetimes follow cost, as in wasmtime's embedding examples: one [`Engine`] and one compiled
//! [`Module`] (with its resolved imports, an [`InstancePre`]) per process; a fresh [`Store`] per
//! call, so no call can see another's memory and a trapped instance is simply dropped. Every call
//! runs under a memory cap and an epoch deadline, and a trap comes back as a [`GuestError`]
//! value, never a panic.
//!
//! The host side of waPC is three imports (`__guest_request`, `__guest_response`,
//! `__guest_error`); the guest gets no other import, so it cannot reach the clock, the network
//! or the file system.
//!
//! Compiling the module costs seconds of CPU and hundreds of MB, so compiled code is looked for
//! first, in this order ([`CodeDirs`]): a read-only directory of code compiled ahead of time
//! ([`precompile`], `lws module precompile`; `$LWS_MODULE_DIR`, baked into the image), then a
//! private writable cache (`$LWS_CACHE/modules`, else `$HOME/.cache/lws/modules`). Only a compile
//! writes, and only to the cache; with neither directory usable the module is compiled in memory.
//! A file is loaded only when it is private and sealed for this module and engine ([`cache`]
//! says how, and what that does and does not protect against).

mod cache;

pub use cache::CacheDir;

use sha2::{Digest, Sha256};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{
    Caller, Config, Engine, InstancePre, Linker, Memory, Module, ResourceLimiter, Store, Trap,
    TypedFunc,
};

/// The module built from this source tree, embedded so `lws` needs no file beside it. A
/// `static`, not a `const`: every use of a `const` got its own 2.7 MB copy in the binary.
pub static EMBEDDED_MODULE: &[u8] = include_bytes!(env!("LWS_WASM_PATH"));

/// How often the epoch ticker advances; deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits for one guest call.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest linear memory a call may grow to, in bytes.
    pub memory_bytes: usize,
    /// Wall time a call may run before it is interrupted.
    pub deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        // Expanding 100 groups × size 8 uses a few MiB; 256 MiB leaves room for far larger sets.
        Limits {
            memory_bytes: 256 << 20,
            deadline: Duration::from_secs(5),
        }
    }
}

/// Why a guest call failed. The host keeps serving after any of these.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("the guest ran past its {0:?} deadline")]
    Timeout(Duration),
    #[error("the guest ran out of memory (cap {0} bytes)")]
    OutOfMemory(usize),
    #[error("the guest trapped: {0}")]
    Trap(String),
    #[error("the guest answered {operation}: {message}")]
    Protocol { operation: String, message: String },
    #[error("the module could not be loaded: {0}")]
    Load(String),
}

/// Per-call state: the request for the guest to read, and what it answered.
struct CallState {
    operation: Vec<u8>,
    payload: Vec<u8>,
    response: Option<Vec<u8>>,
    error: Option<Vec<u8>>,
    memory_cap: MemoryCap,
}

/// Caps linear memory, and remembers a refusal: the guest's allocator turns a refused
/// `memory.grow` into an abort, and this is how the host tells that abort from a bug.
struct MemoryCap {
    max_bytes: usize,
    refused: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_bytes;
        self.refused |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// Where to look for compiled code before compiling a module.
#[derive(Clone, Debug, Default)]
pub struct CodeDirs {
    /// Code compiled ahead of time by [`precompile`]; read, never written.
    pub precompiled: Option<PathBuf>,
    /// A cache this process may write; a compile stores its code here for the next start.
    pub cache: Option<CacheDir>,
}

impl CodeDirs {
    /// `$LWS_MODULE_DIR` for precompiled code; `$LWS_CACHE/modules`, else
    /// `$HOME/.cache/lws/modules`, for the cache, sealed with the key in
    /// `$XDG_CONFIG_HOME/lws`, else `$HOME/.config/lws`. Relative paths are ignored: never a
    /// cache in whatever directory `lws` runs in.
    pub fn from_env() -> Self {
        let var = |name| std::env::var_os(name);
        CodeDirs {
            precompiled: absolute(var("LWS_MODULE_DIR")),
            cache: cache_dir_of(var("LWS_CACHE"), var("XDG_CONFIG_HOME"), var("HOME")),
        }
    }
}

/// Where a runtime's compiled code came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeSource {
    /// Loaded from this file in [`CodeDirs::precompiled`].
    Precompiled(PathBuf),
    /// Loaded from this file in [`CodeDirs::cache`].
    Cached(PathBuf),
    /// Compiled by this process.
    Compiled,
}

/// One engine and one compiled module, shared by every call in the process.
pub struct GuestRuntime {
    engine: Engine,
    instance_pre: InstancePre<CallState>,
    limits: Limits,
    sha256: String,
    code_source: CodeSource,
    ticker_stop: Arc<AtomicBool>,
}

impl GuestRuntime {
    /// Loads the module embedded in the binary.
    pub fn embedded(limits: Limits) -> Result<Self, GuestError> {
        Self::from_bytes(EMBEDDED_MODULE, limits)
    }

    /// Loads `bytes` as a module, its compiled code looked up in the directories
    /// [`CodeDirs::from_env`] names.
    pub fn from_bytes(bytes: &[u8], limits: Limits) -> Result<Self, GuestError> {
        Self::from_bytes_in(bytes, limits, &CodeDirs::from_env())
    }

    /// Loads `bytes` as a module, its compiled code looked up in `dirs`.
    pub fn from_bytes_in(
        bytes: &[u8],
        limits: Limits,
        dirs: &CodeDirs,
    ) -> Result<Self, GuestError> {
        let engine = Engine::new(&engine_config()).map_err(load_error)?;
        let sha256 = sha256_hex(bytes);
        let (module, code_source) = compile_cached(&engine, bytes, &sha256, dirs)?;
        let mut linker: Linker<CallState> = Linker::new(&engine);
        define_wapc_imports(&mut linker).map_err(load_error)?;
        let instance_pre = linker.instantiate_pre(&module).map_err(load_error)?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), ticker_stop.clone());
        Ok(GuestRuntime {
            engine,
            instance_pre,
            limits,
            sha256,
            code_source,
            ticker_stop,
        })
    }

    /// The sha256 of the module this runtime runs, in hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Where the compiled code this runtime runs came from.
    pub fn code_source(&self) -> &CodeSource {
        &self.code_source
    }

    /// Calls `operation` with `payload` in a fresh instance; returns the guest's answer.
    pub fn call(&self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, GuestError> {
        let state = CallState {
            operation: operation.as_bytes().to_vec(),
            payload: payload.to_vec(),
            response: None,
            error: None,
            memory_cap: MemoryCap {
                max_bytes: self.limits.memory_bytes,
                refused: false,
            },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory_cap);
        let ticks = (self.limits.deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);

        let operation_len = len_i32(operation.len())?;
        let payload_len = len_i32(payload.len())?;
        let ok = match self.run(&mut store, operation_len, payload_len) {
            Ok(ok) => ok,
            Err(error) => return Err(self.classify(error, store.data().memory_cap.refused)),
        };
        let state = store.into_data();
        if ok == 1 {
            return state.response.ok_or_else(|| GuestError::Protocol {
                operation: operation.to_string(),
                message: "the guest reported success but sent no response".to_string(),
            });
        }
        let message = state
            .error
            .map(|e| String::from_utf8_lossy(&e).into_owned());
        Err(GuestError::Protocol {
            operation: operation.to_string(),
            message: message.unwrap_or_else(|| "the guest failed without a message".to_string()),
        })
    }

    /// Instantiates, initialises and calls the guest: the part of a call that can trap.
    fn run(
        &self,
        store: &mut Store<CallState>,
        operation_len: i32,
        payload_len: i32,
    ) -> wasmtime::Result<i32> {
        let instance = self.instance_pre.instantiate(&mut *store)?;
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut *store, "wapc_init") {
            init.call(&mut *store, ())?;
        }
        let guest_call: TypedFunc<(i32, i32), i32> =
            instance.get_typed_func(&mut *store, "__guest_call")?;
        guest_call.call(&mut *store, (operation_len, payload_len))
    }

    /// Turns a wasmtime error into the variant that says what happened.
    fn classify(&self, error: wasmtime::Error, memory_refused: bool) -> GuestError {
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => GuestError::Timeout(self.limits.deadline),
            _ if memory_refused => GuestError::OutOfMemory(self.limits.memory_bytes),
            _ => GuestError::Trap(format!("{error:#}")),
        }
    }
}

impl Drop for GuestRuntime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// The host half of waPC's guest-call protocol.
fn define_wapc_imports(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "wapc",
        "__guest_request",
        |mut caller: Caller<'_, CallState>, operation_ptr: i32, payload_ptr: i32| {
            let memory = memory_of(&mut caller)?;
            // Copied straight from the call's state into guest memory: a payload may be MBs.
            let (guest, state) = memory.data_and_store_mut(&mut caller);
            write_guest(guest, operation_ptr, &state.operation)?;
            write_guest(guest, payload_ptr, &state.payload)?;
            Ok(())
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__guest_response",
        |mut caller: Caller<'_, CallState>, ptr: i32, len: i32| {
            let bytes = read_guest(&mut caller, ptr, len)?;
            caller.data_mut().response = Some(bytes);
            Ok(())
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__guest_error",
        |mut caller: Caller<'_, CallState>, ptr: i32, len: i32| {
            let bytes = read_guest(&mut caller, ptr, len)?;
            caller.data_mut().error = Some(bytes);
            Ok(())
        },
    )?;
    Ok(())
}

fn memory_of(caller: &mut Caller<'_, CallState>) -> wasmtime::Result<Memory> {
    caller
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .ok_or_else(|| wasmtime::Error::msg("the guest exports no memory"))
}

/// Copies `bytes` into guest memory at `ptr`, or fails (a trap) when they do not fit.
fn write_guest(memory: &mut [u8], ptr: i32, bytes: &[u8]) -> wasmtime::Result<()> {
    let start = ptr as u32 as usize;
    let end = start.checked_add(bytes.len());
    let target = end.and_then(|end| memory.get_mut(start..end));
    let target =
        target.ok_or_else(|| wasmtime::Error::msg("request out of guest memory bounds"))?;
    target.copy_from_slice(bytes);
    Ok(())
}

fn read_guest(caller: &mut Caller<'_, CallState>, ptr: i32, len: i32) -> wasmtime::Result<Vec<u8>> {
    let memory = memory_of(caller)?;
    let mut bytes = vec![0; len as u32 as usize];
    memory.read(&*caller, ptr as u32 as usize, &mut bytes)?;
    Ok(bytes)
}

fn len_i32(len: usize) -> Result<i32, GuestError> {
    i32::try_from(len).map_err(|_| GuestError::Protocol {
        operation: String::new(),
        message: format!("a payload of {len} bytes does not fit the waPC ABI"),
    })
}

/// The configuration of every engine that runs the module.
fn engine_config() -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config
}

/// The target and CPU features code compiled ahead of time is built for: the runtime's
/// configuration, but x86-64-v2 (cranelift's `nehalem`: up to SSE4.2 and POPCNT) instead of the
/// features of the machine that builds the image, so that the file loads on any node of the
/// architecture; aarch64 gets its baseline. On other targets the runtime's own configuration,
/// so the file loads only where the CPU has the build machine's features.
fn portable_config() -> Result<Config, GuestError> {
    let Some((triple, presets)) = PORTABLE_TARGET else {
        return Ok(engine_config());
    };
    let mut config = engine_config();
    config.target(triple).map_err(load_error)?;
    for preset in presets {
        // SAFETY: a preset only enables CPU features; wasmtime refuses to load the code on a
        // host that lacks any of them.
        unsafe {
            config.cranelift_flag_enable(preset);
        }
    }
    Ok(config)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "musl"))]
const PORTABLE_TARGET: Option<(&str, &[&str])> = Some(("x86_64-unknown-linux-musl", &["nehalem"]));
#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
const PORTABLE_TARGET: Option<(&str, &[&str])> = Some(("x86_64-unknown-linux-gnu", &["nehalem"]));
#[cfg(all(target_arch = "aarch64", target_os = "linux", target_env = "musl"))]
const PORTABLE_TARGET: Option<(&str, &[&str])> = Some(("aarch64-unknown-linux-musl", &[]));
#[cfg(all(target_arch = "aarch64", target_os = "linux", target_env = "gnu"))]
const PORTABLE_TARGET: Option<(&str, &[&str])> = Some(("aarch64-unknown-linux-gnu", &[]));
#[cfg(not(all(
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_os = "linux",
    any(target_env = "gnu", target_env = "musl")
)))]
const PORTABLE_TARGET: Option<(&str, &[&str])> = None;

/// Compiles `bytes` ahead of time into `dir` for the portable configuration, sealed, under the
/// name [`precompiled_path`] gives it; returns the file written.
pub fn precompile(bytes: &[u8], dir: &Path) -> Result<PathBuf, GuestError> {
    let engine = Engine::new(&portable_config()?).map_err(load_error)?;
    let compiled = engine.precompile_module(bytes).map_err(load_error)?;
    let sha256 = sha256_hex(bytes);
    let path = code_path(dir, &sha256, &engine);
    let identity = cache::Identity {
        module_sha256: &sha256,
        engine_key: cache::engine_key(&engine),
    };
    cache::store(&path, &cache::Seal::precompiled(), &identity, &compiled)
        .map_err(|refused| GuestError::Load(refused.to_string()))?;
    Ok(path)
}

/// The file in `dir` that holds code [`precompile`] compiled from the module with `sha256`.
pub fn precompiled_path(dir: &Path, sha256: &str) -> Result<PathBuf, GuestError> {
    let engine = Engine::new(&portable_config()?).map_err(load_error)?;
    Ok(code_path(dir, sha256, &engine))
}

/// The file in the cache directory `dir` that holds this process's compiled code for the module
/// with `sha256`.
pub fn cached_path(dir: &Path, sha256: &str) -> Result<PathBuf, GuestError> {
    Ok(code_path(dir, sha256, &runtime_engine()?))
}

/// An engine configured as every [`GuestRuntime`]'s: code it compiles would load in one, were
/// it trusted.
pub fn runtime_engine() -> Result<Engine, GuestError> {
    Engine::new(&engine_config()).map_err(load_error)
}

/// `<module sha256>-<engine key>.cwasm`: the name pins the source module's bytes and the
/// configuration and wasmtime version of the engine that compiled it; the seal inside checks
/// both again.
fn code_path(dir: &Path, sha256: &str, engine: &Engine) -> PathBuf {
    let engine_key = cache::engine_key(engine);
    dir.join(format!("{sha256}-{engine_key:016x}.cwasm"))
}

/// Loads the module's code from `dirs` (precompiled first, then the cache), else compiles it and
/// stores the code in the cache.
fn compile_cached(
    engine: &Engine,
    bytes: &[u8],
    sha256: &str,
    dirs: &CodeDirs,
) -> Result<(Module, CodeSource), GuestError> {
    if let Some(dir) = &dirs.precompiled {
        // Compiled by the portable engine, whose code this engine runs (wasmtime checks).
        let portable = Engine::new(&portable_config()?).map_err(load_error)?;
        let identity = cache::Identity {
            module_sha256: sha256,
            engine_key: cache::engine_key(&portable),
        };
        let path = code_path(dir, sha256, &portable);
        let seal = cache::Seal::precompiled();
        if let Some(module) = loaded(cache::load(&path, &seal, &identity, engine)) {
            return Ok((module, CodeSource::Precompiled(path)));
        }
    }
    let identity = cache::Identity {
        module_sha256: sha256,
        engine_key: cache::engine_key(engine),
    };
    let seal = dirs.cache.as_ref().and_then(|cache| {
        cache::Seal::cache(&cache.key_file)
            .map_err(|refused| warn_refused(&refused, "module cache key unusable; no cache"))
            .ok()
            .map(|seal| (cache.dir.as_path(), seal))
    });
    let Some((dir, seal)) = seal else {
        let module = Module::new(engine, bytes).map_err(load_error)?;
        return Ok((module, CodeSource::Compiled));
    };
    let path = code_path(dir, sha256, engine);
    if let Some(module) = loaded(cache::load(&path, &seal, &identity, engine)) {
        return Ok((module, CodeSource::Cached(path)));
    }
    let module = Module::new(engine, bytes).map_err(load_error)?;
    match module.serialize() {
        // A cache that cannot be written only costs the next start a compile.
        Ok(compiled) => {
            if let Err(refused) = cache::store(&path, &seal, &identity, &compiled) {
                warn_refused(&refused, "compiled module not cached");
            }
        }
        Err(error) => tracing::warn!(error = %format!("{error:#}"), "compiled module not cached"),
    }
    Ok((module, CodeSource::Compiled))
}

/// The module a load gave, logging why it was refused unless the file simply is not there.
fn loaded(result: Result<Module, cache::Refused>) -> Option<Module> {
    match result {
        Ok(module) => Some(module),
        Err(cache::Refused::Missing(_)) => None,
        Err(refused) => {
            warn_refused(&refused, "compiled module refused; compiling it instead");
            None
        }
    }
}

fn warn_refused(refused: &cache::Refused, message: &'static str) {
    tracing::warn!(reason = %refused, "{message}");
}

/// The cache: `$LWS_CACHE/modules`, else `$HOME/.cache/lws/modules`, with its key in
/// `$XDG_CONFIG_HOME/lws/module-cache.key`, else `$HOME/.config/lws/module-cache.key`. A variable
/// that is empty or relative counts as unset (an empty `LWS_CACHE` once meant `./modules`, a
/// cache in whatever directory `lws` ran in); no key location means no cache.
fn cache_dir_of(
    lws_cache: Option<OsString>,
    xdg_config_home: Option<OsString>,
    home: Option<OsString>,
) -> Option<CacheDir> {
    let home = absolute(home);
    let dir = absolute(lws_cache)
        .map(|dir| dir.join("modules"))
        .or_else(|| home.as_ref().map(|home| home.join(".cache/lws/modules")))?;
    let config = absolute(xdg_config_home).or_else(|| home.map(|home| home.join(".config")))?;
    Some(CacheDir {
        dir,
        key_file: config.join("lws/module-cache.key"),
    })
}

/// `value` as a path, if it is set and absolute.
fn absolute(value: Option<OsString>) -> Option<PathBuf> {
    value.map(PathBuf::from).filter(|path| path.is_absolute())
}

/// Advances the engine's epoch so that every store's deadline is measured in real time.
fn spawn_epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("lws-epoch".to_string())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })
        .expect("spawning the epoch ticker thread");
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn load_error(error: wasmtime::Error) -> GuestError {
    GuestError::Load(format!("{error:#}"))
}

#[cfg(test)]
mod tests {
    use super::{cache_dir_of, CacheDir};
    use std::path::PathBuf;

    fn cache(dir: &str, key_file: &str) -> Option<CacheDir> {
        Some(CacheDir {
            dir: PathBuf::from(dir),
            key_file: PathBuf::from(key_file),
        })
    }

    #[test]
    fn empty_or_relative_variables_do_not_name_the_working_directory() {
        let some = |s: &str| Some(s.into());
        assert_eq!(
            cache_dir_of(some("/c"), None, some("/h")),
            cache("/c/modules", "/h/.config/lws/module-cache.key")
        );
        assert_eq!(
            cache_dir_of(some(""), some("/x"), some("/h")),
            cache("/h/.cache/lws/modules", "/x/lws/module-cache.key")
        );
        assert_eq!(
            cache_dir_of(some("c"), some("x"), some("/h")),
            cache("/h/.cache/lws/modules", "/h/.config/lws/module-cache.key")
        );
        assert_eq!(
            cache_dir_of(None, None, some("/h")),
            cache("/h/.cache/lws/modules", "/h/.config/lws/module-cache.key")
        );
        // A cache without a place for its key is no cache.
        assert_eq!(cache_dir_of(some("/c"), None, None), None);
        assert_eq!(cache_dir_of(some(""), some(""), some("")), None);
        assert_eq!(cache_dir_of(None, None, some("h")), None);
        assert_eq!(cache_dir_of(None, None, None), None);
    }
}
