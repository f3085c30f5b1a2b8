"""One module a revision, numbered: the revision is the schema version."""
