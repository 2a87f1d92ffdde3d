// The OpenAPI document at `/`: a valid OpenAPI 3 document (checked with
// @apidevtools/swagger-parser, as API tooling would read it) that shows
// each caller only what their role may use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import SwaggerParser from '@apidevtools/swagger-parser';
import { tokenFor, newUser, useProxy } from './helpers.mjs';

const proxy = useProxy();

async function documentFor(token) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const response = await fetch(`${proxy().url}/`, { headers });
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type'), /^application\/openapi\+json/);
  return response.json();
}

test('the document is valid OpenAPI 3 for anonymous and signed-in callers', async () => {
  for (const token of [null, tokenFor(newUser('Doc'))]) {
    const doc = await documentFor(token);
    assert.equal(doc.openapi, '3.0.3');
    // validate() resolves every $ref and checks the document against the OpenAPI 3.0 schema.
    await SwaggerParser.validate(structuredClone(doc));
  }
});

test('it follows privileges: anonymous sees the catalogue, a customer their tables and functions', async () => {
  const anon = await documentFor(null);
  assert.ok(anon.paths['/products'].get);
  assert.equal(anon.paths['/products'].post, undefined);
  for (const hidden of ['/cart', '/orders', '/rpc/place_order', '/rpc/redeem_coupon']) {
    assert.equal(anon.paths[hidden], undefined, hidden);
  }
  const customer = await documentFor(tokenFor(newUser('Doc')));
  assert.ok(customer.paths['/cart'].post && customer.paths['/cart'].patch && customer.paths['/cart'].delete);
  assert.deepEqual(customer.paths['/rpc/redeem_coupon'].post.requestBody.content['application/json'].schema.required, ['code', 'order_id']);
  // Trigger functions are not callable, so not listed.
  assert.equal(customer.paths['/rpc/review_guard'], undefined);
  assert.equal(customer.components.schemas.orders.properties.user_id.pattern, '^user_[A-Za-z0-9]+$');
});
