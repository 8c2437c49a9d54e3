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

use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{
    Caller, Config, Engine, InstancePre, Linker, Memory, Module, ResourceLimiter, Store, Trap,
    TypedFunc,
};

/// The module built from this source tree, embedded so `lws` needs no file beside it.
pub const EMBEDDED_MODULE: &[u8] = include_bytes!(env!("LWS_WASM_PATH"));

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

/// One engine and one compiled module, shared by every call in the process.
pub struct GuestRuntime {
    engine: Engine,
    instance_pre: InstancePre<CallState>,
    limits: Limits,
    sha256: String,
    ticker_stop: Arc<AtomicBool>,
}

impl GuestRuntime {
    /// Loads the module embedded in the binary.
    pub fn embedded(limits: Limits) -> Result<Self, GuestError> {
        Self::from_bytes(EMBEDDED_MODULE, limits)
    }

    /// Loads `bytes` as a module; the compiled code is cached on disk by the module's sha256.
    pub fn from_bytes(bytes: &[u8], limits: Limits) -> Result<Self, GuestError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(load_error)?;
        let sha256 = sha256_hex(bytes);
        let module = compile_cached(&engine, bytes, &sha256)?;
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
            ticker_stop,
        })
    }

    /// The sha256 of the module this runtime runs, in hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
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
            let (operation, payload) = {
                let state = caller.data();
                (state.operation.clone(), state.payload.clone())
            };
            memory.write(&mut caller, operation_ptr as u32 as usize, &operation)?;
            memory.write(&mut caller, payload_ptr as u32 as usize, &payload)?;
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

/// Compiles the module, or loads the code compiled earlier for the same bytes and engine.
fn compile_cached(engine: &Engine, bytes: &[u8], sha256: &str) -> Result<Module, GuestError> {
    let Some(dir) = cache_dir() else {
        return Module::new(engine, bytes).map_err(load_error);
    };
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    let engine_key = std::hash::Hasher::finish(&hasher);
    let path = dir.join(format!("{sha256}-{engine_key:016x}.cwasm"));
    if path.exists() {
        // SAFETY: the file was written by `precompile_module` of an engine with the same
        // compatibility hash, under a name that pins the source module's sha256.
        if let Ok(module) = unsafe { Module::deserialize_file(engine, &path) } {
            return Ok(module);
        }
    }
    let module = Module::new(engine, bytes).map_err(load_error)?;
    if let Ok(compiled) = module.serialize() {
        // A cache that cannot be written only costs the next start a compile.
        let _ = std::fs::create_dir_all(&dir);
        let temporary = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&temporary, compiled).is_ok() {
            let _ = std::fs::rename(&temporary, &path);
        }
    }
    Ok(module)
}

fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LWS_CACHE") {
        return Some(PathBuf::from(dir).join("modules"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/lws/modules"))
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
