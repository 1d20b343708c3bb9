-- Re-push (the repushStaleDesired timer), schema version 2.

-- (property_records.repush_drift, the rule's repushDrift, is in 001: the reconcile path writes it.)

-- A timer run's claim on a device: set when claimed (FOR UPDATE SKIP LOCKED), cleared when done.
-- A claim that was never cleared (crashed run) expires at repush_lease_until.
ALTER TABLE devices ADD COLUMN repush_lease_owner text;
ALTER TABLE devices ADD COLUMN repush_lease_until timestamptz;

-- Records the timer may have to re-push: every state but compliant and failed.
CREATE INDEX property_records_repush_idx ON property_records (device_id, module_id)
  WHERE state IN ('pending', 'stale', 'drifted', 'escalated');
