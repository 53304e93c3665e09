"""Stories for the dedup tests: two articles on one topic from one newsroom (the same
template, the same beat, different stories), and a page template they can share."""

from __future__ import annotations

BIKE_LANES = [
    "The city council voted seven to two on Tuesday night to approve a budget of 14 "
    "million dollars for protected bike lanes along Harbor Avenue and Fifth Street, "
    "ending a debate that had stretched over three public hearings since the spring.",
    "Supporters packed the chamber wearing yellow shirts. Several parents described "
    "crossing Harbor Avenue with children on the way to the elementary school, and a "
    "delivery rider said he had been clipped by a turning truck twice this year.",
    "Opponents, mostly shop owners from the Fifth Street corridor, warned that removing "
    "forty parking spaces would drive customers to the malls outside town. The council "
    "added a clause requiring loading zones on every block before construction starts.",
    "Work on the first segment is expected to begin in March and to last about eight "
    "months, the transportation department said in a statement after the vote.",
]

LIBRARY_HOURS = [
    "The city council voted five to four on Tuesday night to cut the hours of the three "
    "branch libraries by a third, closing them on Mondays and Thursdays from January to "
    "cover a shortfall in the parks and culture budget.",
    "Librarians and students filled the public comment period. A retired teacher said "
    "the Eastside branch was the only quiet place many teenagers had for homework, and "
    "the union warned that part-time staff would lose their health coverage.",
    "The mayor's office argued that visits had fallen since the pandemic and that the "
    "savings, about 900,000 dollars a year, would keep the pools open next summer. Two "
    "council members promised to revisit the decision when the sales tax figures arrive.",
    "The new schedule takes effect on the first Monday of the year, according to a "
    "notice posted on the library system's website after the vote.",
]

EDITORS_NOTE = (
    "This story was first published by our partners at the Harbor City Ledger and is "
    "republished here with permission as part of a regional news sharing agreement."
)


def text(paragraphs: list[str]) -> str:
    return "\n\n".join(paragraphs)


def page(title: str, paragraphs: list[str], *, canonical: str | None = None) -> str:
    """An article page in one newsroom's template: navigation, a sidebar, a long footer —
    the same words around every story."""
    link = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} | Harbor City Ledger</title>{link}
</head><body>
<nav><a href="/">Home</a> <a href="/news">News</a> <a href="/city">City Hall</a>
<a href="/sports">Sports</a> <a href="/opinion">Opinion</a> <a href="/subscribe">Subscribe</a></nav>
<main><article><h1>{title}</h1><p class="byline">By Dana Whitfield, City Hall reporter</p>
{body}</article>
<aside><h2>Most read</h2><ul><li><a href="/a">Ferry schedule changes for the winter</a></li>
<li><a href="/b">High school football playoffs: what to know</a></li>
<li><a href="/c">New bakery opens in the old fire station</a></li></ul></aside></main>
<footer><p>The Harbor City Ledger is an independent, nonprofit newsroom covering city hall,
schools, courts and culture in Harbor City and the surrounding county since 1921. Our
journalism is supported by readers like you; become a member today to keep local news
free for everyone in our community.</p>
<p>Copyright 2026 Harbor City Ledger. All rights reserved. Terms of use. Privacy policy.
Contact the newsroom with tips and corrections at news@ledger.example.</p></footer>
</body></html>"""
