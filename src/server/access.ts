import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import { isLoopback } from '../loopback.js';
import { clientKey } from './request-parsing.js';

/**
 * Who may call what. The checks are hooks of the plugin scope that declares the routes (`api`,
 * `admin`), so they run for exactly the routes fastify matched — whatever the raw URL looked like
 * (`/%761/stats`, an absolute-form `http://host/v1/stats`): a guard that compared URL prefixes was
 * bypassed by both. Routes outside these scopes (health, metrics) are public by declaration.
 *
 * Needs `@fastify/rate-limit` registered (with `global: false`) on a parent instance: its LRU-bounded
 * store counts requests per key, so an unbounded stream of distinct clients cannot grow memory.
 */
export interface AccessOptions {
  /** Bearer tokens; none means the API is open (the admin scope then answers loopback clients only). */
  tokens: readonly string[];
  /** Requests per key (token, else address) per window; none means unlimited. */
  rateLimit?: { requests: number; window_s: number } | undefined;
  /** Failed authentications per client address per minute before it gets 429s (default 20). */
  authFailuresPerMinute?: number;
}

export type Scope = 'api' | 'admin';

/** The token of an `Authorization: Bearer …` header; the scheme is case-insensitive (RFC 9110 §11.1). */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^bearer[ \t]+([^ \t]+)[ \t]*$/i.exec(header ?? '');
  return match?.[1];
}

function tokenIndex(given: string, tokens: readonly string[]): number {
  const a = Buffer.from(given);
  return tokens.findIndex((t) => {
    const b = Buffer.from(t);
    return a.length === b.length && timingSafeEqual(a, b);
  });
}

const retryAfterOf = (ttlMs: number) => Math.max(1000, ttlMs);

/** Adds the access hooks of `scope` to `instance` (a plugin scope: only its routes are guarded). */
export function guard(instance: FastifyInstance, scope: Scope, options: AccessOptions): void {
  const { tokens, rateLimit } = options;
  const authFailures = instance.createRateLimit({
    max: options.authFailuresPerMinute ?? 20,
    timeWindow: 60_000,
    keyGenerator: (request) => `auth-failures:${request.ip}`,
  });
  const perKey = rateLimit
    ? instance.createRateLimit({
        max: rateLimit.requests,
        timeWindow: rateLimit.window_s * 1000,
        keyGenerator: (request) => `requests:${clientKey(request)}`,
      })
    : undefined;

  async function authenticate(request: FastifyRequest): Promise<void> {
    // A client that keeps guessing is throttled before its next guess is even compared.
    const seen = await authFailures(request, { increment: false });
    if (!seen.isAllowed && seen.remaining === 0) {
      throw new ApiError('MR_ERR_AUTH_THROTTLED', 'too many failed authentications; retry later', {
        retryAfterMs: retryAfterOf(seen.ttl),
      });
    }
    const given = bearerToken(request.headers.authorization);
    const index = given === undefined ? -1 : tokenIndex(given, tokens);
    if (index < 0) {
      await authFailures(request);
      throw new ApiError('MR_ERR_UNAUTHORIZED', 'missing or invalid bearer token');
    }
    request.clientKey = `token:${index}`;
  }

  instance.addHook('onRequest', async (request) => {
    if (tokens.length > 0) await authenticate(request);
    else if (scope === 'admin' && !isLoopback(request.ip)) {
      // Without tokens the admin endpoints (policy rollback) would be anyone's on a public bind address.
      throw new ApiError(
        'MR_ERR_FORBIDDEN',
        'the admin endpoints answer loopback clients only when no auth tokens are configured (server.auth_tokens_env)',
      );
    }
    if (perKey) {
      const verdict = await perKey(request);
      if (!verdict.isAllowed && verdict.isExceeded) {
        throw new ApiError(
          'MR_ERR_RATE_LIMITED',
          `more than ${verdict.max} requests in ${Math.round(verdict.timeWindow / 1000)} s`,
          { retryAfterMs: retryAfterOf(verdict.ttl) },
        );
      }
    }
  });
}
