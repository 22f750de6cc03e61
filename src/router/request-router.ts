import { encoderFeatures, hybridScorer, type TierScorer } from '../baselines/tier-scorer.js';
import type { PolicyStore } from '../config/policy-file.js';
import type { Encoder } from '../encoder/encoder.js';
import type { EncodeCall } from '../encoder/encoder-host.js';
import { MechrouteError } from '../errors.js';
import type { BudgetLedger } from '../policy/budget-ledger.js';
import type { Policy, RouteDecision, RouteOverrides, RouteTier } from '../policy/policy-schema.js';
import { route } from '../policy/route.js';
import { checkPromptWindow, type ProbeBundle } from '../probes/probe-bundle.js';
import { type ProbePrediction, predictProbes } from '../probes/probe-predict.js';
import { type Message, promptText } from '../traces/trace-schema.js';

export interface RequestRouterDeps {
  encoder: Encoder;
  /** Read on every request, so a reloaded bundle or policy applies to the next decision. */
  bundle: () => ProbeBundle;
  policies: PolicyStore;
  /** Live availability: credentials, and deployments cooling down after failures. */
  tiers: () => RouteTier[];
  ledger?: BudgetLedger;
  now?: () => number;
  /** The text-classifier router, for policies with `signal: text-embedding` (semantic mode). */
  textScorer?: TierScorer;
  /** Online learning's corrections of the tiers' P, applied before the policy sees them. */
  correct?: (tiers: Readonly<Record<string, number>>) => Record<string, number>;
}

export interface RouteRequest {
  /** The prompt as the probes were trained on it (`promptText` of the trace format). */
  prompt: string;
  overrides?: RouteOverrides;
  maxOutputTokens?: number;
  /** Whose rolling budget applies (the bearer token's id, or the client address). */
  budgetKey?: string;
  /** The request's abort signal and remaining time: the encoder pass is dropped or refused with them. */
  call?: EncodeCall;
}

export interface RoutedRequest {
  decision: RouteDecision;
  /** What the policy saw: with online learning's corrections, when on. */
  prediction: ProbePrediction;
  /** The scorer's P per tier before any correction: what online learning's update starts from. */
  uncorrected: Record<string, number>;
  inputTokens: number;
  truncated: boolean;
  /** Encoder prefill plus probes (or, in semantic mode, the text classifier). */
  encoderMs: number;
  signal: Policy['signal'];
}

interface Scored {
  prediction: ProbePrediction;
  tokens: number;
  truncated: boolean;
}

async function probePrediction(
  deps: RequestRouterDeps,
  bundle: ProbeBundle,
  prompt: string,
  call: EncodeCall | undefined,
): Promise<Scored> {
  checkPromptWindow(bundle, deps.encoder.info.maxPromptTokens);
  const { layers, pooling } = bundle.features;
  const { vector, tokens, truncated } = await encoderFeatures(deps.encoder, prompt, layers, pooling, call);
  return { prediction: predictProbes(bundle, vector), tokens, truncated };
}

function textScorerOf(deps: RequestRouterDeps): TierScorer {
  if (!deps.textScorer) {
    throw new MechrouteError(
      'MR_ERR_NO_TEXT_SCORER',
      'the policy says signal: text-embedding, but the config names no text_embedding.model',
    );
  }
  return deps.textScorer;
}

const hybridScorers = new WeakMap<ProbeBundle, TierScorer>();

/** The bundle's hybrid head as a scorer, one per loaded bundle (a reloaded bundle gets its own). */
function hybridScorerOf(deps: RequestRouterDeps, bundle: ProbeBundle): TierScorer {
  if (!bundle.hybrid) {
    throw new MechrouteError(
      'MR_ERR_NO_HYBRID_HEAD',
      'the policy says signal: hybrid, but the probe bundle has no hybrid head (`mechroute train --hybrid`)',
    );
  }
  let scorer = hybridScorers.get(bundle);
  if (!scorer) {
    scorer = hybridScorer(bundle, deps.encoder);
    hybridScorers.set(bundle, scorer);
  }
  return scorer;
}

/**
 * Semantic and hybrid mode: P(success | tier) from a scorer other than the probes. Its difficulty is
 * P(the bundle's difficulty tier, else the cheapest tier, fails); tokens for pricing come from the
 * encoder's tokenizer when the scorer ran no prefill.
 */
async function semanticPrediction(
  deps: RequestRouterDeps,
  bundle: ProbeBundle,
  prompt: string,
  scorer: TierScorer,
  call: EncodeCall | undefined,
): Promise<Scored> {
  const score = await scorer.score(prompt, call);
  const reference =
    bundle.difficulty.kind === 'tier-failure' && score.tiers[bundle.difficulty.tier] !== undefined
      ? bundle.difficulty.tier
      : scorer.tiers[0]!;
  return {
    prediction: { tiers: score.tiers, difficulty: 1 - score.tiers[reference]! },
    tokens: score.encoderTokens ?? deps.encoder.tokenize(prompt).length,
    truncated: score.truncated ?? false,
  };
}

/**
 * The routing decision for one prompt: encoder prefill (early exit at the bundle's deepest layer),
 * probes, then the current policy — a thin shell around pure functions.
 */
export function createRequestRouter(deps: RequestRouterDeps) {
  const now = deps.now ?? Date.now;
  return {
    async decide(request: RouteRequest): Promise<RoutedRequest> {
      const bundle = deps.bundle();
      const policy = deps.policies.current();
      const started = performance.now();
      const scored =
        policy.signal === 'probes'
          ? await probePrediction(deps, bundle, request.prompt, request.call)
          : await semanticPrediction(
              deps,
              bundle,
              request.prompt,
              policy.signal === 'hybrid' ? hybridScorerOf(deps, bundle) : textScorerOf(deps),
              request.call,
            );
      const { tokens, truncated } = scored;
      const prediction = deps.correct
        ? { ...scored.prediction, tiers: deps.correct(scored.prediction.tiers) }
        : scored.prediction;
      const encoderMs = performance.now() - started;
      const budget =
        deps.ledger && request.budgetKey !== undefined
          ? deps.ledger.state(request.budgetKey, now())
          : undefined;
      const decision = route(
        {
          prediction,
          tiers: deps.tiers(),
          input_tokens: tokens,
          ...(request.maxOutputTokens === undefined ? {} : { max_output_tokens: request.maxOutputTokens }),
          ...(request.overrides ? { overrides: request.overrides } : {}),
          ...(budget ? { budget } : {}),
        },
        policy,
        now(),
      );
      return {
        decision,
        prediction,
        uncorrected: scored.prediction.tiers,
        inputTokens: tokens,
        truncated,
        encoderMs,
        signal: policy.signal,
      };
    },
  };
}

export type RequestRouter = ReturnType<typeof createRequestRouter>;

/**
 * The text the probes see for a chat. The probes are trained on bare prompts (a question as asked), so
 * a chat that is one user turn (with or without a system turn) is routed on that turn's text alone;
 * longer chats use the trace format's flattening, the same one training uses for chat traces.
 */
export function routingPrompt(messages: readonly Message[]): string {
  const turns = messages.filter((m) => m.role !== 'system' && m.role !== 'developer');
  if (turns.length === 1 && turns[0]!.role === 'user')
    return promptText({ messages: [turns[0]!] }).replace(/^user: /, '');
  return promptText({ messages: [...messages] });
}
