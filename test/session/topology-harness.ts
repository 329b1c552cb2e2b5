// The contract suite's Harness for scale-out topologies (Cluster, Sentinel) and TLS deployments: raw
// existence through a probe client, and operation counts from INFO commandstats summed over the
// data nodes; with a TLS deployment, the CA its stores trust.
import { storeKeys } from '../../src/session/index.ts';
import type { Harness } from './contract-suite.ts';

/**
 * Commands that are not the store's reads or writes: our own probes, replication chatter
 * (REPLCONF ACK every second), cluster topology refreshes, Sentinel's INFO/PING/hello PUBLISHes,
 * connection set-up, and the WAIT that follows each durable write.
 */
const NOT_STORE = /^(info|ping|replconf|psync|sync|readonly|readwrite|select|auth|hello|subscribe|wait|publish|role|exists|cluster\|.*|client\|.*|command\|.*|config\|.*|script\|.*)$/;

export function topologyHarness(
  url: () => string,
  exists: (key: string) => Promise<number>,
  commandStats: () => Promise<Map<string, number>>,
  opts: { redisTlsCa?: string } = {},
): Harness {
  return {
    url,
    commandTimeoutMs: 2000,
    redisTlsCa: opts.redisTlsCa,
    async rawExists(_url, id) {
      return (await exists(storeKeys.session(id))) === 1;
    },
    async counts() {
      let reads = 0;
      let writes = 0;
      for (const [cmd, calls] of await commandStats()) {
        if (cmd === 'hgetall') reads += calls;
        else if (!NOT_STORE.test(cmd)) writes += calls;
      }
      return { reads, writes };
    },
  };
}
