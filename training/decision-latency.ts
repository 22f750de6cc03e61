import type { EncoderHost } from '../src/encoder/encoder-host.js';
import { quantile } from '../src/metrics/quantile.js';

/**
 * Decision latency as a router sees it: sequential calls on an idle process, one warm-up first, median
 * and 95th percentile (linear interpolation between ranks). Shared by `bench routing` (text → P(success
 * | tier), per method) and the layer table of `mechroute train` (encoder prefill with early exit, per block).
 */
export interface Latency {
  p50: number;
  p95: number;
}

export async function measureLatency(
  decide: (text: string) => Promise<unknown>,
  texts: readonly string[],
): Promise<Latency> {
  if (texts.length === 0) return { p50: Number.NaN, p95: Number.NaN };
  await decide(texts[0]!);
  const times: number[] = [];
  for (const text of texts) {
    const started = performance.now();
    await decide(text);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { p50: quantile(times, 0.5), p95: quantile(times, 0.95) };
}

/**
 * The prefill of each layer in `layers` alone (the encoder stops right after it; the last layer is the
 * final norm, which needs every block), timed over `texts`: what reading that block costs per decision.
 */
export async function layerLatency(
  encoder: EncoderHost,
  texts: readonly string[],
  layers: readonly number[],
  onLayer?: (done: number, total: number) => void,
): Promise<Map<number, Latency>> {
  const out = new Map<number, Latency>();
  for (const [k, layer] of layers.entries()) {
    out.set(
      layer,
      await measureLatency((text) => encoder.encode([text], { layers: [layer], pooling: 'last' }), texts),
    );
    onLayer?.(k + 1, layers.length);
  }
  return out;
}
