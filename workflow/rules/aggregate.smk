# Table 1 and Table 2 of the paper (best value per run, mean and spread over seeds), the
# per-run bests, and summary.json with the Section 5 experiments, for the figures and report.


rule aggregate:
    input:
        **RESULT_INPUTS,
    output:
        table1=report(
            TABLE_FILES["table1.csv"],
            caption="../report/table1.rst",
            category="Tables",
        ),
        table2=report(
            TABLE_FILES["table2.csv"],
            caption="../report/table2.rst",
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
        slice=canonical(GRID),
        args=AGGREGATE_ARGS,
        code=CODE["aggregate"],
        results=lambda wc: OUT,
        out_dir=lambda wc, output: os.path.dirname(output.summary),
    shell:
        "python -m trainact aggregate --results {params.results:q}"
        " --out-dir {params.out_dir:q} {params.args} > {log:q} 2>&1"
