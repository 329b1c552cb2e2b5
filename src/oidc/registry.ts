// Every IdP of idps.yaml as an IdpClient, by name. Several IdPs may be active at once (?idp=).
import type { IdpsConfig } from '../config/types.ts';
import { sameIssuer } from '../config/idps.ts';
import { IdpClient, type IdpClientOptions } from './idp-client.ts';

export class IdpRegistry {
  readonly #clients: ReadonlyMap<string, IdpClient>;
  readonly defaultName: string;

  /** `previous`: the registry this one replaces (a reload): what its clients discovered is kept as a fallback. */
  constructor(config: IdpsConfig, opts: IdpClientOptions, previous?: IdpRegistry) {
    this.#clients = new Map(Object.values(config.idps).map((idp) => {
      const before = previous?.get(idp.name);
      const same = before !== undefined && before.idp.issuer === idp.issuer;
      return [idp.name, new IdpClient(idp, { ...opts, previousMetadata: same ? before.metadata : undefined })];
    }));
    this.defaultName = config.default;
    if (!this.#clients.has(config.default)) throw new Error(`idps.yaml: default IdP "${config.default}" is not defined`);
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
