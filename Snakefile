# sardem: Sentinel-1 / SRTM / Sentinel-2 training datasets for SAR-to-optical translation in mountains.
# The Snakefile only loads and validates the configuration and includes the rules.
from snakemake.utils import min_version, validate

from pipeline.config import SCHEMA_PATH

min_version("8.0")


configfile: "config.yaml"


validate(config, str(SCHEMA_PATH))


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/sar.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"


rule all:
    default_target: True
    input:
        rules.dataset.input,
