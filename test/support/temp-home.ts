import { mkdir, mkdtemp, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { modelsCacheDir } from '../../src/paths.js';

/**
 * A temporary directory with a fresh `MECHROUTE_HOME` inside it (its own activation stores) whose
 * `models/` links to the shared weights cache, so tests that extract never copy or download a model.
 */
export async function tempHome(prefix: string): Promise<{ dir: string; env: NodeJS.ProcessEnv }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const home = join(dir, 'home');
  await mkdir(home);
  await symlink(modelsCacheDir(), join(home, 'models'));
  return { dir, env: { ...process.env, MECHROUTE_HOME: home } };
}
