// The dev IdP in a process of its own (test/helpers/shifted-idp.ts starts it, under the
// shifted-clock.ts preload): options as JSON in GOLDPATH_TEST_IDP_OPTIONS, and one line on stdout
// once it listens: {"issuer": ...}. Each line on stdin is a new clock offset in ms, answered by
// a line "offset <ms>" once it is in force.
import { createInterface } from 'node:readline';
import { startDevIdp, type DevIdpOptions } from '../../src/dev/idp.ts';
import { silentLogger } from '../../src/log.ts';
import { CLOCK_OFFSET } from './shifted-clock.ts';

const opts = JSON.parse(process.env['GOLDPATH_TEST_IDP_OPTIONS'] ?? '{}') as Omit<DevIdpOptions, 'log'>;
const idp = await startDevIdp({ ...opts, log: silentLogger });
process.stdout.write(`${JSON.stringify({ issuer: idp.issuer, url: idp.url })}\n`);
createInterface({ input: process.stdin }).on('line', (line) => {
  (globalThis as unknown as Record<symbol, number>)[CLOCK_OFFSET] = Number(line);
  process.stdout.write(`offset ${Number(line)}\n`);
});
process.on('SIGTERM', () => { void idp.close().then(() => process.exit(0)); });
