// private_key_jwt keys: `goldpath check` and startup refuse every key the BFF could not sign with
// (it imports the key with jose, with the key's alg), and weak RSA, naming the file, never the key.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IdpClient } from '../../src/oidc/idp-client.ts';
import { silentLogger } from '../../src/log.ts';
import { testIdpConfig } from '../helpers/idp-bff.ts';
import { cleanupConfigDirs, problemsFor, where } from './helpers.ts';

type Jwk = Record<string, unknown>;
const jwkOf = (type: string, opts: object = {}): Jwk =>
  generateKeyPairSync(type as 'rsa', opts as { modulusLength: number }).privateKey.export({ format: 'jwk' }) as Jwk;
const rsa = (bits = 2048) => jwkOf('rsa', { modulusLength: bits });

const idps = `default: dev
idps:
  dev:
    issuer: https://idp.example.com
    client_id: goldpath
    client_auth: private_key_jwt
    private_key: keys/client.jwk.json
`;

async function problemFor(jwk: Jwk) {
  const problems = await problemsFor({ idps, extra: { 'keys/client.jwk.json': JSON.stringify(jwk) } });
  return problems;
}

describe('config: private_key_jwt keys the BFF can sign with', () => {
  after(cleanupConfigDirs);

  const refused: [string, () => Jwk, RegExp][] = [
    ['an X25519 key (key agreement, not signatures)', () => jwkOf('x25519'), /curve "X25519"; private_key_jwt signs with Ed25519 \(EdDSA\) only/],
    ['an Ed448 key (jose signs EdDSA with Ed25519 only)', () => jwkOf('ed448'), /curve "Ed448"/],
    ['an EC key on secp256k1', () => jwkOf('ec', { namedCurve: 'secp256k1' }), /curve "secp256k1"; private_key_jwt signs with P-256, P-384 or P-521/],
    ['an RSA key with "alg": "HS256"', () => ({ ...rsa(), alg: 'HS256' }), /"alg": "HS256", which is not a signature algorithm for an RSA key \(use RS256, .*or remove "alg"\)/],
    ['an Ed25519 key with "alg": "RS256"', () => ({ ...jwkOf('ed25519'), alg: 'RS256' }), /"alg": "RS256", which is not a signature algorithm for an OKP key/],
    ['an RSA key with "alg": "RSA-OAEP" (encryption)', () => ({ ...rsa(), alg: 'RSA-OAEP' }), /"alg": "RSA-OAEP"/],
    ['a P-256 key with "alg": "ES384"', () => ({ ...jwkOf('ec', { namedCurve: 'P-256' }), alg: 'ES384' }), /cannot sign with "ES384": .*crv/],
    ['an encryption key ("use": "enc")', () => ({ ...rsa(), use: 'enc', key_ops: ['decrypt'] }), /marked "use": "enc"; private_key_jwt needs a signing key/],
    ['key_ops without sign', () => ({ ...rsa(), key_ops: ['verify'] }), /"key_ops" without "sign"/],
    ['a 512-bit RSA key', () => rsa(512), /holds a 512-bit RSA key; at least 2048 bits are required/],
    ['a 1024-bit RSA key', () => rsa(1024), /holds a 1024-bit RSA key/],
  ];
  for (const [name, make, message] of refused) {
    it(`refuses ${name}, naming the file at its line and key`, async () => {
      const jwk = make();
      const problems = await problemFor(jwk);
      assert.deepEqual(where(problems), [['idps.yaml', 7, 'idps.dev.private_key']], JSON.stringify(problems));
      const m = problems[0]!.message;
      assert.match(m, /^"keys\/client\.jwk\.json" /);
      assert.match(m, message);
      for (const part of ['d', 'p', 'q', 'n', 'x']) {
        if (typeof jwk[part] === 'string') assert.ok(!m.includes((jwk[part] as string).slice(0, 12)), `the message shows "${part}"`);
      }
    });
  }

  const accepted: [string, () => Jwk][] = [
    ['RSA 2048 (RS256 by default)', () => rsa()],
    ['RSA 3072 with "alg": "PS256"', () => ({ ...rsa(3072), alg: 'PS256', use: 'sig' })],
    ['P-384', () => jwkOf('ec', { namedCurve: 'P-384' })],
    ['P-521', () => jwkOf('ec', { namedCurve: 'P-521' })],
    ['Ed25519', () => ({ ...jwkOf('ed25519'), key_ops: ['sign'] })],
  ];
  for (const [name, make] of accepted) {
    it(`accepts ${name}, and refuses it marked for encryption`, async () => {
      const jwk = make();
      assert.deepEqual(await problemFor(jwk), []);
      const forEncryption: Jwk = { ...jwk, use: 'enc' };
      delete forEncryption.key_ops;
      assert.deepEqual(where(await problemFor(forEncryption)), [['idps.yaml', 7, 'idps.dev.private_key']]);
    });
  }

  it('a key file that became unusable after validation: the IdP is not said to be unreachable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'goldpath-key-'));
    try {
      const file = join(dir, 'client.jwk.json');
      writeFileSync(file, JSON.stringify(jwkOf('x25519')));
      const client = new IdpClient(testIdpConfig('dev', 'https://idp.invalid', {
        clientAuth: 'private_key_jwt', clientSecret: undefined, privateKey: file,
      }), { log: silentLogger, fetch: () => Promise.reject(new Error('no request may be made')) });
      await assert.rejects(client.configuration(), (err: Error) => {
        assert.match(err.message, /^the client credentials of IdP "dev" cannot be used \(goldpath check names the problem\)$/);
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
