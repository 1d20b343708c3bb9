-- The least-privilege role the app signs in as, schema version 8: data, never schema.
--
-- twin_reconciler_app (NOLOGIN) may read and write the rows of every table, use the sequences and
-- call the functions in this schema, and nothing else: no CREATE, DROP, ALTER or TRUNCATE, and only
-- SELECT on schema_migrations (the app reads it at start to see that nothing is pending). The
-- migrating user (the schema's owner: the Entra admin in Azure, postgres locally) keeps DDL, and
-- default privileges give the role the same rights on what that user's later migrations create.
-- In Azure the deployment makes the app's managed identity a member of this role (infra/), so the
-- app connects as itself and inherits exactly these rights.
--
-- Harmless wherever it runs: the role is cluster-wide, created only if missing (another database of
-- the cluster may create it at the same moment); a migrating user who may not create roles skips
-- this with a notice instead of failing the migration (grant the rights by hand then).
DO $$
DECLARE
  s text := quote_ident(current_schema());
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'twin_reconciler_app') THEN
    BEGIN
      CREATE ROLE twin_reconciler_app NOLOGIN;
    EXCEPTION
      WHEN duplicate_object OR unique_violation THEN
        NULL;
      WHEN insufficient_privilege THEN
        RAISE NOTICE 'twin_reconciler_app not created: % may not create roles. Create it and re-run these grants as an admin.', current_user;
        RETURN;
    END;
  END IF;

  EXECUTE format('GRANT USAGE ON SCHEMA %s TO twin_reconciler_app', s);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %s TO twin_reconciler_app', s);
  EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON TABLE %s.schema_migrations FROM twin_reconciler_app', s);
  EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %s TO twin_reconciler_app', s);
  EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %s TO twin_reconciler_app', s);

  -- Objects the migrating user creates in this schema later.
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %s GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO twin_reconciler_app', s);
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %s GRANT USAGE, SELECT ON SEQUENCES TO twin_reconciler_app', s);
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %s GRANT EXECUTE ON FUNCTIONS TO twin_reconciler_app', s);
END
$$;
