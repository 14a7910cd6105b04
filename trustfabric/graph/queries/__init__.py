"""Cypher statements grouped by aggregate; values only ever travel as $parameters."""
