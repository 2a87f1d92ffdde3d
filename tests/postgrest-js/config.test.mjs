// Server settings as postgrest-js sees them, each test with a clerk-proxy
// of its own: db-max-rows = 2 never returns more than two rows (counts
// still count every matching row); db-tx-end = commit-allow-override lets
// rollback() (Prefer: tx=rollback) undo a write after showing its result.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ok, startProxy, unique, user } from './helpers.mjs';

test('db-max-rows caps every read; exact counts still see all rows', async (t) => {
  const proxy = await startProxy('db-max-rows = 2');
  t.after(() => proxy.stop());
  const { id, db } = user(proxy, 'Alice');
  const m = `pgjs-${unique()}`;
  for (const product_id of [1, 2, 3, 4, 5]) {
    ok(await db.from('product_reviews').insert({ product_id, rating: 3, title: `${m}-${product_id}` }));
  }
  const mine = (options) => db.from('product_reviews').select('product_id', options).eq('user_id', id).order('product_id');
  let r = ok(await mine());
  assert.deepEqual(r.data, [{ product_id: 1 }, { product_id: 2 }]);
  r = ok(await mine().limit(4));
  assert.deepEqual(r.data, [{ product_id: 1 }, { product_id: 2 }]);
  r = ok(await mine().range(2, 4));
  assert.deepEqual(r.data, [{ product_id: 3 }, { product_id: 4 }]);
  r = ok(await mine({ count: 'exact' }));
  assert.equal(r.status, 206);
  assert.equal(r.count, 5);
  assert.equal(r.data.length, 2);
  // Writes are not cut: all five rows change and come back.
  r = ok(await db.from('product_reviews').update({ rating: 4 }).eq('user_id', id).select('product_id'));
  assert.equal(r.data.length, 5);
});

test('rollback(): the write is answered, then undone (db-tx-end = commit-allow-override)', async (t) => {
  const proxy = await startProxy('db-tx-end = "commit-allow-override"');
  t.after(() => proxy.stop());
  const { id, db } = user(proxy, 'Alice');
  let r = ok(await db.from('cart').insert({ product_id: 5, quantity: 2 }).select('user_id,product_id,quantity').rollback());
  assert.equal(r.status, 201);
  assert.deepEqual(r.data, [{ user_id: id, product_id: 5, quantity: 2 }]);
  r = ok(await db.from('cart').select('product_id'));
  assert.deepEqual(r.data, []);
  // Without rollback() the same insert is committed.
  ok(await db.from('cart').insert({ product_id: 5, quantity: 2 }));
  r = ok(await db.from('cart').select('product_id'));
  assert.deepEqual(r.data, [{ product_id: 5 }]);
});
