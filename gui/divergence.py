"""What the window says when a run diverges: which control to blame, and what to do.

One rule resumes a diverged run, the same for every control: **any change of a setting
continues from the last sane weights (those before the update that blew up), and Reset starts
from fresh ones** (training goes on at once if Run is on). A change that does not cure the
cause diverges again, with a new note.
The engine applies it (``core.session.Session.update``); this module only words it.

The blame goes to the training setting changed last (the learning rate when none was), and
the note appears under that control, where the user will change it: first what happened and
what to do, in two or three lines; then, after a blank line, the details (the engine's reason
in full, why the setting led there, the rule above), which the control panel folds away under
"Details" so that a narrow panel keeps its buttons in sight.
"""

from __future__ import annotations

import re

from core.snapshot import Snapshot

#: settings whose change can make a run diverge, in the words of the controls
CAUSES = {
    "lr": "learning rate",
    "reduction": "reduction",
    "loss": "loss",
    "optimizer": "optimiser",
    "batch_size": "batch size",
    "hidden": "hidden layers",
    "activation": "activation",
}

RESUME_RULE = "Any change of a setting continues from the last sane weights; Reset starts afresh."


def suggested_lr(lr: float) -> float:
    """A learning rate a few times smaller, on the spin box's grid of 10^(k/4)."""
    return float(f"{lr / 10**0.5:.3g}")


def headline(reason: str) -> str:
    """The first clause of the engine's reason, in words: 'the loss grew to 1.31e+10'."""
    first = re.split(r"[,;(]", reason, maxsplit=1)[0].strip()
    first = re.sub(r" at step \d+$", "", first)
    return re.sub(r"became -?(nan|inf)\b", "stopped being a finite number", first)


def divergence_text(snap: Snapshot, cause: str) -> str:
    """The note shown under the control named by ``cause`` (a key of CAUSES): what happened
    and what to do, a blank line, then the details (module docstring)."""
    cfg = snap.config
    lower = f"lower the learning rate (e.g. to {suggested_lr(cfg.lr):g})"
    why = ""
    if cause == "reduction" and cfg.reduction in ("sum", "max"):
        todo = f"The {cfg.reduction} reduction takes longer steps: go back to mean, or {lower}."
        why = (
            "Its steps are B times the mean's. "
            if cfg.reduction == "sum"
            else "Its steps are those of one entry of M, which the mean spreads over all of M. "
        )
    elif cause == "lr":
        todo = f"{lower[0].upper()}{lower[1:]}, or Reset."
        why = f"The learning rate {cfg.lr:g} is too large here. "
    else:
        todo = f"Since the {CAUSES.get(cause, cause)} changed: change it back, or {lower}."
    reason = snap.message.removeprefix("Diverged: ").split(". The last finite")[0]
    short = f"Diverged (the run stands at step {snap.step}): {headline(reason)}. {todo}"
    return f"{short}\n\nWhy: {reason}. {why}{RESUME_RULE}"
