-- Fleet sync and the resync queue, schema version 5 (shared/sync). The trigger body is an E'' string
-- (it once spelled its semicolons as octal escapes, for a runner that split files on them).

-- One fleet sync pass: pages of `SELECT * FROM devices`, then `SELECT * FROM devices.modules`, then
-- the confirmation (getTwin) of the stored twins the pass did not see. A pass outlives function
-- runs: its phase and continuation are saved after every page, and the next run continues there.
-- A run works on the pass under a lease (lease_owner/lease_until), so two timers never share one.
CREATE TABLE fleet_sync_passes (
  id              bigserial   PRIMARY KEY,
  started_at      timestamptz NOT NULL,
  finished_at     timestamptz,
  -- 'devices' | 'modules' | 'confirm' | 'done'
  phase           text        NOT NULL,
  -- the query's x-ms-continuation (devices, modules) or the last twin key confirmed (confirm)
  continuation    text,
  twins_read      bigint      NOT NULL DEFAULT 0,
  twins_changed   bigint      NOT NULL DEFAULT 0,
  twins_removed   bigint      NOT NULL DEFAULT 0,
  twins_confirmed bigint      NOT NULL DEFAULT 0,
  queries_used    bigint      NOT NULL DEFAULT 0,
  errors          bigint      NOT NULL DEFAULT 0,
  runs            integer     NOT NULL DEFAULT 0,
  lease_owner     text,
  lease_until     timestamptz,
  updated_at      timestamptz NOT NULL
);
-- At most one pass in progress.
CREATE UNIQUE INDEX fleet_sync_passes_open_idx ON fleet_sync_passes ((true)) WHERE finished_at IS NULL;

-- Which pass last read the twin from the hub, and when the twin was first stored: after a complete
-- pass, a twin neither seen by it nor first stored after it started is confirmed with getTwin.
ALTER TABLE twins ADD COLUMN last_seen_pass bigint;
ALTER TABLE twins ADD COLUMN stored_at timestamptz;
UPDATE twins SET stored_at = updated_at;

-- The resync queue: a flagged twin (resync_needed) is read again with getTwin, backing off per twin.
-- resync_since = when the flag was raised (its age in reports).
ALTER TABLE twins ADD COLUMN resync_since timestamptz;
ALTER TABLE twins ADD COLUMN resync_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE twins ADD COLUMN resync_next_at timestamptz;
UPDATE twins SET resync_since = updated_at WHERE resync_needed;
CREATE INDEX twins_resync_idx ON twins (resync_next_at NULLS FIRST, resync_since) WHERE resync_needed;

-- Kept by the store itself, whoever writes twins (reconcile, re-push, resync, sync): stored_at on
-- insert, resync_since when the flag is raised, the queue's schedule cleared when it is lowered.
-- Times are the writer's (updated_at), like every other time the store keeps.
CREATE FUNCTION twins_sync_bookkeeping() RETURNS trigger LANGUAGE plpgsql AS E'
BEGIN
  IF TG_OP = ''INSERT'' THEN
    NEW.stored_at := coalesce(NEW.stored_at, NEW.updated_at);
    IF NEW.resync_needed THEN NEW.resync_since := coalesce(NEW.resync_since, NEW.updated_at); END IF;
  ELSIF NEW.resync_needed AND NOT OLD.resync_needed THEN
    NEW.resync_since := NEW.updated_at;
    NEW.resync_attempts := 0;
    NEW.resync_next_at := NULL;
  ELSIF NOT NEW.resync_needed THEN
    NEW.resync_since := NULL;
    NEW.resync_attempts := 0;
    NEW.resync_next_at := NULL;
  END IF;
  RETURN NEW;
END';

CREATE TRIGGER twins_sync_bookkeeping BEFORE INSERT OR UPDATE ON twins
  FOR EACH ROW EXECUTE FUNCTION twins_sync_bookkeeping();
