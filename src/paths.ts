import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository (or installed package) root: everything shipped with mechroute is found from here.
 * Found by walking up, so the same code works compiled (dist/src/) and run from source (src/).
 */
export const packageRoot = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

function findPackageRoot(from: string): string {
  let dir = from;
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${from}`);
    dir = parent;
  }
  return dir;
}

/**
 * Where downloaded weights live. Never inside the checkout: `$MECHROUTE_HOME`, else the XDG cache dir.
 */
export function mechrouteHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MECHROUTE_HOME) return resolve(env.MECHROUTE_HOME);
  const cacheRoot = env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(homedir(), '.cache');
  return join(cacheRoot, 'mechroute');
}

export const modelsCacheDir = (env: NodeJS.ProcessEnv = process.env): string =>
  join(mechrouteHome(env), 'models');
export const manifestsDir = join(packageRoot, 'models');
