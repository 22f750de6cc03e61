/**
 * One deployment's health. Closed: calls flow. After `failures` consecutive failures it opens for
 * `cooldownMs`, and calls skip it. Then it is half-open: exactly one probe call is let through; its
 * success closes the breaker, its failure reopens it for another cooldown. The clock is injected so
 * tests step through the states without waiting.
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreaker {
  /** The state now (an open breaker whose cooldown has passed reads half-open). */
  state(): BreakerState;
  /**
   * Whether a call may go ahead now; in half-open state the first caller takes the single probe slot,
   * so it must then report `success()` or `failure()` (or `release()` if it never made the call).
   */
  tryAcquire(): boolean;
  success(): void;
  failure(): void;
  /** Gives back a half-open probe slot that was taken but not used (the caller was aborted). */
  release(): void;
  /** Keeps the deployment out of rotation for `ms`, as an upstream's long `retry-after` asks. */
  openFor(ms: number): void;
  /** When an open breaker lets a probe through (epoch ms); undefined when not open. */
  openUntil(): number | undefined;
  readonly consecutiveFailures: number;
}

export interface BreakerOptions {
  failures: number;
  cooldownMs: number;
  now: () => number;
}

export function createCircuitBreaker({ failures, cooldownMs, now }: BreakerOptions): CircuitBreaker {
  let consecutive = 0;
  let openedUntil: number | undefined;
  let probing = false;

  const state = (): BreakerState => {
    if (openedUntil === undefined) return 'closed';
    return now() < openedUntil ? 'open' : 'half-open';
  };
  const open = (ms: number) => {
    openedUntil = Math.max(openedUntil ?? 0, now() + ms);
    probing = false;
  };

  return {
    state,
    tryAcquire() {
      const s = state();
      if (s === 'closed') return true;
      if (s === 'open' || probing) return false;
      probing = true;
      return true;
    },
    success() {
      consecutive = 0;
      openedUntil = undefined;
      probing = false;
    },
    failure() {
      consecutive++;
      if (state() === 'half-open' || consecutive >= failures) {
        // A failed probe reopens at once; a closed breaker opens at the threshold.
        openedUntil = undefined;
        open(cooldownMs);
      }
    },
    release() {
      probing = false;
    },
    openFor(ms) {
      open(ms);
    },
    openUntil() {
      return state() === 'open' ? openedUntil : undefined;
    },
    get consecutiveFailures() {
      return consecutive;
    },
  };
}

export interface BackoffOptions {
  /** Delay before the first retry; doubled for each one after. */
  baseMs: number;
  maxMs: number;
  random: () => number;
}

/**
 * Exponential backoff with "equal jitter": half the step is fixed, half random, so retries from many
 * callers spread out but none retries immediately. A `retry-after` from the upstream wins when longer.
 */
export function backoffDelay(retry: number, retryAfterMs: number | undefined, o: BackoffOptions): number {
  const step = Math.min(o.maxMs, o.baseMs * 2 ** Math.max(0, retry - 1));
  const jittered = step / 2 + (step / 2) * o.random();
  return retryAfterMs === undefined ? jittered : Math.max(retryAfterMs, jittered);
}
