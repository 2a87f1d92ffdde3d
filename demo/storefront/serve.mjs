// Serves the storefront page on its own origin: index.html, app.js,
// supabase-js's browser build (from this folder's node_modules, installed
// from package-lock.json) and config.js, which tells the page where the API
// is, the publishable key, and the demo users' tokens.
//
//   node serve.mjs   (STOREFRONT_PORT, API_URL, PUBLISHABLE_KEY, ALICE_TOKEN, BOB_TOKEN)
//
// Tests import startStorefront() instead.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const FILES = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/index.html': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/supabase.js': ['node_modules/@supabase/supabase-js/dist/umd/supabase.js', 'text/javascript; charset=utf-8'],
};

/** Listens on 127.0.0.1:`port` (0: any free port); resolves to { url, close }. */
export function startStorefront({ port = 0, apiUrl, publishableKey, users }) {
  const config = `window.STOREFRONT = ${JSON.stringify({ apiUrl, publishableKey, users })};\n`;
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (path === '/config.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' });
      return res.end(config);
    }
    if (path === '/favicon.ico') {
      res.writeHead(204);
      return res.end();
    }
    const file = FILES[path];
    if (!file || req.method !== 'GET') {
      res.writeHead(404, { 'content-type': 'text/plain' });
      return res.end('not found');
    }
    res.writeHead(200, { 'content-type': file[1], 'cache-control': 'no-store' });
    res.end(readFileSync(join(here, file[0])));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve({
      url: `http://127.0.0.1:${server.address().port}/`,
      close: () => new Promise((done) => server.close(done)),
    }));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const env = (name) => process.env[name] ?? (() => { throw new Error(`${name} is not set`); })();
  const { url } = await startStorefront({
    port: Number(process.env.STOREFRONT_PORT ?? 3002),
    apiUrl: env('API_URL'),
    publishableKey: env('PUBLISHABLE_KEY'),
    users: { Alice: env('ALICE_TOKEN'), Bob: env('BOB_TOKEN') },
  });
  console.log(`storefront on ${url}`);
}
