import { type FSWatcher, watch } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { InvalidFileError, MechrouteError } from '../errors.js';
import { type Policy, PolicyKindSchema, PolicySchema } from '../policy/policy-schema.js';
import type { StateStore } from '../state/state-store.js';
import { formatIssues } from '../zod-issues.js';
import { unknownTierIssues } from './config-schema.js';
import { readStructuredFile } from './structured-file.js';

/**
 * The policy file: a versioned routing policy (YAML or JSON) that can be re-tuned or rolled back while
 * the server runs. The store holds the running policy and the ones before it (in the state file, when
 * given one, so rollback survives a restart); a reload that fails for any reason leaves the running
 * policy in place and reports why.
 */

/** The subset of a pino logger the store and the watcher use. */
export interface PolicyLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

type Issue = { code: 'custom'; path: (string | number)[]; message: string };

/**
 * A written policy must spell out the section its own kind routes by (and a cascade the section of its
 * starting rule): every section has defaults, so a file cut short before that section — a write still
 * in progress — would otherwise be a valid policy that routes on defaults nobody chose. `threshold: {}`
 * takes the defaults deliberately. Other kinds' sections stay optional: they only matter to requests
 * that switch kind.
 */
export function incompletePolicyIssues(value: unknown): Issue[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  const raw = value as Record<string, unknown>;
  const kind = PolicyKindSchema.safeParse(raw.kind);
  if (!kind.success) return []; // the schema reports it
  const start = (raw.cascade as { start?: unknown } | undefined)?.start ?? 'threshold';
  const needed = kind.data === 'cascade' ? ['cascade', start] : [kind.data];
  return needed
    .filter((section): section is string => typeof section === 'string' && raw[section] === undefined)
    .map((section) => ({
      code: 'custom',
      path: [section],
      message:
        `missing: a policy of kind ${kind.data} must write its ${section} section ` +
        `(\`${section}: {}\` for the defaults), or a file cut short would route on defaults`,
    }));
}

/** Validates a parsed policy; `knownTiers`, when given, must contain every tier it names. */
export function parsePolicy(value: unknown, file: string, knownTiers?: readonly string[]): Policy {
  const parsed = PolicySchema.safeParse(value);
  const issues = [...(parsed.success ? [] : parsed.error.issues), ...incompletePolicyIssues(value)];
  if (!parsed.success || issues.length > 0) throw new InvalidFileError('policy', file, formatIssues(issues));
  const unknown = knownTiers ? unknownTierIssues(parsed.data, knownTiers) : [];
  if (unknown.length > 0) throw new InvalidFileError('policy', file, formatIssues(unknown));
  return parsed.data;
}

export async function loadPolicyFile(file: string, knownTiers?: readonly string[]): Promise<Policy> {
  return parsePolicy(await readStructuredFile(file, 'policy'), file, knownTiers);
}

export type PolicyChange =
  | { ok: true; policy: Policy; changed: boolean; previous_version?: string }
  | { ok: false; policy: Policy; error: MechrouteError };

export interface PolicyStore {
  current(): Policy;
  /** Policies that were running before the current one, newest first. */
  history(): readonly Policy[];
  /** Makes `policy` current (validated against the known tiers). */
  set(policy: Policy, source?: string): PolicyChange;
  /** Reads, validates and installs the file; on any failure the running policy stays. */
  reload(file: string): Promise<PolicyChange>;
  /** Goes back to the policy before the current one. */
  rollback(): PolicyChange;
  /**
   * Installs the policy of a reloaded config whose tiers are `tiers` (validated against them, not the
   * running ones); on success, even when the policy is unchanged, those become the known tiers.
   */
  retier(policy: Policy, tiers: readonly string[], source: string): PolicyChange;
}

/** The part of the state store that keeps the policy history. */
export type PolicyHistoryStore = Pick<StateStore, 'loadPolicyStack' | 'savePolicyStack'>;

export interface PolicyStoreOptions {
  /** How many earlier policies are kept for rollback (default 10). */
  history?: number;
  /** Tier ids of the config; a policy naming any other tier is refused. */
  knownTiers?: readonly string[];
  logger?: PolicyLogger;
  /**
   * How `reload` reads a file (default: a policy file). A policy inline in the config is reloaded from
   * the config file with `policyFromConfigFile`.
   */
  load?: (file: string) => Promise<Policy>;
  /**
   * Keeps the history across restarts. At creation the stored history is read back and `initial` (the
   * policy the config names now) goes on top of it, unless it is already the running one there.
   */
  persist?: PolicyHistoryStore;
  /** Where `initial` came from, for messages (default "(config)"). */
  source?: string;
  /** Called after every change of the running policy (online learning snapshots per version). */
  onChange?: (change: { from: string; to: string; via: 'install' | 'rollback' }) => void;
}

/** JSON with sorted keys, so that reordering a file's keys is not mistaken for a policy change. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

const samePolicy = (a: Policy, b: Policy) => canonical(a) === canonical(b);

/**
 * Why `policy` may not be installed over `stack` (the running policy first): its version names a kept
 * policy with other content. The version is how a logged decision and the stats name a policy, so two
 * different policies must never share one.
 */
function versionClash(policy: Policy, stack: readonly Policy[]): string | undefined {
  const index = stack.findIndex((p) => p.version === policy.version && !samePolicy(p, policy));
  if (index < 0) return undefined;
  return index === 0
    ? `  - version: the policy changed but its version is still "${policy.version}"; give it a new version`
    : `  - version: "${policy.version}" is the version of another policy kept for rollback; give this one a new version`;
}

export function createPolicyStore(initial: Policy, options: PolicyStoreOptions = {}): PolicyStore {
  const limit = options.history ?? 10;
  const { logger, persist } = options;
  // Changed by a config reload that adds or removes tiers (`retier`).
  let knownTiers = options.knownTiers;
  const load = options.load ?? ((file: string) => loadPolicyFile(file, knownTiers));
  const tierIssues = (policy: Policy, tiers = knownTiers) => (tiers ? unknownTierIssues(policy, tiers) : []);
  // The running policy, then the ones before it, newest first.
  let stack: Policy[] = [initial];
  // Reloads run one at a time, in order: a file watcher and a SIGHUP may fire together.
  let queue: Promise<unknown> = Promise.resolve();

  /** Stores `next` (when persisting), then makes it the stack; a failed write changes nothing. */
  const commit = (next: Policy[]) => {
    persist?.savePolicyStack(next.map((p) => ({ version: p.version, content: p })));
    stack = next;
  };

  const reject = (error: MechrouteError, source: string): PolicyChange => {
    // A refused rollback is the caller's answer (409), not a fault of the server's files.
    const log = source === 'rollback' ? logger?.warn.bind(logger) : logger?.error.bind(logger);
    log?.(
      { err: error, source, policy_version: stack[0]!.version },
      `policy not changed: keeping version ${stack[0]!.version}`,
    );
    return { ok: false, policy: stack[0]!, error };
  };

  const install = (policy: Policy, source: string, tiers = knownTiers): PolicyChange => {
    const unknown = tierIssues(policy, tiers);
    if (unknown.length > 0)
      return reject(new InvalidFileError('policy', source, formatIssues(unknown)), source);
    const before = stack[0]!;
    if (samePolicy(policy, before)) return { ok: true, policy: before, changed: false };
    const clash = versionClash(policy, stack);
    if (clash) return reject(new InvalidFileError('policy', source, clash), source);
    try {
      commit([policy, ...stack].slice(0, limit + 1));
    } catch (error) {
      return reject(stateWriteError(error), source);
    }
    logger?.info(
      { source, policy_version: policy.version, previous_version: before.version, policy_kind: policy.kind },
      `policy version ${policy.version} installed`,
    );
    options.onChange?.({ from: before.version, to: policy.version, via: 'install' });
    return { ok: true, policy, changed: true, previous_version: before.version };
  };

  if (persist) {
    const source = options.source ?? '(config)';
    const stored = restoredStack(persist, (policy) => tierIssues(policy), logger);
    const clash = versionClash(initial, stored);
    if (clash) {
      throw new InvalidFileError(
        'policy',
        source,
        `${clash} (the state file holds the earlier policy under that version)`,
      );
    }
    const resumed = stored[0] !== undefined && samePolicy(stored[0], initial);
    commit(resumed ? stored.slice(0, limit + 1) : [initial, ...stored].slice(0, limit + 1));
    if (stored[0] && !resumed) {
      logger?.info(
        { source, policy_version: initial.version, previous_version: stored[0].version },
        `policy version ${initial.version} from the config replaces version ${stored[0].version} of the state file`,
      );
    }
  }

  return {
    current: () => stack[0]!,
    history: () => stack.slice(1),
    set: (policy, source = '(set)') => install(policy, source),
    retier(policy, tiers, source) {
      const change = install(policy, source, tiers);
      if (change.ok) knownTiers = [...tiers];
      return change;
    },
    reload(file) {
      const run = async (): Promise<PolicyChange> => {
        try {
          return install(await load(file), file);
        } catch (error) {
          if (error instanceof MechrouteError) return reject(error, file);
          throw error;
        }
      };
      const result = queue.then(run, run);
      queue = result.catch(() => undefined);
      return result;
    },
    rollback() {
      const [from, target] = stack;
      if (!target) {
        return reject(
          new MechrouteError('MR_ERR_NO_POLICY_HISTORY', 'no earlier policy to roll back to'),
          'rollback',
        );
      }
      const gone = tierIssues(target);
      if (gone.length > 0) {
        return reject(
          new InvalidFileError(
            'policy',
            `version ${target.version} (rollback)`,
            `${formatIssues(gone)}\n  (a config reload removed these tiers since it ran)`,
          ),
          'rollback',
        );
      }
      try {
        commit(stack.slice(1));
      } catch (error) {
        return reject(stateWriteError(error), 'rollback');
      }
      logger?.info(
        { source: 'rollback', policy_version: target.version, previous_version: from!.version },
        `policy rolled back to version ${target.version}`,
      );
      options.onChange?.({ from: from!.version, to: target.version, via: 'rollback' });
      return { ok: true, policy: target, changed: true, previous_version: from!.version };
    },
  };
}

const stateWriteError = (error: unknown) =>
  new MechrouteError('MR_ERR_STATE_WRITE', `the policy history could not be saved: ${String(error)}`, {
    cause: error,
  });

/**
 * The stored history, validated again: a policy that this version of mechroute no longer accepts, or
 * that names a tier the config has dropped, is left out (and logged) rather than offered for rollback.
 */
function restoredStack(
  persist: PolicyHistoryStore,
  tierIssues: (policy: Policy) => Issue[],
  logger: PolicyLogger | undefined,
): Policy[] {
  return persist.loadPolicyStack().flatMap(({ version, content }) => {
    const parsed = PolicySchema.safeParse(content);
    const issues = parsed.success ? tierIssues(parsed.data) : parsed.error.issues;
    if (parsed.success && issues.length === 0) return [parsed.data];
    logger?.error(
      { policy_version: version, problems: formatIssues(issues) },
      `stored policy version ${version} left out of the history: no longer valid`,
    );
    return [];
  });
}

export interface WatchPolicyOptions {
  /**
   * How long the file must stay unchanged (no change event, same size, mtime and inode) before it is
   * read (default 500 ms): editors and scripts write in bursts, and a file read mid-write is torn.
   */
  quiet_ms?: number;
  /** Also reload on SIGHUP (default true). */
  sighup?: boolean;
  /** Called after every reload attempt, e.g. to update metrics. */
  onReload?: (change: PolicyChange) => void;
}

/** What a change to the file changes: a rename over it makes a new inode, a write a new size or mtime. */
async function fileSignature(file: string): Promise<string> {
  try {
    const s = await stat(file, { bigint: true });
    return `${s.ino}:${s.size}:${s.mtimeNs}`;
  } catch {
    return 'missing';
  }
}

/**
 * Reloads `file` into `store` when it changes and on SIGHUP, once the file has stayed unchanged for
 * `quiet_ms`: every change event restarts the wait, and looks at the file `quiet_ms` apart must
 * agree. The read itself is refused if the file changes under it (`readStructuredFile`), and a policy
 * missing its kind's section is refused (`incompletePolicyIssues`), so a half-written file is never
 * installed — and so never blocks the finished file, which carries the same version.
 *
 * The directory is watched, not the file: a file replaced atomically (written beside it, then renamed
 * over it, as editors and config-management tools do) is a new inode, which a watch on the old file
 * would never report. `close()` stops both. `logger` gets the watcher's own messages; the outcome of
 * each reload is logged by the store (give it the same logger) and passed to `onReload`.
 */
export function watchPolicyFile(
  file: string,
  store: PolicyStore,
  logger: PolicyLogger,
  options: WatchPolicyOptions = {},
): { close(): void } {
  const { quiet_ms = 500, sighup = true, onReload } = options;
  const name = basename(file);
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  // Bumped by every change event: a look at the file started before the latest event is stale.
  let generation = 0;
  let trigger = '';

  const reload = () => {
    logger.info({ file, trigger }, 'reloading policy file');
    store.reload(file).then(
      (change) => onReload?.(change),
      (error: unknown) => logger.error({ err: error, file }, 'policy reload failed unexpectedly'),
    );
  };
  /** Reloads once a look `quiet_ms` after the last one, with no event between them, sees the same file. */
  const settle = (at: number, seen: string) => {
    timer = setTimeout(async () => {
      const now = await fileSignature(file);
      if (closed || at !== generation) return;
      if (now === seen) reload();
      else settle(at, now);
    }, quiet_ms);
  };
  const schedule = (why: string) => {
    if (closed) return;
    const at = ++generation;
    trigger = why;
    clearTimeout(timer);
    fileSignature(file).then((seen) => {
      if (!closed && at === generation) settle(at, seen);
    });
  };

  const watcher: FSWatcher = watch(dirname(file), { persistent: true }, (_event, changed) => {
    // Some platforms omit the name; then any change in the folder may be ours.
    if (changed === null || changed.toString() === name) schedule('file change');
  });
  watcher.on('error', (error) => logger.error({ err: error, file }, 'policy file watcher failed'));
  const onHangup = () => schedule('SIGHUP');
  if (sighup) process.on('SIGHUP', onHangup);

  return {
    close() {
      closed = true;
      clearTimeout(timer);
      watcher.close();
      if (sighup) process.off('SIGHUP', onHangup);
    },
  };
}
