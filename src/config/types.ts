// Every configuration type in one place. Loaders produce these, validated and deep-frozen;
// nothing downstream re-checks them.

/** Process settings from the environment (SPEC section 2). */
export interface Settings {
  /** Folder holding routes.yaml, pdp.yaml, idps.yaml (absolute). */
  readonly configDir: string;
  /** redis://, rediss://, redis(s)+sentinel://, redis(s)+cluster:// or memory:// */
  readonly redisUrl: string;
  /** REDIS_TLS_CA_FILE's PEM certificates: trusted for rediss* instead of Node's CAs; undefined = Node's. */
  readonly redisTlsCa?: string;
  /** The origin the browser sees, e.g. https://app.example.com (no trailing slash, no path). */
  readonly publicOrigin: string;
  /** true when publicOrigin is https: cookies are Secure and named __Host-goldpath. */
  readonly secureCookies: boolean;
  /** `__Host-goldpath` (https) or `goldpath` (plain-http localhost). */
  readonly cookieName: string;
  /** GOLDPATH_SESSION_KEYS decoded: the first encrypts, all decrypt. Each 32 bytes. */
  readonly sessionKeys: readonly Uint8Array[];
  readonly sessionIdleMs: number;
  readonly sessionMaxMs: number;
  /**
   * GOLDPATH_MAX_LOGINS_PER_MINUTE: sign-ins that may start per minute, all BFF processes together.
   * Each start stores a login transaction for 10 minutes, and anyone may start one: this bounds
   * what anonymous clients can make Redis hold (at most ten minutes' worth).
   */
  readonly loginsPerMinute: number;
  readonly port: number | undefined;
  readonly host: string;
  readonly logLevel: string;
}

export type AuthMode = 'session' | 'public';

export interface RouteConfig {
  readonly name: string;
  /** Canonical path prefix without trailing slash, e.g. /api/orders. Matches on segment boundary. */
  readonly prefix: string;
  /** Key of the IdP's `audiences`; undefined = the token from login. */
  readonly audience: string | undefined;
  readonly auth: AuthMode;
}

export interface RoutesConfig {
  readonly routes: readonly RouteConfig[];
  readonly cors: { readonly allowedOrigins: readonly string[] };
}

export interface PdpRule {
  /** Upper-case methods, or '*' for any. */
  readonly methods: readonly string[] | '*';
  /** The path pattern as written, e.g. /api/orders/:id (for messages and metrics). */
  readonly pattern: string;
  /** Pattern split on '/', without the leading empty segment. ':name' captures one segment; a final '*' captures the rest. */
  readonly segments: readonly string[];
  readonly action: string;
  /**
   * The action as a message may quote it: the text written in pdp.yaml (`${NAME}`) when the value
   * comes from the environment (Cursor.show); absent when that is the value itself.
   */
  readonly actionShown?: string;
  readonly resource: {
    readonly type: string;
    /** Template for the resource id: a literal, or ':param'. undefined = no id. */
    readonly id: string | undefined;
  };
  /** Where the rule was written, for logs. */
  readonly line: number | undefined;
}

export interface PdpConfig {
  /** Absolute paths of the Polar files, in load order. */
  readonly policies: readonly string[];
  readonly rules: readonly PdpRule[];
}

export type ClientAuth = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'tls_client_auth';

export interface AudienceConfig {
  /** RFC 8707 resource indicator. */
  readonly resource: string;
  readonly scopes: readonly string[];
}

export interface IdpConfig {
  /** The key under `idps:`. */
  readonly name: string;
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string | undefined;
  readonly clientAuth: ClientAuth;
  /** Absolute path of the private JWK (private_key_jwt). */
  readonly privateKey: string | undefined;
  /** Absolute paths (tls_client_auth). */
  readonly mtls: { readonly cert: string; readonly key: string; readonly ca: string | undefined } | undefined;
  readonly scopes: readonly string[];
  readonly par: 'auto' | 'always' | 'never';
  readonly dpop: boolean;
  readonly audiences: Readonly<Record<string, AudienceConfig>>;
  /** Dotted paths into the merged ID token + userinfo claims. */
  readonly claims: { readonly roles: string; readonly groups: string };
  /**
   * Plain-http issuer allowed. Only set by the explicit, alarmingly named YAML key
   * `dangerously_allow_insecure_http: true`; logged loudly at startup.
   */
  readonly dangerouslyAllowInsecureHttp: boolean;
  /**
   * The Polar actor's `email` is the `email` claim even without `email_verified: true`. Only set by
   * the explicit, alarmingly named YAML key `dangerously_trust_unverified_email: true`, for an IdP
   * that never hands out an address its user does not own but does not say so (Entra ID sends no
   * `email_verified`); logged loudly at startup.
   */
  readonly dangerouslyTrustUnverifiedEmail: boolean;
}

export interface IdpsConfig {
  readonly default: string;
  readonly idps: Readonly<Record<string, IdpConfig>>;
}

/** The three YAML files, validated together (cross-file references checked). */
export interface GoldpathConfig {
  readonly routes: RoutesConfig;
  readonly pdp: PdpConfig;
  readonly idps: IdpsConfig;
}
