import type { Trace } from './trace-schema.js';

/**
 * A trace's task class, for the class probe and per-class calibration. From the trace's own `class`
 * field, its `dataset`, or the four MMLU subject groups of Hendrycks et al. (the `categories` of the
 * MMLU repository's categories.py: STEM, humanities, social sciences, other).
 */
export const TASK_CLASS_SOURCES = ['class', 'dataset', 'mmlu-group', 'auto'] as const;
export type TaskClassSource = (typeof TASK_CLASS_SOURCES)[number];

const GROUP_OF_SUBCATEGORY: Record<string, string> = {
  physics: 'STEM',
  chemistry: 'STEM',
  biology: 'STEM',
  'computer science': 'STEM',
  math: 'STEM',
  engineering: 'STEM',
  history: 'humanities',
  philosophy: 'humanities',
  law: 'humanities',
  politics: 'social sciences',
  culture: 'social sciences',
  economics: 'social sciences',
  geography: 'social sciences',
  psychology: 'social sciences',
  other: 'other',
  business: 'other',
  health: 'other',
};

/** MMLU subject → its subcategory (categories.py `subcategories`). */
const SUBCATEGORY: Record<string, string> = {
  abstract_algebra: 'math',
  anatomy: 'health',
  astronomy: 'physics',
  business_ethics: 'business',
  clinical_knowledge: 'health',
  college_biology: 'biology',
  college_chemistry: 'chemistry',
  college_computer_science: 'computer science',
  college_mathematics: 'math',
  college_medicine: 'health',
  college_physics: 'physics',
  computer_security: 'computer science',
  conceptual_physics: 'physics',
  econometrics: 'economics',
  electrical_engineering: 'engineering',
  elementary_mathematics: 'math',
  formal_logic: 'philosophy',
  global_facts: 'other',
  high_school_biology: 'biology',
  high_school_chemistry: 'chemistry',
  high_school_computer_science: 'computer science',
  high_school_european_history: 'history',
  high_school_geography: 'geography',
  high_school_government_and_politics: 'politics',
  high_school_macroeconomics: 'economics',
  high_school_mathematics: 'math',
  high_school_microeconomics: 'economics',
  high_school_physics: 'physics',
  high_school_psychology: 'psychology',
  high_school_statistics: 'math',
  high_school_us_history: 'history',
  high_school_world_history: 'history',
  human_aging: 'health',
  human_sexuality: 'culture',
  international_law: 'law',
  jurisprudence: 'law',
  logical_fallacies: 'philosophy',
  machine_learning: 'computer science',
  management: 'business',
  marketing: 'business',
  medical_genetics: 'health',
  miscellaneous: 'other',
  moral_disputes: 'philosophy',
  moral_scenarios: 'philosophy',
  nutrition: 'health',
  philosophy: 'philosophy',
  prehistory: 'history',
  professional_accounting: 'other',
  professional_law: 'law',
  professional_medicine: 'health',
  professional_psychology: 'psychology',
  public_relations: 'politics',
  security_studies: 'politics',
  sociology: 'culture',
  us_foreign_policy: 'politics',
  virology: 'health',
  world_religions: 'philosophy',
};

/** The MMLU group of a subject (STEM, humanities, social sciences, other); undefined if not MMLU's. */
export function mmluGroup(subject: string): string | undefined {
  const sub = SUBCATEGORY[subject];
  return sub === undefined ? undefined : GROUP_OF_SUBCATEGORY[sub];
}

/**
 * The class of a trace under `source`; undefined when the trace has none. `auto`: its `class`, else the
 * MMLU group of its subject, else its dataset.
 */
export function taskClassOf(
  trace: Pick<Trace, 'class' | 'dataset' | 'subject'>,
  source: TaskClassSource,
): string | undefined {
  if (source === 'class') return trace.class;
  if (source === 'dataset') return trace.dataset;
  const group = trace.subject === undefined ? undefined : mmluGroup(trace.subject);
  if (source === 'mmlu-group') return group;
  return trace.class ?? group ?? trace.dataset;
}
