-- Analytics for BI: what bi_reader can read, and what it cannot.

-- Six customers with paid orders on one day, a seventh on the next day.
INSERT INTO categories (name, slug) VALUES ('BI Beans', 'bi-beans');
INSERT INTO products (name, slug, price, stock_quantity, category_id)
    SELECT 'BI Bean', 'bi-bean', 10, 1000, category_id FROM categories WHERE slug = 'bi-beans';
INSERT INTO orders (order_id, user_id, billing_name, billing_email, billing_address, subtotal, total_amount, status, payment_status, created_at)
SELECT 9700 + g, ('user_bi' || g)::clerk_user_id, 'Person ' || g, 'person' || g || '@example.com', '{"line1": "Secret Street"}',
       20 * g, 20 * g, 'delivered', 'paid', ('2026-05-0' || (CASE WHEN g = 7 THEN 2 ELSE 1 END) || ' 10:00+00')::timestamptz
  FROM generate_series(1, 7) g;
INSERT INTO order_items (order_id, product_id, product_name, quantity, unit_price, total_price)
SELECT 9700 + g, (SELECT product_id FROM products WHERE slug = 'bi-bean'), 'BI Bean', 2 * g, 10, 20 * g FROM generate_series(1, 7) g;

SET ROLE bi_reader;
-- Revenue per day and category: 6 customers on May 1st are shown, the one
-- on May 2nd (fewer than k = 5) is not.
SELECT day, category, orders, customers, revenue FROM analytics.revenue_by_day_category WHERE category = 'BI Beans';
-- Row-level views carry pseudonyms, weeks and bands; no personal column.
SELECT count(*) AS bi_orders, count(DISTINCT customer) AS customers, min(order_week) AS week
  FROM analytics.orders WHERE customer IN (SELECT customer FROM analytics.order_lines);
SELECT column_name FROM information_schema.columns WHERE table_schema = 'analytics' AND table_name = 'orders' ORDER BY ordinal_position;
-- The same customer has the same pseudonym in every view.
SELECT count(*) AS lines_whose_customer_is_in_orders FROM analytics.order_lines l
 WHERE l.customer IN (SELECT customer FROM analytics.orders);
\copy (SELECT day, category, customers, revenue FROM analytics.revenue_by_day_category WHERE category = 'BI Beans') TO STDOUT WITH (FORMAT csv, HEADER)
-- Everything else is closed to bi_reader: every base table, the audit
-- log, the mirror of Clerk users, and the pseudonym key.
SELECT count(*) AS public_tables, count(*) FILTER (WHERE regress.error_of(format('SELECT * FROM %s LIMIT 1', c.oid::regclass)) LIKE '42501:%') AS refused
  FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v', 'p');
SELECT t, regress.error_of(format('SELECT * FROM %s LIMIT 1', t)) AS result
  FROM unnest(ARRAY['public.audit_log', 'public.clerk_users', 'analytics_private.settings', 'analytics_private.customer_keys']) t;
SELECT regress.error_of($$SELECT analytics_publish('public.wishlist')$$) AS publish;
RESET ROLE;

-- Scan every analytics view as text for personal data.
DO $$
DECLARE
    v text;
    hits bigint;
BEGIN
    FOR v IN SELECT table_name FROM information_schema.views WHERE table_schema = 'analytics' ORDER BY table_name LOOP
        EXECUTE format($q$SELECT count(*) FROM analytics.%I x WHERE x::text ~* '(user_|@|person |secret street)'$q$, v) INTO hits;
        RAISE NOTICE 'analytics.%: % rows with personal data', v, hits;
    END LOOP;
END
$$;

-- A DBA publishes a new table under the same rules: the user becomes the
-- pseudonym, times are cut to the day, text stays out unless kept.
CREATE TABLE support_tickets (ticket_id int PRIMARY KEY, user_id clerk_user_id, subject text, body text,
                              priority int, channel text, opened_at timestamptz);
INSERT INTO support_tickets VALUES (1, 'user_bi1', 'My address changed', 'I now live at …', 2, 'email', '2026-05-03 09:13:00+00');
SELECT analytics_publish('support_tickets', 'user_id', keep => '{channel}');
SET ROLE bi_reader;
SELECT ticket_id, customer LIKE 'c\_%' AS pseudonymous, priority, channel, opened_at FROM analytics.support_tickets;
SELECT column_name FROM information_schema.columns WHERE table_schema = 'analytics' AND table_name = 'support_tickets' ORDER BY ordinal_position;
-- user_bi1 bought 2 beans at 10: the ticket carries the same pseudonym.
SELECT (SELECT customer FROM analytics.support_tickets) = (SELECT customer FROM analytics.order_lines WHERE quantity = 2 AND unit_price = 10) AS same_pseudonym;
RESET ROLE;
DROP VIEW analytics.support_tickets;
DROP TABLE support_tickets;
DELETE FROM orders WHERE order_id BETWEEN 9701 AND 9707;
