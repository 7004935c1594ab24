"""the safe counterpart of add-enum-value"""
from alembic import op

revision = "add_enum_value_safe"
down_revision = None


def upgrade():
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE mood ADD VALUE IF NOT EXISTS 'ecstatic'")
    op.execute("UPDATE events SET mood = 'ecstatic' WHERE id = 1")


def downgrade():
    op.execute("SELECT 1")
