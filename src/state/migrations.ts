/**
 * The state file's schema, as the ordered migrations that build it. `PRAGMA user_version` holds the
 * last one applied; a migration runs once, in its own transaction with the version bump. Never edit a
 * released migration: add the next one.
 */
export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'answered requests, stats counters, policy history',
    sql: `
      -- seq is insertion order, which is also answer-time order: pruning by age deletes a prefix.
      CREATE TABLE answered_requests (
        seq INTEGER PRIMARY KEY,
        request_id TEXT NOT NULL UNIQUE,
        tier TEXT NOT NULL,
        cost_usd REAL NOT NULL,
        latency_ms REAL NOT NULL,
        escalations INTEGER NOT NULL,
        fallback INTEGER NOT NULL,
        policy_version TEXT,
        task_class TEXT,
        answered_at INTEGER NOT NULL,
        success INTEGER,
        rated_at INTEGER
      );
      CREATE TABLE counters (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        requests INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL NOT NULL DEFAULT 0,
        escalated INTEGER NOT NULL DEFAULT 0,
        escalations INTEGER NOT NULL DEFAULT 0,
        fallbacks INTEGER NOT NULL DEFAULT 0,
        latency_ms_sum REAL NOT NULL DEFAULT 0,
        feedback INTEGER NOT NULL DEFAULT 0,
        successes INTEGER NOT NULL DEFAULT 0,
        feedback_cost_usd REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (scope, key)
      ) WITHOUT ROWID;
      CREATE TABLE policies (
        version TEXT PRIMARY KEY,
        content TEXT NOT NULL
      ) WITHOUT ROWID;
      -- position 0 is the running policy, 1 the one before it, and so on.
      CREATE TABLE policy_stack (
        position INTEGER PRIMARY KEY,
        version TEXT NOT NULL REFERENCES policies (version)
      );
    `,
  },
  {
    version: 2,
    description:
      'online learning: decisions kept for their update, corrections, snapshots per policy version',
    sql: `
      -- What a routed request's decision keeps for the update its feedback makes: the uncorrected
      -- P(success) per tier, as JSON. seq is decision order: pruning by age deletes a prefix.
      CREATE TABLE learning_decisions (
        seq INTEGER PRIMARY KEY,
        request_id TEXT NOT NULL UNIQUE,
        decided_at INTEGER NOT NULL,
        p_success TEXT NOT NULL
      );
      -- The live correction per tier: weights (JSON, keyed by head), bias, updates since reset/restore.
      CREATE TABLE learning_corrections (
        tier TEXT PRIMARY KEY,
        weights TEXT NOT NULL,
        bias REAL NOT NULL,
        updates INTEGER NOT NULL
      ) WITHOUT ROWID;
      -- The corrections as they were when a policy version stopped running (JSON of every tier's).
      CREATE TABLE learning_snapshots (
        policy_version TEXT PRIMARY KEY,
        corrections TEXT NOT NULL,
        taken_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      -- Feedback events applied per tier, cumulative (never reset: a metric, not model state).
      CREATE TABLE learning_events (
        tier TEXT PRIMARY KEY,
        applied INTEGER NOT NULL DEFAULT 0
      ) WITHOUT ROWID;
    `,
  },
];
