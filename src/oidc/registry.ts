// Every IdP of idps.yaml as an IdpClient, by name. Several IdPs may be active at once (?idp=).
import type { IdpsConfig } from '../config/types.ts';
import { ConfigError } from '../errors.ts';
import { sameIssuer } from '../config/idps.ts';
import { IdpClient, type IdpClientOptions } from './idp-client.ts';
import { errorSummary } from './idp-errors.ts';

export class IdpRegistry {
  readonly #clients: ReadonlyMap<string, IdpClient>;
  readonly defaultName: string;

  /**
   * `previous`: the registry this one replaces (a reload). What its clients discovered of an issuer
   * is what this one's clients of that issuer start on, with no request to the IdP (IdpClient).
   */
  constructor(config: IdpsConfig, opts: IdpClientOptions, previous?: IdpRegistry) {
    const known = previous === undefined ? undefined : previous.#discovered();
    this.#clients = new Map(Object.values(config.idps).map((idp) => (
      [idp.name, new IdpClient(idp, { ...opts, previousMetadata: known?.get(idp.issuer) })])));
    this.defaultName = config.default;
    if (!this.#clients.has(config.default)) throw new Error(`idps.yaml: default IdP "${config.default}" is not defined`);
  }

  /**
   * The registry a reload (SIGHUP, BFF and sidecar alike) swaps in for `previous`. An issuer that
   * `previous` did not have (an IdP added, or given another issuer) is discovered now, each within
   * the client's request timeout: one that cannot be rejects the reload (ConfigError), and the old
   * configuration keeps serving, rather than a new one whose sign-ins all fail. The issuers it had
   * are not asked anything, reachable or not: an IdP that is away must not block a policy change.
   */
  static async replacing(previous: IdpRegistry, config: IdpsConfig, opts: IdpClientOptions): Promise<IdpRegistry> {
    const next = new IdpRegistry(config, opts, previous);
    const issuers = new Set(previous.all().map((c) => c.idp.issuer));
    const added = next.all().filter((c) => !issuers.has(c.idp.issuer));
    const results = await Promise.allSettled(added.map((c) => c.configuration()));
    const problems = added.flatMap((c, i) => {
      const r = results[i]!;
      if (r.status === 'fulfilled') return [];
      // The cause as errorSummary words it (no response body, no secret), not the message alone:
      // Unavailable's "cannot be reached" would not say whether it was refused, timed out or a 404.
      const err = r.reason as Error;
      const why = Object.values(errorSummary(err.cause ?? err)).filter((v) => v !== undefined).join(': ');
      return [{ file: 'idps.yaml', key: `idps.${c.name}.issuer`, message: `${c.idp.issuer} cannot be discovered (${why}): a reload needs the metadata of an issuer it adds` }];
    });
    if (problems.length > 0) throw new ConfigError(problems);
    return next;
  }

  /** The metadata discovered so far (or handed on by a reload), by issuer. */
  #discovered(): Map<string, NonNullable<IdpClient['metadata']>> {
    const out = new Map<string, NonNullable<IdpClient['metadata']>>();
    for (const c of this.all()) {
      const meta = c.metadata;
      if (meta !== undefined) out.set(c.idp.issuer, meta);
    }
    return out;
  }

  /** The named IdP; undefined for a name idps.yaml does not define. */
  get(name: string): IdpClient | undefined {
    return this.#clients.get(name);
  }

  get default(): IdpClient {
    return this.#clients.get(this.defaultName)!;
  }

  all(): IdpClient[] {
    return [...this.#clients.values()];
  }

  /** The IdP whose issuer is `iss` (back-channel logout tokens name their issuer). */
  byIssuer(iss: string): IdpClient[] {
    return this.all().filter((c) => sameIssuer(c.idp.issuer, iss));
  }

  /** Loads every IdP's metadata; rejects with the first failure. */
  async loadAll(): Promise<void> {
    await Promise.all(this.all().map((c) => c.configuration()));
  }
}
