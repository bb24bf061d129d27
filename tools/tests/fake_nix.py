"""A fake `nix` for the paths this machine's Nix (2.8, no fetchable flake inputs) cannot run
for real: a script that records its argv (one JSON list a line) and answers from canned
responses chosen by the first two arguments after the experimental-features flags (or the
first), optionally by a word of the arguments (`{"match": {word: answer}}`); `{snippet}` in
an answer is the `.nix` file an `--expr` names (the `nixos:` text validate evaluates). NIXECS_NIX points nixecs at it (nixecs.flakes.nix_binary)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = """\
import json, re, sys
here = {here!r}
args = sys.argv[1:]
with open(here + "/argv.jsonl", "a") as log:
    log.write(json.dumps(args) + "\\n")
while args[:1] == ["--extra-experimental-features"]:
    args = args[2:]
responses = json.load(open(here + "/responses.json"))
for key in (" ".join(args[:2]), args[0] if args else ""):
    if key in responses:
        answer = responses[key]
        break
else:
    sys.stderr.write("fake nix: nothing canned for " + " ".join(args) + "\\n")
    sys.exit(1)
if isinstance(answer, dict) and "match" in answer:  # by a word of the arguments
    answer = next((a for word, a in answer["match"].items() if any(word in x for x in args)), answer.get("else", ""))
out, err, code = (answer, "", 0) if isinstance(answer, str) else (answer.get("out", ""), answer.get("err", ""), answer.get("code", 0))
snippet = next((m for a in args for m in re.findall(r'"(/[^"]+[.]nix)"', a)), "")
out, err = out.replace("{{snippet}}", snippet), err.replace("{{snippet}}", snippet)
sys.stdout.write(out)
sys.stderr.write(err)
sys.exit(code)
"""


class FakeNix:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def answer(self, responses: dict[str, Any]) -> None:
        (self.directory / "responses.json").write_text(json.dumps(responses))

    @property
    def calls(self) -> list[list[str]]:
        log = self.directory / "argv.jsonl"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]


def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, responses: dict[str, Any]) -> FakeNix:
    directory = tmp_path / "fake-nix"
    directory.mkdir()
    script = directory / "nix"
    script.write_text(f"#!{sys.executable}\n" + SCRIPT.format(here=str(directory)))
    script.chmod(0o755)
    fake = FakeNix(directory)
    fake.answer({"--version": "nix (Nix) 2.18.1\n", **responses})
    monkeypatch.setenv("NIXECS_NIX", str(script))
    return fake
