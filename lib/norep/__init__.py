"""norep: companion library to "No One Representation to Rule Them All" (ICLR 2022).

Importing ``norep`` has no side effects: no seeding, no plotting defaults, no network.
Submodules are imported explicitly, e.g. ``from norep.measures import metrics``.
"""

__version__ = "0.1.0"

CATEGORIES = ("REINIT", "HPARAM", "ARCH", "FWORK", "DATASET")
"""The paper's five categories of training-methodology divergence (Sec. 3.1), in order."""

CATEGORY_LABELS = {
    "REINIT": "Reinit",
    "HPARAM": "Hyper-parameters",
    "ARCH": "Architecture",
    "FWORK": "Framework",
    "DATASET": "Dataset",
}
"""How figures and tables name the categories."""

CONTROL_ROLE = "control"
"""The metadata ``role`` of a control: a model kept in a store as a reference point (an untrained encoder, a
non-neural learner) that is no training method of any category, so outside every category's statistics."""

__all__ = ["CATEGORIES", "CATEGORY_LABELS", "CONTROL_ROLE", "__version__"]
