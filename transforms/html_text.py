"""HTML mail bodies to plain text, keeping table rows as `Label: value` lines."""

from __future__ import annotations

_BLOCKS = ("p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tr")


def html_to_text(html: str) -> str:
    from bs4 import BeautifulSoup  # imported here: a command that reads no HTML mail skips it

    soup = BeautifulSoup(html, "html.parser")
    for hidden in soup(["script", "style", "head", "title"]):
        hidden.decompose()
    for row in soup.find_all("tr"):
        cells = [cell.get_text(" ", strip=True) for cell in row.find_all(["td", "th"])]
        cells = [cell for cell in cells if cell]
        if len(cells) == 2:
            label = cells[0].rstrip(":")
            row.replace_with(f"\n{label}: {cells[1]}\n")
        elif cells:
            row.replace_with("\n" + " ".join(cells) + "\n")
    for tag in soup.find_all(_BLOCKS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    lines = (" ".join(line.split()) for line in soup.get_text().splitlines())
    return "\n".join(line for line in lines if line)
