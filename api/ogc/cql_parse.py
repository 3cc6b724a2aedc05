"""Parsing CQL2 text and JSON with pygeofilter 0.4, mended where it departs from CQL2 1.0.

See :mod:`api.ogc.cql` for what is mended and why; this module holds the
parser side (the patched grammar and the JSON normalisation), the writer of
SQL is there.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from lark import Lark, v_args
from pygeofilter import ast, values
from pygeofilter.cql2 import TEMPORAL_PREDICATES_MAP
from pygeofilter.parsers.cql2_json import parse as parse_cql2_json
from pygeofilter.parsers.cql2_text import parse as parse_cql2_text
from pygeofilter.parsers.cql2_text import parser as cql2_text_parser

from layers.errors import InvalidInput

logger = logging.getLogger(__name__)

LANGUAGES = ("cql2-text", "cql2-json")


def parse_filter(text: str | bytes | dict, lang: str | None = None) -> ast.AstType:
    """Parse a CQL2 filter into pygeofilter's AST.

    Parameters
    ----------
    text
        The filter: CQL2 text, or a CQL2-JSON document (parsed or as bytes/str).
    lang
        ``'cql2-text'`` or ``'cql2-json'``; by default JSON for a document,
        bytes or a string starting with ``{``, text otherwise.

    Raises
    ------
    InvalidInput
        Another language, or a syntax error (the parser's message, shortened).
    """
    if lang is None:
        is_json = isinstance(text, dict | bytes) or text.lstrip().startswith("{")
        lang = "cql2-json" if is_json else "cql2-text"
    if lang.strip().lower() not in LANGUAGES:
        raise InvalidInput(
            f"filter-lang {lang!r} is not offered; use {' or '.join(LANGUAGES)}",
            field="filter-lang",
        )
    lang = lang.strip().lower()
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        if lang == "cql2-json":
            document = json.loads(text) if isinstance(text, str) else text
            return parse_cql2_json(_normalise_json(document))
        if not isinstance(text, str):
            raise ValueError("a cql2-text filter is a string, not a JSON document")
        return _text_parser()(text)
    except Exception as exc:  # noqa: BLE001 - lark, json and the parsers raise many kinds
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        message = " ".join(lines[0].split())[:200]
        raise InvalidInput(f"filter is not valid {lang}: {message}", field="filter") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# -- input adaptations for pygeofilter 0.4 ---------------------------------------


def _normalise_json(node: Any) -> Any:
    """CQL2-JSON in the form pygeofilter 0.4's parser reads correctly."""
    if isinstance(node, list):
        return [_normalise_json(item) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"bbox"}:
        box = node["bbox"]  # pygeofilter would fill Envelope's fields in the wrong order
        if not isinstance(box, list) or len(box) not in (4, 6) or not all(map(_is_number, box)):
            raise ValueError(f"a bbox is 4 or 6 numbers, not {box!r}")
        return ast.Function("bbox", list(box))  # as the text encoding's BBOX(...)
    if node.get("type") == "GeometryCollection" and "geometries" in node:
        return values.Geometry(node)
    out = {key: _normalise_json(item) for key, item in node.items()}
    args = out.get("args")
    if out.get("op") == "t_disjoint" and isinstance(args, list) and len(args) == 2:
        return ast.TimeDisjoint(*(parse_cql2_json(arg) for arg in args))  # unknown to 0.4
    if out.get("op") == "between" and isinstance(args, list) and len(args) == 3:
        out["args"] = [args[0], [args[1], args[2]]]
    return out


# pygeofilter 0.4's CQL2-text grammar, with the standard's rules where it differs:
# AND binds tighter than OR and NOT takes any condition (it had one precedence
# for both and "NOT (predicate)" only), temporal predicates in function form,
# intervals of dates and open ('..') ends, and '' for a quote inside a string.
_GRAMMAR_FIXES = (
    (r"\?condition:.*?(?=\?predicate:)", """?condition: conjunction
          | condition "OR"i conjunction -> or_
?conjunction: condition_1
            | conjunction "AND"i condition_1 -> and_
?condition_1: predicate
            | "NOT"i condition_1 -> not_
            | "(" condition ")"
"""),
    (r"!_binary_temporal_predicate_func: ", '!_binary_temporal_predicate_func: "T_DISJOINT"i | '),
    (r"(\?temporal_predicate: .*? -> binary_temporal_predicate)",
     r"""\1
    | _binary_temporal_predicate_func "(" expression "," expression ")" -> temporal_function"""),
    (r"\?interval: .*?\n", """?interval: "INTERVAL" "(" "'" _bound "'" "," "'" _bound "'" ")"
_bound: DATETIME | DATE | OPEN
OPEN: ".."
"""),
    (r"SINGLE_QUOTED: .*?\n", "SINGLE_QUOTED: /'(?:[^']|'')*'/\n"),
)  # fmt: skip


_TEMPORAL_NAMES = {**TEMPORAL_PREDICATES_MAP, "t_disjoint": ast.TimeDisjoint}


@v_args(inline=True)
class _Transformer(cql2_text_parser.CQLTransformer):
    def binary_temporal_predicate(self, lhs: Any, op: Any, rhs: Any) -> ast.Node:
        return _TEMPORAL_NAMES[op.lower()](lhs, rhs)

    def temporal_function(self, op: Any, lhs: Any, rhs: Any) -> ast.Node:
        return _TEMPORAL_NAMES[op.lower()](lhs, rhs)

    def OPEN(self, token: Any) -> None:  # noqa: N802 - Lark names terminal callbacks so
        return None

    def SINGLE_QUOTED(self, token: Any) -> str:  # noqa: N802
        return token[1:-1].replace("''", "'")


@lru_cache(maxsize=1)
def _text_parser() -> Callable[[str], Any]:
    path = Path(cql2_text_parser.__file__).with_name("grammar.lark")
    grammar = path.read_text(encoding="utf-8")
    for pattern, replacement in _GRAMMAR_FIXES:
        grammar, found = re.subn(pattern, replacement, grammar, count=1, flags=re.S)
        if not found:
            logger.warning("pygeofilter's CQL2-text grammar has changed; using it unmended")
            return parse_cql2_text
    lark = Lark(
        grammar, parser="lalr", maybe_placeholders=False, transformer=_Transformer(),
        import_paths=[str(path.parent.parent)], source_path=str(path),
    )  # fmt: skip
    return lark.parse
