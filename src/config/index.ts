// The configuration layer: process settings from the environment and the three YAML files.
export type * from './types.ts';
export { loadSettings, parseDuration, KEY_GENERATE_HINT, DEFAULT_CONFIG_DIR, DEFAULT_HOST } from './env.ts';
export { loadConfig, validateConfig, CONFIG_FILES } from './load.ts';
export { checkConfig, formatProblems } from './check.ts';
export { deepFreeze, sortProblems } from './problems.ts';
export { substitute, type Env } from './env-substitution.ts';
export { HTTP_METHODS } from './pdp.ts';
