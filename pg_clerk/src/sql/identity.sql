-- The request's Clerk identity, for RLS policies and application SQL.
--
-- Source: claims verified by clerk_authenticate() in this transaction, else
-- the transaction-local request.jwt.claims (the PostgREST/Supabase
-- convention) unless pg_clerk.require_verified is on. NULL when anonymous;
-- malformed claims are an error (SQLSTATE 28000), never anonymous.
-- STABLE + PARALLEL SAFE; parsing happens once per distinct claims text.

CREATE FUNCTION current_clerk_user() RETURNS clerk_user_id
    AS 'MODULE_PATHNAME', 'current_clerk_user' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION current_clerk_user() IS 'Clerk user id (sub) of the current request; NULL when anonymous';

CREATE FUNCTION current_clerk_org() RETURNS clerk_org_id
    AS 'MODULE_PATHNAME', 'current_clerk_org' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION current_clerk_org() IS 'Active organization of the current request (v1 org_id, v2 o.id); NULL when none';

CREATE FUNCTION current_clerk_session() RETURNS clerk_session_id
    AS 'MODULE_PATHNAME', 'current_clerk_session' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION current_clerk_session() IS 'Clerk session id (sid) of the current request';

CREATE FUNCTION current_clerk_org_role() RETURNS text
    AS 'MODULE_PATHNAME', 'current_clerk_org_role' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION current_clerk_org_role() IS 'Role in the active organization, as a Clerk role key (org:admin) for v1 and v2 tokens';

CREATE FUNCTION current_clerk_claims() RETURNS jsonb
    AS 'MODULE_PATHNAME', 'current_clerk_claims' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION current_clerk_claims() IS 'All claims of the current request as jsonb; NULL when none';

CREATE FUNCTION clerk_has_permission(permission text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'clerk_has_permission' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION clerk_has_permission(text) IS 'Whether the request holds a permission key (org:invoices:create, or an entry of a custom permissions claim)';

-- VOLATILE: it changes the transaction's identity. PARALLEL UNSAFE: it sets
-- configuration, which a parallel worker cannot do.
CREATE FUNCTION clerk_authenticate(token text) RETURNS clerk_user_id
    AS 'MODULE_PATHNAME', 'clerk_authenticate' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION clerk_authenticate(text) IS 'Verifies a Clerk session token (RS256, pg_clerk.jwks) and makes its claims this transaction''s identity';
