-- Compliance reports, schema version 3: what keeps GET /api/compliance/summary fast on a large fleet.
--
-- Counting 1M property records by (path, state) on every request costs 100s of ms, so the stored
-- states are counted as they are written: statement-level triggers (one run per statement, not per
-- row: the reconcile path writes a whole batch in one INSERT ... ON CONFLICT) append the net change
-- per (path, state) to report_state_deltas. Append-only, so concurrent writers never wait on a
-- shared counter row; the summary sums the deltas and folds them into one row per key now and then
-- (compactReportCounters). Staleness is time-dependent and stays a query: the summary moves the
-- pending records (and devices) whose stale_at has passed to 'stale' through the partial indexes below.
--
-- The trigger bodies are E'' strings: they once spelled their semicolons as octal escapes, for a
-- runner that split files on semicolons (files now run whole).

-- No write may slip between the counts taken below and the triggers that keep them (the lock ends
-- with the migration's transaction).
LOCK TABLE property_records, devices, property_history IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE report_state_deltas (
  id     bigserial PRIMARY KEY,
  kind   text   NOT NULL,
  path   text   NOT NULL,
  state  text   NOT NULL,
  n      bigint NOT NULL
);
-- kind 'record': property records at `path` in stored `state`; kind 'device': devices (path '') in stored `state`.

INSERT INTO report_state_deltas (kind, path, state, n)
  SELECT 'record', path, state, count(*) FROM property_records GROUP BY path, state;
INSERT INTO report_state_deltas (kind, path, state, n)
  SELECT 'device', '', state, count(*) FROM devices GROUP BY state;

CREATE FUNCTION report_count_records() RETURNS trigger LANGUAGE plpgsql AS E'
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
    DELETE FROM report_state_deltas WHERE kind = ''record'';
  END IF;
  RETURN NULL;
END';

CREATE FUNCTION report_count_devices() RETURNS trigger LANGUAGE plpgsql AS E'
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
    DELETE FROM report_state_deltas WHERE kind = ''device'';
  END IF;
  RETURN NULL;
END';

CREATE TRIGGER report_count_records_insert AFTER INSERT ON property_records
  REFERENCING NEW TABLE AS report_new FOR EACH STATEMENT EXECUTE FUNCTION report_count_records();
CREATE TRIGGER report_count_records_update AFTER UPDATE ON property_records
  REFERENCING OLD TABLE AS report_old NEW TABLE AS report_new FOR EACH STATEMENT EXECUTE FUNCTION report_count_records();
CREATE TRIGGER report_count_records_delete AFTER DELETE ON property_records
  REFERENCING OLD TABLE AS report_old FOR EACH STATEMENT EXECUTE FUNCTION report_count_records();
CREATE TRIGGER report_count_records_truncate AFTER TRUNCATE ON property_records
  FOR EACH STATEMENT EXECUTE FUNCTION report_count_records();

CREATE TRIGGER report_count_devices_insert AFTER INSERT ON devices
  REFERENCING NEW TABLE AS report_new FOR EACH STATEMENT EXECUTE FUNCTION report_count_devices();
CREATE TRIGGER report_count_devices_update AFTER UPDATE ON devices
  REFERENCING OLD TABLE AS report_old NEW TABLE AS report_new FOR EACH STATEMENT EXECUTE FUNCTION report_count_devices();
CREATE TRIGGER report_count_devices_delete AFTER DELETE ON devices
  REFERENCING OLD TABLE AS report_old FOR EACH STATEMENT EXECUTE FUNCTION report_count_devices();
CREATE TRIGGER report_count_devices_truncate AFTER TRUNCATE ON devices
  FOR EACH STATEMENT EXECUTE FUNCTION report_count_devices();

-- Pending records past stale_at, by path (index-only): the summary reports them as stale.
CREATE INDEX property_records_overdue_idx ON property_records (stale_at) INCLUDE (path) WHERE state = 'pending';
-- Devices past stale_at whose stored state ranks below stale.
CREATE INDEX devices_overdue_idx ON devices (stale_at) INCLUDE (state)
  WHERE stale_at IS NOT NULL AND state IN ('compliant', 'pending', 'drifted');

-- Time-to-compliance: one row per history transition to 'compliant', with the seconds since its
-- desired value was set (the record's desired_since for the same desired_version, read when the
-- transition is written: the reconcile path upserts records before it appends history). A window
-- of the summary is then an index range of small rows instead of a join with 1M records.
-- Rows older than the longest window (90 days) are pruned by compactReportCounters.
CREATE TABLE report_compliance_times (
  at         timestamptz NOT NULL,
  device_id  text        NOT NULL,
  module_id  text        NOT NULL,
  path       text        NOT NULL,
  seconds    float8      NOT NULL
);
CREATE INDEX report_compliance_times_at_idx ON report_compliance_times (at) INCLUDE (seconds, path);

INSERT INTO report_compliance_times (at, device_id, module_id, path, seconds)
  SELECT h.at, h.device_id, h.module_id, h.path, greatest(0, extract(epoch FROM h.at - r.desired_since))
    FROM property_history h
    JOIN property_records r ON r.device_id = h.device_id AND r.module_id = h.module_id AND r.path = h.path
                           AND r.desired_version = h.desired_version
   WHERE h.to_state = 'compliant' AND h.at > now() - interval '90 days';

CREATE FUNCTION report_time_compliance() RETURNS trigger LANGUAGE plpgsql AS E'
BEGIN
  INSERT INTO report_compliance_times (at, device_id, module_id, path, seconds)
    SELECT h.at, h.device_id, h.module_id, h.path, greatest(0, extract(epoch FROM h.at - r.desired_since))
      FROM report_new h
      JOIN property_records r ON r.device_id = h.device_id AND r.module_id = h.module_id AND r.path = h.path
                             AND r.desired_version = h.desired_version
     WHERE h.to_state = ''compliant'';
  RETURN NULL;
END';

CREATE TRIGGER report_time_compliance_insert AFTER INSERT ON property_history
  REFERENCING NEW TABLE AS report_new FOR EACH STATEMENT EXECUTE FUNCTION report_time_compliance();
