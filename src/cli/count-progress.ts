import cliProgress from 'cli-progress';

export interface CountProgress {
  update(done: number, total: number, elapsedMs: number, detail?: string): void;
  stop(): void;
}

export function formatSeconds(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * Progress over a count of items on stderr: a bar with rate and ETA on a terminal; in a log (no TTY),
 * one line per ~5 %, so CI logs stay readable.
 */
export function createCountProgress(
  verb: string,
  unit: string,
  stream: NodeJS.WriteStream = process.stderr,
): CountProgress {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: `${verb} [{bar}] {percentage}% | {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted} {detail}`,
        hideCursor: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(done, total, elapsedMs, detail = '') {
        const rate = (elapsedMs > 0 ? (1000 * done) / elapsedMs : 0).toFixed(2);
        if (!started) bar.start(total, done, { rate, detail });
        else bar.update(done, { rate, detail });
        started = true;
      },
      stop() {
        if (started) bar.stop();
        started = false;
      },
    };
  }
  let nextMark = 0;
  return {
    update(done, total, elapsedMs, detail = '') {
      if (total === 0 || done < nextMark) return;
      const step = Math.max(1, Math.ceil(total / 20));
      nextMark = (Math.floor(done / step) + 1) * step;
      const rate = elapsedMs > 0 ? (1000 * done) / elapsedMs : 0;
      const eta = rate > 0 ? formatSeconds((total - done) / rate) : '?';
      stream.write(
        `${verb}: ${done}/${total} (${Math.floor((100 * done) / total)} %), ${rate.toFixed(2)} ${unit}/s, ETA ${eta}${detail ? `, ${detail}` : ''}\n`,
      );
    },
    stop() {},
  };
}
