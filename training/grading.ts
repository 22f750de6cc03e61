/**
 * Grading a model's answer against a trace's reference, for `mechroute label`: numeric final-answer
 * match (GSM8K style) or multiple-choice letter match. Pure functions, shared by labelling and tests.
 */

export type GradeKind = 'numeric' | 'choice' | 'exact';

export interface Grade {
  kind: GradeKind;
  /** What was read out of the response (null when nothing usable was found). */
  extracted: string | null;
  correct: boolean;
}

const NUMBER = /-?\d[\d,]*(?:\.\d+)?|-?\.\d+/g;

function toNumber(text: string): number | null {
  const cleaned = text.replace(/[,$\s]/g, '').replace(/\.$/, '');
  if (cleaned === '' || cleaned === '-') return null;
  const value = Number(cleaned);
  return Number.isFinite(value) ? value : null;
}

/**
 * The final numeric answer of a worked solution: the GSM8K `#### 42` marker when present, then an
 * explicit "answer is 42" phrase, else the last number in the text (the usual convention when grading
 * chain-of-thought answers).
 */
export function extractFinalNumber(response: string): string | null {
  const marker = /####\s*\$?\s*(-?[\d,]*\.?\d+)/.exec(response);
  if (marker) return marker[1]!.replace(/,/g, '');
  const phrase = /answer\s*(?:is|:|=)\s*\$?\s*(-?[\d,]*\.?\d+)/i.exec(response);
  if (phrase) return phrase[1]!.replace(/,/g, '');
  const all = response.match(NUMBER);
  return all && all.length > 0 ? all[all.length - 1]!.replace(/,/g, '') : null;
}

/** The chosen option letter: "(B)", "B.", "Answer: B", or a response that is just a letter. */
export function extractChoiceLetter(response: string, letters = 'ABCD'): string | null {
  const set = `[${letters}]`;
  const patterns = [
    new RegExp(`answer\\s*(?:is|:)?\\s*\\(?(${set})\\b`, 'i'),
    // A bare leading letter must be closed ("B." "B)" or alone on its line): "A robe takes…" is no answer.
    new RegExp(`^\\s*\\(?(${set})(?:[.):]|\\s*(?:\\n|$))`),
    new RegExp(`\\((${set})\\)`),
  ];
  for (const pattern of patterns) {
    const match = pattern.exec(response);
    if (match) return match[1]!.toUpperCase();
  }
  return null;
}

/** How a reference answer should be compared: a number, a single option letter, or verbatim. */
export function gradeKindOf(reference: string): GradeKind {
  if (/^[A-J]$/.test(reference.trim())) return 'choice';
  if (toNumber(reference) !== null) return 'numeric';
  return 'exact';
}

export function gradeResponse(response: string, reference: string): Grade {
  const kind = gradeKindOf(reference);
  if (kind === 'numeric') {
    const extracted = extractFinalNumber(response);
    const got = extracted === null ? null : toNumber(extracted);
    const want = toNumber(reference)!;
    // Relative tolerance for answers written as 0.5 vs .50; integers compare exactly in practice.
    const correct = got !== null && Math.abs(got - want) <= 1e-6 * Math.max(1, Math.abs(want));
    return { kind, extracted, correct };
  }
  if (kind === 'choice') {
    const extracted = extractChoiceLetter(response);
    return { kind, extracted, correct: extracted === reference.trim().toUpperCase() };
  }
  const normalize = (s: string) => s.trim().toLowerCase().replace(/\s+/g, ' ').replace(/[.!]$/, '');
  return { kind, extracted: response.trim(), correct: normalize(response) === normalize(reference) };
}
