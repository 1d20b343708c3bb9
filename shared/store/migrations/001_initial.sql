-- Twin Reconciler schema, version 1. Same SQL on PostgreSQL (pg) and PGlite.
-- module_id is '' for a device twin (not NULL) so that (device_id, module_id) can be a primary key;
-- the store maps '' to null on the way out.

-- The stored copy ("shadow") of each twin, kept from twin-change patches.
CREATE TABLE twins (
  device_id      text        NOT NULL,
  module_id      text        NOT NULL DEFAULT '',
  version        bigint      NOT NULL,
  etag           text,
  tags           jsonb       NOT NULL DEFAULT '{}'::jsonb,
  desired        jsonb       NOT NULL DEFAULT '{}'::jsonb,
  reported       jsonb       NOT NULL DEFAULT '{}'::jsonb,
  resync_needed  boolean     NOT NULL DEFAULT false,
  updated_at     timestamptz NOT NULL,
  PRIMARY KEY (device_id, module_id)
);

-- One row per twin for reports: its worst state at the last evaluation, counts by state, a copy of its tags.
-- stale_at = the earliest stale_at of its pending records (NULL when none): from then on the device is
-- at least 'stale' (effective state = 'stale' when stale_at <= now and state ranks below stale).
CREATE TABLE devices (
  device_id      text        NOT NULL,
  module_id      text        NOT NULL DEFAULT '',
  state          text        NOT NULL,
  state_since    timestamptz NOT NULL,
  stale_at       timestamptz,
  counts         jsonb       NOT NULL DEFAULT '{}'::jsonb,
  tags           jsonb       NOT NULL DEFAULT '{}'::jsonb,
  resync_needed  boolean     NOT NULL DEFAULT false,
  updated_at     timestamptz NOT NULL,
  PRIMARY KEY (device_id, module_id)
);
CREATE INDEX devices_state_idx ON devices (state, device_id, module_id);
CREATE INDEX devices_tags_idx ON devices USING gin (tags jsonb_path_ops);

-- The current compliance record of each desired property.
-- stale_at = desired_since + the rule's staleAfter: a 'pending' record is 'stale' from then on,
-- which reports and the re-push timer compute at the time they ask.
CREATE TABLE property_records (
  device_id        text        NOT NULL,
  module_id        text        NOT NULL DEFAULT '',
  path             text        NOT NULL,
  reported_path    text        NOT NULL,
  compare          text        NOT NULL,
  state            text        NOT NULL,
  desired          jsonb,
  reported         jsonb,
  desired_version  bigint      NOT NULL,
  desired_since    timestamptz NOT NULL,
  state_since      timestamptz NOT NULL,
  stale_at         timestamptz NOT NULL,
  repush_drift     boolean     NOT NULL DEFAULT true,
  -- re-push bookkeeping (the repushStaleDesired timer): reset when desired changes or the record complies
  attempts         integer     NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz,
  updated_at       timestamptz NOT NULL,
  PRIMARY KEY (device_id, module_id, path)
);
CREATE INDEX property_records_state_idx ON property_records (state, path);
CREATE INDEX property_records_stale_idx ON property_records (stale_at) WHERE state = 'pending';

-- Append-only: every state transition of a property record, with its cause
-- ('event', 'resync', 'repush', 'manual', 'deleted'). to_state 'removed' marks a desired property deleted.
CREATE TABLE property_history (
  id               bigserial   PRIMARY KEY,
  device_id        text        NOT NULL,
  module_id        text        NOT NULL DEFAULT '',
  path             text        NOT NULL,
  from_state       text,
  to_state         text        NOT NULL,
  cause            text        NOT NULL,
  at               timestamptz NOT NULL,
  desired_version  bigint,
  desired          jsonb,
  reported         jsonb,
  detail           jsonb
);
CREATE INDEX property_history_device_idx ON property_history (device_id, module_id, id DESC);
CREATE INDEX property_history_at_idx ON property_history (at);

-- Events that could not be used, with the reason and the raw event, so nothing is lost.
CREATE TABLE dead_letters (
  id               bigserial   PRIMARY KEY,
  received_at      timestamptz NOT NULL,
  partition_id     text,
  sequence_number  bigint,
  device_id        text,
  reason           text        NOT NULL,
  raw              jsonb       NOT NULL
);
