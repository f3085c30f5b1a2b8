"""The control plane: what people and integrations manage, defined once for both databases.

SQLAlchemy Core tables (:mod:`.tables`) migrated by Alembic (:mod:`.schema`, ``migrations/``),
on the data directory's SQLite file or the stores' PostgreSQL (:mod:`.db`), and the parts that
use them: the registry of projects, keys and email secrets (:mod:`.registry`).
"""
