// What the postgrest-js conformance tests share: a clerk-proxy process of
// their own (binary from CLERK_PROXY_BIN, database from
// PG_CLERK_TEST_API_DSN, as scripts/test.sh sets them for the Rust e2e
// tests), Clerk-style RS256 tokens signed with the test key, fresh users,
// and postgrest-js clients as an app would build them.

import { spawn } from 'node:child_process';
import { createSign, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { PostgrestClient } from '@supabase/postgrest-js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const FIXTURES = join(ROOT, 'tests/fixtures');
const PRIVATE_PEM = readFileSync(join(FIXTURES, 'test_rs256_private.pem'), 'utf8');
export const KID = 'ins_test_key_1';
export const ISSUER = 'https://clerk.pgjs.example.com';
export const AUTHORIZED_PARTY = 'https://app.pgjs.example.com';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this suite with \`make test\` (scripts/test.sh sets it)`);
  return value;
}

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.unref();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

function accepts(port) {
  return new Promise((ok) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => { socket.destroy(); ok(true); });
    socket.once('error', () => { socket.destroy(); ok(false); });
  });
}

/** Starts clerk-proxy with the suite's configuration plus `extra` config
 * lines, waits until it accepts connections, and returns
 * { url, port, stop() }. `keys` is the key configuration line (default:
 * the test JWKS file). */
export async function startProxy(extra = '', { keys = `clerk-jwks-file = "${join(FIXTURES, 'test_jwks.json')}"` } = {}) {
  const bin = required('CLERK_PROXY_BIN');
  const dsn = required('PG_CLERK_TEST_API_DSN');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'clerk-proxy-pgjs-'));
  const config = join(dir, 'proxy.conf');
  writeFileSync(config, [
    `db-uri = "${dsn}"`,
    'db-anon-role = "anon"',
    'db-staff-role = "clerk_staff"',
    'db-pool = 4',
    keys,
    `clerk-issuer = "${ISSUER}"`,
    `clerk-authorized-parties = "${AUTHORIZED_PARTY}"`,
    `server-port = ${port}`,
    extra,
    '',
  ].join('\n'));
  const child = spawn(bin, ['--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  let exited = null;
  const exit = new Promise((ok) => child.once('exit', (code, signal) => { exited = { code, signal }; ok(); }));
  const kill = () => { if (!exited) child.kill('SIGKILL'); };
  process.once('exit', kill);

  const stop = async () => {
    process.removeListener('exit', kill);
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 30_000;
  while (!(await accepts(port))) {
    if (exited) {
      await stop();
      throw new Error(`clerk-proxy exited (${exited.code ?? exited.signal}) before listening: ${stderr.trim()}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`clerk-proxy did not listen on ${port} within 30 s: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url: `http://127.0.0.1:${port}`, port, stop, stderr: () => stderr };
}

/** One clerk-proxy for the whole test file: started before the first
 * test, stopped after the last. Returns a getter. */
export function useProxy(extra = '', options = {}) {
  let proxy;
  before(async () => { proxy = await startProxy(extra, options); });
  after(async () => { await proxy?.stop(); });
  return () => {
    if (!proxy) throw new Error('clerk-proxy is not running');
    return proxy;
  };
}

const b64url = (data) => Buffer.from(data).toString('base64url');

/** A Clerk session token (RS256, kid ins_test_key_1) with the claims shape
 * the Rust e2e tests use, plus anything in `extra`. */
export function sign(claims, { kid = KID } = {}) {
  const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid }));
  const payload = b64url(JSON.stringify(claims));
  const signature = createSign('RSA-SHA256').update(`${header}.${payload}`).sign(PRIVATE_PEM);
  return `${header}.${payload}.${b64url(signature)}`;
}

export const now = () => Math.floor(Date.now() / 1000);

export function tokenFor(user, extra = {}) {
  const t = now();
  return sign({
    sub: user, sid: 'sess_2pgjs', iss: ISSUER, azp: AUTHORIZED_PARTY,
    iat: t, nbf: t - 5, exp: t + 600, ...extra,
  });
}

/** A marker no other run or suite uses: ASCII letters and digits only, so
 * it fits in Clerk ids and coupon codes. */
export const unique = () => randomBytes(6).toString('hex');

/** A fresh Clerk user id, e.g. user_2pgjsAlice3f9a0c12b4e7. */
export const newUser = (name) => `user_2pgjs${name}${unique()}`;

/** A postgrest-js client as an app would make it: with the user's token,
 * or none (anonymous). */
export function client(proxy, token) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  return new PostgrestClient(proxy.url, { headers });
}

/** A signed-in user: { id, token, db } with db a postgrest-js client. */
export function user(proxy, name, extra = {}) {
  const id = newUser(name);
  const token = tokenFor(id, extra);
  return { id, token, db: client(proxy, token) };
}

/** Staff with every permission (role_permissions: admin = '*'), as a Clerk
 * session-token template puts public metadata into the token. */
export function admin(proxy) {
  return user(proxy, 'Admin', { metadata: { role: 'admin' } });
}

/** Fails with the whole postgrest-js response when it carries an error. */
export function ok(response) {
  if (response.error) {
    throw new Error(`expected success, got status ${response.status}: ${JSON.stringify(response.error)}`);
  }
  return response;
}

/** Puts lines in the user's cart ([{product_id, quantity}]) and places the
 * order through the place_order RPC; returns the new order row. */
export async function placeOrder(db, lines, notes = null) {
  for (const line of lines) {
    ok(await db.from('cart').insert(line));
  }
  const { data } = ok(await db.rpc('place_order', {
    billing_name: 'PGJS Customer',
    billing_email: 'customer@pgjs.example.com',
    billing_address: { line1: '1 rue du Test', city: 'Lyon', country: 'FR' },
    notes,
  }));
  return data;
}
