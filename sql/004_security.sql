-- Who may do what. The proxy logs in as `authenticator` and switches to
-- `anon` (no token) or `authenticated` (a verified Clerk token); rows are
-- then decided by RLS with current_clerk_user(). The SECURITY DEFINER
-- functions of 003_logic.sql run as the schema owner, which must be a
-- superuser or have BYPASSRLS. Safe to re-run.

GRANT USAGE ON SCHEMA public TO anon, authenticated;
-- Time a request may take, per role, in this database: clerk-proxy applies
-- a role's own settings to each of its requests (as PostgREST does), so an
-- anonymous caller cannot hold a connection for long with an expensive
-- read (an embed fanning out over a large table, say). lock_timeout: a
-- request queued behind another's row locks (place_order's FOR UPDATE,
-- the per-user locks of the cart and of redeem_coupon) gives up after 2 s
-- (55P03) instead of holding a pooled connection until statement_timeout.
DO $$
BEGIN
    EXECUTE format('ALTER ROLE anon IN DATABASE %I SET statement_timeout = %L', current_database(), '3s');
    EXECUTE format('ALTER ROLE authenticated IN DATABASE %I SET statement_timeout = %L', current_database(), '8s');
    EXECUTE format('ALTER ROLE clerk_staff IN DATABASE %I SET statement_timeout = %L', current_database(), '8s');
    EXECUTE format('ALTER ROLE authenticated IN DATABASE %I SET lock_timeout = %L', current_database(), '2s');
    EXECUTE format('ALTER ROLE clerk_staff IN DATABASE %I SET lock_timeout = %L', current_database(), '2s');
END
$$;
-- The proxy has verified the token before the transaction starts; the
-- API roles have no use for verifying one again (POST /rpc/clerk_authenticate
-- would answer with the extension's configuration errors). A role that
-- uses verified mode directly is granted EXECUTE by name.
REVOKE EXECUTE ON FUNCTION clerk_authenticate(text) FROM PUBLIC, anon, authenticated;
-- The extension's setup helpers are the DBA's (this file runs them as a
-- superuser): as RPCs they only answered "must be owner" or described
-- tables to anyone. Nothing is granted back to the API roles. (The
-- identity functions, the id types' functions and the pure business and
-- HMAC functions the triggers and views use stay public.)
REVOKE EXECUTE ON FUNCTION clerk_apply_policies(regclass, name, text), clerk_owner_condition(regclass, name, regtype, text),
    clerk_enable_rls(regclass, name), clerk_enable_org_rls(regclass, name), clerk_random_bytes(integer)
    FROM PUBLIC, anon, authenticated;
-- No temporary objects for anyone but the owner and superusers: the API
-- roles have no use for them, so none can sit in pg_temp waiting for a
-- function whose search_path is not pinned (those of sql/ all are).
DO $$
BEGIN
    EXECUTE format('REVOKE TEMP ON DATABASE %I FROM PUBLIC', current_database());
END
$$;

-- The catalogue: everyone reads (active products); products:write may
-- do anything. Policies are permissive, so a row passes if any allows it.
GRANT SELECT ON categories TO anon, authenticated;
-- REVOKE first drops the column grants earlier versions made on products.
REVOKE SELECT ON products FROM anon, authenticated;
GRANT SELECT ON products TO anon, authenticated;
GRANT INSERT, UPDATE, DELETE ON categories, products TO authenticated;
SELECT clerk_apply_policies('categories', 'catalogue_write', '(SELECT has_permission(''products:write''))');
SELECT clerk_apply_policies('products', 'catalogue_write', '(SELECT has_permission(''products:write''))');
-- Staff policies (has_permission()) apply to clerk_staff only: anonymous
-- and customer requests never plan or run them (has_permission() would be
-- false for them anyway; OR-ed with an owner condition it keeps the planner
-- from using the owner's index, so a customer's read cost grew with the
-- whole table). staff_only() moves clerk_apply_policies' four policies.
CREATE OR REPLACE FUNCTION pg_temp.staff_only(tbl regclass, prefix text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    cmd text;
BEGIN
    FOREACH cmd IN ARRAY ARRAY['select', 'insert', 'update', 'delete'] LOOP
        EXECUTE format('ALTER POLICY %I ON %s TO clerk_staff', prefix || '_' || cmd, tbl);
    END LOOP;
END
$$;
SELECT pg_temp.staff_only('categories', 'catalogue_write');
SELECT pg_temp.staff_only('products', 'catalogue_write');
DROP POLICY IF EXISTS catalogue_read ON categories;
CREATE POLICY catalogue_read ON categories FOR SELECT USING (true);
DROP POLICY IF EXISTS catalogue_read ON products;
CREATE POLICY catalogue_read ON products FOR SELECT USING (is_active);
-- Costs (the shop's margin): products:write only; anonymous callers have
-- no privilege on the table, customers see no rows and write none.
REVOKE ALL ON product_costs FROM PUBLIC, anon;
GRANT SELECT, INSERT, UPDATE, DELETE ON product_costs TO authenticated;
SELECT clerk_apply_policies('product_costs', 'costs_staff', '(SELECT has_permission(''products:write''))');
SELECT pg_temp.staff_only('product_costs', 'costs_staff');

-- A user's own rows: cart, wishlist, reviews (approved reviews are public
-- through the public_reviews view below, without who wrote them).
-- Inserts and updates name columns, never the generated keys (cart_id,
-- wishlist_id, review_id, project_id below): a key chosen by a client just
-- above the sequence would make other users' next inserts fail with a
-- unique violation. Upserts work on the natural keys (the cart's
-- user_id, product_id, selected_attributes; the wishlist's user_id,
-- product_id). REVOKE also drops earlier column grants, so this re-runs.
GRANT SELECT, DELETE ON cart, wishlist, product_reviews TO authenticated;
REVOKE INSERT, UPDATE ON cart, wishlist FROM authenticated;
GRANT INSERT (user_id, product_id, quantity, selected_attributes),
      UPDATE (user_id, product_id, quantity, selected_attributes) ON cart TO authenticated;
GRANT INSERT (user_id, product_id), UPDATE (user_id, product_id) ON wishlist TO authenticated;
REVOKE SELECT ON product_reviews FROM anon;
SELECT clerk_enable_rls('cart');
SELECT clerk_enable_rls('wishlist');
SELECT clerk_enable_rls('product_reviews');
-- Approved reviews for everyone, without the reviewer's Clerk user id and
-- order id (product_reviews itself shows authors their own rows and
-- moderators all). Runs as its owner, past product_reviews' RLS.
DROP POLICY IF EXISTS reviews_public_read ON product_reviews;
CREATE OR REPLACE VIEW public_reviews WITH (security_barrier) AS
SELECT r.review_id, r.product_id, r.rating, r.title, r.comment, r.is_verified_purchase, r.created_at, r.updated_at
  FROM product_reviews r
 WHERE r.is_approved;
REVOKE ALL ON public_reviews FROM PUBLIC;
GRANT SELECT ON public_reviews TO anon, authenticated;
-- Authors write their review's content only (review_guard in 003 computes
-- is_verified_purchase and keeps approval to moderators, who may update any
-- review with reviews:moderate).
REVOKE INSERT, UPDATE ON product_reviews FROM authenticated;
GRANT INSERT (product_id, order_id, rating, title, comment),
      UPDATE (order_id, rating, title, comment, is_approved) ON product_reviews TO authenticated;
DROP POLICY IF EXISTS reviews_moderate_read ON product_reviews;
CREATE POLICY reviews_moderate_read ON product_reviews FOR SELECT TO clerk_staff USING ((SELECT has_permission('reviews:moderate')));
DROP POLICY IF EXISTS reviews_moderate ON product_reviews;
CREATE POLICY reviews_moderate ON product_reviews FOR UPDATE TO clerk_staff
    USING ((SELECT has_permission('reviews:moderate'))) WITH CHECK ((SELECT has_permission('reviews:moderate')));

-- Orders: created by place_order(), discounted by redeem_coupon(); read by
-- their owner and by staff with orders:read; changed only with orders:write.
GRANT SELECT, UPDATE ON orders TO authenticated;
GRANT SELECT ON order_items, coupon_usage TO authenticated;
SELECT clerk_apply_policies('orders', 'orders_write', '(SELECT has_permission(''orders:write''))');
SELECT pg_temp.staff_only('orders', 'orders_write');
DROP POLICY IF EXISTS orders_read ON orders;
DROP POLICY IF EXISTS orders_own ON orders;
CREATE POLICY orders_own ON orders FOR SELECT TO authenticated USING (user_id = (SELECT current_clerk_user()));
DROP POLICY IF EXISTS orders_staff_read ON orders;
CREATE POLICY orders_staff_read ON orders FOR SELECT TO clerk_staff USING ((SELECT has_permission('orders:read')));

-- Order lines are visible exactly when their order is (the orders policy
-- applies inside the sub-select).
ALTER TABLE order_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE order_items FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS order_items_via_order ON order_items;
CREATE POLICY order_items_via_order ON order_items FOR SELECT
    USING (EXISTS (SELECT FROM orders o WHERE o.order_id = order_items.order_id));

ALTER TABLE coupon_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE coupon_usage FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS coupon_usage_own ON coupon_usage;
CREATE POLICY coupon_usage_own ON coupon_usage FOR SELECT TO authenticated USING (user_id = (SELECT current_clerk_user()));
DROP POLICY IF EXISTS coupon_usage_staff ON coupon_usage;
CREATE POLICY coupon_usage_staff ON coupon_usage FOR SELECT TO clerk_staff USING ((SELECT has_permission('orders:read')));

-- Coupons: codes are not listed to customers (redeem_coupon checks them);
-- staff with coupons:read / coupons:write manage them.
GRANT SELECT, INSERT, UPDATE, DELETE ON coupons TO authenticated;
SELECT clerk_apply_policies('coupons', 'coupons_write', '(SELECT has_permission(''coupons:write''))');
SELECT pg_temp.staff_only('coupons', 'coupons_write');
DROP POLICY IF EXISTS coupons_read ON coupons;
CREATE POLICY coupons_read ON coupons FOR SELECT TO clerk_staff USING ((SELECT has_permission('coupons:read')));

-- The audit log: append-only. Rows come from the audit trigger (running as
-- the owner); staff with audit:read may read; only the owner may change or
-- delete rows (retention, GDPR erasure), through its own policy since RLS
-- is forced on the owner too.
REVOKE ALL ON audit_log FROM PUBLIC, anon, authenticated;
GRANT SELECT ON audit_log TO authenticated;
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS audit_read ON audit_log;
CREATE POLICY audit_read ON audit_log FOR SELECT TO clerk_staff USING ((SELECT has_permission('audit:read')));
DO $$
BEGIN
    DROP POLICY IF EXISTS audit_owner ON audit_log;
    EXECUTE format('CREATE POLICY audit_owner ON audit_log TO %s USING (true) WITH CHECK (true)',
                   (SELECT relowner::regrole FROM pg_class WHERE oid = 'audit_log'::regclass));
END
$$;

-- role_permissions and shop_settings are read through has_permission()
-- and app_role() only.
REVOKE ALL ON role_permissions, shop_settings, coupon_redemption_failures FROM PUBLIC, anon, authenticated;
ALTER TABLE shop_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE coupon_redemption_failures ENABLE ROW LEVEL SECURITY;

-- B2B projects: the active organization's rows (not the key: see cart).
GRANT SELECT, DELETE ON projects TO authenticated;
REVOKE INSERT, UPDATE ON projects FROM authenticated;
-- created_by is the creator (project_guard in 003), never a member's choice.
GRANT INSERT (org_id, name, description), UPDATE (org_id, name, description) ON projects TO authenticated;
SELECT clerk_enable_org_rls('projects');

GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO authenticated;
GRANT EXECUTE ON FUNCTION customer_tier(), customer_tier_of(clerk_user_id), redeem_coupon(text, bigint),
    place_order(text, text, jsonb, jsonb, text, text), cancel_order(bigint), has_permission(text), app_role() TO authenticated;
REVOKE EXECUTE ON FUNCTION customer_tier(), customer_tier_of(clerk_user_id), redeem_coupon(text, bigint),
    place_order(text, text, jsonb, jsonb, text, text), cancel_order(bigint) FROM PUBLIC, anon;
-- The scheduler's: the owner, or the sync worker's role.
REVOKE EXECUTE ON FUNCTION expire_pending_orders(interval, integer), release_pending_orders(bigint[])
    FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION expire_pending_orders(interval, integer) TO clerk_sync;
