// Job and audit events are only ever created (with ids made by the service) and read by
// time, tenant or key, never looked up by id: the uniqueness of their ids guarded nothing,
// and each of the five events a PSI job leaves paid for a lookup in an index that grew with
// every event ever written.
DROP CONSTRAINT job_event_id IF EXISTS;
DROP CONSTRAINT audit_event_id IF EXISTS;
