# sardem: Sentinel-1 / SRTM / Sentinel-2 training datasets for SAR-to-optical translation in mountains.
# The Snakefile only loads and validates the configuration and includes the rules.
from snakemake.utils import min_version

from pipeline.config import configure

min_version("8.0")


configfile: "config.yaml"


# against pipeline/schema/config.schema.yaml, plus what a schema cannot say (dates, AOI); defaults filled in
configure(config)


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
