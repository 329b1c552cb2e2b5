// Where each IdP sends the browser back: the path of its redirect URI. The default IdP answers at
// /auth/callback (SPEC 6); every other IdP at /auth/callback/<name>.
//
// Why one per IdP: the mix-up defence (RFC 9700 4.4.2) for IdPs that do not name themselves in the
// response (RFC 9207 `iss`). With one redirect URI for all, an IdP under an attacker's control,
// picked by the victim, can send the victim on to an honest IdP carrying the attacker's own login
// request: the honest IdP's code comes back with the victim's state, goldpath redeems it at the
// attacker's token endpoint (where the victim's login went), and the attacker injects it into their
// own login. With a redirect URI per IdP, the honest IdP can only send the code to its own address,
// and a response that arrives at another IdP's address than its login's is refused before any
// code is redeemed (callback.ts). Each IdP must therefore have exactly its own registered there.

export const CALLBACK_PATH = '/auth/callback';

/** The redirect URI path of IdP `name` when `defaultName` is the default IdP of idps.yaml. */
export function callbackPath(name: string, defaultName: string): string {
  return name === defaultName ? CALLBACK_PATH : `${CALLBACK_PATH}/${name}`;
}
