import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

const openssl = async (...args: string[]): Promise<void> => { await promisify(execFile)('openssl', args) }

export interface Certificates {
  /** The private CA that signed the server certificate (what NODE_EXTRA_CA_CERTS points to). */
  readonly ca: string
  readonly cert: string
  readonly key: string
}

/**
 * A throwaway private CA and a server certificate for 127.0.0.1 (subjectAltName IP),
 * written as PEM files into `dir` with openssl. P-256 keys: fast to generate.
 */
export async function makeCertificates (dir: string): Promise<Certificates> {
  const file = (name: string): string => join(dir, name)
  const curve = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  await openssl('req', '-x509', ...curve, '-keyout', file('ca.key'), '-out', file('ca.crt'), '-days', '1', '-subj', '/CN=realtime-gateway test CA')
  await openssl('req', ...curve, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1')
  writeFileSync(file('server.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n')
  await openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial',
    '-out', file('server.crt'), '-days', '1', '-extfile', file('server.ext'))
  return { ca: file('ca.crt'), cert: file('server.crt'), key: file('server.key') }
}
