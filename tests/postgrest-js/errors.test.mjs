// The error objects postgrest-js hands to an app for bad requests: code,
// message, details and hint as PostgREST gives them, and the HTTP status.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PostgrestClient } from '@supabase/postgrest-js';
import { client, now, ok, sign, tokenFor, useProxy, user, ISSUER } from './helpers.mjs';

const proxy = useProxy();

/** Asserts a failed postgrest-js response: status, then the error object. */
function failed(r, status, error, label = '') {
  assert.equal(r.status, status, `${label} ${JSON.stringify(r.error)}`);
  assert.equal(r.data, null);
  assert.equal(r.success, false);
  assert.deepEqual(Object.keys(r.error).sort(), ['code', 'details', 'hint', 'message'], JSON.stringify(r.error));
  for (const [key, value] of Object.entries(error)) {
    if (value instanceof RegExp) assert.match(r.error[key], value, `${label} ${key} of ${JSON.stringify(r.error)}`);
    else assert.deepEqual(r.error[key], value, `${label} ${key} of ${JSON.stringify(r.error)}`);
  }
}

test('unknown column in select: 400 42703', async () => {
  const { db } = user(proxy(), 'Alice');
  failed(await db.from('orders').select('order_id,secret'), 400, {
    code: '42703', message: 'column orders.secret does not exist', details: null,
  });
});

test('unknown column in a filter and in order: 400 42703', async () => {
  const { db } = user(proxy(), 'Alice');
  failed(await db.from('orders').select('order_id').eq('nope', 1), 400, {
    code: '42703', message: 'column orders.nope does not exist', details: null,
  });
  failed(await db.from('orders').select('order_id').order('nope'), 400, {
    code: '42703', message: 'column orders.nope does not exist', details: null,
  });
});

test('unknown table: 404 PGRST205', async () => {
  const { db } = user(proxy(), 'Alice');
  failed(await db.from('no_such_table').select('*'), 404, {
    code: 'PGRST205', message: "Could not find the table 'public.no_such_table' in the schema cache", details: null,
  });
});

test('unknown column in an insert body: 400 PGRST204', async () => {
  const { db } = user(proxy(), 'Alice');
  failed(await db.from('cart').insert({ product_id: 1, price: 0 }), 400, {
    code: 'PGRST204', message: "Could not find the 'price' column of 'cart' in the schema cache", details: null, hint: null,
  });
});

test('bad filter operator: 400 PGRST100', async () => {
  const { db } = user(proxy(), 'Alice');
  failed(await db.from('orders').select('order_id').filter('status', 'equals', 'x'), 400, {
    code: 'PGRST100', message: /failed to parse filter \(equals\.x\)/, details: /./, hint: null,
  });
});

test('bad or() syntax: 400 PGRST100', async () => {
  const { db } = user(proxy(), 'Alice');
  failed(await db.from('orders').select('order_id').or('status.eq.pending,total_amount'), 400, {
    code: 'PGRST100', message: /failed to parse logic tree/, details: /./, hint: null,
  });
});

test('single() on many rows: 406 PGRST116', async () => {
  const anon = client(proxy());
  failed(await anon.from('categories').select('slug').in('category_id', [1, 2, 3]).single(), 406, {
    code: 'PGRST116', message: 'JSON object requested, multiple (or no) rows returned', details: 'Results contain 3 rows, application/vnd.pgrst.object+json requires 1 row', hint: null,
  });
});

test('single() on no rows: 406 PGRST116', async () => {
  const anon = client(proxy());
  failed(await anon.from('categories').select('slug').eq('category_id', -1).single(), 406, {
    code: 'PGRST116', message: 'JSON object requested, multiple (or no) rows returned', details: 'Results contain 0 rows, application/vnd.pgrst.object+json requires 1 row', hint: null,
  });
});

test('maybeSingle() on many rows: PGRST116 from postgrest-js, status 406', async () => {
  const anon = client(proxy());
  const r = await anon.from('categories').select('slug').in('category_id', [1, 2]).maybeSingle();
  assert.equal(r.status, 406);
  assert.equal(r.data, null);
  assert.equal(r.error.code, 'PGRST116');
  assert.equal(r.error.details, 'Results contain 2 rows, application/vnd.pgrst.object+json requires 1 row');
});

test('malformed values: 400 22P02', async () => {
  const { db } = user(proxy(), 'Alice');
  failed(await db.from('orders').select('order_id').eq('order_id', 'not-a-number'), 400, {
    code: '22P02', message: 'invalid input syntax for type bigint: "not-a-number"', details: null, hint: null,
  });
  failed(await db.from('orders').select('order_id').eq('user_id', 'usr_bad'), 400, {
    code: '22P02', message: 'invalid input syntax for type clerk_user_id: "usr_bad"', details: /"user_"/,
  });
  failed(await db.from('cart').insert({ product_id: 'one' }), 400, {
    code: '22P02', message: 'invalid input syntax for type bigint: "one"', details: null, hint: null,
  });
});

test('row-level security refuses an insert: 403 42501', async () => {
  const alice = user(proxy(), 'Alice');
  const bob = user(proxy(), 'Bob');
  failed(await alice.db.from('wishlist').insert({ user_id: bob.id, product_id: 1 }), 403, {
    code: '42501', message: 'new row violates row-level security policy for table "wishlist"', details: null, hint: null,
  });
});

// Under row-level security PostgreSQL leaves the key values out of
// constraint errors (no "Key (...)=(...)" or "Failing row contains"), so
// PostgREST's details are null or the value-free sentence.
test('unique violation: 409 23505', async () => {
  const { db } = user(proxy(), 'Alice');
  ok(await db.from('wishlist').insert({ product_id: 3 }));
  failed(await db.from('wishlist').insert({ product_id: 3 }), 409, {
    code: '23505',
    message: 'duplicate key value violates unique constraint "wishlist_user_id_product_id_key"',
    details: null,
    hint: null,
  });
});

test('foreign key violation: 409 23503', async () => {
  const { db } = user(proxy(), 'Alice');
  failed(await db.from('product_reviews').insert({ product_id: 999999, rating: 4 }), 409, {
    code: '23503',
    message: 'insert or update on table "product_reviews" violates foreign key constraint "product_reviews_product_id_fkey"',
    details: 'Key is not present in table "products".',
    hint: null,
  });
});

test('a raised PT404: 404 with its message and detail (an unknown product in the cart)', async () => {
  const { db } = user(proxy(), 'Alice');
  failed(await db.from('cart').insert({ product_id: 999999 }), 404, {
    code: 'PT404',
    message: 'product 999999 not found',
    details: 'product_not_found',
    hint: null,
  });
});

test('check and not-null violations: 400 23514 and 23502', async () => {
  const { db } = user(proxy(), 'Alice');
  failed(await db.from('product_reviews').insert({ product_id: 1, rating: 9 }), 400, {
    code: '23514',
    message: 'new row for relation "product_reviews" violates check constraint "product_reviews_rating_check"',
    details: null,
    hint: null,
  });
  failed(await db.from('product_reviews').insert({ product_id: 1 }), 400, {
    code: '23502',
    message: 'null value in column "rating" of relation "product_reviews" violates not-null constraint',
    details: null,
    hint: null,
  });
});

test('anonymous request to a private table: 401 42501', async () => {
  failed(await client(proxy()).from('orders').select('*'), 401, {
    code: '42501', message: 'permission denied for table orders', details: null, hint: null,
  });
});

test('bad tokens: 401 PGRST301 (cannot be verified) and PGRST303 (claims refused)', async () => {
  const withToken = (token) => new PostgrestClient(proxy().url, { headers: { Authorization: `Bearer ${token}` } });
  const alice = tokenFor('user_2pgjsAlice');
  const [h, , s] = alice.split('.');
  const bobPayload = tokenFor('user_2pgjsBob').split('.')[1];
  const unverifiable = {
    garbled: 'not-a-token',
    'payload swapped': `${h}.${bobPayload}.${s}`,
    'unknown kid': sign({ sub: 'user_2pgjsAlice', iss: ISSUER, exp: now() + 600 }, { kid: 'ins_unknown' }),
    'alg none': `${Buffer.from('{"alg":"none"}').toString('base64url')}.${bobPayload}.`,
  };
  for (const [name, token] of Object.entries(unverifiable)) {
    const r = await withToken(token).from('products').select('product_id');
    failed(r, 401, { code: 'PGRST301', message: /./ }, name);
  }
  const refused = {
    expired: tokenFor('user_2pgjsAlice', { exp: now() - 60 }),
    'wrong issuer': tokenFor('user_2pgjsAlice', { iss: 'https://evil.example.com' }),
    'not yet valid': tokenFor('user_2pgjsAlice', { nbf: now() + 600 }),
  };
  for (const [name, token] of Object.entries(refused)) {
    const r = await withToken(token).from('products').select('product_id');
    failed(r, 401, { code: 'PGRST303', message: /./ }, name);
  }
  const expired = await withToken(refused.expired).from('products').select('product_id');
  assert.equal(expired.error.message, 'JWT expired');
});
