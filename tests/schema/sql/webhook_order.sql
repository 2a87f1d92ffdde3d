-- Webhooks delivered out of order (issue 15, finding 4): Svix retries and
-- does not keep order. A user.updated delivered after user.deleted wrote
-- the erased user's name and e-mail back, and an older user.updated
-- overwrote a newer one. Events now apply only when newer than what is
-- mirrored (data.updated_at, else the event's timestamp), and erased users
-- and deleted organizations stay gone.

-- A user's events, as clerk-proxy applies them (role clerk_webhook).
CREATE FUNCTION regress.user_event(svix_id text, kind text, last_name text, updated_at bigint) RETURNS text
LANGUAGE sql AS $$
    SELECT clerk_apply_webhook(svix_id, jsonb_build_object('type', kind, 'timestamp', updated_at + 5,
        'data', jsonb_build_object('id', 'user_wo1', 'first_name', 'Olga', 'last_name', last_name, 'updated_at', updated_at,
            'primary_email_address_id', 'idn_o', 'email_addresses', jsonb_build_array(
                jsonb_build_object('id', 'idn_o', 'email_address', lower(last_name) || '@example.com')))))
$$;

-- Newer wins; an older or equal version is 'stale' and changes nothing.
BEGIN;
SET LOCAL ROLE clerk_webhook;
SELECT regress.user_event('msg_wo1', 'user.created', 'Orr', 1767225600000) AS created,
       regress.user_event('msg_wo2', 'user.updated', 'Orr-Third', 1767225900000) AS third,
       regress.user_event('msg_wo3', 'user.updated', 'Orr-Second', 1767225800000) AS second_late,
       regress.user_event('msg_wo4', 'user.updated', 'Orr-Again', 1767225900000) AS same_version;
COMMIT;
SELECT user_id, email, last_name, clerk_updated_at AT TIME ZONE 'UTC' AS clerk_updated_at FROM clerk_users WHERE user_id = 'user_wo1';
SELECT svix_id, event_type, outcome FROM clerk_webhook_events WHERE svix_id LIKE 'msg_wo%' ORDER BY svix_id;

-- Without data.updated_at, the event's own timestamp orders it.
BEGIN;
SET LOCAL ROLE clerk_webhook;
SELECT clerk_apply_webhook('msg_wo5', '{"type": "user.updated", "timestamp": 1767225700000,
    "data": {"id": "user_wo1", "first_name": "Olga", "last_name": "Orr-Old"}}') AS older_by_timestamp,
       clerk_apply_webhook('msg_wo6', '{"type": "user.updated", "timestamp": 1767226000000,
    "data": {"id": "user_wo1", "first_name": "Olga", "last_name": "Orr-Fourth"}}') AS newer_by_timestamp;
COMMIT;
SELECT last_name FROM clerk_users WHERE user_id = 'user_wo1';

-- The attack: user.deleted, then a user.updated (even a newer one) and a
-- replayed user.created arrive late. The user stays erased.
BEGIN;
SET LOCAL ROLE clerk_webhook;
SELECT clerk_apply_webhook('msg_wo7', '{"type": "user.deleted", "data": {"id": "user_wo1", "deleted": true}}') AS deleted,
       regress.user_event('msg_wo8', 'user.updated', 'Orr-Late', 1767226100000) AS late_update,
       regress.user_event('msg_wo9', 'user.created', 'Orr', 1767225600000) AS late_create;
SELECT clerk_apply_webhook('msg_wo10', '{"type": "organizationMembership.created", "data": {"role": "org:member", "updated_at": 1767226200000,
    "organization": {"id": "org_wo", "name": "Orr Ltd", "slug": "orr"}, "public_user_data": {"user_id": "user_wo1"}}}') AS late_membership;
COMMIT;
SELECT count(*) AS mirror_rows FROM clerk_users WHERE user_id = 'user_wo1';
SELECT count(*) AS memberships FROM clerk_org_memberships WHERE user_id = 'user_wo1';
-- Nothing anywhere names her; the tombstone is a hash, not her id.
DO $$
DECLARE
    t regclass;
    hits bigint;
BEGIN
    FOR t IN SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' LOOP
        EXECUTE format($q$SELECT count(*) FROM %s x WHERE x::text ~* '(user_wo1|olga|orr)'$q$, t) INTO hits;
        IF hits > 0 THEN
            RAISE WARNING '% rows of % still mention the erased user', hits, t;
        END IF;
    END LOOP;
END
$$;
SELECT count(*) AS tombstones FROM clerk_erased_users WHERE user_hash = clerk_user_hash('user_wo1');

-- An erasure on request (erase_clerk_user) is remembered the same way.
BEGIN;
SET LOCAL ROLE clerk_webhook;
SELECT clerk_apply_webhook('msg_wo11', '{"type": "user.created", "data": {"id": "user_wo2", "first_name": "Pia", "updated_at": 1767225600000}}') AS created;
COMMIT;
SELECT erase_clerk_user('user_wo2') IS NOT NULL AS erased;
BEGIN;
SET LOCAL ROLE clerk_webhook;
SELECT clerk_apply_webhook('msg_wo12', '{"type": "user.updated", "data": {"id": "user_wo2", "first_name": "Pia", "updated_at": 1767229999000}}') AS late_update;
COMMIT;
SELECT count(*) AS mirror_rows FROM clerk_users WHERE user_id = 'user_wo2';

-- Organizations: newer wins; deleted ones stay deleted.
BEGIN;
SET LOCAL ROLE clerk_webhook;
SELECT clerk_apply_webhook('msg_wo20', '{"type": "organization.created", "data": {"id": "org_wo2", "name": "Acme", "slug": "acme", "updated_at": 1767225600000}}') AS created,
       clerk_apply_webhook('msg_wo21', '{"type": "organization.updated", "data": {"id": "org_wo2", "name": "Acme Two", "slug": "acme", "updated_at": 1767225900000}}') AS renamed,
       clerk_apply_webhook('msg_wo22', '{"type": "organization.updated", "data": {"id": "org_wo2", "name": "Acme Old", "slug": "acme", "updated_at": 1767225800000}}') AS older;
COMMIT;
SELECT org_id, name FROM clerk_organizations WHERE org_id = 'org_wo2';
BEGIN;
SET LOCAL ROLE clerk_webhook;
SELECT clerk_apply_webhook('msg_wo23', '{"type": "organizationMembership.created", "data": {"role": "org:admin", "updated_at": 1767225900000,
    "organization": {"id": "org_wo2"}, "public_user_data": {"user_id": "user_wo3"}}}') AS membership,
       clerk_apply_webhook('msg_wo24', '{"type": "organizationMembership.updated", "data": {"role": "org:member", "updated_at": 1767225950000,
    "organization": {"id": "org_wo2"}, "public_user_data": {"user_id": "user_wo3"}}}') AS demoted,
       clerk_apply_webhook('msg_wo25', '{"type": "organizationMembership.updated", "data": {"role": "org:admin", "updated_at": 1767225920000,
    "organization": {"id": "org_wo2"}, "public_user_data": {"user_id": "user_wo3"}}}') AS older_promotion;
COMMIT;
SELECT org_id, user_id, role FROM clerk_org_memberships WHERE org_id = 'org_wo2';
BEGIN;
SET LOCAL ROLE clerk_webhook;
SELECT clerk_apply_webhook('msg_wo26', '{"type": "organization.deleted", "data": {"id": "org_wo2", "deleted": true}}') AS deleted,
       clerk_apply_webhook('msg_wo27', '{"type": "organization.updated", "data": {"id": "org_wo2", "name": "Acme Back", "updated_at": 1767229999000}}') AS late_update,
       clerk_apply_webhook('msg_wo28', '{"type": "organizationMembership.created", "data": {"role": "org:admin", "updated_at": 1767229999000,
    "organization": {"id": "org_wo2", "name": "Acme Back"}, "public_user_data": {"user_id": "user_wo3"}}}') AS late_membership;
COMMIT;
SELECT (SELECT count(*) FROM clerk_organizations WHERE org_id = 'org_wo2') AS orgs,
       (SELECT count(*) FROM clerk_org_memberships WHERE org_id = 'org_wo2') AS memberships;

-- The tombstones are the owner's only.
BEGIN;
SET LOCAL ROLE clerk_webhook;
SELECT regress.error_of($$SELECT * FROM clerk_erased_users$$) AS webhook_role,
       regress.error_of($$SELECT * FROM clerk_deleted_organizations$$) AS webhook_role_orgs;
ROLLBACK;
BEGIN;
SELECT regress.act_as('{"sub": "user_wo3", "metadata": {"role": "admin"}}');
SELECT regress.error_of($$SELECT * FROM clerk_erased_users$$) AS admin_user;
ROLLBACK;

DROP FUNCTION regress.user_event(text, text, text, bigint);
