// Writes through postgrest-js: insert (one row, many rows, defaults),
// upsert (on_conflict, merge and ignore duplicates, by primary key),
// update and delete, with and without returned rows and counts. Each test
// is a fresh user writing their own cart, wishlist and reviews.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, ok, unique, useProxy, user } from './helpers.mjs';

const proxy = useProxy();

test('insert one row: 201, the owner comes from the token', async () => {
  const { id, db } = user(proxy(), 'Alice');
  let r = ok(await db.from('cart').insert({ product_id: 6, quantity: 2 }));
  assert.equal(r.status, 201);
  assert.equal(r.data, null);
  r = ok(await db.from('cart').insert({ product_id: 7, quantity: 1, selected_attributes: { color: 'sand' } })
    .select('user_id,product_id,quantity,selected_attributes'));
  assert.equal(r.status, 201);
  assert.deepEqual(r.data, [{ user_id: id, product_id: 7, quantity: 1, selected_attributes: { color: 'sand' } }]);
  r = ok(await db.from('cart').select('product_id,quantity').order('product_id'));
  assert.deepEqual(r.data, [{ product_id: 6, quantity: 2 }, { product_id: 7, quantity: 1 }]);
});

test('insert many rows (postgrest-js sends ?columns=)', async () => {
  const { id, db } = user(proxy(), 'Alice');
  const r = ok(await db.from('cart').insert([
    { product_id: 1, quantity: 1 },
    { product_id: 2, quantity: 3, selected_attributes: { grind: 'fine' } },
  ]).select('user_id,product_id,quantity,selected_attributes'));
  assert.equal(r.status, 201);
  assert.deepEqual(r.data.sort((a, b) => a.product_id - b.product_id), [
    { user_id: id, product_id: 1, quantity: 1, selected_attributes: null },
    { user_id: id, product_id: 2, quantity: 3, selected_attributes: { grind: 'fine' } },
  ]);
  const count = ok(await db.from('cart').select('*', { count: 'exact', head: true }));
  assert.equal(count.count, 2);
});

test('insert many rows with defaultToNull: false (Prefer: missing=default)', async () => {
  const { db } = user(proxy(), 'Alice');
  const r = ok(await db.from('cart').insert([{ product_id: 3 }, { product_id: 4, quantity: 2 }], { defaultToNull: false })
    .select('product_id,quantity'));
  assert.equal(r.status, 201);
  assert.deepEqual(r.data.sort((a, b) => a.product_id - b.product_id), [
    { product_id: 3, quantity: 1 }, // the column default
    { product_id: 4, quantity: 2 },
  ]);
});

test('insert with count: exact', async () => {
  const { db } = user(proxy(), 'Alice');
  const r = ok(await db.from('wishlist').insert({ product_id: 5 }, { count: 'exact' }));
  assert.equal(r.status, 201);
  assert.equal(r.count, 1);
});

test('upsert with onConflict merges duplicates', async () => {
  const { id, db } = user(proxy(), 'Alice');
  const m = `pgjs-${unique()}`;
  const first = ok(await db.from('product_reviews').insert({ product_id: 1, rating: 3, title: `${m}-first` }).select('review_id').single());
  const r = ok(await db.from('product_reviews')
    .upsert({ product_id: 1, rating: 5, title: `${m}-second` }, { onConflict: 'product_id,user_id' })
    .select('review_id,user_id,product_id,rating,title'));
  assert.equal(r.status, 200, 'PostgREST: an upsert that inserted nothing is 200');
  assert.deepEqual(r.data, [{ review_id: first.data.review_id, user_id: id, product_id: 1, rating: 5, title: `${m}-second` }]);
  const rows = ok(await db.from('product_reviews').select('review_id,rating,title').eq('user_id', id));
  assert.deepEqual(rows.data, [{ review_id: first.data.review_id, rating: 5, title: `${m}-second` }]);
});

test('upsert many rows: one updated, one inserted', async () => {
  const { id, db } = user(proxy(), 'Alice');
  const m = `pgjs-${unique()}`;
  ok(await db.from('product_reviews').insert({ product_id: 2, rating: 2, title: `${m}-old` }));
  const r = ok(await db.from('product_reviews').upsert([
    { product_id: 2, rating: 4, title: `${m}-updated` },
    { product_id: 3, rating: 1, title: `${m}-new` },
  ], { onConflict: 'product_id,user_id' }).select('product_id,rating,title'));
  assert.equal(r.status, 201);
  assert.deepEqual(r.data.sort((a, b) => a.product_id - b.product_id), [
    { product_id: 2, rating: 4, title: `${m}-updated` },
    { product_id: 3, rating: 1, title: `${m}-new` },
  ]);
  const rows = ok(await db.from('product_reviews').select('product_id,rating').eq('user_id', id).order('product_id'));
  assert.deepEqual(rows.data, [{ product_id: 2, rating: 4 }, { product_id: 3, rating: 1 }]);
});

test('upsert with ignoreDuplicates leaves existing rows alone', async () => {
  const { id, db } = user(proxy(), 'Alice');
  const m = `pgjs-${unique()}`;
  ok(await db.from('product_reviews').insert({ product_id: 4, rating: 5, title: `${m}-keep` }));
  let r = ok(await db.from('product_reviews')
    .upsert({ product_id: 4, rating: 1, title: `${m}-ignored` }, { onConflict: 'product_id,user_id', ignoreDuplicates: true })
    .select('product_id,rating,title'));
  assert.equal(r.status, 201);
  assert.deepEqual(r.data, []);
  r = ok(await db.from('product_reviews')
    .upsert({ product_id: 5, rating: 4, title: `${m}-added` }, { onConflict: 'product_id,user_id', ignoreDuplicates: true })
    .select('product_id,rating,title'));
  assert.deepEqual(r.data, [{ product_id: 5, rating: 4, title: `${m}-added` }]);
  const rows = ok(await db.from('product_reviews').select('product_id,rating,title').eq('user_id', id).order('product_id'));
  assert.deepEqual(rows.data, [
    { product_id: 4, rating: 5, title: `${m}-keep` },
    { product_id: 5, rating: 4, title: `${m}-added` },
  ]);
});

test('upsert without onConflict uses the primary key', async () => {
  // Staff on the catalogue: customers cannot name generated keys.
  const { db } = admin(proxy());
  const slug = `pgjs-${unique()}`;
  const row = ok(await db.from('categories').insert({ name: 'Upsert', slug }).select('category_id').single()).data;
  const r = ok(await db.from('categories').upsert({ category_id: row.category_id, name: 'Upserted', slug }).select('category_id,name'));
  assert.equal(r.status, 200, 'updated, nothing inserted');
  assert.deepEqual(r.data, [{ category_id: row.category_id, name: 'Upserted' }]);
  const rows = ok(await db.from('categories').select('category_id,name').eq('slug', slug));
  assert.deepEqual(rows.data, [{ category_id: row.category_id, name: 'Upserted' }]);
  ok(await db.from('categories').delete().eq('slug', slug));
});

test('a customer cannot choose a generated key (it would block other users\' inserts)', async () => {
  const { db } = user(proxy(), 'Alice');
  const line = ok(await db.from('cart').insert({ product_id: 6, quantity: 1 }).select('cart_id').single()).data;
  for (const r of [
    await db.from('cart').upsert({ cart_id: line.cart_id, product_id: 6, quantity: 7 }),
    await db.from('cart').insert({ cart_id: line.cart_id + 1000, product_id: 7 }),
    await db.from('cart').update({ cart_id: line.cart_id + 1000 }).eq('cart_id', line.cart_id),
  ]) {
    assert.equal(r.status, 403);
    assert.deepEqual(r.error, { code: '42501', message: 'permission denied for table cart', details: null, hint: null });
  }
  const rows = ok(await db.from('cart').select('cart_id,quantity'));
  assert.deepEqual(rows.data, [{ cart_id: line.cart_id, quantity: 1 }]);
});

test('update: 204 without rows, 200 with select(), count', async () => {
  const { db } = user(proxy(), 'Alice');
  const a = ok(await db.from('cart').insert({ product_id: 1, quantity: 1 }).select('cart_id').single()).data;
  const b = ok(await db.from('cart').insert({ product_id: 2, quantity: 1 }).select('cart_id').single()).data;
  let r = ok(await db.from('cart').update({ quantity: 4 }).eq('cart_id', a.cart_id));
  assert.equal(r.status, 204);
  assert.equal(r.data, null);
  r = ok(await db.from('cart').update({ quantity: 5, selected_attributes: { gift: true } }).eq('cart_id', b.cart_id)
    .select('cart_id,quantity,selected_attributes'));
  assert.equal(r.status, 200);
  assert.deepEqual(r.data, [{ cart_id: b.cart_id, quantity: 5, selected_attributes: { gift: true } }]);
  r = ok(await db.from('cart').update({ quantity: 9 }, { count: 'exact' }).in('cart_id', [a.cart_id, b.cart_id]));
  assert.equal(r.count, 2);
  r = ok(await db.from('cart').select('cart_id,quantity').order('cart_id'));
  assert.deepEqual(r.data, [{ cart_id: a.cart_id, quantity: 9 }, { cart_id: b.cart_id, quantity: 9 }]);
});

test('delete: 204 without rows, 200 with select(), count', async () => {
  const { db } = user(proxy(), 'Alice');
  const lines = [];
  for (const product_id of [1, 2, 3]) {
    lines.push(ok(await db.from('wishlist').insert({ product_id }).select('wishlist_id,product_id').single()).data);
  }
  let r = ok(await db.from('wishlist').delete().eq('wishlist_id', lines[0].wishlist_id).select('product_id'));
  assert.equal(r.status, 200);
  assert.deepEqual(r.data, [{ product_id: 1 }]);
  r = ok(await db.from('wishlist').delete({ count: 'exact' }).eq('product_id', 2));
  assert.equal(r.status, 204);
  assert.equal(r.count, 1);
  r = ok(await db.from('wishlist').delete().eq('product_id', 99));
  assert.equal(r.status, 204);
  r = ok(await db.from('wishlist').select('wishlist_id,product_id'));
  assert.deepEqual(r.data, [lines[2]]);
});

test('maxAffected(): a write touching more rows is refused (400 PGRST124) and rolled back', async () => {
  const { db } = user(proxy(), 'Alice');
  for (const product_id of [1, 2, 3]) ok(await db.from('cart').insert({ product_id, quantity: 1 }));
  let r = await db.from('cart').update({ quantity: 2 }).gt('cart_id', 0).maxAffected(2);
  assert.equal(r.status, 400);
  assert.deepEqual(r.error, {
    code: 'PGRST124', message: 'Query result exceeds max-affected preference constraint', details: 'The query affects 3 rows', hint: null,
  });
  r = ok(await db.from('cart').select('quantity'));
  assert.deepEqual(r.data, [{ quantity: 1 }, { quantity: 1 }, { quantity: 1 }]);
  r = ok(await db.from('cart').delete().eq('product_id', 3).maxAffected(1).select('product_id'));
  assert.deepEqual(r.data, [{ product_id: 3 }]);
});

test('update()/delete() with order() and limit(): only those rows; without order() 400 PGRST109', async () => {
  const alice = user(proxy(), 'Alice');
  const bob = user(proxy(), 'Bob');
  for (const product_id of [1, 2, 3]) ok(await alice.db.from('cart').insert({ product_id, quantity: 1 }));
  ok(await bob.db.from('cart').insert({ product_id: 4, quantity: 1 }));
  let r = ok(await alice.db.from('cart').update({ quantity: 5 }).order('product_id', { ascending: false }).limit(1).select('product_id,quantity'));
  assert.deepEqual(r.data, [{ product_id: 3, quantity: 5 }]);
  r = ok(await alice.db.from('cart').delete().order('product_id').limit(1).select('product_id'));
  assert.deepEqual(r.data, [{ product_id: 1 }]);
  r = await alice.db.from('cart').delete().limit(1);
  assert.equal(r.status, 400);
  assert.deepEqual(r.error, {
    code: 'PGRST109', message: "A 'limit' was applied without an explicit 'order'", details: null, hint: "Apply an 'order' using unique column(s)",
  });
  r = ok(await alice.db.from('cart').select('product_id,quantity').order('product_id'));
  assert.deepEqual(r.data, [{ product_id: 2, quantity: 1 }, { product_id: 3, quantity: 5 }]);
  // The rows a limited write picks are the caller's under RLS: Bob's limited
  // delete over the whole table takes his own line, never Alice's.
  r = ok(await bob.db.from('cart').delete().order('cart_id').limit(5).select('product_id'));
  assert.deepEqual(r.data, [{ product_id: 4 }]);
  r = ok(await alice.db.from('cart').select('product_id').order('product_id'));
  assert.deepEqual(r.data, [{ product_id: 2 }, { product_id: 3 }]);
});
