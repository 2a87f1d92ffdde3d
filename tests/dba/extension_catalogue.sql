-- Every object of the pg_clerk extension, one line each with what defines
-- it, in a stable order: two databases whose extension has the same
-- objects print the same lines. Used by tests/dba/versions.sh to compare
-- an updated install with a fresh one.
\pset format unaligned
\pset tuples_only on
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'pg_clerk'),
member AS (
    SELECT d.classid, d.objid, d.objsubid
      FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
),
-- Operator families' contents are not members themselves: list them too.
family_item AS (
    SELECT 'pg_amop'::regclass AS classid, o.oid AS objid, 0 AS objsubid
      FROM pg_amop o JOIN member m ON m.classid = 'pg_opfamily'::regclass AND m.objid = o.amopfamily
    UNION ALL
    SELECT 'pg_amproc'::regclass, p.oid, 0
      FROM pg_amproc p JOIN member m ON m.classid = 'pg_opfamily'::regclass AND m.objid = p.amprocfamily
)
SELECT pg_describe_object(o.classid, o.objid, o.objsubid) || ' | ' || coalesce(
         CASE o.classid
           WHEN 'pg_proc'::regclass THEN
             (SELECT CASE WHEN p.prokind = 'a' THEN format('aggregate %s', p.oid::regprocedure)
                          ELSE pg_get_functiondef(p.oid) END
                     || format(' acl=%s', p.proacl)
                FROM pg_proc p WHERE p.oid = o.objid)
           WHEN 'pg_type'::regclass THEN
             (SELECT format('in=%s out=%s recv=%s send=%s len=%s byval=%s align=%s storage=%s category=%s collation=%s analyze=%s',
                            t.typinput, t.typoutput, t.typreceive, t.typsend, t.typlen, t.typbyval, t.typalign,
                            t.typstorage, t.typcategory, t.typcollation, t.typanalyze)
                FROM pg_type t WHERE t.oid = o.objid)
           WHEN 'pg_operator'::regclass THEN
             (SELECT format('code=%s com=%s neg=%s rest=%s join=%s merges=%s hashes=%s',
                            op.oprcode, op.oprcom::regoperator, op.oprnegate::regoperator, op.oprrest, op.oprjoin,
                            op.oprcanmerge, op.oprcanhash)
                FROM pg_operator op WHERE op.oid = o.objid)
           WHEN 'pg_opclass'::regclass THEN
             (SELECT format('default=%s keytype=%s family=%s', c.opcdefault, c.opckeytype::regtype,
                            pg_describe_object('pg_opfamily'::regclass, c.opcfamily, 0))
                FROM pg_opclass c WHERE c.oid = o.objid)
           WHEN 'pg_cast'::regclass THEN
             (SELECT format('function=%s context=%s method=%s', c.castfunc::regprocedure, c.castcontext, c.castmethod)
                FROM pg_cast c WHERE c.oid = o.objid)
           ELSE ''
         END, '')
       || coalesce(' comment=' || obj_description(o.objid, o.classid::regclass::name), '')
  FROM (SELECT * FROM member UNION ALL SELECT * FROM family_item) o
 ORDER BY 1;
