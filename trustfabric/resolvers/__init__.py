"""Thin resolvers: check, validate, call a loader or repository, return schema types."""
