-- Clerk → database: a small mirror of users, organizations and
-- memberships kept by Clerk's webhooks (applied through clerk-proxy's
-- POST /webhooks/clerk), and GDPR erasure. Safe to re-run.
--
-- Only what the application needs is mirrored (id, primary e-mail, name,
-- image); Clerk stays the source of truth for everything else.

CREATE TABLE IF NOT EXISTS clerk_users (
    user_id           clerk_user_id PRIMARY KEY,
    email             text,
    first_name        text,
    last_name         text,
    image_url         text,
    clerk_updated_at  timestamptz,
    synced_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS clerk_organizations (
    org_id     clerk_org_id PRIMARY KEY,
    name       text,
    slug       text,
    synced_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS clerk_org_memberships (
    org_id     clerk_org_id NOT NULL REFERENCES clerk_organizations ON DELETE CASCADE,
    user_id    clerk_user_id NOT NULL,
    role       text NOT NULL,
    synced_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX IF NOT EXISTS clerk_org_memberships_user_id_idx ON clerk_org_memberships (user_id);

-- Every delivery seen, by its svix-id: a replay is acknowledged, not re-applied.
CREATE TABLE IF NOT EXISTS clerk_webhook_events (
    svix_id     text PRIMARY KEY,
    event_type  text NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('applied', 'ignored', 'stale')),
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Out-of-order deliveries: Svix retries and does not keep order, so a
-- user.updated may arrive after a newer one, or after user.deleted. Each
-- mirrored row keeps the version it holds (clerk_updated_at: the
-- payload's updated_at, else the event's timestamp) and an event is
-- applied only when it is newer. Deleted organizations and erased users
-- leave a tombstone, so no late event brings them back; an erased user's
-- is a SHA-256 of the id (owner only), not the id itself.
ALTER TABLE clerk_organizations ADD COLUMN IF NOT EXISTS clerk_updated_at timestamptz;
ALTER TABLE clerk_org_memberships ADD COLUMN IF NOT EXISTS clerk_updated_at timestamptz;
CREATE TABLE IF NOT EXISTS clerk_erased_users (
    user_hash  bytea PRIMARY KEY,
    erased_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS clerk_deleted_organizations (
    org_id      clerk_org_id PRIMARY KEY,
    deleted_at  timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON clerk_erased_users, clerk_deleted_organizations FROM PUBLIC;
ALTER TABLE clerk_erased_users ENABLE ROW LEVEL SECURITY;
ALTER TABLE clerk_deleted_organizations ENABLE ROW LEVEL SECURITY;
-- 'stale': an event older than what is mirrored, or about an erased user
-- or a deleted organization.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint
                    WHERE conrelid = 'clerk_webhook_events'::regclass AND conname = 'clerk_webhook_events_outcome_check'
                      AND pg_get_constraintdef(oid) LIKE '%stale%') THEN
        ALTER TABLE clerk_webhook_events DROP CONSTRAINT IF EXISTS clerk_webhook_events_outcome_check;
        ALTER TABLE clerk_webhook_events ADD CONSTRAINT clerk_webhook_events_outcome_check
            CHECK (outcome IN ('applied', 'ignored', 'stale'));
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION clerk_user_hash(id clerk_user_id) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sha256(convert_to(id::text, 'UTF8'))
$$;

-- Events about one user (or organization) are applied one at a time, so
-- a user.updated cannot slip in between a concurrent erasure's check and
-- its delete.
CREATE OR REPLACE FUNCTION clerk_lock_object(kind text, id text) RETURNS void
LANGUAGE sql VOLATILE AS $$
    SELECT pg_advisory_xact_lock(hashtextextended('pg_clerk ' || kind || ' ' || id, 0))
$$;
REVOKE EXECUTE ON FUNCTION clerk_user_hash(clerk_user_id), clerk_lock_object(text, text) FROM PUBLIC;

-- Users read their own mirror row; members read their organizations.
GRANT SELECT ON clerk_users, clerk_organizations, clerk_org_memberships TO authenticated;
SELECT clerk_enable_rls('clerk_users');
SELECT clerk_apply_policies('clerk_organizations', 'clerk_org_members',
    'org_id IN (SELECT m.org_id FROM clerk_org_memberships m WHERE m.user_id = (SELECT current_clerk_user()))');
SELECT clerk_apply_policies('clerk_org_memberships', 'clerk_org_members', 'org_id = (SELECT current_clerk_org())');
REVOKE ALL ON clerk_webhook_events FROM PUBLIC;
ALTER TABLE clerk_webhook_events ENABLE ROW LEVEL SECURITY;


-- GDPR erasure, the work itself (owner only): cart, wishlist, mirror rows
-- and memberships deleted; orders, reviews and coupon usage anonymised
-- under a random tombstone id (unlinkable, but one per erased user so
-- statistics still count customers); amounts and dates kept; audit rows
-- about the user scrubbed; one audit entry for the erasure; the id's hash
-- kept in clerk_erased_users so no late webhook recreates the mirror row.
-- Returns the tombstone, or NULL when there was nothing left to erase
-- (idempotent).
CREATE OR REPLACE FUNCTION clerk_erase_user_data(target clerk_user_id) RETURNS clerk_user_id
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    tomb clerk_user_id := ('user_erased' || replace(gen_random_uuid()::text, '-', ''))::clerk_user_id;
    found_any boolean;
BEGIN
    -- Remembered first, even when nothing is left: a late user.created or
    -- user.updated must not recreate the user.
    PERFORM clerk_lock_object('user', target::text);
    INSERT INTO clerk_erased_users (user_hash) VALUES (clerk_user_hash(target)) ON CONFLICT DO NOTHING;
    SELECT EXISTS (SELECT FROM orders WHERE user_id = target) OR EXISTS (SELECT FROM cart WHERE user_id = target)
        OR EXISTS (SELECT FROM wishlist WHERE user_id = target) OR EXISTS (SELECT FROM product_reviews WHERE user_id = target)
        OR EXISTS (SELECT FROM clerk_users WHERE user_id = target) OR EXISTS (SELECT FROM clerk_org_memberships WHERE user_id = target)
        OR EXISTS (SELECT FROM coupon_usage WHERE user_id = target) OR EXISTS (SELECT FROM audit_log WHERE user_id = target)
        OR EXISTS (SELECT FROM coupon_redemption_failures WHERE user_id = target)
      INTO found_any;
    IF NOT found_any THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('app.erasure_in_progress', 'on', true);
    DELETE FROM cart WHERE user_id = target;
    DELETE FROM wishlist WHERE user_id = target;
    DELETE FROM clerk_org_memberships WHERE user_id = target;
    DELETE FROM clerk_users WHERE user_id = target;
    DELETE FROM coupon_redemption_failures WHERE user_id = target;
    UPDATE orders SET user_id = tomb, billing_name = 'erased', billing_email = 'erased@invalid',
                      billing_address = '{}', shipping_address = NULL, notes = NULL, payment_transaction_id = NULL
     WHERE user_id = target;
    UPDATE product_reviews SET user_id = tomb, title = NULL, comment = NULL WHERE user_id = target;
    UPDATE coupon_usage SET user_id = tomb WHERE user_id = target;
    UPDATE projects SET created_by = NULL WHERE created_by = target;
    IF to_regclass('clerk_metadata_outbox') IS NOT NULL THEN  -- 007_metadata_outbox.sql
        DELETE FROM clerk_metadata_outbox WHERE user_id = target;
    END IF;
    UPDATE audit_log SET user_id = NULL, old_data = NULL, new_data = NULL, ip_address = NULL, user_agent = NULL
     WHERE user_id = target OR old_data ->> 'user_id' = target::text OR new_data ->> 'user_id' = target::text;
    PERFORM set_config('app.erasure_in_progress', 'off', true);
    INSERT INTO audit_log (user_id, action, resource_type, resource_id) VALUES (NULL, 'DELETE', 'clerk_user_erasure', tomb::text);
    RETURN tomb;
END
$$;
REVOKE EXECUTE ON FUNCTION clerk_erase_user_data(clerk_user_id) FROM PUBLIC;

-- GDPR erasure on request, for the owner (psql) or staff with users:erase.
-- The caller is the role the session switched to (the `role` setting; a
-- SECURITY DEFINER function does not change it), else the login role.
CREATE OR REPLACE FUNCTION erase_clerk_user(target clerk_user_id) RETURNS clerk_user_id
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    caller name := CASE current_setting('role') WHEN 'none' THEN session_user ELSE current_setting('role') END;
BEGIN
    IF NOT (has_permission('users:erase')
            OR pg_has_role(caller, (SELECT relowner FROM pg_class WHERE oid = 'orders'::regclass), 'MEMBER')) THEN
        RAISE EXCEPTION 'erasing a user needs the users:erase permission' USING ERRCODE = 'PT403', DETAIL = 'permission_denied';
    END IF;
    RETURN clerk_erase_user_data(target);
END
$$;
REVOKE EXECUTE ON FUNCTION erase_clerk_user(clerk_user_id) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION erase_clerk_user(clerk_user_id) TO authenticated;

-- Applies one verified Clerk webhook event, once per svix-id. Returns
-- 'applied', 'ignored' (an event type we do not mirror), 'stale' (older
-- than what is mirrored, or about an erased user or a deleted
-- organization) or 'duplicate'.
CREATE OR REPLACE FUNCTION clerk_apply_webhook(svix_id text, event jsonb) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    kind     text := event ->> 'type';
    d        jsonb := event -> 'data';
    answer   text := 'applied';
    -- The version of the object this event carries (Clerk times are in ms).
    version  timestamptz;
    uid      clerk_user_id;
    org      clerk_org_id;
BEGIN
    IF kind IS NULL OR jsonb_typeof(d) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'not a Clerk webhook event: "type" and an object "data" are required'
            USING ERRCODE = 'PT400', DETAIL = 'bad_event';
    END IF;
    version := to_timestamp((CASE WHEN jsonb_typeof(d -> 'updated_at') = 'number' THEN d -> 'updated_at'
                                  WHEN jsonb_typeof(event -> 'timestamp') = 'number' THEN event -> 'timestamp' END
                             )::double precision / 1000);
    -- Claimed first: a concurrent delivery of the same id waits here, then
    -- sees it taken.
    INSERT INTO clerk_webhook_events (svix_id, event_type, outcome)
    VALUES (clerk_apply_webhook.svix_id, kind, 'applied') ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN 'duplicate';
    END IF;
    CASE kind
        WHEN 'user.created', 'user.updated' THEN
            uid := (d ->> 'id')::clerk_user_id;
            PERFORM clerk_lock_object('user', uid::text);
            IF EXISTS (SELECT FROM clerk_erased_users e WHERE e.user_hash = clerk_user_hash(uid)) THEN
                answer := 'stale';
            ELSE
                INSERT INTO clerk_users AS u (user_id, email, first_name, last_name, image_url, clerk_updated_at)
                VALUES (uid,
                        (SELECT a ->> 'email_address' FROM jsonb_array_elements(coalesce(d -> 'email_addresses', '[]')) a
                          WHERE a ->> 'id' = d ->> 'primary_email_address_id'),
                        d ->> 'first_name', d ->> 'last_name', d ->> 'image_url', version)
                ON CONFLICT (user_id) DO UPDATE
                   SET email = EXCLUDED.email, first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
                       image_url = EXCLUDED.image_url, clerk_updated_at = EXCLUDED.clerk_updated_at, synced_at = now()
                 WHERE u.clerk_updated_at IS NULL OR EXCLUDED.clerk_updated_at > u.clerk_updated_at;
                IF NOT FOUND THEN
                    answer := 'stale';
                END IF;
            END IF;
        WHEN 'user.deleted' THEN
            PERFORM clerk_erase_user_data((d ->> 'id')::clerk_user_id);
        WHEN 'organization.created', 'organization.updated' THEN
            org := (d ->> 'id')::clerk_org_id;
            PERFORM clerk_lock_object('organization', org::text);
            IF EXISTS (SELECT FROM clerk_deleted_organizations g WHERE g.org_id = org) THEN
                answer := 'stale';
            ELSE
                INSERT INTO clerk_organizations AS g (org_id, name, slug, clerk_updated_at)
                VALUES (org, d ->> 'name', d ->> 'slug', version)
                ON CONFLICT (org_id) DO UPDATE
                   SET name = EXCLUDED.name, slug = EXCLUDED.slug, clerk_updated_at = EXCLUDED.clerk_updated_at, synced_at = now()
                 WHERE g.clerk_updated_at IS NULL OR EXCLUDED.clerk_updated_at > g.clerk_updated_at;
                IF NOT FOUND THEN
                    answer := 'stale';
                END IF;
            END IF;
        WHEN 'organization.deleted' THEN
            org := (d ->> 'id')::clerk_org_id;
            PERFORM clerk_lock_object('organization', org::text);
            INSERT INTO clerk_deleted_organizations (org_id) VALUES (org) ON CONFLICT DO NOTHING;
            DELETE FROM clerk_organizations WHERE org_id = org;
        WHEN 'organizationMembership.created', 'organizationMembership.updated' THEN
            org := (d #>> '{organization,id}')::clerk_org_id;
            uid := (d #>> '{public_user_data,user_id}')::clerk_user_id;
            PERFORM clerk_lock_object('organization', org::text);
            PERFORM clerk_lock_object('user', uid::text);
            IF EXISTS (SELECT FROM clerk_deleted_organizations g WHERE g.org_id = org)
               OR EXISTS (SELECT FROM clerk_erased_users e WHERE e.user_hash = clerk_user_hash(uid)) THEN
                answer := 'stale';
            ELSE
                INSERT INTO clerk_organizations (org_id, name, slug)
                VALUES (org, d #>> '{organization,name}', d #>> '{organization,slug}')
                ON CONFLICT (org_id) DO NOTHING;
                INSERT INTO clerk_org_memberships AS m (org_id, user_id, role, clerk_updated_at)
                VALUES (org, uid, d ->> 'role', version)
                ON CONFLICT (org_id, user_id) DO UPDATE
                   SET role = EXCLUDED.role, clerk_updated_at = EXCLUDED.clerk_updated_at, synced_at = now()
                 WHERE m.clerk_updated_at IS NULL OR EXCLUDED.clerk_updated_at > m.clerk_updated_at;
                IF NOT FOUND THEN
                    answer := 'stale';
                END IF;
            END IF;
        WHEN 'organizationMembership.deleted' THEN
            DELETE FROM clerk_org_memberships
             WHERE org_id = (d #>> '{organization,id}')::clerk_org_id AND user_id = (d #>> '{public_user_data,user_id}')::clerk_user_id;
        ELSE
            answer := 'ignored';
            RAISE LOG 'clerk webhook %: event type % is not mirrored', svix_id, kind;
    END CASE;
    IF answer <> 'applied' THEN
        UPDATE clerk_webhook_events e SET outcome = answer WHERE e.svix_id = clerk_apply_webhook.svix_id;
    END IF;
    RETURN answer;
END
$$;
REVOKE EXECUTE ON FUNCTION clerk_apply_webhook(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION clerk_apply_webhook(text, jsonb) TO clerk_webhook;
