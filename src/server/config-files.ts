import { loadBaselineModel } from '../baselines/baseline-model.js';
import type { LoadedConfig } from '../config/config-loader.js';
import { promptWindowTokens } from '../encoder/prompt-window.js';
import type { ModelManifest } from '../models/manifest.js';
import { createManifestRegistry, resolveCachedModel } from '../models/manifest-registry.js';
import { loadProbeBundle, type ProbeBundle, probedTiers } from '../probes/probe-bundle.js';
import { cheapestTier } from '../router/mode-plans.js';
import { asStepBundle } from '../steps/step-scorer.js';

/** One file a config names, checked with the loader `serve` uses (paths already resolved as serve does). */
export interface ConfigFileCheck {
  /** The config key that names it. */
  key: string;
  path: string;
  ok: boolean;
  /** What it holds when ok; why it cannot be used (with what to do) when not. */
  detail: string;
  /** The tiers a probe bundle has probes for. */
  tiers?: string[];
}

/** One line per file: an InvalidFileError's "  - path: problem" lines joined with "; ". */
const reason = (error: unknown) =>
  (error instanceof Error ? error.message : String(error)).replace(/:?\n\s*-\s*/g, (m) =>
    m.startsWith(':') ? ': ' : '; ',
  );

async function check(key: string, path: string, load: () => Promise<string>): Promise<ConfigFileCheck> {
  try {
    return { key, path, ok: true, detail: await load() };
  } catch (error) {
    return { key, path, ok: false, detail: reason(error) };
  }
}

const describeBundle = (bundle: ProbeBundle) =>
  `${bundle.tiers.length} tier probe${bundle.tiers.length === 1 ? '' : 's'} (${bundle.tiers.map((t) => t.id).join(', ')}), ` +
  `layer${bundle.features.layers.length === 1 ? '' : 's'} ${bundle.features.layers.join(',')} (${bundle.features.pooling})`;

/** Which probe of the step bundle reads the steps: `steps.probe_tier`, else the worker, else the cheapest tier. */
/** The prompt window the config's encoder reads: what its probe bundles must have been trained on. */
export const configPromptWindow = (config: Pick<LoadedConfig, 'encoder'>): number =>
  promptWindowTokens(config.encoder.max_prompt_tokens, config.encoder.context_tokens);

export function stepProbeTier(config: Pick<LoadedConfig, 'steps' | 'tiers'>): string {
  const { steps } = config;
  return steps?.probe_tier ?? steps?.worker ?? cheapestTier(config.tiers);
}

/**
 * Loads every file the config names — the encoder weights' presence, the probe bundle, the step bundle, the
 * text-classifier model — with the same loaders and identity checks the server uses at start, without
 * loading any model weights, so `config check` finds what would stop `serve`. The policy file is already
 * loaded by `loadConfig`.
 */
export async function checkConfigFiles(config: LoadedConfig): Promise<ConfigFileCheck[]> {
  let encoder: ModelManifest | undefined;
  const checks: ConfigFileCheck[] = [];
  checks.push(
    await check('encoder.model', config.encoder.model, async () => {
      const cached = resolveCachedModel(config.encoder.model);
      encoder = cached.manifest;
      return `cached at ${cached.path}`;
    }),
  );
  // A bundle's encoder is checked by sha256, which the manifest gives even when the weights are not cached.
  const manifest = encoder ?? safeManifest(config.encoder.model);
  const bundleOf = (path: string) => {
    if (!manifest) throw new Error(`cannot check it until encoder.model names a known model`);
    return loadProbeBundle(path, { ...manifest, maxPromptTokens: configPromptWindow(config) });
  };
  let probed: string[] | undefined;
  checks.push(
    await check('probes.path', config.probes.path, async () => {
      const bundle = await bundleOf(config.probes.path);
      probed = [...probedTiers(bundle)];
      return describeBundle(bundle);
    }),
  );
  if (probed) checks.at(-1)!.tiers = [...new Set(probed)];
  if (config.steps) {
    const { steps } = config;
    const probeTier = stepProbeTier(config);
    checks.push(
      await check('steps.probes', steps.probes, async () => {
        const step = asStepBundle(await bundleOf(steps.probes), probeTier, steps.probes);
        return `step bundle, ${describeBundle(step.bundle)}; reads the ${probeTier} probe`;
      }),
    );
  }
  if (config.policy_file) {
    checks.push({
      key: 'policy_file',
      path: config.policy_file,
      ok: true,
      detail: `policy ${config.policy.kind}, version ${config.policy.version}`,
    });
  }
  const textModel = config.text_embedding.model;
  if (textModel !== undefined) {
    checks.push(
      await check('text_embedding.model', textModel, async () => {
        const model = await loadBaselineModel(textModel);
        const { featurizer } = model;
        if (featurizer.kind === 'encoder' && manifest && featurizer.sha256 !== manifest.sha256) {
          throw new Error(
            `trained on encoder ${featurizer.model}, the config runs ${manifest.name}; retrain it with ` +
              '`mechroute bench routing --save-models DIR` on this encoder',
          );
        }
        if (featurizer.kind === 'sentence') resolveCachedModel(featurizer.model);
        return `${model.method} router over ${model.tiers.length} tiers`;
      }),
    );
  }
  return checks;
}

function safeManifest(name: string): ModelManifest | undefined {
  try {
    return createManifestRegistry().get(name);
  } catch {
    return undefined;
  }
}
