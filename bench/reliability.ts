import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FAULTS, type FaultResult, runFaults, SMALL_FAULTS } from './reliability-faults.js';
import { type FuzzResult, runFuzz } from './reliability-fuzz.js';
import { type LoadResult, runLoad } from './reliability-load.js';
import { checkState, type RecordedState, type RestartResult, recordState } from './reliability-restart.js';
import { type ServerProcess, startServerProcess } from './reliability-server.js';
import { MIXTRAL, SERVER_SETTINGS, TOKENS, writeHarnessConfig } from './reliability-setup.js';
import { runSighup, runSigterm, type SighupResult, type SigtermResult } from './reliability-signals.js';
import { startHarnessUpstreams, UPSTREAM_KEYS, type UpstreamKind } from './reliability-upstreams.js';

/**
 * `npm run bench -- reliability`: the server as operators run it (a child process `mechroute serve`
 * with the real encoder), loopback upstreams, and every part of issue 16's "prove it": the fuzzer,
 * load with overload, fault injection, SIGHUP with torn and invalid policy files, SIGTERM with requests
 * in flight, and a restart with persisted state. Every loop is bounded in count and time.
 */
export type ReliabilityPart =
  | 'fuzz'
  | 'route-load'
  | 'chat-load'
  | 'faults'
  | 'sighup'
  | 'sigterm'
  | 'restart';
export const ALL_PARTS: readonly ReliabilityPart[] = [
  'fuzz',
  'route-load',
  'chat-load',
  'faults',
  'sighup',
  'sigterm',
  'restart',
];

export interface ReliabilityOptions {
  size: 'small' | 'full';
  /** Names the run's JSON file and its RELIABILITY.md section (default: the size). */
  label?: string;
  parts: readonly ReliabilityPart[];
  fuzzRequests: number;
  /** Seconds of each load phase (route, chat). */
  loadSeconds: number;
  clients: number;
  seed: number;
  upstream: UpstreamKind;
  /** Chat load: named tier and routed (default), or named only (see LoadOptions.chatMix). */
  chatMix?: 'mixed' | 'named';
  /** Node options of the server process, e.g. a heap cap. */
  serverNodeOptions?: readonly string[];
}

export interface ReliabilityResult {
  options: ReliabilityOptions;
  settings: typeof SERVER_SETTINGS & {
    tier_timeout_ms: number;
    breaker: { failures: number; seconds: number };
  };
  fuzz?: FuzzResult;
  load?: { route?: LoadResult; chat?: LoadResult };
  faults?: FaultResult;
  sighup?: SighupResult;
  sigterm?: SigtermResult;
  restart?: RestartResult;
  /** Times a server process exited on its own (not after the harness's SIGTERM). */
  crashes: number;
  /** Log lines at error level and above (and stray stderr lines) of the server processes. */
  error_log_lines: string[];
  /** Of those, requests that failed on a bug (500, "request failed"): none expected. */
  internal_errors: number;
  /** Did any log line carry a token or an upstream key? */
  secrets_in_logs: number;
  /** Wall time of each part (and of the server starts). */
  part_seconds: Record<string, number>;
  seconds: number;
}

/** Size presets: small runs in CI as a test (well under a minute of work), full is the recorded run. */
export function sizeDefaults(
  size: 'small' | 'full',
): Pick<ReliabilityOptions, 'fuzzRequests' | 'loadSeconds' | 'clients'> {
  return size === 'small'
    ? { fuzzRequests: 1_000, loadSeconds: 3, clients: 64 }
    : { fuzzRequests: 10_000, loadSeconds: 600, clients: 64 };
}

export async function runReliability(
  options: ReliabilityOptions,
  log: (line: string) => void,
): Promise<ReliabilityResult> {
  const started = performance.now();
  const dir = await mkdtemp(join(tmpdir(), 'mechroute-reliability-'));
  const upstreams = await startHarnessUpstreams(options.upstream);
  const has = (part: ReliabilityPart) => options.parts.includes(part);
  const secrets = [...Object.values(UPSTREAM_KEYS), ...TOKENS];
  const result: ReliabilityResult = {
    options,
    settings: {
      ...SERVER_SETTINGS,
      tier_timeout_ms: MIXTRAL.timeout_ms,
      breaker: MIXTRAL.cooldown,
    },
    crashes: 0,
    error_log_lines: [],
    internal_errors: 0,
    secrets_in_logs: 0,
    part_seconds: {},
    seconds: 0,
  };
  /** Runs one part and records how long it took. */
  const timed = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await work();
    } finally {
      result.part_seconds[name] = Math.round((performance.now() - t0) / 100) / 10;
    }
  };
  const servers: ServerProcess[] = [];
  const probeFile = join(dir, 'memory-probe.jsonl');
  const crashed = (server: ServerProcess) => {
    if (server.exit()) {
      result.crashes += 1;
      log(`reliability: the server exited on its own: ${JSON.stringify(server.exit())}`);
      return true;
    }
    return false;
  };
  try {
    const config = await writeHarnessConfig(dir, upstreams);
    const start = async () => {
      const server = await startServerProcess({
        configPath: config.configPath,
        env: config.env,
        memoryProbeFile: probeFile,
        ...(options.serverNodeOptions ? { nodeOptions: options.serverNodeOptions } : {}),
      });
      servers.push(server);
      return server;
    };
    log('reliability: starting the server (child process, real encoder)');
    let server = await timed('start', start);
    const token = TOKENS[0];
    if (has('fuzz')) {
      log(`reliability: fuzz, ${options.fuzzRequests} requests`);
      result.fuzz = await timed('fuzz', () =>
        runFuzz(
          {
            port: server.port,
            token,
            secrets,
            requests: options.fuzzRequests,
            slowRequests: Math.max(3, Math.round(options.fuzzRequests / 1000)),
            seed: options.seed,
            concurrency: 16,
            answerWithinMs: SERVER_SETTINGS.request_timeout_ms + 5_000,
            incompleteWithinMs: SERVER_SETTINGS.receive_timeout_ms + 5_000,
          },
          log,
        ),
      );
    }
    for (const kind of ['route', 'chat'] as const) {
      if (!has(`${kind}-load`) || crashed(server)) continue;
      const load = (kind: 'route' | 'chat') => {
        log(`reliability: load on ${kind}, ${options.clients} clients, ${options.loadSeconds} s`);
        return timed(`load ${kind}`, () =>
          runLoad(
            {
              url: server.url,
              token: TOKENS[1],
              pid: server.pid,
              kind,
              clients: options.clients,
              seconds: options.loadSeconds,
              deadlineMs: SERVER_SETTINGS.request_timeout_ms,
              probeFile,
              // A ~2,000-token prompt holds this CPU's encoder for tens of seconds: the full run has
              // them (2 %), the small one (a CI test) does not.
              longShare: options.size === 'full' ? 0.02 : 0,
              chatMix: options.chatMix ?? 'mixed',
            },
            log,
          ),
        );
      };
      result.load = { ...result.load, [kind]: await load(kind) };
    }
    if (has('faults') && !crashed(server)) {
      log('reliability: fault injection');
      result.faults = await timed('faults', () =>
        runFaults(
          {
            url: server.url,
            token,
            upstreams,
            faults: options.size === 'small' ? SMALL_FAULTS : FAULTS.map((f) => f.name),
            perCell: options.size === 'small' ? 2 : 6,
            deadlineMs: SERVER_SETTINGS.request_timeout_ms,
            cooldownMs: MIXTRAL.cooldown.seconds * 1000 + 100,
          },
          log,
        ),
      );
    }
    if (has('sighup') && !crashed(server)) {
      log('reliability: SIGHUP with torn and invalid policy files');
      result.sighup = await timed('sighup', () =>
        runSighup(server, config.policyPath, token, options.size === 'full', log),
      );
    }
    let recorded: RecordedState | undefined;
    if (has('restart') && !crashed(server)) {
      log('reliability: recording state before the restart');
      recorded = await timed('restart: record', () => recordState(server, token));
    }
    if (!crashed(server)) {
      if (has('sigterm')) {
        log('reliability: SIGTERM with requests in flight');
        result.sigterm = await timed('sigterm', () => runSigterm(server, upstreams, token, log));
      } else await server.stop();
    }
    if (recorded) {
      log('reliability: restarting with the same config and state');
      server = await timed('restart: start', start);
      result.restart = await timed('restart: check', () => checkState(server, token, recorded!));
      crashed(server);
      await server.stop();
    }
  } finally {
    for (const server of servers) {
      if (!server.exit()) await server.stop();
      const errors = server.errorLines();
      result.error_log_lines.push(...errors);
      result.internal_errors += errors.filter((l) => l.includes('"msg":"request failed"')).length;
      const text = server.logText();
      result.secrets_in_logs += secrets.filter((s) => text.includes(s)).length;
    }
    await upstreams.close();
    await rm(dir, { recursive: true, force: true });
  }
  result.seconds = Math.round((performance.now() - started) / 100) / 10;
  return result;
}
