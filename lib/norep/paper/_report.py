"""How a chapter shows a claim's verdict: as Markdown, tagged for the book's claims page."""

from __future__ import annotations

from norep.claims import ClaimResult
from norep.claims._core import STATUS_MEANING


def report_claim(result) -> None:
    """Show a claim's verdict (a :class:`norep.claims.ClaimResult`) as Markdown and tag it for the
    book's claims page.

    The verdict is printed in the words of its status (the same words as the claims page), followed by
    what the status means (:data:`norep.claims._core.STATUS_MEANING`). The verdict, its interval, what
    was resampled and the models and pairs it rests on all come from the claim; nothing here decides
    anything.
    """
    if not isinstance(result, ClaimResult):
        raise ValueError("report_claim takes the ClaimResult of a claim of norep.paper")
    from IPython.display import Markdown, display

    lead = f"This run: **{result.status}**: {STATUS_MEANING[result.status]}."
    if result.kind == "method check":
        lead = f"*Method check.* {lead}"
    rests = (
        f"{result.n_models} models, {result.n_pairs} pairs; resampled: {result.resampled}"
        if result.status != "not testable"
        else f"{result.n_models} models, {result.n_pairs} pairs"
    )
    text = (
        f"**Claim {result.claim}.** {lead}\n\n- Paper: {result.paper}\n- This run: {result.sentence}\n"
        f"- Rests on: {rests}\n"
    )
    display(Markdown(text), metadata={"norep_claim": {**result.record(), "this_run": result.sentence}})
