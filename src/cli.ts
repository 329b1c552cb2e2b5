#!/usr/bin/env node
// goldpath: one CLI, one process per subcommand (SPEC section 2).
import process from 'node:process';
import { ConfigError, explainListenError, formatProblem, ListenError } from './errors.ts';
import { commandUsage } from './cli-usage.ts';

const USAGE = `usage: goldpath <command>

  verify    the ForwardAuth sidecar (/auth/verify)            default port 3002
  bff       the OAuth/OIDC backend-for-frontend (/auth/*)     default port 3001
  dev-idp   a development OpenID Provider (any user logs in)  default port 4000
  demo      the whole golden path on one machine               http://localhost:8080
  check     validate the config folder and its policies offline, and the variables below that
            are set; exit 1 on any problem
            (goldpath check [folder]: default GOLDPATH_CONFIG_DIR, then compose/config)

environment: GOLDPATH_CONFIG_DIR, REDIS_URL, GOLDPATH_PUBLIC_URL, GOLDPATH_SESSION_KEYS, PORT, HOST,
LOG_LEVEL, GOLDPATH_SESSION_IDLE, GOLDPATH_SESSION_MAX, GOLDPATH_MAX_LOGINS_PER_MINUTE (see README.md);
goldpath <command> --help lists the ones a command reads`;

/**
 * A SIGHUP while a process is still starting (loading config and policies, connecting) would take
 * Node's default action and kill it. From the start, it is remembered instead; once the process
 * serves, `handOver` does what a SIGHUP does to it: the reload it asked for (the files may have
 * changed since they were read), or for the dev IdP, which does not reload, the line saying so.
 */
function sighupDuringStartup(): { handOver(onSighup: () => unknown): void } {
  let pending = false;
  const early = () => { pending = true; };
  process.on('SIGHUP', early);
  return {
    handOver(onSighup) {
      process.off('SIGHUP', early);
      if (pending) void onSighup();
    },
  };
}

/**
 * Warns of GOLDPATH_* variables nothing reads: a typo (GOLDPATH_PUBLICURL) would otherwise start
 * the process on the default without a word. A log line, as the process's own lines are.
 */
async function warnUnknownVariables(command: string, env: Record<string, string | undefined>, configDir?: string): Promise<void> {
  const { unknownVariableWarnings, variablesNamedIn } = await import('./config/env-names.ts');
  const { configDirOf, LOG_LEVELS } = await import('./config/env.ts');
  const { CONFIG_FILES } = await import('./config/load.ts');
  const warnings = unknownVariableWarnings(env, await variablesNamedIn(configDir ?? configDirOf(env), CONFIG_FILES));
  if (warnings.length === 0) return;
  const { createLogger } = await import('./log.ts');
  const level = env['LOG_LEVEL']?.trim().toLowerCase() ?? '';
  const log = createLogger({ level: (LOG_LEVELS as readonly string[]).includes(level) ? level : 'info', name: command });
  for (const w of warnings) log.warn(w);
  log.flush();
}

function usage(to: NodeJS.WriteStream, code: number): number {
  to.write(USAGE + '\n');
  return code;
}

/**
 * verify, bff, dev-idp and demo take no arguments (the environment configures them): with `--help`
 * this prints the command's usage and returns 0, with anything else 2 (an ignored `--port 9999`
 * would start on another port than asked), before anything starts. Undefined: none, go on.
 */
function refuseArguments(command: string, rest: string[]): number | undefined {
  if (rest.length === 0) return undefined;
  const usage = commandUsage(command)!;
  if (rest.includes('-h') || rest.includes('--help')) {
    process.stdout.write(usage);
    return 0;
  }
  const [first] = rest;
  const what = first!.startsWith('-') ? 'unknown option' : 'unexpected argument';
  process.stderr.write(`goldpath ${command}: ${what} ${JSON.stringify(first)}: it takes none, the environment configures it\n\n${usage}`);
  return 2;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const env = process.env as Record<string, string | undefined>;
  if (command !== undefined && commandUsage(command) !== undefined) {
    const refused = refuseArguments(command, rest);
    if (refused !== undefined) return refused;
  }
  switch (command) {
    case 'verify': {
      const hup = sighupDuringStartup();
      // The process's V8 tuning before its modules load, not as server.ts's first import: loading
      // and linking server.ts's module graph allocates enough to grow the nursery to 4 or 8 MB
      // (under plain `node`) before the flag that keeps it at its starting size could apply.
      await import('./verify/process-tuning.ts');
      await warnUnknownVariables(command, env);
      const { startVerify, reloadOnSighup } = await import('./verify/server.ts');
      const { onShutdown } = await import('./http/serve.ts');
      const p = await startVerify({ env });
      reloadOnSighup(p);
      hup.handOver(() => p.reload());
      onShutdown(p.log, () => p.close());
      return -1;
    }
    case 'bff': {
      const hup = sighupDuringStartup();
      await warnUnknownVariables(command, env);
      const { startBffProcess } = await import('./bff/server.ts');
      const p = await startBffProcess({ env });
      hup.handOver(() => p.reload());
      return -1;
    }
    case 'dev-idp': {
      const hup = sighupDuringStartup();
      await warnUnknownVariables(command, env);
      const { runDevIdp } = await import('./dev/idp.ts');
      const p = await runDevIdp({ env });
      hup.handOver(() => p.sighup());
      return -1;
    }
    case 'demo': {
      const hup = sighupDuringStartup();
      const { startDemo, demoConfigDir } = await import('./dev/demo.ts');
      await warnUnknownVariables(command, env, demoConfigDir(env));
      const demo = await startDemo({ env });
      hup.handOver(() => demo.reload());
      return -1;
    }
    case 'check': {
      // An option is not a folder: `check --help` must not report "config folder not found".
      if (rest[0] === '-h' || rest[0] === '--help') return usage(process.stdout, 0);
      if (rest.length > 1 || rest[0]?.startsWith('-')) {
        process.stderr.write(`goldpath check: expected at most one folder, got ${JSON.stringify(rest)}\n\n`);
        return usage(process.stderr, 2);
      }
      const { runCheck } = await import('./check.ts');
      return runCheck({ env, dir: rest[0], out: (s) => process.stdout.write(s + '\n'), err: (s) => process.stderr.write(s + '\n') });
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      return usage(process.stdout, command === undefined ? 2 : 0);
    default:
      process.stderr.write(`goldpath: unknown command ${JSON.stringify(command)}\n\n${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    // Startup failures: print every config problem, never a stack for expected errors.
    if (err instanceof ListenError) {
      // verify, bff and dev-idp listen where HOST and PORT say (the demo names its own parts' variables).
      const shown = (name: string, value: string | number) => (process.env[name]?.trim() ? `${name}=${value}` : `${name} unset: ${value}`);
      const explained = explainListenError(err, (e) => `${shown('HOST', e.host)}, ${shown('PORT', e.port)}`, undefined, 'set PORT to a free port') as Error;
      process.stderr.write(`goldpath ${process.argv[2]}: ${explained.message}\n`);
    } else if (err instanceof ConfigError) {
      process.stderr.write(`goldpath: invalid configuration, not starting:\n${err.problems.map((p) => '  ' + formatProblem(p)).join('\n')}\n`);
    } else {
      process.stderr.write(`goldpath: ${(err as Error)?.message ?? String(err)}\n`);
    }
    process.exit(1);
  },
);
