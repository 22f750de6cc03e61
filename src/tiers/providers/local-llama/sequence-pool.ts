/**
 * A fixed set of context sequences lent out one request at a time, with a bounded FIFO queue behind
 * them. The bound turns overload into a fast, retryable refusal instead of an ever-growing wait.
 */
export interface SequencePool<T> {
  /**
   * An idle item — the one `rank` scores highest, when given (e.g. the sequence whose cached tokens
   * share the longest prefix with the prompt) — or the next one released, in FIFO order.
   * @throws the error from `onQueueFull` when the queue is full; the abort reason when aborted while waiting.
   */
  acquire(signal?: AbortSignal, rank?: (item: T) => number): Promise<T>;
  release(item: T): void;
  readonly idle: number;
  readonly waiting: number;
  /** Rejects every waiter with `error`; later acquires reject too. */
  close(error: Error): void;
}

interface Waiter<T> {
  resolve(item: T): void;
  reject(error: unknown): void;
}

export function createSequencePool<T>(
  items: readonly T[],
  options: { maxQueue: number; onQueueFull: () => Error },
): SequencePool<T> {
  const idle = [...items];
  const waiters: Waiter<T>[] = [];
  let closedWith: Error | undefined;

  return {
    acquire(signal, rank) {
      if (closedWith) return Promise.reject(closedWith);
      if (signal?.aborted) return Promise.reject(signal.reason);
      if (idle.length > 0) {
        let best = 0;
        if (rank) {
          const scores = idle.map(rank);
          for (let i = 1; i < scores.length; i += 1) if (scores[i]! > scores[best]!) best = i;
        }
        return Promise.resolve(idle.splice(best, 1)[0]!);
      }
      if (waiters.length >= options.maxQueue) return Promise.reject(options.onQueueFull());
      return new Promise<T>((resolve, reject) => {
        const onAbort = () => {
          const i = waiters.indexOf(waiter);
          if (i !== -1) waiters.splice(i, 1);
          reject(signal?.reason);
        };
        const waiter: Waiter<T> = {
          resolve: (item) => {
            signal?.removeEventListener('abort', onAbort);
            resolve(item);
          },
          reject: (error) => {
            signal?.removeEventListener('abort', onAbort);
            reject(error);
          },
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        waiters.push(waiter);
      });
    },
    release(item) {
      const next = waiters.shift();
      if (next) next.resolve(item);
      else idle.push(item);
    },
    get idle() {
      return idle.length;
    },
    get waiting() {
      return waiters.length;
    },
    close(error) {
      closedWith = error;
      for (const waiter of waiters.splice(0)) waiter.reject(error);
    },
  };
}
