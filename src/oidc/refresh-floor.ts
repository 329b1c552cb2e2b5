// The refresh floor: a token a refresh returned already due is served as it is for a while,
// instead of being refreshed again at every request, and the IdP that sends such tokens is said.
import { FloodGate } from '../http/flood-gate.ts';
import type { Logger } from '../log.ts';
import type { AccessToken, Session } from '../session/types.ts';
import { refreshWindow } from './tokens.ts';

/**
 * How long a token that a refresh here returned already due (within its refresh window by this
 * process's clock: expires_in 1 or 2 s, a JWT whose exp has passed because the IdP's clock is
 * behind ours by more than the token's life) is served as it is, before this process asks again
 * for that session and audience. Asked at every request, each grant answered alike, it was one
 * grant (one rotated refresh token, one IdP round trip) per API call for the life of the session.
 * 10 s: at most 6 grants a minute per session and process, whatever the request rate; short
 * enough that an IdP whose clock or lifetimes are mended is followed within seconds, and that a
 * 1-2 s token is replaced about as often as a 20 s one normally is (SPEC 5.6 refreshes 30 s
 * ahead). The upstream judges the token by its own clock, usually the IdP's, by which it is valid.
 */
export const REFRESH_FLOOR_MS = 10_000;
/** A token a refresh returns due within this is taken as arrived due (see arrivedDue). */
const ARRIVES_DUE_MS = 2_000;
/** The "tokens arrive already due" warning: one line per IdP per window, saying how many it stands for. */
const DUE_LOG_WINDOW_MS = 10 * 60_000;

export interface RefreshFloor {
  floored(id: string, audience: string, version: number): boolean;
  floorIfDue(refreshed: Session, audience: string, t: AccessToken, idpName: string, reqId: string | undefined): void;
}

/** A token provider's floors. `skew`: its refresh window (refreshSkewMs); `floorMs`: REFRESH_FLOOR_MS or its option. */
export function createRefreshFloor(skew: number, floorMs: number, log: Logger): RefreshFloor {
  /**
   * Session and audience pairs whose last refresh here returned a token already due (see
   * REFRESH_FLOOR_MS): the session's version that refresh wrote, and until when
   * (performance.now()) no refresh is sent from here. Bounded as `refused` (token-refresh.ts) is.
   * Empty unless an IdP answers so: the lookup then costs nothing.
   */
  const floors = new Map<string, { readonly version: number; readonly until: number }>();
  /** Per IdP name: its tokens arriving due are said once a window (DUE_LOG_WINDOW_MS). */
  const dueGates = new Map<string, FloodGate>();

  /**
   * Whether, within the floor (REFRESH_FLOOR_MS) of a refresh here that returned a token already
   * due, a session read since it was written (`version` no older) is served the token it holds as
   * it is: that token, or one another process's refresh has replaced it with since (refreshed
   * here again, the two would take turns, one grant a request). A copy read before that refresh
   * (an older version, with the token it replaced) is refreshed as before, which finds the new one.
   */
  function floored(id: string, audience: string, version: number): boolean {
    if (floors.size === 0) return false;
    const key = `${id}\n${audience}`;
    const f = floors.get(key);
    if (f === undefined) return false;
    if (f.until <= performance.now()) {
      floors.delete(key);
      return false;
    }
    return version >= f.version;
  }

  /**
   * Due (within its refresh window) now or within ARRIVES_DUE_MS: a 1 s token is due at once, a
   * 2 s one after 1 s (refreshWindow), each a grant a second. A 10 s token, fresh for 5 s, is not:
   * it is refreshed before it expires, as ever.
   */
  const arrivedDue = (t: AccessToken): boolean => t.expiresAt !== undefined && t.expiresAt - refreshWindow(t, skew) - Date.now() < ARRIVES_DUE_MS;

  /** After a refresh that returned `t`: a token that arrived due is floored (REFRESH_FLOOR_MS), and said. */
  function floorIfDue(refreshed: Session, audience: string, t: AccessToken, idpName: string, reqId: string | undefined): void {
    if (!arrivedDue(t) || floorMs <= 0) return;
    if (floors.size >= 10_000) floors.clear();
    floors.set(`${refreshed.id}\n${audience}`, { version: refreshed.version, until: performance.now() + floorMs });
    warnDue(t, idpName, audience, reqId);
  }

  /**
   * An IdP whose tokens arrive due is an operator's matter (its token lifetime, or a clock): said
   * once a window per IdP, with how far off, never the token. `idpClockMs`: when the token says
   * its time of issue (a JWT's iat), how far the IdP's clock is from ours (negative: behind).
   */
  function warnDue(t: AccessToken, idpName: string, audience: string, reqId: string | undefined): void {
    let gate = dueGates.get(idpName);
    if (gate === undefined) dueGates.set(idpName, (gate = new FloodGate(DUE_LOG_WINDOW_MS)));
    const held = gate.pass(performance.now());
    if (held === undefined) return;
    const now = Date.now();
    const expiresInMs = t.expiresAt === undefined ? undefined : Math.round(t.expiresAt - now);
    const idpClockMs = t.expiresAt === undefined || t.lifetimeMs === undefined ? undefined : Math.round(t.expiresAt - t.lifetimeMs - now);
    log.warn({ reqId, idp: idpName, audience: audience || '(login)', expiresInMs, lifetimeMs: t.lifetimeMs, idpClockMs, floorMs, ...(held > 0 ? { alsoDue: held } : {}) },
      'the IdP\'s tokens arrive already due by this process\'s clock: each is served as it is for the refresh floor instead of being refreshed at every request; ' +
      'check the IdP\'s access token lifetime and both clocks (NTP)');
  }

  return { floored, floorIfDue };
}
