"""Static checks of the production Dockerfile (no Docker engine here to build it)."""

from __future__ import annotations

import re

from tests.deploy.conftest import DOCKERFILE, ROOT


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_multi_stage_build_on_an_exact_python_311_slim_tag() -> None:
    bases = [args.split()[0] for op, args in _instructions() if op == "FROM"]
    assert len(bases) >= 2, "multi-stage: a build stage and a runtime stage"
    for base in bases:
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?", base), f"{base}: not an exact python:3.11.x-slim tag"
    assert "build-essential" not in DOCKERFILE.read_text().split("AS runtime")[1], "no compiler in the runtime image"


def test_installs_the_project_without_the_embedded_extra() -> None:
    runs = " ".join(args for op, args in _instructions() if op == "RUN")
    assert re.search(r"pip install \.(\s|$)", runs), "installs the project itself, without extras"
    for forbidden in (".[", "embedded", "chdb", "calfkit", "zstandard"):
        assert forbidden not in runs, f"RUN installs {forbidden!r}"
    copied = " ".join(args for op, args in _instructions() if op == "COPY")
    assert "deploy/embedded" not in copied and "tests" not in copied


def test_runs_as_a_non_root_user_with_the_ksp_entrypoint() -> None:
    instructions = _instructions()
    users = [args for op, args in instructions if op == "USER"]
    assert users, "a USER instruction"
    last = users[-1].split(":")[0]
    assert last not in ("root", "0"), f"runs as {last}"
    final_stage = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM"):]
    assert any(op == "USER" for op, _ in final_stage), "USER is set in the runtime stage"
    assert ("ENTRYPOINT", '["ksp"]') in instructions


def test_copies_only_what_the_wheel_needs_and_dockerignore_keeps_the_rest_out() -> None:
    copied = [args.split()[0] for op, args in _instructions() if op == "COPY" and "--from" not in args]
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such path"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests", "deploy/embedded"} <= set(ignored)
    assert not set(copied) & set(ignored), "a COPY source is excluded by .dockerignore"
