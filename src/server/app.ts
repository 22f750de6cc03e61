import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { ErrorCode } from '../error-codes.js';
import { ApiError } from '../errors.js';
import { type AccessOptions, guard } from './access.js';
import { boundedMessage, toHttpError } from './http-errors.js';
import { InflightRequests, ShuttingDownError } from './inflight.js';
import { registerJsonBodyParser } from './json-body.js';
import { adminRoutes } from './routes/admin.js';
import { chatRoutes } from './routes/chat-completions.js';
import { feedbackRoutes } from './routes/feedback.js';
import { healthRoutes } from './routes/health.js';
import { modelRoutes } from './routes/models.js';
import { routeDecisionRoutes } from './routes/route-decision.js';
import type { RouterServices } from './services.js';
import { servicesPlugin } from './services-plugin.js';

export interface AppOptions {
  /** A pino logger (the server's, with credentials redacted); none logs nothing. */
  logger?: FastifyBaseLogger;
}

/** The app and what `server.ts` needs to shut it down gracefully. */
export interface RouterApp {
  app: FastifyInstance;
  inflight: InflightRequests;
}

/**
 * The fastify app over already-built services: the services as a plugin (released when the app
 * closes), the public routes, then two plugin scopes whose hooks guard exactly the routes declared
 * inside them — `api` (bearer auth, rate limit) and `admin` (the same, or loopback clients only
 * without tokens). `server.ts` creates the services, listens and shuts down; tests build the app and
 * use `inject()`. Each route module is a plugin reading `app.services`.
 */
export async function buildApp(services: RouterServices, options: AppOptions = {}): Promise<RouterApp> {
  const { config, secrets, telemetry } = services;
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: config.server.body_limit_bytes,
    requestTimeout: config.server.receive_timeout_ms,
    http: {
      // Node cuts off a request whose body stalls only at headersTimeout (60 s by default), and looks
      // every 30 s; both follow receive_timeout_ms here, or a stalled upload holds a socket 90 s.
      headersTimeout: config.server.receive_timeout_ms,
      connectionsCheckingInterval: Math.min(1_000, config.server.receive_timeout_ms),
      // Node would answer a missing Host itself, with an empty 400; the onRequest hook answers instead.
      requireHostHeader: false,
    },
    genReqId: () => `req-${randomUUID()}`,
    requestIdHeader: false,
    // Requests that arrive while draining get our own 503 (MR_ERR_SHUTTING_DOWN, OpenAI-shaped).
    return503OnClosing: false,
    // Errors fastify raises before a route runs (a malformed URL) get the OpenAI shape too.
    frameworkErrors: (error, request, reply) => {
      const { status, headers, body } = toHttpError(error, request.id);
      // The generic reply type of this option cannot take a plain status number.
      const raw = reply as unknown as FastifyReply;
      void raw.status(status).headers(headers).send(body);
    },
    // Malformed HTTP, oversized headers, a request that took too long to arrive: answered on the raw
    // socket (no request exists yet), in the same error shape.
    clientErrorHandler: writeClientError,
  });
  const inflight = new InflightRequests(config.server.request_timeout_ms);
  // Requests Node answers by itself when nobody listens: an empty 417, a dropped connection.
  app.server.on('checkExpectation', (_request, response) => {
    const { head, body } = rawError(417, 'MR_ERR_BAD_REQUEST', 'only "Expect: 100-continue" is supported');
    response.writeHead(417, head).end(body);
  });
  app.server.on('connect', (_request, socket: Socket) => {
    const { head, body } = rawError(
      405,
      'MR_ERR_METHOD_NOT_ALLOWED',
      'CONNECT is not supported: this is not a proxy',
    );
    writeRaw(socket, 405, head, body);
  });

  await app.register(rateLimit, { global: false });
  registerJsonBodyParser(app);

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (inflight.closing) throw new ShuttingDownError('not accepting new requests');
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      throw new ApiError('MR_ERR_BAD_REQUEST', 'an HTTP/1.1 request needs a Host header');
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unknown';
    telemetry.requests.inc({ route, status: String(reply.statusCode) });
  });

  app.setErrorHandler((error, request, reply) => {
    const { status, headers, body, internal } = toHttpError(error, request.id);
    const code = body.error.code;
    if (internal) request.log.error({ err: error }, 'request failed');
    else if (status >= 500) request.log.warn({ code, detail: detailOf(error) }, body.error.message);
    else request.log.info({ code }, body.error.message);
    return reply.status(status).headers(headers).send(body);
  });

  app.setNotFoundHandler((request, reply) => {
    const { status, headers, body } = toHttpError(
      new ApiError(
        'MR_ERR_NOT_FOUND',
        `no route ${request.method} ${boundedMessage(request.url.slice(0, 200))}`,
      ),
    );
    return reply.status(status).headers(headers).send(body);
  });

  await app.register(servicesPlugin, { services, inflight });
  await app.register(healthRoutes);

  const access: AccessOptions = {
    tokens: secrets.auth_tokens.map((t) => t.reveal()),
    rateLimit: config.server.rate_limit,
  };
  await app.register(async (api) => {
    guard(api, 'api', access);
    await api.register(modelRoutes);
    await api.register(routeDecisionRoutes);
    await api.register(feedbackRoutes);
    await api.register(chatRoutes);
  });
  await app.register(async (admin) => {
    guard(admin, 'admin', access);
    await admin.register(adminRoutes);
  });
  return { app, inflight };
}

/** What an upstream said, for the log line of a request that failed on it. */
function detailOf(error: unknown): string | undefined {
  const detail = (error as { detail?: unknown } | null)?.detail;
  return typeof detail === 'string' ? detail : undefined;
}

/** An OpenAI-shaped error answer for writing below fastify: its headers and JSON body. */
function rawError(
  status: number,
  code: ErrorCode,
  message: string,
): { head: Record<string, string>; body: string } {
  const type = status >= 500 ? 'server_error' : 'invalid_request_error';
  const body = JSON.stringify({ error: { message, type, code, param: null } });
  return {
    head: {
      'Content-Type': 'application/json',
      'Content-Length': String(Buffer.byteLength(body)),
      'x-should-retry': 'false',
      Connection: 'close',
    },
    body,
  };
}

function writeRaw(socket: Socket, status: number, head: Record<string, string>, body: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const lines = Object.entries(head).map(([name, value]) => `${name}: ${value}\r\n`);
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${lines.join('')}\r\n${body}`);
}

function writeClientError(error: Error & { code?: string }, socket: Socket): void {
  const status =
    error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const { head, body } = rawError(
    status,
    status === 431 ? 'MR_ERR_HEADERS_TOO_LARGE' : 'MR_ERR_BAD_REQUEST',
    status === 431
      ? 'request headers too large'
      : status === 408
        ? 'the request did not arrive in time (server.receive_timeout_ms)'
        : 'malformed HTTP request',
  );
  writeRaw(socket, status, head, body);
}
