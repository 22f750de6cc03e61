import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { inspect } from 'node:util';
import { stringify } from 'yaml';
import {
  DEFAULT_CONFIG_PATH,
  DEFAULT_PROBES_PATH,
  loadConfig,
  parseConfig,
  resolveSecrets,
  routeTiers,
} from '../../../src/config/config-loader.js';
import { type ConfigInput, looksLikeSecret } from '../../../src/config/config-schema.js';
import { FileUnreadableError, InvalidFileError } from '../../../src/errors.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mechroute-config-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const minimal = (): ConfigInput => ({
  tiers: [
    { id: 'small', provider: 'local', model: 'gemma-3-270m-q4_k_m', context_window: 8192 },
    {
      id: 'big',
      provider: 'openai',
      model: 'gpt-4o',
      price: { input_per_mtok: 2.5, output_per_mtok: 10 },
      context_window: 128_000,
      deployments: [{ base_url: 'https://api.openai.com/v1', api_key_env: 'OPENAI_API_KEY' }],
    },
  ],
  policy: { version: '7', kind: 'utility', utility: {}, threshold: { tiers: { big: 0.8 } } },
});

/** The "path: message" lines of a config that is refused. */
function errorsOf(value: unknown): string[] {
  try {
    parseConfig(value, 'test.yaml');
  } catch (error) {
    assert.ok(error instanceof InvalidFileError, String(error));
    return error.message
      .split('\n')
      .slice(1)
      .map((l) => l.replace(/^ {2}- /, ''));
  }
  assert.fail('config was accepted');
}

describe('config schema', () => {
  test('fills defaults: loopback host, port 8080, default encoder, per-tier retries and cooldown', () => {
    const config = parseConfig(minimal(), 'x.json');
    assert.equal(config.server.host, '127.0.0.1');
    assert.equal(config.server.port, 8080);
    assert.equal(config.server.auth_tokens_env, undefined);
    assert.equal(config.encoder.model, 'gemma-3-270m-q4_k_m');
    assert.deepEqual(config.tiers[0]!.price, { input_per_mtok: 0, output_per_mtok: 0 });
    assert.deepEqual(config.tiers[1]!.cooldown, { failures: 3, seconds: 30 });
    assert.equal(config.tiers[1]!.max_retries, 2);
    assert.equal(config.policy?.on_unavailable, 'error');
    assert.equal(config.policy?.utility.lambda, 20);
    assert.equal(config.policy_history, 10);
  });

  test('semantic mode: signal defaults to probes; text-embedding needs text_embedding.model', () => {
    assert.equal(parseConfig(minimal(), 'x.json').policy?.signal, 'probes');
    const semantic = {
      ...minimal(),
      policy: { version: '8', kind: 'threshold', threshold: {}, signal: 'text-embedding' },
    };
    assert.deepEqual(errorsOf(semantic), [
      'text_embedding.model: policy.signal is text-embedding: name the text-classifier model here',
    ]);
    const config = parseConfig(
      { ...semantic, text_embedding: { model: 'models/sentence-lr.json' } },
      'x.json',
    );
    assert.equal(config.text_embedding.model, 'models/sentence-lr.json');
    assert.ok(
      errorsOf({ ...semantic, policy: { ...semantic.policy, signal: 'vibes' } })[0]!.startsWith(
        'policy.signal',
      ),
    );
  });

  test('every error is listed with its path', () => {
    const bad = minimal() as Record<string, unknown> & { tiers: Record<string, unknown>[] };
    bad.server = { port: 70_000, prot: 1 };
    (bad.tiers[1]!.price as Record<string, unknown>).input_per_mtok = 'cheap';
    bad.tiers.push({ ...bad.tiers[0], deployments: [] });
    bad.tiers.push({
      id: 'x',
      provider: 'openai',
      model: 'm',
      price: { input_per_mtok: 1, output_per_mtok: 1 },
      context_window: 1,
      deployments: [{ base_url: 'https://a', base_url_env: 'B' }],
    });
    bad.policy = { version: '', kind: 'fastest' };
    bad.policy_history = 0;
    const errors = errorsOf(bad);
    const expected = [
      'server: Unrecognized key: "prot"',
      /^server\.port: Too big: expected number to be <=65535$/,
      'tiers.1.price.input_per_mtok: Invalid input: expected number, received string',
      'tiers.2: deployments are for provider openai; a local tier runs in this process',
      'tiers.3.deployments.0.base_url: give exactly one of base_url and base_url_env',
      'policy.version: version must not be empty',
      /^policy\.kind: Invalid option: expected one of "threshold"/,
      /^policy_history: Too small: expected number to be >=1$/,
    ];
    for (const e of expected) {
      assert.ok(
        errors.some((line) => (typeof e === 'string' ? line === e : e.test(line))),
        `${e} in\n${errors.join('\n')}`,
      );
    }
  });

  test('cross-field checks: duplicate tier ids, unknown tiers in the policy, policy and policy_file together', () => {
    const config = minimal() as Record<string, unknown> & { tiers: Record<string, unknown>[] };
    config.tiers.push({ ...config.tiers[0] });
    config.policy = { version: '1', kind: 'threshold', threshold: { tiers: { bigg: 0.9 } } };
    config.policy_file = 'policy.yaml';
    assert.deepEqual(errorsOf(config), [
      'tiers.2.id: "small" is already tiers.0',
      'policy_file: give either policy or policy_file, not both',
      'policy.threshold.tiers.bigg: unknown tier "bigg" (configured: small, big)',
    ]);
    // An inline policy, like a policy file, must write its kind's section (a torn config would not).
    assert.deepEqual(errorsOf({ ...minimal(), policy: { version: '1', kind: 'cascade', cascade: {} } }), [
      'policy.threshold: missing: a policy of kind cascade must write its threshold section ' +
        '(`threshold: {}` for the defaults), or a file cut short would route on defaults',
    ]);
  });

  test('a literal API key is refused wherever it appears', () => {
    const key = `sk-proj-${'a1B2c3D4'.repeat(4)}`;
    const inEnv = minimal();
    (inEnv.tiers[1] as { deployments: Record<string, unknown>[] }).deployments[0]!.api_key_env = key;
    assert.deepEqual(errorsOf(inEnv), [
      'tiers.1.deployments.0.api_key_env: looks like a literal credential; configs hold only the NAME of an environment variable that holds it (e.g. api_key_env: OPENAI_API_KEY)',
    ]);
    const field = minimal();
    (field.tiers[1] as { deployments: Record<string, unknown>[] }).deployments[0]!.api_key = 'hunter2';
    assert.match(
      errorsOf(field)[0]!,
      /^tiers\.1\.deployments\.0: credentials are not accepted in a config \(api_key\); use api_key_env/,
    );
    const elsewhere = minimal();
    (elsewhere.tiers[1] as { model: string }).model = key;
    assert.match(errorsOf(elsewhere)[0]!, /^tiers\.1\.model: looks like a literal credential/);
    const inUrl = minimal();
    (inUrl.tiers[1] as { deployments: Record<string, unknown>[] }).deployments[0]!.base_url =
      'https://user:pw@example.com/v1';
    assert.match(errorsOf(inUrl)[0]!, /^tiers\.1\.deployments\.0\.base_url: looks like a literal credential/);
    const random = minimal();
    random.server = { auth_tokens_env: 'a8Fk2mQ9xL4pR7tZ1vB6nC3' };
    assert.match(errorsOf(random)[0]!, /^server\.auth_tokens_env: looks like a literal credential/);
    assert.equal(looksLikeSecret('mistralai/Mixtral-8x7B-Instruct-v0.1'), false);
    assert.equal(looksLikeSecret('Bearer abcdefghijkl'), true);
  });
});

describe('loadConfig', () => {
  test('YAML and JSON load to the same config; a policy_file is loaded relative to the config', async () => {
    const config = {
      ...minimal(),
      policy: undefined,
      policy_file: 'policy.yaml',
      probes: { path: 'my-probes.json' },
    };
    await writeFile(join(dir, 'policy.yaml'), 'version: "2"\nkind: budget\nbudget: {}\n');
    await writeFile(join(dir, 'c.yaml'), stringify(config));
    await writeFile(join(dir, 'c.json'), JSON.stringify(config));
    await writeFile(join(dir, 'c.conf'), JSON.stringify(config));
    const yaml = await loadConfig(join(dir, 'c.yaml'));
    const json = await loadConfig(join(dir, 'c.json'));
    assert.equal(yaml.policy.version, '2');
    assert.equal(yaml.policy.kind, 'budget');
    assert.equal(yaml.policy_file, join(dir, 'policy.yaml'));
    assert.equal(yaml.probes.path, join(dir, 'my-probes.json'));
    assert.deepEqual({ ...json, file: '' }, { ...yaml, file: '' });
    assert.deepEqual({ ...(await loadConfig(join(dir, 'c.conf'))), file: '' }, { ...yaml, file: '' });
  });

  test('syntax errors name the line; a missing file is FileUnreadableError', async () => {
    await writeFile(join(dir, 'dup.yaml'), 'tiers: []\ntiers: []\n');
    await assert.rejects(loadConfig(join(dir, 'dup.yaml')), /Map keys must be unique at line 2, column 1/);
    await writeFile(join(dir, 'bad.json'), '{"tiers": [}');
    await assert.rejects(loadConfig(join(dir, 'bad.json')), /not valid JSON/);
    await writeFile(join(dir, 'empty.yaml'), '\n');
    await assert.rejects(loadConfig(join(dir, 'empty.yaml')), /the file is empty/);
    await assert.rejects(loadConfig(join(dir, 'nope.yaml')), FileUnreadableError);
    await writeFile(
      join(dir, 'bad-policy.yaml'),
      stringify({ ...minimal(), policy: undefined, policy_file: 'p.json' }),
    );
    await writeFile(
      join(dir, 'p.json'),
      JSON.stringify({
        version: '1',
        kind: 'threshold',
        threshold: {},
        output_tokens: { tiers: { huge: 10 } },
      }),
    );
    await assert.rejects(
      loadConfig(join(dir, 'bad-policy.yaml')),
      /invalid policy .*p\.json:\n {2}- output_tokens\.tiers\.huge: unknown tier "huge"/,
    );
  });

  test('the shipped default config loads: three tiers, threshold policy version "1", loopback', async () => {
    const config = await loadConfig(DEFAULT_CONFIG_PATH);
    assert.deepEqual(
      config.tiers.map((t) => [t.id, t.provider, t.price.input_per_mtok, t.price.output_per_mtok]),
      [
        ['gemma-3-270m', 'local', 0, 0],
        ['mixtral-8x7b-instruct', 'openai', 0.24, 0.24],
        ['gpt-4-1106-preview', 'openai', 10, 30],
      ],
    );
    assert.equal(config.policy.kind, 'threshold');
    assert.equal(config.policy.version, '1');
    assert.equal(config.policy.on_unavailable, 'error');
    assert.equal(config.server.host, '127.0.0.1');
    assert.equal(config.probes.path, DEFAULT_PROBES_PATH);
  });
});

describe('resolveSecrets', () => {
  const config = () => parseConfig(minimal(), 'x.json');

  test('a remote tier without its variables is unavailable; a local tier needs none', () => {
    const secrets = resolveSecrets(config(), {});
    assert.deepEqual(
      secrets.tiers.map((t) => [t.id, t.available, t.reason]),
      [
        ['small', true, undefined],
        ['big', false, 'OPENAI_API_KEY is not set'],
      ],
    );
    assert.deepEqual(routeTiers(config(), secrets)[1], {
      id: 'big',
      price: { input_per_mtok: 2.5, output_per_mtok: 10 },
      available: false,
      unavailable_reason: 'OPENAI_API_KEY is not set',
    });
    assert.equal(secrets.auth_required, false);
  });

  test('the first deployments lacking variables are skipped; keys never print', () => {
    const c = parseConfig(
      {
        ...minimal(),
        server: { auth_tokens_env: 'TOKENS' },
        tiers: [
          {
            id: 'big',
            provider: 'openai',
            model: 'gpt-4o',
            price: { input_per_mtok: 1, output_per_mtok: 1 },
            context_window: 1000,
            deployments: [
              { base_url_env: 'PRIMARY_URL', api_key_env: 'PRIMARY_KEY' },
              { base_url: 'http://localhost:8000/v1/', model: 'local-name', timeout_ms: 5 },
            ],
          },
        ],
        policy: undefined,
      },
      'x.json',
    );
    const env = { PRIMARY_URL: 'https://primary/v1', PRIMARY_KEY: 'sk-secret-value', TOKENS: ' t1, ,t2 ' };
    const secrets = resolveSecrets(c, env);
    const [tier] = secrets.tiers;
    assert.equal(tier!.available, true);
    assert.equal(tier!.deployments.length, 2);
    assert.equal(tier!.deployments[0]!.api_key?.reveal(), 'sk-secret-value');
    assert.deepEqual(tier!.deployments[1], {
      base_url: 'http://localhost:8000/v1',
      model: 'local-name',
      timeout_ms: 5,
    });
    assert.deepEqual(
      secrets.auth_tokens.map((t) => t.reveal()),
      ['t1', 't2'],
    );
    const printed = `${JSON.stringify(secrets)} ${inspect(secrets, { depth: 10 })} ${String(secrets.auth_tokens[0])}`;
    assert.ok(!printed.includes('sk-secret-value') && !printed.includes('t1'), printed);
    assert.equal(resolveSecrets(c, { PRIMARY_URL: 'https://primary/v1' }).tiers[0]!.deployments.length, 1);
    assert.deepEqual(resolveSecrets(c, {}).problems, [
      'server.auth_tokens_env names TOKENS, which is not set or holds no tokens',
    ]);
  });
});
