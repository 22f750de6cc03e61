import { EncoderHost, type EncoderHostOptions } from '../../src/encoder/encoder-host.js';
import { DEFAULT_ENCODER_MODEL } from '../../src/models/manifest.js';
import { resolveCachedModel } from '../../src/models/manifest-registry.js';

/** Path of the real default encoder (pulled by `npm test`'s pretest step). */
export function defaultEncoderPath(): string {
  return resolveCachedModel(DEFAULT_ENCODER_MODEL).path;
}

let shared: Promise<EncoderHost> | undefined;

/** One encoder per test process, shared by every model-dependent test in it. */
export function sharedEncoder(): Promise<EncoderHost> {
  shared ??= EncoderHost.create({ modelPath: defaultEncoderPath() });
  return shared;
}

/** A separate host, for tests that need other limits; the caller disposes it. */
export function createEncoder(options: Omit<EncoderHostOptions, 'modelPath'>): Promise<EncoderHost> {
  return EncoderHost.create({ modelPath: defaultEncoderPath(), ...options });
}

export function maxRelativeError(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    diff += (a[i]! - b[i]!) ** 2;
    norm += a[i]! ** 2;
  }
  return Math.sqrt(diff / norm);
}

export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! ** 2;
    nb += b[i]! ** 2;
  }
  return dot / Math.sqrt(na * nb);
}
