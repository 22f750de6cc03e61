import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FileUnreadableError, InvalidFileError } from './errors.js';

/** A JSON file's value (probe bundles, baseline models): unreadable or malformed files name the file. */
export async function readJsonFile(file: string, what: string): Promise<unknown> {
  const text = await readFile(file, 'utf8').catch((error: unknown) => {
    throw new FileUnreadableError(file, error);
  });
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InvalidFileError(what, file, `  - not JSON: ${(error as Error).message}`);
  }
}

/**
 * Writes a file atomically: to a temporary file beside it, flushed, then renamed over the target, so a
 * process reloading the file (the router watching its bundle) sees the old content or the new, never half.
 */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  const handle = await open(temporary, 'w');
  try {
    await handle.writeFile(text, 'utf8');
    await handle.datasync();
    await handle.close();
    await rename(temporary, file);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temporary, { force: true });
    throw error;
  }
}
