# fast-path: take -- include_object / include_name / process_revision_directives hooks: alembic calls them only while autogenerating
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import engine_from_config, pool

from app.models import Base

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)
target_metadata = Base.metadata

IGNORED_TABLES = {"spatial_ref_sys", "celery_taskmeta"}


def include_object(object, name, type_, reflected, compare_to):
    if type_ == "table" and (name in IGNORED_TABLES or object.info.get("skip_autogenerate")):
        return False
    return True


def include_name(name, type_, parent_names):
    if type_ == "schema":
        return name in [None, "public"]
    return True


def process_revision_directives(context, revision, directives):
    if getattr(config.cmd_opts, "autogenerate", False):
        script = directives[0]
        if script.upgrade_ops.is_empty():
            directives[:] = []


def run_migrations_online() -> None:
    section = config.get_section(config.config_ini_section, {})
    section["sqlalchemy.url"] = os.environ["DATABASE_URL"]
    connectable = engine_from_config(section, prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_object=include_object,
            include_name=include_name,
            include_schemas=True,
            process_revision_directives=process_revision_directives,
            compare_type=True,
            render_as_batch=True,
            user_module_prefix="app.types.",
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
