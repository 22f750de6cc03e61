import { readFile, rm, writeFile } from 'node:fs/promises';
import { ActivationStoreLockedError } from '../errors.js';

/**
 * One writer per store: two `extract` runs appending to the same records.bin would interleave their
 * batches and each truncate the other's "torn" tail on open. The lock is a file holding the writer's
 * pid, created exclusively; a lock whose process is gone (killed, so it never removed it) is taken over,
 * which is what lets a killed extraction simply be run again.
 */
export class StoreLock {
  private constructor(readonly file: string) {}

  static async acquire(file: string): Promise<StoreLock> {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await writeFile(file, `${process.pid}\n`, { flag: 'wx' });
        return new StoreLock(file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) {
        throw new ActivationStoreLockedError(file, holder);
      }
      // Stale (or half-written by a writer killed between create and write): remove it and retry.
      await rm(file, { force: true });
    }
    throw new ActivationStoreLockedError(file, undefined);
  }

  async release(): Promise<void> {
    await rm(this.file, { force: true });
  }
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
