import { loadBaselineModel } from '../baselines/baseline-model.js';
import { createSentenceEncoder, type SentenceEncoder } from '../baselines/sentence-encoder.js';
import { baselineScorer, type TierScorer } from '../baselines/tier-scorer.js';
import type { LoadedConfig, ResolvedSecrets } from '../config/config-loader.js';
import { policyFromConfigFile, resolveSecrets } from '../config/config-loader.js';
import {
  createPolicyStore,
  loadPolicyFile,
  type PolicyLogger,
  type PolicyStore,
} from '../config/policy-file.js';
import type { Encoder } from '../encoder/encoder.js';
import { EncoderHost } from '../encoder/encoder-host.js';
import { InvalidFileError } from '../errors.js';
import { resolveCachedModel } from '../models/manifest-registry.js';
import { type BudgetLedger, createBudgetLedger } from '../policy/budget-ledger.js';
import type { RouteTier } from '../policy/policy-schema.js';
import { loadProbeBundle, type ProbeBundle } from '../probes/probe-bundle.js';
import { createRequestRouter, type RequestRouter } from '../router/request-router.js';
import { openStateStore } from '../state/sqlite-state-store.js';
import { stateFilePath } from '../state/state-path.js';
import type { StateStore } from '../state/state-store.js';
import { asStepBundle, type StepBundle } from '../steps/step-scorer.js';
import { createTierPool, type TierLogger, type TierPool } from '../tiers/tier-pool.js';
import { configPromptWindow, stepProbeTier } from './config-files.js';
import { createConfigReloader, type LiveConfig, type ReloadResult, replacedHeads } from './config-reload.js';
import { createOnlineLearner, type OnlineLearner } from './online-learner.js';
import { Telemetry } from './telemetry.js';

/** Everything the HTTP layer needs; built once per process, released by `close()`. */
export interface RouterServices {
  /** The running config: its tiers, probes and policy change with a reload (`reload`). */
  readonly config: LoadedConfig;
  secrets: ResolvedSecrets;
  encoder: Encoder;
  bundle: () => ProbeBundle;
  /** The step-probe bundle of live step mode, when the config has a `steps` section. */
  stepBundle?: StepBundle;
  policies: PolicyStore;
  pool: TierPool;
  telemetry: Telemetry;
  router: RequestRouter;
  ledger?: BudgetLedger;
  /** Online learning from feedback, when `learning.online` is on. */
  learner?: OnlineLearner;
  /** Tiers as the policy sees them now: credentials and deployment breakers included. */
  routeTiers(): RouteTier[];
  /**
   * Reads the config file again and swaps in its tiers, probe bundle and policy together (see
   * config-reload.ts). @throws ReloadRefusedError, with everything left as it was
   */
  reload(trigger: string): Promise<ReloadResult>;
  /** Calls `listener` with the config each successful reload installs; returns its removal. */
  onReload(listener: (config: LoadedConfig) => void): () => void;
  close(): Promise<void>;
}

export interface ServiceOptions {
  env?: NodeJS.ProcessEnv;
  /** An encoder to use instead of loading the config's model (HTTP tests of routes without a model). */
  encoder?: Encoder;
  logger?: TierLogger & PolicyLogger;
  fetch?: typeof fetch;
}

/**
 * Loads the encoder named by the config, the probe bundle (refusing one trained for another encoder),
 * the policy and the tier pool. On any failure whatever was already loaded is released.
 */
export async function createServices(
  config: LoadedConfig,
  options: ServiceOptions = {},
): Promise<RouterServices> {
  const env = options.env ?? process.env;
  const secrets = resolveSecrets(config, env);
  // First: a state file held by another server or a policy clashing with its history fails fast.
  const state = openStateStore(stateFilePath(config, env), { synchronous: config.state.synchronous });
  try {
    return await createServicesWithState(config, env, secrets, state, options);
  } catch (error) {
    state.close();
    throw error;
  }
}

async function createServicesWithState(
  config: LoadedConfig,
  env: NodeJS.ProcessEnv,
  secrets: ResolvedSecrets,
  state: StateStore,
  options: ServiceOptions,
): Promise<RouterServices> {
  // Bound once the learner exists; the store only calls it on a policy change, never while being built.
  let onPolicyChange:
    | ((change: { from: string; to: string; via: 'install' | 'rollback' }) => void)
    | undefined;
  const stoppedVersion = state.loadPolicyStack()[0]?.version;
  const policies = createPolicyStore(config.policy, {
    history: config.policy_history,
    onChange: (change) => onPolicyChange?.(change),
    knownTiers: config.tiers.map((t) => t.id),
    ...(options.logger ? { logger: options.logger } : {}),
    // A policy written inline is reloaded from the config file itself; a reload may move it to a policy
    // file or back (the watcher follows, server.ts), so the file read says which one it is.
    load: (file) => (file === config.file ? policyFromConfigFile(file) : loadPolicyFile(file)),
    persist: state,
    source: config.policy_file ?? config.file,
  });
  const { manifest, path } = resolveCachedModel(config.encoder.model);
  // A bundle trained on another prompt window than the encoder will read is refused here, not per request.
  const served = { ...manifest, maxPromptTokens: configPromptWindow(config) };
  const bundle = await loadProbeBundle(config.probes.path, served);
  const stepBundle = config.steps
    ? asStepBundle(
        await loadProbeBundle(config.steps.probes, served),
        stepProbeTier(config),
        config.steps.probes,
      )
    : undefined;
  const encoder =
    options.encoder ??
    (await EncoderHost.create({
      modelPath: path,
      gpu: config.encoder.gpu,
      contextTokens: config.encoder.context_tokens,
      batchTokens: config.encoder.batch_tokens,
      maxBatchPrompts: config.encoder.max_batch_prompts,
      queueLimit: config.encoder.queue_limit,
      maxQueueWaitMs: config.encoder.max_queue_wait_ms,
      overflow: config.encoder.overflow,
      headTokens: config.encoder.head_tokens,
      ...(config.encoder.max_prompt_tokens === undefined
        ? {}
        : { maxPromptTokens: config.encoder.max_prompt_tokens }),
    }));
  let pool: TierPool;
  let sentence: SentenceEncoder | undefined;
  let textScorer: TierScorer | undefined;
  try {
    // Semantic mode's classifier, loaded whenever the config names one, so a reloaded policy can switch.
    if (config.text_embedding.model !== undefined) {
      const model = await loadBaselineModel(config.text_embedding.model);
      if (model.featurizer.kind === 'encoder' && model.featurizer.sha256 !== manifest.sha256) {
        throw new InvalidFileError(
          'text-classifier model',
          config.text_embedding.model,
          `  - featurizer: trained on encoder ${model.featurizer.model}, the config runs ${manifest.name}`,
        );
      }
      if (model.featurizer.kind === 'sentence') {
        sentence = await createSentenceEncoder({ model: model.featurizer.model });
      }
      textScorer = baselineScorer(model, { encoder, ...(sentence ? { sentence } : {}) });
    }
    pool = await createTierPool(config.tiers, {
      env,
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
  } catch (error) {
    await sentence?.dispose();
    await encoder.dispose();
    throw error;
  }
  const rolling = config.policy.budget?.rolling;
  const ledger = rolling ? createBudgetLedger(rolling) : undefined;
  const learner = config.learning.online
    ? createOnlineLearner(state, config.learning, options.logger)
    : undefined;
  const telemetry = new Telemetry({
    store: state,
    retention: config.state.retention,
    ...(options.logger ? { logger: options.logger } : {}),
    ...(learner ? { learner } : {}),
  });
  if (learner) {
    // A config whose policy replaced the one the state file was running: that version stopped at the
    // restart, with what it had learned.
    if (stoppedVersion !== undefined && stoppedVersion !== policies.current().version) {
      learner.policyChanged(stoppedVersion, policies.current().version, 'install', Date.now());
    }
    onPolicyChange = ({ from, to, via }) => {
      try {
        learner.policyChanged(from, to, via, Date.now());
      } catch (error) {
        // The policy change stands; the snapshot is lost, which a rollback then reports as no correction.
        options.logger?.error({ err: error, from, to }, 'online learning: snapshot not written');
      }
      telemetry.updateLearningGauges();
    };
  }
  // What a reload replaces, read on every request.
  let live: LiveConfig = { config, bundle };
  const reloadListeners = new Set<(config: LoadedConfig) => void>();
  const reloader = createConfigReloader({
    live: () => live,
    install: (next) => {
      const relearn = learner ? replacedHeads(live, next) : [];
      live = next;
      try {
        learner?.forget(relearn);
        telemetry.updateLearningGauges();
      } catch (error) {
        // The reload stands; the stale corrections stay until a reset (`mechroute policy reset-learning`).
        options.logger?.error({ err: error, tiers: relearn }, 'online learning: corrections not dropped');
      }
      for (const listener of reloadListeners) listener(next.config);
    },
    pool,
    policies,
    // The encoder is not reloaded (its section is restart-only), so neither is its prompt window.
    encoder: served,
    ...(options.logger ? { logger: options.logger } : {}),
  });
  // The pool is the one judge of availability: credentials (read as config check reads them),
  // deployments cooling down, a local model that failed to load.
  const liveTiers = (): RouteTier[] => {
    const availability = pool.availability();
    return live.config.tiers.map((tier) => {
      const state = availability[tier.id];
      return state?.available
        ? { id: tier.id, price: tier.price, available: true }
        : {
            id: tier.id,
            price: tier.price,
            available: false,
            unavailable_reason: state?.reason ?? 'unavailable',
            ...(state?.retry_after_ms === undefined ? {} : { retry_after_ms: state.retry_after_ms }),
          };
    });
  };
  const router = createRequestRouter({
    encoder,
    bundle: () => live.bundle,
    policies,
    ...(learner ? { correct: (tiers: Readonly<Record<string, number>>) => learner.correct(tiers) } : {}),
    tiers: liveTiers,
    ...(ledger ? { ledger } : {}),
    ...(textScorer ? { textScorer } : {}),
  });
  let closing: Promise<void> | undefined;
  return {
    get config() {
      return live.config;
    },
    secrets,
    encoder,
    bundle: () => live.bundle,
    ...(stepBundle ? { stepBundle } : {}),
    policies,
    pool,
    telemetry,
    router,
    ...(ledger ? { ledger } : {}),
    ...(learner ? { learner } : {}),
    routeTiers: liveTiers,
    reload: (trigger) => reloader.reload(trigger),
    onReload(listener) {
      reloadListeners.add(listener);
      return () => reloadListeners.delete(listener);
    },
    close() {
      // Once: the app's onClose and a caller that built the services may both ask.
      closing ??= (async () => {
        await pool.close();
        await sentence?.dispose();
        await encoder.dispose();
        state.close();
      })();
      return closing;
    },
  };
}
