# Section 5.2: the middle ReLU CNN trained by particle swarm optimisation instead of
# backpropagation (its reference is the train job of the same model and seed).
#
# What makes each output (src/trainact/):
#   pso  history.csv, best.pt, summary.json   pso.train_pso (Swarm, NetworkLoss)


rule pso:
    input:
        data=PREPARED,
    output:
        history=f"{PSO_DIR}/history.csv",
        best=f"{PSO_DIR}/best.pt",
        summary=f"{PSO_DIR}/summary.json",
    log:
        f"{LOGS}/pso/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/pso/seed{{seed}}.tsv"
    conda:
        "../../envs/training.yaml"
    threads: JOB_THREADS
    resources:
        gpu_slots=1,
        mem_mb=8000,
        runtime=480,
    params:
        slice=canonical(SECTION5_SLICES["pso"]),
        code=CODE["pso"],
        out_dir=lambda wc, output: os.path.dirname(output.history),
    shell:
        "exec python -m trainact pso --data {input.data:q} --seed {wildcards.seed}"
        " --params {params.slice:q} --out-dir {params.out_dir:q} --no-progress"
        " > {log:q} 2>&1"
