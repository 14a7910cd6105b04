// The job events a statement writes are one JobEventBatch, its events in parallel
// lists: 128 events as one node cost the database 0.034-0.041 ms of CPU an event, as 128
// nodes 0.090-0.108; readers and retirement walk one index entry a batch, not an event.
// Events written before are moved into batches of one, so subscribers and the webhook
// fan-out still find those of the last seconds. Stop the processes of the previous
// version first (README, "Upgrading"): events they write afterwards are not read.
CREATE INDEX job_event_batch_at IF NOT EXISTS FOR (b:JobEventBatch) ON (b.at);
MATCH (e:JobEvent)
WITH e LIMIT 10000
CREATE (:JobEventBatch {at: e.at, origin: e.origin, ids: [e.id], ats: [e.at],
                        tenants: [e.tenant], jobIds: [e.jobId], statuses: [e.status]})
DELETE e
RETURN count(e) AS changed;
DROP INDEX job_event_at IF EXISTS;
