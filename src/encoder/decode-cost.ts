/**
 * What a decode of n tokens costs, learnt from the decodes timed so far: a fixed part per decode plus a
 * part per token, fitted by least squares with older decodes weighing less (each new one multiplies the
 * weight of the past by `forget`). A rate per token alone is wrong at both ends: a decode of two tokens
 * (an empty chat turn) takes most of a long one's fixed cost, and read as "ms per token" it made every
 * later prompt look minutes long — admission then refused all of them, and with nothing decoded the
 * estimate never recovered.
 */
export class DecodeCost {
  private w = 0;
  private sx = 0;
  private sy = 0;
  private sxx = 0;
  private sxy = 0;

  constructor(private readonly forget = 0.9) {}

  observe(tokens: number, ms: number): void {
    if (!(tokens > 0) || !(ms >= 0)) return;
    const f = this.forget;
    this.w = f * this.w + 1;
    this.sx = f * this.sx + tokens;
    this.sy = f * this.sy + ms;
    this.sxx = f * this.sxx + tokens * tokens;
    this.sxy = f * this.sxy + tokens * ms;
  }

  /** The fitted fixed part (ms) and slope (ms per token); undefined before the first decode. */
  fit(): { fixedMs: number; msPerToken: number } | undefined {
    if (this.w === 0) return undefined;
    const meanX = this.sx / this.w;
    const meanY = this.sy / this.w;
    const varX = this.sxx / this.w - meanX * meanX;
    const covXY = this.sxy / this.w - meanX * meanY;
    // Decodes of (nearly) one length say nothing of the slope: all of their time is then taken as fixed
    // plus per-token in proportion, through the origin — the cautious reading for longer prompts.
    const slope = varX > 1e-9 * meanX * meanX ? covXY / varX : meanY / meanX;
    if (slope <= 0) return { fixedMs: meanY, msPerToken: 0 };
    const fixed = meanY - slope * meanX;
    // A negative intercept would make short prompts free; pass through the origin instead.
    return fixed >= 0
      ? { fixedMs: fixed, msPerToken: slope }
      : { fixedMs: 0, msPerToken: this.sxy / this.sxx };
  }

  /** Milliseconds `decodes` separate decodes of `tokens` tokens in all take; undefined before any. */
  estimateMs(decodes: number, tokens: number): number | undefined {
    const fit = this.fit();
    return fit && decodes * fit.fixedMs + tokens * fit.msPerToken;
  }
}
