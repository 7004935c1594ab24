"""triggers add-enum-value"""
from alembic import op

revision = "add_enum_value_bad"
down_revision = None


def upgrade():
    op.execute("ALTER TYPE mood ADD VALUE 'ecstatic'")
    op.execute("UPDATE events SET mood = 'ecstatic' WHERE id = 1")


def downgrade():
    op.execute("SELECT 1")
