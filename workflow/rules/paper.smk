# The reproduction report: provenance (dataset checksum, hardware, versions, the devices of the
# training runs from their summary.json, wall times from the benchmark files), then report.md
# and report.tex from the tables and figures, and report.pdf where a TeX engine is installed.
# `snakemake paper_report` builds it (`snakemake report` too: the rule `report` below).
#
# What makes each output (src/trainact/):
#   provenance    provenance.json                      provenance.collect (run_devices)
#   paper_report  paper/report.md, report.tex, .pdf    paper_report.make_report (build_context,
#                                                      render with paper/*.j2; pdf.build_pdf)
#                 paper/settings.yaml                  run_settings.write_settings (the run's full
#                                                      config; the report prints its SHA-256)

# The paper config: the repository's config.yaml with the schema's defaults, what `snakemake`
# runs without a preset. The report's Appendix A lists this run's settings that differ from it
# (in the same slice as the run's own settings: without `devices`).
PAPER_CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
check_config(PAPER_CONFIG)
PAPER_SETTINGS = plan.analysis_params(PAPER_CONFIG)["paper_report"]["settings"]


rule provenance:
    input:
        data=PREPARED,
        results=RESULT_INPUTS.values(),
        summaries=RUN_SUMMARIES,
        tables=TABLE_FILES.values(),
        figures=FIGURE_FILES,
    output:
        PROVENANCE,
    log:
        f"{LOGS}/provenance.log",
    benchmark:
        f"{BENCHMARKS}/provenance/provenance.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        benchmarks=lambda wc: BENCHMARKS,
        # relative: moving the project folder changes no param (nothing reruns)
        repo=lambda wc: os.path.relpath(REPO),
        code=CODE["provenance"],
    shell:
        "python -m trainact provenance --out {output:q} --dataset {input.data:q}"
        " --benchmarks {params.benchmarks:q} --repo {params.repo:q}"
        " --summaries {input.summaries:q} > {log:q} 2>&1"


rule paper_report:
    input:
        summary=TABLE_FILES["summary.json"],
        sensitivity=SENSITIVITY_FILES[0],
        schedule_axis=SCHEDULE_AXIS_FILES[0],
        figures=FIGURE_FILES + SCHEDULE_AXIS_FIGURES,
        figure_tables=FIGURE_TABLE_FILES,
        provenance=PROVENANCE,
        templates=PAPER_REPORT_TEMPLATES,
    output:
        # Flagged for the HTML report here only: Snakemake resolves a caption against the
        # folder of every rule that the flagged path is given to, so the flagged object must
        # not also reach rule all (Snakefile). PAPER_PDF holds no path or one.
        **{
            "pdf": report(
                path, caption=caption("paper_report"), category="Paper report"
            )
            for path in PAPER_PDF
        },
        markdown=report(
            f"{PAPER}/report.md",
            caption=caption("paper_report"),
            category="Paper report",
        ),
        tex=f"{PAPER}/report.tex",
        settings=f"{PAPER}/settings.yaml",
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{BENCHMARKS}/report/report.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        slice=canonical(
            {**ANALYSIS_PARAMS["paper_report"], "paper_settings": PAPER_SETTINGS}
        ),
        pdf="always" if HAVE_TEX else "never",
        code=CODE["paper_report"],
        results=lambda wc: OUT,
        tables=lambda wc, input: os.path.dirname(input.summary),
        figures=lambda wc: FIGURES,
        templates=lambda wc, input: os.path.dirname(input.templates[0]),
        out_dir=lambda wc, output: os.path.dirname(output.markdown),
    shell:
        "python -m trainact paper-report --results {params.results:q} --tables {params.tables:q}"
        " --figures {params.figures:q} --out-dir {params.out_dir:q}"
        " --params {params.slice:q} --pdf {params.pdf} --provenance {input.provenance:q}"
        " --templates {params.templates:q} --sensitivity {input.sensitivity:q}"
        " --schedule-axis {input.schedule_axis:q}"
        " > {log:q} 2>&1"


# `snakemake report`, the name the paper report's target had first: its files, nothing to run.
localrules:
    report,


rule report:
    input:
        PAPER_FILES,
