-- The Clerk id types: clerk_user_id ('user_…'), clerk_org_id ('org_…'),
-- clerk_session_id ('sess_…').
--
-- Stored exactly like text (a varlena of ASCII bytes, 1-byte header when
-- short). Input, binary receive and the cast from text validate; output,
-- send, comparison and hashing are byte-wise and shared by the three
-- types: ordering is memcmp (the same on every locale, and faster than a
-- collation-aware varchar compare), sorting gets bytea's abbreviated keys,
-- btree indexes deduplicate. See src/types.rs.
--
-- The three types are identical but for their names, so one loop defines
-- them; read `%1$s` as the type name.
DO $types$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['clerk_user_id', 'clerk_org_id', 'clerk_session_id'] LOOP
        EXECUTE format($ddl$
            CREATE TYPE %1$s;

            CREATE FUNCTION %1$s_in(cstring) RETURNS %1$s
                AS 'MODULE_PATHNAME', '%1$s_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
            CREATE FUNCTION %1$s_recv(internal) RETURNS %1$s
                AS 'MODULE_PATHNAME', '%1$s_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
            CREATE FUNCTION %1$s_out(%1$s) RETURNS cstring
                AS 'MODULE_PATHNAME', 'clerk_id_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
            CREATE FUNCTION %1$s_send(%1$s) RETURNS bytea
                AS 'MODULE_PATHNAME', 'clerk_id_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

            CREATE TYPE %1$s (
                INPUT = %1$s_in, OUTPUT = %1$s_out,
                RECEIVE = %1$s_recv, SEND = %1$s_send,
                INTERNALLENGTH = VARIABLE, ALIGNMENT = int4, STORAGE = extended,
                CATEGORY = 'S', COLLATABLE = false
            );
            COMMENT ON TYPE %1$s IS 'Clerk id, validated on input; byte-wise ordering';

            -- Reading as text returns the same bytes; writing from text
            -- validates and then reuses the text's bytes. %1$s('user_…')
            -- works as a cast too. The casts to text go through a function,
            -- not WITHOUT FUNCTION: see clerk_id_to_text in src/types.rs.
            CREATE FUNCTION %1$s(text) RETURNS %1$s
                AS 'MODULE_PATHNAME', '%1$s_from_text' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
            CREATE FUNCTION %1$s_to_text(%1$s) RETURNS text
                AS 'MODULE_PATHNAME', 'clerk_id_to_text' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
            CREATE CAST (%1$s AS text) WITH FUNCTION %1$s_to_text(%1$s) AS IMPLICIT;
            CREATE CAST (%1$s AS varchar) WITH FUNCTION %1$s_to_text(%1$s) AS ASSIGNMENT;
            CREATE CAST (text AS %1$s) WITH FUNCTION %1$s(text) AS ASSIGNMENT;
            CREATE CAST (varchar AS %1$s) WITH FUNCTION %1$s(text) AS ASSIGNMENT;

            -- LEAKPROOF (they cannot fail or reveal their arguments) so the
            -- planner may use them in index conditions under RLS.
            CREATE FUNCTION %1$s_eq(%1$s, %1$s) RETURNS bool AS 'MODULE_PATHNAME', 'clerk_id_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
            CREATE FUNCTION %1$s_ne(%1$s, %1$s) RETURNS bool AS 'MODULE_PATHNAME', 'clerk_id_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
            CREATE FUNCTION %1$s_lt(%1$s, %1$s) RETURNS bool AS 'MODULE_PATHNAME', 'clerk_id_lt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
            CREATE FUNCTION %1$s_le(%1$s, %1$s) RETURNS bool AS 'MODULE_PATHNAME', 'clerk_id_le' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
            CREATE FUNCTION %1$s_gt(%1$s, %1$s) RETURNS bool AS 'MODULE_PATHNAME', 'clerk_id_gt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
            CREATE FUNCTION %1$s_ge(%1$s, %1$s) RETURNS bool AS 'MODULE_PATHNAME', 'clerk_id_ge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
            CREATE FUNCTION %1$s_cmp(%1$s, %1$s) RETURNS int4 AS 'MODULE_PATHNAME', 'clerk_id_cmp' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
            CREATE FUNCTION %1$s_hash(%1$s) RETURNS int4 AS 'MODULE_PATHNAME', 'clerk_id_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
            CREATE FUNCTION %1$s_hash_extended(%1$s, int8) RETURNS int8 AS 'MODULE_PATHNAME', 'clerk_id_hash_extended' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
            CREATE FUNCTION %1$s_sortsupport(internal) RETURNS void AS 'MODULE_PATHNAME', 'clerk_id_sortsupport' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

            CREATE OPERATOR = (LEFTARG = %1$s, RIGHTARG = %1$s, FUNCTION = %1$s_eq,
                COMMUTATOR = =, NEGATOR = <>, RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES);
            CREATE OPERATOR <> (LEFTARG = %1$s, RIGHTARG = %1$s, FUNCTION = %1$s_ne,
                COMMUTATOR = <>, NEGATOR = =, RESTRICT = neqsel, JOIN = neqjoinsel);
            CREATE OPERATOR < (LEFTARG = %1$s, RIGHTARG = %1$s, FUNCTION = %1$s_lt,
                COMMUTATOR = >, NEGATOR = >=, RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
            CREATE OPERATOR <= (LEFTARG = %1$s, RIGHTARG = %1$s, FUNCTION = %1$s_le,
                COMMUTATOR = >=, NEGATOR = >, RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
            CREATE OPERATOR > (LEFTARG = %1$s, RIGHTARG = %1$s, FUNCTION = %1$s_gt,
                COMMUTATOR = <, NEGATOR = <=, RESTRICT = scalargtsel, JOIN = scalargtjoinsel);
            CREATE OPERATOR >= (LEFTARG = %1$s, RIGHTARG = %1$s, FUNCTION = %1$s_ge,
                COMMUTATOR = <=, NEGATOR = <, RESTRICT = scalargesel, JOIN = scalargejoinsel);

            CREATE OPERATOR CLASS %1$s_ops DEFAULT FOR TYPE %1$s USING btree AS
                OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
                FUNCTION 1 %1$s_cmp(%1$s, %1$s),
                FUNCTION 2 %1$s_sortsupport(internal),
                FUNCTION 4 btequalimage(oid);
            CREATE OPERATOR CLASS %1$s_hash_ops DEFAULT FOR TYPE %1$s USING hash AS
                OPERATOR 1 =,
                FUNCTION 1 %1$s_hash(%1$s),
                FUNCTION 2 %1$s_hash_extended(%1$s, int8);
        $ddl$, t);
    END LOOP;
END
$types$;
