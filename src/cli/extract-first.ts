import { extractActivations } from '../activations/extract-activations.js';
import { createCountProgress } from './count-progress.js';

/**
 * `--extract` of train and bench routing: encodes the prompts of the trace files that the store lacks
 * before the command reads it (what `mechroute extract` does, with its progress on stderr).
 */
export async function extractFirst(
  command: string,
  files: readonly string[],
  options: { model?: string | undefined; store?: string | undefined },
): Promise<void> {
  for (const file of files) {
    const progress = createCountProgress(`${command}: extract ${file}`, 'prompts');
    try {
      const summary = await extractActivations({
        tracesFile: file,
        ...(options.model ? { model: options.model } : {}),
        ...(options.store ? { storeDir: options.store } : {}),
        onProgress: (p) => progress.update(p.done, p.total, p.elapsedMs),
      });
      progress.stop();
      process.stderr.write(
        `${command}: extract ${file}: ${summary.encoded} encoded, ${summary.skipped_cached} cached, ` +
          `${summary.failed.length} failed, into ${summary.store}\n`,
      );
    } finally {
      progress.stop();
    }
  }
}
