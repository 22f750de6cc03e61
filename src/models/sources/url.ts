import { open } from 'node:fs/promises';
import type { z } from 'zod';
import type { UrlSourceSchema } from '../manifest.js';
import { downloadInto } from './http-download.js';
import type { SourceContext } from './source-context.js';

/** A plain HTTP(S) URL serving the whole file. */
export async function fetchFromUrl(
  source: z.infer<typeof UrlSourceSchema>,
  ctx: SourceContext,
): Promise<void> {
  ctx.onProgress({ type: 'step', message: `GET ${source.url}` });
  const out = await open(ctx.partialPath, 'wx');
  try {
    await downloadInto(ctx, source.url, out, {
      onBytes: (done, total) => ctx.onProgress({ type: 'bytes', done, total }),
    });
  } finally {
    await out.close();
  }
}
