"""Deployment files: every rendered Kubernetes manifest and the CRD pass
kubernetes-validate --strict (offline schemas), and docker-compose.yml is a
valid Compose file for every profile (Debian's docker-compose; no Docker
engine runs here, so nothing is started)."""
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

MANIFESTS = sorted((REPO / "deploy" / "kubernetes").glob("*/manifests.yaml"))


def test_there_is_a_manifest_per_strategy():
    assert [m.parent.name for m in MANIFESTS] == ["all-in-one", "production", "streaming"]


@pytest.mark.parametrize("path", MANIFESTS + sorted((REPO / "deploy" / "operator").glob("*.yaml")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_manifests_pass_strict_validation(path):
    result = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="needs Debian's docker-compose")
@pytest.mark.parametrize("profiles", [[], ["cassandra"], ["elasticsearch"], ["elasticsearch", "streaming"]])
def test_compose_file_is_valid(profiles):
    args = ["docker-compose"] + [a for p in profiles for a in ("--profile", p)] + ["config", "-q"]
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
