import { z } from 'zod';

/** The messages between ./hf.ts and ./hf-worker.ts; kept apart so the parent never loads node-llama-cpp. */
export const HfJobSchema = z.object({
  uri: z.string(),
  dirPath: z.string(),
  fileName: z.string(),
  endpoint: z.string(),
});
export type HfJob = z.infer<typeof HfJobSchema>;

export const HfWorkerMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready'), total: z.number() }),
  z.object({ type: z.literal('progress'), done: z.number(), total: z.number() }),
  z.object({ type: z.literal('done'), path: z.string() }),
  z.object({ type: z.literal('error'), message: z.string() }),
]);
export type HfWorkerMessage = z.infer<typeof HfWorkerMessageSchema>;
