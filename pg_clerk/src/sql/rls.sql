-- Policy helpers: one call gives a table the standard per-owner (or
-- per-organization) row level security.
--
-- The generated policies compare the column with `(SELECT current_clerk_user())`:
-- the sub-select makes it an InitPlan, evaluated once per statement, so an
-- index on the column is used and the function is not called per row.

-- ENABLE + FORCE RLS and (re)create four policies named <prefix>_select,
-- _insert, _update, _delete, all limited by `condition`. Idempotent.
CREATE FUNCTION clerk_apply_policies(tbl regclass, prefix name, condition text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    cmd text;
    policy name;
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
    FOREACH cmd IN ARRAY ARRAY['select', 'insert', 'update', 'delete'] LOOP
        policy := prefix || '_' || cmd;
        IF EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = tbl AND polname = policy) THEN
            EXECUTE format('DROP POLICY %I ON %s', policy, tbl);
        END IF;
        EXECUTE format('CREATE POLICY %I ON %s FOR %s %s', policy, tbl, upper(cmd),
            CASE cmd
                WHEN 'insert' THEN format('WITH CHECK (%s)', condition)
                WHEN 'update' THEN format('USING (%s) WITH CHECK (%s)', condition, condition)
                ELSE format('USING (%s)', condition)
            END);
    END LOOP;
END
$$;
COMMENT ON FUNCTION clerk_apply_policies(regclass, name, text) IS
    'ENABLE and FORCE RLS on a table and (re)create select/insert/update/delete policies with one condition';

-- `column = (SELECT <identity>)`, checking the column exists and has the
-- id type or a text type (compared as text).
CREATE FUNCTION clerk_owner_condition(tbl regclass, col name, id_type regtype, identity text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    col_type regtype;
BEGIN
    SELECT a.atttypid::regtype INTO col_type
      FROM pg_attribute a
     WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF col_type IS NULL THEN
        RAISE EXCEPTION 'column "%" does not exist in table %', col, tbl
            USING ERRCODE = 'undefined_column',
                  HINT = 'Pass the name of the column that holds the owner''s Clerk id.';
    ELSIF col_type = id_type THEN
        RETURN format('%I = (SELECT %s)', col, identity);
    ELSIF col_type IN ('text'::regtype, 'varchar'::regtype) THEN
        RETURN format('%I = (SELECT %s::text)', col, identity);
    END IF;
    RAISE EXCEPTION 'column "%" of table % has type %, not %', col, tbl, col_type, id_type
        USING ERRCODE = 'datatype_mismatch',
              HINT = format('Use %s (or text) for the column.', id_type);
END
$$;

CREATE FUNCTION clerk_enable_rls(tbl regclass, owner_column name DEFAULT 'user_id') RETURNS void
LANGUAGE sql AS $$
    SELECT @extschema@.clerk_apply_policies(tbl, 'clerk_owner',
        @extschema@.clerk_owner_condition(tbl, owner_column, '@extschema@.clerk_user_id', '@extschema@.current_clerk_user()'));
$$;
COMMENT ON FUNCTION clerk_enable_rls(regclass, name) IS
    'Row level security by owner: each Clerk user sees, inserts, updates and deletes only rows whose owner_column is them';

CREATE FUNCTION clerk_enable_org_rls(tbl regclass, org_column name DEFAULT 'org_id') RETURNS void
LANGUAGE sql AS $$
    SELECT @extschema@.clerk_apply_policies(tbl, 'clerk_org',
        @extschema@.clerk_owner_condition(tbl, org_column, '@extschema@.clerk_org_id', '@extschema@.current_clerk_org()'));
$$;
COMMENT ON FUNCTION clerk_enable_org_rls(regclass, name) IS
    'Row level security by organization: members of the active Clerk organization share its rows';
