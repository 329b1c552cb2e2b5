// Closing a test's HTTP server: close() alone waits for every keep-alive connection a client left
// open (the tests' fetch and supertest agents keep theirs), so the idle ones are cut at once.
import type { Server } from 'node:http';

export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
