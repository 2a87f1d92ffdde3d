// Functions through postgrest-js rpc(): customer_tier (GET and POST),
// place_order (the cart becomes an order), redeem_coupon on a coupon that
// staff created through the API, and the functions' own refusals with
// their PT<status> codes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, client, ok, placeOrder, unique, useProxy, user } from './helpers.mjs';

const proxy = useProxy();

test('rpc customer_tier: POST and GET (read-only) for a new customer', async () => {
  const { db } = user(proxy(), 'Alice');
  let r = ok(await db.rpc('customer_tier'));
  assert.equal(r.status, 200);
  assert.equal(r.data, 'Bronze');
  r = ok(await db.rpc('customer_tier', {}, { get: true }));
  assert.equal(r.status, 200);
  assert.equal(r.data, 'Bronze');
});

test('rpc place_order: the cart becomes an order, lines snapshotted, cart emptied', async () => {
  const { id, db } = user(proxy(), 'Alice');
  const m = `pgjs-${unique()}`;
  ok(await db.from('cart').insert({ product_id: 6, quantity: 2 }));
  ok(await db.from('cart').insert({ product_id: 1, quantity: 1 }));
  const r = ok(await db.rpc('place_order', {
    billing_name: 'Alice PGJS',
    billing_email: 'alice@pgjs.example.com',
    billing_address: { line1: '12 rue des Lilas', city: 'Lyon', country: 'FR' },
    notes: m,
  }));
  assert.equal(r.status, 200);
  const order = r.data;
  assert.equal(Array.isArray(order), false, 'a function returning one row gives one object');
  assert.equal(order.user_id, id);
  assert.match(order.order_number, /^ORD-\d{4}-\d{6,}$/);
  assert.equal(order.status, 'pending');
  assert.equal(order.payment_status, 'pending');
  assert.equal(order.subtotal, 27.5);
  assert.equal(order.total_amount, 27.5);
  assert.equal(order.notes, m);
  assert.deepEqual(order.billing_address, { line1: '12 rue des Lilas', city: 'Lyon', country: 'FR' });
  assert.equal(order.shipping_address, null);

  const lines = ok(await db.from('order_items').select('product_id,product_name,quantity,unit_price,total_price')
    .eq('order_id', order.order_id).order('product_id'));
  assert.deepEqual(lines.data, [
    { product_id: 1, product_name: 'Ethiopia Yirgacheffe 250 g', quantity: 1, unit_price: 14.5, total_price: 14.5 },
    { product_id: 6, product_name: 'Paper Filters (100)', quantity: 2, unit_price: 6.5, total_price: 13 },
  ]);
  const cart = ok(await db.from('cart').select('*', { count: 'exact', head: true }));
  assert.equal(cart.count, 0);
  const orders = ok(await db.from('orders').select('order_id,notes'));
  assert.deepEqual(orders.data, [{ order_id: order.order_id, notes: m }]);
});

test('rpc place_order with an empty cart: 422 PT422 cart_empty', async () => {
  const { db } = user(proxy(), 'Alice');
  const r = await db.rpc('place_order', { billing_name: 'A', billing_email: 'a@pgjs.example.com', billing_address: {} });
  assert.equal(r.status, 422);
  assert.deepEqual(r.error, { code: 'PT422', message: 'your cart is empty', details: 'cart_empty', hint: null });
  assert.equal(r.data, null);
});

test('rpc redeem_coupon: staff create a coupon, the customer redeems it once', async () => {
  const staff = admin(proxy());
  const code = `PGJS${unique().toUpperCase()}`;
  const coupon = ok(await staff.db.from('coupons').insert({
    code, description: 'postgrest-js suite', discount_type: 'percentage', discount_value: 10, usage_limit: 5,
  }).select('code,used_count').single());
  assert.equal(coupon.status, 201);
  assert.deepEqual(coupon.data, { code, used_count: 0 });

  const { db } = user(proxy(), 'Alice');
  const order = await placeOrder(db, [{ product_id: 6, quantity: 2 }, { product_id: 1, quantity: 1 }]);
  let r = ok(await db.rpc('redeem_coupon', { code: code.toLowerCase(), order_id: order.order_id }));
  assert.equal(r.status, 200);
  assert.equal(r.data.order_id, order.order_id);
  assert.equal(r.data.discount_amount, 2.75);
  assert.equal(r.data.total_amount, 24.75);

  r = await db.rpc('redeem_coupon', { code, order_id: order.order_id });
  assert.equal(r.status, 409);
  assert.deepEqual(r.error, {
    code: 'PT409', message: `order ${order.order_number} already has a coupon`, details: 'order_has_coupon', hint: null,
  });
  r = await db.rpc('redeem_coupon', { code: `NOPE${unique().toUpperCase()}`, order_id: order.order_id });
  assert.equal(r.status, 409, 'the order already has a coupon: checked first');

  const used = ok(await staff.db.from('coupons').select('used_count').eq('code', code).single());
  assert.equal(used.data.used_count, 1);
  const usage = ok(await db.from('coupon_usage').select('order_id,discount_applied'));
  assert.deepEqual(usage.data, [{ order_id: order.order_id, discount_applied: 2.75 }]);
});

test('rpc refusals keep their status, message and detail code', async () => {
  const { db } = user(proxy(), 'Bob');
  const order = await placeOrder(db, [{ product_id: 6, quantity: 1 }]);
  const missing = `NOPE${unique().toUpperCase()}`;
  let r = await db.rpc('redeem_coupon', { code: missing, order_id: order.order_id });
  assert.equal(r.status, 404);
  assert.deepEqual(r.error, { code: 'PT404', message: `coupon ${missing} does not exist`, details: 'coupon_not_found', hint: null });
  r = await db.rpc('redeem_coupon', { code: 'WINTER', order_id: order.order_id });
  assert.equal(r.status, 410);
  assert.equal(r.error.code, 'PT410');
  assert.equal(r.error.details, 'coupon_expired');
  r = await db.rpc('redeem_coupon', { code: 'LAUNCH', order_id: order.order_id });
  assert.equal(r.status, 409);
  assert.equal(r.error.details, 'coupon_exhausted');
  r = await db.rpc('customer_tier_of', { customer: 'user_2demoAlice' });
  assert.equal(r.status, 403);
  assert.deepEqual(r.error, {
    code: 'PT403', message: "reading another customer's tier needs the orders:read permission", details: 'permission_denied', hint: null,
  });
});

test('rpc: a writing function through GET is refused read-only (405 25006), nothing written', async () => {
  const { db } = user(proxy(), 'Alice');
  ok(await db.from('cart').insert({ product_id: 6, quantity: 1 }));
  const r = await db.rpc('place_order', { billing_name: 'A', billing_email: 'a@pgjs.example.com', billing_address: '{}' }, { get: true });
  assert.equal(r.status, 405);
  assert.equal(r.error.code, '25006');
  // place_order's first write is locking the products (SELECT … FOR UPDATE).
  assert.equal(r.error.message, 'cannot execute SELECT FOR UPDATE in a read-only transaction');
  const cart = ok(await db.from('cart').select('product_id'));
  assert.deepEqual(cart.data, [{ product_id: 6 }]);
});

test('rpc as anonymous: 401 42501 permission denied for function', async () => {
  const anon = client(proxy());
  const r = await anon.rpc('customer_tier');
  assert.equal(r.status, 401);
  assert.deepEqual(r.error, { code: '42501', message: 'permission denied for function customer_tier', details: null, hint: null });
});

test('rpc unknown function: 404 PGRST202', async () => {
  const { db } = user(proxy(), 'Alice');
  const r = await db.rpc('no_such_function', { x: 1 });
  assert.equal(r.status, 404);
  assert.equal(r.error.code, 'PGRST202');
  assert.equal(r.error.message, 'Could not find the function public.no_such_function(x) in the schema cache');
  assert.equal(r.error.details,
    'Searched for the function public.no_such_function with parameter x or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.');
});
