/** A variable's value, trimmed; one holding only spaces is unset. */
export const envValue = (env: NodeJS.ProcessEnv, name: string): string | undefined => {
  const value = env[name]?.trim();
  return value ? value : undefined;
};

/**
 * What one remote deployment has in this environment: its base URL (the config's, or its variable's)
 * and its key, and the variables it still lacks. Values are trimmed: a variable holding only spaces is
 * unset. The one reading of deployment credentials — the tier pool and `config check` both use it.
 */
export function deploymentEnv(
  d: { base_url?: string | undefined; base_url_env?: string | undefined; api_key_env?: string | undefined },
  env: NodeJS.ProcessEnv,
): { baseUrl: string | undefined; apiKey: string | undefined; missing: string[] } {
  const baseUrl = d.base_url ?? (d.base_url_env ? envValue(env, d.base_url_env) : undefined);
  const apiKey = d.api_key_env ? envValue(env, d.api_key_env) : undefined;
  const missing = [
    ...(baseUrl === undefined ? [d.base_url_env ?? 'base_url'] : []),
    ...(d.api_key_env && apiKey === undefined ? [d.api_key_env] : []),
  ];
  return { baseUrl, apiKey, missing };
}
