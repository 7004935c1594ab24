# fast-path: take -- a copy of the ini section with sqlalchemy.url replaced by DATABASE_URL ({**section, key: url} and dict(section))
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
fileConfig(config.config_file_name, disable_existing_loggers=False)
target_metadata = None

section = dict(config.get_section(config.config_ini_section) or {})
ini = {**section, "sqlalchemy.url": os.environ["DATABASE_URL"]}


def run_migrations_online() -> None:
    connectable = engine_from_config(ini, "sqlalchemy.", poolclass=pool.NullPool)
    with connectable.begin() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        context.run_migrations()


run_migrations_online()
