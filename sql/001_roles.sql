-- Roles of the reference deployment (safe to re-run).
--
--   authenticator  the proxy logs in as it; NOINHERIT, so it has no rights
--                  of its own and can only SET ROLE to the roles below
--   anon           requests without a token
--   authenticated  requests with a verified Clerk token (RLS decides rows)
--   clerk_staff    requests of the shop's staff (the proxy's db-role-map):
--                  a member of authenticated, and the only role the staff
--                  policies (has_permission()) apply to, so customers'
--                  requests meet plain, indexable owner conditions only
--   bi_reader      BI tools: the analytics views only
--   clerk_webhook  what clerk-proxy becomes to apply a verified Clerk webhook
--   clerk_sync     what the metadata sync worker becomes to work the outbox
DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'clerk_staff', 'bi_reader', 'clerk_webhook', 'clerk_sync'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticator') THEN
        CREATE ROLE authenticator LOGIN NOINHERIT;
    END IF;
END
$roles$;

GRANT authenticated TO clerk_staff;
GRANT anon, authenticated, clerk_staff, clerk_webhook, clerk_sync TO authenticator;
