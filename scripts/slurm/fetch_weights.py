"""Fill the shared weight cache with every model of a list, before submitting the extraction array.

Run it once on a machine with network access (a login node), with the cache the tasks will read:

    HF_HOME=/shared/hf-cache TORCH_HOME=/shared/torch-cache python scripts/slurm/fetch_weights.py models.txt

It reads the model list of ``extract_array.sbatch`` (one model per line, its flags ignored, blank
lines and ``#`` comments skipped; ``paper:NAME`` resolved through the paper's registry), loads each
model with its pretrained weights as ``norep extract`` does (and the text tower's tokenizer of
CLIP-like models), and prints one line per model. Exit status 1 when any model could not be
fetched; run it again after fixing that, models already cached load from the cache.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path


def model_names(path: str | os.PathLike) -> list[str]:
    """The models of a list, in order: of each line that is not blank or a comment, what comes before
    its first flag (`` --``; paper names have spaces)."""
    lines = Path(path).read_text().splitlines()
    return [
        re.split(r"\s--", line, maxsplit=1)[0].strip()
        for line in lines
        if line.strip() and not line.lstrip().startswith("#")
    ]


def fetch(name: str) -> str:
    """Load ``name`` with its weights (downloading what is missing); return the load name used."""
    from norep.zoo.loading import load
    from norep.zoo.registry import registry_entry

    load_name = name
    if name.startswith("paper:"):
        entry = registry_entry(name[len("paper:") :])
        if entry is None:
            raise ValueError("not in the paper's registry; see `norep zoo list --paper`")
        if entry["status"] == "not public":
            raise ValueError(f"no public weights ({entry['differs']})")
        load_name = entry["load"]
    model, _ = load(load_name, device="cpu")
    if model.is_clip_like:
        model.encode_text(["a photo of a dog."])  # the tokenizer, where it is fetched separately
    return load_name


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not Path(argv[0]).is_file():
        print(
            "norep-fetch: usage: python scripts/slurm/fetch_weights.py MODELS (an existing model list)", file=sys.stderr
        )
        return 1
    from norep.zoo.loading import UnknownModelError, WeightsUnavailableError

    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        print("norep-fetch: HF_HUB_OFFLINE is set: only checking the cache, nothing is downloaded", file=sys.stderr)
    failed = 0
    for name in model_names(argv[0]):
        try:
            used = fetch(name)
        except (WeightsUnavailableError, UnknownModelError, ValueError, ImportError) as exc:
            print(f"norep-fetch: {name}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"cached: {name}" + (f" ({used})" if used != name else ""))
    if failed:
        print(f"norep-fetch: {failed} model(s) not cached; fix them and run this again", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
