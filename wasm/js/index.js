// Loader for lws.wasm: instantiates the module, plays the waPC host, and exposes the
// module's operations as functions on plain objects. No dependencies, no network beyond
// fetching the module from where the caller says it is.

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * Instantiates lws.wasm from a URL, a Response, bytes or a compiled WebAssembly.Module.
 * Defaults to `lws.wasm` beside this file.
 */
export async function load(source = new URL("./lws.wasm", import.meta.url)) {
  const module = await compile(source);
  return new Lws(module);
}

async function compile(source) {
  if (source instanceof WebAssembly.Module) return source;
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) {
    return WebAssembly.compile(source);
  }
  const response = source instanceof Response ? source : await fetch(source);
  if (!response.ok) throw new Error(`fetching lws.wasm: HTTP ${response.status}`);
  return WebAssembly.compile(await response.arrayBuffer());
}

/** One loaded module. Calls are synchronous; an instance that trapped is replaced. */
export class Lws {
  constructor(module) {
    this.module = module;
    this.instance = null;
  }

  /** The raw waPC call: operation name and payload bytes in, response bytes out. */
  callBytes(operation, payload) {
    const instance = this.instance ?? this.#instantiate();
    const state = this.state;
    state.operation = encoder.encode(operation);
    state.payload = payload;
    state.response = null;
    state.error = null;
    let ok;
    try {
      ok = instance.exports.__guest_call(state.operation.length, payload.length);
    } catch (trap) {
      this.instance = null; // a trapped instance may be left inconsistent
      throw new Error(`lws.wasm trapped in ${operation}: ${trap.message}`);
    }
    if (ok === 1 && state.response) return state.response;
    const message = state.error ? decoder.decode(state.error) : "failed without a message";
    throw new Error(`lws.wasm ${operation}: ${message}`);
  }

  /** Calls an operation with a JSON value and returns the parsed answer. */
  call(operation, input) {
    const payload = encoder.encode(JSON.stringify(input));
    return JSON.parse(decoder.decode(this.callBytes(operation, payload)));
  }

  /** Every object a LeaderWorkerSet becomes: `{apiVersion:"v1", kind:"List", items}`, or `{problems}`. */
  expand(lws) {
    return this.call("expand", lws);
  }

  /** Problems with a LeaderWorkerSet (and the change from `old`): `[{path, message}]`, empty when valid. */
  validate(lws, old) {
    return this.call("validate_lws", old === undefined ? { lws } : { lws, old }).problems;
  }

  /** The LeaderWorkerSet with every default filled, or `{problems}`. */
  defaults(lws) {
    return this.call("default", lws);
  }

  /**
   * Where each group's pods would land on `nodes` (Node objects as `kubectl get nodes -o json`
   * lists them, that List itself, or `{name, labels, pods?, cpu?}`), under exclusive and
   * subgroup-exclusive topology: `{groups: [{index, domain?, pods, placed, reason?}], problems?}`.
   */
  placement(lws, nodes) {
    return this.call("placement", { lws, nodes });
  }

  #instantiate() {
    const state = { operation: null, payload: null, response: null, error: null };
    let memory = null;
    const bytes = (ptr, len) => new Uint8Array(memory.buffer, ptr, len).slice();
    const imports = {
      wapc: {
        __guest_request(operationPtr, payloadPtr) {
          new Uint8Array(memory.buffer, operationPtr, state.operation.length).set(state.operation);
          new Uint8Array(memory.buffer, payloadPtr, state.payload.length).set(state.payload);
        },
        __guest_response(ptr, len) {
          state.response = bytes(ptr, len);
        },
        __guest_error(ptr, len) {
          state.error = bytes(ptr, len);
        },
      },
    };
    const instance = new WebAssembly.Instance(this.module, imports);
    memory = instance.exports.memory;
    instance.exports.wapc_init();
    this.state = state;
    this.instance = instance;
    return instance;
  }
}
