import type { FastifyReply } from 'fastify';
import { TierError } from '../tiers/tier-errors.js';

/**
 * The requests in progress, each with one abort signal that fires when its client goes away, when its
 * deadline (`server.request_timeout_ms`, counted from the moment the request arrived, so the routing
 * decision is inside it) passes, or when the server gives up draining on shutdown. Everything a request
 * starts — its encoder pass, its tier calls — takes that signal.
 */
export interface TrackedRequest {
  signal: AbortSignal;
  /** Milliseconds left before the deadline (0 once passed). */
  remainingMs(): number;
  /** The error a client should get when the signal fired for the deadline or shutdown, else undefined. */
  abortError(): TierError | undefined;
  release(): void;
}

// Both end a request's tier calls, so they are TierErrors: a stream that is cut by them ends with them.
export class RequestTimeoutError extends TierError {
  constructor(limitMs: number) {
    super(
      'MR_ERR_REQUEST_TIMEOUT',
      `the request took longer than server.request_timeout_ms (${limitMs} ms); its work was cancelled`,
      { status: 504, isRetryable: false },
    );
  }
}

export class ShuttingDownError extends TierError {
  constructor(what: string) {
    super('MR_ERR_SHUTTING_DOWN', `the server is shutting down: ${what}`, {
      status: 503,
      isRetryable: false,
      retryAfterMs: 1000,
    });
  }
}

/**
 * The client closed its connection before the answer: nobody is left to answer, and it is no fault of
 * the server (499, nginx's "client closed request"; logged at info, never as an internal error).
 */
export class ClientGoneError extends TierError {
  constructor() {
    super('MR_ERR_UPSTREAM_ABORTED', 'the client closed the connection before the answer', {
      status: 499,
      isRetryable: false,
    });
  }
}

export class InflightRequests {
  private readonly open = new Set<AbortController>();
  private waiters: (() => void)[] = [];
  /** Set when shutdown begins: new requests are refused, those in flight may finish. */
  closing = false;

  constructor(private readonly limitMs: number) {}

  get size(): number {
    return this.open.size;
  }

  track(reply: FastifyReply): TrackedRequest {
    const controller = new AbortController();
    const deadlineAt = performance.now() - reply.elapsedTime + this.limitMs;
    const onClose = () => {
      if (!reply.raw.writableFinished) controller.abort(new ClientGoneError());
    };
    reply.raw.on('close', onClose);
    this.open.add(controller);
    const timer = setTimeout(
      () => controller.abort(new RequestTimeoutError(this.limitMs)),
      Math.max(0, deadlineAt - performance.now()),
    );
    let released = false;
    return {
      signal: controller.signal,
      remainingMs: () => Math.max(0, deadlineAt - performance.now()),
      abortError: () => {
        // A tier call's own timeout is clipped to the time left, so it can fire a moment before the
        // deadline's timer does: past the deadline, the request timed out whichever timer came first.
        if (!controller.signal.aborted && deadlineAt - performance.now() <= 0)
          controller.abort(new RequestTimeoutError(this.limitMs));
        return controller.signal.aborted && controller.signal.reason instanceof TierError
          ? controller.signal.reason
          : undefined;
      },
      release: () => {
        if (released) return;
        released = true;
        clearTimeout(timer);
        reply.raw.off('close', onClose);
        this.open.delete(controller);
        if (this.open.size === 0) for (const wake of this.waiters.splice(0)) wake();
      },
    };
  }

  /** Resolves when no request is in progress, or after `ms`, whichever comes first; true if idle. */
  async drained(ms: number): Promise<boolean> {
    if (this.open.size === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<boolean>((resolve) => this.waiters.push(() => resolve(true)));
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    try {
      return await Promise.race([idle, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  abortAll(reason: TierError): void {
    for (const controller of this.open) controller.abort(reason);
  }
}
