// Weekly rollups: one per tenant and week (the :Entity key), listed by week for readership.
CREATE INDEX rollup_week IF NOT EXISTS FOR (n:Rollup) ON (n.week);
CREATE INDEX rollup_tenant IF NOT EXISTS FOR (n:Rollup) ON (n.tenant);
