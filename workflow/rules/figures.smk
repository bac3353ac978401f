# The paper's Figures 2-9, the learned activation curves and the network structure, each as
# PNG (in Snakemake's HTML report, with a caption) and PDF (for the paper report).
#
# What makes each output (src/trainact/report/figures.py, make_figures -> draw_<group>; the
# plotting functions in src/trainact/report/plot_*.py, named by trainact.report.figure_list):
#   fig2-fig7 (validation / training curves per size)  plot_curves
#   fig8 (autoencoder)                                  plot_autoencoder
#   fig9 (PSO)                                          plot_pso (its RMSProp line is the number
#                                                       tables/summary.json holds)
#   activations, activation_health, structure           plot_activations, plot_health, plot_structure
#   structure_layers.csv (the structure's layer table,  plot_structure.write_structure_table
#   a table of the paper report)

# The tables that come with the figures (trainact.report.figure_list.FIGURE_TABLES).
FIGURE_TABLE_FILES = [
    f"{FIGURES}/{name}" for name in figure_list.figure_tables(FIGURE_STEMS)
]


rule figures:
    input:
        **RESULT_INPUTS,
        activations=FIGURE_ACTIVATION_INPUTS,
        summary=TABLE_FILES["summary.json"],
    output:
        [
            report(
                f"{FIGURES}/{stem}.png",
                caption=caption(stem),
                category="Figures",
            )
            for stem in FIGURE_STEMS
        ],
        pdfs=[f"{FIGURES}/{stem}.pdf" for stem in FIGURE_STEMS],
        tables=FIGURE_TABLE_FILES,
    log:
        f"{LOGS}/figures.log",
    benchmark:
        f"{BENCHMARKS}/figures/figures.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        slice=canonical(ANALYSIS_PARAMS["figures"]),
        code=CODE["figures"],
        results=lambda wc: OUT,
        out_dir=lambda wc, output: os.path.dirname(output.pdfs[0]),
    shell:
        "python -m trainact figures --results {params.results:q} --out-dir {params.out_dir:q}"
        " --params {params.slice:q} --no-progress > {log:q} 2>&1"
