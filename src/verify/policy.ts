// Builds the reloadable part of the sidecar from a validated config: routes, rules, policies, and
// the token provider for its idps.yaml.
import type { GoldpathConfig, Settings } from '../config/types.ts';
import type { Logger } from '../log.ts';
import type { TokenProvider } from '../oidc/types.ts';
import { Pdp } from '../pdp/index.ts';
import { RouteTable } from './route-table.ts';
import type { VerifyPolicy } from './state.ts';

/** Versions built so far in this process (VerifyPolicy.version). */
let built = 0;

/** `readFile`: how the policies are read (a reload's: the texts its trial read, policy-trial.ts). */
export async function buildVerifyPolicy(
  config: GoldpathConfig, settings: Settings, log: Logger, tokens: TokenProvider, readFile?: (path: string) => Promise<string>,
): Promise<VerifyPolicy> {
  const pdp = await Pdp.load(config.pdp, { log, readFile });
  return Object.freeze({
    version: ++built,
    tokens,
    routes: config.routes,
    table: new RouteTable(config.routes.routes),
    pdp,
    allowedOrigins: new Set([settings.publicOrigin, ...config.routes.cors.allowedOrigins]),
    idps: new Map(Object.entries(config.idps.idps).map(([name, idp]) => [name, idp.issuer])),
  });
}
