# fast-path: take -- the connection handed to a helper function, opened the pre-1.4 way (connect(), try/finally close())
from logging.config import fileConfig

from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
fileConfig(config.config_file_name)
target_metadata = None


def do_run_migrations(connection):
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    engine = engine_from_config(
        config.get_section(config.config_ini_section), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    connection = engine.connect()
    try:
        do_run_migrations(connection)
    finally:
        connection.close()
        engine.dispose()


run_migrations_online()
