import { setTimeout as sleepTimer } from 'node:timers/promises';
import { deploymentEnv } from '../config/deployment-env.js';
import { backoffDelay, type CircuitBreaker, createCircuitBreaker } from './circuit-breaker.js';
import { createOpenAICompatibleModel } from './providers/openai-compatible/openai-compatible-model.js';
import {
  type CallOptions,
  createPartChannel,
  type GenerateResult,
  isDeploymentFault,
  MissingCredentialsError,
  type StreamPart,
  type TierError,
  TierExhaustedError,
  type TierModel,
  type TierRequest,
  TierUnavailableError,
  toTierError,
  UnknownTierError,
  UpstreamAbortedError,
  UpstreamTimeoutError,
  UpstreamTruncatedError,
} from './tier-model.js';
import type {
  TierAvailability,
  TierClock,
  TierConfig,
  TierLogger,
  TierPool,
  TierPoolDeps,
} from './tier-pool-types.js';

export type * from './tier-pool-types.js';

interface Deployment {
  id: string;
  model: TierModel;
  breaker: CircuitBreaker;
  /** Environment variables it needs that are unset now (API key, base URL). */
  missingEnv(): string[];
}

interface TierRuntime {
  config: TierConfig;
  deployments: Deployment[];
  loadError?: string;
  dispose?: () => Promise<void>;
  /** Calls in progress on it (a retired runtime is disposed once they are done). */
  active: number;
  retired?: boolean;
}

/** A failure after text already left: it ends the stream and must not fail over. */
class CommittedFailure {
  constructor(readonly error: TierError) {}
}

const silentLogger: TierLogger = { debug() {}, info() {}, warn() {}, error() {} };
const systemClock: TierClock = {
  now: () => Date.now(),
  sleep: async (ms, signal) => {
    try {
      await sleepTimer(ms, undefined, signal ? { signal } : {});
    } catch (error) {
      throw signal?.aborted ? signal.reason : error;
    }
  },
};

/** The tiers' ids; a tier declared twice is refused before any tier is built. */
function uniqueIds(tiers: readonly TierConfig[]): Set<string> {
  const ids = new Set<string>();
  for (const { id } of tiers) {
    if (ids.has(id)) throw new Error(`tier "${id}" is declared twice`);
    ids.add(id);
  }
  return ids;
}

export async function createTierPool(
  tiers: readonly TierConfig[],
  deps: TierPoolDeps = {},
): Promise<TierPool> {
  const env = deps.env ?? process.env;
  const logger = deps.logger ?? silentLogger;
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? Math.random;
  const backoff = deps.backoff ?? { baseMs: 250, maxMs: 8_000 };
  const maxRetryAfterMs = deps.maxRetryAfterMs ?? 10_000;
  let runtimes = new Map<string, TierRuntime>();
  /** Runtimes a reload took out of the pool that still have calls in progress. */
  const draining = new Set<TierRuntime>();
  const disposals: Promise<void>[] = [];

  uniqueIds(tiers);
  for (const config of tiers) runtimes.set(config.id, await buildTier(config));

  const disposeRuntime = (tier: TierRuntime) => {
    const done = (tier.dispose?.() ?? Promise.resolve()).catch((error: unknown) =>
      logger.error({ tier: tier.config.id, err: (error as Error).message }, 'disposing a tier failed'),
    );
    disposals.push(done);
  };

  /** Takes a runtime out of service: disposed now if idle, else when its last call ends. */
  const retire = (tier: TierRuntime) => {
    tier.retired = true;
    if (tier.active === 0) disposeRuntime(tier);
    else {
      draining.add(tier);
      logger.info({ tier: tier.config.id, in_flight: tier.active }, 'tier draining');
    }
  };

  /** Counts a call on `tier` until `work` settles. */
  const holding = <T>(tier: TierRuntime, work: () => Promise<T>): Promise<T> => {
    tier.active += 1;
    return work().finally(() => {
      tier.active -= 1;
      if (tier.retired && tier.active === 0 && draining.delete(tier)) {
        logger.info({ tier: tier.config.id }, 'tier drained');
        disposeRuntime(tier);
      }
    });
  };

  async function buildTier(config: TierConfig): Promise<TierRuntime> {
    const breaker = () =>
      createCircuitBreaker({
        failures: config.cooldown.failures,
        cooldownMs: config.cooldown.seconds * 1000,
        now: () => clock.now(),
      });
    if (config.provider === 'local') {
      try {
        const model = await (deps.createLocalModel ?? loadLocal)(config);
        const deployment: Deployment = { id: model.id, model, breaker: breaker(), missingEnv: () => [] };
        return {
          config,
          deployments: [deployment],
          active: 0,
          ...(model.dispose ? { dispose: () => model.dispose!() } : {}),
        };
      } catch (error) {
        // One broken local tier must not take the router down: it is reported unavailable instead.
        const message = (error as Error).message;
        logger.error({ tier: config.id, err: message }, 'local tier failed to load');
        return { config, deployments: [], loadError: message, active: 0 };
      }
    }
    const deployments = config.deployments.map((d, index): Deployment => {
      const id = `${config.id}/${index}`;
      // A base URL from the environment is read once: moving an endpoint takes a restart. The key is
      // read again on every call (rotation needs no restart), so what is missing is too.
      const { baseUrl } = deploymentEnv(d, env);
      if (!baseUrl) {
        const missing = [d.base_url_env ?? 'base_url'];
        return { id, model: unconfigured(id), breaker: breaker(), missingEnv: () => missing };
      }
      const model = createOpenAICompatibleModel(
        {
          tier: config.id,
          deployment: String(index),
          baseUrl,
          model: d.model ?? config.model,
          ...(d.api_key_env ? { apiKeyEnv: d.api_key_env } : {}),
          timeoutMs: d.timeout_ms ?? config.timeout_ms,
          ...(deps.firstByteTimeoutMs ? { firstByteTimeoutMs: deps.firstByteTimeoutMs } : {}),
        },
        { env, ...(deps.fetch ? { fetch: deps.fetch } : {}) },
      );
      return { id, model, breaker: breaker(), missingEnv: () => deploymentEnv(d, env).missing };
    });
    return { config, deployments, active: 0 };
  }

  function unconfigured(id: string): TierModel {
    const fail = () => new TierUnavailableError(id, 'its base URL is not configured');
    return {
      specificationVersion: 'v1',
      id,
      provider: 'openai',
      generate: () => Promise.reject(fail()),
      stream: async function* () {
        yield { type: 'error', error: fail() };
      },
    };
  }

  async function loadLocal(config: TierConfig) {
    const [{ createLocalLlamaModel }, { resolveCachedModel }] = await Promise.all([
      import('./providers/local-llama/local-llama-model.js'),
      import('../models/manifest-registry.js'),
    ]);
    const modelPath = /\.gguf$/i.test(config.model) ? config.model : resolveCachedModel(config.model).path;
    const local = deps.local ?? {};
    return createLocalLlamaModel(
      {
        modelPath,
        tier: config.id,
        timeoutMs: config.timeout_ms,
        contextSize: Math.min(config.context_window, local.contextSize ?? 4096),
        ...(local.sequences ? { sequences: local.sequences } : {}),
        ...(local.threads ? { threads: local.threads } : {}),
        ...(local.maxQueue !== undefined ? { maxQueue: local.maxQueue } : {}),
      },
      deps.llama ? { llama: deps.llama } : {},
    );
  }

  function runtime(id: string): TierRuntime {
    const tier = runtimes.get(id);
    if (!tier) throw new UnknownTierError(id, [...runtimes.keys()]);
    return tier;
  }

  /**
   * Deployments in order; each gets 1 + max_retries attempts with backoff while its breaker stays
   * closed. Retryable failures and deployment faults (401/403/404) move on to the next deployment; any
   * other failure (a bad request) is the caller's and returns at once.
   */
  async function withFailover<T>(
    tier: TierRuntime,
    signal: AbortSignal,
    call: CallOptions,
    attempt: (d: Deployment, timeoutMs: number | undefined) => Promise<T>,
  ): Promise<T> {
    const budgetMs = call.timeoutMs;
    const logFailure = (d: Deployment, error: TierError, retry: number, next: string) => {
      call.onAttemptFailed?.(error);
      (call.logger ?? logger).warn(
        {
          deployment: d.id,
          attempt: retry + 1,
          code: error.code,
          status: error.status,
          err: error.message,
          ...(error.detail ? { detail: error.detail } : {}),
        },
        `tier attempt failed: ${next}`,
      );
    };
    const { config } = tier;
    if (tier.loadError) throw new TierUnavailableError(config.id, tier.loadError);
    const maxRetries = config.max_retries;
    const failures: TierError[] = [];
    // Retries and backoff stay inside the call's share of the request's deadline, so that a hanging
    // deployment cannot use up the time the next tier of the plan needs.
    const until = budgetMs === undefined ? Number.POSITIVE_INFINITY : clock.now() + budgetMs;
    const left = () => until - clock.now();
    let skipped = 0;
    deployments: for (const d of tier.deployments) {
      const missing = d.missingEnv();
      if (missing.length > 0) {
        failures.push(new MissingCredentialsError(d.id, missing.join(', ')));
        continue;
      }
      for (let retry = 0; retry <= maxRetries; retry++) {
        if (signal.aborted) throw toTierError(signal.reason, d.id);
        if (left() <= 0) {
          failures.push(new UpstreamTimeoutError(d.id, 'total', budgetMs!));
          break deployments;
        }
        if (!d.breaker.tryAcquire()) {
          if (retry === 0) skipped++;
          break;
        }
        let error: TierError;
        try {
          const value = await attempt(d, Number.isFinite(left()) ? left() : undefined);
          d.breaker.success();
          return value;
        } catch (thrown) {
          if (thrown instanceof CommittedFailure) {
            if (signal.aborted || thrown.error instanceof UpstreamAbortedError) {
              d.breaker.release();
              throw thrown;
            }
            d.breaker.failure();
            logFailure(d, thrown.error, retry, 'after text was sent; not failing over');
            throw thrown;
          }
          error = toTierError(thrown, d.id);
        }
        if (signal.aborted || error instanceof UpstreamAbortedError) {
          d.breaker.release();
          throw error;
        }
        if (!error.isRetryable && !isDeploymentFault(error)) {
          // The upstream answered, so the deployment is healthy; the request itself was refused.
          d.breaker.release();
          throw error;
        }
        d.breaker.failure();
        failures.push(error);
        logFailure(
          d,
          error,
          retry,
          d.breaker.state() === 'closed' ? 'will retry or fail over' : 'breaker open',
        );
        if (!error.isRetryable || d.breaker.state() !== 'closed' || retry === maxRetries) break;
        if (error.retryAfterMs !== undefined && error.retryAfterMs > maxRetryAfterMs) {
          d.breaker.openFor(error.retryAfterMs);
          break;
        }
        const delay = backoffDelay(retry + 1, error.retryAfterMs, { ...backoff, random });
        if (delay >= left()) break;
        await clock.sleep(delay, signal);
      }
    }
    if (failures.every((f) => f instanceof MissingCredentialsError)) {
      if (skipped > 0) {
        throw new TierUnavailableError(
          config.id,
          'every deployment is cooling down after repeated failures',
          soonestProbe(tier),
        );
      }
      throw new TierUnavailableError(
        config.id,
        failures.length ? missingCredentialsReason(tier) : 'it has no deployments',
      );
    }
    throw new TierExhaustedError(config.id, failures);
  }

  function soonestProbe(tier: TierRuntime): number | undefined {
    const until = tier.deployments
      .map((d) => d.breaker.openUntil())
      .filter((t): t is number => t !== undefined);
    return until.length ? Math.max(0, Math.min(...until) - clock.now()) : undefined;
  }

  function missingCredentialsReason(tier: TierRuntime): string {
    const vars = [...new Set(tier.deployments.flatMap((d) => d.missingEnv()))];
    return `no deployment is configured: set ${vars.join(' or ')}`;
  }

  /** What one deployment call gets: the pool's signal, the time left, the caller's extra headers. */
  function providerOptions(
    signal: AbortSignal,
    options: CallOptions,
    timeoutMs: number | undefined,
  ): CallOptions {
    return {
      signal,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      ...(options.headers ? { headers: options.headers } : {}),
    };
  }

  function linkedController(signal: AbortSignal | undefined): AbortController {
    const controller = new AbortController();
    if (signal?.aborted) controller.abort(new UpstreamAbortedError(undefined));
    signal?.addEventListener('abort', () => controller.abort(new UpstreamAbortedError(undefined)), {
      once: true,
    });
    return controller;
  }

  async function generate(
    id: string,
    request: TierRequest,
    options: CallOptions = {},
  ): Promise<GenerateResult> {
    const tier = runtime(id);
    const { signal } = linkedController(options.signal);
    const result = await holding(tier, () =>
      withFailover(tier, signal, options, (d, timeoutMs) =>
        d.model.generate(request, providerOptions(signal, options, timeoutMs)),
      ),
    );
    return { ...result, tier: id };
  }

  function stream(id: string, request: TierRequest, options: CallOptions = {}): AsyncIterable<StreamPart> {
    const tier = runtime(id);
    const controller = linkedController(options.signal);
    const { signal } = controller;
    const channel = createPartChannel(() => controller.abort(new UpstreamAbortedError(undefined)));

    const attempt = async (d: Deployment, timeoutMs: number | undefined): Promise<void> => {
      let start: Extract<StreamPart, { type: 'start' }> | undefined;
      let committed = false;
      // Held back until the first delta: until then nothing has left, so failing over stays invisible.
      const commit = () => {
        if (committed) return;
        committed = true;
        channel.push({ type: 'start', tier: id, deployment: d.id, warnings: start?.warnings ?? [] });
      };
      for await (const part of d.model.stream(request, providerOptions(signal, options, timeoutMs))) {
        if (part.type === 'start') start = part;
        else if (part.type === 'error') throw committed ? new CommittedFailure(part.error) : part.error;
        else {
          commit();
          channel.push(part);
          if (part.type === 'finish') return;
        }
      }
      const truncated = new UpstreamTruncatedError(d.id, 0);
      throw committed ? new CommittedFailure(truncated) : truncated;
    };

    holding(tier, () => withFailover(tier, signal, options, attempt))
      .catch((error: unknown) => {
        const failure = error instanceof CommittedFailure ? error.error : toTierError(error, undefined);
        channel.push({ type: 'error', error: failure });
      })
      .finally(() => channel.close());
    return channel.iterable;
  }

  return {
    get ids() {
      return [...runtimes.keys()];
    },
    tier(id) {
      const tier = runtime(id);
      return {
        specificationVersion: 'v1',
        id,
        provider: 'pool',
        generate: (request, options) => generate(tier.config.id, request, options),
        stream: (request, options) => stream(tier.config.id, request, options),
      };
    },
    generate,
    stream,
    availability() {
      const out: Record<string, TierAvailability> = {};
      for (const [id, tier] of runtimes) {
        const usable = tier.deployments.filter((d) => d.missingEnv().length === 0);
        if (tier.loadError) out[id] = { available: false, reason: tier.loadError };
        else if (tier.deployments.length === 0)
          out[id] = { available: false, reason: 'no deployments configured' };
        else if (usable.length === 0) out[id] = { available: false, reason: missingCredentialsReason(tier) };
        else if (usable.every((d) => d.breaker.state() === 'open')) {
          const wait = soonestProbe(tier);
          out[id] = {
            available: false,
            reason: 'every deployment is cooling down after repeated failures',
            ...(wait !== undefined ? { retry_after_ms: wait } : {}),
          };
        } else {
          const ready = usable.filter((d) => d.breaker.state() !== 'open').length;
          out[id] = { available: true, reason: `${ready} of ${tier.deployments.length} deployments ready` };
        }
      }
      return out;
    },
    deployments(id) {
      return runtime(id).deployments.map((d) => ({
        id: d.id,
        state: d.breaker.state(),
        consecutive_failures: d.breaker.consecutiveFailures,
        missing_env: d.missingEnv(),
      }));
    },
    draining() {
      return [...draining].map((t) => ({ id: t.config.id, in_flight: t.active }));
    },
    async prepare(next) {
      const seen = uniqueIds(next);
      // A tier whose settings are unchanged keeps its runtime (and its breakers' state); a changed one
      // gets a new runtime, and the old one drains like a removed tier.
      const same = (a: TierConfig, b: TierConfig) => JSON.stringify(a) === JSON.stringify(b);
      const built = new Map<string, TierRuntime>();
      try {
        for (const config of next) {
          const old = runtimes.get(config.id);
          if (!old || !same(old.config, config)) built.set(config.id, await buildTier(config));
        }
      } catch (error) {
        for (const tier of built.values()) disposeRuntime(tier);
        throw error;
      }
      const added = next.filter((t) => !runtimes.has(t.id)).map((t) => t.id);
      const replaced = next.filter((t) => runtimes.has(t.id) && built.has(t.id)).map((t) => t.id);
      const removed = [...runtimes.keys()].filter((id) => !seen.has(id));
      let settled = false;
      const settle = () => {
        if (settled) throw new Error('this pool change was already committed or discarded');
        settled = true;
      };
      return {
        added,
        removed,
        replaced,
        commit() {
          settle();
          const before = runtimes;
          runtimes = new Map(next.map((t) => [t.id, built.get(t.id) ?? before.get(t.id)!]));
          for (const [id, tier] of before) if (runtimes.get(id) !== tier) retire(tier);
        },
        async discard() {
          settle();
          await Promise.all([...built.values()].map((t) => t.dispose?.()));
        },
      };
    },
    async close() {
      await Promise.all([...[...runtimes.values(), ...draining].map((t) => t.dispose?.()), ...disposals]);
    },
  };
}
