import { PromptTooLongError } from '../errors.js';

/**
 * The tokens of a prompt the encoder reads: all of them, or — past `maxTokens` — the window its
 * overflow rule keeps, found without tokenizing the whole prompt.
 *
 * Why not tokenize it all and cut: llama.cpp's tokenizer runs synchronously on the event loop and is
 * quadratic on some inputs (with the default encoder, 20 KB of "a\n" takes 1.3 s and 40 KB 5.8 s,
 * measured), so a 1 MB body of them would hold every request of the server for most of an hour. Only
 * the kept end (and head) can matter, so only a piece of the text a little larger than they need is
 * tokenized: from twice the needed tokens in characters, doubling until the piece holds them plus a
 * margin (the tokens next to the cut may differ from those of the whole text, so the margin is
 * dropped). On the slow inputs a token is one or two characters, so the piece stays small.
 */
export type Overflow = 'truncate-left' | 'head-tail' | 'reject';

export interface WindowOptions {
  maxTokens: number;
  overflow: Overflow;
  /** Tokens kept from the start with head-tail (BOS included). */
  headTokens: number;
  /** Whether the tokenizer puts a BOS token first (kept by truncate-left). */
  addsBos: boolean;
}

/** `tokenize(text, addSpecial)`: the encoder's tokenizer; addSpecial adds the BOS where the model has one. */
export type Tokenize = (text: string, addSpecial: boolean) => Int32Array;

/** Tokens next to a cut that are dropped, since the cut may have changed them. */
export const CUT_MARGIN = 16;
/**
 * Past this many characters per needed token a piece stops growing: a text that sparse in tokens
 * (runs of whitespace) keeps the tokens of its last (first) `need × 64` characters only.
 */
export const MAX_CHARS_PER_TOKEN = 64;

type Windowed = { tokens: Int32Array; truncated: boolean };

/**
 * The most tokens of a prompt the encoder reads: its `max_prompt_tokens` within the context, else the
 * whole context. A probe bundle trained on a window must be served with the same one.
 */
export const promptWindowTokens = (maxPromptTokens: number | undefined, contextTokens: number): number =>
  Math.min(maxPromptTokens ?? contextTokens, contextTokens);

export function promptWindow(text: string, tokenize: Tokenize, options: WindowOptions): Windowed {
  const { maxTokens, overflow, addsBos } = options;
  if (overflow === 'reject') {
    // A prefix with more than maxTokens tokens settles it without reading the rest.
    if (piece(text, tokenize, maxTokens + 1, 'start', false)) {
      throw new PromptTooLongError(`more than ${maxTokens}`, maxTokens);
    }
    return fitOrCut(tokenize(text, true), options);
  }
  const keepHead = overflow === 'head-tail' ? Math.min(options.headTokens, maxTokens - 1) : addsBos ? 1 : 0;
  const tail = piece(text, tokenize, maxTokens - keepHead, 'end', true);
  const head =
    overflow === 'head-tail'
      ? piece(text, tokenize, keepHead, 'start', true)
      : tokenize('', true).subarray(0, keepHead);
  if (!tail || !head) return fitOrCut(tokenize(text, true), options);
  const tokens = new Int32Array(head.length + tail.length);
  tokens.set(head, 0);
  tokens.set(tail, head.length);
  return { tokens, truncated: true };
}

/** The whole prompt's tokens, cut by the overflow rule when there are too many. */
function fitOrCut(tokens: Int32Array, { maxTokens, overflow, headTokens, addsBos }: WindowOptions): Windowed {
  if (tokens.length <= maxTokens) return { tokens, truncated: false };
  if (overflow === 'reject') throw new PromptTooLongError(tokens.length, maxTokens);
  const keep = overflow === 'head-tail' ? Math.min(headTokens, maxTokens - 1) : addsBos ? 1 : 0;
  const out = new Int32Array(maxTokens);
  out.set(tokens.subarray(0, keep), 0);
  out.set(tokens.subarray(tokens.length - (maxTokens - keep)), keep);
  return { tokens: out, truncated: true };
}

/**
 * The first (`from: 'start'`, BOS included) or last (`'end'`) `need` tokens of `text`, from a piece of
 * it; undefined when the piece would have to be the whole text (the caller then tokenizes it all). With
 * `capped`, a text too sparse in tokens gives the tokens of its longest piece, fewer than `need`.
 */
function piece(
  text: string,
  tokenize: Tokenize,
  need: number,
  from: 'start' | 'end',
  capped: boolean,
): Int32Array | undefined {
  const cap = need * MAX_CHARS_PER_TOKEN;
  for (let size = Math.max(64, 2 * (need + CUT_MARGIN)); size < text.length; size *= 2) {
    const last = capped && size >= cap;
    let cut = from === 'start' ? size : text.length - size;
    // Never cut between the halves of a surrogate pair.
    if (isLowSurrogate(text.charCodeAt(cut))) cut += 1;
    const tokens = from === 'start' ? tokenize(text.slice(0, cut), true) : tokenize(text.slice(cut), false);
    if (tokens.length >= need + CUT_MARGIN || last) {
      const usable = Math.min(need, Math.max(0, tokens.length - CUT_MARGIN));
      return from === 'start' ? tokens.subarray(0, usable) : tokens.subarray(tokens.length - usable);
    }
  }
  return undefined;
}

const isLowSurrogate = (code: number) => code >= 0xdc00 && code <= 0xdfff;
