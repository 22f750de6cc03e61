import { z } from 'zod';

/** A tier's list price in USD per million tokens: what the config states and the policy prices with. */
export const PriceSchema = z.strictObject({
  input_per_mtok: z.number().nonnegative(),
  output_per_mtok: z.number().nonnegative(),
});
export type Price = z.infer<typeof PriceSchema>;
