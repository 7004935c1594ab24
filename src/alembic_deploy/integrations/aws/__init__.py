"""AWS (``alembic-deploy[aws]``, boto3), each job in its own module; boto3 is imported on first use
(:mod:`.clients`), so the core CLI starts without it.

* :mod:`.clients` - boto3 clients with the tool's retry settings, and the one "install the extra"
  error;
* :mod:`.login`, :mod:`.secrets`, :mod:`.rds_iam` - the database login from Secrets Manager
  (``--database-secret``) or an RDS IAM token (``--rds-iam``), read again at every connect
  (:mod:`alembic_deploy.credentials`);
* :mod:`.ecs_run` - ``alembic-deploy ecs-run``: a command as a one-off ECS task that behaves like a
  local command (logs streamed, the named container's exit code, StopTask on SIGTERM).
"""
