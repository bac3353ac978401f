# Table 1 and Table 2 of the paper (best value per run, mean and spread over seeds), the
# per-run bests, and summary.json with the Section 5 experiments and the verdicts on the
# paper's claims, for the figures and report.
#
# What makes each output (src/trainact/analysis/):
#   aggregate    tables/table1.*, table2.*, runs.csv, summary.json   aggregate.aggregate
#                (tables.table1, tables.table2, results.collect_runs,
#                section5.summarize_autoencoder, section5.summarize_pso,
#                claims.summarize_claims)
#   sensitivity  tables/sensitivity.json, sensitivity.csv            sensitivity.sensitivity


rule aggregate:
    input:
        **RESULT_INPUTS,
        summaries=TRAIN_SUMMARIES,
    output:
        table1=report(
            TABLE_FILES["table1.csv"],
            caption=caption("table1"),
            category="Tables",
        ),
        table2=report(
            TABLE_FILES["table2.csv"],
            caption=caption("table2"),
            category="Tables",
        ),
        table1_json=TABLE_FILES["table1.json"],
        table2_json=TABLE_FILES["table2.json"],
        runs=TABLE_FILES["runs.csv"],
        summary=TABLE_FILES["summary.json"],
    log:
        f"{LOGS}/aggregate.log",
    benchmark:
        f"{BENCHMARKS}/aggregate/aggregate.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        slice=canonical(ANALYSIS_PARAMS["aggregate"]),
        code=CODE["aggregate"],
        results=lambda wc: OUT,
        out_dir=lambda wc, output: os.path.dirname(output.summary),
    shell:
        "python -m trainact aggregate --params {params.slice:q} --results {params.results:q}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"


# The sensitivity study (config `sensitivity`): Table 2 and the verdicts of claims 1 and 2 per
# variant of the unstated choices; "not run" when the study is off.
rule sensitivity:
    input:
        SENSITIVITY_INPUTS,
    output:
        json=SENSITIVITY_FILES[0],
        csv=report(
            SENSITIVITY_FILES[1],
            caption=caption("sensitivity"),
            category="Tables",
        ),
    log:
        f"{LOGS}/sensitivity.log",
    benchmark:
        f"{BENCHMARKS}/aggregate/sensitivity.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        slice=canonical(SENSITIVITY_PARAMS),
        code=CODE["sensitivity"],
        out_dir=lambda wc, output: os.path.dirname(output.json),
    shell:
        "python -m trainact sensitivity --params {params.slice:q}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"


# The schedule axis (config `schedule_axis`): per L the paired differences over the ReLU CNN at
# the final epoch and best over epochs, the eval-mode training accuracy at epoch L, the verdicts
# of claims 1 and 2, and the figure of the differences against L; "not run" when the axis is off.
rule schedule_axis:
    input:
        SCHEDULE_AXIS_INPUTS,
    output:
        json=SCHEDULE_AXIS_FILES[0],
        csv=report(
            SCHEDULE_AXIS_FILES[1],
            caption=caption("schedule_axis"),
            category="Tables",
        ),
        figure=report(
            SCHEDULE_AXIS_FIGURES[0],
            caption=caption("schedule_axis"),
            category="Figures",
        ),
        figure_pdf=SCHEDULE_AXIS_FIGURES[1],
    log:
        f"{LOGS}/schedule_axis.log",
    benchmark:
        f"{BENCHMARKS}/aggregate/schedule_axis.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        slice=canonical(SCHEDULE_AXIS_PARAMS),
        code=CODE["schedule_axis"],
        out_dir=lambda wc, output: os.path.dirname(output.json),
        figure_dir=lambda wc, output: os.path.dirname(output.figure),
    shell:
        "python -m trainact schedule-axis --params {params.slice:q}"
        " --out-dir {params.out_dir:q} --figure-dir {params.figure_dir:q} > {log:q} 2>&1"
