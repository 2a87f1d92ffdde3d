-- Clerk metadata sync: the outbox filled by order changes, and the
-- worker's claim / delivered / failed protocol.

-- A new customer's order queues her metadata; paying it updates the queued row.
INSERT INTO orders (order_id, user_id, billing_name, billing_email, billing_address, subtotal, total_amount)
VALUES (9801, 'user_ob1', 'O', 'o@example.com', '{}', 60, 60);
SELECT public_metadata, state FROM clerk_metadata_outbox WHERE user_id = 'user_ob1';
UPDATE orders SET payment_status = 'paid' WHERE order_id = 9801;
INSERT INTO orders (order_id, user_id, billing_name, billing_email, billing_address, subtotal, total_amount, payment_status)
VALUES (9802, 'user_ob1', 'O', 'o@example.com', '{}', 50, 50, 'paid');
-- Several changes before delivery: one row, the latest state.
SELECT count(*) AS rows, max(public_metadata::text) AS latest FROM clerk_metadata_outbox WHERE user_id = 'user_ob1';

-- The worker: claim, deliver, mark.
BEGIN;
SET LOCAL ROLE clerk_sync;
SELECT user_id, public_metadata, attempts FROM clerk_outbox_claim(1000) WHERE user_id = 'user_ob1';
SELECT clerk_outbox_delivered('user_ob1', 200);
COMMIT;
SELECT state, attempts, last_status, delivered_at IS NOT NULL AS delivered FROM clerk_metadata_outbox WHERE user_id = 'user_ob1';

-- A change that does not move the numbers queues nothing new.
UPDATE orders SET status = 'confirmed' WHERE order_id = 9802;
SELECT state FROM clerk_metadata_outbox WHERE user_id = 'user_ob1';
-- Cancelling does: back to pending with the new numbers.
UPDATE orders SET status = 'cancelled' WHERE order_id = 9802;
SELECT state, public_metadata FROM clerk_metadata_outbox WHERE user_id = 'user_ob1';

-- Failures: 5xx backs off, 429 waits Retry-After, other 4xx are final.
INSERT INTO orders (user_id, billing_name, billing_email, billing_address, subtotal, total_amount, payment_status)
SELECT ('user_ob' || g)::clerk_user_id, 'O', 'o@example.com', '{}', 10, 10, 'paid' FROM generate_series(2, 4) g;
BEGIN;
SET LOCAL ROLE clerk_sync;
SELECT count(*) AS claimed FROM clerk_outbox_claim(1000) WHERE user_id IN ('user_ob2', 'user_ob3', 'user_ob4');
SELECT clerk_outbox_failed('user_ob2', 502, 'bad gateway');
SELECT clerk_outbox_failed('user_ob3', 429, 'slow down', interval '30 seconds');
SELECT clerk_outbox_failed('user_ob4', 404, '{"errors":[{"code":"resource_not_found"}]}');
COMMIT;
SELECT user_id, state, attempts, last_status, last_error,
       next_attempt_at > now() AS waits, next_attempt_at BETWEEN now() + interval '25 seconds' AND now() + interval '35 seconds' AS waits_retry_after
  FROM clerk_metadata_outbox WHERE user_id IN ('user_ob2', 'user_ob3', 'user_ob4') ORDER BY user_id;
-- Not due yet, so not claimed again.
BEGIN;
SET LOCAL ROLE clerk_sync;
SELECT count(*) AS claimable_again FROM clerk_outbox_claim(1000) WHERE user_id IN ('user_ob2', 'user_ob3', 'user_ob4');
COMMIT;

-- Only the worker's role may use it.
BEGIN;
SELECT regress.act_as('{"sub": "user_ob1"}');
SELECT regress.error_of($$SELECT * FROM clerk_outbox_claim(1)$$) AS claim_as_customer;
SELECT regress.error_of($$SELECT * FROM clerk_metadata_outbox$$) AS read_as_customer;
ROLLBACK;

-- The DBA's view.
SELECT state, users > 0 AS has_users FROM clerk_metadata_outbox_status ORDER BY state;

-- GDPR erasure removes the customer's outbox row too.
SELECT erase_clerk_user('user_ob1') IS NOT NULL AS erased;
SELECT count(*) AS outbox_rows_left FROM clerk_metadata_outbox WHERE user_id = 'user_ob1';
