-- Shared by the schema tests (pg_regress runs them in order, in one
-- database where pg_clerk and sql/*.sql are installed, twice over).

CREATE SCHEMA regress;
GRANT USAGE ON SCHEMA regress TO PUBLIC;
-- The SQLSTATE, message and DETAIL a statement fails with, or 'ok'.
CREATE FUNCTION regress.error_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    -- DETAIL shown, except a constraint's "Failing row contains (…)" (ids, times).
    IF detail LIKE 'Failing row contains%' THEN
        detail := NULL;
    END IF;
    RETURN SQLSTATE || ': ' || SQLERRM || coalesce(' [' || nullif(detail, '') || ']', '');
END
$$;

-- Acts, for the rest of the transaction, as the proxy would for a Clerk
-- user: the token's claims, and role `authenticated`, or `clerk_staff` for
-- the shop's staff, as the proxy's db-staff-role decides: an application
-- role other than customer (metadata, or the staff organization's role),
-- or a template's permissions claim.
CREATE FUNCTION regress.act_as(claims text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('request.jwt.claims', claims, true);
    IF coalesce(app_role(), 'customer') <> 'customer'
       OR (jsonb_typeof(claims::jsonb -> 'permissions') = 'array' AND jsonb_array_length(claims::jsonb -> 'permissions') > 0) THEN
        SET LOCAL ROLE clerk_staff;
    ELSE
        SET LOCAL ROLE authenticated;
    END IF;
END
$$;
-- How many rows a statement returned or changed, or the SQLSTATE it failed with.
CREATE FUNCTION regress.rows_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE stmt;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n::text;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA regress TO PUBLIC;

-- The shop's staff organization (shop_settings): while org_shop is the
-- active organization, its members' org role is their application role.
UPDATE shop_settings SET staff_org_id = 'org_shop';

-- The schema applied twice is the same as once (every file is guarded):
SELECT count(*) AS policies FROM pg_policies WHERE schemaname = 'public';
SELECT count(*) AS audit_triggers FROM pg_trigger WHERE tgname LIKE '%\_audit';
SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
 WHERE relnamespace = 'public'::regnamespace
   AND relname IN ('cart', 'orders', 'order_items', 'product_reviews', 'wishlist', 'coupon_usage', 'audit_log', 'projects')
 ORDER BY relname;
