"""README.ru.md is the whole guide in Russian: the same sections as README.md,
in the same order and at the same levels, with as many code blocks in each.
A section added to one and not yet to the other fails with the section's name."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*)")


def sections(path: Path) -> list[tuple[int, str, int]]:
    """(heading level, heading, fenced code blocks) of each section, in order;
    the text before the first heading is a section of level 0."""
    found = [(0, "(before the first heading)", 0)]
    fence = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        opening = FENCE.match(line)
        if fence:
            if opening and opening.group(1) == fence:
                fence = ""
            continue
        if opening:
            fence = opening.group(1)
            level, title, blocks = found[-1]
            found[-1] = (level, title, blocks + 1)
        elif heading := HEADING.match(line):
            found.append((len(heading.group(1)), heading.group(2).strip(), 0))
    return found


def _describe(section: tuple[int, str, int]) -> str:
    level, title, blocks = section
    return f"{'#' * level} {title} ({blocks} code block(s))"


def test_the_russian_readme_has_the_sections_and_code_blocks_of_the_english_one():
    english, russian = sections(ROOT / "README.md"), sections(ROOT / "README.ru.md")
    if [(level, blocks) for level, _, blocks in english] == [
            (level, blocks) for level, _, blocks in russian]:
        return
    number = next((number for number, (en, ru) in enumerate(zip(english, russian, strict=False))
                   if (en[0], en[2]) != (ru[0], ru[2])), min(len(english), len(russian)))
    english_here = _describe(english[number]) if number < len(english) else "nothing more"
    russian_here = _describe(russian[number]) if number < len(russian) else "nothing more"
    after = english[number - 1][1] if number else "the start"
    raise AssertionError(
        f"README.md has {len(english)} sections, README.ru.md {len(russian)}; they part after"
        f" {after!r}: next in README.md is {english_here}, in README.ru.md {russian_here}."
        " Translate the missing section into README.ru.md (same heading level, same code"
        " blocks) at that place.")
