"""The AllSource services: storage, ingest, query and admin, plus the local suite launcher."""
