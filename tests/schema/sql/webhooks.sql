-- Clerk webhooks (as clerk-proxy applies them after checking the Svix
-- signature) and GDPR erasure.

-- Only the webhook role may apply events.
BEGIN;
SELECT regress.act_as('{"sub": "user_w1"}');
SELECT regress.error_of($$SELECT clerk_apply_webhook('msg_x', '{"type": "user.created", "data": {"id": "user_w1"}}')$$) AS as_customer;
ROLLBACK;

BEGIN;
SET LOCAL ROLE clerk_webhook;
SELECT clerk_apply_webhook('msg_1', '{"type": "user.created", "data": {"id": "user_w1", "first_name": "Wendy", "last_name": "Walker",
    "image_url": "https://img.example/w.png", "primary_email_address_id": "idn_2", "updated_at": 1767225600000,
    "email_addresses": [{"id": "idn_1", "email_address": "old@example.com"}, {"id": "idn_2", "email_address": "wendy@example.com"}]}}') AS created;
-- A replayed delivery (same svix-id) is acknowledged and not applied twice.
SELECT clerk_apply_webhook('msg_1', '{"type": "user.created", "data": {"id": "user_w1", "first_name": "Changed"}}') AS replayed;
SELECT clerk_apply_webhook('msg_2', '{"type": "user.updated", "data": {"id": "user_w1", "first_name": "Wendy", "last_name": "Walker-Smith",
    "updated_at": 1767225700000, "primary_email_address_id": "idn_2", "email_addresses": [{"id": "idn_2", "email_address": "wendy@example.com"}]}}') AS updated;
SELECT clerk_apply_webhook('msg_3', '{"type": "organizationMembership.created", "data": {"role": "org:admin",
    "organization": {"id": "org_w", "name": "Acme Tea", "slug": "acme-tea"}, "public_user_data": {"user_id": "user_w1"}}}') AS membership;
SELECT clerk_apply_webhook('msg_4', '{"type": "session.created", "data": {"id": "sess_1"}}') AS unknown_type;
SELECT regress.error_of($$SELECT clerk_apply_webhook('msg_5', '{"type": "user.created", "data": {"id": "usr_bad"}}')$$) AS bad_id;
SELECT regress.error_of($$SELECT clerk_apply_webhook('msg_6', '{"data": {}}')$$) AS not_an_event;
COMMIT;
SELECT user_id, email, first_name, last_name FROM clerk_users WHERE user_id = 'user_w1';
SELECT org_id, user_id, role FROM clerk_org_memberships;
SELECT svix_id, event_type, outcome FROM clerk_webhook_events ORDER BY svix_id;

-- Wendy shops: a cart, a wishlist, a paid order with a coupon, a review.
INSERT INTO products (name, slug, price, stock_quantity) VALUES ('Kettle W', 'kettle-w', 50, 10);
INSERT INTO coupons (code, discount_type, discount_value) VALUES ('WEND5', 'fixed_amount', 5);
INSERT INTO orders (order_id, user_id, billing_name, billing_email, billing_address, subtotal, total_amount, status, payment_status)
VALUES (9501, 'user_w1', 'Wendy Walker', 'wendy@example.com', '{"line1": "1 Walker St"}', 100, 100, 'pending', 'pending');
BEGIN;
SELECT regress.act_as('{"sub": "user_w1"}');
SELECT total_amount FROM redeem_coupon('WEND5', 9501);
INSERT INTO cart (product_id) SELECT product_id FROM products WHERE slug = 'kettle-w';
INSERT INTO wishlist (product_id) SELECT product_id FROM products WHERE slug = 'kettle-w';
INSERT INTO product_reviews (product_id, rating, comment) SELECT product_id, 5, 'Wendy here, love it' FROM products WHERE slug = 'kettle-w';
COMMIT;
UPDATE orders SET payment_status = 'paid' WHERE order_id = 9501;
SELECT sum(total_amount) AS revenue_before FROM orders WHERE payment_status = 'paid';

-- A customer cannot erase anyone; the owner (here) or users:erase can.
BEGIN;
SELECT regress.act_as('{"sub": "user_w2"}');
SELECT regress.error_of($$SELECT erase_clerk_user('user_w1')$$) AS as_customer;
ROLLBACK;

-- Clerk deletes the user: the webhook erases her.
BEGIN;
SET LOCAL ROLE clerk_webhook;
SELECT clerk_apply_webhook('msg_7', '{"type": "user.deleted", "data": {"id": "user_w1", "deleted": true}}') AS deleted;
COMMIT;

-- No row anywhere still holds her id, e-mail, name or address.
DO $$
DECLARE
    t regclass;
    hits bigint;
BEGIN
    FOR t IN SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' LOOP
        EXECUTE format($q$SELECT count(*) FROM %s x WHERE x::text ~* '(user_w1|wendy|walker)'$q$, t) INTO hits;
        IF hits > 0 THEN
            RAISE WARNING '% rows of % still mention the erased user', hits, t;
        END IF;
    END LOOP;
END
$$;
SELECT sum(total_amount) AS revenue_after FROM orders WHERE payment_status = 'paid';
SELECT user_id::text LIKE 'user_erased%' AS tombstoned, billing_name, billing_email, billing_address, subtotal, discount_amount, total_amount
  FROM orders WHERE order_id = 9501;
SELECT (SELECT user_id FROM orders WHERE order_id = 9501) = (SELECT user_id FROM coupon_usage WHERE order_id = 9501) AS same_tombstone,
       (SELECT comment FROM product_reviews r JOIN products p USING (product_id) WHERE p.slug = 'kettle-w') AS review_text;
SELECT count(*) AS erasure_audit_entries FROM audit_log WHERE resource_type = 'clerk_user_erasure';

-- Erasing again finds nothing and writes nothing.
SELECT erase_clerk_user('user_w1') IS NULL AS nothing_left;
SELECT count(*) AS erasure_audit_entries FROM audit_log WHERE resource_type = 'clerk_user_erasure';
