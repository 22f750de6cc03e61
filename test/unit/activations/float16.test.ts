import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { float16Bits, float16Value, readFloat16, writeFloat16 } from '../../../src/activations/float16.js';

describe('float16 conversion', () => {
  it('encodes known values (numpy.float16 bit patterns)', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.5, 0x3800],
      [1 / 3, 0x3555],
      [0.1, 0x2e66],
      [Math.PI, 0x4248],
      [65504, 0x7bff], // the largest half
      [65519, 0x7bff], // below the midpoint to 65536: stays finite
      [65520, 0x7c00], // the midpoint: ties to even, and the even neighbour is Infinity
      [1e6, 0x7c00],
      [Number.POSITIVE_INFINITY, 0x7c00],
      [Number.NEGATIVE_INFINITY, 0xfc00],
      [2 ** -14, 0x0400], // the smallest normal
      [2 ** -24, 0x0001], // the smallest subnormal
      [1023 * 2 ** -24, 0x03ff], // the largest subnormal
      [2 ** -14 - 2 ** -25, 0x0400], // halfway between the largest subnormal and the smallest normal: to even
      [2 ** -25, 0x0000], // half the smallest subnormal: ties to even (zero)
      [2 ** -25 * 1.5, 0x0001],
      [3 * 2 ** -25, 0x0002], // 1.5 subnormal steps: ties to even (2)
      [2 ** -26, 0x0000],
      [-(2 ** -30), 0x8000], // underflow keeps the sign
      [1 + 2 ** -11, 0x3c00], // halfway between 1 and its successor: to even (down)
      [1 + 3 * 2 ** -11, 0x3c02], // halfway between 0x3c01 and 0x3c02: to even (up)
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above halfway: up
      [2047.5, 0x6800], // halfway between 2047 (odd mantissa) and 2048: to even (up)
      [-1234.5678, 0xe4d3], // Python's struct.pack('<e') (round half to even) agrees on all of these
    ];
    for (const [value, bits] of cases) {
      assert.equal(
        float16Bits(value),
        bits,
        `${value} → 0x${float16Bits(value).toString(16)}, want 0x${bits.toString(16)}`,
      );
    }
  });

  it('keeps NaN a NaN', () => {
    const bits = float16Bits(Number.NaN);
    assert.equal(bits & 0x7c00, 0x7c00);
    assert.notEqual(bits & 0x3ff, 0);
    assert.ok(Number.isNaN(float16Value(bits)));
  });

  it('decodes known bit patterns', () => {
    assert.equal(float16Value(0x3c00), 1);
    assert.equal(float16Value(0x7bff), 65504);
    assert.equal(float16Value(0x0001), 2 ** -24);
    assert.equal(float16Value(0x0400), 2 ** -14);
    assert.equal(float16Value(0xc000), -2);
    assert.equal(float16Value(0x7c00), Number.POSITIVE_INFINITY);
    assert.equal(float16Value(0xfc00), Number.NEGATIVE_INFINITY);
    assert.ok(Object.is(float16Value(0x8000), -0));
  });

  it('round-trips every non-NaN half exactly', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = float16Value(bits);
      if (Number.isNaN(value)) continue;
      assert.equal(float16Bits(value), bits);
    }
  });

  it('stays within half a unit in the last place on random values', () => {
    let state = 7;
    const random = () => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state / 2 ** 31;
    };
    for (let i = 0; i < 20000; i++) {
      // Magnitudes from 2^-12 to 2^15, inside the finite half range.
      const value = Math.fround((random() * 2 - 1) * 2 ** (random() * 27 - 12));
      const back = float16Value(float16Bits(value));
      if (Math.abs(value) >= 2 ** -14) assert.ok(Math.abs(back - value) <= Math.abs(value) * 2 ** -11);
      else assert.ok(Math.abs(back - value) <= 2 ** -25);
    }
  });

  it('writes and reads little-endian arrays', () => {
    const values = Float32Array.from([1, -2, 0.5, 65504]);
    const view = new DataView(new ArrayBuffer(2 + values.length * 2));
    assert.equal(writeFloat16(values, view, 2), 2 + 8);
    assert.equal(view.getUint8(2), 0x00);
    assert.equal(view.getUint8(3), 0x3c);
    const back = new Float32Array(5);
    readFloat16(view, 2, values.length, back, 1);
    assert.deepEqual([...back], [0, 1, -2, 0.5, 65504]);
  });
});
