import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { InvalidFileError, MechrouteError } from '../errors.js';
import { type Policy, PolicySchema } from '../policy/policy-schema.js';
import { formatIssues } from '../zod-issues.js';
import { unknownTierIssues } from './config-schema.js';
import { readStructuredFile } from './structured-file.js';

/**
 * The policy file: a versioned routing policy (YAML or JSON) that can be re-tuned or rolled back while
 * the server runs. The store holds the running policy and the ones before it; a reload that fails for
 * any reason leaves the running policy in place and reports why.
 */

/** The subset of a pino logger the store and the watcher use. */
export interface PolicyLogger {
  info(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Validates a parsed policy; `knownTiers`, when given, must contain every tier it names. */
export function parsePolicy(value: unknown, file: string, knownTiers?: readonly string[]): Policy {
  const parsed = PolicySchema.safeParse(value);
  if (!parsed.success) throw new InvalidFileError('policy', file, formatIssues(parsed.error.issues));
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
}

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
}

/** JSON with sorted keys, so that reordering a file's keys is not mistaken for a policy change. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

export function createPolicyStore(initial: Policy, options: PolicyStoreOptions = {}): PolicyStore {
  const limit = options.history ?? 10;
  const { knownTiers, logger } = options;
  const load = options.load ?? ((file: string) => loadPolicyFile(file, knownTiers));
  let current = initial;
  const previous: Policy[] = [];
  // Reloads run one at a time, in order: a file watcher and a SIGHUP may fire together.
  let queue: Promise<unknown> = Promise.resolve();

  const reject = (error: MechrouteError, source: string): PolicyChange => {
    logger?.error(
      { err: error, source, policy_version: current.version },
      `policy not changed: keeping version ${current.version}`,
    );
    return { ok: false, policy: current, error };
  };

  const install = (policy: Policy, source: string): PolicyChange => {
    const unknown = knownTiers ? unknownTierIssues(policy, knownTiers) : [];
    if (unknown.length > 0)
      return reject(new InvalidFileError('policy', source, formatIssues(unknown)), source);
    if (canonical(policy) === canonical(current)) return { ok: true, policy: current, changed: false };
    // The version is how a logged decision names its policy; two different policies must not share one.
    if (policy.version === current.version) {
      const details = `  - version: the policy changed but its version is still "${policy.version}"; give it a new version`;
      return reject(new InvalidFileError('policy', source, details), source);
    }
    const before = current;
    previous.unshift(before);
    previous.splice(limit);
    current = policy;
    logger?.info(
      { source, policy_version: policy.version, previous_version: before.version, policy_kind: policy.kind },
      `policy version ${policy.version} installed`,
    );
    return { ok: true, policy, changed: true, previous_version: before.version };
  };

  return {
    current: () => current,
    history: () => [...previous],
    set: (policy, source = '(set)') => install(policy, source),
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
      const target = previous.shift();
      if (!target) {
        return reject(
          new MechrouteError('MR_ERR_NO_POLICY_HISTORY', 'no earlier policy to roll back to'),
          'rollback',
        );
      }
      const from = current;
      current = target;
      logger?.info(
        { source: 'rollback', policy_version: target.version, previous_version: from.version },
        `policy rolled back to version ${target.version}`,
      );
      return { ok: true, policy: target, changed: true, previous_version: from.version };
    },
  };
}

export interface WatchPolicyOptions {
  /** Quiet time after the last change before reloading (default 200 ms): editors write in bursts. */
  debounce_ms?: number;
  /** Also reload on SIGHUP (default true). */
  sighup?: boolean;
  /** Called after every reload attempt, e.g. to update metrics. */
  onReload?: (change: PolicyChange) => void;
}

/**
 * Reloads `file` into `store` when it changes and on SIGHUP. The directory is watched, not the file:
 * a file replaced atomically (written beside it, then renamed over it, as editors and config-management
 * tools do) is a new inode, which a watch on the old file would never report. `close()` stops both.
 * `logger` gets the watcher's own messages; the outcome of each reload is logged by the store (give it
 * the same logger) and passed to `onReload`.
 */
export function watchPolicyFile(
  file: string,
  store: PolicyStore,
  logger: PolicyLogger,
  options: WatchPolicyOptions = {},
): { close(): void } {
  const { debounce_ms = 200, sighup = true, onReload } = options;
  const name = basename(file);
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const reload = (trigger: string) => {
    if (closed) return;
    logger.info({ file, trigger }, 'reloading policy file');
    store.reload(file).then(
      (change) => onReload?.(change),
      (error: unknown) => logger.error({ err: error, file }, 'policy reload failed unexpectedly'),
    );
  };
  const schedule = (trigger: string) => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => reload(trigger), debounce_ms);
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
