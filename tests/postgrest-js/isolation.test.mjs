// Row-level security as an app sees it through postgrest-js: user A's
// token never sees or changes user B's rows (reads return nothing,
// updates and deletes affect 0 rows, inserts as B are refused), and
// anonymous requests see only the public catalogue.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, client, ok, placeOrder, unique, useProxy, user } from './helpers.mjs';

const proxy = useProxy();

test("another user's cart: select, update and delete see 0 rows", async () => {
  const alice = user(proxy(), 'Alice');
  const bob = user(proxy(), 'Bob');
  const line = ok(await alice.db.from('cart').insert({ product_id: 2, quantity: 2 }).select('cart_id').single()).data;

  let r = ok(await bob.db.from('cart').select('cart_id,user_id').eq('user_id', alice.id));
  assert.deepEqual(r.data, []);
  r = ok(await bob.db.from('cart').select('cart_id', { count: 'exact' }).eq('cart_id', line.cart_id));
  assert.deepEqual([r.data, r.count], [[], 0]);
  r = ok(await bob.db.from('cart').update({ quantity: 99 }).eq('cart_id', line.cart_id).select('cart_id'));
  assert.equal(r.status, 200);
  assert.deepEqual(r.data, []);
  r = ok(await bob.db.from('cart').update({ quantity: 98 }, { count: 'exact' }).eq('user_id', alice.id));
  assert.equal(r.count, 0);
  r = ok(await bob.db.from('cart').delete().eq('cart_id', line.cart_id).select('cart_id'));
  assert.deepEqual(r.data, []);
  r = ok(await bob.db.from('cart').delete({ count: 'exact' }).gt('cart_id', 0));
  assert.equal(r.count, 0, "Bob's cart is empty and Alice's is out of reach");

  r = ok(await alice.db.from('cart').select('cart_id,user_id,quantity'));
  assert.deepEqual(r.data, [{ cart_id: line.cart_id, user_id: alice.id, quantity: 2 }]);
});

test('inserting a row owned by another user is refused (403 42501)', async () => {
  const alice = user(proxy(), 'Alice');
  const bob = user(proxy(), 'Bob');
  const r = await bob.db.from('cart').insert({ user_id: alice.id, product_id: 3 });
  assert.equal(r.status, 403);
  assert.deepEqual(r.error, {
    code: '42501', message: 'new row violates row-level security policy for table "cart"', details: null, hint: null,
  });
  const rows = ok(await alice.db.from('cart').select('cart_id'));
  assert.deepEqual(rows.data, []);
});

test("another user's order: invisible, not updatable, not redeemable", async () => {
  const alice = user(proxy(), 'Alice');
  const bob = user(proxy(), 'Bob');
  const order = await placeOrder(alice.db, [{ product_id: 6, quantity: 1 }]);
  let r = ok(await bob.db.from('orders').select('order_id').eq('order_id', order.order_id));
  assert.deepEqual(r.data, []);
  r = ok(await bob.db.from('order_items').select('order_item_id').eq('order_id', order.order_id));
  assert.deepEqual(r.data, []);
  r = ok(await bob.db.from('orders').update({ status: 'cancelled' }).eq('order_id', order.order_id).select('order_id'));
  assert.deepEqual(r.data, []);
  r = await bob.db.rpc('redeem_coupon', { code: 'SPRING', order_id: order.order_id });
  assert.equal(r.status, 404);
  assert.deepEqual(r.error, { code: 'PT404', message: `order ${order.order_id} not found`, details: 'order_not_found', hint: null });
  // A customer cannot change even their own order (orders:write only).
  r = ok(await alice.db.from('orders').update({ status: 'cancelled' }).eq('order_id', order.order_id).select('order_id'));
  assert.deepEqual(r.data, []);
  r = ok(await alice.db.from('orders').select('order_id,status,user_id'));
  assert.deepEqual(r.data, [{ order_id: order.order_id, status: 'pending', user_id: alice.id }]);
});

test("reviews: the owner sees their own, others see only approved ones", async () => {
  const alice = user(proxy(), 'Alice');
  const bob = user(proxy(), 'Bob');
  const m = `pgjs-${unique()}`;
  ok(await alice.db.from('product_reviews').insert({ product_id: 1, rating: 4, title: `${m}-draft` }));
  ok(await alice.db.from('product_reviews').insert({ product_id: 2, rating: 5, title: `${m}-public` }));
  // Approving is moderation's (reviews:moderate), not the author's.
  const selfApproval = await alice.db.from('product_reviews').update({ is_approved: true }).eq('title', `${m}-public`);
  assert.equal(selfApproval.status, 403);
  assert.deepEqual(selfApproval.error, {
    code: '42501', message: 'reviews are approved by moderators', details: 'review_approval_needs_moderator', hint: 'needs the reviews:moderate permission',
  });
  ok(await admin(proxy()).db.from('product_reviews').update({ is_approved: true }).eq('title', `${m}-public`));
  const mine = (db) => db.from('product_reviews').select('title').ilike('title', `${m}%`).order('title');
  assert.deepEqual(ok(await mine(alice.db)).data, [{ title: `${m}-draft` }, { title: `${m}-public` }]);
  // Others read approved reviews through public_reviews, without who wrote them.
  assert.deepEqual(ok(await mine(bob.db)).data, []);
  const pub = (db) => db.from('public_reviews').select('*').ilike('title', `${m}%`);
  for (const db of [bob.db, client(proxy())]) {
    const rows = ok(await pub(db)).data;
    assert.deepEqual(rows.map((r) => r.title), [`${m}-public`]);
    assert.equal('user_id' in rows[0] || 'order_id' in rows[0], false);
  }
  const anon = await mine(client(proxy()));
  assert.equal(anon.status, 401);
  assert.equal(anon.error.code, '42501');
  // Bob cannot edit or remove even the review he can read.
  let r = ok(await bob.db.from('product_reviews').update({ rating: 1 }).ilike('title', `${m}%`).select('title'));
  assert.deepEqual(r.data, []);
  r = ok(await bob.db.from('product_reviews').delete().ilike('title', `${m}%`).select('title'));
  assert.deepEqual(r.data, []);
  r = ok(await alice.db.from('product_reviews').select('title,rating').ilike('title', `${m}%`).order('title'));
  assert.deepEqual(r.data, [{ title: `${m}-draft`, rating: 4 }, { title: `${m}-public`, rating: 5 }]);
});

test('anonymous: the catalogue only', async () => {
  const anon = client(proxy());
  let r = ok(await anon.from('products').select('product_id', { count: 'exact' }).order('product_id').limit(3));
  assert.deepEqual(r.data, [{ product_id: 1 }, { product_id: 2 }, { product_id: 3 }]);
  assert.ok(r.count >= 8, `count ${r.count}`);
  r = ok(await anon.from('categories').select('name').eq('slug', 'coffee'));
  assert.deepEqual(r.data, [{ name: 'Coffee' }]);
  for (const table of ['cart', 'orders', 'order_items', 'wishlist', 'coupons', 'coupon_usage']) {
    const denied = await anon.from(table).select('*');
    assert.equal(denied.status, 401, table);
    assert.deepEqual(denied.error, { code: '42501', message: `permission denied for table ${table}`, details: null, hint: null }, table);
    assert.equal(denied.data, null, table);
  }
  const write = await anon.from('cart').insert({ product_id: 1 });
  assert.equal(write.status, 401);
  assert.deepEqual(write.error, { code: '42501', message: 'permission denied for table cart', details: null, hint: null });
  const update = await anon.from('products').update({ price: 0 }).eq('product_id', 1);
  assert.equal(update.status, 401);
  assert.equal(update.error.code, '42501');
  const price = ok(await anon.from('products').select('price').eq('product_id', 1).single());
  assert.equal(price.data.price, 14.5);
});

test('a signed-in customer cannot list coupons or the audit log', async () => {
  const { db } = user(proxy(), 'Alice');
  let r = ok(await db.from('coupons').select('code'));
  assert.deepEqual(r.data, []);
  r = ok(await db.from('audit_log').select('audit_id').limit(1));
  assert.deepEqual(r.data, []);
  r = await db.from('role_permissions').select('*');
  assert.equal(r.status, 403);
  assert.deepEqual(r.error, { code: '42501', message: 'permission denied for table role_permissions', details: null, hint: null });
});
