// A preload (`node --import .../shifted-clock.js`) that moves this process's wall clock by
// GOLDPATH_TEST_CLOCK_OFFSET_MS: Date.now() and `new Date()` read the shifted time, as on a host
// whose NTP broke or a VM resumed from suspend. Only the child it is loaded into is affected
// (test/helpers/shifted-idp.ts runs the dev IdP so). performance.now() is left as it is. The
// offset can be moved later through CLOCK_OFFSET (a clock that breaks while sessions exist).
export const CLOCK_OFFSET = Symbol.for('goldpath.test.clockOffsetMs');
const holder = globalThis as unknown as Record<symbol, number>;
holder[CLOCK_OFFSET] = Number(process.env['GOLDPATH_TEST_CLOCK_OFFSET_MS'] ?? '0');
if (!Number.isFinite(holder[CLOCK_OFFSET])) throw new Error('GOLDPATH_TEST_CLOCK_OFFSET_MS must be a number of ms');

const RealDate = Date;
class ShiftedDate extends RealDate {
  constructor(...args: unknown[]) {
    if (args.length === 0) super(RealDate.now() + holder[CLOCK_OFFSET]!);
    else super(...(args as [string | number | Date]));
  }

  static override now(): number {
    return RealDate.now() + holder[CLOCK_OFFSET]!;
  }
}
globalThis.Date = ShiftedDate as DateConstructor;
