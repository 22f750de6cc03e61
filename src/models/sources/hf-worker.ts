/**
 * Child process for the `hf` source, forked by ./hf.ts. node-llama-cpp's downloader (ipull) retries an
 * unreachable host ~150 times over ~12 minutes and cannot be cancelled before it has resolved the file;
 * run in-process, a timed-out attempt would keep retrying, hold the event loop open and might write a
 * file after we gave up. A child can simply be killed.
 */
import { createModelDownloader } from 'node-llama-cpp';
import { type HfJob, HfJobSchema, type HfWorkerMessage } from './hf-protocol.js';

const send = (message: HfWorkerMessage): Promise<void> =>
  new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });

async function run(job: HfJob): Promise<void> {
  const downloader = await createModelDownloader({
    modelUri: job.uri,
    dirPath: job.dirPath,
    fileName: job.fileName,
    skipExisting: false,
    showCliProgress: false,
    endpoints: { huggingFace: job.endpoint },
    onProgress: ({ downloadedSize, totalSize }) => {
      void send({ type: 'progress', done: downloadedSize, total: totalSize });
    },
  });
  // A GGUF split into several files cannot be one cached file; refuse rather than keep part 1 only.
  if (downloader.totalFiles !== 1) throw new Error(`${job.uri} is split into ${downloader.totalFiles} files`);
  await send({ type: 'ready', total: downloader.totalSize });
  const path = await downloader.download();
  await send({ type: 'done', path });
}

if (process.send) {
  process.once('message', (raw) => {
    const job = HfJobSchema.safeParse(raw);
    const work = job.success ? run(job.data) : Promise.reject(new Error('bad job message'));
    work
      .catch((error: unknown) =>
        send({ type: 'error', message: error instanceof Error ? error.message : String(error) }),
      )
      .finally(() => process.exit(0));
  });
}
