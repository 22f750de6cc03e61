import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../src/paths.js';

/**
 * The server under test as the operator runs it: a child process `node bin/mechroute.js serve`, so a
 * crash is an exit, SIGTERM and SIGHUP are real signals, and its resident set is the whole server's
 * (encoder model, native arenas and all). Its log lines at warn and above are kept for the report.
 */
export interface ServerProcess {
  url: string;
  port: number;
  pid: number;
  /** Resolves when the process exits (a crash or the end of a shutdown). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Set once it has exited. */
  exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Log lines at level error (50) or fatal (60) so far, and the last lines of all. */
  errorLines(): string[];
  logTail(): string[];
  /** Every log line's text so far (bounded), to look for leaked secrets. */
  logText(): string;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL if it is still running after `graceMs`. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartServerOptions {
  configPath: string;
  env: NodeJS.ProcessEnv;
  /** Also run the memory probe, writing to this file (see reliability-memory-probe.ts). */
  memoryProbeFile?: string;
  /** Node options for the server process (e.g. `--max-old-space-size=160`). */
  nodeOptions?: readonly string[];
  /** Time allowed for the model to load and the port to answer. */
  startTimeoutMs?: number;
}

/** A port free right now on 127.0.0.1: the child is told it, so no log line is needed to find it. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const LOG_LIMIT = 4_000_000;

export async function startServerProcess(options: StartServerOptions): Promise<ServerProcess> {
  const port = await freePort();
  const probe = fileURLToPath(new URL('./reliability-memory-probe.js', import.meta.url));
  const nodeArgs = [
    ...(options.nodeOptions ?? []),
    ...(options.memoryProbeFile ? ['--import', probe, '--heapsnapshot-signal=SIGUSR2'] : []),
  ];
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...nodeArgs,
      join(packageRoot, 'bin', 'mechroute.js'),
      'serve',
      '--config',
      options.configPath,
      '--port',
      String(port),
      '--log-level',
      'warn',
    ],
    {
      env: {
        ...process.env,
        ...options.env,
        ...(options.memoryProbeFile ? { MECHROUTE_MEMORY_PROBE_FILE: options.memoryProbeFile } : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
  });
  let text = '';
  const tail: string[] = [];
  const errors: string[] = [];
  let pending = '';
  const onData = (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      if (text.length < LOG_LIMIT) text += `${line}\n`;
      tail.push(line);
      if (tail.length > 50) tail.shift();
      const level = /"level":(\d+)/.exec(line)?.[1];
      // Lines that are not pino's (a native library writing to stderr, a crash trace) count as errors.
      if (level === undefined ? !line.startsWith('{') : Number(level) >= 50) {
        if (errors.length < 200) errors.push(line.slice(0, 2000));
      }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.startTimeoutMs ?? 180_000);
  while (true) {
    if (exitInfo) {
      throw new Error(`the server exited while starting (${JSON.stringify(exitInfo)}):\n${tail.join('\n')}`);
    }
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the server did not answer /healthz within the start timeout:\n${tail.join('\n')}`);
    }
    await sleep(100);
  }
  return {
    url,
    port,
    pid: child.pid!,
    exited,
    exit: () => exitInfo,
    errorLines: () => [...errors],
    logTail: () => [...tail],
    logText: () => text,
    kill: (signal) => {
      if (!exitInfo) child.kill(signal);
    },
    async stop(graceMs = 60_000) {
      if (exitInfo) return exitInfo;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

export interface MemorySample {
  t_s: number;
  /** Resident set (kB → bytes), and its anonymous and file-backed parts (the mapped model is file-backed). */
  rss: number;
  anon: number;
  file: number;
}

/** The process's resident set from /proc (Linux); undefined once it is gone. */
export function readMemory(pid: number): Omit<MemorySample, 't_s'> | undefined {
  try {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (name: string) =>
      Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? 0) * 1024;
    return { rss: kb('Rss'), anon: kb('Anonymous'), file: kb('Rss') - kb('Anonymous') };
  } catch {
    return undefined;
  }
}

/** Samples the process's memory every `everyMs` until stopped. */
export function sampleMemory(pid: number, everyMs = 1000): { stop(): MemorySample[] } {
  const samples: MemorySample[] = [];
  const started = performance.now();
  const take = () => {
    const m = readMemory(pid);
    if (m) samples.push({ t_s: Math.round((performance.now() - started) / 100) / 10, ...m });
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}
