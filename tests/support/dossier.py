"""Reading a dossier (问责卷宗) back: its sections, event rows, positions and digest, by the data-* attributes it carries.

The dossier is made for printing, but it marks every section, event row and the digest it verifies against
with data-* attributes, so a test (or an auditor's script) can check it without scraping the text.
"""

from __future__ import annotations

from html.parser import HTMLParser


class Parsed(HTMLParser):
    """The sections, the event rows per section, the positions, the holders in force and the digest of a dossier."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict[str, str]] = {}
        self.rows_in: dict[str, int] = {}
        self.positions: list[int] = []
        self.digest: dict[str, str] = {}
        self.holders: list[dict[str, str]] = []  # the responsibility rows (data-party, data-role) in force then
        self.text: list[str] = []
        self._section = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "section":
            self._section = a.get("id", "")
            self.sections[self._section] = a
        elif tag == "tr" and "data-event-id" in a:
            self.rows_in[self._section] = self.rows_in.get(self._section, 0) + 1
            self.positions.append(int(a["data-position"]))
        elif tag == "tr" and "data-role" in a:
            self.holders.append(a)
        elif tag == "table" and a.get("id") == "digest":
            self.digest = a

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Parsed:
    page = Parsed()
    page.feed(html)
    page.close()
    return page
