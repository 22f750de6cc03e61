import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { z } from 'zod';
import { FileUnreadableError, InvalidFileError } from '../errors.js';
import { formatIssuesInline } from '../zod-issues.js';
import { type Trace, TraceSchema } from './trace-schema.js';

/** One line that did not become a record, and why. Line numbers are 1-based, as editors show them. */
export interface JsonlLineError {
  line: number;
  /** The record's id when the line parsed far enough to have one. */
  id?: string;
  reason: string;
}

export interface JsonlReadResult<T> {
  /** Every valid record, in file order. */
  records: T[];
  /** Every bad line, in file order: nothing is dropped without an entry here. */
  errors: JsonlLineError[];
  /** Physical lines read, blank ones included. */
  lines: number;
}

export interface JsonlReadOptions<T> {
  /** A key that must be unique; a repeated key makes the later line an error (the first record is kept). */
  key?: (record: T) => string;
  /** Throw `InvalidFileError` when any line is bad, instead of returning the errors. */
  throwOnError?: boolean;
  /** How many errors the thrown message lists (default 20); the rest are counted. */
  maxErrorsInMessage?: number;
  /** What the file holds, for the error message (default "JSONL file"). */
  what?: string;
}

function idOf(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const id = (value as Record<string, unknown>).id;
  return typeof id === 'string' ? id : undefined;
}

/**
 * Streams a JSONL file line by line and validates every line with `schema`. Files are read with readline
 * rather than in one piece so that trace files larger than memory-friendly strings still load, and so a
 * line number is at hand for every error.
 */
export async function readJsonl<S extends z.ZodType>(
  file: string,
  schema: S,
  options: JsonlReadOptions<z.output<S>> = {},
): Promise<JsonlReadResult<z.output<S>>> {
  const records: z.output<S>[] = [];
  const errors: JsonlLineError[] = [];
  const firstLineOfKey = new Map<string, number>();
  let lines = 0;

  // Opened first so a missing file or a directory fails here with a clear error, not mid-iteration.
  const handle = await open(file, 'r').catch((error: unknown) => {
    throw new FileUnreadableError(file, error);
  });
  const input = handle.createReadStream({ encoding: 'utf8' });
  const reader = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  try {
    for await (const raw of reader) {
      lines += 1;
      // A UTF-8 byte-order mark is an editor artefact, not part of the first record.
      const text = lines === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (text.trim() === '') continue;

      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        errors.push({ line: lines, reason: `invalid JSON: ${(error as Error).message}` });
        continue;
      }
      const id = idOf(value);
      const parsed = schema.safeParse(value);
      if (!parsed.success) {
        errors.push({
          line: lines,
          ...(id === undefined ? {} : { id }),
          reason: formatIssuesInline(parsed.error),
        });
        continue;
      }
      if (options.key) {
        const key = options.key(parsed.data);
        const first = firstLineOfKey.get(key);
        if (first !== undefined) {
          errors.push({ line: lines, id: key, reason: `duplicate id "${key}" (first on line ${first})` });
          continue;
        }
        firstLineOfKey.set(key, lines);
      }
      records.push(parsed.data);
    }
  } catch (error) {
    throw new FileUnreadableError(file, error);
  } finally {
    reader.close();
    await handle.close();
  }

  if (options.throwOnError && errors.length > 0) {
    throw new InvalidFileError(
      options.what ?? 'JSONL file',
      file,
      describeLineErrors(errors, options.maxErrorsInMessage ?? 20),
    );
  }
  return { records, errors, lines };
}

/** The first `max` errors, one per line, and a count of the rest. */
export function describeLineErrors(errors: readonly JsonlLineError[], max = 20): string {
  const shown = errors
    .slice(0, max)
    .map((e) => `  line ${e.line}${e.id === undefined ? '' : ` (id ${e.id})`}: ${e.reason}`);
  const rest = errors.length - shown.length;
  if (rest > 0) shown.push(`  … and ${rest} more bad line${rest === 1 ? '' : 's'}`);
  return shown.join('\n');
}

export interface TraceReadResult {
  traces: Trace[];
  errors: JsonlLineError[];
  lines: number;
}

export type TraceReadOptions = Omit<JsonlReadOptions<Trace>, 'key' | 'what'>;

/** Reads a trace file; ids must be unique within it. */
export async function readTraces(file: string, options: TraceReadOptions = {}): Promise<TraceReadResult> {
  const { records, errors, lines } = await readJsonl(file, TraceSchema, {
    ...options,
    key: (trace) => trace.id,
    what: 'trace file',
  });
  return { traces: records, errors, lines };
}

/**
 * Appends records to a JSONL file, one `write` per record on a file opened with O_APPEND. Each record is
 * therefore one whole line even when a run is killed between records or several processes append at once,
 * which is what lets `label` and `extract` resume by re-reading the file.
 */
export class JsonlAppender<S extends z.ZodType> {
  #handle: FileHandle | undefined;
  readonly #schema: S;
  readonly file: string;

  private constructor(file: string, schema: S, handle: FileHandle) {
    this.file = file;
    this.#schema = schema;
    this.#handle = handle;
  }

  static async open<S extends z.ZodType>(file: string, schema: S): Promise<JsonlAppender<S>> {
    const handle = await open(file, 'a+');
    try {
      // A run killed mid-write can leave a last line without its newline; start on a fresh line so the
      // next record stays whole (the torn line is then reported by the reader, not glued to a good one).
      const { size } = await handle.stat();
      if (size > 0) {
        const last = Buffer.alloc(1);
        await handle.read(last, 0, 1, size - 1);
        if (last[0] !== 0x0a) await handle.write('\n');
      }
    } catch (error) {
      await handle.close();
      throw error;
    }
    return new JsonlAppender(file, schema, handle);
  }

  /** Validates and appends one record; invalid records are refused rather than written. */
  async append(record: z.input<S>): Promise<void> {
    const handle = this.#handle;
    if (!handle) throw new Error(`the appender for ${this.file} is closed`);
    const parsed = this.#schema.safeParse(record);
    if (!parsed.success) {
      throw new InvalidFileError('record for', this.file, formatIssuesInline(parsed.error));
    }
    const bytes = Buffer.from(`${JSON.stringify(parsed.data)}\n`, 'utf8');
    let offset = 0;
    // A regular file takes the whole buffer in one write; the loop only guards against a short write.
    while (offset < bytes.length) {
      const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
      offset += bytesWritten;
    }
  }

  /** Flushes written records to disk (for callers that rename the file afterwards). */
  async sync(): Promise<void> {
    await this.#handle?.datasync();
  }

  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close();
  }
}

/** Opens a trace file for appending (it is created if missing). */
export function openTraceAppender(file: string): Promise<JsonlAppender<typeof TraceSchema>> {
  return JsonlAppender.open(file, TraceSchema);
}

/**
 * Writes a whole trace file at once: to a temporary file beside it, then renamed over it, so readers see
 * either the old file or the new one, never half of it.
 */
export async function writeTraces(file: string, traces: readonly Trace[]): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await rm(temporary, { force: true }); // a stale one from a killed run would otherwise be appended to
  const appender = await JsonlAppender.open(temporary, TraceSchema);
  try {
    for (const trace of traces) await appender.append(trace);
    // Without the flush a crash right after the rename could leave the new name on an empty file.
    await appender.sync();
    await appender.close();
    await rename(temporary, file);
  } catch (error) {
    await appender.close();
    await rm(temporary, { force: true });
    throw error;
  }
}
