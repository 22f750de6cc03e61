import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { readEveryTrace } from '../src/cli/trace-input.js';
import type { EncoderHost } from '../src/encoder/encoder-host.js';
import { readJsonFile } from '../src/json-file.js';
import { createMatrix, type FeatureMatrix } from '../src/probes/matrix.js';
import {
  bundleFeatureDim,
  checkPromptWindow,
  loadProbeBundle,
  type ProbeBundle,
  parseProbeBundle,
} from '../src/probes/probe-bundle.js';
import { applyStandardizer } from '../src/probes/standardizer.js';
import { promptText, type Trace } from '../src/traces/trace-schema.js';
import { featuresOf, tryOpenStore } from './evaluate-bundle.js';
import { encoderIdentity } from './training-data.js';

/**
 * A trace file's prompts as a bundle reads them, for the `tiers` commands: the bundle's layers, pooling
 * and prompt window, from the activation store where cached and from the encoder otherwise (as `eval`
 * does), then standardised by the bundle's own standardizer — the space its heads and clusters live in.
 */
export interface BundleFeatureOptions {
  storeDir?: string;
  /** The encoder model (default the bundle's). */
  model?: string;
  /** A loaded encoder of the same model (tests share one). */
  encoder?: EncoderHost;
  onProgress?: (done: number, total: number, elapsedMs: number) => void;
}

export interface BundleFeatures {
  traces: Trace[];
  /** Standardised, one row per trace. */
  z: FeatureMatrix;
  /** Encoder tokens of each prompt. */
  tokens: number[];
  fromStore: number;
  encoded: number;
  /** sha256 of the trace file's bytes. */
  sha256: string;
}

/** A bundle as the `tiers` commands read it; with `model`, refused unless made for that encoder. */
export async function loadBundleFor(file: string, model: string | undefined): Promise<ProbeBundle> {
  if (model === undefined) return parseProbeBundle(await readJsonFile(file, 'probe bundle'), file);
  const identity = encoderIdentity(model);
  return loadProbeBundle(file, identity);
}

export async function bundleFeatures(
  bundle: ProbeBundle,
  file: string,
  why: string,
  options: BundleFeatureOptions = {},
): Promise<BundleFeatures> {
  const traces = await readEveryTrace(file, why);
  const sha256 = createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
  const store = await tryOpenStore(bundle, options.storeDir, file);
  try {
    if (store) checkPromptWindow(bundle, store.meta.max_prompt_tokens);
    const features = await featuresOf(
      bundle,
      traces.map((t) => promptText(t)),
      store,
      {
        probes: file,
        tracesFile: file,
        ...(options.model ? { model: options.model } : {}),
        ...(options.encoder ? { encoder: options.encoder } : {}),
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      },
    );
    const x = createMatrix(features.data, traces.length, bundleFeatureDim(bundle));
    return {
      traces,
      z: applyStandardizer(bundle.standardizer, x),
      tokens: features.tokens,
      fromStore: features.fromStore,
      encoded: features.encoded,
      sha256,
    };
  } finally {
    await store?.close();
  }
}
