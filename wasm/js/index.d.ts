/** A `{path, message}` problem, the same line `lws validate` prints. */
export interface Problem {
  path: string;
  message: string;
}

/** A Kubernetes object as plain JSON. */
export type KubeObject = { apiVersion: string; kind: string; metadata?: Record<string, unknown>; [field: string]: unknown };

/** The answer of `expand`. */
export type Expansion = { apiVersion: "v1"; kind: "List"; items: KubeObject[] } | { problems: Problem[] };

/** The answer of `defaults`. */
export type Defaulted = { lws: KubeObject } | { problems: Problem[] };

/** Instantiates lws.wasm; by default the copy beside this file. */
export function load(source?: URL | string | Response | ArrayBuffer | ArrayBufferView | WebAssembly.Module): Promise<Lws>;

/** One loaded module. */
export declare class Lws {
  constructor(module: WebAssembly.Module);
  /** The raw waPC call. */
  callBytes(operation: string, payload: Uint8Array): Uint8Array;
  /** An operation with a JSON value in and out. */
  call(operation: string, input: unknown): unknown;
  expand(lws: unknown): Expansion;
  validate(lws: unknown, old?: unknown): Problem[];
  defaults(lws: unknown): Defaulted;
}
