"""Score the grammar on a corpus of how people write rules: exact matches and silent misreads.

A corpus file has one case a line: `phrasing => expected`, where expected is a short form of the
structured rule(s) (`;` between several), `refuse`, or `nc SUBJECT` (understood, not checkable):

    gap>= mug laptop 15.24      every mug >= 15.24 cm from every laptop (gap<= for at most)
    apart>= mug 5               every two mugs >= 5 cm apart (apart<= for grouping)
    edge>= mug 10 front         edge distance; edges optional (default all four)
    side mug right image not    side; frame and negation optional
    rel mug right_of laptop not relative to an object
    on mug not                  on the table (or not)
    count mug <= 2              at most / at least
    align mug row 2             row or column, tolerance
    nc drink                    not checkable; subject only
    ... !c / !i                 severity critical / info (default warning)

A silent misread is a case read as a checkable rule different from the expected one, or read at
all when a refusal or `not_checkable` was expected. Lines starting with `#` are comments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mugpos.errors import RuleError
from mugpos.rules.model import Rule
from mugpos.scene.labels import DRINK_LABELS, ELECTRONICS_LABELS, MUG_LABELS

GROUPS: dict[str, list[str]] = {
    "mug": sorted(MUG_LABELS),
    "drink": sorted(DRINK_LABELS),
    "electronics": sorted(ELECTRONICS_LABELS),
}
_ALL_EDGES = ["back", "front", "left", "right"]


def _labels(word: str) -> list[str] | str:
    if word == "any":
        return "any"
    out: set[str] = set()
    for part in word.split("+"):
        out |= set(GROUPS.get(part, [part.replace("_", " ")]))
    return sorted(out)


def expected(spec: str) -> list[dict[str, Any]] | str:
    """The canonical forms a spec stands for, or 'refuse'."""
    spec = spec.strip()
    if spec == "refuse":
        return "refuse"
    return [_one(part.split()) for part in spec.split(";")]


def _one(w: list[str]) -> dict[str, Any]:
    sev = "warning"
    if w and w[-1] in ("!c", "!i"):
        sev = {"!c": "critical", "!i": "info"}[w.pop()]
    kind, args = w[0], w[1:]
    c: dict[str, Any] = {"severity": sev, "checkable": True, "subject": _labels(args[0])}
    if kind == "nc":
        return {"checkable": False, "subject": _labels(args[0])}
    if kind in ("gap>=", "gap<="):
        c |= {"relation": "min_gap" if kind == "gap>=" else "max_gap", "target": _labels(args[1]),
              "threshold_cm": float(args[2])}  # fmt: skip
    elif kind in ("apart>=", "apart<="):
        c |= {"relation": "min_gap" if kind == "apart>=" else "max_gap", "target": "each_other",
              "threshold_cm": float(args[1])}  # fmt: skip
    elif kind in ("edge>=", "edge<="):
        c |= {"relation": "edge_distance", "bound": "min" if kind == "edge>=" else "max",
              "threshold_cm": float(args[1]), "edges": sorted(args[2:]) or _ALL_EDGES}  # fmt: skip
    elif kind == "side":
        c |= {"relation": "side", "region": args[1], "frame": "image" if "image" in args else "surface",
              "negated": "not" in args}  # fmt: skip
    elif kind == "rel":
        c |= {
            "relation": "relative",
            "direction": args[1],
            "target": _labels(args[2]),
            "negated": "not" in args,
        }
    elif kind == "on":
        c |= {"relation": "on_surface", "negated": "not" in args}
    elif kind == "count":
        c |= {"relation": "count", "bound": "max" if args[1] == "<=" else "min", "count": int(args[2])}
    elif kind == "align":
        c |= {"relation": "align", "axis": args[1], "threshold_cm": float(args[2]) if len(args) > 2 else 2.0}
    else:
        raise ValueError(f"unknown corpus kind {kind!r}")
    return c


def canonical(rule: Rule, like: dict[str, Any]) -> dict[str, Any]:
    """The rule's fields that `like` names, in the corpus's terms."""
    out: dict[str, Any] = {}
    for key in like:
        if key == "subject":
            out[key] = "any" if rule.subject.kind == "any" else sorted(rule.subject.labels)
        elif key == "target":
            t = rule.target
            out[key] = (
                None if t is None else (t.kind if t.kind in ("any", "each_other") else sorted(t.labels))
            )
        elif key == "edges":
            out[key] = sorted(rule.edges)
        else:
            out[key] = getattr(rule, key)
    return out


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    for k, v in a.items():
        w = b.get(k)
        if isinstance(v, float) and isinstance(w, (int, float)):
            if not math.isclose(v, w, abs_tol=0.01):
                return False
        elif v != w:
            return False
    return True


@dataclass
class Score:
    total: int = 0
    exact: int = 0
    silent: list[str] = field(default_factory=list)
    wrong_refusals: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    expected_refusals: int = 0

    @property
    def accuracy(self) -> float:
        return self.exact / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "cases": self.total,
            "exact": self.exact,
            "exact_pct": round(100 * self.accuracy, 1),
            "expected_refused_or_not_checkable": self.expected_refusals,
            "silent_misreads": len(self.silent),
            "refused_but_readable": len(self.wrong_refusals),
            "silent_examples": self.silent[:10],
            "misses": self.misses[:20],
        }


def load(path: Path) -> list[tuple[str, str]]:
    cases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        text, _, spec = line.rpartition("=>")
        cases.append((text.strip(), spec.strip()))
    return cases


def score(cases: list[tuple[str, str]], max_chars: int = 1000) -> Score:
    """Exact matches and silent misreads of the grammar on these cases."""
    from mugpos.rules.grammar import parse_rules

    s = Score()
    for text, spec in cases:
        s.total += 1
        want = expected(spec)
        if want == "refuse" or (isinstance(want, list) and not want[0].get("checkable", True)):
            s.expected_refusals += 1
        try:
            got = parse_rules(text, max_chars=max_chars)
        except RuleError as exc:
            if want == "refuse":
                s.exact += 1
            else:
                s.wrong_refusals.append(text)
                s.misses.append(f"{text} => refused ({exc.message}); want {spec}")
            continue
        if want == "refuse":
            if all(not r.checkable for r in got):
                s.exact += 1  # not_checkable is an accepted answer where a refusal was expected
            else:
                s.silent.append(f"{text} => {[r.interpretation for r in got]}; want refuse")
                s.misses.append(s.silent[-1])
            continue
        assert isinstance(want, list)
        ok = len(got) == len(want) and all(_same(w, canonical(r, w)) for r, w in zip(got, want, strict=False))
        if ok:
            s.exact += 1
            continue
        line = f"{text} => {[r.interpretation + ' ' + r.severity for r in got]}; want {spec}"
        s.misses.append(line)
        # reading it as a different checkable rule is silent; not_checkable is a safe miss
        if any(r.checkable for r in got):
            s.silent.append(line)
    return s


def corpus_dir() -> Path | None:
    """tests/rules/corpus beside the package, when running from a checkout."""
    here = Path(__file__).resolve().parents[2] / "tests" / "rules" / "corpus"
    return here if here.is_dir() else None
