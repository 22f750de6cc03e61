/**
 * IEEE 754 binary16 ("half") conversion. Node 20 has no Float16Array, and activations stored as half
 * take half the disk of float32 while losing nothing a linear probe can use (11 significant bits: a
 * relative error below 2^-11 ≈ 4.9e-4 for normal values).
 */

const scratch = new DataView(new ArrayBuffer(4));

/**
 * The binary16 bit pattern nearest to a float32 value, ties to even (what hardware conversions do), so
 * the stored data match what numpy or torch would store. Values beyond the half range become ±Infinity,
 * values below half the smallest subnormal become ±0, NaN stays NaN.
 *
 * The value is first rounded to float32: inputs are meant to come from Float32Arrays, where that step is
 * exact (a float64 rounded twice could differ from a direct float64 → half rounding in rare ties).
 */
export function float16Bits(value: number): number {
  scratch.setFloat32(0, value);
  const x = scratch.getUint32(0);
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;

  if (exponent === 0xff) {
    // Keep NaN a NaN even when its payload sits only in the bits that are shifted out.
    return mantissa === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mantissa >>> 13);
  }
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Subnormal half: value = m · 2^-24. Below 2^-25 (half the smallest subnormal) it rounds to zero.
    if (halfExponent < -10) return sign;
    const full = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    return sign | roundShift(full, shift);
  }
  // A carry out of the mantissa correctly bumps the exponent (and 65520 and up become Infinity).
  return sign | ((halfExponent << 10) + roundShift(mantissa, 13));
}

/** `value >>> shift`, rounded to nearest with ties to even. */
function roundShift(value: number, shift: number): number {
  const kept = value >>> shift;
  const rest = value & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rest > half || (rest === half && (kept & 1) === 1) ? kept + 1 : kept;
}

/** Every half value decoded once: a table lookup is the cheapest exact decode without Float16Array. */
const DECODE = (() => {
  const table = new Float32Array(0x10000);
  for (let bits = 0; bits < 0x10000; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >>> 10) & 0x1f;
    const mantissa = bits & 0x3ff;
    if (exponent === 0) table[bits] = sign * mantissa * 2 ** -24;
    else if (exponent === 0x1f) table[bits] = mantissa === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
    else table[bits] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return table;
})();

/** The value of a binary16 bit pattern. */
export function float16Value(bits: number): number {
  return DECODE[bits & 0xffff]!;
}

/** Writes `values` as little-endian halves into `target` from `byteOffset`; returns the offset after them. */
export function writeFloat16(values: Float32Array, target: DataView, byteOffset: number): number {
  let offset = byteOffset;
  for (let i = 0; i < values.length; i++) {
    target.setUint16(offset, float16Bits(values[i]!), true);
    offset += 2;
  }
  return offset;
}

/**
 * Reads `count` little-endian halves from `source` at `byteOffset` into `target` from `targetOffset`,
 * each multiplied by `scale` (a power of two keeps the values exact).
 */
export function readFloat16(
  source: DataView,
  byteOffset: number,
  count: number,
  target: Float32Array,
  targetOffset = 0,
  scale = 1,
): void {
  for (let i = 0; i < count; i++) {
    target[targetOffset + i] = DECODE[source.getUint16(byteOffset + 2 * i, true)]! * scale;
  }
}
