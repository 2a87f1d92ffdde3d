-- Keyed pseudonyms without pgcrypto (src/pseudonym.rs): the reference
-- schema's analytics views name customers by HMAC-SHA256 of their id under
-- a random key.

-- The same bytes as pgcrypto's hmac(data, key, 'sha256').
CREATE FUNCTION clerk_hmac_sha256(data bytea, key bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'clerk_hmac_sha256' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION clerk_hmac_sha256(bytea, bytea) IS
    'HMAC-SHA256 of data under key (RFC 2104; the same as pgcrypto''s hmac(data, key, ''sha256''))';

-- From the server's strong random source (pg_strong_random, as
-- gen_random_uuid() uses), 1 to 1024 bytes.
CREATE FUNCTION clerk_random_bytes(length integer) RETURNS bytea
    AS 'MODULE_PATHNAME', 'clerk_random_bytes' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION clerk_random_bytes(integer) IS
    'length (1 to 1024) bytes from the server''s strong random source, for keys';
