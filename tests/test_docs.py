"""The documentation tells the truth about the code.

(a) ``docs/reference/*.md`` are what ``docs/generate.py`` writes now; (b) every
``geoby ...`` command in a code span or block of the README and ``docs/*.md``
resolves in the click tree, with options the command has and choice values it
accepts; (c) every HTTP path they mention (``/api/...``, ``/ogc/...``,
``/status``, ``/healthz``, and OGC paths such as ``/collections/...`` relative
to ``/ogc``) matches a route of the app with the stated method, and named OGC
processes exist; (d) the documented commands answer ``--help``, and the
researcher page's file-in/file-out block runs as written on the real Danish
DEM. No database: ``create_app`` connects only in its lifespan. Each checker is
also shown a wrong example, so none of them can pass by finding nothing.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from starlette.routing import Match

from api.app import create_app
from api.cli import cli
from api.ogc import config

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
METHOD = r"GET|POST|PUT|DELETE|PATCH"
OGC_RELATIVE = ("/collections", "/conformance", "/processes", "/jobs", "/TileMatrixSets")
PATH = re.compile(
    r"(?<![\w.~/-])((?:(?:" + METHOD + r")(?:\\?\|(?:" + METHOD + r"))*)\s+)?"
    r"(/(?:api|ogc|status|healthz|collections|conformance|processes|jobs|TileMatrixSets)"
    r"(?![\w-])[^\s`'\"()<>,;]*)"
)
HOST = re.compile(r"https?://(?:127\.0\.0\.1|localhost)(?::\d+)?")
SIBLING = re.compile(r"`(?:,\s*|\s+and\s+|\s+or\s+)`(/[\w.-]+)(?=`)")  # `/a/b/cancel`, `/renew`
GEOBY = re.compile(r"(?<![\w./-])(?:[\w./-]*bin/)?geoby[ \t]+(?=\S)")


# -- markdown -----------------------------------------------------------------


def code_snippets(text: str) -> list[str]:
    """Code blocks (fenced or indented; one string per shell line) and code spans."""
    snippets: list[str] = []

    def block(match: re.Match) -> str:
        if match.group(1) != "mermaid":  # diagram labels are prose
            snippets.extend(_shell_lines(match.group(2)))
        return "\n"

    prose = re.sub(r"^```(\w*)[^\n]*\n(.*?)^```", block, text, flags=re.M | re.S)
    kept, indented, previous = [], [], ""
    for line in prose.splitlines():
        if line.startswith("    ") and (indented or not previous.strip()):
            indented.append(line[4:])
            continue
        snippets.extend(_shell_lines("\n".join(indented)))
        indented, previous = [], line
        kept.append(line)
    snippets.extend(_shell_lines("\n".join(indented)))
    spans = re.findall(r"`([^`]+)`", "\n".join(kept))
    snippets += [re.sub(r"\s*\\?\|\s*", "|", " ".join(s.split())) for s in spans]
    return snippets


def _shell_lines(code: str) -> list[str]:
    """Lines with continuations joined, comments and pipes into other programs cut off."""
    lines = code.replace("\\\n", " ").splitlines()
    return [re.split(r"(?:^|\s)#|\s\|\s|;|&&", line)[0] for line in lines]


def geoby_commands(text: str) -> list[list[str]]:
    """The words after each ``geoby`` in code (``.venv/bin/geoby`` and ``$(geoby`` too)."""
    found = []
    for snippet in code_snippets(text):
        for match in GEOBY.finditer(snippet):
            rest = snippet[match.end() :].split(")")[0]
            try:
                words = shlex.split(rest.replace("\\|", "|"))
            except ValueError:
                words = rest.split()
            found.append(words)
    return found


def http_paths(text: str) -> list[tuple[str | None, str]]:
    """``(method or None, path)`` of every path mentioned, optional parts and ``a|b`` expanded."""
    found = []
    text = HOST.sub("", text)
    for match in PATH.finditer(text):
        methods = re.split(r"\\?\|", match.group(1).strip()) if match.group(1) else [None]
        path = match.group(2).rstrip(":")
        if path.endswith(".") and not path.endswith("..."):  # the end of a sentence
            path = path.rstrip(".")
        if path.count("]") > path.count("["):
            path = path.rstrip("]")
        paths = [re.split(r"\[?[?&#]", path)[0]]
        end = match.end()
        while sibling := SIBLING.match(text, end):
            paths.append(paths[0].rsplit("/", 1)[0] + sibling.group(1))
            end = sibling.end()
        for expanded in (e for p in paths for e in _expand(p)):
            found += [(method, expanded) for method in methods]
    return found


def _expand(path: str) -> list[str]:
    optional = re.search(r"\[([^\[\]]*)\]", path)
    if optional:
        before, after = path[: optional.start()], path[optional.end() :]
        return _expand(before + after) + _expand(before + optional.group(1) + after)
    segments = [re.split(r"\\?\|", segment) for segment in path.split("/")]
    return ["/".join(choice) for choice in itertools.product(*segments)]


# -- the click tree -------------------------------------------------------------


def _placeholder(word: str) -> bool:
    return word in ("", "...") or not any(c.islower() for c in word) or "<" in word


def check_command(words: list[str], command: click.Command = cli, path: str = "geoby") -> list[str]:
    """Problems with one documented command line (empty when it is right)."""
    ctx = click.Context(command, info_name=path)
    words = list(words)
    while isinstance(command, click.Group) and words:
        word = words[0].strip("[]")
        if word.startswith("-") or _placeholder(word):
            break
        if "|" in word:
            return [
                p for w in word.split("|") for p in check_command([w, *words[1:]], command, path)
            ]
        sub = command.get_command(ctx, word)
        if sub is None:
            known = ", ".join(command.list_commands(ctx))
            return [f"`{path} {word}`: no such command (`{path}` has {known})"]
        command, path, words = sub, f"{path} {word}", words[1:]
        ctx = click.Context(command, info_name=path)
    return _check_parameters(command, path, [w.strip("[]").rstrip(".") or w for w in words])


def _check_parameters(command: click.Command, path: str, words: list[str]) -> list[str]:
    options = {name: p for p in command.params if isinstance(p, click.Option)
               for name in p.opts + p.secondary_opts}  # fmt: skip
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    problems, index = [], 0
    while index < len(words):
        word, index = words[index], index + 1
        if word.startswith("-") and len(word) > 1:
            name, _, inline = word.partition("=")
            option = options.get(name)
            if option is None and name not in ("-h", "--help"):
                problems.append(f"`{path}` has no option {name}")
            if option is None or option.is_flag or option.count:
                continue
            value = inline or (words[index] if index < len(words) else "")
            index += 0 if inline else option.nargs
            problems += _check_choice(option, value, f"`{path} {name}`")
        elif arguments:
            argument = arguments[0] if arguments[0].nargs == -1 else arguments.pop(0)
            problems += _check_choice(argument, word, f"`{path}` {argument.human_readable_name}")
    return problems


def _check_choice(param: click.Parameter, value: str, where: str) -> list[str]:
    if not isinstance(param.type, click.Choice) or _placeholder(value):
        return []
    return [f"{where}: {v!r} is not one of {', '.join(param.type.choices)}"
            for v in value.split("|") if v not in param.type.choices]  # fmt: skip


# -- the routes -------------------------------------------------------------------


@pytest.fixture(scope="module")
def app():
    return create_app()


def route_templates(app) -> list[str]:  # noqa: ANN001 - FastAPI
    """The path templates of every route, ``/ogc`` ones included."""
    routes = list(app.routes)
    for route in app.routes:  # FastAPI keeps included routers' routes behind a wrapper
        routes += list(getattr(getattr(route, "original_router", None), "routes", []))
    templates = [r.path for r in routes if getattr(r, "path", None)]
    return templates + ["/ogc" + r.path for r in app.state.ogc.router.routes]


def check_path(app, method: str | None, path: str) -> list[str]:  # noqa: ANN001 - FastAPI
    """Problems with one documented path (empty when a route serves it)."""
    if "..." in path:  # `/api/flood/...`: some route lies below
        prefix = path.split("...")[0]
        ok = any(t.startswith(prefix) for t in route_templates(app))
        return [] if ok else [f"{path}: no route starts with {prefix}"]
    routes = [r for r in app.routes if getattr(r, "path", None) != "/ogc"]
    served = path
    if path == "/ogc" or path.startswith(("/ogc/", *OGC_RELATIVE)):
        routes, served = app.state.ogc.router.routes, path.removeprefix("/ogc") or "/"
        process = re.match(r"/processes/([^/{}]+)", served)
        known = {k for k, r in config.EXTRA_RESOURCES.items() if r.get("type") == "process"}
        if process and not _placeholder(process.group(1)) and process.group(1) not in known:
            return [f"{path}: no OGC process {process.group(1)!r} (known: {sorted(known)})"]
    scope = {"type": "http", "path": served, "root_path": "", "method": method or "GET"}
    matches = {route.matches(scope)[0] for route in routes}
    if Match.FULL in matches or (method is None and Match.PARTIAL in matches):
        return []
    if Match.PARTIAL in matches:
        return [f"{method} {path}: the route exists, but not for {method}"]
    return [f"{path}: no route of the app matches"]


# -- (a) generated references -------------------------------------------------------


def test_generated_references_are_up_to_date(tmp_path):
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    for written in generate.generate(tmp_path):
        committed = ROOT / "docs" / "reference" / written.name
        assert committed.is_file(), f"{committed} is missing: run .venv/bin/python docs/generate.py"
        assert committed.read_text(encoding="utf-8") == written.read_text(encoding="utf-8"), (
            f"{committed.relative_to(ROOT)} is out of date: run .venv/bin/python docs/generate.py"
        )


# -- (b) commands --------------------------------------------------------------------


def documented_commands() -> list[tuple[str, list[str]]]:
    return [(doc.relative_to(ROOT).as_posix(), words)
            for doc in DOCS for words in geoby_commands(doc.read_text(encoding="utf-8"))]  # fmt: skip


def test_every_documented_command_exists():
    commands = documented_commands()
    assert len({doc for doc, _ in commands}) >= 5, "the docs name almost no geoby command"
    problems = [f"{doc}: {p}" for doc, words in commands for p in check_command(words)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("line", "fault"),
    [
        ("`geoby db upp`", "no such command"),
        ("    .venv/bin/geoby wast plan --day 2024-01-01", "no such command"),
        ("```sh\nTOKEN=$(geoby users add --org X --rol contractor)\n```", "no option --rol"),
        ("`geoby sample --out DIR [--size small\\|huge]`", "'huge' is not one of"),
        ("`geoby flood fill\\|\nbluespots\\|drain`", "no such command"),
        ("`geoby ingest energie data.csv`", "'energie' is not one of"),
        ("`geoby flood run cloudburst\\|tsunami -p NAME=VALUE...`", "'tsunami' is not one of"),
    ],
)
def test_command_checker_catches_a_wrong_command(line, fault):
    (words,) = geoby_commands(line)
    assert any(fault in problem for problem in check_command(words)), check_command(words)


def test_command_checker_accepts_the_forms_the_docs_use():
    text = (
        "`geoby db up|down|status|url`, `geoby ingest FAMILY PATH... [--mode insert\\|upsert]`,\n"
        "`geoby flood fill|\nbluespots|cloudburst` and `geoby_read`, `geoby.load_rejects`\n\n"
        '```sh\nTOKEN=$(.venv/bin/geoby users add --org "A B" --role contractor)  # a token\n'
        "geoby users add --org A --role utility --webhook-url https://a.example/geoby \\\n"
        "  --manual-answers\n```\n\n```mermaid\nA[geoby ingest, the loaders] --> B\n```"
    )
    commands = geoby_commands(text)
    assert len(commands) == 5
    assert [p for words in commands for p in check_command(words)] == []


# -- (c) HTTP paths ------------------------------------------------------------------


def test_every_documented_path_is_served(app):
    mentioned = [(doc.relative_to(ROOT).as_posix(), method, path)
                 for doc in DOCS for method, path in http_paths(doc.read_text(encoding="utf-8"))]  # fmt: skip
    assert len(mentioned) >= 50, "the docs name almost no HTTP path"
    problems = [f"{doc}: {p}" for doc, method, path in mentioned
                for p in check_path(app, method, path)]  # fmt: skip
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("`GET /api/dig-request/{id}`", "no route"),
        ("`DELETE /api/waste/plan`", "not for DELETE"),
        ("curl -X POST http://127.0.0.1:8000/api/flood/scenario -d '{}'", "no route"),
        ("`GET /api/waste/bins[/{bin_id}/readings]`", "no route"),
        ("`POST /ogc/processes/flood-cloudburst\\|flood-tsunami/execution`", "no OGC process"),
        ("tiles at `/collections/{id}/tile/WebMercatorQuad/{z}/{y}/{x}`", "no route"),
        ("`GET /statuses`", None),  # not a path of ours: nothing to check
        ("`/api/flod/...`", "no route starts with"),
        ("`POST /api/dig-requests/{id}/cancel`, `/renew`, `/revive`", "no route"),
    ],
)
def test_path_checker_catches_a_wrong_path(app, text, fault):
    problems = [p for method, path in http_paths(text) for p in check_path(app, method, path)]
    if fault is None:
        assert http_paths(text) == []
    else:
        assert any(fault in p for p in problems), problems


def test_path_checker_reads_the_forms_the_docs_use(app):
    text = (
        "| `GET\\|PUT /api/interest-areas` | `GET /api/flood/scenarios[/{id}]` |\n"
        '`GET /api/dig-requests/{id}/answer?f=geojson\\|pdf[&owner=]`, "http://127.0.0.1:8000/'
        'api/dig-requests/ID/answer?f=pdf" OAPIF:http://127.0.0.1:8000/ogc and `/status`.'
    )
    assert http_paths(text) == [
        ("GET", "/api/interest-areas"), ("PUT", "/api/interest-areas"),
        ("GET", "/api/flood/scenarios"), ("GET", "/api/flood/scenarios/{id}"),
        ("GET", "/api/dig-requests/{id}/answer"), (None, "/api/dig-requests/ID/answer"),
        (None, "/ogc"), (None, "/status"),
    ]  # fmt: skip
    assert [p for method, path in http_paths(text) for p in check_path(app, method, path)] == []


# -- (d) examples that run -----------------------------------------------------------


def _command_names(words: list[str]) -> tuple[str, ...]:
    """The subcommand names at the start of a documented command (alternatives: the first)."""
    names, command = [], cli
    for word in words:
        if (
            not isinstance(command, click.Group)
            or word.startswith(("-", "["))
            or _placeholder(word)
        ):
            break
        names.append(word.split("|")[0])
        command = command.commands[names[-1]]
    return tuple(names)


def test_documented_commands_answer_help():
    runner = CliRunner()
    seen = {_command_names(words) for _, words in documented_commands()}
    for names in sorted(seen):
        result = runner.invoke(cli, [*names, "--help"])
        assert result.exit_code == 0, f"geoby {' '.join(names)} --help: {result.output}"
        assert "Usage: " in result.output
    assert len(seen) >= 20


def test_researcher_file_examples_run(shared_data, tmp_path, monkeypatch):
    """The block after ``<!-- test_docs: runs -->`` in docs/researcher.md, as written."""
    text = (ROOT / "docs" / "researcher.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- test_docs: runs -->\s*```sh\n(.*?)```", text, flags=re.S)
    assert block, "docs/researcher.md lost its runnable block"
    commands = geoby_commands("```sh\n" + block.group(1) + "```")
    assert len(commands) >= 6
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for words in commands:
        args = [w.replace("../shared/data", str(shared_data)) for w in words]
        result = runner.invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0, f"geoby {' '.join(words)}: {result.output}"
        assert result.output.strip(), f"geoby {' '.join(words)} printed no summary"
    outputs = [
        w for words in commands for w in words if w.endswith((".tif", ".gpkg")) and "/" not in w
    ]
    assert len(outputs) >= 5
    assert [name for name in outputs if not (tmp_path / name).stat().st_size] == []


# -- links -------------------------------------------------------------------------------


def broken_links(doc: Path, text: str) -> list[str]:
    """Relative links and images (``[x](path)``, ``![x](path)``) whose file is missing."""
    targets = re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    return [t for t in local if not (doc.parent / t).exists()]


def test_relative_links_resolve():
    problems = [f"{doc.relative_to(ROOT)}: {t}" for doc in DOCS
                for t in broken_links(doc, doc.read_text(encoding="utf-8"))]  # fmt: skip
    assert not problems, "\n".join(problems)
    assert broken_links(ROOT / "docs" / "x.md", "[a](reference/cli.md) [b](reference/nope.md)") == [
        "reference/nope.md"
    ]
