// A job's queue entry now stays until the job finishes and carries its worker's lease, so
// running jobs are found through the entries of unfinished jobs, not a status index of
// every job ever run: lookups in that index slowed as jobs passed through it (finding
// expired leases: 6 ms in the first minutes of a soak, 40 ms after twenty), and every
// change of status rewrote it. Stop the processes of the previous version first.
MATCH (j:PsiJob) WHERE j.status = 'RUNNING'
MERGE (q:PsiQueueEntry {jobId: j.id})
ON CREATE SET q.tenant = j.tenant, q.createdAt = j.createdAt
SET q.leaseOwner = j.leaseOwner, q.leaseUntil = j.leaseUntil;
DROP INDEX psi_job_status IF EXISTS;
