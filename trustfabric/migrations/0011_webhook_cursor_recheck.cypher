// The webhook fan-out's cursor no longer says whether its last page was full; it keeps
// where to read again for late commits instead (`recheck`, written from now on).
MATCH (c:WebhookCursor) WHERE c.full IS NOT NULL
REMOVE c.full
RETURN count(c) AS changed;
