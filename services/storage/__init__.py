"""The storage service: the only process that opens the database."""
