import { type LoadedConfig, loadConfig } from '../config/config-loader.js';
import type { PolicyChange, PolicyStore } from '../config/policy-file.js';
import { MechrouteError, ReloadRefusedError } from '../errors.js';
import {
  type BundleEncoder,
  loadProbeBundle,
  type ProbeBundle,
  probedTiers,
} from '../probes/probe-bundle.js';
import type { TierPool } from '../tiers/tier-pool.js';

/**
 * A config reload without a restart (SIGHUP, `POST /admin/reload`): the tiers, the probe bundle and the
 * policy are read again and swapped in together, so a tier added with its head in a new bundle is routed
 * to from the next decision, and a removed tier drains (its calls in progress finish; no new decision
 * picks it). Everything is loaded and checked before anything changes; any failure leaves the running
 * config, bundle, policy and pool exactly as they were.
 *
 * Sections that hold process resources (server, encoder, state, steps, text_embedding, advisor, mode,
 * policy_history, learning) need a restart: a change there is reported, not applied.
 */

/** What a reload may replace; the services hold it and read it on every request. */
export interface LiveConfig {
  config: LoadedConfig;
  bundle: ProbeBundle;
}

export interface ReloadDeps {
  live: () => LiveConfig;
  /** Makes the loaded config and bundle the live ones (after the pool and policy took theirs). */
  install: (next: LiveConfig) => void;
  pool: Pick<TierPool, 'prepare' | 'draining'>;
  policies: Pick<PolicyStore, 'retier'>;
  /** The running encoder: a bundle for another model or prompt window is refused. */
  encoder: BundleEncoder;
  logger?: { info(obj: object, msg?: string): void; error(obj: object, msg?: string): void };
}

export interface ReloadResult {
  tiers: string[];
  added: string[];
  removed: string[];
  /** Kept under their id with changed settings (new runtime; the old one drains). */
  replaced: string[];
  draining: { id: string; in_flight: number }[];
  probes: string;
  policy_version: string;
  policy_changed: boolean;
  /** Changed sections that only a restart applies. */
  restart_required: string[];
}

const RESTART_ONLY = [
  'server',
  'encoder',
  'state',
  'steps',
  'text_embedding',
  'advisor',
  'mode',
  'policy_history',
  'learning',
] as const;

/**
 * Tiers the reload would leave without the head they need: a new tier, or one whose head the new bundle
 * drops. A tier that ran without a head before (its P comes from elsewhere, or it is never predicted
 * to succeed) may go on without one.
 */
export function missingHeads(running: LiveConfig, next: LiveConfig): string[] {
  const before = probedTiers(running.bundle);
  const after = probedTiers(next.bundle);
  const ranWithout = new Set(running.config.tiers.filter((t) => !before.has(t.id)).map((t) => t.id));
  return next.config.tiers.filter((t) => !after.has(t.id) && !ranWithout.has(t.id)).map((t) => t.id);
}

/** Whether a section (or head) differs between two configs (or bundles); absent and null alike. */
const changed = (a: unknown, b: unknown) => JSON.stringify(a ?? null) !== JSON.stringify(b ?? null);

/**
 * Tiers of the running config that the reload removes or whose head (linear, cluster or constant, or the
 * MLP that predicts it) it replaces: what online learning corrected for them no longer applies.
 */
export function replacedHeads(running: LiveConfig, next: LiveConfig): string[] {
  const [before, after] = [running.bundle, next.bundle];
  const head = (bundle: ProbeBundle, id: string) => bundle.tiers.find((t) => t.id === id);
  // The MLP (the largest part of a bundle) is compared once, not once per tier it predicts.
  const mlpChanged = changed(before.mlp, after.mlp);
  const inMlp = (bundle: ProbeBundle, id: string) => bundle.mlp?.tiers.includes(id) ?? false;
  const kept = new Set(next.config.tiers.map((t) => t.id));
  return running.config.tiers
    .map((t) => t.id)
    .filter(
      (id) =>
        !kept.has(id) ||
        changed(head(before, id), head(after, id)) ||
        inMlp(before, id) !== inMlp(after, id) ||
        (inMlp(before, id) && mlpChanged),
    );
}

/** One reload at a time, in order: a SIGHUP and an admin call may come together. */
export function createConfigReloader(deps: ReloadDeps): { reload(trigger: string): Promise<ReloadResult> } {
  let queue: Promise<unknown> = Promise.resolve();
  const run = async (trigger: string): Promise<ReloadResult> => {
    const running = deps.live();
    const file = running.config.file;
    try {
      const result = await reloadOnce(deps, running, file);
      deps.logger?.info({ trigger, file, ...result }, 'config reloaded');
      return result;
    } catch (thrown) {
      const error =
        thrown instanceof ReloadRefusedError
          ? thrown
          : new ReloadRefusedError(file, thrown instanceof Error ? thrown.message : String(thrown), thrown);
      deps.logger?.error(
        { trigger, file, err: error, code: thrown instanceof MechrouteError ? thrown.code : undefined },
        error.message,
      );
      throw error;
    }
  };
  return {
    reload(trigger) {
      const result = queue.then(
        () => run(trigger),
        () => run(trigger),
      );
      queue = result.catch(() => undefined);
      return result;
    },
  };
}

async function reloadOnce(deps: ReloadDeps, running: LiveConfig, file: string): Promise<ReloadResult> {
  const loaded = await loadConfig(file);
  const bundle = await loadProbeBundle(loaded.probes.path, deps.encoder);
  const restartRequired = RESTART_ONLY.filter((key) => changed(running.config[key], loaded[key]));
  // Only what a reload applies changes; the rest stays as the process started with it.
  const { policy_file: _, ...kept } = running.config;
  const config: LoadedConfig = {
    ...kept,
    tiers: loaded.tiers,
    probes: loaded.probes,
    policy: loaded.policy,
    ...(loaded.policy_file === undefined ? {} : { policy_file: loaded.policy_file }),
  };
  const next: LiveConfig = { config, bundle };
  const headless = missingHeads(running, next);
  if (headless.length > 0) {
    throw new ReloadRefusedError(
      file,
      `tier${headless.length === 1 ? '' : 's'} ${headless.join(', ')} ha${headless.length === 1 ? 's' : 've'} ` +
        `no head in the probe bundle ${loaded.probes.path} (its heads: ${[...probedTiers(bundle)].join(', ')}); ` +
        'add the head (`mechroute tiers add`) or point probes.path at a bundle that has it',
    );
  }
  const change = await deps.pool.prepare(config.tiers);
  // From here to the end nothing awaits: requests see the old tiers, bundle and policy, or the new ones.
  let policy: PolicyChange;
  try {
    policy = deps.policies.retier(
      config.policy,
      config.tiers.map((t) => t.id),
      loaded.policy_file ?? file,
    );
  } catch (error) {
    await change.discard();
    throw error;
  }
  if (!policy.ok) {
    await change.discard();
    throw new ReloadRefusedError(file, policy.error.message, policy.error);
  }
  change.commit();
  deps.install(next);
  return {
    tiers: config.tiers.map((t) => t.id),
    added: change.added,
    removed: change.removed,
    replaced: change.replaced,
    draining: deps.pool.draining(),
    probes: loaded.probes.path,
    policy_version: policy.policy.version,
    policy_changed: policy.changed,
    restart_required: [...restartRequired],
  };
}
