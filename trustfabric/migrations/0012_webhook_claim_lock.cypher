// Claims of due webhook deliveries take turns on one record. Two claims at the same moment
// could both take the same deliveries now and then (4 claims at once over 5 deliveries: all
// 5 taken twice in 1 round of 20), while two updates of one record conflict reliably, and
// the later claim is retried after the first.
CREATE CONSTRAINT webhook_claim_lock IF NOT EXISTS FOR (l:WebhookClaimLock) REQUIRE l.id IS UNIQUE;
MERGE (l:WebhookClaimLock {id: 'claims'}) ON CREATE SET l.at = '';
