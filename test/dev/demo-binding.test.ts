// `npm start` keeps every part of the demo on 127.0.0.1. The edge listens there only; the dev IdP,
// which signs anyone in (user admin included), must not be reachable from the rest of the network
// either (compose publishes it on 127.0.0.1 only, for the same reason). Probed through 127.0.0.2:
// on Linux the whole 127/8 is this machine, so a server bound to every interface answers there and
// one bound to 127.0.0.1 does not, whatever network interfaces the machine has.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startDemo, type Demo } from '../../src/dev/demo.ts';
import { silentLogger } from '../../src/log.ts';
import { freePort } from '../helpers/redis.ts';

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.setTimeout(2000, () => { s.destroy(); resolve(false); });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

describe('the demo listens on 127.0.0.1 only', function () {
  this.timeout(30_000);
  let demo: Demo | undefined;
  after(async () => { await demo?.close(); });

  it('neither the edge nor the dev IdP answers on another address', async function () {
    const other = '127.0.0.2';
    const [edgePort, idpPort] = [await freePort(), await freePort()];
    demo = await startDemo({
      env: { PORT: String(edgePort), GOLDPATH_IDP_ISSUER: `http://localhost:${idpPort}`, LOG_LEVEL: 'silent' },
      log: silentLogger, signals: false,
    });
    assert.equal(await reachable('127.0.0.1', idpPort), true, 'the dev IdP answers on loopback');
    assert.equal(await reachable('127.0.0.1', edgePort), true, 'the edge answers on 127.0.0.1');
    assert.equal(await reachable(other, edgePort), false, `the edge is reachable on ${other}`);
    assert.equal(await reachable(other, idpPort), false, `the dev IdP (anyone may sign in) is reachable on ${other}:${idpPort}`);
  });
});
