// postgrest-js's filter methods, each as an app calls it, against the
// fixture table pgjs_items (tests/postgrest-js/fixtures.sql): the rows
// PostgREST's operators select.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, ok, useProxy } from './helpers.mjs';

const proxy = useProxy();
const ids = async (query) => ok(await query).data.map((r) => r.id);
const items = () => client(proxy()).from('pgjs_items').select('id').order('id');

test('contains, containedBy, overlaps on arrays and jsonb', async () => {
  assert.deepEqual(await ids(items().contains('tags', ['fruit'])), [1, 2]);
  assert.deepEqual(await ids(items().containedBy('tags', ['fruit', 'red', 'yellow'])), [1, 2, 4]);
  assert.deepEqual(await ids(items().overlaps('tags', ['red', 'green'])), [1, 3]);
  assert.deepEqual(await ids(items().contains('doc', { a: 1 })), [1]);
});

test('ranges: rangeGt, rangeGte, rangeLt, rangeLte, rangeAdjacent, overlaps, contains', async () => {
  assert.deepEqual(await ids(items().rangeGt('period', '[15,25)')), [3]);
  assert.deepEqual(await ids(items().rangeLt('period', '[20,30)')), [1, 2]);
  assert.deepEqual(await ids(items().rangeGte('period', '[5,25)')), [2, 3]);
  assert.deepEqual(await ids(items().rangeLte('period', '[5,25)')), [1, 2]);
  assert.deepEqual(await ids(items().rangeAdjacent('period', '[20,30)')), [2, 3]);
  assert.deepEqual(await ids(items().overlaps('period', '[5,12)')), [1, 2]);
  assert.deepEqual(await ids(items().contains('period', '[2,3)')), [1]);
});

test('textSearch: plain, phrase, websearch, with a configuration', async () => {
  assert.deepEqual(await ids(items().textSearch('search', "'cat' & 'rat'")), [1, 2]);
  assert.deepEqual(await ids(items().textSearch('search', 'fat cats', { type: 'plain', config: 'english' })), [1, 2]);
  assert.deepEqual(await ids(items().textSearch('search', 'fat cats', { type: 'phrase', config: 'english' })), [1]);
  assert.deepEqual(await ids(items().textSearch('search', 'cats -thin', { type: 'websearch', config: 'english' })), [1]);
});

test('likeAnyOf, likeAllOf, ilikeAnyOf, ilikeAllOf, match, is, not, or, filter', async () => {
  assert.deepEqual(await ids(items().likeAnyOf('name', ['A%', 'B%'])), [1, 2]);
  assert.deepEqual(await ids(items().likeAllOf('name', ['%a%', '%n%'])), [2]);
  assert.deepEqual(await ids(items().ilikeAnyOf('name', ['a%', 'x%'])), [1, 3]);
  assert.deepEqual(await ids(items().ilikeAllOf('name', ['a%', '%o'])), [3]);
  assert.deepEqual(await ids(items().match({ name: 'Apple', id: 1 })), [1]);
  assert.deepEqual(await ids(items().is('name', null)), [4]);
  assert.deepEqual(await ids(items().not('name', 'is', null)), [1, 2, 3]);
  assert.deepEqual(await ids(items().not('tags', 'cs', '{fruit}')), [3, 4]);
  assert.deepEqual(await ids(items().or('tags.cs.{red},name.ilike.ban*')), [1, 2]);
  assert.deepEqual(await ids(items().filter('name', 'imatch', '^a')), [1, 3]);
  assert.deepEqual(await ids(items().filter('name', 'isdistinct', 'Apple')), [2, 3, 4]);
  assert.deepEqual(await ids(items().filter('id', 'eq(any)', '{1,3}')), [1, 3]);
});

test('JSON paths: select, filters and order through postgrest-js', async () => {
  const db = client(proxy());
  let r = ok(await db.from('pgjs_items').select('id, a:doc->a, text:doc->>a').lt('id', 3).order('id'));
  assert.deepEqual(r.data, [{ id: 1, a: 1, text: '1' }, { id: 2, a: 2, text: '2' }]);
  assert.deepEqual(await ids(items().eq('doc->>a', '2')), [2]);
  assert.deepEqual(await ids(items().eq('doc->b', 3)), [3]);
  r = ok(await db.from('pgjs_items').select('id').lt('id', 4).order('doc->>a', { ascending: false, nullsFirst: false }));
  assert.deepEqual(r.data.map((x) => x.id), [2, 1, 3]);
});

test('rpc().select().eq().order().limit().single() on a function returning table rows', async () => {
  const db = client(proxy());
  let r = ok(await db.rpc('pgjs_items_named', { prefix: 'a' }).select('id,name').order('id'));
  assert.deepEqual(r.data, [{ id: 1, name: 'Apple' }, { id: 3, name: 'avocado' }]);
  r = ok(await db.rpc('pgjs_items_named', { prefix: 'a' }).select('name').eq('id', 3).single());
  assert.deepEqual(r.data, { name: 'avocado' });
  r = ok(await db.rpc('pgjs_items_named', { prefix: '' }, { count: 'exact' }).select('id').order('id', { ascending: false }).limit(2));
  assert.deepEqual([r.data, r.count], [[{ id: 3 }, { id: 2 }], 3]);
  r = ok(await db.rpc('pgjs_items_named', { prefix: 'b' }, { get: true }).select('name'));
  assert.deepEqual(r.data, [{ name: 'Banana' }]);
});
