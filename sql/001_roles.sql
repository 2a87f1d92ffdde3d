-- Roles of the reference deployment (safe to re-run).
--
--   authenticator  the proxy logs in as it; NOINHERIT, so it has no rights
--                  of its own and can only SET ROLE to the roles below
--   anon           requests without a token
--   authenticated  requests with a verified Clerk token (RLS decides rows)
--   bi_reader      BI tools: the analytics views only
--   clerk_webhook  what clerk-proxy becomes to apply a verified Clerk webhook
--   clerk_sync     what the metadata sync worker becomes to work the outbox
DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'bi_reader', 'clerk_webhook', 'clerk_sync'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticator') THEN
        CREATE ROLE authenticator LOGIN NOINHERIT;
    END IF;
END
$roles$;

GRANT anon, authenticated, clerk_webhook, clerk_sync TO authenticator;
