import type { Llama } from 'node-llama-cpp';
import type { TierConfig } from '../config/config-schema.js';
import type { CallOptions, GenerateResult, StreamPart, TierModel, TierRequest } from './tier-model.js';

/**
 * Tiers come as the config schema produces them (defaults applied: timeout_ms, max_retries, cooldown).
 * Local tiers name a model manifest (or a `.gguf` path) and run in this process; openai tiers list
 * deployments tried in order.
 */
export type { TierConfig };

/** node-llama-cpp settings of local tiers, which are the host's business rather than the config's. */
export interface LocalTierSettings {
  /** Concurrent generations per local tier. Default 4. */
  sequences?: number;
  /** Per-sequence context, capped further by the tier's context_window. Default 4096. */
  contextSize?: number;
  threads?: number;
  maxQueue?: number;
}

export interface TierLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface TierClock {
  now(): number;
  /** Rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export interface TierPoolDeps {
  env?: NodeJS.ProcessEnv;
  fetch?: typeof fetch;
  logger?: TierLogger;
  clock?: TierClock;
  random?: () => number;
  /** The process's node-llama-cpp instance for local tiers (default: the encoder's). */
  llama?: Llama;
  /** Replaces local model loading (tests, or a server that shares one already loaded). */
  createLocalModel?: (tier: TierConfig) => Promise<TierModel & { dispose?(): Promise<void> }>;
  local?: LocalTierSettings;
  /** Until the first byte of a remote answer; default: the tier's timeout_ms. */
  firstByteTimeoutMs?: number;
  backoff?: { baseMs: number; maxMs: number };
  /** A longer `retry-after` is not waited out: the deployment is parked that long and the next one tried. */
  maxRetryAfterMs?: number;
}

export interface TierAvailability {
  available: boolean;
  reason: string;
  /** When unavailable only for a while: how long until a deployment may be tried again. */
  retry_after_ms?: number;
}

export interface DeploymentStatus {
  id: string;
  state: 'closed' | 'open' | 'half-open';
  consecutive_failures: number;
  /** Environment variables it needs that are unset (names only). */
  missing_env: string[];
}

/** A new tier list, its runtimes built but not yet serving (see `TierPool.prepare`). */
export interface PoolChange {
  added: string[];
  removed: string[];
  /** Tiers kept under their id with other settings: a new runtime; the old one drains. */
  replaced: string[];
  /** Makes the new list the pool's: synchronous, so no call sees half of it. */
  commit(): void;
  /** Releases what was built for a change that will not be committed. */
  discard(): Promise<void>;
}

export interface TierPool {
  /** The tiers serving now, in config order. */
  readonly ids: readonly string[];
  /** A tier as a TierModel: failover, retries and breakers included. @throws UnknownTierError */
  tier(id: string): TierModel;
  generate(id: string, request: TierRequest, options?: CallOptions): Promise<GenerateResult>;
  stream(id: string, request: TierRequest, options?: CallOptions): AsyncIterable<StreamPart>;
  availability(): Record<string, TierAvailability>;
  deployments(id: string): DeploymentStatus[];
  /**
   * Builds what serving `tiers` needs (new and changed tiers) without touching the running pool. On
   * `commit` calls already in progress on a removed or replaced tier finish on it; new calls see only
   * the new list (a removed id is an unknown tier); the old runtime is disposed once its last call ends.
   */
  prepare(tiers: readonly TierConfig[]): Promise<PoolChange>;
  /** Tiers taken out by a reload that still have calls in progress. */
  draining(): { id: string; in_flight: number }[];
  close(): Promise<void>;
}
