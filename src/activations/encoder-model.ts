import { existsSync } from 'node:fs';
import { ModelNotCachedError } from '../errors.js';
import type { ModelManifest } from '../models/manifest.js';
import { createManifestRegistry, modelPath } from '../models/manifest-registry.js';

export interface ResolvedEncoderModel {
  manifest: ModelManifest;
  /** Where the downloaded weights are; checked to exist. */
  path: string;
}

/**
 * A named encoder model's manifest and cached weights. The manifest's sha256 is the encoder's identity
 * (for the activation store, probe bundles): the weights were verified against it when pulled, and
 * re-hashing 250 MB on every run would cost more than a short extraction.
 */
export async function resolveEncoderModel(name: string): Promise<ResolvedEncoderModel> {
  const manifest = createManifestRegistry().get(name);
  const path = modelPath(manifest);
  if (!existsSync(path)) throw new ModelNotCachedError(name, path);
  return { manifest, path };
}
