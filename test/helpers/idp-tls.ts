// Test PKI made with the openssl CLI at test time: a CA, a server certificate for 127.0.0.1 and
// localhost (TLS IdPs, TLS Redis), and a client certificate (tls_client_auth). Nothing is committed to the repository.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  dir: string;
  caCert: string;
  caCertPath: string;
  serverCert: string;
  serverKey: string;
  clientCertPath: string;
  clientKeyPath: string;
  /** Subject DN of the client certificate, as registered for tls_client_auth. */
  clientSubject: string;
  cleanup(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

export interface TestPkiOptions {
  /** The server certificate's subjectAltName (default 127.0.0.1 and localhost). */
  san?: string;
  /**
   * The server certificate's extendedKeyUsage (default serverAuth). Redis Cluster nodes present it
   * as a client certificate too, on the cluster bus (which always asks for one): serverAuth,clientAuth.
   */
  serverEku?: string;
}

export function makeTestPki(clientCn = 'goldpath-client', opts: TestPkiOptions = {}): TestPki {
  const san = opts.san ?? 'IP:127.0.0.1,DNS:localhost';
  const dir = mkdtempSync(join(tmpdir(), 'goldpath-pki-'));
  const days = ['-days', '2'];
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', ...days, '-subj', '/CN=goldpath test CA']);
  writeFileSync(join(dir, 'server.ext'), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=${opts.serverEku ?? 'serverAuth'}\n`);
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  openssl(dir, ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', ...days, '-extfile', 'server.ext']);
  writeFileSync(join(dir, 'client.ext'), 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', `/CN=${clientCn}`]);
  openssl(dir, ['x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.crt', ...days, '-extfile', 'client.ext']);
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  return {
    dir,
    caCert: read('ca.crt'),
    caCertPath: join(dir, 'ca.crt'),
    serverCert: read('server.crt'),
    serverKey: read('server.key'),
    clientCertPath: join(dir, 'client.crt'),
    clientKeyPath: join(dir, 'client.key'),
    clientSubject: `CN=${clientCn}`,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
