// The ceiling: a bare node:http server in its own process, doing nothing but answering.
//   node dist/test/bench/bare-server.js ok      → 200, empty body
//   node dist/test/bench/bare-server.js json    → BARE_STATUS with BARE_BODY (JSON) and
//                                                 Cache-Control: no-store, like the sidecar's 401
// Prints {"port": n} on stdout once listening.
import { createServer } from 'node:http';
import process from 'node:process';

const mode = process.argv[2] ?? 'ok';
const status = Number(process.env.BARE_STATUS ?? 401);
const body = Buffer.from(process.env.BARE_BODY ?? '{"error":"login_required"}');

const server = createServer(mode === 'json'
  ? (_req, res) => {
      res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': body.length });
      res.end(body);
    }
  : (_req, res) => {
      res.writeHead(200, { 'Content-Length': 0 });
      res.end();
    });
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: (server.address() as { port: number }).port }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
