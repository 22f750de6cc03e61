/**
 * Grading a tier's answer against a trace's reference, for `mechroute label`: the final number of a
 * worked solution (GSM8K style) or the option letter of a multiple-choice answer. Pure functions.
 *
 * A grade has three verdicts, not two: an answer the grader cannot read (no number, no letter, cut off
 * before its final line) is `ungradable`, reported apart from the passes and fails, because calling it
 * a failure would blame the tier for the grader's blind spot and calling it a pass would be a guess.
 */

export type GradeMethod = 'numeric' | 'choice' | 'command';
export type Verdict = 'pass' | 'fail' | 'ungradable';

export interface Grade {
  method: GradeMethod;
  verdict: Verdict;
  /** What was read out of the answer (a number, a letter), when something was. */
  extracted?: string;
  /** How it was read: `#### marker`, `answer phrase`, `last number`, a letter pattern, the command's note. */
  how?: string;
  /** Why the answer is ungradable, or failed for being cut off (or, for a command, what it said). */
  reason?: string;
  /** The tier stopped at the token limit before a final answer could be read. */
  cut_off?: true;
}

/** The answer as the grader sees it: its text, and whether the tier stopped at the token limit. */
export interface GradedAnswer {
  text: string;
  /** finish_reason `length`: the answer may have been cut off before its final line. */
  truncated: boolean;
}

const NUMBER = /-?\d[\d,]*(?:\.\d+)?|-?\.\d+/g;

export function toNumber(text: string): number | null {
  const cleaned = text.replace(/[,$\s]/g, '').replace(/\.$/, '');
  if (cleaned === '' || cleaned === '-') return null;
  const value = Number(cleaned);
  return Number.isFinite(value) ? value : null;
}

/** Markdown emphasis is presentation: "**B**" and "#### **42**" are the answers B and 42. */
const plain = (text: string) => text.replace(/\*\*/g, '');

export interface Extracted {
  value: string;
  how: string;
}

/**
 * The final numeric answer of a worked solution: the GSM8K `#### 42` marker when present, then an
 * explicit "answer is 42" phrase, else the last number in the text (the usual convention when grading
 * chain-of-thought answers).
 */
export function extractFinalNumber(answer: string): Extracted | null {
  const response = plain(answer);
  const marker = /####\s*\$?\s*(-?[\d,]*\.?\d+)/.exec(response);
  if (marker) return { value: marker[1]!.replace(/,/g, ''), how: '#### marker' };
  const phrase = /answer\s*(?:is|:|=)\s*\$?\s*(-?[\d,]*\.?\d+)/i.exec(response);
  if (phrase) return { value: phrase[1]!.replace(/,/g, ''), how: 'answer phrase' };
  const all = response.match(NUMBER);
  return all && all.length > 0 ? { value: all[all.length - 1]!.replace(/,/g, ''), how: 'last number' } : null;
}

/** The chosen option letter: "Answer: B", a reply that is just "B" / "B." / "(B)", or "(B)" in the text. */
export function extractChoiceLetter(answer: string, letters = 'ABCD'): Extracted | null {
  const response = plain(answer);
  const set = `[${letters}]`;
  const patterns: Array<[RegExp, string]> = [
    [new RegExp(`answer\\s*(?:is|:)?\\s*\\(?(${set})\\b`, 'i'), 'answer phrase'],
    // A bare leading letter must be closed ("B." "B)" or alone on its line): "A robe takes…" is no answer.
    [new RegExp(`^\\s*\\(?(${set})(?:[.):]|\\s*(?:\\n|$))`), 'leading letter'],
    [new RegExp(`\\((${set})\\)`), '(letter) in the text'],
  ];
  for (const [pattern, how] of patterns) {
    const match = pattern.exec(response);
    if (match) return { value: match[1]!.toUpperCase(), how };
  }
  return null;
}

/**
 * How a reference can be graded without help: a number, or a single option letter. Anything else
 * (free text, code) needs a grading command; null says so.
 */
export function builtInMethodOf(reference: string): 'numeric' | 'choice' | null {
  if (/^[A-J]$/.test(reference.trim())) return 'choice';
  if (toNumber(reference) !== null) return 'numeric';
  return null;
}

/** Nothing readable in the answer: cut off at the limit before `sought`, or it simply has none. */
function nothingFound(method: GradeMethod, answer: GradedAnswer, sought: string, none: string): Grade {
  return answer.truncated
    ? { method, verdict: 'ungradable', reason: `cut off at the token limit before ${sought}`, cut_off: true }
    : { method, verdict: 'ungradable', reason: none };
}

export function gradeNumeric(answer: GradedAnswer, reference: string): Grade {
  const want = toNumber(reference);
  if (want === null) throw new TypeError(`reference "${reference}" is not a number`);
  const found = extractFinalNumber(answer.text);
  if (!found) {
    return nothingFound('numeric', answer, 'any number', 'no number in the answer');
  }
  // The last number of an answer cut off mid-reasoning is an intermediate value, not an answer.
  if (answer.truncated && found.how === 'last number') {
    return {
      method: 'numeric',
      verdict: 'ungradable',
      extracted: found.value,
      how: found.how,
      reason: 'cut off at the token limit before a final answer',
      cut_off: true,
    };
  }
  const got = toNumber(found.value);
  // Relative tolerance for answers written as 0.5 vs .50; integers compare exactly in practice.
  const pass = got !== null && Math.abs(got - want) <= 1e-6 * Math.max(1, Math.abs(want));
  return { method: 'numeric', verdict: pass ? 'pass' : 'fail', extracted: found.value, how: found.how };
}

export function gradeChoice(answer: GradedAnswer, reference: string): Grade {
  const want = reference.trim().toUpperCase();
  // Options run A–D in most sets; a reference past D means the set has at least that many.
  const letters = 'ABCDEFGHIJ'.slice(0, Math.max(4, 'ABCDEFGHIJ'.indexOf(want) + 1));
  const found = extractChoiceLetter(answer.text, letters);
  if (!found) {
    return nothingFound('choice', answer, 'an option letter', 'no option letter in the answer');
  }
  return {
    method: 'choice',
    verdict: found.value === want ? 'pass' : 'fail',
    extracted: found.value,
    how: found.how,
  };
}

/**
 * What an answer cut off before its final line counts as. `ungradable` by default: the grader cannot
 * know what it would have said. `fail` when the token limit is part of what is being labelled: a tier
 * that loops or rambles past it never answers, and leaving those out would make it look better than it
 * is (its cut-off answers are mostly its failures).
 */
export type CutOffPolicy = 'ungradable' | 'fail';

export const applyCutOffPolicy = (grade: Grade, policy: CutOffPolicy): Grade =>
  grade.cut_off && policy === 'fail' ? { ...grade, verdict: 'fail' } : grade;

/**
 * The code in an answer, for a grading command: the first fenced block (```lang … ```; an unclosed
 * fence, as an answer cut off at the token limit leaves, runs to the end), else the whole answer.
 */
export function extractCode(answer: string): string {
  const fence = /```[^\n`]*\n([\s\S]*?)(?:```|$)/.exec(answer);
  return fence ? fence[1]!.replace(/\n$/, '') : answer.trim();
}
