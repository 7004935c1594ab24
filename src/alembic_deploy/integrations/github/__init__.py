"""GitHub Actions: :mod:`.workflows` writes the deploy workflows (``alembic-deploy init
github-actions``); :mod:`.action` is the script of the composite action (``action.yml`` at the
repository root)."""
