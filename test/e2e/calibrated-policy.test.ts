import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { DEFAULT_PROBES_PATH } from '../../src/config/config-loader.js';
import { packageRoot } from '../../src/paths.js';
import { type RunningServer, startServer } from '../../src/server/server.js';
import { mmluLinesBySubject } from '../support/mmlu-slice.js';
import { remoteTierConfig, type SharedRemoteTier, writeServerConfig } from '../support/server-config.js';

/**
 * Calibration end to end: `mechroute calibrate` (a real CLI process, the real encoder) writes a policy
 * from real MMLU traces; `config check` accepts it; a running server (real encoder, default probes)
 * hot-loads it when it replaces the watched policy file and decides by its thresholds; `mechroute policy
 * rollback` (a real CLI process over HTTP) returns the server to the previous version's decisions.
 * /v1/route only decides, so the two remote tiers need credentials but no upstream.
 */
const run = promisify(execFile);
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  run(process.execPath, [join(packageRoot, 'bin', 'mechroute.js'), ...args], {
    cwd: packageRoot,
    env: { ...process.env, ...env },
    maxBuffer: 16 * 1024 * 1024,
  });
const WEAK = 'mixtral-8x7b-instruct';
const STRONG = 'gpt-4-1106-preview';
const env = { MIXTRAL_KEY: 'sk-test-m', GPT4_KEY: 'sk-test-g', MECHROUTE_TEST_TOKENS: 'admin-token-1' };

let dir: string;
let server: RunningServer;
let policyFile: string;
let configFile: string;
let golden: string;
let prompts: string[];
let probes: string;

// Version "1": threshold 0, so every request goes to the cheapest tier with a probe (Mixtral).
const firstPolicy = 'version: "1"\nkind: threshold\nthreshold:\n  default: 0\n';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mechroute-calibrate-e2e-'));
  // The 2 shortest questions of each of 20 subjects no other test reads (bench-routing and train-eval
  // take the first 20): 40 questions across the four subject groups, both tiers' outcomes. Short, since
  // each is encoded three times (train-classes, calibrate, the server).
  const picked = (await mmluLinesBySubject()).slice(20, 40).flatMap((subject) => subject.slice(0, 2));
  golden = join(dir, 'golden.jsonl');
  await writeFile(golden, `${picked.join('\n')}\n`);
  prompts = picked.map((l) => (JSON.parse(l) as { prompt: string }).prompt);
  // The default probes plus a task-class head (MMLU subject groups) trained on the same questions.
  probes = join(dir, 'probes-with-classes.json');
  await cli([
    'train-classes',
    '--probes',
    DEFAULT_PROBES_PATH,
    '--traces',
    golden,
    '--source',
    'mmlu-group',
    '--out',
    probes,
  ]);
  policyFile = join(dir, 'policy.yaml');
  await writeFile(policyFile, firstPolicy);
  // Routing decisions only: the upstreams are never called (port 9, discard).
  const tier = (id: SharedRemoteTier, key: string) =>
    remoteTierConfig(id, [{ base_url: 'http://127.0.0.1:9/v1', api_key_env: key }]);
  configFile = await writeServerConfig(dir, {
    server: { host: '127.0.0.1', port: 0, auth_tokens_env: 'MECHROUTE_TEST_TOKENS' },
    encoder: { model: 'gemma-3-270m-q4_k_m', gpu: 'auto' },
    probes: { path: probes },
    tiers: [tier(WEAK, 'MIXTRAL_KEY'), tier(STRONG, 'GPT4_KEY')],
    policy_file: policyFile,
  });
  server = await startServer({
    configPath: configFile,
    port: 0,
    env,
    logLevel: 'warn',
    logStream: { write: () => {} },
  });
});

after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const auth = { authorization: 'Bearer admin-token-1' };
// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = any;
const decide = async (prompt: string): Promise<Json> => {
  const response = await fetch(`${server.url}/v1/route`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify({ prompt }),
  });
  assert.equal(response.status, 200);
  return response.json();
};
const currentVersion = async (): Promise<string> =>
  ((await (await fetch(`${server.url}/admin/policy`, { headers: auth })).json()) as Json).policy_version;

describe('calibrated policy, served', () => {
  let calibrated: Json;

  it('calibrate writes a versioned policy that config check accepts', async () => {
    const out = join(dir, 'calibrated.yaml');
    const chart = join(dir, 'pareto.svg');
    const { stdout } = await cli([
      'calibrate',
      '--probes',
      probes,
      '--per-class',
      '--traces',
      golden,
      '--target',
      '1',
      '--resamples',
      '200',
      '--version',
      'cal-e2e',
      '--out',
      out,
      '--chart',
      chart,
    ]);
    assert.match(stdout, /class all: n = 40/);
    assert.match(stdout, /← chosen/);
    assert.match(await readFile(chart, 'utf8'), /^<svg/);
    calibrated = parse(await readFile(out, 'utf8'));
    assert.equal(calibrated.version, 'cal-e2e');
    assert.equal(calibrated.calibration.traces.n, 40);
    assert.match(calibrated.calibration.traces.sha256, /^[0-9a-f]{64}$/);
    assert.equal(calibrated.calibration.classes.all.reached, true);
    assert.ok(
      calibrated.calibration.classes.all.tier_shares[STRONG] > 0,
      'target 1.0 needs some GPT-4 calls',
    );

    const checkConfig = join(dir, 'check.json');
    const config = JSON.parse(await readFile(configFile, 'utf8'));
    await writeFile(checkConfig, JSON.stringify({ ...config, policy_file: out }));
    const check = await cli(['config', 'check', checkConfig, '--json'], env);
    const report = JSON.parse(check.stdout);
    assert.equal(report.valid, true);
    assert.equal(report.policy.version, 'cal-e2e');
  });

  it('the running server hot-loads it and decides by its thresholds', async () => {
    const before = await Promise.all(prompts.slice(0, 10).map(decide));
    for (const d of before) {
      assert.equal(d.policy_version, '1');
      assert.equal(d.tier, WEAK);
    }
    // Replace the watched file atomically, as config management does.
    const staged = join(dir, 'policy.yaml.new');
    await writeFile(staged, await readFile(join(dir, 'calibrated.yaml')));
    await rename(staged, policyFile);
    for (let i = 0; i < 200 && (await currentVersion()) !== 'cal-e2e'; i += 1) await sleep(50);
    assert.equal(await currentVersion(), 'cal-e2e');

    let strong = 0;
    for (const prompt of prompts) {
      const d = await decide(prompt);
      assert.equal(d.policy_version, 'cal-e2e');
      // The class head answers with every decision; its class picks the thresholds.
      assert.equal(typeof d.task_class.name, 'string');
      assert.ok(d.task_class.p > 0 && d.task_class.p <= 1);
      const own = calibrated.threshold.classes[d.task_class.name]?.tiers[WEAK];
      const threshold = (own ?? calibrated.threshold.tiers[WEAK]) as number;
      assert.equal(
        d.tier,
        d.p_success[WEAK] >= threshold ? WEAK : STRONG,
        `P = ${d.p_success[WEAK]}, θ = ${threshold}`,
      );
      if (d.tier === STRONG) strong += 1;
    }
    assert.ok(strong > 0, 'the calibrated threshold sends some requests to the frontier');
  });

  it('policy rollback (CLI) restores the previous version and its decisions', async () => {
    const denied = await cli(['policy', 'rollback', '--url', server.url], {
      MECHROUTE_ADMIN_TOKEN: 'wrong',
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    assert.ok(denied, 'a wrong token must fail');
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /401/);
    assert.doesNotMatch(denied.stderr, /wrong/, 'the token is never printed');
    assert.equal(await currentVersion(), 'cal-e2e');

    const shown = await cli(['policy', 'show', '--url', server.url], {
      MECHROUTE_ADMIN_TOKEN: 'admin-token-1',
    });
    assert.match(shown.stdout, /policy cal-e2e \(threshold\); earlier versions kept: 1/);
    const { stdout } = await cli(['policy', 'rollback', '--url', server.url], {
      MECHROUTE_ADMIN_TOKEN: 'admin-token-1',
    });
    assert.match(stdout, /rolled back from cal-e2e to policy version 1/);
    for (const prompt of prompts.slice(0, 10)) {
      const d = await decide(prompt);
      assert.equal(d.policy_version, '1');
      assert.equal(d.tier, WEAK);
    }
  });
});
