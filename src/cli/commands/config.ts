import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import {
  DEFAULT_CONFIG_PATH,
  type LoadedConfig,
  loadConfig,
  resolveSecrets,
} from '../../config/config-loader.js';
import { configJsonSchema } from '../../config/config-schema.js';
import { FileUnreadableError, InvalidFileError } from '../../errors.js';
import { isLoopback } from '../../loopback.js';

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
    .description('validate a config (and its policy file); list every error with its path')
    .argument('[file]', 'config file', DEFAULT_CONFIG_PATH)
    .option('--json', 'print one JSON object instead of text')
    .action(async (file: string, options: { json?: boolean }, command: Command) => {
      let loaded: LoadedConfig;
      try {
        loaded = await loadConfig(file);
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
      const report = summarize(loaded);
      writeOut(command, options.json ? `${JSON.stringify(report, null, 2)}\n` : renderText(report));
    });
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

interface CheckReport {
  file: string;
  valid: true;
  server: string;
  policy: {
    version: string;
    kind: string;
    source: string;
    on_unavailable: string;
    /** From `mechroute calibrate`: when, on which traces, to what target, per class. */
    calibration?: { date: string; traces_sha256: string; target: number; classes: string[] };
  };
  probes: string;
  tiers: { id: string; provider: string; price: string; available: boolean; reason?: string }[];
  warnings: string[];
}

/** Tier ids the probe bundle predicts, read loosely: the full bundle check needs the encoder. */
function bundleTierIds(path: string): string[] | undefined {
  try {
    const bundle = JSON.parse(readFileSync(path, 'utf8')) as {
      tiers?: { id?: unknown }[];
      mlp?: { tiers?: unknown };
    };
    const ids = (bundle.tiers ?? []).map((t) => t.id).filter((id): id is string => typeof id === 'string');
    const mlp = Array.isArray(bundle.mlp?.tiers)
      ? bundle.mlp.tiers.filter((id) => typeof id === 'string')
      : [];
    return [...ids, ...mlp];
  } catch {
    return undefined;
  }
}

function summarize(config: LoadedConfig): CheckReport {
  const warnings: string[] = [];
  const secrets = resolveSecrets(config);
  warnings.push(...secrets.problems);
  const { host, port } = config.server;
  if (!isLoopback(host) && !config.server.auth_tokens_env) {
    warnings.push(
      `server.host is ${host} with no server.auth_tokens_env: anyone who can reach port ${port} can spend the remote tiers' budget`,
    );
  }
  if (!existsSync(config.probes.path)) {
    warnings.push(
      `probe bundle ${config.probes.path} does not exist yet (train one with \`mechroute train\`)`,
    );
  } else {
    const predicted = bundleTierIds(config.probes.path);
    if (predicted === undefined) warnings.push(`probe bundle ${config.probes.path} is not readable JSON`);
    for (const tier of config.tiers) {
      if (predicted && !predicted.includes(tier.id)) {
        warnings.push(`tier ${tier.id} has no probe in the bundle: policies only reach it as a fallback`);
      }
    }
  }
  if (!secrets.tiers.some((t) => t.available)) warnings.push('no tier is available in this environment');
  return {
    file: config.file,
    valid: true,
    server: `${host}:${port}${config.server.auth_tokens_env ? ` (auth: ${config.server.auth_tokens_env})` : ' (no auth)'}`,
    policy: {
      version: config.policy.version,
      kind: config.policy.kind,
      source: config.policy_file ?? 'inline',
      on_unavailable: config.policy.on_unavailable,
      ...(config.policy.calibration
        ? {
            calibration: {
              date: config.policy.calibration.date,
              traces_sha256: config.policy.calibration.traces.sha256,
              target: config.policy.calibration.target,
              classes: Object.keys(config.policy.calibration.classes),
            },
          }
        : {}),
    },
    probes: config.probes.path,
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

function renderText(report: CheckReport): string {
  const width = Math.max(...report.tiers.map((t) => t.id.length));
  const priceWidth = Math.max(...report.tiers.map((t) => t.price.length));
  const lines = [
    `config ${report.file} is valid`,
    `server: ${report.server}`,
    `policy: ${report.policy.kind}, version ${report.policy.version} (${report.policy.source}), on_unavailable: ${report.policy.on_unavailable}`,
    ...(report.policy.calibration
      ? [
          `calibrated: ${report.policy.calibration.date}, target ${report.policy.calibration.target} × frontier quality, ` +
            `traces sha256 ${report.policy.calibration.traces_sha256.slice(0, 12)}…, classes ${report.policy.calibration.classes.join(', ')}`,
        ]
      : []),
    `probes: ${report.probes}`,
    'tiers (availability in this environment):',
    ...report.tiers.map(
      (t) =>
        `  ${t.id.padEnd(width)}  ${t.provider.padEnd(6)}  ${t.price.padEnd(priceWidth)}  ${t.available ? 'available' : `unavailable: ${t.reason}`}`,
    ),
  ];
  if (report.warnings.length > 0) lines.push('warnings:', ...report.warnings.map((w) => `  - ${w}`));
  return `${lines.join('\n')}\n`;
}
