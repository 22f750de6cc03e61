import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ActivationStoreMismatchError, FileUnreadableError, InvalidFileError } from '../errors.js';
import { writeFileAtomic } from '../json-file.js';
import { formatIssuesInline } from '../zod-issues.js';
import { POOLINGS, STORE_FORMAT_VERSION, type StoreMeta, StoreMetaSchema } from './store-format.js';

/** What a writer or reader expects of a store (the parsed ActivationStoreOptions). */
export interface ExpectedStore {
  encoder: { name: string; sha256: string };
  layers?: number | undefined;
  meanLayers?: number | undefined;
  width?: number | undefined;
  maxPromptTokens?: number | undefined;
  readOnly: boolean;
}

/**
 * The store's meta.json, checked against what the caller expects; a writer creates it when missing.
 * The encoder name may differ (a renamed manifest computes the same thing); its sha256 and the shape may not.
 */
export async function loadOrCreateMeta(dir: string, options: ExpectedStore): Promise<StoreMeta> {
  const file = join(dir, 'meta.json');
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' && !options.readOnly) return undefined;
    throw new FileUnreadableError(file, error);
  });
  if (text === undefined) return createMeta(file, options);

  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InvalidFileError('activation store meta', file, (error as Error).message);
  }
  const parsed = StoreMetaSchema.safeParse(json);
  if (!parsed.success)
    throw new InvalidFileError('activation store meta', file, formatIssuesInline(parsed.error));
  const meta = parsed.data;
  const problems: string[] = [];
  if (meta.encoder.sha256 !== options.encoder.sha256) {
    problems.push(
      `encoder sha256 ${meta.encoder.sha256} (${meta.encoder.name}) ≠ ${options.encoder.sha256} (${options.encoder.name})`,
    );
  }
  if (options.layers !== undefined && meta.layers !== options.layers)
    problems.push(`layers ${meta.layers} ≠ ${options.layers}`);
  if (options.meanLayers !== undefined && meta.mean_layers !== options.meanLayers)
    problems.push(`mean-pooled layers ${meta.mean_layers} ≠ ${options.meanLayers}`);
  if (options.width !== undefined && meta.width !== options.width)
    problems.push(`width ${meta.width} ≠ ${options.width}`);
  // Readers may mix limits knowingly; a writer must not add records computed under another one.
  if (
    !options.readOnly &&
    options.maxPromptTokens !== undefined &&
    meta.max_prompt_tokens !== options.maxPromptTokens
  )
    problems.push(`max prompt tokens ${meta.max_prompt_tokens} ≠ ${options.maxPromptTokens}`);
  if (problems.length > 0) throw new ActivationStoreMismatchError(dir, problems);
  return meta;
}

async function createMeta(file: string, options: ExpectedStore): Promise<StoreMeta> {
  const { layers, meanLayers, width, maxPromptTokens } = options;
  if (
    layers === undefined ||
    meanLayers === undefined ||
    width === undefined ||
    maxPromptTokens === undefined
  ) {
    throw new TypeError('creating an activation store needs layers, meanLayers, width and maxPromptTokens');
  }
  const meta: StoreMeta = {
    version: STORE_FORMAT_VERSION,
    encoder: options.encoder,
    layers,
    mean_layers: meanLayers,
    width,
    dtype: 'float16',
    poolings: [...POOLINGS],
    max_prompt_tokens: maxPromptTokens,
    created_at: new Date().toISOString(),
  };
  await writeFileAtomic(file, `${JSON.stringify(meta, null, 2)}\n`);
  return meta;
}
