# Reproduction of Z. Liao, "Trainable Activation Function in Image Classification"
# (arXiv 2004.13271). README.md says how to run it; config.yaml holds the paper's setting,
# workflow/presets/ the quick and smoke presets.
#
#   snakemake --cores all              the whole paper (GPU if present, else CPU)
#   snakemake --cores all report       up to the paper report
#   snakemake --report report.html     Snakemake's report of the finished run
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


# The front page of Snakemake's HTML report (`snakemake --report report.html`); the captions of
# its results are trainact.report.captions' (workflow/html_report/captions, see common.smk).
report: "workflow/html_report/workflow.rst"


# common.smk puts the repository's src/ first on sys.path (trainact.names: sizes, activations).
include: "workflow/rules/common.smk"


wildcard_constraints:
    size="|".join(names.SIZES),
    activation="|".join(names.ACTIVATIONS),
    seed=r"\d+",
    first_phase=r"\d+",


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/autoencoder.smk"
include: "workflow/rules/pso.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/paper.smk"


localrules:
    all,


rule all:
    default_target: True
    input:
        TABLE_FILES.values(),
        FIGURE_FILES,
        PROVENANCE,
        PAPER_FILES,
        SCHEDULE_AXIS_FILES,
        SCHEDULE_AXIS_FIGURES,
