import { InvalidProbeInputError } from '../errors.js';
import { type ProbeBundle, probedTiers, type TierHead } from './probe-bundle.js';
import type { Clusters } from './tier-head-schema.js';

/**
 * Adding, removing and listing a bundle's tiers (`mechroute tiers add|remove|list`) as pure edits: a new
 * bundle object is returned and every head not named is carried over as the same object, so the encoder,
 * the standardizer and the other tiers' heads are written back byte for byte. What an edit cannot keep
 * is said in `notices`, never dropped silently.
 */
export interface BundleEdit {
  bundle: ProbeBundle;
  notices: string[];
}

const tierIds = (bundle: ProbeBundle) => bundle.tiers.map((t) => t.id);

/** The hybrid head stacks exactly the bundle's tiers; once they change it no longer fits. */
function withoutHybrid(bundle: ProbeBundle, why: string, notices: string[]): ProbeBundle {
  if (!bundle.hybrid) return bundle;
  const { hybrid: _dropped, ...rest } = bundle;
  notices.push(
    `the hybrid head stacked ${tierIds(bundle).join(', ')} and was dropped (${why}); retrain it with --hybrid`,
  );
  return rest;
}

export function addTierHead(bundle: ProbeBundle, head: TierHead): BundleEdit {
  if (probedTiers(bundle).has(head.id)) {
    throw new InvalidProbeInputError(
      `tier "${head.id}" is already in the bundle (${tierIds(bundle).join(', ')}); remove it first with \`mechroute tiers remove\``,
    );
  }
  if (head.kind === 'cluster' && !bundle.clusters) {
    throw new InvalidProbeInputError(
      `a cluster head needs the bundle's clusters; run \`mechroute tiers clusters\` first`,
    );
  }
  const notices: string[] = [];
  const kept = withoutHybrid(bundle, `tier "${head.id}" was added`, notices);
  return { bundle: { ...kept, tiers: [...bundle.tiers, head] }, notices };
}

export function removeTierHead(bundle: ProbeBundle, id: string): BundleEdit {
  const index = bundle.tiers.findIndex((t) => t.id === id);
  if (index < 0) {
    throw new InvalidProbeInputError(`no tier "${id}" in the bundle (it has ${tierIds(bundle).join(', ')})`);
  }
  if (bundle.tiers.length === 1) throw new InvalidProbeInputError(`"${id}" is the bundle's only tier`);
  const notices: string[] = [];
  let next: ProbeBundle = withoutHybrid(bundle, `tier "${id}" was removed`, notices);
  next = { ...next, tiers: bundle.tiers.filter((_, k) => k !== index) };
  const { mlp } = bundle;
  const out = mlp?.tiers.indexOf(id) ?? -1;
  if (mlp && out >= 0) {
    if (mlp.tiers.length === 1) {
      const { mlp: _mlp, prefer: _prefer, ...rest } = next;
      next = rest;
      notices.push(`the MLP head predicted only "${id}" and was dropped`);
    } else {
      // Each output is its own row of w2: dropping one leaves the others' logits as they were.
      const h = mlp.hidden;
      const keep = (_: unknown, k: number) => k !== out;
      next = {
        ...next,
        mlp: {
          ...mlp,
          tiers: mlp.tiers.filter(keep),
          w2: mlp.w2.filter((_, j) => Math.floor(j / h) !== out),
          b2: mlp.b2.filter(keep),
          calibration: mlp.calibration.filter(keep),
        },
      };
    }
  }
  if (bundle.difficulty.kind === 'tier-failure' && bundle.difficulty.tier === id) {
    next = { ...next, difficulty: { kind: 'expected-failures' } };
    notices.push(
      `difficulty was 1 − P("${id}" succeeds); it is now the expected share of failing tiers (expected-failures)`,
    );
  }
  return { bundle: next, notices };
}

/** Sets the bundle's clusters; refused while cluster heads read the ones it has. */
export function withClusters(bundle: ProbeBundle, clusters: Clusters): ProbeBundle {
  const readers = bundle.tiers.filter((t) => t.kind === 'cluster').map((t) => t.id);
  if (readers.length > 0) {
    throw new InvalidProbeInputError(
      `tiers ${readers.join(', ')} read the bundle's clusters; remove them before refitting the clusters`,
    );
  }
  return { ...bundle, clusters };
}

export interface TierSummary {
  id: string;
  kind: TierHead['kind'];
  /** How an added tier was fitted (absent for tiers trained with the bundle). */
  method: string | null;
  anchors: number | null;
  price: TierHead['price'] | null;
  mean_cost_usd: number | null;
  /** Whether the MLP head predicts it too. */
  in_mlp: boolean;
}

export function tierSummaries(bundle: ProbeBundle): TierSummary[] {
  return bundle.tiers.map((t) => ({
    id: t.id,
    kind: t.kind,
    method: t.fit ? `${t.fit.method}${t.fit.setting === undefined ? '' : ` (${t.fit.setting})`}` : null,
    anchors: t.fit?.anchors ?? null,
    price: t.price ?? null,
    mean_cost_usd: t.mean_cost_usd ?? null,
    in_mlp: bundle.mlp?.tiers.includes(t.id) ?? false,
  }));
}
