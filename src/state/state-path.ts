import { dirname, join, resolve } from 'node:path';
import type { LoadedConfig } from '../config/config-loader.js';
import { mechrouteHome } from '../paths.js';

/** The config's state file: `state.path` relative to the config file, else `$MECHROUTE_HOME/state.sqlite`. */
export function stateFilePath(
  config: Pick<LoadedConfig, 'file' | 'state'>,
  env: NodeJS.ProcessEnv = process.env,
): string {
  return config.state.path === undefined
    ? join(mechrouteHome(env), 'state.sqlite')
    : resolve(dirname(config.file), config.state.path);
}
