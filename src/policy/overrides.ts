import { z } from 'zod';
import { type Policy, PolicyKindSchema, type RouteOverrides } from './policy-schema.js';

/**
 * Per-request policy overrides, from headers or from a `mechroute` object in the JSON body (what OpenAI
 * clients send through `extra_body`). Both places are validated the same way; when both give a field
 * they must agree, since silently preferring one would hide a misconfigured proxy or client.
 */

export const OVERRIDE_HEADERS = {
  policy: 'x-mechroute-policy',
  max_cost_usd: 'x-mechroute-max-cost',
  lambda: 'x-mechroute-lambda',
  threshold: 'x-mechroute-threshold',
} as const satisfies Record<keyof RouteOverrides, string>;

export const RouteOverridesSchema = z.strictObject({
  policy: PolicyKindSchema.optional(),
  max_cost_usd: z.number().positive().finite().optional(),
  lambda: z.number().nonnegative().finite().optional(),
  threshold: z.number().min(0).max(1).optional(),
}) satisfies z.ZodType<RouteOverrides>;

export type ParsedOverrides = { ok: true; overrides: RouteOverrides } | { ok: false; errors: string[] };

type HeaderValue = string | readonly string[] | undefined;

// Strict decimal: Number() would take '', '0x10' and ' 1 ', none of which a client means as a number.
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function headerValue(name: string, raw: HeaderValue, errors: string[]): string | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string') {
    if (raw.length === 1) return raw[0];
    errors.push(`header ${name}: given ${raw.length} times, expected once`);
    return undefined;
  }
  return raw.trim();
}

function fromHeaders(
  headers: Readonly<Record<string, HeaderValue>>,
  errors: string[],
): Record<string, unknown> {
  // Node lower-cases incoming header names; a plain object from elsewhere may not have.
  const lower = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v] as const));
  const out: Record<string, unknown> = {};
  for (const [field, name] of Object.entries(OVERRIDE_HEADERS)) {
    const text = headerValue(name, lower.get(name), errors);
    if (text === undefined) continue;
    if (field === 'policy') out[field] = text.toLowerCase();
    else if (DECIMAL.test(text)) out[field] = Number(text);
    else errors.push(`header ${name}: expected a number, got ${JSON.stringify(text.slice(0, 40))}`);
  }
  return out;
}

function issuesOf(error: z.ZodError, where: (field: string) => string): string[] {
  return error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return `body mechroute: unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')} (known: ${Object.keys(OVERRIDE_HEADERS).join(', ')})`;
    }
    return `${where(issue.path.map(String).join('.'))}: ${issue.message}`;
  });
}

/**
 * Overrides of one request, or every problem with them (each naming the header or body field), ready
 * for a 400 response. `body` is the parsed JSON body (anything; only its `mechroute` field is read).
 */
export function parseOverrides(
  headers: Readonly<Record<string, HeaderValue>>,
  body: unknown,
): ParsedOverrides {
  const errors: string[] = [];
  const fromHeader = fromHeaders(headers, errors);
  const header = RouteOverridesSchema.safeParse(fromHeader);
  if (!header.success) {
    errors.push(
      ...issuesOf(
        header.error,
        (field) => `header ${OVERRIDE_HEADERS[field as keyof RouteOverrides] ?? field}`,
      ),
    );
  }
  const raw =
    body !== null && typeof body === 'object' && !Array.isArray(body)
      ? (body as Record<string, unknown>).mechroute
      : undefined;
  let fromBody: RouteOverrides = {};
  if (raw !== undefined) {
    const parsed = RouteOverridesSchema.safeParse(raw);
    if (parsed.success) fromBody = parsed.data;
    else errors.push(...issuesOf(parsed.error, (field) => `body mechroute${field ? `.${field}` : ''}`));
  }
  if (errors.length > 0) return { ok: false, errors };
  const fromHeaderData = header.success ? header.data : {};
  for (const key of Object.keys(OVERRIDE_HEADERS) as (keyof RouteOverrides)[]) {
    const a = fromHeaderData[key];
    const b = fromBody[key];
    if (a !== undefined && b !== undefined && a !== b) {
      errors.push(`header ${OVERRIDE_HEADERS[key]} (${a}) and body mechroute.${key} (${b}) disagree`);
    }
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, overrides: { ...fromHeaderData, ...fromBody } };
}

/** The policy a request runs under, and what its overrides changed. */
export function applyOverrides(
  policy: Policy,
  overrides: RouteOverrides | undefined,
): { policy: Policy; reasons: string[] } {
  const given = Object.entries(overrides ?? {}).filter(([, v]) => v !== undefined);
  if (given.length === 0) return { policy, reasons: [] };
  if (!policy.allow_overrides) {
    return {
      policy,
      reasons: [`request overrides ignored (${given.map(([k]) => k).join(', ')}): not allowed by the policy`],
    };
  }
  const o = overrides!;
  const reasons: string[] = [];
  let next = policy;
  if (o.policy !== undefined && o.policy !== policy.kind) {
    next = { ...next, kind: o.policy };
    reasons.push(`override: policy kind ${o.policy} (configured: ${policy.kind})`);
  }
  if (o.lambda !== undefined) {
    next = { ...next, utility: { ...next.utility, lambda: o.lambda } };
    reasons.push(`override: λ = ${o.lambda}`);
  }
  if (o.threshold !== undefined) {
    next = { ...next, threshold: { default: o.threshold, tiers: {}, classes: {} } };
    reasons.push(`override: threshold ${o.threshold} for every tier`);
  }
  if (o.max_cost_usd !== undefined) {
    // A client may tighten the operator's ceiling, never loosen it.
    const configured = policy.budget.max_cost_usd;
    const max = configured === undefined ? o.max_cost_usd : Math.min(configured, o.max_cost_usd);
    next = { ...next, budget: { ...next.budget, max_cost_usd: max } };
    reasons.push(
      configured !== undefined && o.max_cost_usd > configured
        ? `override: max cost ${o.max_cost_usd} USD ignored, above the policy's ${configured}`
        : `override: max cost ${max} USD per request`,
    );
  }
  return { policy: next, reasons };
}
