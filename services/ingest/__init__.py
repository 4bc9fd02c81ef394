"""The ingest service: validated, atomic appends and bulk ingest."""
