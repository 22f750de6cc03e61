import { z } from 'zod';

/**
 * How a reasoning response is cut into steps. One definition shared by training (step-prefix
 * examples), evaluation (the offline simulation) and the server's live step mode, so a "step"
 * means the same thing everywhere.
 * - `lines`: every non-blank line is a step (chain-of-thought answers are mostly one step per line);
 * - `numbered`: a step starts at a line opening with a step marker ("1.", "2)", "Step 3:");
 *   lines without one belong to the step above;
 * - `sentences`: lines, further cut after a sentence end (". ", "! ", "? " then an upper-case letter
 *   or a digit) — never inside a number such as 2.5 or an equation such as 3*4=12.
 */
export const StepSegmentationSchema = z
  .object({
    mode: z.enum(['lines', 'numbered', 'sentences']).default('lines'),
    /** Steps shorter than this (after trimming) are merged into the next one: "So:" is not a step. */
    min_chars: z.number().int().min(0).max(1000).default(8),
    /** Everything past this many steps is one final step, so a runaway answer stays bounded. */
    max_steps: z.number().int().min(1).max(1000).default(64),
  })
  .strict();
export type StepSegmentation = z.infer<typeof StepSegmentationSchema>;
export type StepSegmentationInput = z.input<typeof StepSegmentationSchema>;

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
