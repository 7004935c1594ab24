"""The moto fixture itself: a subprocess reaches it through boto3's default endpoint setting, and
each test starts from an empty server."""

from __future__ import annotations

import subprocess
import sys


def test_a_subprocess_reaches_the_local_server_through_aws_endpoint_url(aws):
    aws.client("secretsmanager").create_secret(Name="probe", SecretString="x")
    code = "import boto3; print(boto3.client('secretsmanager').get_secret_value(SecretId='probe')['SecretString'])"
    done = subprocess.run([sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin", **aws.env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "x"


def test_each_test_starts_from_an_empty_server(aws):
    assert aws.client("secretsmanager").list_secrets()["SecretList"] == []
    aws.client("secretsmanager").create_secret(Name="left-behind", SecretString="x")
