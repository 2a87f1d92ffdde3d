// postgrest-js's rpc() on functions of every result shape, and schema()
// on a second exposed schema, as PostgREST answers them
// (tests/postgrest-js/fixtures.sql).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { client, ok, useProxy } from './helpers.mjs';

const proxy = useProxy('db-schemas = "public, pgjs_other"');

test('rpc on a RETURNS TABLE function: filters, order, limit, single are applied', async () => {
  const db = client(proxy());
  let r = ok(await db.rpc('pgjs_username_and_status').neq('status', 'ONLINE').order('username'));
  assert.deepEqual(r.data, [{ username: 'dragarcia', status: 'OFFLINE' }, { username: 'kiwicopple', status: 'OFFLINE' }]);
  r = ok(await db.rpc('pgjs_username_and_status').select('username').eq('status', 'ONLINE').order('username', { ascending: false }).limit(1).single());
  assert.deepEqual(r.data, { username: 'supabot' });
  r = ok(await db.rpc('pgjs_username_and_status', {}, { count: 'exact' }).in('username', ['supabot', 'awailas']));
  assert.equal(r.count, 2);
});

test('rpc with head and count, and with get', async () => {
  const db = client(proxy());
  const r = ok(await db.rpc('pgjs_username_and_status', {}, { head: true, count: 'exact' }).eq('status', 'OFFLINE'));
  assert.deepEqual([r.status, r.data, r.count], [200, null, 2]);
  const g = ok(await db.rpc('pgjs_add', { a: 2, b: 3 }, { get: true }));
  assert.deepEqual([g.status, g.data], [200, 5]);
});

test('rpc on scalar, set-of-scalar and void functions', async () => {
  const db = client(proxy());
  assert.equal(ok(await db.rpc('pgjs_add', { a: 1, b: 2 })).data, 3);
  assert.deepEqual(ok(await db.rpc('pgjs_numbers')).data, [1, 2, 3]);
  assert.deepEqual(ok(await db.rpc('pgjs_numbers').gt('pgrst_scalar', 1).order('pgrst_scalar', { ascending: false })).data, [3, 2]);
  const v = ok(await db.rpc('pgjs_noop'));
  assert.deepEqual([v.status, v.data], [204, null]);
});

test('schema(): reads with Accept-Profile, writes and rpc with Content-Profile; an unexposed schema is 406', async () => {
  const db = client(proxy());
  let r = ok(await db.schema('pgjs_other').from('notes').select('id,body').eq('id', 1));
  assert.deepEqual(r.data, [{ id: 1, body: 'from the other schema' }]);
  const id = randomInt(1000, 1_000_000_000);
  r = ok(await db.schema('pgjs_other').from('notes').insert({ id, body: 'written' }).select('id'));
  assert.deepEqual([r.status, r.data], [201, [{ id }]]);
  r = ok(await db.schema('pgjs_other').rpc('note_count'));
  assert.ok(r.data >= 2, `${r.data}`);
  const notHere = await db.from('notes').select('id');
  assert.equal(notHere.status, 404, 'the default schema is the first');
  const bad = await db.schema('nope').from('notes').select('id');
  assert.deepEqual([bad.status, bad.error.code, bad.error.message], [406, 'PGRST106', 'Invalid schema: nope']);
});
