# Training: one job per (size, activation, seed) of the paper's grid (Section 2.2), plus the
# autoencoder's baseline and PSO's reference runs when those lie outside the grid; with
# devices.pack_seeds one job per network trains all its seeds (a pack; common.smk, "training jobs").
#
# What makes each output (src/trainact/):
#   train, train_variant  history.csv, activation_health.csv   training.train (health: calibration.layer_health)
#                         model.pt, activations.json,          training.results.save_results
#                         summary.json
#   train_trunk           history.csv, summary.json, snapshots training.train, training.snapshots


# The five files of a run (trainact.run_files), for one seed or a pack's seeds (common.smk).
RUN_FILES = {
    "history": run_files.HISTORY_FILE,
    "model": run_files.MODEL_FILE,
    "activations": run_files.ACTIVATIONS_FILE,
    "summary": run_files.SUMMARY_FILE,
    "health": run_files.HEALTH_FILE,
}


rule train:
    input:
        data=PREPARED,
    output:
        **run_outputs(TRAIN_DIR, RUN_FILES),
    log:
        f"{LOGS}/train/{{size}}-{{activation}}-{JOB_SEEDS}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{size}}-{{activation}}-{JOB_SEEDS}.tsv"
    conda:
        "../../envs/training.yaml"
    threads: JOB_THREADS
    resources:
        gpu_slots=1,
        mem_mb=8000,
        runtime=240 * (len(SEEDS) if PACK_SEEDS else 1),
    params:
        slice=train_params,
        code=CODE["train"],
        seeds=job_seeds,
        out_dirs=job_out_dirs,
    shell:
        TRAIN_COMMAND


# The sensitivity study's runs: the same job with a variant's model and train settings
# (trainact.workflow_plan, sensitivity study); only runs that no other root already holds are asked for.
use rule train as train_variant with:
    output:
        **run_outputs(VARIANT_TRAIN_DIR, RUN_FILES),
    log:
        f"{LOGS}/sensitivity/{{variant}}/{{size}}-{{activation}}-{JOB_SEEDS}.log",
    benchmark:
        f"{BENCHMARKS}/sensitivity/{{variant}}/{{size}}-{{activation}}-{JOB_SEEDS}.tsv"


# The schedule axis (trainact.workflow_plan, trainact.training.schedules): one trunk per network and
# seed at the first learning rate, keeping its state after every epoch; the branch at L trains
# the tail from the trunk's snapshot after epoch L (train.fit's branch_from), so no trunk epoch
# is computed twice. The trunk's params hold neither the tail nor the list of L: a changed tail
# reruns only the branches.
use rule train as train_trunk with:
    output:
        **run_outputs(
            TRUNK_DIR,
            {
                "history": run_files.HISTORY_FILE,
                "summary": run_files.SUMMARY_FILE,
                **{f"snapshot{L}": run_files.snapshot_file(L) for L in AXIS_BRANCHES},
            },
        ),
    log:
        f"{LOGS}/schedule_axis/trunk/{{size}}-{{activation}}-{JOB_SEEDS}.log",
    benchmark:
        f"{BENCHMARKS}/schedule_axis/trunk/{{size}}-{{activation}}-{JOB_SEEDS}.tsv"
    params:
        slice=trunk_params,


rule train_branch:
    input:
        data=PREPARED,
        snapshot=f"{TRUNK_DIR}/{run_files.snapshot_file('{first_phase}')}",
    output:
        history=f"{BRANCH_DIR}/history.csv",
        model=f"{BRANCH_DIR}/model.pt",
        activations=f"{BRANCH_DIR}/activations.json",
        summary=f"{BRANCH_DIR}/summary.json",
        health=f"{BRANCH_DIR}/activation_health.csv",
    log:
        f"{LOGS}/schedule_axis/L{{first_phase}}/{{size}}-{{activation}}-seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/schedule_axis/L{{first_phase}}/{{size}}-{{activation}}-seed{{seed}}.tsv"
    conda:
        "../../envs/training.yaml"
    threads: JOB_THREADS
    resources:
        gpu_slots=1,
        mem_mb=8000,
        runtime=240,
    params:
        slice=branch_params,
        code=CODE["train"],
        out_dir=lambda wc, output: os.path.dirname(output.history),
    shell:
        "exec python -m trainact train --data {input.data:q} --size {wildcards.size}"
        " --activation {wildcards.activation} --seed {wildcards.seed}"
        " --params {params.slice:q} --out-dir {params.out_dir:q} --no-progress"
        " --branch-from {input.snapshot:q} > {log:q} 2>&1"
