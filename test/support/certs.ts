import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Throwaway X.509 material for TLS tests, made with the openssl CLI in a temp dir:
 * a CA, leaf certificates it signs (server or client), and everything as files (for
 * the gateway's config) and as PEM buffers (for a client).
 */

export interface KeyPair {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface TestCa extends KeyPair {
  readonly dir: string;
  /** A server certificate for these SANs (e.g. ['IP:127.0.0.1']). */
  server(name: string, sans: readonly string[]): KeyPair;
  /** A client certificate for these SANs (e.g. ['URI:spiffe://…']). */
  client(name: string, sans: readonly string[]): KeyPair;
  /** Removes the directory (and every key in it). */
  remove(): void;
}

const OPENSSL_CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
`;

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`openssl ${args.join(' ')} failed: ${(err as Error).message}\n${stderr}`);
  }
}

function randomSerial(): string {
  // Positive and without a leading zero byte, as X.509 wants.
  return `0x7${randomBytes(12).toString('hex')}`;
}

function pair(dir: string, name: string): KeyPair {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) };
}

/** A new CA (P-256) in a new temp dir; throws when openssl is not installed. */
export function createTestCa(commonName = 'switchboard test CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-certs-'));
  try {
    writeFileSync(join(dir, 'openssl.cnf'), OPENSSL_CONFIG);
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ca.key'], dir);
    openssl(['req', '-new', '-x509', '-config', 'openssl.cnf', '-extensions', 'ca', '-key', 'ca.key', '-subj', `/CN=${commonName}`, '-days', '2', '-set_serial', randomSerial(), '-out', 'ca.crt'], dir);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const leaf = (name: string, usage: 'serverAuth' | 'clientAuth', sans: readonly string[]): KeyPair => {
    if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`certificate name ${name}: expected [a-z0-9-]+`);
    const section = `[leaf]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = ${usage}\nsubjectAltName = ${sans.join(', ')}\nauthorityKeyIdentifier = keyid\nsubjectKeyIdentifier = hash\n`;
    writeFileSync(join(dir, `${name}.ext`), section);
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`], dir);
    openssl(['req', '-new', '-config', 'openssl.cnf', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', randomSerial(), '-days', '2', '-extfile', `${name}.ext`, '-extensions', 'leaf', '-out', `${name}.crt`], dir);
    return pair(dir, name);
  };

  return {
    ...pair(dir, 'ca'),
    dir,
    server: (name, sans) => leaf(name, 'serverAuth', sans),
    client: (name, sans) => leaf(name, 'clientAuth', sans),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
