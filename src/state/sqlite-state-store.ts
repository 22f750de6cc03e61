import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { correctionsFromJson, type TierCorrection } from '../learning/online-correction.js';
import { MIGRATIONS, type Migration } from './migrations.js';
import {
  type AnsweredRequest,
  COUNTER_FIELDS,
  type CounterDelta,
  type CounterScope,
  type Counters,
} from './outcome-stats.js';
import { NotAStateFileError, StateFileBusyError, StateSchemaTooNewError } from './state-errors.js';
import type { StateStore, StoredPolicy } from './state-store.js';

/** 'mrst' in ASCII: marks the file as mechroute's, so that another SQLite file is never migrated. */
const APPLICATION_ID = 0x6d727374;

export interface SqliteStateOptions {
  /**
   * `normal` (default): a commit survives the process crashing at any point; an OS crash or power cut
   * may lose the commits since the last WAL checkpoint (at most ~1000 pages, a few thousand records).
   * `full`: every commit is fsynced and survives a power cut, at one fsync per answered request.
   */
  synchronous?: 'normal' | 'full';
  /** The schema (default: mechroute's); tests pass a longer list to check how a later one applies. */
  migrations?: readonly Migration[];
}

interface RequestRow {
  request_id: string;
  tier: string;
  cost_usd: number;
  latency_ms: number;
  escalations: number;
  fallback: number;
  policy_version: string | null;
  task_class: string | null;
  answered_at: number;
  success: number | null;
  rated_at: number | null;
}

type CounterRow = { scope: CounterScope; key: string } & Counters;

const isSqliteError = (error: unknown, ...codes: string[]): boolean =>
  error instanceof Database.SqliteError && codes.includes(error.code);

/**
 * Opens (creating it and its folder if needed) the state file: SQLite in WAL mode, migrated to the
 * latest schema. The connection holds an exclusive lock until `close()`, so a second server on the same
 * file fails at start with `StateFileBusyError` instead of splitting the counters between two processes;
 * the lock dies with the process, so a crashed server never blocks its successor.
 */
export function openStateStore(path: string, options: SqliteStateOptions = {}): StateStore {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { timeout: 1000 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL'); // the first read: takes the lock
    db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    migrate(db, path, options.migrations ?? MIGRATIONS);
  } catch (error) {
    db.close();
    if (isSqliteError(error, 'SQLITE_BUSY', 'SQLITE_LOCKED')) throw new StateFileBusyError(path);
    if (isSqliteError(error, 'SQLITE_NOTADB', 'SQLITE_CORRUPT'))
      throw new NotAStateFileError(path, (error as Error).message);
    throw error;
  }
  return createStore(db, path);
}

function migrate(db: Database.Database, path: string, migrations: readonly Migration[]): void {
  const applicationId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  const fresh = version === 0 && db.prepare('SELECT count(*) AS n FROM sqlite_schema').pluck().get() === 0;
  if (applicationId !== APPLICATION_ID && !(applicationId === 0 && fresh)) {
    throw new NotAStateFileError(path, 'another program’s SQLite database');
  }
  const latest = migrations.at(-1)?.version ?? 0;
  if (version > latest) throw new StateSchemaTooNewError(path, version, latest);
  for (const migration of migrations.filter((m) => m.version > version)) {
    db.transaction(() => {
      db.exec(migration.sql);
      db.pragma(`application_id = ${APPLICATION_ID}`);
      db.pragma(`user_version = ${migration.version}`);
    })();
  }
}

/**
 * Pruning for a table whose `seq` order is also time order: everything older than `before` and all but
 * the newest `keep` rows go, which is always a prefix, so only the rows that go are read.
 */
function pruneInOrder(
  db: Database.Database,
  table: 'answered_requests' | 'learning_decisions',
  timeColumn: 'answered_at' | 'decided_at',
): (before: number, keep: number) => number {
  const lastSeq = db.prepare(`SELECT max(seq) FROM ${table}`).pluck();
  // Rows are in time order: this reads only the rows that are about to go.
  const firstYoungSeq = db
    .prepare(`SELECT seq FROM ${table} WHERE ${timeColumn} >= ? ORDER BY seq LIMIT 1`)
    .pluck();
  const deleteBefore = db.prepare(`DELETE FROM ${table} WHERE seq < ?`);
  return (before, keep) => {
    const last = lastSeq.get() as number | null;
    if (last === null) return 0;
    const young = firstYoungSeq.get(before) as number | undefined;
    return deleteBefore.run(Math.max(young ?? last + 1, last - keep + 1)).changes;
  };
}

function createStore(db: Database.Database, path: string): StateStore {
  const insertRequest = db.prepare(
    `INSERT INTO answered_requests
       (request_id, tier, cost_usd, latency_ms, escalations, fallback, policy_version, task_class, answered_at)
     VALUES (@request_id, @tier, @cost_usd, @latency_ms, @escalations, @fallback, @policy_version, @task_class,
       @answered_at)`,
  );
  const selectRequest = db.prepare<[string], RequestRow>(
    `SELECT request_id, tier, cost_usd, latency_ms, escalations, fallback, policy_version, task_class,
       answered_at, success, rated_at
     FROM answered_requests WHERE request_id = ?`,
  );
  const rateRequest = db.prepare(
    'UPDATE answered_requests SET success = ?, rated_at = ? WHERE request_id = ?',
  );

  const columns = COUNTER_FIELDS.join(', ');
  const addCounter = db.prepare(
    `INSERT INTO counters (scope, key, ${columns})
     VALUES (@scope, @key, ${COUNTER_FIELDS.map((f) => `@${f}`).join(', ')})
     ON CONFLICT (scope, key) DO UPDATE SET ${COUNTER_FIELDS.map((f) => `${f} = ${f} + excluded.${f}`).join(', ')}`,
  );
  const selectCounters = db.prepare<[], CounterRow>(`SELECT scope, key, ${columns} FROM counters`);

  const selectStack = db.prepare<[], { version: string; content: string }>(
    `SELECT s.version, p.content FROM policy_stack s JOIN policies p ON p.version = s.version
     ORDER BY s.position`,
  );
  const clearStack = db.prepare('DELETE FROM policy_stack');
  const upsertPolicy = db.prepare(
    'INSERT INTO policies (version, content) VALUES (?, ?) ON CONFLICT (version) DO UPDATE SET content = excluded.content',
  );
  const pushStack = db.prepare('INSERT INTO policy_stack (position, version) VALUES (?, ?)');
  const dropUnstacked = db.prepare(
    'DELETE FROM policies WHERE version NOT IN (SELECT version FROM policy_stack)',
  );

  const insertDecision = db.prepare(
    'INSERT OR REPLACE INTO learning_decisions (request_id, decided_at, p_success) VALUES (?, ?, ?)',
  );
  const selectDecision = db.prepare<[string], { decided_at: number; p_success: string }>(
    'SELECT decided_at, p_success FROM learning_decisions WHERE request_id = ?',
  );
  const selectCorrections = db.prepare<[], { tier: string; weights: string; bias: number; updates: number }>(
    'SELECT tier, weights, bias, updates FROM learning_corrections ORDER BY tier',
  );
  const upsertCorrection = db.prepare(
    `INSERT INTO learning_corrections (tier, weights, bias, updates) VALUES (?, ?, ?, ?)
     ON CONFLICT (tier) DO UPDATE SET weights = excluded.weights, bias = excluded.bias, updates = excluded.updates`,
  );
  const clearCorrections = db.prepare('DELETE FROM learning_corrections');
  const upsertSnapshot = db.prepare(
    `INSERT INTO learning_snapshots (policy_version, corrections, taken_at) VALUES (?, ?, ?)
     ON CONFLICT (policy_version) DO UPDATE SET corrections = excluded.corrections, taken_at = excluded.taken_at`,
  );
  const selectSnapshot = db
    .prepare<[string], string>('SELECT corrections FROM learning_snapshots WHERE policy_version = ?')
    .pluck();
  const dropOrphanSnapshots = db.prepare(
    'DELETE FROM learning_snapshots WHERE policy_version NOT IN (SELECT version FROM policies)',
  );
  const addEvent = db.prepare(
    `INSERT INTO learning_events (tier, applied) VALUES (?, 1)
     ON CONFLICT (tier) DO UPDATE SET applied = applied + 1`,
  );
  const selectEvents = db.prepare<[], { tier: string; applied: number }>(
    'SELECT tier, applied FROM learning_events',
  );

  const transaction = <T>(fn: () => T): T => db.transaction(fn)();
  const correctionRow = (tier: string, c: TierCorrection) =>
    upsertCorrection.run(tier, JSON.stringify(c.weights), c.bias, c.updates);

  return {
    path,
    transaction,
    addAnswered(request: AnsweredRequest) {
      insertRequest.run({
        ...request,
        fallback: request.fallback ? 1 : 0,
        policy_version: request.policy_version ?? null,
        task_class: request.task_class ?? null,
      });
    },
    findAnswered(requestId) {
      const row = selectRequest.get(requestId);
      if (!row) return undefined;
      const { fallback, policy_version, task_class, success, rated_at, ...rest } = row;
      return {
        ...rest,
        fallback: fallback === 1,
        ...(policy_version === null ? {} : { policy_version }),
        ...(task_class === null ? {} : { task_class }),
        ...(success === null ? {} : { success: success === 1 }),
        ...(rated_at === null ? {} : { rated_at }),
      };
    },
    rateAnswered(requestId, success, at) {
      rateRequest.run(success ? 1 : 0, at, requestId);
    },
    pruneAnswered: pruneInOrder(db, 'answered_requests', 'answered_at'),
    addCounters(deltas: readonly CounterDelta[]) {
      transaction(() => {
        for (const { scope, key, add } of deltas) {
          addCounter.run({
            scope,
            key,
            ...Object.fromEntries(COUNTER_FIELDS.map((f) => [f, add[f] ?? 0])),
          });
        }
      });
    },
    loadCounters() {
      return selectCounters.all().map(({ scope, key, ...add }) => ({ scope, key, add }));
    },
    loadPolicyStack() {
      return selectStack.all().map((row) => ({ version: row.version, content: JSON.parse(row.content) }));
    },
    savePolicyStack(stack: readonly StoredPolicy[]) {
      transaction(() => {
        clearStack.run();
        for (const [position, policy] of stack.entries()) {
          upsertPolicy.run(policy.version, JSON.stringify(policy.content));
          pushStack.run(position, policy.version);
        }
        dropUnstacked.run();
      });
    },
    addDecision(decision) {
      insertDecision.run(decision.request_id, decision.decided_at, JSON.stringify(decision.p_success));
    },
    findDecision(requestId) {
      const row = selectDecision.get(requestId);
      if (!row) return undefined;
      return { request_id: requestId, decided_at: row.decided_at, p_success: JSON.parse(row.p_success) };
    },
    pruneDecisions: pruneInOrder(db, 'learning_decisions', 'decided_at'),
    loadCorrections() {
      return correctionsFromJson(
        Object.fromEntries(
          selectCorrections
            .all()
            .map((r) => [r.tier, { weights: JSON.parse(r.weights), bias: r.bias, updates: r.updates }]),
        ),
      );
    },
    saveCorrection(tier, correction) {
      correctionRow(tier, correction);
    },
    replaceCorrections(corrections) {
      transaction(() => {
        clearCorrections.run();
        for (const [tier, c] of Object.entries(corrections)) correctionRow(tier, c);
      });
    },
    saveSnapshot(version, corrections, at) {
      upsertSnapshot.run(version, JSON.stringify(corrections), at);
    },
    loadSnapshot(version) {
      const text = selectSnapshot.get(version) as string | undefined;
      return text === undefined ? undefined : correctionsFromJson(JSON.parse(text));
    },
    pruneSnapshots() {
      dropOrphanSnapshots.run();
    },
    addLearningEvent(tier) {
      addEvent.run(tier);
    },
    loadLearningEvents() {
      return Object.fromEntries(selectEvents.all().map((r) => [r.tier, r.applied]));
    },
    close() {
      if (db.open) db.close();
    },
  };
}
