// Resource embedding through postgrest-js: one-to-many (orders with their
// order_items), many-to-one (order_items with their product), aliases,
// filters on the embedded table with and without !inner, ordering and
// limiting the embedded rows, and RLS inside embeddings. Each test places
// its own orders as a fresh user.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, ok, placeOrder, useProxy, user } from './helpers.mjs';

const proxy = useProxy();

/** A new customer with two orders: [filters ×2, espresso ×1] and [ethiopia ×1]. */
async function customer() {
  const u = user(proxy(), 'Alice');
  const first = await placeOrder(u.db, [{ product_id: 6, quantity: 2 }, { product_id: 3, quantity: 1 }]);
  const second = await placeOrder(u.db, [{ product_id: 1, quantity: 1 }]);
  return { ...u, first, second };
}

const byName = (a, b) => a.product_name.localeCompare(b.product_name);

test('one-to-many: orders with order_items(product_name, quantity)', async () => {
  const { db, first, second } = await customer();
  const r = ok(await db.from('orders').select('order_id, order_number, order_items(product_name, quantity)').order('order_id'));
  assert.equal(r.status, 200);
  r.data.forEach((o) => o.order_items.sort(byName));
  assert.deepEqual(r.data, [
    {
      order_id: first.order_id, order_number: first.order_number,
      order_items: [{ product_name: 'Espresso Blend 500 g', quantity: 1 }, { product_name: 'Paper Filters (100)', quantity: 2 }],
    },
    {
      order_id: second.order_id, order_number: second.order_number,
      order_items: [{ product_name: 'Ethiopia Yirgacheffe 250 g', quantity: 1 }],
    },
  ]);
});

test('many-to-one: order_items with products(name), aliased and not', async () => {
  const { db, first } = await customer();
  let r = ok(await db.from('order_items').select('product_name, quantity, products(name, price)')
    .eq('order_id', first.order_id).order('product_name'));
  assert.deepEqual(r.data, [
    { product_name: 'Espresso Blend 500 g', quantity: 1, products: { name: 'Espresso Blend 500 g', price: 19.9 } },
    { product_name: 'Paper Filters (100)', quantity: 2, products: { name: 'Paper Filters (100)', price: 6.5 } },
  ]);
  r = ok(await db.from('order_items').select('quantity, product:products(sku, category:categories(slug))')
    .eq('order_id', first.order_id).order('quantity'));
  assert.deepEqual(r.data, [
    { quantity: 1, product: { sku: 'COF-ESP-500', category: { slug: 'coffee' } } },
    { quantity: 2, product: { sku: 'BRW-FLT-100', category: { slug: 'brewing' } } },
  ]);
  // And single() on top of an embedding.
  r = ok(await db.from('orders').select('order_number, order_items(quantity)').eq('order_id', first.order_id).single());
  r.data.order_items.sort((a, b) => a.quantity - b.quantity);
  assert.deepEqual(r.data, { order_number: first.order_number, order_items: [{ quantity: 1 }, { quantity: 2 }] });
});

test('!inner with a filter on the embedded table keeps only matching parents', async () => {
  const { db, first } = await customer();
  const r = ok(await db.from('orders').select('order_id, order_items!inner(product_name, quantity)')
    .eq('order_items.product_name', 'Espresso Blend 500 g'));
  assert.deepEqual(r.data, [{ order_id: first.order_id, order_items: [{ product_name: 'Espresso Blend 500 g', quantity: 1 }] }]);
  const count = ok(await db.from('orders').select('order_id, order_items!inner(product_id)', { count: 'exact', head: true })
    .gt('order_items.quantity', 1));
  assert.equal(count.count, 1);
});

test('a filter on the embedded table without !inner filters the children only', async () => {
  const { db, first, second } = await customer();
  const r = ok(await db.from('orders').select('order_id, order_items(product_name)')
    .eq('order_items.product_name', 'Espresso Blend 500 g').order('order_id'));
  assert.deepEqual(r.data, [
    { order_id: first.order_id, order_items: [{ product_name: 'Espresso Blend 500 g' }] },
    { order_id: second.order_id, order_items: [] },
  ]);
});

test('order() and limit() on the referenced table', async () => {
  const { db, first } = await customer();
  let r = ok(await db.from('orders').select('order_id, order_items(product_name)').eq('order_id', first.order_id)
    .order('product_name', { referencedTable: 'order_items', ascending: false }));
  assert.deepEqual(r.data, [{ order_id: first.order_id, order_items: [{ product_name: 'Paper Filters (100)' }, { product_name: 'Espresso Blend 500 g' }] }]);
  r = ok(await db.from('orders').select('order_id, order_items(product_name)').eq('order_id', first.order_id)
    .order('product_name', { referencedTable: 'order_items' }).limit(1, { referencedTable: 'order_items' }));
  assert.deepEqual(r.data, [{ order_id: first.order_id, order_items: [{ product_name: 'Espresso Blend 500 g' }] }]);
});

test('embedding respects RLS: another user and anonymous see nothing of these orders', async () => {
  const { first } = await customer();
  const bob = user(proxy(), 'Bob');
  const r = ok(await bob.db.from('orders').select('order_id, order_items(product_name)').eq('order_id', first.order_id));
  assert.deepEqual(r.data, []);
  const lines = ok(await bob.db.from('order_items').select('order_item_id, orders(order_id)').eq('order_id', first.order_id));
  assert.deepEqual(lines.data, []);
  // The public catalogue embeds for anyone.
  const anon = client(proxy());
  const cats = ok(await anon.from('categories').select('slug, products(name)').eq('slug', 'cups')
    .order('name', { referencedTable: 'products' }));
  assert.deepEqual(cats.data, [{ slug: 'cups', products: [{ name: 'Double-wall Glass (2)' }, { name: 'Stoneware Cup' }] }]);
});
