# Helpers shared by the rule files: config slices as plain, JSON-serialisable parameters.
import json


def as_json(value):
    """A config slice as a compact JSON string: a change of any value changes the string (rerun trigger)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


SIM_DIR = config["simulation"]["directory"]
