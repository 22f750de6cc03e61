import { connect } from 'node:net';

/**
 * One HTTP/1.1 exchange over a raw socket: the request goes out byte for byte as written (an
 * absolute-form target, a broken chunk, a bare LF, invalid UTF-8 — what `fetch` would refuse to send),
 * and the answer is read with just enough parsing to know whether it is complete.
 */
export interface RawPart {
  bytes: Buffer;
  /** Pause before writing this part. */
  delayMs?: number;
}

export interface RawResult {
  /** 0 when no status line arrived. */
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** Milliseconds from the first byte written to the end of the answer (or of the wait). */
  ms: number;
  outcome:
    | 'answered'
    /** Closed by the server with no status line at all. */
    | 'closed-without-answer'
    /** A status line came but the connection closed before the body was complete. */
    | 'cut'
    /** Nothing complete by the time limit. */
    | 'timeout'
    | 'connect-error';
  /** With `answers` > 1: the statuses of the later answers that arrived complete. */
  more: number[];
}

export interface RawOptions {
  port: number;
  /** The source address, so requests can come from many loopback clients (127.x.y.z). */
  localAddress?: string;
  /** How long to wait for a complete answer. */
  timeoutMs: number;
  /** The request was HEAD: the answer has no body whatever its headers say. */
  head?: boolean;
  /**
   * Half-close the connection after the last part. Node's HTTP server takes a FIN as the client going
   * away (it aborts the request), so only the cases about that send one; the others wait with the write
   * side open, as browsers and SDKs do.
   */
  halfClose?: boolean;
  /** Answers to wait for (pipelined requests get one each); `more` holds those after the first. */
  answers?: number;
}

interface Parsed {
  status: number;
  headers: Record<string, string>;
  headerEnd: number;
}

function parseHead(data: Buffer): Parsed | undefined {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = data.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? Number.NaN);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) {
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
  }
  return { status: Number.isNaN(status) ? -1 : status, headers, headerEnd: end + 4 };
}

/** Decodes a chunked body and the bytes it took; undefined while incomplete. */
function dechunk(data: Buffer): { body: Buffer; consumed: number } | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  while (true) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) return undefined;
    const size = Number.parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size)) return { body: Buffer.concat(parts), consumed: data.length };
    if (size === 0) {
      const end = data.indexOf('\r\n', lineEnd + 2);
      return end >= 0 ? { body: Buffer.concat(parts), consumed: end + 2 } : undefined;
    }
    if (data.length < lineEnd + 2 + size + 2) return undefined;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}

/**
 * The first final answer in `data` (skipping 1xx interim answers), complete or not; `next` is where the
 * bytes after a complete answer start.
 */
function finalAnswer(
  data: Buffer,
  head: boolean,
): { parsed: Parsed; body: Buffer | undefined; rest: Buffer; next: number } | undefined {
  let rest = data;
  let offset = 0;
  while (true) {
    const parsed = parseHead(rest);
    if (!parsed) return undefined;
    const after = rest.subarray(parsed.headerEnd);
    const start = offset + parsed.headerEnd;
    if (parsed.status >= 100 && parsed.status < 200) {
      rest = after;
      offset = start;
      continue;
    }
    if (head || parsed.status === 204 || parsed.status === 304) {
      return { parsed, body: Buffer.alloc(0), rest, next: start };
    }
    if (/chunked/i.test(parsed.headers['transfer-encoding'] ?? '')) {
      const chunked = dechunk(after);
      return { parsed, body: chunked?.body, rest, next: start + (chunked?.consumed ?? 0) };
    }
    const length = parsed.headers['content-length'];
    if (length !== undefined) {
      const n = Number(length);
      return { parsed, body: after.length >= n ? after.subarray(0, n) : undefined, rest, next: start + n };
    }
    // Neither: the body runs to the end of the connection.
    return { parsed, body: undefined, rest, next: data.length };
  }
}

export function rawExchange(parts: readonly RawPart[], options: RawOptions): Promise<RawResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    let data = Buffer.alloc(0);
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const socket = connect({
      port: options.port,
      host: '127.0.0.1',
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    const more: number[] = [];
    const finish = (result: Omit<RawResult, 'ms' | 'more'>) => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      socket.destroy();
      resolve({ ...result, more, ms: Math.round(performance.now() - started) });
    };
    /** Statuses of the complete answers after the first. */
    const later = (from: number) => {
      more.length = 0;
      let rest = data.subarray(from);
      while (more.length < (options.answers ?? 1) - 1) {
        const answer = finalAnswer(rest, false);
        if (!answer || answer.body === undefined) break;
        more.push(answer.parsed.status);
        rest = rest.subarray(answer.next);
      }
    };
    const fromData = (ended: boolean): void => {
      const answer = finalAnswer(data, options.head === true);
      if (!answer) {
        if (ended) {
          finish({
            status: 0,
            headers: {},
            body: data,
            outcome: data.length === 0 ? 'closed-without-answer' : 'cut',
          });
        }
        return;
      }
      const { parsed, body } = answer;
      if (body !== undefined) {
        later(answer.next);
        if (more.length + 1 >= (options.answers ?? 1) || ended) {
          finish({ status: parsed.status, headers: parsed.headers, body, outcome: 'answered' });
        }
      } else if (ended) {
        const toEnd =
          parsed.headers['content-length'] === undefined &&
          !/chunked/i.test(parsed.headers['transfer-encoding'] ?? '');
        finish({
          status: parsed.status,
          headers: parsed.headers,
          body: answer.rest.subarray(parsed.headerEnd),
          outcome: toEnd ? 'answered' : 'cut',
        });
      }
    };
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      fromData(false);
    });
    socket.on('end', () => fromData(true));
    socket.on('close', () => fromData(true));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (data.length > 0) fromData(true);
      else if (error.code === 'ECONNREFUSED' || error.code === 'EADDRNOTAVAIL')
        finish({ status: 0, headers: {}, body: Buffer.alloc(0), outcome: 'connect-error' });
      else finish({ status: 0, headers: {}, body: data, outcome: 'closed-without-answer' });
    });
    timers.push(
      setTimeout(() => finish({ status: 0, headers: {}, body: data, outcome: 'timeout' }), options.timeoutMs),
    );
    socket.once('connect', () => {
      let at = 0;
      for (const part of parts) {
        at += part.delayMs ?? 0;
        const write = () => {
          if (!socket.destroyed) socket.write(part.bytes);
        };
        if (at === 0) write();
        else timers.push(setTimeout(write, at));
      }
      if (options.halfClose) timers.push(setTimeout(() => !socket.destroyed && socket.end(), at));
    });
  });
}
