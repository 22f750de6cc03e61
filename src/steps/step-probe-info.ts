import { z } from 'zod';
import { StepSegmentationSchema } from './segment-steps.js';

/**
 * What makes a probe bundle a *step* bundle (its optional `steps` field): the bundle's tier probes then
 * read the prompt plus the first k steps of a response (see `stepProbeText`) and give P(that
 * trajectory ends correct). Training, the offline simulation and the server's live step mode all read
 * the segmentation from here, so a bundle is always applied to steps cut the way it was trained on.
 */
export const StepProbeInfoSchema = z.object({
  segmentation: StepSegmentationSchema,
  /** How prompt and steps are joined into the encoder's input (one format so far; see stepProbeText). */
  text_format: z.literal('prompt-blank-line-steps'),
  /** Step-level evaluation the bundle was trained with (e.g. AUROC by step index); a free-form report. */
  metrics: z.record(z.string(), z.unknown()).optional(),
});
export type StepProbeInfo = z.infer<typeof StepProbeInfoSchema>;

/**
 * The encoder input for a step probe: the prompt, a blank line, then the response up to the end of
 * step k. With no steps yet it is the prompt alone — the same text request-level routing reads.
 */
export function stepProbeText(prompt: string, responsePrefix: string): string {
  const steps = responsePrefix.trim();
  return steps.length === 0 ? prompt : `${prompt}\n\n${steps}`;
}
