-- pg_clerk 0.1.0 → 0.2.0 (ALTER EXTENSION pg_clerk UPDATE).
-- Adds the keyed-pseudonym functions (src/sql/pseudonym.sql), so the
-- reference schema needs no pgcrypto, and makes the casts of the id types
-- to text and varchar go through a function (PostgreSQL 18 failed on
-- `WHERE id::text LIKE …` over an index on id: see src/types.rs). tests/dba/versions.sh checks that an
-- updated 0.1.0 has exactly the objects of a fresh 0.2.0.
\echo Use "ALTER EXTENSION pg_clerk UPDATE TO '0.2.0'" to load this file. \quit

CREATE FUNCTION clerk_hmac_sha256(data bytea, key bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'clerk_hmac_sha256' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION clerk_hmac_sha256(bytea, bytea) IS
    'HMAC-SHA256 of data under key (RFC 2104; the same as pgcrypto''s hmac(data, key, ''sha256''))';

CREATE FUNCTION clerk_random_bytes(length integer) RETURNS bytea
    AS 'MODULE_PATHNAME', 'clerk_random_bytes' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION clerk_random_bytes(integer) IS
    'length (1 to 1024) bytes from the server''s strong random source, for keys';

DO $types$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['clerk_user_id', 'clerk_org_id', 'clerk_session_id'] LOOP
        EXECUTE format($ddl$
            CREATE FUNCTION %1$s_to_text(%1$s) RETURNS text
                AS 'MODULE_PATHNAME', 'clerk_id_to_text' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
            DROP CAST (%1$s AS text);
            DROP CAST (%1$s AS varchar);
            CREATE CAST (%1$s AS text) WITH FUNCTION %1$s_to_text(%1$s) AS IMPLICIT;
            CREATE CAST (%1$s AS varchar) WITH FUNCTION %1$s_to_text(%1$s) AS ASSIGNMENT;
        $ddl$, t);
    END LOOP;
END
$types$;
