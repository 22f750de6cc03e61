import type { Command } from 'commander';
import { z } from 'zod';
import { DEFAULT_ENCODER_MODEL, type ModelManifest } from '../../models/manifest.js';
import { companionManifest, createManifestRegistry, modelPath } from '../../models/manifest-registry.js';
import { cachedState } from '../../models/model-cache.js';
import { createModelDownloader, describeSource } from '../../models/model-downloader.js';
import { createProgressReporter } from '../progress-reporter.js';

const PullOptionsSchema = z.object({
  ifMissing: z.boolean().default(false),
  verify: z.boolean().default(false),
  json: z.boolean().default(false),
});
const JsonOptionSchema = z.object({ json: z.boolean().default(false) });

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

/** Commander's output hook (stdout by default) lets tests capture output without patching stdout. */
function writerFor(command: Command): (text: string) => void {
  const out = command.configureOutput().writeOut ?? process.stdout.write.bind(process.stdout);
  return (text) => {
    out(text);
  };
}

function table(rows: readonly string[][]): string {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  return `${rows
    .map((r) =>
      r
        .map((cell, col) => cell.padEnd(widths[col]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

/** `mechroute models …`: the manifests shipped in models/ and the weights cached for them. */
export function registerModelsCommand(program: Command): void {
  const models = program.command('models').description('list, inspect and download model weights');

  models
    .command('pull')
    .description('download a model into the cache ($MECHROUTE_HOME/models) and verify its sha256')
    .argument('[name]', 'model name (see `mechroute models list`)', DEFAULT_ENCODER_MODEL)
    .option('--if-missing', 'do nothing, silently, when the file is already present')
    .option('--verify', 'when the file is present, check its sha256 too (a bad file is downloaded again)')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (name: string, rawOptions: unknown, command: Command) => {
      const options = PullOptionsSchema.parse(rawOptions);
      const write = writerFor(command);
      const manifest = createManifestRegistry().get(name);
      // The weights first, then the files they need beside them (an ONNX encoder's tokenizer).
      const parts = [manifest, ...manifest.companions.map((c) => companionManifest(manifest, c))];
      // --if-missing runs on every `npm install` / `npm test`: decide on a stat per file, load nothing else.
      if (options.ifMissing && !options.verify) {
        const states = await Promise.all(parts.map((m) => cachedState(m, modelPath(m))));
        if (states.every((s) => s.cached)) {
          if (options.json)
            write(`${JSON.stringify({ name, path: modelPath(manifest), status: 'present' })}\n`);
          return;
        }
      }
      const reporter = createProgressReporter();
      const abort = new AbortController();
      const onSigint = () => abort.abort(new Error('interrupted'));
      process.once('SIGINT', onSigint);
      try {
        const downloader = createModelDownloader({ onProgress: reporter.onProgress });
        const results = [];
        for (const part of parts) {
          results.push(await downloader.pull(part, { verify: options.verify, signal: abort.signal }));
        }
        reporter.stop();
        if (options.json) {
          const [main, ...companions] = results;
          write(`${JSON.stringify(companions.length > 0 ? { ...main, companions } : main, null, 2)}\n`);
        } else {
          for (const result of results) {
            if (result.status === 'downloaded') {
              write(
                `${result.name}: downloaded ${mb(result.bytes)} from ${result.source} in ${result.seconds} s -> ${result.path}\n`,
              );
            } else {
              const how =
                result.status === 'verified' ? 'sha256 verified' : 'size ok; --verify checks sha256';
              write(`${result.name}: already present (${how}) at ${result.path}\n`);
            }
          }
        }
      } catch (error) {
        if (!abort.signal.aborted) throw error;
        // Ctrl-C is a choice, not a bug: no stack trace, the shell's usual 130.
        reporter.stop();
        process.stderr.write('mechroute: pull interrupted; partial files removed\n');
        process.exitCode = 130;
      } finally {
        reporter.stop();
        process.off('SIGINT', onSigint);
      }
    });

  models
    .command('list')
    .description('list known models and whether their weights are cached')
    .option('--json', 'print a JSON array')
    .action(async (rawOptions: unknown, command: Command) => {
      const options = JsonOptionSchema.parse(rawOptions);
      const registry = createManifestRegistry();
      const rows = await Promise.all(
        registry.all.map(async (m) => ({ manifest: m, state: await cachedState(m, modelPath(m)) })),
      );
      const write = writerFor(command);
      if (options.json) {
        const out = rows.map(({ manifest: m, state }) => ({
          name: m.name,
          size: m.size,
          architecture: m.architecture,
          layers: m.layers,
          embedding_width: m.embedding_width,
          default: m.name === DEFAULT_ENCODER_MODEL,
          cached: state.cached,
          path: state.path,
        }));
        write(`${JSON.stringify(out, null, 2)}\n`);
        return;
      }
      write(
        table([
          ['NAME', 'SIZE', 'ARCH', 'LAYERS', 'WIDTH', 'CACHED'],
          ...rows.map(({ manifest: m, state }) => [
            m.name + (m.name === DEFAULT_ENCODER_MODEL ? ' (default)' : ''),
            mb(m.size),
            m.architecture,
            String(m.layers),
            String(m.embedding_width),
            state.cached ? 'yes' : state.bytes === undefined ? 'no' : 'incomplete',
          ]),
        ]),
      );
    });

  models
    .command('info')
    .description('show a model manifest, its cache path and its download sources')
    .argument('<name>', 'model name')
    .option('--json', 'print one JSON object')
    .action(async (name: string, rawOptions: unknown, command: Command) => {
      const options = JsonOptionSchema.parse(rawOptions);
      const manifest = createManifestRegistry().get(name);
      const state = await cachedState(manifest, modelPath(manifest));
      const write = writerFor(command);
      if (options.json) {
        write(`${JSON.stringify({ ...manifest, path: state.path, cached: state.cached }, null, 2)}\n`);
        return;
      }
      write(renderInfo(manifest, state.path, state.cached));
    });
}

function renderInfo(m: ModelManifest, path: string, cached: boolean): string {
  const lines = [
    `name:            ${m.name}${m.name === DEFAULT_ENCODER_MODEL ? ' (default encoder)' : ''}`,
    ...(m.description ? [`description:     ${m.description}`] : []),
    `file:            ${m.file}`,
    `size:            ${m.size} bytes (${mb(m.size)})`,
    `sha256:          ${m.sha256}`,
    `architecture:    ${m.architecture}`,
    `layers:          ${m.layers}`,
    `embedding width: ${m.embedding_width}`,
    `context length:  ${m.context_length}`,
    ...(m.license ? [`license:         ${m.license}`] : []),
    `path:            ${path}`,
    `cached:          ${cached ? 'yes' : 'no'}`,
    'sources (tried in order):',
    ...m.sources.map((s, i) => `  ${i + 1}. ${describeSource(s)}`),
  ];
  return `${lines.join('\n')}\n`;
}
