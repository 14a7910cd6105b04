"""Policies as code (LAC): CEL rules in immutable, content-hashed versions; facts about
images; promotions that explain why they failed; drift and its safe auto-merge; hints."""
