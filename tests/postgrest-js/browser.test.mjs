// The browser path, in a real browser (Debian's Chromium, headless, driven
// by playwright-core): the demo's storefront page, served on its own
// origin, calls clerk-proxy with supabase-js's browser build as a Clerk app
// does (`createClient(url, publishableKey, { accessToken })`). CORS
// preflights, /rest/v1/, the publishable key for signed-out visitors and
// readable counts and error bodies all have to work, or the page shows
// nothing.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { startStorefront } from '../../demo/storefront/serve.mjs';
import { newUser, startProxy, tokenFor } from './helpers.mjs';

const PUBLISHABLE_KEY = `pk_test_${Buffer.from('clerk.pgjs.example.com$').toString('base64')}`;
const alice = newUser('Alice');
const bob = newUser('Bob');

let api;
let cookieApi; // lists the storefront's origin, for Clerk's __session cookie
const proxy = () => api;
let browser;
let storefront;
let page;
const problems = []; // console errors and failed requests: CORS refusals show up here
// A refused request (4xx) is logged by the browser too; those the tests
// provoke are expected. Anything else (CORS blocks, network failures) is not.
// Chromium also reports every answered HEAD fetch as net::ERR_ABORTED (it
// does so against any server: there is no body to read).
const unexpected = () => problems.filter((p) => !/the server responded with a status of 4\d\d/.test(p) && !/^request failed: HEAD .* net::ERR_ABORTED$/.test(p) && !p.includes('CORS policy') && !/net::ERR_FAILED/.test(p));

before(async () => {
  api = await startProxy(`clerk-publishable-key = "${PUBLISHABLE_KEY}"`);
  storefront = await startStorefront({
    apiUrl: proxy().url,
    publishableKey: PUBLISHABLE_KEY,
    users: { Alice: tokenFor(alice), Bob: tokenFor(bob) },
  });
  cookieApi = await startProxy(`server-cors-allowed-origins = "${storefront.url.replace(/\/$/, '')}"`);
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
  page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
  await page.goto(storefront.url);
  await settled();
});

after(async () => {
  await browser?.close();
  await storefront?.close();
  await api?.stop();
  await cookieApi?.stop();
});

const text = (testid) => page.getByTestId(testid).innerText();
// The page's work for the last click, done.
const settled = () => page.evaluate(() => window.storefrontBusy);
async function signIn(name) {
  await page.getByRole('button', { name: name || 'Signed out', exact: true }).click();
  await settled();
  assert.equal(await text('who'), name || 'nobody');
}
async function click(testid) {
  await page.getByTestId(testid).click();
  await settled();
}

test('signed out: the catalogue with its count, no cart, no orders', async () => {
  await signIn('');
  assert.match(await text('count'), /^\d+ products$/);
  assert.ok(Number((await text('count')).split(' ')[0]) >= 8);
  assert.equal(await page.getByTestId('catalogue').locator('tr').count(), 8);
  assert.equal(await text('orders'), 'Sign in to see your orders.');
  assert.deepEqual(unexpected(), []);
});

test('Alice fills her cart, changes it, places an order and sees it with its lines', async () => {
  await signIn('Alice');
  assert.equal(await text('orders'), 'No orders yet.');
  await click('add-1');
  await click('add-3');
  assert.equal(await page.getByTestId('cart').locator('tr').count(), 2);
  await click('more-1');
  assert.match(await page.getByTestId('cart-line-1').innerText(), /× 2/);
  await click('remove-3');
  assert.equal(await page.getByTestId('cart').locator('tr').count(), 1);
  await click('place-order');
  assert.match(await text('message'), /^Order ORD-\d{4}-\d{6} placed: \d+\.\d\d\.$/);
  const orders = page.getByTestId('order');
  assert.equal(await orders.count(), 1);
  assert.match(await orders.first().innerText(), /pending, .*× 2\)$/);
  assert.equal(await page.getByTestId('cart').locator('tr').count(), 0);
  assert.deepEqual(unexpected(), []);
});

test('a coupon refusal shows its message', async () => {
  await signIn('Alice');
  await page.getByTestId('coupon-code').fill('WINTER');
  await click('redeem');
  assert.match(await text('message'), /^coupon WINTER expired on \d{4}-\d\d-\d\d$/);
  await page.getByTestId('coupon-code').fill('NO-SUCH-CODE');
  await click('redeem');
  assert.equal(await text('message'), 'coupon NO-SUCH-CODE does not exist');
});

test('Bob sees only his own (empty) cart and orders; Alice still hers', async () => {
  await signIn('Bob');
  assert.equal(await page.getByTestId('cart').locator('tr').count(), 0);
  assert.equal(await text('orders'), 'No orders yet.');
  await signIn('Alice');
  assert.equal(await page.getByTestId('order').count(), 1);
  await signIn('');
  assert.equal(await text('orders'), 'Sign in to see your orders.');
  assert.deepEqual(unexpected(), []);
});

// supabase-js and its postgrest-js, called from the page's origin.
test('from the browser: every verb, counts, error bodies, signed in and out', async () => {
  const results = await page.evaluate(async ({ url, key, token }) => {
    const signedIn = window.supabase.createClient(url, key, { accessToken: async () => token });
    const signedOut = window.supabase.createClient(url, key, { accessToken: async () => null });
    const pick = ({ status, data, error, count }) => ({ status, data, error, count });
    const out = {};
    out.insert = pick(await signedIn.from('wishlist').insert({ product_id: 5 }).select('product_id'));
    out.count = pick(await signedIn.from('wishlist').select('product_id', { count: 'exact', head: true }));
    out.update = pick(await signedIn.from('cart').insert({ product_id: 2, quantity: 1 }).select('quantity').single());
    out.patch = pick(await signedIn.from('cart').update({ quantity: 3 }).eq('product_id', 2).select('quantity'));
    out.remove = pick(await signedIn.from('cart').delete().eq('product_id', 2).select('product_id'));
    out.rpc = pick(await signedIn.rpc('customer_tier'));
    out.forbidden = pick(await signedIn.from('coupons').insert({ code: 'FREE', discount_type: 'percentage', discount_value: 100 }));
    out.anonymousCatalogue = pick(await signedOut.from('products').select('product_id', { count: 'exact' }).limit(2));
    out.anonymousOrders = pick(await signedOut.from('orders').select('order_id'));
    out.badFilter = pick(await signedOut.from('products').select('nope'));
    return out;
  }, { url: proxy().url, key: PUBLISHABLE_KEY, token: tokenFor(alice) });
  assert.deepEqual(results.insert, { status: 201, data: [{ product_id: 5 }], error: null, count: null });
  assert.deepEqual([results.count.status, results.count.count], [200, 1]);
  assert.deepEqual(results.update.data, { quantity: 1 });
  assert.deepEqual(results.patch.data, [{ quantity: 3 }]);
  assert.deepEqual(results.remove.data, [{ product_id: 2 }]);
  assert.deepEqual([results.rpc.status, results.rpc.data], [200, 'Bronze']);
  assert.equal(results.forbidden.status, 403);
  assert.deepEqual(results.forbidden.error, {
    code: '42501', details: null, hint: null, message: 'new row violates row-level security policy for table "coupons"',
  });
  assert.equal(results.anonymousCatalogue.status, 206);
  assert.equal(results.anonymousCatalogue.data.length, 2);
  assert.ok(results.anonymousCatalogue.count >= 8, 'Content-Range is readable from the page');
  assert.equal(results.anonymousOrders.status, 401);
  assert.equal(results.anonymousOrders.error.code, '42501');
  assert.equal(results.badFilter.status, 400);
  assert.equal(results.badFilter.error.code, '42703');
  assert.deepEqual(unexpected(), []);
});

// Clerk's __session cookie instead of a bearer token: the browser attaches
// it to requests other pages make too, so only a listed origin may read
// with it (credentials) and write with it.
test('the session cookie: read and write from a listed origin; other pages can do neither', async () => {
  const context = page.context();
  await context.addCookies([
    { name: '__session', value: tokenFor(alice), url: cookieApi.url },
    { name: '__session', value: tokenFor(alice), url: proxy().url },
  ]);
  const fromPage = (url, formProduct) => page.evaluate(async ({ api, formProduct }) => {
    const attempt = async (f) => { try { return await f(); } catch (e) { return `blocked: ${e.name}`; } };
    const read = await attempt(async () => {
      const r = await fetch(`${api}/rest/v1/orders?select=order_number`, { credentials: 'include' });
      return { status: r.status, rows: (await r.json()).length };
    });
    const json = await attempt(async () => {
      const r = await fetch(`${api}/rest/v1/wishlist`, {
        method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ product_id: 7 }),
      });
      return r.status;
    });
    // A form post needs no preflight: the browser sends it, cookie and all.
    const form = await attempt(async () => {
      const r = await fetch(`${api}/wishlist`, {
        method: 'POST', credentials: 'include', mode: 'no-cors',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `product_id=${formProduct}`,
      });
      return r.type;
    });
    return { read, json, form };
  }, { api: url, formProduct });
  const listed = await fromPage(cookieApi.url, 6);
  assert.deepEqual(listed.read, { status: 200, rows: 1 });
  assert.equal(listed.json, 201);
  // The open proxy answers any origin with `*`, never with credentials: the
  // browser keeps the answer from the page, and refuses the preflight.
  const open = await fromPage(proxy().url, 4);
  assert.equal(open.read, 'blocked: TypeError');
  assert.equal(open.json, 'blocked: TypeError');
  assert.equal(open.form, 'opaque');
  // The listed origin's writes got in (7, and 6 by form); the other page's
  // form post reached the proxy with the cookie and was refused (403), so 4 is not there.
  const wishlist = await fetch(`${proxy().url}/wishlist?select=product_id&order=product_id`, { headers: { Authorization: `Bearer ${tokenFor(alice)}` } });
  assert.deepEqual(await wishlist.json(), [{ product_id: 5 }, { product_id: 6 }, { product_id: 7 }]);
  const refusals = problems.filter((p) => p.includes('CORS policy'));
  assert.ok(refusals.length >= 2, problems.join('\n'));
  await context.clearCookies();
});
