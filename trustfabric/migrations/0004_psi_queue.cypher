// The PSI queue: one entry per queued job, deleted when the job is claimed or cancelled.
// Finding queued jobs through the status index of every job ever run grew with them
// (15 ms at 100,000 jobs, 50 ms under load); the entries stay as few as the jobs waiting.
// Stop the processes of the previous version before migrating: jobs they queue afterwards
// get no entry. MERGE: a run cut short before it was recorded can run again.
CREATE CONSTRAINT psi_queue_job IF NOT EXISTS FOR (q:PsiQueueEntry) REQUIRE q.jobId IS UNIQUE;
MATCH (j:PsiJob) WHERE j.status = 'QUEUED'
MERGE (q:PsiQueueEntry {jobId: j.id})
ON CREATE SET q.tenant = j.tenant, q.createdAt = j.createdAt;
