import { dirname, join, resolve } from 'node:path';
import { mechrouteHome } from '../paths.js';

/** The config's state file: `state.path` relative to the config file, else `$MECHROUTE_HOME/state.sqlite`. */
export function stateFilePath(
  config: { file: string; state: { path?: string | undefined } },
  env: NodeJS.ProcessEnv = process.env,
): string {
  return config.state.path === undefined
    ? join(mechrouteHome(env), 'state.sqlite')
    : resolve(dirname(config.file), config.state.path);
}
