# Helpers shared by the workflow: config slices as plain, JSON-serialisable parameters.
import json
from pathlib import Path


def as_json(value):
    """A config slice as a compact JSON string: a change of any value changes the string (rerun trigger)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def parent_dir(path):
    """The directory of an output file, as a string (for commands that take a directory)."""
    return str(Path(path).parent)


SIM_DIR = config["simulation"]["directory"]
