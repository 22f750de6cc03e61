import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { DEFAULT_PROBES_PATH } from '../src/config/config-loader.js';
import { type LatencySummary, summarize } from '../src/metrics/quantile.js';
import { type RunningServer, startServer } from '../src/server/server.js';
import { createUpstreamModel, startOpenAIUpstream } from '../test/support/openai-upstream.js';
import { remoteTierConfig, writeServerConfig } from '../test/support/server-config.js';

export interface ServerBenchOptions {
  /** Seconds per autocannon run. */
  seconds: number;
  /** Chat requests per method for the routing-overhead comparison. */
  chatRequests: number;
}

export interface ServerBenchResult {
  route: Record<
    'concurrency_1' | 'concurrency_16',
    { p50_ms: number; p95_ms: number; requests_per_s: number; errors: number }
  >;
  chat_overhead: {
    direct_upstream_ms: LatencySummary;
    via_router_bypass_ms: LatencySummary;
    via_router_routed_ms: LatencySummary;
    routing_overhead_p50_ms: number;
  };
}

const QUESTION =
  'Question: Which gas do plants absorb from the air for photosynthesis?\nA. Oxygen\nB. Nitrogen\nC. Carbon dioxide\nD. Helium\nAnswer:';

/**
 * Every request a new prompt: identical prompts in flight share an encoder decode, and connections that
 * cycled one list in lockstep would send the same prompt together and inflate throughput.
 */
async function cannon(url: string, connections: number, seconds: number) {
  let counter = 0;
  const result = await autocannon({
    url: `${url}/v1/route`,
    method: 'POST',
    connections,
    duration: seconds,
    headers: { 'content-type': 'application/json' },
    requests: [
      {
        method: 'POST',
        path: '/v1/route',
        setupRequest: (request) => ({
          ...request,
          body: JSON.stringify({ prompt: QUESTION.replace('Question:', `Question ${counter++}:`) }),
        }),
      },
    ],
  });
  return {
    p50_ms: result.latency.p50,
    p95_ms: result.latency.p97_5 ?? result.latency.p99,
    requests_per_s: result.requests.average,
    errors: result.errors + result.non2xx,
  };
}

/**
 * `/v1/route` latency and throughput under autocannon at 1 and 16 connections, and what routing adds to a
 * chat completion: the same request sent straight to an upstream, through the router naming the tier
 * (bypass), and through the router with `model: "mechroute"` steered to that tier — interleaved.
 */
export async function runServerBench(
  options: ServerBenchOptions,
  log: (line: string) => void,
): Promise<ServerBenchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'mechroute-bench-'));
  const local = await createUpstreamModel(2);
  const upstream = await startOpenAIUpstream({ model: local });
  let server: RunningServer | undefined;
  try {
    const configFile = await writeServerConfig(dir, {
      server: { host: '127.0.0.1', port: 0 },
      probes: { path: DEFAULT_PROBES_PATH },
      tiers: [
        remoteTierConfig('mixtral-8x7b-instruct', [{ base_url: upstream.baseUrl }]),
        remoteTierConfig('gpt-4-1106-preview', [{ base_url: upstream.baseUrl }]),
      ],
      policy: { version: 'bench', kind: 'threshold', threshold: { default: 0 } },
    });
    server = await startServer({ configPath: configFile, port: 0, logLevel: 'silent', watchPolicy: false });
    log('server bench: warming up');
    await cannon(server.url, 1, 2);
    log('server bench: /v1/route at 1 connection');
    const c1 = await cannon(server.url, 1, options.seconds);
    log('server bench: /v1/route at 16 connections');
    const c16 = await cannon(server.url, 16, options.seconds);

    const body = (model: string) =>
      JSON.stringify({
        model,
        messages: [{ role: 'user', content: QUESTION }],
        max_tokens: 1,
        temperature: 0,
      });
    const time = async (url: string, model: string) => {
      const t0 = performance.now();
      const response = await fetch(`${url}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: body(model),
      });
      if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
      await response.json();
      return performance.now() - t0;
    };
    const direct: number[] = [];
    const bypass: number[] = [];
    const routed: number[] = [];
    log(`server bench: ${options.chatRequests} chat requests per method, interleaved`);
    for (let i = 0; i <= options.chatRequests; i++) {
      const d = await time(upstream.baseUrl, 'm');
      const b = await time(`${server.url}/v1`, 'mixtral-8x7b-instruct');
      const r = await time(`${server.url}/v1`, 'mechroute');
      if (i === 0) continue; // warm-up round
      direct.push(d);
      bypass.push(b);
      routed.push(r);
    }
    const directSummary = summarize(direct);
    const routedSummary = summarize(routed);
    return {
      route: { concurrency_1: c1, concurrency_16: c16 },
      chat_overhead: {
        direct_upstream_ms: directSummary,
        via_router_bypass_ms: summarize(bypass),
        via_router_routed_ms: routedSummary,
        routing_overhead_p50_ms: Math.round((routedSummary.p50 - directSummary.p50) * 100) / 100,
      },
    };
  } finally {
    await server?.close();
    await upstream.close();
    await local.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}
