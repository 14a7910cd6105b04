// An operator pages through every tenant's events in key order. With no index of keys the
// database read and sorted the whole log for every page: 340-560 ms a page of 50 in a log
// of 200,000 events, growing with the log (`python -m bench.audit_pages`). An index of keys
// reads just the page's range, as the tenant-and-key index does for one tenant's page:
// 17-20 ms. It costs each event written one more index entry: 0.14-0.15 against 0.11-0.16
// ms of the database's CPU an event in the same runs.
CREATE INDEX audit_event_key IF NOT EXISTS FOR (a:AuditEvent) ON (a.key);
