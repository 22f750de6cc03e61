import type { LearningConfig } from '../config/config-schema.js';
import {
  applyCorrections,
  type Corrections,
  correctionNorm,
  type TierCorrection,
  updateCorrection,
} from '../learning/online-correction.js';
import type { StateStore } from '../state/state-store.js';

/**
 * The server's online learner: holds the live corrections (src/learning/online-correction.ts), applies
 * them to every decision, keeps each answered decision's uncorrected P for its later update, turns
 * feedback into bounded updates, and keeps a snapshot of the corrections per policy version so a policy
 * rollback restores what was learned under the version it returns to.
 *
 * Every write goes through the state store. The ones that belong to another write (a decision to its
 * answered request, an update to its outcome) are made inside the caller's transaction and return a
 * `commit` that changes memory only once that transaction has committed, so a failed write leaves memory
 * and file agreeing.
 */
export interface OnlineLearner {
  /** The tiers' P with the live corrections applied. */
  correct(tiers: Readonly<Record<string, number>>): Record<string, number>;
  /** Inside the answered request's transaction: keeps its uncorrected P per tier. */
  remember(requestId: string, decided: Readonly<Record<string, number>>, at: number): void;
  /**
   * Inside the outcome's transaction: one update of `tier` (the tier that answered) from the request's
   * kept decision. Undefined when there is nothing to learn (no decision kept, too old, no P for the tier).
   */
  learn(requestId: string, tier: string, success: boolean, at: number): (() => void) | undefined;
  /** After the policy changed: snapshot what `from` learned; on rollback, restore `to`'s snapshot. */
  policyChanged(from: string, to: string, via: 'install' | 'rollback', at: number): void;
  /** Every correction back to 0 (snapshots are kept, so a rollback can still restore one). */
  reset(): void;
  /**
   * Drops the corrections of `tiers`: tiers a reload removed or whose head it replaced, since what was
   * learned corrected the old head's P.
   */
  forget(tiers: readonly string[]): void;
  status(): LearningStatus;
  /** Decisions past retention go (called every so many answered requests). */
  prune(at: number): void;
}

export interface LearningStatus {
  online: true;
  settings: Pick<LearningConfig, 'learning_rate' | 'l2' | 'max_step'>;
  /** Feedback events applied per tier since the state file was created (never reset). */
  events_applied: Record<string, number>;
  tiers: Record<string, TierCorrection & { norm: number }>;
}

export interface LearnerLogger {
  info(obj: object, msg?: string): void;
}

const DAY_MS = 86_400_000;

export function createOnlineLearner(
  store: StateStore,
  config: LearningConfig,
  logger?: LearnerLogger,
): OnlineLearner {
  let corrections: Corrections = store.loadCorrections();
  const events = store.loadLearningEvents();

  const install = (next: Corrections) => {
    store.replaceCorrections(next);
    corrections = next;
  };

  return {
    correct: (tiers) => applyCorrections(tiers, corrections),
    remember(requestId, decided, at) {
      store.addDecision({ request_id: requestId, decided_at: at, p_success: { ...decided } });
    },
    learn(requestId, tier, success, at) {
      const decision = store.findDecision(requestId);
      if (!decision || decision.decided_at < at - config.retention.max_age_days * DAY_MS) return undefined;
      const update = updateCorrection(corrections[tier], decision.p_success, tier, success, config);
      if (!update) return undefined;
      store.saveCorrection(tier, update.correction);
      store.addLearningEvent(tier);
      return () => {
        corrections = { ...corrections, [tier]: update.correction };
        events[tier] = (events[tier] ?? 0) + 1;
      };
    },
    policyChanged(from, to, via, at) {
      const restored = store.transaction(() => {
        store.saveSnapshot(from, corrections, at);
        // A version that ran before learning was on learned nothing: its snapshot is no correction.
        const snapshot = via === 'rollback' ? (store.loadSnapshot(to) ?? {}) : undefined;
        if (snapshot) store.replaceCorrections(snapshot);
        store.pruneSnapshots();
        return snapshot;
      });
      if (restored) {
        corrections = restored;
        logger?.info({ policy_version: to }, 'online learning: corrections restored from the snapshot');
      }
    },
    reset() {
      install({});
      logger?.info({}, 'online learning: corrections reset');
    },
    forget(tiers) {
      const dropped = tiers.filter((t) => corrections[t] !== undefined);
      if (dropped.length === 0) return;
      install(Object.fromEntries(Object.entries(corrections).filter(([t]) => !dropped.includes(t))));
      logger?.info(
        { tiers: dropped },
        'online learning: corrections dropped (tier removed or its head replaced)',
      );
    },
    status() {
      return {
        online: true,
        settings: { learning_rate: config.learning_rate, l2: config.l2, max_step: config.max_step },
        events_applied: { ...events },
        tiers: Object.fromEntries(
          Object.entries(corrections).map(([id, c]) => [id, { ...c, norm: correctionNorm(c) }]),
        ),
      };
    },
    prune(at) {
      store.pruneDecisions(at - config.retention.max_age_days * DAY_MS, config.retention.max_decisions);
    },
  };
}
