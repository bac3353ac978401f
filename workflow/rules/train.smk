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
        slice=lambda wc: canonical(train_slice(wc.size, wc.activation)),
        code=CODE["train"],
        out_dir=lambda wc, output: os.path.dirname(output.history),
    shell:
        "python -m trainact train --data {input.data:q} --size {wildcards.size}"
        " --activation {wildcards.activation} --seed {wildcards.seed}"
        " --params {params.slice:q} --out-dir {params.out_dir:q} --no-progress"
        " > {log:q} 2>&1"


# The sensitivity study's runs: the same job with a variant's model and train settings
# (common.smk, "Sensitivity study"); only runs that no other root already holds are asked for.
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
        slice=lambda wc: canonical(
            train_slice(wc.size, wc.activation, *VARIANT_SETTINGS[wc.variant])
        ),
        code=CODE["train"],
        out_dir=lambda wc, output: os.path.dirname(output.history),
