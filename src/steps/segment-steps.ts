import {
  type StepSegmentation,
  type StepSegmentationInput,
  StepSegmentationSchema,
} from '../probes/step-probe-info.js';

/** One step: its trimmed text and where it ends in the response (a prefix is response.slice(0, end)). */
export interface ResponseStep {
  text: string;
  start: number;
  end: number;
}

const STEP_MARKER = /^\s*(?:step\s*\d+\s*[:.)-]|\d+\s*[.)]\s|[-*•]\s)/i;
const SENTENCE_END = /[.!?](?=\s+[A-Z0-9])/g;

/** Cut a response into steps; offsets refer to the original string. */
export function segmentSteps(response: string, options: StepSegmentationInput = {}): ResponseStep[] {
  const config = StepSegmentationSchema.parse(options);
  const raw = rawPieces(response, config.mode);
  const merged = mergeShort(raw, config.min_chars);
  return capSteps(merged, config.max_steps, response);
}

/** The text of a prompt followed by the first `k` steps of a response: what a step probe reads. */
export function stepPrefix(response: string, steps: readonly ResponseStep[], k: number): string {
  if (k <= 0) return '';
  const last = steps[Math.min(k, steps.length) - 1];
  return last ? response.slice(0, last.end) : '';
}

/** The stop string a generating worker uses to produce exactly one more step in this mode. */
export function stepStopString(config: StepSegmentationInput = {}): string {
  // Every mode ends a step at a line break at the latest; sentence mode re-cuts the line afterwards.
  void StepSegmentationSchema.parse(config);
  return '\n';
}

function lineSpans(text: string): ResponseStep[] {
  const spans: ResponseStep[] = [];
  let offset = 0;
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed.length > 0) {
      const start = offset + line.indexOf(trimmed);
      spans.push({ text: trimmed, start, end: start + trimmed.length });
    }
    offset += line.length + 1;
  }
  return spans;
}

function rawPieces(text: string, mode: StepSegmentation['mode']): ResponseStep[] {
  const lines = lineSpans(text);
  if (mode === 'lines') return lines;
  if (mode === 'numbered') {
    const steps: ResponseStep[] = [];
    for (const line of lines) {
      const previous = steps.at(-1);
      if (previous && !STEP_MARKER.test(line.text)) {
        previous.end = line.end;
        previous.text = text.slice(previous.start, previous.end);
      } else steps.push({ ...line });
    }
    return steps;
  }
  return lines.flatMap((line) => splitSentences(line));
}

function splitSentences(line: ResponseStep): ResponseStep[] {
  const pieces: ResponseStep[] = [];
  let from = 0;
  for (const match of line.text.matchAll(SENTENCE_END)) {
    const cut = match.index + 1;
    pushTrimmed(pieces, line, from, cut);
    from = cut;
  }
  pushTrimmed(pieces, line, from, line.text.length);
  return pieces;
}

function pushTrimmed(into: ResponseStep[], line: ResponseStep, from: number, to: number): void {
  const piece = line.text.slice(from, to);
  const trimmed = piece.trim();
  if (trimmed.length === 0) return;
  const start = line.start + from + piece.indexOf(trimmed);
  into.push({ text: trimmed, start, end: start + trimmed.length });
}

function mergeShort(steps: ResponseStep[], minChars: number): ResponseStep[] {
  const out: ResponseStep[] = [];
  let pending: ResponseStep | undefined;
  for (const step of steps) {
    const current: ResponseStep = pending ? { text: '', start: pending.start, end: step.end } : { ...step };
    pending = undefined;
    if (current.end - current.start < minChars) {
      pending = current;
      continue;
    }
    out.push(current);
  }
  // A short tail (often the final "#### 42") still counts: it joins the step before it, or stands alone.
  if (pending) {
    const last = out.at(-1);
    if (last) last.end = pending.end;
    else out.push(pending);
  }
  return out;
}

function capSteps(steps: ResponseStep[], maxSteps: number, text: string): ResponseStep[] {
  const capped = steps.length > maxSteps ? steps.slice(0, maxSteps) : steps;
  if (steps.length > maxSteps) {
    const last = capped[maxSteps - 1] as ResponseStep;
    last.end = (steps.at(-1) as ResponseStep).end;
  }
  return capped.map((s) => ({ start: s.start, end: s.end, text: text.slice(s.start, s.end) }));
}
