// In-memory storage for the dev IdP, one per IdP instance. oidc-provider's bundled memory adapter
// shares a process-wide 1000-entry LRU between every provider (tests start many) and warns on
// every start; this one is private, unbounded in count but expires every entry.

interface Entry {
  payload: Record<string, unknown>;
  /** ms since epoch; Infinity = no expiry. */
  expiresAt: number;
}

const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest', 'PreAuthorizedCode']);

export function createDevIdpAdapter(): (model: string) => object {
  const entries = new Map<string, Entry>();
  const byUid = new Map<string, string>();
  const byUserCode = new Map<string, string>();
  const byGrant = new Map<string, Set<string>>();
  const live = (key: string): Entry | undefined => {
    const e = entries.get(key);
    if (e && e.expiresAt <= Date.now()) {
      entries.delete(key);
      return undefined;
    }
    return e;
  };
  // Expired entries are dropped on read, and swept now and then so a long-running IdP stays small.
  let writes = 0;
  const sweep = () => {
    const now = Date.now();
    for (const [k, e] of entries) if (e.expiresAt <= now) entries.delete(k);
  };

  return (model: string) => {
    const key = (id: string) => `${model}:${id}`;
    return {
      async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number) {
        if (++writes % 1000 === 0) sweep();
        const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
        entries.set(key(id), { payload, expiresAt });
        if (model === 'Session' && typeof payload['uid'] === 'string') byUid.set(payload['uid'], id);
        if (typeof payload['userCode'] === 'string') byUserCode.set(payload['userCode'], id);
        const grantId = payload['grantId'];
        if (GRANTABLE.has(model) && typeof grantId === 'string') {
          const set = byGrant.get(grantId) ?? new Set<string>();
          set.add(key(id));
          byGrant.set(grantId, set);
        }
      },
      async find(id: string) {
        return live(key(id))?.payload;
      },
      async findByUid(uid: string) {
        const id = byUid.get(uid);
        return id === undefined ? undefined : live(key(id))?.payload;
      },
      async findByUserCode(userCode: string) {
        const id = byUserCode.get(userCode);
        return id === undefined ? undefined : live(key(id))?.payload;
      },
      async consume(id: string) {
        const e = live(key(id));
        if (e) e.payload['consumed'] = Math.floor(Date.now() / 1000);
      },
      async destroy(id: string) {
        entries.delete(key(id));
      },
      async revokeByGrantId(grantId: string) {
        for (const k of byGrant.get(grantId) ?? []) entries.delete(k);
        byGrant.delete(grantId);
      },
    };
  };
}
