import type { Encoder } from '../encoder/encoder.js';
import type { EncodeCall } from '../encoder/encoder-host.js';
import { InvalidFileError } from '../errors.js';
import type { ProbeBundle } from '../probes/probe-bundle.js';
import { featureVector, predictProbes } from '../probes/probe-predict.js';
import { type StepProbeInfo, stepProbeText } from '../probes/step-probe-info.js';

/** A step bundle checked for live use: it has step info and a probe for the tier it is read for. */
export interface StepBundle {
  bundle: ProbeBundle;
  steps: StepProbeInfo;
  probeTier: string;
}

/** Refuses a plain request-level bundle, or one without a probe for `probeTier`, naming the file. */
export function asStepBundle(bundle: ProbeBundle, probeTier: string, file: string): StepBundle {
  if (!bundle.steps) {
    throw new InvalidFileError(
      'step-probe bundle',
      file,
      '  - steps: missing; this is a request-level bundle (train one with `mechroute train --steps`)',
    );
  }
  if (!bundle.tiers.some((t) => t.id === probeTier)) {
    throw new InvalidFileError(
      'step-probe bundle',
      file,
      `  - tiers: no probe for "${probeTier}" (it has ${bundle.tiers.map((t) => t.id).join(', ')})`,
    );
  }
  return { bundle, steps: bundle.steps, probeTier };
}

/**
 * P(success) of a prompt plus a response prefix, as the step probe reads it: the encoder's pooled
 * activations of `stepProbeText(prompt, prefix)` (the one text format training uses too) through the
 * bundle's probe for `probeTier`.
 */
export async function scoreStepPrefix(
  encoder: Pick<Encoder, 'encode'>,
  step: StepBundle,
  prompt: string,
  responsePrefix: string,
  call: EncodeCall = {},
): Promise<number> {
  const { bundle } = step;
  const [encoded] = await encoder.encode(
    [stepProbeText(prompt, responsePrefix)],
    { layers: bundle.features.layers, pooling: bundle.features.pooling },
    call,
  );
  const pooled = bundle.features.pooling === 'last' ? encoded!.last! : encoded!.mean!;
  return predictProbes(bundle, featureVector(pooled)).tiers[step.probeTier]!;
}
