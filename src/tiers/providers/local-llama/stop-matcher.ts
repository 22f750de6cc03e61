/**
 * Streams text while watching for stop strings. A stop string may arrive split across tokens, so the
 * tail that could still be the start of one is held back until it either completes (and is cut off)
 * or stops matching (and is released). Without the hold-back a streamed answer would leak the first
 * half of its own stop sequence.
 */
export interface StopMatcher {
  /**
   * Takes the whole text generated so far and returns the part that is now safe to emit; `stopped`
   * once a stop string has been seen (the returned text then ends before it).
   */
  update(text: string): { emit: string; stopped: boolean };
  /** Whatever is still held back (the generation ended without completing a stop string). */
  flush(): string;
  /** Text emitted so far, stop string excluded. */
  readonly emitted: string;
}

export function createStopMatcher(stops: readonly string[]): StopMatcher {
  const list = stops.filter((s) => s.length > 0);
  const longest = list.reduce((n, s) => Math.max(n, s.length), 0);
  let emittedLength = 0;
  let last = '';
  let stopped = false;

  function heldTail(text: string): number {
    // Longest suffix of `text` that is a proper prefix of some stop string.
    for (let len = Math.min(longest - 1, text.length); len > 0; len--) {
      const suffix = text.slice(text.length - len);
      if (list.some((s) => s.startsWith(suffix))) return len;
    }
    return 0;
  }

  return {
    update(text) {
      if (stopped) return { emit: '', stopped: true };
      last = text;
      // A detokenizer shows a half-received multi-byte character as U+FFFD; wait for the rest of it.
      const settled = text.endsWith('\uFFFD') ? text.slice(0, -1) : text;
      const from = Math.max(0, emittedLength - longest);
      let cut = -1;
      for (const s of list) {
        const i = settled.indexOf(s, from);
        if (i !== -1 && (cut === -1 || i < cut)) cut = i;
      }
      if (cut !== -1) {
        stopped = true;
        const emit = settled.slice(emittedLength, Math.max(emittedLength, cut));
        emittedLength = Math.max(emittedLength, cut);
        last = settled.slice(0, emittedLength);
        return { emit, stopped: true };
      }
      const safe = settled.length - heldTail(settled);
      const emit = safe > emittedLength ? settled.slice(emittedLength, safe) : '';
      emittedLength = Math.max(emittedLength, safe);
      return { emit, stopped: false };
    },
    flush() {
      if (stopped) return '';
      const rest = last.slice(emittedLength);
      emittedLength = last.length;
      return rest;
    },
    get emitted() {
      return last.slice(0, emittedLength);
    },
  };
}
