-- pg_clerk 0.1.0 → 0.2.0 (ALTER EXTENSION pg_clerk UPDATE).
-- Adds the keyed-pseudonym functions (src/sql/pseudonym.sql), so the
-- reference schema needs no pgcrypto. tests/dba/versions.sh checks that an
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
