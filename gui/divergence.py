"""What the window says when a run diverges: which control to blame, and what to do.

One rule resumes a diverged run, the same for every control: **any change of a setting
continues from the last sane weights (those before the update that blew up), and Reset starts
from fresh ones** (training goes on at once if Run is on). A change that does not cure the
cause diverges again, with a new note.
The engine applies it (``core.session.Session.update``); this module only words it.

The blame goes to the training setting changed last (the learning rate when none was), and
the message appears under that control in full, where the user will change it.
"""

from __future__ import annotations

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

RESUME_RULE = (
    "Any change of a setting continues from the last sane weights; Reset starts afresh."
)


def suggested_lr(lr: float) -> float:
    """A learning rate a few times smaller, on the spin box's grid of 10^(k/4)."""
    return float(f"{lr / 10 ** 0.5:.3g}")


def divergence_text(snap: Snapshot, cause: str) -> str:
    """The full message shown under the control named by ``cause`` (a key of CAUSES)."""
    cfg = snap.config
    lower = f"lower the learning rate (e.g. to {suggested_lr(cfg.lr):g})"
    if cause == "reduction" and cfg.reduction in ("sum", "max"):
        longer = (
            "B times the mean's"
            if cfg.reduction == "sum"
            else "those of one entry of M, which the mean spreads over all of M"
        )
        what = (
            f"The {cfg.reduction} reduction takes longer steps ({longer}): "
            f"{lower}, or go back to mean."
        )
    elif cause == "lr":
        what = f"The learning rate {cfg.lr:g} is too large here: {lower}."
    else:
        what = f"Since the {CAUSES.get(cause, cause)} changed: {lower} or change it back."
    reason = snap.message.removeprefix("Diverged: ").split(". The last finite")[0]
    return f"Diverged (the run stands at step {snap.step}): {reason}. {what} {RESUME_RULE}"
