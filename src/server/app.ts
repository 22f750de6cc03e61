import { randomUUID, timingSafeEqual } from 'node:crypto';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { z } from 'zod';
import { isLoopback } from '../loopback.js';
import { parseOverrides } from '../policy/overrides.js';
import type { RouteOverrides } from '../policy/policy-schema.js';
import { routingPrompt } from '../router/request-router.js';
import { formatIssues } from '../zod-issues.js';
import { FeedbackRequestSchema, MODEL_ROUTER, RouteRequestSchema } from './api-schema.js';
import { HttpError, toHttpError } from './http-errors.js';
import { registerChatRoute } from './routes/chat-completions.js';
import type { RouterServices } from './services.js';

export interface AppOptions {
  /** A pino logger (the server's, with credentials redacted); none logs nothing. */
  logger?: FastifyBaseLogger;
}

/** Parses a request part with zod, or throws a 400 naming every bad field. */
export function parseOr400<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new HttpError(400, 'MR_ERR_BAD_REQUEST', `invalid ${what}:\n${formatIssues(parsed.error.issues)}`);
  }
  return parsed.data;
}

export function overridesOf(request: FastifyRequest, body: { mechroute?: unknown }): RouteOverrides {
  const parsed = parseOverrides(request.headers, body);
  if (!parsed.ok) throw new HttpError(400, 'MR_ERR_INVALID_OVERRIDES', parsed.errors.join('; '));
  return parsed.overrides;
}

/** Who a request is, for budgets and rate limits: its bearer token's position, else its address. */
export function clientKey(request: FastifyRequest): string {
  return (request as FastifyRequest & { mechrouteKey?: string }).mechrouteKey ?? `ip:${request.ip}`;
}

function tokensMatch(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The fastify app: routes and hooks over already-built services. `server.ts` creates the services and
 * listens; tests build the app and use `inject()`.
 */
export async function buildApp(services: RouterServices, options: AppOptions = {}): Promise<FastifyInstance> {
  const { config, secrets, telemetry } = services;
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: config.server.body_limit_bytes,
    genReqId: () => `req-${randomUUID()}`,
    requestIdHeader: false,
  });

  const tokens = secrets.auth_tokens.map((t) => t.reveal());
  const windows = new Map<string, { start: number; count: number }>();
  const limit = config.server.rate_limit;

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (!request.url.startsWith('/v1/') && !request.url.startsWith('/admin/')) return;
    if (secrets.auth_required) {
      const header = request.headers.authorization ?? '';
      const given = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
      const index = tokens.findIndex((t) => tokensMatch(given, t));
      if (index < 0) throw new HttpError(401, 'MR_ERR_UNAUTHORIZED', 'missing or invalid bearer token');
      (request as FastifyRequest & { mechrouteKey?: string }).mechrouteKey = `token:${index}`;
    } else if (request.url.startsWith('/admin/') && !isLoopback(request.ip)) {
      // Without tokens the admin endpoints (policy rollback) would be anyone's on a public bind address.
      throw new HttpError(
        403,
        'MR_ERR_FORBIDDEN',
        'the admin endpoints answer loopback clients only when no auth tokens are configured (server.auth_tokens_env)',
      );
    }
    if (limit) {
      const key = clientKey(request);
      const now = Date.now();
      const window = windows.get(key);
      if (!window || now - window.start >= limit.window_s * 1000) {
        windows.set(key, { start: now, count: 1 });
      } else if (++window.count > limit.requests) {
        reply.header('retry-after', Math.ceil((window.start + limit.window_s * 1000 - now) / 1000));
        throw new HttpError(
          429,
          'MR_ERR_RATE_LIMITED',
          `more than ${limit.requests} requests in ${limit.window_s} s`,
        );
      }
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unknown';
    telemetry.requests.inc({ route, status: String(reply.statusCode) });
  });

  app.setErrorHandler((error, request, reply) => {
    const { status, body, internal } = toHttpError(error);
    if (internal) request.log.error({ err: error }, 'request failed');
    else if (status >= 500) request.log.warn({ code: body.error.code }, body.error.message);
    else request.log.info({ code: body.error.code }, body.error.message);
    return reply.status(status).send(body);
  });

  app.setNotFoundHandler((request, reply) => {
    const { status, body } = toHttpError(
      new HttpError(404, 'MR_ERR_UNKNOWN_REQUEST', `no route ${request.method} ${request.url}`),
    );
    return reply.status(status).send(body);
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const tiers = services.routeTiers();
    const ready = tiers.some((t) => t.available);
    return reply.status(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'no tier available',
      encoder: {
        model: config.encoder.model,
        variant: services.encoder.info.variant,
        pending: services.encoder.pending,
      },
      policy_version: services.policies.current().version,
      tiers: Object.fromEntries(
        tiers.map((t) => [
          t.id,
          t.available ? { available: true } : { available: false, reason: t.unavailable_reason },
        ]),
      ),
    });
  });

  app.get('/v1/models', async () => ({
    object: 'list',
    data: [MODEL_ROUTER, ...config.tiers.map((t) => t.id)].map((id) => ({
      id,
      object: 'model',
      created: 0,
      owned_by: 'mechroute',
    })),
  }));

  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', telemetry.registry.contentType);
    return telemetry.registry.metrics();
  });

  app.post('/v1/route', async (request, reply) => {
    const body = parseOr400(RouteRequestSchema, request.body, 'route request');
    const overrides = overridesOf(request, body);
    const prompt = body.prompt ?? routingPrompt(body.messages!);
    const routed = await services.router.decide({
      prompt,
      overrides,
      ...(body.max_tokens === undefined ? {} : { maxOutputTokens: body.max_tokens }),
      budgetKey: clientKey(request),
    });
    telemetry.encoderLatency.observe(routed.encoderMs / 1000);
    setDecisionHeaders(reply, routed.decision);
    return {
      request_id: request.id,
      tier: routed.decision.tier,
      p_success: routed.decision.p_success,
      difficulty: routed.decision.difficulty,
      task_class: routed.decision.task_class ?? null,
      policy_version: routed.decision.policy_version,
      policy_kind: routed.decision.policy_kind,
      expected_cost_usd: routed.decision.expected_cost_usd,
      reasons: routed.decision.reasons,
      fallback: routed.decision.fallback ?? false,
      escalation_path: routed.decision.escalation_path ?? [],
      error: routed.decision.error ?? null,
      input_tokens: routed.inputTokens,
      truncated: routed.truncated,
      encoder_ms: Math.round(routed.encoderMs * 100) / 100,
    };
  });

  app.post('/v1/feedback', async (request, reply) => {
    const body = parseOr400(FeedbackRequestSchema, request.body, 'feedback');
    const result = telemetry.recordFeedback(body.request_id, body.success);
    if (result === 'unknown') {
      throw new HttpError(
        404,
        'MR_ERR_UNKNOWN_REQUEST',
        `no answered request ${body.request_id} is remembered`,
      );
    }
    return reply.status(result === 'duplicate' ? 409 : 200).send({ status: result });
  });

  app.get('/v1/stats', async () => ({
    ...telemetry.snapshot(),
    policy_version: services.policies.current().version,
  }));

  app.get('/admin/policy', async () => {
    const current = services.policies.current();
    return {
      policy_version: current.version,
      policy_kind: current.kind,
      history: services.policies.history().map((p) => p.version),
      calibration: current.calibration
        ? {
            date: current.calibration.date,
            traces_sha256: current.calibration.traces.sha256,
            target: current.calibration.target,
            classes: Object.fromEntries(
              Object.entries(current.calibration.classes).map(([name, c]) => [
                name,
                { quality: c.quality, cost_per_correct: c.cost_per_correct, thresholds: c.thresholds },
              ]),
            ),
          }
        : null,
    };
  });

  app.post('/admin/policy/rollback', async () => {
    const change = services.policies.rollback();
    if (!change.ok) throw new HttpError(409, 'MR_ERR_NO_PREVIOUS_POLICY', change.error.message);
    return { policy_version: change.policy.version, previous_version: change.previous_version ?? null };
  });

  registerChatRoute(app, services);
  return app;
}

export function setDecisionHeaders(
  reply: FastifyReply,
  decision: { tier: string; p_success: Record<string, number>; policy_version: string; difficulty: number },
): void {
  reply.header('x-mechroute-tier', decision.tier);
  const p = decision.p_success[decision.tier];
  reply.header('x-mechroute-p-success', p === undefined ? 'n/a' : p.toFixed(4));
  reply.header('x-mechroute-policy-version', decision.policy_version);
  reply.header('x-mechroute-difficulty', decision.difficulty.toFixed(4));
}
