import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { InvalidFileError, ModelNotCachedError, ModelNotFoundError } from '../errors.js';
import { manifestsDir, modelsCacheDir } from '../paths.js';
import { formatIssues } from '../zod-issues.js';
import { type CompanionFile, type ModelManifest, ModelManifestSchema } from './manifest.js';

export interface ManifestRegistry {
  /** Every manifest, sorted by name. */
  readonly all: readonly ModelManifest[];
  readonly names: readonly string[];
  /** @throws ModelNotFoundError */
  get(name: string): ModelManifest;
}

/** Parses and validates one manifest file. @throws InvalidFileError naming the file and every bad field. */
export function loadManifest(file: string): ModelManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new InvalidFileError('model manifest', file, `  - ${(error as Error).message}`);
  }
  const parsed = ModelManifestSchema.safeParse(raw);
  if (!parsed.success) throw new InvalidFileError('model manifest', file, formatIssues(parsed.error.issues));
  return parsed.data;
}

/**
 * Loads every `*.json` in `dir` (the shipped `models/` folder by default). Reads eagerly: the folder
 * holds a handful of small files, and one broken manifest should fail loudly, not when first looked up.
 */
export function createManifestRegistry(dir: string = manifestsDir): ManifestRegistry {
  const byName = new Map<string, ModelManifest>();
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  for (const name of files) {
    const file = join(dir, name);
    const manifest = loadManifest(file);
    if (byName.has(manifest.name)) {
      throw new InvalidFileError('model manifest', file, `  - name: "${manifest.name}" is declared twice`);
    }
    byName.set(manifest.name, manifest);
  }
  const all = [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
  const names = all.map((m) => m.name);
  return {
    all,
    names,
    get(name) {
      const manifest = byName.get(name);
      if (!manifest) throw new ModelNotFoundError(name, names);
      return manifest;
    },
  };
}

/** Where the weights of `manifest` live once pulled (`$MECHROUTE_HOME/models/<file>`). */
export function modelPath(
  manifest: Pick<ModelManifest, 'file'>,
  env: NodeJS.ProcessEnv = process.env,
): string {
  // `file` is validated as a bare name, but basename() keeps a hand-built manifest from escaping the cache.
  return join(modelsCacheDir(env), basename(manifest.file));
}

/**
 * A companion file as a manifest of its own (`<model>/<file>`), so the downloader fetches and verifies
 * it like any weights.
 */
export function companionManifest(manifest: ModelManifest, companion: CompanionFile): ModelManifest {
  return {
    ...manifest,
    name: `${manifest.name}/${companion.file}`,
    file: companion.file,
    sha256: companion.sha256,
    size: companion.size,
    sources: companion.sources,
    companions: [],
  };
}

export interface CachedModel {
  manifest: ModelManifest;
  /** Where the downloaded weights are; checked to exist. */
  path: string;
}

/**
 * A named model's manifest and its downloaded weights. The manifest's sha256 is the model's identity
 * (probe bundles and the activation store key on it); the weights are not re-hashed here, since the
 * download verified them. @throws ModelNotFoundError, ModelNotCachedError
 */
export function resolveCachedModel(
  name: string,
  registry: ManifestRegistry = createManifestRegistry(),
): CachedModel {
  const manifest = registry.get(name);
  const path = modelPath(manifest);
  if (!existsSync(path)) throw new ModelNotCachedError(name, path);
  for (const companion of manifest.companions) {
    const companionPath = modelPath(companion);
    if (!existsSync(companionPath)) throw new ModelNotCachedError(name, companionPath);
  }
  return { manifest, path };
}

/** Where a companion file of a cached model is (checked by resolveCachedModel). */
export function companionPath(manifest: ModelManifest, file: string): string {
  const companion = manifest.companions.find((c) => c.file === file);
  if (!companion)
    throw new ModelNotFoundError(
      `${manifest.name}/${file}`,
      manifest.companions.map((c) => c.file),
    );
  return modelPath(companion);
}
