import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors.js';

/**
 * The JSON body parser: fastify's own (prototype-poisoning safe), behind a nesting limit. A deeply
 * nested value is cheap to send and expensive everywhere after — a 12 KB body of 6,000 nested arrays
 * made `JSON.stringify` overflow the stack in a provider — so it is refused here, before anything
 * parses, validates or forwards it.
 */
export const MAX_JSON_DEPTH = 64;

/** The deepest nesting of arrays and objects in JSON text (strings skipped), stopping past `limit`. */
export function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i += 1; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth += 1;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 0x5d || c === 0x7d) depth -= 1;
  }
  return deepest;
}

export function registerJsonBodyParser(app: FastifyInstance, maxDepth = MAX_JSON_DEPTH): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    if (jsonDepth(text, maxDepth) > maxDepth) {
      done(
        new ApiError('MR_ERR_BAD_REQUEST', `the JSON body is nested deeper than ${maxDepth} levels`),
        undefined,
      );
      return;
    }
    parse(request, text, done);
  });
}
