import { type Command, Option } from 'commander';
import { z } from 'zod';
import { loadBundleFor } from '../../../training/bundle-features.js';
import {
  type AddReport,
  type AnchorsReport,
  addTier,
  type ClustersReport,
  chooseAnchors,
  fitBundleClusters,
} from '../../../training/tiers.js';
import { saveProbeBundle } from '../../probes/probe-bundle.js';
import { removeTierHead, type TierSummary, tierSummaries } from '../../probes/tier-edit.js';
import { candidateName } from '../../probes/tier-fit.js';
import { CliOptionError, parseFlags } from '../cli-flags.js';
import { createCountProgress } from '../count-progress.js';
import { jsonNumbers } from './train.js';

/**
 * `mechroute tiers …`: a bundle's tiers — list them, remove one, add one from a few hundred labelled
 * anchor prompts without touching the encoder or the other heads, choose which prompts to label, and
 * cluster the bundle's features (what cluster heads and anchor choice read).
 */
const count = (what: string) =>
  z.coerce.number().int(`${what} must be a whole number`).positive(`${what} must be at least 1`);

const Common = {
  bundle: z.string().min(1),
  store: z.string().min(1).optional(),
  model: z.string().min(1).optional(),
  json: z.boolean().default(false),
};

const PriceFlag = z
  .string()
  .regex(
    /^\s*[0-9.eE+-]+\s*\/\s*[0-9.eE+-]+\s*$/,
    '--price: expected in/out, USD per million tokens, e.g. 0.5/1.5',
  )
  .transform((text) => {
    const [input, output] = text.split('/').map((v) => Number(v.trim()));
    return { input_usd_per_mtok: input!, output_usd_per_mtok: output! };
  })
  .refine(
    (p) =>
      p.input_usd_per_mtok >= 0 &&
      p.output_usd_per_mtok >= 0 &&
      Number.isFinite(p.input_usd_per_mtok + p.output_usd_per_mtok),
    '--price: prices are non-negative numbers',
  );

const AddFlagsSchema = z
  .object({
    ...Common,
    tier: z.string().min(1),
    anchors: z.string().min(1),
    out: z.string().min(1),
    price: PriceFlag.optional(),
    costFromTraces: z.boolean().default(false),
    seed: z.coerce.number().int().default(1),
  })
  .refine((f) => !(f.price && f.costFromTraces), '--price and --cost-from-traces exclude each other');

const AnchorsFlagsSchema = z.object({
  ...Common,
  pool: z.string().min(1),
  n: count('--n'),
  out: z.string().min(1),
});
const ClustersFlagsSchema = z.object({
  ...Common,
  pool: z.string().min(1),
  k: count('--k').refine((k) => k >= 2, '--k: at least 2 clusters'),
  seed: z.coerce.number().int().default(1),
  out: z.string().min(1),
});
const RemoveFlagsSchema = z.object({ ...Common, tier: z.string().min(1), out: z.string().min(1) });
const ListFlagsSchema = z.object(Common);

/**
 * The flags of a `tiers` command: `--probes` is taken for `--bundle` (the issue's name for it here, the
 * other commands' `--probes`), so either works; naming two different files is refused.
 */
function parseTierFlags<S extends z.ZodType>(
  schema: S,
  raw: Record<string, unknown>,
  command: string,
): z.infer<S> {
  const { probes, ...rest } = raw;
  if (probes !== undefined && rest.bundle !== undefined && probes !== rest.bundle)
    throw new CliOptionError(command, '--bundle and --probes name different files; give one');
  return parseFlags(schema, { ...rest, bundle: rest.bundle ?? probes }, command);
}

function storeOptions(flags: { store?: string | undefined; model?: string | undefined }) {
  return {
    ...(flags.store ? { storeDir: flags.store } : {}),
    ...(flags.model ? { model: flags.model } : {}),
  };
}

const print = (json: boolean, value: unknown, text: () => string) =>
  process.stdout.write(json ? `${JSON.stringify(value, jsonNumbers, 2)}\n` : text());

/** Runs a command's work with a progress bar for the prompts it encodes (those not in the store). */
function withEncodingProgress<R>(
  command: string,
  work: (onProgress: EncodeProgress) => Promise<R>,
): Promise<R> {
  const progress = createCountProgress(`tiers ${command}: encoding prompts not in the store`, 'prompts');
  return work((done, total, ms) => progress.update(done, total, ms)).finally(() => progress.stop());
}

type EncodeProgress = (done: number, total: number, ms: number) => void;

export function registerTiersCommand(program: Command): void {
  const tiers = program
    .command('tiers')
    .description('list, add (from a few hundred labelled anchors) and remove a probe bundle’s tiers');
  const withStore = (c: Command) =>
    c
      .option('--bundle <file>', 'probe bundle (JSON)')
      .addOption(
        new Option('--probes <file>', 'the same as --bundle, as the other commands name it').hideHelp(),
      )
      .option('--store <dir>', 'activation store (default: <mechroute home>/activations/<encoder sha256>/)')
      .option('--model <name>', 'encoder model (must be the bundle’s); default: the bundle’s')
      .option('--json', 'print one JSON object');

  withStore(
    tiers.command('list').description('the bundle’s tiers: head kind, how an added tier was fitted, price'),
  ).action(async (raw: Record<string, unknown>) => {
    const flags = parseTierFlags(ListFlagsSchema, raw, 'tiers list');
    const rows = tierSummaries(await loadBundleFor(flags.bundle, flags.model));
    print(flags.json, { bundle: flags.bundle, tiers: rows }, () => renderList(rows));
  });

  withStore(tiers.command('remove').description('drop a tier’s head; every other head is kept as it is'))
    .requiredOption('--tier <id>', 'the tier to remove')
    .requiredOption('--out <file>', 'where to write the new bundle (may be --bundle itself)')
    .action(async (raw: Record<string, unknown>) => {
      const flags = parseTierFlags(RemoveFlagsSchema, raw, 'tiers remove');
      const edit = removeTierHead(await loadBundleFor(flags.bundle, flags.model), flags.tier);
      await saveProbeBundle(flags.out, edit.bundle);
      const report = {
        out: flags.out,
        removed: flags.tier,
        tiers: edit.bundle.tiers.map((t) => t.id),
        notices: edit.notices,
      };
      print(flags.json, report, () =>
        [
          `removed "${flags.tier}"; ${flags.out} has ${report.tiers.join(', ')}`,
          ...edit.notices.map((n) => `note: ${n}`),
          '',
        ].join('\n'),
      );
    });

  withStore(
    tiers
      .command('clusters')
      .description(
        'k-means clusters of the bundle’s features over a pool of prompts (its training traces), stored in the bundle',
      ),
  )
    .requiredOption('--pool <file>', 'trace file whose prompts are clustered (the bundle’s training traces)')
    .option('--k <n>', 'clusters', '16')
    .option('--seed <n>', 'seed of k-means++', '1')
    .requiredOption('--out <file>', 'where to write the bundle with its clusters')
    .action(async (raw: Record<string, unknown>) => {
      const flags = parseTierFlags(ClustersFlagsSchema, raw, 'tiers clusters');
      const report = await withEncodingProgress('clusters', (onProgress) =>
        fitBundleClusters({ ...flags, ...storeOptions(flags), onProgress }),
      );
      print(flags.json, report, () => renderClusters(report));
    });

  withStore(
    tiers
      .command('anchors')
      .description('choose which prompts of a pool to label for a new tier, covering every cluster'),
  )
    .requiredOption('--pool <file>', 'trace file of candidate prompts')
    .option('--n <n>', 'prompts to choose', '200')
    .requiredOption(
      '--out <file>',
      'where to write the chosen traces (JSONL), to label with `mechroute label`',
    )
    .action(async (raw: Record<string, unknown>) => {
      const flags = parseTierFlags(AnchorsFlagsSchema, raw, 'tiers anchors');
      const report = await withEncodingProgress('anchors', (onProgress) =>
        chooseAnchors({ ...flags, ...storeOptions(flags), onProgress }),
      );
      print(flags.json, report, () => renderAnchors(report));
    });

  withStore(
    tiers
      .command('add')
      .description(
        'fit a new tier’s head from its outcomes on anchor prompts (≥ 25): constant, the other heads’ consensus, ' +
          'per-cluster rates, low-rank transfer from the other heads or a logistic head, picked by cross-validated log loss',
      ),
  )
    .requiredOption('--tier <id>', 'the new tier’s id (its outcomes in the anchors file)')
    .requiredOption('--anchors <file>', 'trace file with the tier’s outcomes on the anchor prompts')
    .option('--price <in/out>', 'USD per million tokens, input/output')
    .option('--cost-from-traces', 'the tier’s mean cost per call from the anchors’ `cost` field')
    .option('--seed <n>', 'seed of the cross-validation folds', '1')
    .requiredOption('--out <file>', 'where to write the new bundle (may be --bundle itself)')
    .action(async (raw: Record<string, unknown>) => {
      const flags = parseTierFlags(AddFlagsSchema, raw, 'tiers add');
      const report = await withEncodingProgress('add', (onProgress) =>
        addTier({
          ...flags,
          ...(flags.price ? { price: flags.price } : {}),
          ...storeOptions(flags),
          onProgress,
        }),
      );
      print(flags.json, report, () => renderAdd(report));
    });
}

const usd = (v: number | null) => (v === null ? '-' : `$${v.toPrecision(3)}`);

function renderList(rows: readonly TierSummary[]): string {
  const lines = ['tier | head | fitted | anchors | price in/out per Mtok | mean cost per call'];
  for (const t of rows) {
    const price = t.price ? `${t.price.input_usd_per_mtok}/${t.price.output_usd_per_mtok}` : '-';
    lines.push(
      `${t.id} | ${t.kind}${t.in_mlp ? ' (+ MLP)' : ''} | ${t.method ?? 'trained with the bundle'} | ${t.anchors ?? '-'} | ${price} | ${usd(t.mean_cost_usd)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function renderClusters(r: ClustersReport): string {
  return (
    `${r.k} clusters of ${r.rows} prompts of ${r.pool} (seed ${r.seed}; sizes ${r.sizes.join(', ')}; ` +
    `soft-assignment temperature ${r.temperature.toPrecision(3)}); ${r.from_store} from the store, ${r.encoded} encoded; wrote ${r.out}\n`
  );
}

function renderAnchors(r: AnchorsReport): string {
  const covered = r.per_cluster.filter((c) => c.anchors > 0).length;
  return (
    `chose ${r.chosen} of ${r.pool_rows} prompts in ${r.pool}, ${covered} of ${r.per_cluster.length} clusters covered ` +
    `(anchors/pool per cluster: ${r.per_cluster.map((c) => `${c.anchors}/${c.pool}`).join(' ')}); wrote ${r.out}\n`
  );
}

function renderAdd(r: AddReport): string {
  const cv = Object.entries(r.cv)
    .map(
      ([name, s]) =>
        `  ${name}: log loss ${s.log_loss.toFixed(4)}, AUROC ${s.auroc === null ? '-' : s.auroc.toFixed(3)}`,
    )
    .join('\n');
  return [
    `added "${r.tier}" from ${r.anchors} anchors (success rate ${(100 * r.success_rate).toFixed(1)} %` +
      `${r.without_outcome > 0 ? `; ${r.without_outcome} traces without its outcome not used` : ''})`,
    `method: ${candidateName({ method: r.method, ...(r.setting === null ? {} : { setting: r.setting }) })} — ${r.reason}`,
    ...(cv ? ['cross-validation on the anchors:', cv] : []),
    `price: ${r.price ? `${r.price.input_usd_per_mtok}/${r.price.output_usd_per_mtok} per Mtok` : '-'}; mean cost per call ${usd(r.mean_cost_usd)}`,
    ...r.notices.map((n) => `note: ${n}`),
    `wrote ${r.out}`,
    '',
  ].join('\n');
}
