import type { z } from 'zod';

type Issues = readonly Pick<z.core.$ZodIssue, 'path' | 'message'>[];

const pathOf = (issue: Issues[number]) => issue.path.map(String).join('.');

/**
 * One line per zod issue, led by its path (`tiers.1.price: Expected number`), so a bad file or request
 * says exactly which field to fix without the reader knowing zod.
 */
export function formatIssues(issues: Issues): string {
  return issues.map((issue) => `  - ${pathOf(issue) || '(root)'}: ${issue.message}`).join('\n');
}

/** The same on one line, for a reason that sits beside a line number (JSONL files, CLI flags). */
export function formatIssuesInline(error: z.ZodError): string {
  return error.issues
    .map((issue) => (pathOf(issue) ? `${pathOf(issue)}: ${issue.message}` : issue.message))
    .join('; ');
}
