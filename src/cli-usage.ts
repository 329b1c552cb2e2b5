// What `goldpath <command> --help` prints: what the command is, the environment it reads and where
// it listens. The processes take no arguments; everything comes from the environment (12-factor,
// the same in compose as on a laptop), so a mistyped option must not go unnoticed.

const ENV = {
  config: 'GOLDPATH_CONFIG_DIR        folder with routes.yaml, pdp.yaml, idps.yaml (default compose/config)',
  redis: 'REDIS_URL                  the session store: redis://, rediss://, redis+sentinel://, redis+cluster:// (rediss+…: TLS)\n' +
    '                             (default redis://127.0.0.1:6379)',
  redisCa: 'REDIS_TLS_CA_FILE          PEM CA certificate(s) the rediss* servers are checked against, instead of Node\'s CAs',
  publicUrl: 'GOLDPATH_PUBLIC_URL        the origin the browser sees; https, or http on localhost (default http://localhost:8080)',
  keys: 'GOLDPATH_SESSION_KEYS      comma-separated base64url 32-byte keys; the first encrypts, all decrypt (required)',
  lifetimes: 'GOLDPATH_SESSION_IDLE, _MAX idle and absolute session lifetime (default 30m, 12h)',
  logLevel: 'LOG_LEVEL                  fatal, error, warn, info, debug, trace or silent (default info)',
  issuer: 'GOLDPATH_IDP_ISSUER        the dev IdP\'s issuer',
  logins: 'GOLDPATH_MAX_LOGINS_PER_MINUTE sign-ins that may start per minute, all BFFs together (default 6000)',
  // The config files' ${NAME}s are read too: a missing one stops the process (naming file and key).
  named: '${NAME}                    each variable the config files name; the shipped idps.yaml names\n' +
    '                             GOLDPATH_IDP_ISSUER (default http://localhost:4000) and GOLDPATH_CLIENT_SECRET (required)',
};

const listen = (host: string, port: number) => `PORT, HOST                 where it listens (default ${host}:${port})`;

const COMMANDS: Record<string, { about: string; env: string[] }> = {
  verify: {
    about: 'The ForwardAuth sidecar: Traefik asks /auth/verify about every /api/** request; it answers 200\n' +
      'with the upstream\'s Authorization header, or 401/403. Also /healthz, /readyz, /metrics.\n' +
      'SIGHUP reloads the config files and policies.',
    env: [ENV.config, ENV.named, ENV.redis, ENV.redisCa, ENV.publicUrl, ENV.keys, ENV.lifetimes, listen('0.0.0.0', 3002), ENV.logLevel],
  },
  bff: {
    about: 'The OAuth/OIDC backend-for-frontend: /auth/login, /auth/callback, /auth/logout, /auth/session,\n' +
      '/auth/backchannel-logout. Also /healthz, /readyz, /metrics. SIGHUP reloads the config files.',
    env: [ENV.config, ENV.named, ENV.redis, ENV.redisCa, ENV.publicUrl, ENV.keys, ENV.lifetimes, ENV.logins, listen('0.0.0.0', 3001), ENV.logLevel],
  },
  'dev-idp': {
    about: 'A development OpenID Provider: any user name signs in (admin gets the admin role). It registers\n' +
      'a client for each IdP of idps.yaml whose issuer is its own. Development only. SIGHUP is ignored:\n' +
      'restart it to apply changes to idps.yaml.',
    env: [ENV.config, ENV.named, `${ENV.issuer} (default http://localhost:<PORT>)`,
      'GOLDPATH_PUBLIC_URL        the origin of the BFF\'s redirect URIs (default http://localhost:8080)',
      'GOLDPATH_DEV_IDP_BACKCHANNEL_URL  where back-channel logouts go, e.g. http://bff:3001 (default GOLDPATH_PUBLIC_URL)',
      'GOLDPATH_DEV_IDP_TLS_CERT, _KEY, _CA  PEM files to serve https (default plain http)',
      listen('127.0.0.1', 4000), ENV.logLevel],
  },
  demo: {
    about: 'The whole golden path on one machine (npm start): dev IdP, BFF, verify sidecar, example API\n' +
      'and SPA behind a development edge. SIGHUP reloads the config files and policies.',
    env: [ENV.config, 'REDIS_URL                  the session store (default memory://, in this process)', ENV.redisCa,
      'GOLDPATH_SESSION_KEYS      as for bff (default: a random key; sessions end with the demo)',
      `${ENV.issuer}, hence its port (default http://127.0.0.1:4000)`,
      'GOLDPATH_PUBLIC_URL        the page\'s origin, where sign-ins complete (default http://localhost:<PORT>)',
      'GOLDPATH_CLIENT_SECRET     the dev client\'s secret, named by idps.yaml (default: random)',
      ENV.lifetimes, ENV.logins,
      'PORT, HOST                 where the page is (default 127.0.0.1:8080, i.e. http://localhost:8080)', ENV.logLevel],
  },
};

/** The usage of one subcommand that takes no arguments, or undefined for another name. */
export function commandUsage(command: string): string | undefined {
  const c = COMMANDS[command];
  if (!c) return undefined;
  return `usage: goldpath ${command}\n\n${c.about}\n\nenvironment (there are no options):\n${c.env.map((l) => '  ' + l).join('\n')}\n` +
    '\nSee README.md, "Reference".\n';
}
