"""Backups of the embedded backend: the format (format.py), where backups go (destinations.py), the
dump and load worker processes (dump.py, load.py) and the storage-side jobs that drive them (jobs.py).
docs/BACKUP.md describes the format for readers without the suite."""
