import { InvalidProbeInputError } from '../errors.js';
import type { Rng } from '../seeded-rng.js';
import { sigmoid } from './logistic-regression.js';
import { checkLabels, type FeatureMatrix, type FloatArray } from './matrix.js';

/**
 * A shared-trunk multi-output MLP: input → one hidden layer → one logit per tier. The trunk is shared
 * so that what makes a prompt hard for one tier (most of the signal) is learnt once from every tier's
 * labels; the heads only learn how each tier differs. It is the non-linear comparison for the per-tier
 * linear probes, over standardised (usually several layers' concatenated) features.
 *
 * Training: masked binary cross-entropy (a row missing a tier's outcome contributes nothing to that
 * head), summed over the present (row, tier) labels of a minibatch and divided by their count; AdamW
 * (Kingma & Ba 2015, "Adam"; Loshchilov & Hutter 2019, "Decoupled weight decay regularization": decay
 * applied to weights directly, not through the gradient, and not to biases); early stopping on a
 * validation part, keeping the weights of the best epoch. Initialisation is He-normal for the trunk
 * (He et al. 2015) and Glorot-scale for the heads, all drawn from the seeded generator.
 */
export type MlpActivation = 'relu' | 'gelu';

/** Plain JSON; weights row-major (w1: hidden × inputs, w2: outputs × hidden). */
export interface MlpModel {
  inputDim: number;
  hidden: number;
  outputs: number;
  activation: MlpActivation;
  w1: number[];
  b1: number[];
  w2: number[];
  b2: number[];
}

/** Per output (tier), per row: the outcome, or null/undefined when that tier has none for that row. */
export type MaskedLabels = ReadonlyArray<ReadonlyArray<boolean | null | undefined>>;

export interface MlpTrainOptions {
  rng: Rng;
  /** Default 64. */
  hidden?: number;
  /** Default 'relu' (its zero gradient on inactive units halves the backward pass). */
  activation?: MlpActivation;
  /** Default 1e-3. */
  learningRate?: number;
  /** AdamW decay per step, as a multiple of the learning rate (default 1e-2). */
  weightDecay?: number;
  /** Default 64. */
  batchSize?: number;
  /** Default 100. */
  maxEpochs?: number;
  /** Epochs without a validation improvement before stopping (default 6). */
  patience?: number;
  /** Rows to train on; default all. */
  rows?: readonly number[];
  /** Rows for early stopping (removed from `rows` if listed there); default a random `validationShare` of `rows`. */
  validationRows?: readonly number[];
  /** Default 0.15. */
  validationShare?: number;
}

export interface MlpEpoch {
  epoch: number;
  trainLoss: number;
  validationLoss: number;
}

export interface MlpTrainResult {
  model: MlpModel;
  bestEpoch: number;
  bestValidationLoss: number;
  history: MlpEpoch[];
}

const GELU_C = Math.sqrt(2 / Math.PI);

/** GELU, tanh form (Hendrycks & Gimpel 2016, eq. in §2), and its derivative. */
function gelu(u: number): number {
  return 0.5 * u * (1 + Math.tanh(GELU_C * (u + 0.044715 * u * u * u)));
}
function geluDerivative(u: number): number {
  const inner = GELU_C * (u + 0.044715 * u * u * u);
  const t = Math.tanh(inner);
  return 0.5 * (1 + t) + 0.5 * u * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * u * u);
}

interface Weights {
  w1: Float64Array;
  b1: Float64Array;
  w2: Float64Array;
  b2: Float64Array;
}

/**
 * Forward pass of a block of rows (`count` rows starting at the element offsets in `offsets`): fills
 * `pre` and `act` (count × hidden) and `out` (count × outputs). Looping hidden unit by hidden unit over
 * the whole block keeps one row of w1 in cache while every row of the block is multiplied by it, so w1
 * (hidden × d doubles, ~650 KB at d = 1,280) is streamed from memory once per block rather than once per
 * row — the difference between memory-bound and compute-bound on a 1,280-wide input. Shared by training
 * and prediction so the two cannot drift apart.
 */
function forwardBlock(
  model: Pick<MlpModel, 'inputDim' | 'hidden' | 'outputs' | 'activation'>,
  weights: Weights,
  input: FloatArray,
  offsets: Int32Array,
  count: number,
  pre: Float64Array,
  act: Float64Array,
  out: Float64Array,
): void {
  const { inputDim: d, hidden: h, outputs: t, activation } = model;
  const { w1, b1, w2, b2 } = weights;
  const d4 = d - (d % 4);
  for (let j = 0; j < h; j += 1) {
    const row = j * d;
    for (let s = 0; s < count; s += 1) {
      const base = offsets[s]!;
      let u0 = b1[j]!;
      let u1 = 0;
      let u2 = 0;
      let u3 = 0;
      let k = 0;
      for (; k < d4; k += 4) {
        u0 += w1[row + k]! * input[base + k]!;
        u1 += w1[row + k + 1]! * input[base + k + 1]!;
        u2 += w1[row + k + 2]! * input[base + k + 2]!;
        u3 += w1[row + k + 3]! * input[base + k + 3]!;
      }
      for (; k < d; k += 1) u0 += w1[row + k]! * input[base + k]!;
      const u = u0 + u1 + u2 + u3;
      pre[s * h + j] = u;
      act[s * h + j] = activation === 'relu' ? Math.max(u, 0) : gelu(u);
    }
  }
  for (let s = 0; s < count; s += 1) {
    for (let o = 0; o < t; o += 1) {
      let z = b2[o]!;
      for (let j = 0; j < h; j += 1) z += w2[o * h + j]! * act[s * h + j]!;
      out[s * t + o] = z;
    }
  }
}

/** −[y log p + (1 − y) log(1 − p)] for p = σ(z), overflow-safe. */
function bce(z: number, y: boolean): number {
  const softplus = z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
  return softplus - (y ? z : 0);
}

export function trainMlp(x: FeatureMatrix, labels: MaskedLabels, options: MlpTrainOptions): MlpTrainResult {
  const outputs = labels.length;
  if (outputs === 0) throw new InvalidProbeInputError('trainMlp needs at least one output');
  for (const l of labels) checkLabels('trainMlp', x, l);
  const { rng } = options;
  const d = x.cols;
  const h = options.hidden ?? 64;
  const activation = options.activation ?? 'relu';
  const learningRate = options.learningRate ?? 1e-3;
  const weightDecay = options.weightDecay ?? 1e-2;
  const batchSize = options.batchSize ?? 64;
  const maxEpochs = options.maxEpochs ?? 100;
  const patience = options.patience ?? 6;
  const shape = { inputDim: d, hidden: h, outputs, activation };

  const hasLabel = (i: number) => labels.some((l) => l[i] !== null && l[i] !== undefined);
  let trainRows = (options.rows ?? Array.from({ length: x.rows }, (_, i) => i)).filter(hasLabel);
  let validationRows = options.validationRows?.filter(hasLabel);
  if (validationRows) {
    const held = new Set(validationRows);
    trainRows = trainRows.filter((i) => !held.has(i));
  } else {
    const shuffled = rng.shuffle([...trainRows]);
    const nValidation = Math.max(1, Math.round((options.validationShare ?? 0.15) * shuffled.length));
    validationRows = shuffled.slice(0, nValidation);
    trainRows = shuffled.slice(nValidation);
  }
  if (trainRows.length === 0 || validationRows.length === 0) {
    throw new InvalidProbeInputError('trainMlp: no labelled rows to train or validate on');
  }

  const weights: Weights = {
    w1: Float64Array.from({ length: h * d }, () => rng.normal() * Math.sqrt(2 / d)),
    b1: new Float64Array(h),
    w2: Float64Array.from({ length: outputs * h }, () => rng.normal() * Math.sqrt(1 / h)),
    // Heads start at their base-rate log-odds, so early epochs are spent on the signal, not the offset.
    b2: Float64Array.from(labels, (l) => {
      const present = trainRows.filter((i) => l[i] !== null && l[i] !== undefined);
      const rate = (present.filter((i) => l[i]).length + 1) / (present.length + 2);
      return Math.log(rate / (1 - rate));
    }),
  };
  const names = ['w1', 'b1', 'w2', 'b2'] as const;
  const grad = Object.fromEntries(
    names.map((k) => [k, new Float64Array(weights[k].length)]),
  ) as unknown as Weights;
  const m1 = Object.fromEntries(
    names.map((k) => [k, new Float64Array(weights[k].length)]),
  ) as unknown as Weights;
  const m2 = Object.fromEntries(
    names.map((k) => [k, new Float64Array(weights[k].length)]),
  ) as unknown as Weights;
  const block = Math.max(batchSize, 64);
  const offsets = new Int32Array(block);
  const pre = new Float64Array(block * h);
  const act = new Float64Array(block * h);
  const out = new Float64Array(block * outputs);
  const dPre = new Float64Array(block * h);

  const validationLoss = (): number => {
    let loss = 0;
    let count = 0;
    for (let start = 0; start < validationRows.length; start += block) {
      const chunk = validationRows.slice(start, start + block);
      for (const [s, i] of chunk.entries()) offsets[s] = i * d;
      forwardBlock(shape, weights, x.data, offsets, chunk.length, pre, act, out);
      for (const [s, i] of chunk.entries()) {
        for (let o = 0; o < outputs; o += 1) {
          const y = labels[o]![i];
          if (y === null || y === undefined) continue;
          loss += bce(out[s * outputs + o]!, y);
          count += 1;
        }
      }
    }
    return loss / count;
  };

  const beta1 = 0.9;
  const beta2 = 0.999;
  let step = 0;
  let best = { loss: validationLoss(), epoch: 0, weights: structuredClone(weights) };
  const history: MlpEpoch[] = [];
  const d4 = d - (d % 4);
  for (let epoch = 1; epoch <= maxEpochs; epoch += 1) {
    const order = rng.shuffle([...trainRows]);
    let epochLoss = 0;
    let epochCount = 0;
    for (let start = 0; start < order.length; start += batchSize) {
      const batch = order.slice(start, start + batchSize);
      const size = batch.length;
      let count = 0;
      for (const i of batch) for (const l of labels) if (l[i] !== null && l[i] !== undefined) count += 1;
      for (const k of names) grad[k].fill(0);
      for (const [s, i] of batch.entries()) offsets[s] = i * d;
      forwardBlock(shape, weights, x.data, offsets, size, pre, act, out);
      dPre.fill(0, 0, size * h);
      for (const [s, i] of batch.entries()) {
        for (let o = 0; o < outputs; o += 1) {
          const y = labels[o]![i];
          if (y === null || y === undefined) continue;
          const z = out[s * outputs + o]!;
          epochLoss += bce(z, y);
          epochCount += 1;
          const dz = (sigmoid(z) - (y ? 1 : 0)) / count;
          grad.b2[o]! += dz;
          for (let j = 0; j < h; j += 1) {
            grad.w2[o * h + j]! += dz * act[s * h + j]!;
            dPre[s * h + j]! += dz * weights.w2[o * h + j]!;
          }
        }
        for (let j = 0; j < h; j += 1) {
          const u = pre[s * h + j]!;
          const p = s * h + j;
          dPre[p] = activation === 'relu' ? (u > 0 ? dPre[p]! : 0) : dPre[p]! * geluDerivative(u);
        }
      }
      // ∂L/∂w1[j] = Σ over the batch of dPre[s, j]·x_s, hidden unit by hidden unit (the gradient row
      // stays in cache, as in forwardBlock).
      for (let j = 0; j < h; j += 1) {
        const row = j * d;
        for (let s = 0; s < size; s += 1) {
          const g = dPre[s * h + j]!;
          if (g === 0) continue;
          grad.b1[j]! += g;
          const base = offsets[s]!;
          let k = 0;
          for (; k < d4; k += 4) {
            grad.w1[row + k]! += g * x.data[base + k]!;
            grad.w1[row + k + 1]! += g * x.data[base + k + 1]!;
            grad.w1[row + k + 2]! += g * x.data[base + k + 2]!;
            grad.w1[row + k + 3]! += g * x.data[base + k + 3]!;
          }
          for (; k < d; k += 1) grad.w1[row + k]! += g * x.data[base + k]!;
        }
      }
      step += 1;
      const correction1 = 1 - beta1 ** step;
      const correction2 = 1 - beta2 ** step;
      for (const k of names) {
        const w = weights[k];
        const g = grad[k];
        const a = m1[k];
        const b = m2[k];
        const decay = k === 'w1' || k === 'w2' ? learningRate * weightDecay : 0;
        for (let p = 0; p < w.length; p += 1) {
          const gp = g[p]!;
          a[p] = beta1 * a[p]! + (1 - beta1) * gp;
          b[p] = beta2 * b[p]! + (1 - beta2) * gp * gp;
          w[p] =
            w[p]! -
            decay * w[p]! -
            (learningRate * (a[p]! / correction1)) / (Math.sqrt(b[p]! / correction2) + 1e-8);
        }
      }
    }
    const vLoss = validationLoss();
    history.push({ epoch, trainLoss: epochLoss / epochCount, validationLoss: vLoss });
    // A relative margin, so noise-level "improvements" do not keep a plateaued run alive.
    if (vLoss < best.loss * (1 - 1e-4)) best = { loss: vLoss, epoch, weights: structuredClone(weights) };
    else if (epoch - best.epoch >= patience) break;
  }
  const w = best.weights;
  return {
    model: {
      ...shape,
      w1: Array.from(w.w1),
      b1: Array.from(w.b1),
      w2: Array.from(w.w2),
      b2: Array.from(w.b2),
    },
    bestEpoch: best.epoch,
    bestValidationLoss: best.loss,
    history,
  };
}

const compiled = new WeakMap<MlpModel, Weights>();

function weightsOf(model: MlpModel): Weights {
  let w = compiled.get(model);
  if (!w) {
    const { inputDim: d, hidden: h, outputs: t } = model;
    if (
      model.w1.length !== h * d ||
      model.b1.length !== h ||
      model.w2.length !== t * h ||
      model.b2.length !== t
    ) {
      throw new InvalidProbeInputError('MLP weights do not match its inputDim/hidden/outputs');
    }
    w = {
      w1: Float64Array.from(model.w1),
      b1: Float64Array.from(model.b1),
      w2: Float64Array.from(model.w2),
      b2: Float64Array.from(model.b2),
    };
    compiled.set(model, w);
  }
  return w;
}

/** Logits of one (standardised) feature vector, one per output. */
export function mlpLogitsOne(model: MlpModel, vector: FloatArray): Float64Array {
  if (vector.length !== model.inputDim) {
    throw new InvalidProbeInputError(`the MLP takes ${model.inputDim} features, got ${vector.length}`);
  }
  const out = new Float64Array(model.outputs);
  const h = model.hidden;
  forwardBlock(
    model,
    weightsOf(model),
    vector,
    new Int32Array(1),
    1,
    new Float64Array(h),
    new Float64Array(h),
    out,
  );
  return out;
}

/** Logits for the given rows (default all), row-major rows × outputs. */
export function mlpLogits(model: MlpModel, x: FeatureMatrix, rows?: readonly number[]): Float64Array {
  if (x.cols !== model.inputDim) {
    throw new InvalidProbeInputError(`the MLP takes ${model.inputDim} features, got ${x.cols}`);
  }
  const weights = weightsOf(model);
  const indices = rows ?? Array.from({ length: x.rows }, (_, i) => i);
  const block = 64;
  const result = new Float64Array(indices.length * model.outputs);
  const offsets = new Int32Array(block);
  const pre = new Float64Array(block * model.hidden);
  const act = new Float64Array(block * model.hidden);
  const out = new Float64Array(block * model.outputs);
  for (let start = 0; start < indices.length; start += block) {
    const count = Math.min(block, indices.length - start);
    for (let s = 0; s < count; s += 1) offsets[s] = indices[start + s]! * x.cols;
    forwardBlock(model, weights, x.data, offsets, count, pre, act, out);
    result.set(out.subarray(0, count * model.outputs), start * model.outputs);
  }
  return result;
}
