// The session store's keys (store.ts, session-load.ts, kv-primitives.ts): no other key is used.
//
// Layout (Redis keys; braces are Cluster hash tags). Every operation touches exactly one key (Lua
// scripts included), so no operation can span two slots; the tags keep each key's slot stable:
//   gp:s:{<id>}                 hash: sub idp sid createdAt expiresAt lastSeen version d end
//                               end = expiresAt on Redis's clock (TIME): touches never pass it
//                               d = AEAD(SessionSecrets JSON, aad = id): user, csrf and all tokens
//   gp:sid:{<idp>:<sid>}        set of ids   } TTL >= the longest absolute expiry of a member,
//   gp:sub:{<idp>:<sub>}        set of ids   } for back-channel logout
//   gp:lock:{<name>}            lock token (SET NX PX)
//   gp:t:<kind>:{<key>}         AEAD(transient value, aad = kind + key)
//   gp:once:<kind>:{<key>}      replay marker
//   gp:sid-ended:{<idp>:<sid>}      '1': a back-channel logout ended this sid         } TTL = the longest
//   gp:sub-ended:{<idp>:<sub>}      when a back-channel logout ended this sub (ms)     } absolute expiry or
//   gp:sidless-ended:{<idp>:<sub>}  when one by sid and sub ended the sub's sessions   } sign-in, if longer
//                                   stored without a sid (ms)
//   (the times above, and SignIn.startedAt, are read from the store's clock: clock())
//   gp:clock                        never written: routes Redis TIME to one server (redis-scripts.ts)
//   gp:browser:{<browser>}      id of the session the browser's last sign-in created
//   gp:tally:{<kind>:<window>}  count of events in a window (sign-ins started per minute)
// <id> is the storage id (SHA-256 of the cookie's random part): a dump holds no cookie and no token.
// Index components are percent-encoded so no idp/sid/sub can forge a separator or a hash tag.
import { percentEncode } from '../strings.ts';

/** Key text: percent-encoded, lone surrogates included (the BFF refuses such ids at sign-in). */
const enc = percentEncode;
export const keys = {
  session: (id: string) => `gp:s:{${id}}`,
  bySid: (idp: string, sid: string) => `gp:sid:{${enc(idp)}:${enc(sid)}}`,
  bySub: (idp: string, sub: string) => `gp:sub:{${enc(idp)}:${enc(sub)}}`,
  lock: (name: string) => `gp:lock:{${enc(name)}}`,
  transient: (kind: string, key: string) => `gp:t:${enc(kind)}:{${enc(key)}}`,
  once: (kind: string, key: string) => `gp:once:${enc(kind)}:{${enc(key)}}`,
  /** An IdP session (sid) a back-channel logout ended: no session may be created for it after. */
  sidEnded: (idp: string, sid: string) => `gp:sid-ended:{${enc(idp)}:${enc(sid)}}`,
  /** When a back-channel logout ended every session of a user: sign-ins begun before are refused. */
  subEnded: (idp: string, sub: string) => `gp:sub-ended:{${enc(idp)}:${enc(sub)}}`,
  /**
   * When a logout by sid and sub ended the user's sessions stored without a sid (deleteBySid):
   * such sign-ins begun before are refused, as we cannot tell which IdP session they belong to.
   */
  sidlessEnded: (idp: string, sub: string) => `gp:sidless-ended:{${enc(idp)}:${enc(sub)}}`,
  /** The session a browser's last sign-in created (SignIn.browser). */
  browser: (browser: string) => `gp:browser:{${enc(browser)}}`,
  /** Events of a kind in one window (tally). */
  tally: (kind: string, window: number) => `gp:tally:{${enc(kind)}:${window}}`,
};
