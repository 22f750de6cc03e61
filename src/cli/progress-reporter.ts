import cliProgress from 'cli-progress';
import type { DownloadEvent } from '../models/model-downloader.js';

export interface ProgressReporter {
  onProgress(event: DownloadEvent): void;
  /** Removes a live bar so the next output starts on a clean line. */
  stop(): void;
}

const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);

/**
 * Download progress on stderr: a live bar on a terminal, one line per phase otherwise (CI logs and
 * `npm install` output would fill up with bar redraws).
 */
export function createProgressReporter(
  stream: NodeJS.WriteStream = process.stderr,
  isTty: boolean = stream.isTTY === true,
): ProgressReporter {
  let bar: cliProgress.SingleBar | undefined;
  let barStart = 0;
  let step = '';
  const line = (text: string) => {
    stopBar();
    stream.write(`${text}\n`);
  };
  function stopBar() {
    bar?.stop();
    bar = undefined;
  }

  function onBytes(done: number, total: number | undefined) {
    if (!isTty || total === undefined) return;
    if (!bar) {
      bar = new cliProgress.SingleBar(
        {
          stream,
          format: '  {bar} {percentage}% | {done}/{totalMb} MB | {speed} MB/s | {step}',
          hideCursor: true,
          barsize: 30,
        },
        cliProgress.Presets.shades_classic,
      );
      barStart = performance.now();
      bar.start(total, 0, { done: mb(0), totalMb: mb(total), speed: '0.0', step });
    }
    const elapsed = (performance.now() - barStart) / 1000;
    bar.update(done, {
      done: mb(done),
      totalMb: mb(total),
      speed: elapsed > 0 ? mb(done / elapsed) : '0.0',
      step,
    });
  }

  return {
    onProgress(event) {
      switch (event.type) {
        case 'source':
          step = '';
          return line(`source ${event.index}/${event.count}: ${event.label}`);
        case 'step':
          // The bar must fit one terminal line; wheel names alone are ~55 characters.
          step = event.message.length > 24 ? `${event.message.slice(0, 23)}…` : event.message;
          if (bar) bar.update({ step });
          else if (!isTty || !event.message.startsWith('chunk ')) line(`  ${event.message}`);
          return;
        case 'bytes':
          return onBytes(event.done, event.total);
        case 'source-failed':
          return line(`  failed: ${event.reason}`);
        case 'verify':
          return line('  verifying sha256');
      }
    },
    stop: stopBar,
  };
}
