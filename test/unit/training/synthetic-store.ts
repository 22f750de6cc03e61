import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ActivationStore, promptHash } from '../../../src/activations/activation-store.js';
import { DEFAULT_ENCODER_MODEL } from '../../../src/models/manifest.js';
import { createManifestRegistry } from '../../../src/models/manifest-registry.js';
import { createRng } from '../../../src/seeded-rng.js';

/**
 * A temporary activation store and trace file with a planted signal: a latent difficulty z per prompt
 * decides both tiers' outcomes, and only layer `SIGNAL_LAYER` (last-token pooling) carries z, in its first
 * few dimensions; every other vector is noise. Subjects shift the base rate a little (as on MMLU) but carry
 * no information about z within a subject. The store is keyed by the default encoder's sha256, which is
 * what `train` and `eval` look up, but its shape is small so the tests run in seconds.
 */
export const LAST_LAYERS = 5;
export const MEAN_LAYERS = 3;
export const WIDTH = 12;
export const SIGNAL_LAYER = 3;
export const SUBJECTS = 10;

export interface SyntheticData {
  dir: string;
  storeDir: string;
  tracesFile: string;
  /** Trace ids whose prompts were deliberately left out of the store. */
  missing: string[];
  encoder: { name: string; sha256: string };
  /** z of each stored row, in trace order. */
  difficulty: number[];
}

export async function createSyntheticData(n = 300, seed = 5, missing = 3): Promise<SyntheticData> {
  const dir = await mkdtemp(join(tmpdir(), 'mechroute-train-'));
  const storeDir = join(dir, 'store');
  const manifest = createManifestRegistry().get(DEFAULT_ENCODER_MODEL);
  const encoder = { name: manifest.name, sha256: manifest.sha256 };
  const rng = createRng(seed);
  const store = await ActivationStore.open({
    encoder,
    layers: LAST_LAYERS,
    meanLayers: MEAN_LAYERS,
    width: WIDTH,
    maxPromptTokens: 2048,
    dir: storeDir,
  });
  const lines: string[] = [];
  const difficulty: number[] = [];
  const missingIds: string[] = [];
  for (let i = 0; i < n + missing; i += 1) {
    const subject = `subject_${i % SUBJECTS}`;
    const shift = ((i % SUBJECTS) - SUBJECTS / 2) * 0.05;
    const z = rng.normal();
    const prompt = `Question ${i} about ${subject}?\nA. yes\nB. no\nAnswer:`;
    // The dear tier is listed first, so the test sees the trainer order tiers by cost, not by file order.
    const outcomes = {
      dear: z + 0.5 * rng.normal() + shift < 1.3,
      cheap: z + 0.3 * rng.normal() + shift < 0.2,
    };
    lines.push(JSON.stringify({ id: `q${i}`, dataset: 'synthetic', subject, prompt, outcomes }));
    if (i >= n) {
      missingIds.push(`q${i}`);
      continue;
    }
    difficulty.push(z);
    const vector = (signal: boolean) =>
      Float32Array.from({ length: WIDTH }, (_, j) =>
        signal && j < 4 ? z + 0.2 * rng.normal() : rng.normal(),
      );
    await store.append(promptHash(prompt), {
      tokens: 12 + (i % 7),
      truncated: false,
      last: Array.from({ length: LAST_LAYERS }, (_, l) => vector(l === SIGNAL_LAYER)),
      mean: Array.from({ length: MEAN_LAYERS }, () => vector(false)),
    });
  }
  await store.close();
  const tracesFile = join(dir, 'traces.jsonl');
  await writeFile(tracesFile, `${lines.join('\n')}\n`);
  return { dir, storeDir, tracesFile, missing: missingIds, encoder, difficulty };
}
