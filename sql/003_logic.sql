-- Business logic that touches tables: triggers, permissions, tiers,
-- coupons, orders from the cart, the audit trail. Pure rules come from the
-- pg_clerk extension (clerk_order_number, clerk_customer_tier,
-- clerk_coupon_discount). Safe to re-run (CREATE OR REPLACE, guarded triggers).
--
-- Errors a client can cause are raised with PostgREST's 'PT<http status>'
-- SQLSTATEs (so clerk-proxy answers with that status), a message for
-- people and a stable machine-readable code in DETAIL.

-- Every function here pins its search_path (public, then pg_temp last), so
-- the caller's search_path cannot put other tables or functions in the way.
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

DO $triggers$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['categories', 'products', 'product_costs', 'cart', 'orders', 'product_reviews', 'coupons', 'projects'] LOOP
        IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = t::regclass AND tgname = t || '_set_updated_at') THEN
            EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION set_updated_at()',
                           t || '_set_updated_at', t);
        END IF;
    END LOOP;
END
$triggers$;

-- Order numbers: BEFORE INSERT (an AFTER trigger cannot change the row),
-- from a sequence (unique under any concurrency; a rolled-back insert
-- leaves a gap), year of the order's creation in UTC. Always assigned
-- here: a client cannot choose its own.
CREATE OR REPLACE FUNCTION assign_order_number() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    NEW.order_number := clerk_order_number(
        extract(year FROM NEW.created_at AT TIME ZONE 'UTC')::integer, nextval('order_number_seq'));
    RETURN NEW;
END
$$;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'orders'::regclass AND tgname = 'orders_assign_order_number') THEN
        CREATE TRIGGER orders_assign_order_number BEFORE INSERT ON orders
            FOR EACH ROW EXECUTE FUNCTION assign_order_number();
    END IF;
END
$$;

-- The caller's application role: public metadata "role" in the token
-- (a Clerk session-token template such as {"metadata": "{{user.public_metadata}}"}),
-- else, only while the active organization is the staff organization of
-- shop_settings, its role without the "org:" prefix, else 'customer' for
-- any signed-in user. Never unsafe_metadata: users can write that. The role
-- in any other organization grants nothing here (any Clerk user can create
-- an organization and be its admin); it scopes only that organization's
-- own rows (projects).
CREATE OR REPLACE FUNCTION app_role() RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    claims jsonb := current_clerk_claims();
BEGIN
    RETURN coalesce(
        nullif(claims #>> '{metadata,role}', ''),
        nullif(claims #>> '{public_metadata,role}', ''),
        CASE WHEN current_clerk_org() = (SELECT s.staff_org_id FROM shop_settings s)
             THEN nullif(substring(current_clerk_org_role() FROM '^org:(.+)$'), '') END,
        CASE WHEN current_clerk_user() IS NOT NULL THEN 'customer' END);
END
$$;

-- A permission of the caller, from what users cannot write themselves:
--   * a top-level "permissions" array in the token (a session-token
--     template claim, like metadata);
--   * the Clerk permissions of the staff organization, only while it is
--     the active one (v1 org_permissions, v2 o.per/fea), as the bare key or
--     as org:<key> (Clerk's custom permission org:products:write grants
--     products:write);
--   * the application role's entry in role_permissions.
-- (clerk_has_permission() alone would trust any organization's permissions.)
-- PL/pgSQL, not SQL: a SECURITY DEFINER SQL function is planned again at
-- every statement that calls it, PL/pgSQL keeps its plans for the session
-- (0.19 ms against 0.04 ms per statement on a pooled connection).
CREATE OR REPLACE FUNCTION has_permission(permission text) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    claims jsonb := current_clerk_claims();
BEGIN
    RETURN coalesce(jsonb_typeof(claims -> 'permissions') = 'array'
                    AND (claims -> 'permissions') ? has_permission.permission, false)
        OR coalesce(current_clerk_org() = (SELECT s.staff_org_id FROM shop_settings s)
                    AND (clerk_has_permission(has_permission.permission)
                         OR clerk_has_permission('org:' || has_permission.permission)), false)
        OR EXISTS (SELECT FROM role_permissions rp
                    WHERE rp.role = app_role() AND rp.permission IN (has_permission.permission, '*'));
END
$$;

-- Money a user actually spent: paid orders that were not cancelled or refunded.
CREATE OR REPLACE FUNCTION customer_total_spent(customer clerk_user_id) RETURNS numeric
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT coalesce(sum(total_amount), 0) FROM orders
     WHERE user_id = customer AND payment_status = 'paid' AND status NOT IN ('cancelled', 'refunded')
$$;
REVOKE EXECUTE ON FUNCTION customer_total_spent(clerk_user_id) FROM PUBLIC;

-- The caller's tier.
CREATE OR REPLACE FUNCTION customer_tier() RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF current_clerk_user() IS NULL THEN
        RAISE EXCEPTION 'sign in to see your customer tier' USING ERRCODE = 'PT401', DETAIL = 'not_signed_in';
    END IF;
    RETURN clerk_customer_tier(customer_total_spent(current_clerk_user()));
END
$$;

-- Any customer's tier, for staff (orders:read).
CREATE OR REPLACE FUNCTION customer_tier_of(customer clerk_user_id) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT has_permission('orders:read') THEN
        RAISE EXCEPTION 'reading another customer''s tier needs the orders:read permission'
            USING ERRCODE = 'PT403', DETAIL = 'permission_denied';
    END IF;
    RETURN clerk_customer_tier(customer_total_spent(customer));
END
$$;

-- Probing coupon codes: redeem_coupon() answers PT429 once the caller has
-- made shop_settings.coupon_failure_limit failed attempts (default 10) in
-- coupon_failure_window (default 10 minutes).
--
-- A failed attempt raises, and the proxy's one transaction per request
-- then rolls back: a failure written in that transaction would vanish
-- with it. So failures are written in a transaction of their own, over a
-- dblink connection back to this database (an autonomous transaction),
-- which commits whatever the request's transaction does. dblink is
-- installed (when available and we are a superuser) in schema
-- shop_private, which API roles cannot use, so it is no new RPC. The
-- connection: shop_settings.coupon_failure_dsn, else this database as the
-- schema owner over the first Unix socket directory (a superuser owner
-- needs no password; pg_hba must accept it, e.g. `local all postgres peer`
-- or trust). A non-superuser owner needs a DSN with a password. Without
-- dblink, or when the connection fails, failures are logged (LOG) and not
-- counted: the limit is then off, nothing else changes.
CREATE SCHEMA IF NOT EXISTS shop_private;
REVOKE ALL ON SCHEMA shop_private FROM PUBLIC;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'dblink')
       AND EXISTS (SELECT FROM pg_available_extensions WHERE name = 'dblink')
       AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        CREATE EXTENSION dblink SCHEMA shop_private;
    END IF;
END
$$;

-- Records one failed attempt in its own transaction; true when recorded.
-- Also drops the user's failures older than the window.
CREATE OR REPLACE FUNCTION record_coupon_failure(who clerk_user_id, reason text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    dblink_schema  name := (SELECT e.extnamespace::regnamespace::name FROM pg_extension e WHERE e.extname = 'dblink');
    dsn            text;
    win            interval;
    socket_dir     text := nullif(btrim(split_part(current_setting('unix_socket_directories'), ',', 1)), '');
BEGIN
    IF dblink_schema IS NULL THEN
        RAISE LOG 'pg_clerk: failed coupon attempt of % not counted: the dblink extension is not installed', who;
        RETURN false;
    END IF;
    SELECT s.coupon_failure_dsn, s.coupon_failure_window INTO dsn, win FROM shop_settings s;
    dsn := coalesce(dsn, format('dbname=''%s'' user=''%s'' host=''%s'' port=%s application_name=pg_clerk_coupon_failures',
        replace(replace(current_database(), '\', '\\'), '''', '\'''),
        replace(replace(current_user, '\', '\\'), '''', '\'''),
        replace(replace(coalesce(socket_dir, 'localhost'), '\', '\\'), '''', '\'''),
        current_setting('port')));
    EXECUTE format('SELECT %I.dblink_exec($1, $2)', dblink_schema) USING dsn, format(
        'DELETE FROM public.coupon_redemption_failures WHERE user_id = %1$L AND failed_at < now() - %3$L::interval; '
        'INSERT INTO public.coupon_redemption_failures (user_id, reason) VALUES (%1$L, %2$L)', who, reason, win);
    RETURN true;
EXCEPTION WHEN OTHERS THEN
    RAISE LOG 'pg_clerk: failed coupon attempt of % not counted: %', who, SQLERRM;
    RETURN false;
END
$$;
REVOKE EXECUTE ON FUNCTION record_coupon_failure(clerk_user_id, text) FROM PUBLIC;

-- Applies a coupon to one of the caller's pending orders, atomically:
-- the coupon row is locked, so usage_limit and one-use-per-user hold under
-- any number of concurrent redemptions. Returns the updated order.
CREATE OR REPLACE FUNCTION redeem_coupon(code text, order_id bigint) RETURNS orders
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me      clerk_user_id := current_clerk_user();
    wanted  text := upper(btrim(redeem_coupon.code));
    o       orders;
    c       coupons;
    amount  numeric;
    lim     integer;
    win     interval;
    reason  text;
BEGIN
    IF me IS NULL THEN
        RAISE EXCEPTION 'sign in to redeem a coupon' USING ERRCODE = 'PT401', DETAIL = 'not_signed_in';
    END IF;
    -- One attempt per user at a time: without this, N parallel calls all
    -- count the same failures and all go on to try a code. The lock is
    -- held until this transaction ends, and a failure is committed (over
    -- dblink) before the failing call raises and rolls back, so the next
    -- waiter's count (a new snapshot: the proxy's transactions are READ
    -- COMMITTED) includes it. Waiters beyond lock_timeout (004) give up
    -- with 55P03 before trying any code.
    PERFORM pg_advisory_xact_lock(hashtextextended('pg_clerk coupon_failures ' || me, 0));
    SELECT s.coupon_failure_limit, s.coupon_failure_window INTO lim, win FROM shop_settings s;
    IF (SELECT count(*) FROM coupon_redemption_failures f WHERE f.user_id = me AND f.failed_at > now() - win) >= lim THEN
        RAISE EXCEPTION 'too many failed coupon attempts; try again later' USING ERRCODE = 'PT429',
            DETAIL = 'too_many_coupon_attempts', HINT = format('at most %s failed attempts per %s', lim, win);
    END IF;
    -- Every refusal below is counted (record_coupon_failure), then raised.
    BEGIN
    SELECT * INTO o FROM orders WHERE orders.order_id = redeem_coupon.order_id AND orders.user_id = me FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % not found', redeem_coupon.order_id USING ERRCODE = 'PT404', DETAIL = 'order_not_found';
    END IF;
    IF o.status <> 'pending' OR o.payment_status <> 'pending' THEN
        RAISE EXCEPTION 'order % is % and can no longer take a coupon', o.order_number, o.status
            USING ERRCODE = 'PT409', DETAIL = 'order_not_pending';
    END IF;
    IF EXISTS (SELECT FROM coupon_usage u WHERE u.order_id = o.order_id) THEN
        RAISE EXCEPTION 'order % already has a coupon', o.order_number USING ERRCODE = 'PT409', DETAIL = 'order_has_coupon';
    END IF;

    SELECT * INTO c FROM coupons WHERE coupons.code = wanted FOR UPDATE;
    IF NOT FOUND OR wanted = '' THEN
        RAISE EXCEPTION 'coupon % does not exist', coalesce(nullif(wanted, ''), '(empty)')
            USING ERRCODE = 'PT404', DETAIL = 'coupon_not_found';
    END IF;
    IF NOT c.is_active THEN
        RAISE EXCEPTION 'coupon % is not active', c.code USING ERRCODE = 'PT410', DETAIL = 'coupon_inactive';
    END IF;
    IF c.starts_at > now() THEN
        RAISE EXCEPTION 'coupon % is valid from %', c.code, to_char(c.starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
            USING ERRCODE = 'PT422', DETAIL = 'coupon_not_started';
    END IF;
    IF c.expires_at <= now() THEN
        RAISE EXCEPTION 'coupon % expired on %', c.code, to_char(c.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
            USING ERRCODE = 'PT410', DETAIL = 'coupon_expired';
    END IF;
    IF o.subtotal < c.minimum_amount THEN
        RAISE EXCEPTION 'coupon % needs a subtotal of at least %; this order''s is %', c.code, c.minimum_amount, o.subtotal
            USING ERRCODE = 'PT422', DETAIL = 'coupon_minimum_not_met';
    END IF;
    IF c.usage_limit IS NOT NULL AND c.used_count >= c.usage_limit THEN
        RAISE EXCEPTION 'coupon % has been used up', c.code USING ERRCODE = 'PT409', DETAIL = 'coupon_exhausted';
    END IF;
    IF EXISTS (SELECT FROM coupon_usage u WHERE u.coupon_id = c.coupon_id AND u.user_id = me) THEN
        RAISE EXCEPTION 'you have already used coupon %', c.code USING ERRCODE = 'PT409', DETAIL = 'coupon_already_used';
    END IF;

    amount := clerk_coupon_discount(c.discount_type, c.discount_value, o.subtotal, c.maximum_discount);
    INSERT INTO coupon_usage (coupon_id, user_id, order_id, discount_applied) VALUES (c.coupon_id, me, o.order_id, amount);
    UPDATE coupons SET used_count = used_count + 1 WHERE coupon_id = c.coupon_id;
    UPDATE orders
       SET discount_amount = amount,
           total_amount = o.subtotal - amount + o.tax_amount + o.shipping_cost
     WHERE orders.order_id = o.order_id
    RETURNING * INTO o;
    RETURN o;
    EXCEPTION WHEN SQLSTATE 'PT404' OR SQLSTATE 'PT409' OR SQLSTATE 'PT410' OR SQLSTATE 'PT422' THEN
        GET STACKED DIAGNOSTICS reason = PG_EXCEPTION_DETAIL;
        PERFORM record_coupon_failure(me, reason);
        RAISE;
    END;
END
$$;

-- Pending orders hold their stock until paid, so an unpaid one must not
-- hold it for ever (a customer could put all the stock in a cart, call
-- place_order and never pay). An order is released (cancelled, its stock
-- put back, its coupon use given back) when its customer cancels it
-- (cancel_order), or when it is older than shop_settings.pending_order_ttl
-- (expire_pending_orders, run by a scheduler and by every place_order).
-- Unpaid: payment_status 'pending' or 'failed'.
--
-- Locks, here as in place_order and redeem_coupon: orders first (the
-- expiry skips locked ones, so it never waits on an order), then products
-- in id order, then coupons in id order, so none of them deadlock.

-- Releases orders the caller has locked and checked (owner only).
CREATE OR REPLACE FUNCTION release_pending_orders(ids bigint[]) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    released integer;
BEGIN
    PERFORM FROM products p WHERE p.product_id IN (SELECT i.product_id FROM order_items i WHERE i.order_id = ANY (ids))
      ORDER BY p.product_id FOR UPDATE;
    UPDATE products p SET stock_quantity = p.stock_quantity + back.quantity
      FROM (SELECT i.product_id, sum(i.quantity) AS quantity FROM order_items i
             WHERE i.order_id = ANY (ids) AND i.product_id IS NOT NULL GROUP BY i.product_id) back
     WHERE p.product_id = back.product_id;
    PERFORM FROM coupons c WHERE c.coupon_id IN (SELECT u.coupon_id FROM coupon_usage u WHERE u.order_id = ANY (ids))
      ORDER BY c.coupon_id FOR UPDATE;
    UPDATE coupons c SET used_count = c.used_count - back.uses
      FROM (SELECT u.coupon_id, count(*) AS uses FROM coupon_usage u WHERE u.order_id = ANY (ids) GROUP BY u.coupon_id) back
     WHERE c.coupon_id = back.coupon_id;
    DELETE FROM coupon_usage u WHERE u.order_id = ANY (ids);
    UPDATE orders o SET status = 'cancelled' WHERE o.order_id = ANY (ids);
    GET DIAGNOSTICS released = ROW_COUNT;
    RETURN released;
END
$$;
REVOKE EXECUTE ON FUNCTION release_pending_orders(bigint[]) FROM PUBLIC;

-- The caller cancels one of their pending, unpaid orders (staff with
-- orders:write: anyone's). Returns the cancelled order.
CREATE OR REPLACE FUNCTION cancel_order(order_id bigint) RETURNS orders
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me  clerk_user_id := current_clerk_user();
    o   orders;
BEGIN
    IF me IS NULL THEN
        RAISE EXCEPTION 'sign in to cancel an order' USING ERRCODE = 'PT401', DETAIL = 'not_signed_in';
    END IF;
    SELECT * INTO o FROM orders WHERE orders.order_id = cancel_order.order_id
       AND (orders.user_id = me OR has_permission('orders:write')) FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % not found', cancel_order.order_id USING ERRCODE = 'PT404', DETAIL = 'order_not_found';
    END IF;
    IF o.status <> 'pending' OR o.payment_status NOT IN ('pending', 'failed') THEN
        RAISE EXCEPTION 'order % is % (payment %) and can no longer be cancelled', o.order_number, o.status, o.payment_status
            USING ERRCODE = 'PT409', DETAIL = 'order_not_cancellable';
    END IF;
    PERFORM release_pending_orders(ARRAY[o.order_id]);
    SELECT * INTO o FROM orders WHERE orders.order_id = o.order_id;
    RETURN o;
END
$$;

-- Cancels pending, unpaid orders created more than older_than ago
-- (default: shop_settings.pending_order_ttl), at most max_orders of them,
-- and returns how many. For a scheduler running as the owner (pg_cron:
-- SELECT cron.schedule('*/5 * * * *', 'SELECT expire_pending_orders()'))
-- or as clerk_sync; not for API callers.
CREATE OR REPLACE FUNCTION expire_pending_orders(older_than interval DEFAULT NULL, max_orders integer DEFAULT 1000)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    ttl  interval := coalesce(older_than, (SELECT s.pending_order_ttl FROM shop_settings s), interval '30 minutes');
    ids  bigint[];
BEGIN
    SELECT array_agg(x.order_id) INTO ids FROM (
        SELECT o.order_id FROM orders o
         WHERE o.status = 'pending' AND o.payment_status IN ('pending', 'failed') AND o.created_at < now() - ttl
         ORDER BY o.order_id LIMIT max_orders
           FOR UPDATE SKIP LOCKED) x;
    IF ids IS NULL THEN
        RETURN 0;
    END IF;
    RETURN release_pending_orders(ids);
END
$$;
REVOKE EXECUTE ON FUNCTION expire_pending_orders(interval, integer) FROM PUBLIC;

-- Turns the caller's cart into an order, all or nothing: expired pending
-- orders released first (their stock may be what this order needs),
-- products locked in id order (no deadlocks between concurrent orders),
-- stock checked and decremented, names and prices snapshotted into
-- order_items, the cart emptied. Returns the new order.
CREATE OR REPLACE FUNCTION place_order(billing_name text, billing_email text, billing_address jsonb,
                                       shipping_address jsonb DEFAULT NULL, shipping_method text DEFAULT NULL,
                                       notes text DEFAULT NULL) RETURNS orders
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me       clerk_user_id := current_clerk_user();
    expired  bigint[];
    short    record;
    o        orders;
    -- The cart, read once and locked: every statement below works on this
    -- copy, so a cart changed concurrently (a PATCH between the subtotal
    -- and the items) cannot make the order's lines disagree with its total.
    lines    cart[];
BEGIN
    IF me IS NULL THEN
        RAISE EXCEPTION 'sign in to place an order' USING ERRCODE = 'PT401', DETAIL = 'not_signed_in';
    END IF;
    SELECT array_agg(c ORDER BY c.cart_id) INTO lines
      FROM (SELECT * FROM cart WHERE cart.user_id = me ORDER BY cart_id FOR UPDATE) c;
    IF lines IS NULL THEN
        RAISE EXCEPTION 'your cart is empty' USING ERRCODE = 'PT422', DETAIL = 'cart_empty';
    END IF;
    -- Stock held by one customer's unpaid orders is bounded.
    IF (SELECT count(*) FROM orders p
         WHERE p.user_id = me AND p.status = 'pending' AND p.payment_status IN ('pending', 'failed')
           AND p.created_at >= now() - (SELECT s.pending_order_ttl FROM shop_settings s))
       >= (SELECT s.max_pending_orders FROM shop_settings s) THEN
        RAISE EXCEPTION 'you already have % unpaid orders: pay or cancel one first', (SELECT s.max_pending_orders FROM shop_settings s)
            USING ERRCODE = 'PT409', DETAIL = 'too_many_pending_orders';
    END IF;
    -- Expired orders (a few, skipping any another transaction holds),
    -- then every product either touches, in one ordered pass.
    SELECT array_agg(x.order_id) INTO expired FROM (
        SELECT e.order_id FROM orders e
         WHERE e.status = 'pending' AND e.payment_status IN ('pending', 'failed')
           AND e.created_at < now() - (SELECT s.pending_order_ttl FROM shop_settings s)
         ORDER BY e.order_id LIMIT 100
           FOR UPDATE SKIP LOCKED) x;
    PERFORM FROM products p
      WHERE p.product_id IN (SELECT l.product_id FROM unnest(lines) l
                             UNION SELECT i.product_id FROM order_items i WHERE i.order_id = ANY (expired))
      ORDER BY p.product_id FOR UPDATE;
    IF expired IS NOT NULL THEN
        PERFORM release_pending_orders(expired);
    END IF;

    SELECT p.product_id, p.name, p.stock_quantity AS available, need.quantity AS wanted, p.is_active INTO short
      FROM (SELECT l.product_id, sum(l.quantity) AS quantity FROM unnest(lines) l GROUP BY l.product_id) need
      JOIN products p USING (product_id)
     WHERE p.stock_quantity < need.quantity OR NOT p.is_active
     ORDER BY p.product_id LIMIT 1;
    IF FOUND THEN
        IF NOT short.is_active THEN  -- as if it did not exist: no name, no stock
            RAISE EXCEPTION 'product % not found', short.product_id USING ERRCODE = 'PT404', DETAIL = 'product_not_found';
        END IF;
        RAISE EXCEPTION 'not enough stock for %: % wanted, % available', short.name, short.wanted, short.available
            USING ERRCODE = 'PT409', DETAIL = 'insufficient_stock';
    END IF;

    INSERT INTO orders (user_id, billing_name, billing_email, billing_address, shipping_address, shipping_method,
                        notes, subtotal, total_amount)
    SELECT me, place_order.billing_name, place_order.billing_email, place_order.billing_address,
           place_order.shipping_address, place_order.shipping_method, place_order.notes, s.subtotal, s.subtotal
      FROM (SELECT sum(p.price * c.quantity) AS subtotal
              FROM unnest(lines) c JOIN products p USING (product_id)) s
    RETURNING * INTO o;

    INSERT INTO order_items (order_id, product_id, product_name, product_sku, selected_attributes,
                             quantity, unit_price, total_price)
    SELECT o.order_id, p.product_id, p.name, p.sku, c.selected_attributes, c.quantity, p.price, p.price * c.quantity
      FROM unnest(lines) c JOIN products p USING (product_id)
     ORDER BY c.cart_id;

    UPDATE products p SET stock_quantity = p.stock_quantity - need.quantity
      FROM (SELECT l.product_id, sum(l.quantity) AS quantity FROM unnest(lines) l GROUP BY l.product_id) need
     WHERE p.product_id = need.product_id;
    DELETE FROM cart WHERE cart_id IN (SELECT l.cart_id FROM unnest(lines) l);
    RETURN o;
END
$$;

-- The audit trail: who (current_clerk_user()), what, before/after, and the
-- client address and user agent from request.headers (set by clerk-proxy;
-- JSON with lower-case names). Written as the table owner, so requests
-- need no rights on audit_log.
CREATE OR REPLACE FUNCTION audit_row_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    headers  jsonb;
    ip       inet;
    pk       text := TG_ARGV[0];
BEGIN
    -- Silent while a GDPR erasure runs (005_clerk_sync.sql): it would copy
    -- the data being erased into the log.
    IF current_setting('app.erasure_in_progress', true) = 'on' THEN
        RETURN NULL;
    END IF;
    BEGIN
        headers := nullif(current_setting('request.headers', true), '')::jsonb;
    EXCEPTION WHEN others THEN
        headers := NULL;  -- malformed headers must not block the change
    END;
    BEGIN
        ip := btrim(split_part(coalesce(headers ->> 'x-forwarded-for', headers ->> 'x-real-ip'), ',', 1))::inet;
    EXCEPTION WHEN others THEN
        ip := NULL;
    END;
    INSERT INTO audit_log (user_id, action, resource_type, resource_id, old_data, new_data, ip_address, user_agent)
    VALUES (current_clerk_user(), TG_OP, TG_TABLE_NAME,
            coalesce(to_jsonb(NEW) ->> pk, to_jsonb(OLD) ->> pk),
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END,
            ip, headers ->> 'user-agent');
    RETURN NULL;
END
$$;

DO $audit$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('orders', 'order_id'), ('coupons', 'coupon_id'), ('products', 'product_id')) v(tbl, pk) LOOP
        IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = t.tbl::regclass AND tgname = t.tbl || '_audit') THEN
            EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %I FOR EACH ROW EXECUTE FUNCTION audit_row_change(%L)',
                           t.tbl || '_audit', t.tbl, t.pk);
        END IF;
    END LOOP;
END
$audit$;

-- Reviews written through the API: `is_verified_purchase` is computed (the
-- reviewer's own paid order containing the product), `order_id` must be one
-- of the reviewer's orders, and `is_approved` changes only with the
-- reviews:moderate permission; an author's edit of the text goes back to
-- moderation. A moderator changes nothing but `is_approved` on someone
-- else's review: the rating, title, comment and order stay the author's
-- (42501 review_content_not_yours). The owner's own maintenance (GDPR
-- erasure, imports) is trusted.
CREATE OR REPLACE FUNCTION review_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    moderator boolean;
    -- Columns that are not the author's words: moderation, and what the
    -- triggers compute.
    not_content constant text[] := ARRAY['is_approved', 'is_verified_purchase', 'updated_at'];
BEGIN
    IF current_user = (SELECT relowner::regrole::name FROM pg_class WHERE oid = TG_RELID)
       OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.user_id IS DISTINCT FROM current_clerk_user()
       AND to_jsonb(NEW) - not_content IS DISTINCT FROM to_jsonb(OLD) - not_content THEN
        RAISE EXCEPTION 'only the author may change a review''s rating, title, comment or order; a moderator may only set is_approved'
            USING ERRCODE = '42501', DETAIL = 'review_content_not_yours',
                  HINT = 'send is_approved alone to approve or withdraw the review';
    END IF;
    moderator := has_permission('reviews:moderate');
    IF NEW.order_id IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.order_id IS DISTINCT FROM OLD.order_id)
       AND NOT EXISTS (SELECT FROM orders o WHERE o.order_id = NEW.order_id AND o.user_id = NEW.user_id) THEN
        RAISE EXCEPTION 'order % is not one of the reviewer''s orders', NEW.order_id
            USING ERRCODE = '42501', DETAIL = 'review_order_not_yours';
    END IF;
    IF TG_OP = 'INSERT' OR NEW.order_id IS DISTINCT FROM OLD.order_id OR NEW.product_id IS DISTINCT FROM OLD.product_id THEN
        NEW.is_verified_purchase := NEW.order_id IS NOT NULL AND EXISTS (
            SELECT FROM orders o JOIN order_items i ON i.order_id = o.order_id
             WHERE o.order_id = NEW.order_id AND o.user_id = NEW.user_id
               AND o.payment_status = 'paid' AND i.product_id = NEW.product_id);
    ELSE
        NEW.is_verified_purchase := OLD.is_verified_purchase;
    END IF;
    IF NEW.is_approved AND (TG_OP = 'INSERT' OR NOT OLD.is_approved) AND NOT moderator THEN
        RAISE EXCEPTION 'reviews are approved by moderators'
            USING ERRCODE = '42501', DETAIL = 'review_approval_needs_moderator', HINT = 'needs the reviews:moderate permission';
    END IF;
    IF TG_OP = 'UPDATE' AND NOT moderator
       AND (NEW.rating, NEW.title, NEW.comment) IS DISTINCT FROM (OLD.rating, OLD.title, OLD.comment) THEN
        NEW.is_approved := false;
    END IF;
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER product_reviews_guard BEFORE INSERT OR UPDATE ON product_reviews
    FOR EACH ROW EXECUTE FUNCTION review_guard();

-- Cart and wishlist lines name active products only: an inactive (or
-- unknown) product is answered as not found (PT404), the same as one that
-- never existed, so unreleased products cannot be probed by id.
CREATE OR REPLACE FUNCTION require_active_product() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.product_id IS NOT DISTINCT FROM OLD.product_id THEN
        RETURN NEW;
    END IF;
    IF NOT EXISTS (SELECT FROM products p WHERE p.product_id = NEW.product_id AND p.is_active) THEN
        RAISE EXCEPTION 'product % not found', NEW.product_id USING ERRCODE = 'PT404', DETAIL = 'product_not_found';
    END IF;
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER cart_require_active_product BEFORE INSERT OR UPDATE OF product_id ON cart
    FOR EACH ROW EXECUTE FUNCTION require_active_product();
CREATE OR REPLACE TRIGGER wishlist_require_active_product BEFORE INSERT OR UPDATE OF product_id ON wishlist
    FOR EACH ROW EXECUTE FUNCTION require_active_product();

-- A cart holds at most shop_settings.max_cart_lines lines (default 100):
-- place_order locks and copies every line in one request, and distinct
-- selected_attributes make new lines, so an unbounded cart made each
-- place_order hold a pooled connection for seconds. An insert beyond the
-- cap is 409 PT409 cart_full, unless it names a line the cart already
-- has (an upsert that only updates it). Inserts into one user's cart
-- take turns (a transaction-scoped lock), so concurrent ones cannot all
-- pass the count at max_cart_lines - 1. The owner's own maintenance
-- (imports: many users' lines in one transaction) is trusted, as in
-- review_guard; the caller is the role the session switched to (the
-- `role` setting, which SECURITY DEFINER does not change), else the login role.
CREATE OR REPLACE FUNCTION limit_cart_lines() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    caller  name := CASE current_setting('role') WHEN 'none' THEN session_user ELSE current_setting('role') END;
    lim     integer;
BEGIN
    IF pg_has_role(caller, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
        RETURN NEW;
    END IF;
    lim := (SELECT s.max_cart_lines FROM shop_settings s);
    PERFORM pg_advisory_xact_lock(hashtextextended('pg_clerk cart ' || NEW.user_id, 0));
    IF (SELECT count(*) FROM (SELECT FROM cart c WHERE c.user_id = NEW.user_id LIMIT lim) n) >= lim
       AND NOT EXISTS (SELECT FROM cart c WHERE c.user_id = NEW.user_id AND c.product_id = NEW.product_id
                          AND c.selected_attributes IS NOT DISTINCT FROM NEW.selected_attributes) THEN
        RAISE EXCEPTION 'your cart is full (at most % lines): order or remove some lines first', lim
            USING ERRCODE = 'PT409', DETAIL = 'cart_full';
    END IF;
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER cart_size_limit BEFORE INSERT ON cart
    FOR EACH ROW EXECUTE FUNCTION limit_cart_lines();

-- projects.created_by is who created the project, not a member's claim
-- (there is no column grant for it either, 004_security.sql). The owner's
-- own maintenance (imports, GDPR erasure) is trusted.
CREATE OR REPLACE FUNCTION project_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF current_user = (SELECT relowner::regrole::name FROM pg_class WHERE oid = TG_RELID)
       OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN NEW;
    END IF;
    NEW.created_by := CASE TG_OP WHEN 'INSERT' THEN current_clerk_user() ELSE OLD.created_by END;
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER projects_guard BEFORE INSERT OR UPDATE ON projects
    FOR EACH ROW EXECUTE FUNCTION project_guard();
