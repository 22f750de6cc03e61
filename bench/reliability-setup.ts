import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { remoteTierConfig, writeServerConfig } from '../test/support/server-config.js';
import { type HarnessUpstreams, UPSTREAM_KEYS } from './reliability-upstreams.js';

/**
 * The server the reliability harness runs: auth on, the shipped probes, the cheaper remote tier with two
 * deployments and the dearer with one (all loopback upstreams), a policy file for SIGHUP, and deadlines
 * short enough that a hang shows within seconds. The values are the harness's, written into the report.
 */
export const TOKENS = ['reliability-fuzz-token-7f3a9c', 'reliability-load-token-51be02'] as const;
export const TOKENS_ENV = 'MECHROUTE_RELIABILITY_TOKENS';

export const SERVER_SETTINGS = {
  request_timeout_ms: 10_000,
  receive_timeout_ms: 3_000,
  shutdown_drain_ms: 3_000,
} as const;

/** The cheaper tier's deployments fail fast (1 s per attempt) so fault runs stay short. */
export const MIXTRAL = {
  id: 'mixtral-8x7b-instruct',
  timeout_ms: 1_000,
  max_retries: 1,
  cooldown: { failures: 2, seconds: 0.5 },
} as const;
export const GPT4 = {
  id: 'gpt-4-1106-preview',
  timeout_ms: 9_000,
  max_retries: 1,
  cooldown: { failures: 3, seconds: 1 },
} as const;

export const policyYaml = (version: string, threshold: number) =>
  `version: "${version}"\nkind: threshold\non_unavailable: error\nthreshold:\n  default: ${threshold}\noutput_tokens:\n  default: 8\n`;

export interface HarnessConfig {
  configPath: string;
  policyPath: string;
  env: NodeJS.ProcessEnv;
}

export async function writeHarnessConfig(dir: string, upstreams: HarnessUpstreams): Promise<HarnessConfig> {
  const policyPath = join(dir, 'policy.yaml');
  await writeFile(policyPath, policyYaml('1', 0.5));
  const { id: mixtral, ...mixtralSettings } = MIXTRAL;
  const { id: gpt4, ...gpt4Settings } = GPT4;
  const configPath = await writeServerConfig(dir, {
    server: { host: '127.0.0.1', port: 0, auth_tokens_env: TOKENS_ENV, ...SERVER_SETTINGS },
    tiers: [
      remoteTierConfig(
        mixtral,
        [
          { base_url: upstreams.mixtralA.baseUrl, api_key_env: 'MIXTRAL_KEY' },
          { base_url: upstreams.mixtralB.baseUrl, api_key_env: 'MIXTRAL_KEY' },
        ],
        mixtralSettings,
      ),
      remoteTierConfig(gpt4, [{ base_url: upstreams.gpt4.baseUrl, api_key_env: 'GPT4_KEY' }], gpt4Settings),
    ],
    policy_file: policyPath,
  });
  return { configPath, policyPath, env: { [TOKENS_ENV]: TOKENS.join(','), ...UPSTREAM_KEYS } };
}
