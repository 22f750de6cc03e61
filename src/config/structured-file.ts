import { open } from 'node:fs/promises';
import { extname } from 'node:path';
import { parseDocument } from 'yaml';
import { FileChangedWhileReadingError, FileUnreadableError, InvalidFileError } from '../errors.js';

export type StructuredFormat = 'yaml' | 'json';

/**
 * `.json` is JSON and `.yaml`/`.yml` YAML; any other name is JSON when it starts like JSON, YAML
 * otherwise. YAML would read JSON too, but JSON.parse reports JSON mistakes in JSON's own terms.
 */
export function formatOf(file: string, text: string): StructuredFormat {
  const ext = extname(file).toLowerCase();
  if (ext === '.json') return 'json';
  if (ext === '.yaml' || ext === '.yml') return 'yaml';
  return /^\s*[{[]/.test(text) ? 'json' : 'yaml';
}

/** Parses a config or policy file's text; syntax errors become `InvalidFileError` with line numbers. */
export function parseStructuredText(text: string, file: string, what: string): unknown {
  const body = text.replace(/^\uFEFF/, '');
  if (body.trim() === '') throw new InvalidFileError(what, file, '  - (root): the file is empty');
  if (formatOf(file, body) === 'json') {
    try {
      return JSON.parse(body);
    } catch (error) {
      throw new InvalidFileError(what, file, `  - not valid JSON: ${(error as Error).message}`);
    }
  }
  // One document only, unique keys (the yaml package's default): a repeated key in a config is a mistake.
  const doc = parseDocument(body, { prettyErrors: true });
  if (doc.errors.length > 0) {
    // The first line of each message carries "at line L, column C"; the rest is a source excerpt.
    const details = doc.errors.map(
      (e) => `  - not valid YAML: ${e.message.split('\n')[0]!.replace(/:$/, '')}`,
    );
    throw new InvalidFileError(what, file, details.join('\n'));
  }
  return doc.toJS();
}

export async function readStructuredFile(file: string, what: string): Promise<unknown> {
  return parseStructuredText(await readWhole(file), file, what);
}

/**
 * The file's text, refused when it changed while being read: a file still being written (not replaced
 * atomically) must not be taken for the whole file.
 */
async function readWhole(file: string): Promise<string> {
  const handle = await open(file, 'r').catch((error: unknown) => {
    throw new FileUnreadableError(file, error);
  });
  try {
    const before = await handle.stat({ bigint: true });
    const bytes = await handle.readFile();
    const after = await handle.stat({ bigint: true });
    if (
      before.mtimeNs !== after.mtimeNs ||
      before.size !== after.size ||
      BigInt(bytes.length) !== after.size
    ) {
      throw new FileChangedWhileReadingError(file);
    }
    return bytes.toString('utf8');
  } catch (error) {
    if (error instanceof FileChangedWhileReadingError) throw error;
    throw new FileUnreadableError(file, error);
  } finally {
    await handle.close();
  }
}
