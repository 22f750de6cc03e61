import { z } from 'zod';

/**
 * TF-IDF over word n-grams and within-word character n-grams (scikit-learn's `char_wb`), the classic text
 * classifier's features. Pure and deterministic: the vocabulary is the training texts' most frequent
 * terms by document frequency, ties broken by the term itself, so the same train split always gives the
 * same features. Weights: sublinear tf (1 + ln tf) × smoothed idf (ln((1+n)/(1+df)) + 1), then the whole
 * vector (words and characters together) L2-normalised.
 */
export const TfidfModelSchema = z
  .object({
    word_ngram: z.tuple([z.number().int().positive(), z.number().int().positive()]),
    char_ngram: z.tuple([z.number().int().positive(), z.number().int().positive()]),
    /** Word terms first, then character terms (prefixed `c:`), each with its idf. */
    terms: z.array(z.string()),
    idf: z.array(z.number().positive()),
  })
  .refine((m) => m.terms.length === m.idf.length, { message: 'terms and idf differ in length' });
export type TfidfModel = z.infer<typeof TfidfModelSchema>;

export interface TfidfOptions {
  /** Vocabulary budget for word n-grams (default 1024). */
  maxWordTerms?: number;
  /** Vocabulary budget for character n-grams (default 1024). */
  maxCharTerms?: number;
  /** Default [1, 2]. */
  wordNgram?: [number, number];
  /** Default [3, 5]. */
  charNgram?: [number, number];
  /** Terms in fewer documents are never kept (default 2). */
  minDf?: number;
}

const WORD = /[\p{L}\p{N}]+/gu;

/** Every term of a text with its count: `w:` word n-grams, `c:` character n-grams of padded words. */
export function termCounts(
  text: string,
  wordNgram: readonly [number, number],
  charNgram: readonly [number, number],
): Map<string, number> {
  const counts = new Map<string, number>();
  const add = (term: string) => counts.set(term, (counts.get(term) ?? 0) + 1);
  const words = text.toLowerCase().match(WORD) ?? [];
  for (let n = wordNgram[0]; n <= wordNgram[1]; n += 1) {
    for (let i = 0; i + n <= words.length; i += 1) add(`w:${words.slice(i, i + n).join(' ')}`);
  }
  for (const word of words) {
    const padded = ` ${word} `;
    for (let n = charNgram[0]; n <= charNgram[1]; n += 1) {
      for (let i = 0; i + n <= padded.length; i += 1) add(`c:${padded.slice(i, i + n)}`);
    }
  }
  return counts;
}

function topTerms(df: Map<string, number>, prefix: string, budget: number, minDf: number): string[] {
  return [...df.entries()]
    .filter(([term, count]) => term.startsWith(prefix) && count >= minDf)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, budget)
    .map(([term]) => term);
}

export function fitTfidf(texts: readonly string[], options: TfidfOptions = {}): TfidfModel {
  const wordNgram = options.wordNgram ?? [1, 2];
  const charNgram = options.charNgram ?? [3, 5];
  const minDf = options.minDf ?? 2;
  const df = new Map<string, number>();
  for (const text of texts) {
    for (const term of termCounts(text, wordNgram, charNgram).keys()) df.set(term, (df.get(term) ?? 0) + 1);
  }
  const terms = [
    ...topTerms(df, 'w:', options.maxWordTerms ?? 1024, minDf),
    ...topTerms(df, 'c:', options.maxCharTerms ?? 1024, minDf),
  ];
  const n = texts.length;
  return {
    word_ngram: wordNgram,
    char_ngram: charNgram,
    terms,
    idf: terms.map((t) => Math.log((1 + n) / (1 + df.get(t)!)) + 1),
  };
}

/** Index of each term, built once per model object. */
const indexCache = new WeakMap<TfidfModel, Map<string, number>>();

function termIndex(model: TfidfModel): Map<string, number> {
  let index = indexCache.get(model);
  if (!index) {
    index = new Map(model.terms.map((t, i) => [t, i]));
    indexCache.set(model, index);
  }
  return index;
}

/** The text's unit-length TF-IDF vector (all zeros when it has no known term). */
export function tfidfVector(model: TfidfModel, text: string): Float32Array {
  const index = termIndex(model);
  const out = new Float32Array(model.terms.length);
  for (const [term, count] of termCounts(text, model.word_ngram, model.char_ngram)) {
    const j = index.get(term);
    if (j !== undefined) out[j] = (1 + Math.log(count)) * model.idf[j]!;
  }
  let norm = 0;
  for (const v of out) norm += v * v;
  if (norm > 0) {
    const scale = 1 / Math.sqrt(norm);
    for (let j = 0; j < out.length; j += 1) out[j]! *= scale;
  }
  return out;
}
