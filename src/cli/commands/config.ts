import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import {
  DEFAULT_CONFIG_PATH,
  type LoadedConfig,
  loadConfig,
  resolveSecrets,
} from '../../config/config-loader.js';
import { configJsonSchema } from '../../config/config-schema.js';
import { parsePolicy } from '../../config/policy-file.js';
import { readStructuredFile } from '../../config/structured-file.js';
import { FileUnreadableError, InvalidFileError } from '../../errors.js';
import { isLoopback } from '../../loopback.js';
import { resolveCachedModel } from '../../models/manifest-registry.js';
import { type Policy, policyTierReferences } from '../../policy/policy-schema.js';
import { type ConfigFileCheck, checkConfigFiles } from '../../server/config-files.js';

/** `mechroute config …`: the config file's JSON Schema, and a checker that explains every error. */
export function registerConfigCommand(program: Command): void {
  const config = program.command('config').description('server config files (YAML or JSON)');

  config
    .command('schema')
    .description('print the JSON Schema of the config file (for editors and CI)')
    .option('-o, --output <file>', 'write it to a file instead')
    .action(async (options: { output?: string }, command: Command) => {
      const text = `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
      if (options.output) await writeFile(options.output, text, 'utf8');
      else writeOut(command, text);
    });

  config
    .command('check')
    .description(
      'validate a config and every file it names (probe bundles, step bundle, policy file, text-classifier ' +
        'model, the encoder weights), or a policy file on its own; list every error with its path',
    )
    .argument(
      '[file]',
      'config file, or a policy file (as `mechroute calibrate` writes)',
      DEFAULT_CONFIG_PATH,
    )
    .option('--json', 'print one JSON object instead of text')
    .action(async (file: string, options: { json?: boolean }, command: Command) => {
      let report: CheckReport | PolicyReport;
      try {
        const value = await readStructuredFile(file, 'config');
        report = isPolicyDocument(value)
          ? policyReport(file, parsePolicy(value, file))
          : await summarize(await loadConfig(file));
      } catch (error) {
        // Invalid or unreadable input is the answer this command exists to give, not a crash.
        if (!(error instanceof InvalidFileError || error instanceof FileUnreadableError)) throw error;
        const errors = error instanceof InvalidFileError ? detailLines(error.message) : [error.message];
        writeOut(
          command,
          options.json
            ? `${JSON.stringify({ file, valid: false, code: error.code, errors }, null, 2)}\n`
            : `${error.message}\n`,
        );
        process.exitCode = 1;
        return;
      }
      if (!report.valid) process.exitCode = 1;
      const text = report.kind === 'policy' ? renderPolicy(report) : renderText(report);
      writeOut(command, options.json ? `${JSON.stringify(report, null, 2)}\n` : text);
    });
}

/**
 * A policy file (what `mechroute calibrate` writes, or a config's `policy_file`): a `kind` at the top and
 * none of a config's sections. A config always has `tiers`.
 */
function isPolicyDocument(value: unknown): boolean {
  return (
    value !== null &&
    typeof value === 'object' &&
    'kind' in value &&
    !('tiers' in value) &&
    !('server' in value)
  );
}

function writeOut(command: Command, text: string): void {
  // Commander's output hook (stdout by default) lets tests capture the report without patching stdout.
  (command.configureOutput().writeOut ?? process.stdout.write.bind(process.stdout))(text);
}

/** The "  - path: message" lines of an InvalidFileError, without the leading "  - ". */
function detailLines(message: string): string[] {
  return message
    .split('\n')
    .filter((line) => line.startsWith('  - '))
    .map((line) => line.slice(4));
}

interface PolicySummary {
  version: string;
  kind: string;
  source: string;
  on_unavailable: string;
  /** From `mechroute calibrate`: when, on which traces, to what target, per class. */
  calibration?: { date: string; traces_sha256: string; target: number; classes: string[] };
}

interface PolicyReport {
  kind: 'policy';
  file: string;
  valid: true;
  policy: PolicySummary;
  /** Tiers the policy names; a config that uses it must define them. */
  tiers: string[];
}

interface CheckReport {
  kind: 'config';
  file: string;
  /** False when a file the config names cannot be used (the server would not start). */
  valid: boolean;
  server: string;
  policy: PolicySummary;
  probes: string;
  /** Every file the config names, loaded as `serve` loads it. */
  files: ConfigFileCheck[];
  tiers: { id: string; provider: string; price: string; available: boolean; reason?: string }[];
  warnings: string[];
}

function policySummary(policy: Policy, source: string): PolicySummary {
  return {
    version: policy.version,
    kind: policy.kind,
    source,
    on_unavailable: policy.on_unavailable,
    ...(policy.calibration
      ? {
          calibration: {
            date: policy.calibration.date,
            traces_sha256: policy.calibration.traces.sha256,
            target: policy.calibration.target,
            classes: Object.keys(policy.calibration.classes),
          },
        }
      : {}),
  };
}

function policyReport(file: string, policy: Policy): PolicyReport {
  return {
    kind: 'policy',
    file: resolve(file),
    valid: true,
    policy: policySummary(policy, 'this file'),
    tiers: [...new Set(policyTierReferences(policy).map((ref) => ref.tier))],
  };
}

/** Local tiers whose model is not downloaded are reported unavailable by `serve`: say so beforehand. */
function localModelWarnings(config: LoadedConfig): string[] {
  return config.tiers.flatMap((tier) => {
    if (tier.provider !== 'local') return [];
    if (/\.gguf$/i.test(tier.model)) {
      return existsSync(tier.model) ? [] : [`tier ${tier.id}: model file ${tier.model} does not exist`];
    }
    try {
      resolveCachedModel(tier.model);
      return [];
    } catch (error) {
      return [`tier ${tier.id} will be unavailable: ${(error as Error).message}`];
    }
  });
}

async function summarize(config: LoadedConfig): Promise<CheckReport> {
  const warnings: string[] = [];
  const secrets = resolveSecrets(config);
  warnings.push(...secrets.problems);
  const { host, port } = config.server;
  if (!isLoopback(host) && !config.server.auth_tokens_env) {
    warnings.push(
      `server.host is ${host} with no server.auth_tokens_env: anyone who can reach port ${port} can spend the remote tiers' budget`,
    );
  }
  const files = await checkConfigFiles(config);
  const probed = files.find((f) => f.key === 'probes.path')?.tiers;
  for (const tier of config.tiers) {
    if (probed && !probed.includes(tier.id)) {
      warnings.push(`tier ${tier.id} has no probe in the bundle: policies only reach it as a fallback`);
    }
  }
  warnings.push(...localModelWarnings(config));
  if (!secrets.tiers.some((t) => t.available)) warnings.push('no tier is available in this environment');
  return {
    kind: 'config',
    file: config.file,
    valid: files.every((f) => f.ok),
    server: `${host}:${port}${config.server.auth_tokens_env ? ` (auth: ${config.server.auth_tokens_env})` : ' (no auth)'}`,
    policy: policySummary(config.policy, config.policy_file ?? 'inline'),
    probes: config.probes.path,
    files,
    tiers: config.tiers.map((tier) => {
      const state = secrets.tiers.find((t) => t.id === tier.id)!;
      return {
        id: tier.id,
        provider: tier.provider,
        price: `$${tier.price.input_per_mtok}/$${tier.price.output_per_mtok} per Mtok`,
        available: state.available,
        ...(state.reason ? { reason: state.reason } : {}),
      };
    }),
    warnings,
  };
}

function policyLines(policy: PolicySummary): string[] {
  return [
    `policy: ${policy.kind}, version ${policy.version} (${policy.source}), on_unavailable: ${policy.on_unavailable}`,
    ...(policy.calibration
      ? [
          `calibrated: ${policy.calibration.date}, target ${policy.calibration.target} × frontier quality, ` +
            `traces sha256 ${policy.calibration.traces_sha256.slice(0, 12)}…, classes ${policy.calibration.classes.join(', ')}`,
        ]
      : []),
  ];
}

function renderPolicy(report: PolicyReport): string {
  return `${[
    `policy file ${report.file} is valid`,
    ...policyLines(report.policy),
    `tiers it names: ${report.tiers.join(', ') || 'none'}`,
    'to use it, name it as `policy_file:` in a config; `mechroute config check CONFIG` then checks these tiers against the config’s',
  ].join('\n')}\n`;
}

function renderText(report: CheckReport): string {
  const width = Math.max(...report.tiers.map((t) => t.id.length));
  const priceWidth = Math.max(...report.tiers.map((t) => t.price.length));
  const keyWidth = Math.max(...report.files.map((f) => f.key.length));
  const broken = report.files.filter((f) => !f.ok).length;
  const lines = [
    report.valid
      ? `config ${report.file} is valid`
      : `config ${report.file} is valid, but ${broken} file${broken === 1 ? '' : 's'} it names cannot be used (serve would not start):`,
    `server: ${report.server}`,
    ...policyLines(report.policy),
    'files (paths resolved as serve resolves them):',
    ...report.files.map(
      (f) => `  ${f.key.padEnd(keyWidth)}  ${(f.ok ? 'ok' : 'ERROR').padEnd(5)}  ${f.path}: ${f.detail}`,
    ),
    'tiers (availability in this environment):',
    ...report.tiers.map(
      (t) =>
        `  ${t.id.padEnd(width)}  ${t.provider.padEnd(6)}  ${t.price.padEnd(priceWidth)}  ${t.available ? 'available' : `unavailable: ${t.reason}`}`,
    ),
  ];
  if (report.warnings.length > 0) lines.push('warnings:', ...report.warnings.map((w) => `  - ${w}`));
  return `${lines.join('\n')}\n`;
}
