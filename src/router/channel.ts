/**
 * A push-to-pull bridge: callback-style code (the step loop, the advisor loop) pushes values, an async
 * iterator hands them out in order. `fail` ends the iteration by throwing; `onCancel` runs when the
 * consumer stops early, so work nobody reads can be stopped.
 */
export function createChannel<T>(onCancel: () => void = () => {}): {
  push(value: T): void;
  close(): void;
  fail(error: unknown): void;
  iterable: AsyncIterable<T>;
} {
  const buffered: T[] = [];
  let closed = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  return {
    push(value) {
      if (closed) return;
      buffered.push(value);
      notify();
    },
    close() {
      closed = true;
      notify();
    },
    fail(error) {
      if (closed) return;
      failure = { error };
      closed = true;
      notify();
    },
    iterable: {
      async *[Symbol.asyncIterator]() {
        let finished = false;
        try {
          while (true) {
            if (buffered.length > 0) {
              yield buffered.shift()!;
              continue;
            }
            if (closed) {
              finished = true;
              if (failure) throw failure.error;
              return;
            }
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
          }
        } finally {
          if (!finished) onCancel();
          closed = true;
        }
      },
    },
  };
}
