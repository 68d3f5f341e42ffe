"""One module per relation kind; this registry is the only place that lists them.

Each module has `KINDS` (the `Rule.relation` values it owns), `GRAMMAR` (lark productions over the
lexicon's token categories; the first line's name is a clause alternative) and `READERS` (clause
alternative -> function from parsed parts to Rule fields). Measuring, solving and drawing live in
the same modules where a kind has them.
"""

from __future__ import annotations

from types import ModuleType

from mugpos.rules.relations import align, count, edge, gap, on_surface, relative, side

MODULES: tuple[ModuleType, ...] = (gap, edge, side, relative, on_surface, count, align)

BY_KIND: dict[str, ModuleType] = {k: m for m in MODULES for k in m.KINDS}
READERS = {alt: fn for m in MODULES for alt, fn in m.READERS.items()}
GRAMMAR = "\n".join(m.GRAMMAR for m in MODULES)
ALTERNATIVES: tuple[str, ...] = tuple(READERS)
