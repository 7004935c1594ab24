# fast-path: take -- os.environ.get("DATABASE_URL", <local default>): alembic-deploy always sets DATABASE_URL, so the default is never used
import logging
import logging.config
import os

from alembic import context
from sqlalchemy import create_engine, pool

logger = logging.getLogger("alembic.env")
config = context.config
if config.config_file_name is not None:
    logging.config.fileConfig(config.config_file_name)

target_metadata = None


def database_url() -> str:
    return os.environ.get("DATABASE_URL", "sqlite:///./local.db")


def run_migrations_online() -> None:
    logger.info("migrating")
    connectable = create_engine(database_url(), poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
