// Reads through postgrest-js: filters, or(), order(), range(), limit(),
// single(), maybeSingle(), csv() and counts. Each test makes a fresh user
// who writes five reviews of their own (not approved, so only they see
// them) and reads them back.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, ok, unique, useProxy, user } from './helpers.mjs';

const proxy = useProxy();

/** Five reviews of products 1..5, by a new user; returns { id, db, m }. */
async function reviewer() {
  const u = user(proxy(), 'Alice');
  const m = `pgjs-${unique()}`;
  const rows = [
    { product_id: 1, rating: 5, title: `${m}-bright`, comment: 'Floral, lemon' },
    { product_id: 2, rating: 4, title: `${m}-Caramel`, comment: null },
    { product_id: 3, rating: 2, title: `${m}-bitter`, comment: 'too-dark' },
    { product_id: 4, rating: 5, title: `${m}-GRINDER`, comment: null },
    { product_id: 5, rating: 3, title: `${m}-kettle`, comment: 'ok' },
  ];
  for (const row of rows) {
    const { status } = ok(await u.db.from('product_reviews').insert(row));
    assert.equal(status, 201);
  }
  return { ...u, m };
}

const ids = (rows) => rows.map((r) => r.product_id);

test('filters: eq, neq, gt, gte, lt, lte, in, like, ilike, is, not', async () => {
  const { id, db, m } = await reviewer();
  const mine = () => db.from('product_reviews').select('product_id').eq('user_id', id).order('product_id');

  let r = ok(await mine().eq('rating', 5));
  assert.equal(r.status, 200);
  assert.deepEqual(ids(r.data), [1, 4]);
  assert.deepEqual(ids(ok(await mine().neq('rating', 5)).data), [2, 3, 5]);
  assert.deepEqual(ids(ok(await mine().gt('rating', 3)).data), [1, 2, 4]);
  assert.deepEqual(ids(ok(await mine().gte('rating', 4)).data), [1, 2, 4]);
  assert.deepEqual(ids(ok(await mine().lt('rating', 3)).data), [3]);
  assert.deepEqual(ids(ok(await mine().lte('rating', 3)).data), [3, 5]);
  assert.deepEqual(ids(ok(await mine().in('product_id', [2, 3, 99])).data), [2, 3]);
  assert.deepEqual(ids(ok(await mine().in('title', [`${m}-bitter`, `${m}-kettle`])).data), [3, 5]);
  assert.deepEqual(ids(ok(await mine().like('title', `${m}-b%`)).data), [1, 3]);
  assert.deepEqual(ids(ok(await mine().like('title', `%grinder`)).data), []);
  assert.deepEqual(ids(ok(await mine().ilike('title', `%grinder`)).data), [4]);
  assert.deepEqual(ids(ok(await mine().ilike('title', `${m.toUpperCase()}-c*`)).data), [2]);
  assert.deepEqual(ids(ok(await mine().is('comment', null)).data), [2, 4]);
  assert.deepEqual(ids(ok(await mine().not('comment', 'is', null)).data), [1, 3, 5]);
  assert.deepEqual(ids(ok(await mine().not('rating', 'in', '(2,3)')).data), [1, 2, 4]);
  assert.deepEqual(ids(ok(await mine().match({ rating: 5, product_id: 4 })).data), [4]);
  assert.deepEqual(ids(ok(await mine().filter('rating', 'gt', 4)).data), [1, 4]);
  // A value with a comma stays one value.
  assert.deepEqual(ids(ok(await mine().eq('comment', 'Floral, lemon')).data), [1]);
  assert.deepEqual(ids(ok(await mine().in('comment', ['Floral, lemon', 'ok'])).data), [1, 5]);
  // Everything a filter-less read returns is the user's five reviews plus
  // approved reviews of others, never someone's unapproved one.
  const all = ok(await db.from('product_reviews').select('user_id,is_approved'));
  assert.equal(all.data.filter((row) => row.user_id === id).length, 5);
  assert.ok(all.data.every((row) => row.user_id === id || row.is_approved), JSON.stringify(all.data));
});

test('or(): flat and nested', async () => {
  const { id, db } = await reviewer();
  const mine = () => db.from('product_reviews').select('product_id').eq('user_id', id).order('product_id');
  assert.deepEqual(ids(ok(await mine().or('rating.eq.2,comment.is.null')).data), [2, 3, 4]);
  assert.deepEqual(ids(ok(await mine().or('rating.gte.5,and(rating.lt.3,comment.not.is.null)')).data), [1, 3, 4]);
  assert.deepEqual(ids(ok(await mine().or('product_id.in.(1,5),title.ilike.*caramel')).data), [1, 2, 5]);
});

test('order(): several columns, descending, nulls first and last', async () => {
  const { id, db } = await reviewer();
  const base = () => db.from('product_reviews').select('product_id,rating,comment').eq('user_id', id);
  let r = ok(await base().order('rating', { ascending: false }).order('product_id'));
  assert.deepEqual(ids(r.data), [1, 4, 2, 5, 3]);
  assert.deepEqual(r.data.map((x) => x.rating), [5, 5, 4, 3, 2]);
  r = ok(await base().order('comment', { ascending: true, nullsFirst: true }).order('product_id'));
  assert.deepEqual(ids(r.data), [2, 4, 1, 5, 3]);
  r = ok(await base().order('comment', { ascending: false, nullsFirst: false }).order('product_id'));
  assert.deepEqual(ids(r.data), [3, 5, 1, 2, 4]);
});

test('range() and limit()', async () => {
  const { id, db } = await reviewer();
  const mine = (columns = 'product_id', options) => db.from('product_reviews').select(columns, options).eq('user_id', id).order('product_id');
  let r = ok(await mine().range(1, 3));
  assert.equal(r.status, 200);
  assert.deepEqual(ids(r.data), [2, 3, 4]);
  r = ok(await mine().limit(2));
  assert.deepEqual(ids(r.data), [1, 2]);
  r = ok(await mine().range(3, 10));
  assert.deepEqual(ids(r.data), [4, 5]);
  // With an exact count a cut result is 206 Partial Content.
  r = ok(await mine('product_id', { count: 'exact' }).range(0, 1));
  assert.equal(r.status, 206);
  assert.equal(r.count, 5);
  assert.deepEqual(ids(r.data), [1, 2]);
});

test('single() and maybeSingle()', async () => {
  const { id, db, m } = await reviewer();
  const mine = () => db.from('product_reviews').select('product_id,rating,title,comment').eq('user_id', id);
  let r = ok(await mine().eq('product_id', 3).single());
  assert.equal(r.status, 200);
  assert.deepEqual(r.data, { product_id: 3, rating: 2, title: `${m}-bitter`, comment: 'too-dark' });
  r = ok(await mine().eq('product_id', 4).maybeSingle());
  assert.equal(r.status, 200);
  assert.deepEqual(r.data, { product_id: 4, rating: 5, title: `${m}-GRINDER`, comment: null });
  r = ok(await mine().eq('product_id', 8).maybeSingle());
  assert.equal(r.status, 200);
  assert.equal(r.data, null);
  // single() on an insert returns the new row as an object.
  r = ok(await db.from('product_reviews').insert({ product_id: 6, rating: 1, title: `${m}-filters` }).select('product_id,rating').single());
  assert.equal(r.status, 201);
  assert.deepEqual(r.data, { product_id: 6, rating: 1 });
});

test('stripNulls(): null fields left out of each object', async () => {
  const { id, db } = await reviewer();
  let r = ok(await db.from('product_reviews').select('product_id,comment').eq('user_id', id).in('product_id', [1, 2]).order('product_id').stripNulls());
  assert.equal(r.status, 200);
  assert.deepEqual(r.data, [{ product_id: 1, comment: 'Floral, lemon' }, { product_id: 2 }]);
  r = ok(await db.from('product_reviews').select('product_id,comment').eq('user_id', id).eq('product_id', 4).single().stripNulls());
  assert.deepEqual(r.data, { product_id: 4 });
});

test('csv(): PostgREST CSV with a header line', async () => {
  const { id, db, m } = await reviewer();
  const r = ok(await db.from('product_reviews').select('product_id,rating,title,comment').eq('user_id', id).order('product_id').csv());
  assert.equal(r.status, 200);
  assert.equal(typeof r.data, 'string');
  assert.equal(r.data, [
    'product_id,rating,title,comment',
    `1,5,${m}-bright,"Floral, lemon"`,
    `2,4,${m}-Caramel,`,
    `3,2,${m}-bitter,too-dark`,
    `4,5,${m}-GRINDER,`,
    `5,3,${m}-kettle,ok`,
  ].join('\n'));
});

test("count: 'exact' with rows and with head: true", async () => {
  const { id, db } = await reviewer();
  let r = ok(await db.from('product_reviews').select('product_id', { count: 'exact' }).eq('user_id', id).order('product_id'));
  assert.equal(r.status, 200);
  assert.equal(r.count, 5);
  assert.deepEqual(ids(r.data), [1, 2, 3, 4, 5]);
  r = ok(await db.from('product_reviews').select('*', { count: 'exact', head: true }).eq('user_id', id).gt('rating', 3));
  assert.equal(r.status, 200);
  assert.equal(r.count, 3);
  assert.equal(r.data, null);
  // Nothing matched: count 0.
  r = ok(await db.from('product_reviews').select('*', { count: 'exact', head: true }).eq('user_id', id).eq('rating', 1));
  assert.equal(r.count, 0);
});

test("count: 'planned' and 'estimated'", async () => {
  const { id, db } = await reviewer();
  for (const count of ['planned', 'estimated']) {
    const r = ok(await db.from('product_reviews').select('product_id', { count }).eq('user_id', id).order('product_id'));
    assert.ok([200, 206].includes(r.status), `${count}: status ${r.status}`);
    assert.deepEqual(ids(r.data), [1, 2, 3, 4, 5], count);
    assert.ok(Number.isInteger(r.count) && r.count >= 0, `${count}: count ${r.count}`);
    const head = ok(await db.from('products').select('*', { count, head: true }));
    assert.ok(Number.isInteger(head.count) && head.count >= 0, `${count} head: count ${head.count}`);
    assert.equal(head.data, null);
  }
});

test('anonymous catalogue reads: numbers, jsonb and aliases come back as JSON', async () => {
  const anon = client(proxy());
  let r = ok(await anon.from('products').select('name,price').eq('is_active', true).order('price', { ascending: false }).limit(3));
  assert.equal(r.status, 200);
  assert.deepEqual(r.data, [
    { name: 'Conical Burr Grinder', price: 189 },
    { name: 'Gooseneck Kettle 1 L', price: 79 },
    { name: 'Colombia Huila 1 kg', price: 42 },
  ]);
  r = ok(await anon.from('products').select('sku,roast:attributes,category:category_id').eq('product_id', 1).single());
  assert.deepEqual(r.data, { sku: 'COF-ETH-250', roast: { roast: 'light' }, category: 1 });
  r = ok(await anon.from('categories').select('slug').in('category_id', [1, 2, 3]).order('slug'));
  assert.deepEqual(r.data, [{ slug: 'brewing' }, { slug: 'coffee' }, { slug: 'cups' }]);
});
