# Training: one job per (size, activation, seed) of the paper's grid (Section 2.2), plus the
# autoencoder's baseline and PSO's reference runs when those lie outside the grid.
#
# What makes each output (src/trainact/):
#   train, train_variant  history.csv, activation_health.csv   train.fit (health: calibration.layer_health)
#                         model.pt, activations.json,          train.save_results
#                         summary.json


rule train:
    input:
        data=PREPARED,
    output:
        history=f"{TRAIN_DIR}/history.csv",
        model=f"{TRAIN_DIR}/model.pt",
        activations=f"{TRAIN_DIR}/activations.json",
        summary=f"{TRAIN_DIR}/summary.json",
        health=f"{TRAIN_DIR}/activation_health.csv",
    log:
        f"{LOGS}/train/{{size}}-{{activation}}-seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{size}}-{{activation}}-seed{{seed}}.tsv"
    conda:
        "../../envs/training.yaml"
    threads: 4
    resources:
        gpu_slots=1,
        mem_mb=8000,
        runtime=240,
    params:
        slice=train_params,
        code=CODE["train"],
        out_dir=lambda wc, output: os.path.dirname(output.history),
    shell:
        "python -m trainact train --data {input.data:q} --size {wildcards.size}"
        " --activation {wildcards.activation} --seed {wildcards.seed}"
        " --params {params.slice:q} --out-dir {params.out_dir:q} --no-progress"
        " > {log:q} 2>&1"


# The sensitivity study's runs: the same job with a variant's model and train settings
# (trainact.workflow_plan, sensitivity study); only runs that no other root already holds are asked for.
use rule train as train_variant with:
    output:
        history=f"{VARIANT_TRAIN_DIR}/history.csv",
        model=f"{VARIANT_TRAIN_DIR}/model.pt",
        activations=f"{VARIANT_TRAIN_DIR}/activations.json",
        summary=f"{VARIANT_TRAIN_DIR}/summary.json",
        health=f"{VARIANT_TRAIN_DIR}/activation_health.csv",
    log:
        f"{LOGS}/sensitivity/{{variant}}/{{size}}-{{activation}}-seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/sensitivity/{{variant}}/{{size}}-{{activation}}-seed{{seed}}.tsv"
    params:
        slice=train_params,
        code=CODE["train"],
        out_dir=lambda wc, output: os.path.dirname(output.history),


# The schedule axis (trainact.workflow_plan, trainact.training.schedules): one trunk per network and
# seed at the first learning rate, keeping its state after every epoch; the branch at L trains
# the tail from the trunk's snapshot after epoch L (train.fit's branch_from), so no trunk epoch
# is computed twice. The trunk's params hold neither the tail nor the list of L: a changed tail
# reruns only the branches.
rule train_trunk:
    input:
        data=PREPARED,
    output:
        history=f"{TRUNK_DIR}/history.csv",
        summary=f"{TRUNK_DIR}/summary.json",
        snapshots=[f"{TRUNK_DIR}/snapshots/epoch{L}.pt" for L in AXIS_BRANCHES],
    log:
        f"{LOGS}/schedule_axis/trunk/{{size}}-{{activation}}-seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/schedule_axis/trunk/{{size}}-{{activation}}-seed{{seed}}.tsv"
    conda:
        "../../envs/training.yaml"
    threads: 4
    resources:
        gpu_slots=1,
        mem_mb=8000,
        runtime=240,
    params:
        slice=trunk_params,
        code=CODE["train"],
        out_dir=lambda wc, output: os.path.dirname(output.history),
    shell:
        "python -m trainact train --data {input.data:q} --size {wildcards.size}"
        " --activation {wildcards.activation} --seed {wildcards.seed}"
        " --params {params.slice:q} --out-dir {params.out_dir:q} --no-progress"
        " > {log:q} 2>&1"


rule train_branch:
    input:
        data=PREPARED,
        snapshot=f"{TRUNK_DIR}/snapshots/epoch{{first_phase}}.pt",
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
    threads: 4
    resources:
        gpu_slots=1,
        mem_mb=8000,
        runtime=240,
    params:
        slice=branch_params,
        code=CODE["train"],
        out_dir=lambda wc, output: os.path.dirname(output.history),
    shell:
        "python -m trainact train --data {input.data:q} --size {wildcards.size}"
        " --activation {wildcards.activation} --seed {wildcards.seed}"
        " --params {params.slice:q} --out-dir {params.out_dir:q} --no-progress"
        " --branch-from {input.snapshot:q} > {log:q} 2>&1"
