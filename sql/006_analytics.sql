-- Anonymised analytics for BI tools, read by `bi_reader` and nothing else.
--
-- Design: the views run with their owner's rights (not security_invoker),
-- so bi_reader needs no right on any base table and RLS does not apply to
-- what the views compute; what a view exposes is therefore decided here,
-- column by column:
--   * no names, e-mails, addresses, payment ids or free text;
--   * user ids become a keyed pseudonym, HMAC-SHA256 with a key in
--     analytics_private (owner only): the same customer has the same
--     pseudonym in every view, and it cannot be recomputed from a
--     candidate id without the key;
--   * row-level dates are cut to the week and amounts to bands of 10;
--   * aggregates describing fewer than k customers are left out
--     (k = analytics_private.settings.min_group_size, default 5).
-- Safe to re-run.

CREATE SCHEMA IF NOT EXISTS analytics_private;
REVOKE ALL ON SCHEMA analytics_private FROM PUBLIC;
CREATE TABLE IF NOT EXISTS analytics_private.settings (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    pseudonym_key   bytea NOT NULL DEFAULT clerk_random_bytes(32),
    min_group_size  integer NOT NULL DEFAULT 5 CHECK (min_group_size >= 1)
);
-- (Earlier versions used pgcrypto's gen_random_bytes() and hmac(); the
-- key stays, and clerk_hmac_sha256() gives the same pseudonyms.)
ALTER TABLE analytics_private.settings ALTER COLUMN pseudonym_key SET DEFAULT clerk_random_bytes(32);
INSERT INTO analytics_private.settings DEFAULT VALUES ON CONFLICT DO NOTHING;

CREATE SCHEMA IF NOT EXISTS analytics;
REVOKE ALL ON SCHEMA analytics FROM PUBLIC;

-- The pseudonym expression every view uses (inlined, so bi_reader needs no
-- right on a function that could be fed candidate ids).
CREATE OR REPLACE VIEW analytics_private.customer_keys AS
SELECT u.user_id, 'c_' || left(encode(clerk_hmac_sha256(convert_to(u.user_id::text, 'UTF8'), s.pseudonym_key), 'hex'), 24) AS customer
  FROM (SELECT user_id FROM orders UNION SELECT user_id FROM product_reviews UNION SELECT user_id FROM coupon_usage) u
 CROSS JOIN analytics_private.settings s;

CREATE OR REPLACE VIEW analytics.orders WITH (security_barrier) AS
SELECT k.customer,
       date_trunc('week', o.created_at AT TIME ZONE 'UTC')::date AS order_week,
       o.status, o.payment_status,
       (round(o.total_amount / 10) * 10)::numeric(10,0) AS total_amount_band,
       o.discount_amount > 0 AS used_coupon,
       (SELECT count(*) FROM order_items i WHERE i.order_id = o.order_id) AS line_count
  FROM orders o JOIN analytics_private.customer_keys k USING (user_id);

CREATE OR REPLACE VIEW analytics.order_lines WITH (security_barrier) AS
SELECT k.customer,
       date_trunc('week', o.created_at AT TIME ZONE 'UTC')::date AS order_week,
       i.product_id, p.category_id, i.quantity, i.unit_price
  FROM order_items i
  JOIN orders o USING (order_id)
  JOIN analytics_private.customer_keys k ON k.user_id = o.user_id
  LEFT JOIN products p ON p.product_id = i.product_id;

CREATE OR REPLACE VIEW analytics.products WITH (security_barrier) AS
SELECT p.product_id, p.name, c.name AS category, p.price, p.stock_quantity, p.is_active
  FROM products p LEFT JOIN categories c USING (category_id);

-- Paid revenue per day and category; days with fewer than k customers in
-- a category are left out.
CREATE OR REPLACE VIEW analytics.revenue_by_day_category WITH (security_barrier) AS
SELECT (o.created_at AT TIME ZONE 'UTC')::date AS day, coalesce(c.name, 'uncategorised') AS category,
       count(DISTINCT o.order_id) AS orders, count(DISTINCT o.user_id) AS customers, sum(i.total_price) AS revenue
  FROM orders o
  JOIN order_items i USING (order_id)
  LEFT JOIN products p ON p.product_id = i.product_id
  LEFT JOIN categories c ON c.category_id = p.category_id
 WHERE o.payment_status = 'paid' AND o.status NOT IN ('cancelled', 'refunded')
 GROUP BY 1, 2
HAVING count(DISTINCT o.user_id) >= (SELECT min_group_size FROM analytics_private.settings);

CREATE OR REPLACE VIEW analytics.tier_distribution WITH (security_barrier) AS
SELECT tier, count(*) AS customers
  FROM (SELECT clerk_customer_tier(sum(total_amount) FILTER (WHERE payment_status = 'paid' AND status NOT IN ('cancelled', 'refunded'))) AS tier
          FROM orders GROUP BY user_id) t
 GROUP BY tier
HAVING count(*) >= (SELECT min_group_size FROM analytics_private.settings);

CREATE OR REPLACE VIEW analytics.coupon_performance WITH (security_barrier) AS
SELECT c.code, c.discount_type, count(*) AS redemptions, count(DISTINCT u.user_id) AS customers,
       sum(u.discount_applied) AS discount_total
  FROM coupon_usage u JOIN coupons c USING (coupon_id)
 GROUP BY c.code, c.discount_type
HAVING count(DISTINCT u.user_id) >= (SELECT min_group_size FROM analytics_private.settings);

-- A DBA's way to publish another table to BI under the same rules:
-- the user column becomes the pseudonym; timestamps are cut to the day;
-- text, JSON and other columns that may hold personal data are left out
-- unless named in keep (which the DBA vouches for). Re-running replaces
-- the view.
CREATE OR REPLACE FUNCTION analytics_publish(source regclass, user_column name DEFAULT 'user_id',
                                             keep name[] DEFAULT '{}') RETURNS text
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    view_name text := (SELECT relname FROM pg_class WHERE oid = source);
    cols text[] := '{}';
    a record;
BEGIN
    FOR a IN SELECT attname, atttypid::regtype AS t FROM pg_attribute
              WHERE attrelid = source AND attnum > 0 AND NOT attisdropped ORDER BY attnum LOOP
        IF a.attname = user_column THEN
            cols := cols || format('%s AS customer',
                format($e$'c_' || left(encode(clerk_hmac_sha256(convert_to(src.%I::text, 'UTF8'), (SELECT pseudonym_key FROM analytics_private.settings)), 'hex'), 24)$e$, a.attname));
        ELSIF a.attname = ANY (keep) THEN
            cols := cols || format('src.%I', a.attname);
        ELSIF a.t IN ('timestamptz'::regtype, 'timestamp'::regtype) THEN
            cols := cols || format($e$date_trunc('day', src.%I)::date AS %I$e$, a.attname, a.attname);
        ELSIF a.t IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype, 'numeric'::regtype, 'real'::regtype,
                      'double precision'::regtype, 'boolean'::regtype, 'date'::regtype) THEN
            cols := cols || format('src.%I', a.attname);
        END IF;  -- anything else (text, json, inet, ids of people…) stays out
    END LOOP;
    IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = source AND attname = user_column AND NOT attisdropped) THEN
        RAISE EXCEPTION 'column "%" does not exist in %', user_column, source USING ERRCODE = 'undefined_column';
    END IF;
    EXECUTE format('CREATE OR REPLACE VIEW analytics.%I WITH (security_barrier) AS SELECT %s FROM %s src',
                   view_name, array_to_string(cols, ', '), source);
    EXECUTE format('GRANT SELECT ON analytics.%I TO bi_reader', view_name);
    RETURN 'analytics.' || view_name;
END
$$;
REVOKE EXECUTE ON FUNCTION analytics_publish(regclass, name, name[]) FROM PUBLIC;

GRANT USAGE ON SCHEMA analytics TO bi_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO bi_reader;
