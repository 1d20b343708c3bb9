-- Report counters that cannot drift, retention, and a trigger that plans for today's data. Schema version 6.
--
-- report_state_deltas (003) is summed by the summary; it must equal count(*) of property_records and
-- devices grouped the same way. Every row change goes through the statement triggers, so the ways
-- the sum could still part from the tables are the statements that rewrite report_state_deltas
-- as a whole: folding (compaction), truncation and a recount. Each rewrites from a snapshot, and a
-- fold committed under it (its folded row invisible to the snapshot) would survive beside a recount:
-- counted twice. So all three take report_state_deltas IN SHARE ROW EXCLUSIVE MODE first (it
-- conflicts with itself and with the ROW EXCLUSIVE every writer's trigger holds until commit):
-- they wait for every open writer, and then see every delta there is.
--
-- Function bodies are E'' strings (they once spelled semicolons as octal escapes, for a runner that
-- split files on them).

-- Recounts the counters from the tables under a lock that keeps writers out meanwhile, and returns
-- the keys whose summed deltas differed from the tables before (what was repaired).
-- Called by migrations (below) and `twin-reconciler repair-counters` (repairReportCounters).
CREATE OR REPLACE FUNCTION repair_report_counters()
  RETURNS TABLE (kind text, path text, state text, counted bigint, actual bigint) LANGUAGE plpgsql AS E'
BEGIN
  LOCK TABLE property_records, devices, report_state_deltas IN SHARE ROW EXCLUSIVE MODE;
  RETURN QUERY
    WITH counted AS (
      SELECT d.kind, d.path, d.state, sum(d.n)::bigint AS n FROM report_state_deltas d GROUP BY d.kind, d.path, d.state
    ), actual AS (
      SELECT ''record''::text AS kind, r.path, r.state, count(*)::bigint AS n FROM property_records r GROUP BY r.path, r.state
      UNION ALL
      SELECT ''device'', '''', v.state, count(*) FROM devices v GROUP BY v.state
    )
    SELECT coalesce(c.kind, a.kind), coalesce(c.path, a.path), coalesce(c.state, a.state), coalesce(c.n, 0), coalesce(a.n, 0)
      FROM counted c FULL JOIN actual a ON a.kind = c.kind AND a.path = c.path AND a.state = c.state
     WHERE coalesce(c.n, 0) <> coalesce(a.n, 0);
  DELETE FROM report_state_deltas;
  INSERT INTO report_state_deltas (kind, path, state, n)
    SELECT ''record'', r.path, r.state, count(*) FROM property_records r GROUP BY r.path, r.state
    UNION ALL
    SELECT ''device'', '''', v.state, count(*) FROM devices v GROUP BY v.state;
END';

-- Folds the deltas into one row per key (the retention timer calls it: never a GET). Returns the
-- number of delta rows folded.
CREATE OR REPLACE FUNCTION compact_report_counters() RETURNS bigint LANGUAGE plpgsql AS E'
DECLARE
  folded bigint;
BEGIN
  LOCK TABLE report_state_deltas IN SHARE ROW EXCLUSIVE MODE;
  WITH gone AS (DELETE FROM report_state_deltas RETURNING kind, path, state, n),
       kept AS (
         INSERT INTO report_state_deltas (kind, path, state, n)
         SELECT kind, path, state, sum(n) FROM gone GROUP BY kind, path, state HAVING sum(n) <> 0
       )
  SELECT count(*) INTO folded FROM gone;
  RETURN folded;
END';

-- 003's trigger functions again, with TRUNCATE under the same lock (a truncation that deleted the
-- deltas beside an uncommitted fold would leave the folded row behind).
CREATE OR REPLACE FUNCTION report_count_records() RETURNS trigger LANGUAGE plpgsql AS E'
BEGIN
  IF TG_OP = ''INSERT'' THEN
    INSERT INTO report_state_deltas (kind, path, state, n)
      SELECT ''record'', path, state, count(*) FROM report_new GROUP BY path, state;
  ELSIF TG_OP = ''DELETE'' THEN
    INSERT INTO report_state_deltas (kind, path, state, n)
      SELECT ''record'', path, state, -count(*) FROM report_old GROUP BY path, state;
  ELSIF TG_OP = ''UPDATE'' THEN
    INSERT INTO report_state_deltas (kind, path, state, n)
      SELECT ''record'', path, state, sum(n) FROM (
        SELECT path, state, 1 AS n FROM report_new UNION ALL SELECT path, state, -1 FROM report_old
      ) t GROUP BY path, state HAVING sum(n) <> 0;
  ELSE
    LOCK TABLE report_state_deltas IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM report_state_deltas WHERE kind = ''record'';
  END IF;
  RETURN NULL;
END';

CREATE OR REPLACE FUNCTION report_count_devices() RETURNS trigger LANGUAGE plpgsql AS E'
BEGIN
  IF TG_OP = ''INSERT'' THEN
    INSERT INTO report_state_deltas (kind, path, state, n)
      SELECT ''device'', '''', state, count(*) FROM report_new GROUP BY state;
  ELSIF TG_OP = ''DELETE'' THEN
    INSERT INTO report_state_deltas (kind, path, state, n)
      SELECT ''device'', '''', state, -count(*) FROM report_old GROUP BY state;
  ELSIF TG_OP = ''UPDATE'' THEN
    INSERT INTO report_state_deltas (kind, path, state, n)
      SELECT ''device'', '''', state, sum(n) FROM (
        SELECT state, 1 AS n FROM report_new UNION ALL SELECT state, -1 FROM report_old
      ) t GROUP BY state HAVING sum(n) <> 0;
  ELSE
    LOCK TABLE report_state_deltas IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM report_state_deltas WHERE kind = ''device'';
  END IF;
  RETURN NULL;
END';

-- Time-to-compliance rows (003), planned at every run: PL/pgSQL keeps the plan of a static statement
-- made at its first use, and one made when property_records was nearly empty (a hash join over a
-- scan of every record) stays for the life of the connection. EXECUTE plans against the batch in
-- hand (the transition table's row count is known to the planner) and today's table statistics.
-- Same statement, same rows.
CREATE OR REPLACE FUNCTION report_time_compliance() RETURNS trigger LANGUAGE plpgsql AS E'
BEGIN
  EXECUTE $sql$
    INSERT INTO report_compliance_times (at, device_id, module_id, path, seconds)
    SELECT h.at, h.device_id, h.module_id, h.path, greatest(0, extract(epoch FROM h.at - r.desired_since))
      FROM report_new h
      JOIN property_records r ON r.device_id = h.device_id AND r.module_id = h.module_id AND r.path_key = md5(h.path)
                             AND r.desired_version = h.desired_version
     WHERE h.to_state = ''compliant''
  $sql$;
  RETURN NULL;
END';

-- The counting triggers again, on whatever tables bear these names now: a migration between 003 and
-- this one that rebuilt a table (copy and rename) would have left it without them, and the
-- counters would part from it at its first write.
CREATE OR REPLACE TRIGGER report_count_records_insert AFTER INSERT ON property_records
  REFERENCING NEW TABLE AS report_new FOR EACH STATEMENT EXECUTE FUNCTION report_count_records();
CREATE OR REPLACE TRIGGER report_count_records_update AFTER UPDATE ON property_records
  REFERENCING OLD TABLE AS report_old NEW TABLE AS report_new FOR EACH STATEMENT EXECUTE FUNCTION report_count_records();
CREATE OR REPLACE TRIGGER report_count_records_delete AFTER DELETE ON property_records
  REFERENCING OLD TABLE AS report_old FOR EACH STATEMENT EXECUTE FUNCTION report_count_records();
CREATE OR REPLACE TRIGGER report_count_records_truncate AFTER TRUNCATE ON property_records
  FOR EACH STATEMENT EXECUTE FUNCTION report_count_records();
CREATE OR REPLACE TRIGGER report_count_devices_insert AFTER INSERT ON devices
  REFERENCING NEW TABLE AS report_new FOR EACH STATEMENT EXECUTE FUNCTION report_count_devices();
CREATE OR REPLACE TRIGGER report_count_devices_update AFTER UPDATE ON devices
  REFERENCING OLD TABLE AS report_old NEW TABLE AS report_new FOR EACH STATEMENT EXECUTE FUNCTION report_count_devices();
CREATE OR REPLACE TRIGGER report_count_devices_delete AFTER DELETE ON devices
  REFERENCING OLD TABLE AS report_old FOR EACH STATEMENT EXECUTE FUNCTION report_count_devices();
CREATE OR REPLACE TRIGGER report_count_devices_truncate AFTER TRUNCATE ON devices
  FOR EACH STATEMENT EXECUTE FUNCTION report_count_devices();
CREATE OR REPLACE TRIGGER report_time_compliance_insert AFTER INSERT ON property_history
  REFERENCING NEW TABLE AS report_new FOR EACH STATEMENT EXECUTE FUNCTION report_time_compliance();

-- Retention (pruneRetention) deletes dead letters by age in chunks: each chunk an index range.
CREATE INDEX IF NOT EXISTS dead_letters_received_at_idx ON dead_letters (received_at);

-- Stores whose counters drifted before this version heal on upgrade.
SELECT count(*) FROM repair_report_counters();
