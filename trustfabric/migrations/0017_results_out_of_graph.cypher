// Finished jobs are retired by creation time (TF_PSI_RETENTION_DAYS), through this index.
CREATE INDEX psi_job_created IF NOT EXISTS FOR (j:PsiJob) ON (j.createdAt);
// Nothing looks jobs up by status alone (a tenant's page goes through psi_job_tenant), and
// each job changed it twice, updating the index each time.
DROP INDEX psi_job_status IF EXISTS;
