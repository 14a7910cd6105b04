"""Trust Fabric: a provenance-and-privacy graph API."""
