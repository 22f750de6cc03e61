import { EncoderHost, type EncoderHostOptions } from '../../src/encoder/encoder-host.js';
import { DEFAULT_ENCODER_MODEL } from '../../src/models/manifest.js';
import { resolveCachedModel } from '../../src/models/manifest-registry.js';

/** Path of the real default encoder (pulled by `npm test`'s pretest step). */
export function defaultEncoderPath(): string {
  return resolveCachedModel(DEFAULT_ENCODER_MODEL).path;
}

let shared: Promise<EncoderHost> | undefined;

/**
 * One encoder per test process, shared by every model-dependent test in it. Its admission limit is
 * far off: these tests are about activations, and on a busy machine the default (10 s of queued work
 * at the measured rate) refused their queued prompts. encoder-admission.test.ts tests the limit.
 */
export function sharedEncoder(): Promise<EncoderHost> {
  shared ??= EncoderHost.create({ modelPath: defaultEncoderPath(), maxQueueWaitMs: 600_000 });
  return shared;
}

/** A separate host, for tests that need other limits; the caller disposes it. */
export function createEncoder(options: Omit<EncoderHostOptions, 'modelPath'>): Promise<EncoderHost> {
  return EncoderHost.create({ modelPath: defaultEncoderPath(), ...options });
}

export { cosine, relativeError } from '../../src/encoder/vector-math.js';
