import type { Corrections, TierCorrection } from '../learning/online-correction.js';
import type { AnsweredRequest, CounterDelta } from './outcome-stats.js';

/**
 * What the server keeps across restarts: answered requests (so `/v1/feedback` can rate them later),
 * the cumulative stats counters, and the policy history behind rollback. A thin store: it reads and
 * writes rows and knows no stats or policy rules; those stay pure (`outcome-stats.ts`, `policy-file.ts`).
 *
 * Every write commits before the call returns. Writes that belong together (a request and its counters,
 * an outcome and its counters) go through `transaction`, so a crash leaves both or neither. Online
 * learning's decisions, corrections and snapshots (migration 2) are written in the same `transaction`
 * as the answered request or the outcome that taught them.
 */
export interface StateStore {
  /** The SQLite file. */
  readonly path: string;
  /** Runs `fn` as one transaction: everything it writes commits together, or nothing if it throws. */
  transaction<T>(fn: () => T): T;

  addAnswered(request: AnsweredRequest): void;
  findAnswered(requestId: string): StoredRequest | undefined;
  /** Records the outcome reported for an answered request. */
  rateAnswered(requestId: string, success: boolean, at: number): void;
  /**
   * Deletes answered requests older than `before` (epoch ms) and all but the newest `keep`.
   * @returns how many were deleted
   */
  pruneAnswered(before: number, keep: number): number;

  /** Adds deltas to the counter rows (creating missing rows at zero). */
  addCounters(deltas: readonly CounterDelta[]): void;
  /** Every counter row, as a delta from zero. */
  loadCounters(): CounterDelta[];

  /** The running policy first, then the ones before it, newest first. */
  loadPolicyStack(): StoredPolicy[];
  /** Replaces the stored stack; versions no longer on it are forgotten. */
  savePolicyStack(stack: readonly StoredPolicy[]): void;

  /** Keeps what a decision's later update needs (online learning). */
  addDecision(decision: StoredDecision): void;
  findDecision(requestId: string): StoredDecision | undefined;
  /** Deletes decisions older than `before` (epoch ms) and all but the newest `keep`. */
  pruneDecisions(before: number, keep: number): number;
  loadCorrections(): Record<string, TierCorrection>;
  saveCorrection(tier: string, correction: TierCorrection): void;
  /** Replaces every live correction (a reset, or a snapshot restored). */
  replaceCorrections(corrections: Corrections): void;
  /** The corrections as they were when `version` stopped running (replacing an older snapshot of it). */
  saveSnapshot(version: string, corrections: Corrections, at: number): void;
  loadSnapshot(version: string): Record<string, TierCorrection> | undefined;
  /** Snapshots of versions no longer in the policy history go. */
  pruneSnapshots(): void;
  addLearningEvent(tier: string): void;
  loadLearningEvents(): Record<string, number>;

  close(): void;
}

/** A routed decision as online learning keeps it: the uncorrected P(success) per tier. */
export interface StoredDecision {
  request_id: string;
  decided_at: number;
  p_success: Record<string, number>;
}

/** An answered request, with its outcome once one was reported. */
export interface StoredRequest extends AnsweredRequest {
  success?: boolean;
  rated_at?: number;
}

/** A policy as stored: its version and its parsed content (validated again when read back). */
export interface StoredPolicy {
  version: string;
  content: unknown;
}
