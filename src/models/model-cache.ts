import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { ModelManifest } from './manifest.js';

/** What sits at a model's final path right now (size only: hashing 250 MB on every `list` is too slow). */
export interface CachedState {
  path: string;
  /** True when a file with exactly the manifest's size is present. */
  cached: boolean;
  /** Size of whatever file is there, if any. */
  bytes: number | undefined;
}

export async function cachedState(manifest: Pick<ModelManifest, 'size'>, path: string): Promise<CachedState> {
  const info = await stat(path).catch(() => undefined);
  const bytes = info?.isFile() ? info.size : undefined;
  return { path, cached: bytes === manifest.size, bytes };
}

export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20, signal })) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

export type TempKind = 'partial' | 'wheel' | 'hf';

/**
 * A sibling of `finalPath` that only this process writes. Same directory, so the last step can be an
 * atomic rename; the pid in the name lets a later pull tell a crashed download from a running one.
 */
export function tempPathFor(finalPath: string, kind: TempKind): string {
  return `${finalPath}.${kind}-${process.pid}-${randomBytes(6).toString('hex')}`;
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else, so it may well be downloading.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temp files a killed pull left next to `finalPath`. Temps of live processes stay: another
 * `pull` of the same model may be running right now. Returns the removed paths.
 */
export async function removeStrayTemps(finalPath: string): Promise<string[]> {
  const dir = dirname(finalPath);
  const pattern = new RegExp(`^${escapeRegExp(basename(finalPath))}\\.(?:partial|wheel|hf)-(\\d+)-[0-9a-f]+`);
  const entries = await readdir(dir).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const entry of entries) {
    const pid = Number(pattern.exec(entry)?.[1]);
    if (!pid || pid === process.pid || isAlive(pid)) continue;
    const path = join(dir, entry);
    await rm(path, { recursive: true, force: true });
    removed.push(path);
  }
  return removed;
}
