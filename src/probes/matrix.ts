import { InvalidProbeInputError } from '../errors.js';

/**
 * The one matrix shape the probe code passes around: row-major n×d, one row per prompt, one column per
 * feature. Float32 storage is the default (activations come out of the encoder as float32 and a
 * 10k × 2560 matrix is 100 MB instead of 200); every accumulation is done in float64.
 */
export type FloatArray = Float32Array | Float64Array;

export interface FeatureMatrix {
  readonly data: FloatArray;
  readonly rows: number;
  readonly cols: number;
}

export function createMatrix(data: FloatArray, rows: number, cols: number): FeatureMatrix {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 1) {
    throw new InvalidProbeInputError(`a matrix needs integer rows ≥ 0 and cols ≥ 1, got ${rows}×${cols}`);
  }
  if (data.length !== rows * cols) {
    throw new InvalidProbeInputError(`${data.length} values do not make a ${rows}×${cols} matrix`);
  }
  return { data, rows, cols };
}

/** Stacks equal-length vectors (e.g. one pooled activation per prompt) into a float32 matrix. */
export function matrixFromRows(rows: readonly ArrayLike<number>[]): FeatureMatrix {
  const cols = rows[0]?.length ?? 0;
  const data = new Float32Array(rows.length * cols);
  for (const [i, row] of rows.entries()) {
    if (row.length !== cols)
      throw new InvalidProbeInputError(`row ${i} has ${row.length} values, not ${cols}`);
    data.set(row, i * cols);
  }
  return createMatrix(data, rows.length, cols);
}

/** The rows at `indices`, copied, in that order (a fold, a split). Keeps the storage type. */
export function selectRows(x: FeatureMatrix, indices: readonly number[]): FeatureMatrix {
  const { cols } = x;
  const data =
    x.data instanceof Float64Array
      ? new Float64Array(indices.length * cols)
      : new Float32Array(indices.length * cols);
  for (const [k, i] of indices.entries()) {
    if (!(i >= 0 && i < x.rows))
      throw new InvalidProbeInputError(`row index ${i} is outside 0..${x.rows - 1}`);
    data.set(x.data.subarray(i * cols, (i + 1) * cols), k * cols);
  }
  return createMatrix(data, indices.length, cols);
}

/**
 * Side-by-side concatenation (the features of several layers, in the order given), as float32. The
 * order is the bundle's `features.layers` order, which is why it is the caller's to choose.
 */
export function concatColumns(parts: readonly FeatureMatrix[]): FeatureMatrix {
  const rows = parts[0]?.rows ?? 0;
  for (const p of parts) {
    if (p.rows !== rows) throw new InvalidProbeInputError(`cannot concatenate ${p.rows} rows onto ${rows}`);
  }
  const cols = parts.reduce((sum, p) => sum + p.cols, 0);
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i += 1) {
    let offset = i * cols;
    for (const p of parts) {
      data.set(p.data.subarray(i * p.cols, (i + 1) * p.cols), offset);
      offset += p.cols;
    }
  }
  return createMatrix(data, rows, cols);
}

/** Checks that there is one label per row; the label type is the caller's. */
export function checkLabels(what: string, x: FeatureMatrix, labels: { length: number }): void {
  if (labels.length !== x.rows) {
    throw new InvalidProbeInputError(`${what}: ${x.rows} rows but ${labels.length} labels`);
  }
}
