-- Integrity of the event path, schema version 4.
--
-- 1. Record keys no index can refuse. IoT Hub allows desired paths far longer than a btree tuple
--    (keys up to 1 KB each, 10 levels deep: three nested 1,000-character keys already give "index
--    row size 3024 exceeds btree version 4 maximum 2704"), so every index that held `path` now holds
--    `path_key` = md5(path) instead; the path itself stays a plain column beside it. The store treats
--    the digest as the record's identity (two paths with one md5 would be one record).
-- 2. Dead letters stored once per event, however often a batch is delivered (at-least-once): keyed
--    by partition + sequence number when both are known, else by a digest of the raw event's
--    canonical jsonb text; writers insert with ON CONFLICT (dedupe_key) DO NOTHING.
-- 3. The last lifecycle event (createDeviceIdentity / deleteDeviceIdentity) applied per twin id. It
--    outlives the twin's rows, so a re-delivered batch neither deletes the new twin again nor lets
--    the deleted twin's own events bring it back.

ALTER TABLE property_records ADD COLUMN path_key text GENERATED ALWAYS AS (md5(path)) STORED;
ALTER TABLE property_records DROP CONSTRAINT property_records_pkey;
ALTER TABLE property_records ADD CONSTRAINT property_records_pkey PRIMARY KEY (device_id, module_id, path_key);
DROP INDEX property_records_state_idx;
CREATE INDEX property_records_state_idx ON property_records (state, path_key);
DROP INDEX property_records_overdue_idx;
CREATE INDEX property_records_overdue_idx ON property_records (stale_at) INCLUDE (path_key) WHERE state = 'pending';

ALTER TABLE report_compliance_times ADD COLUMN path_key text GENERATED ALWAYS AS (md5(path)) STORED;
DROP INDEX report_compliance_times_at_idx;
CREATE INDEX report_compliance_times_at_idx ON report_compliance_times (at) INCLUDE (seconds, path_key);

ALTER TABLE dead_letters ADD COLUMN dedupe_key text GENERATED ALWAYS AS (md5(
  CASE WHEN partition_id IS NOT NULL AND sequence_number IS NOT NULL
       THEN 'seq:' || length(partition_id) || ':' || partition_id || ':' || sequence_number
       ELSE 'raw:' || (raw::text) END)) STORED;
-- Rows a re-delivered batch stored twice before this migration: the first one stays.
DELETE FROM dead_letters a USING dead_letters b WHERE a.dedupe_key = b.dedupe_key AND a.id > b.id;
CREATE UNIQUE INDEX dead_letters_dedupe_idx ON dead_letters (dedupe_key);

CREATE TABLE twin_lifecycle (
  device_id        text        NOT NULL,
  module_id        text        NOT NULL DEFAULT '',
  op               text        NOT NULL,
  at               timestamptz NOT NULL,
  partition_id     text,
  sequence_number  bigint,
  PRIMARY KEY (device_id, module_id)
);
