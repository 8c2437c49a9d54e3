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

/** Where one pod lands; no `node` when it cannot be placed. */
export interface PodPlacement {
  name: string;
  node?: string;
  subgroup?: number;
}

/** Where one group lands; `reason` says plainly why it (or a pod of it) cannot be placed. */
export interface GroupPlacement {
  index: number;
  /** The value of the exclusive-topology label the group took. */
  domain?: string;
  subgroups?: { index: number; domain?: string }[];
  pods: PodPlacement[];
  placed: boolean;
  reason?: string;
}

/** The answer of `placement`. */
export interface Placement {
  exclusiveTopology?: string;
  subgroupExclusiveTopology?: string;
  groups: GroupPlacement[];
  problems?: Problem[];
}

/** A node for `placement`: a Node object, or the short form. */
export type PlacementNode = KubeObject | { name: string; labels?: Record<string, string>; pods?: number | string; cpu?: number | string };

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
  placement(lws: unknown, nodes: PlacementNode[] | { items: PlacementNode[] }): Placement;
}
