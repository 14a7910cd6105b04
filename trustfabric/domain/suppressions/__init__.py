"""Paging decisions for anomalies, and the suppression rules that silence known-benign ones
(scoped, time-boxed, approved by another person, never for critical anomalies)."""
