# Section 5.1: greedy layer-wise autoencoder pretraining of the middle Fourier-CNN, then
# ordinary training of the pretrained network (its baseline is the train job of the same model
# and seed).
#
# What makes each output (src/trainact/):
#   ae_pretrain  pretrain.csv, pretrained.pt                        autoencoder.pretrain
#   ae_finetune  finetune/history.csv, model.pt, activations.json,  autoencoder.finetune
#                summary.json                                       (-> train.fit, save_results)


rule ae_pretrain:
    input:
        data=PREPARED,
    output:
        pretrain=f"{AE_DIR}/pretrain.csv",
        pretrained=f"{AE_DIR}/pretrained.pt",
    log:
        f"{LOGS}/ae_pretrain/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/ae_pretrain/seed{{seed}}.tsv"
    conda:
        "../../envs/training.yaml"
    threads: JOB_THREADS
    resources:
        gpu_slots=1,
        mem_mb=8000,
        runtime=240,
    params:
        slice=canonical(SECTION5_SLICES["ae_pretrain"]),
        code=CODE["autoencoder"],
        out_dir=lambda wc, output: os.path.dirname(output.pretrain),
    shell:
        "exec python -m trainact ae-pretrain --data {input.data:q} --seed {wildcards.seed}"
        " --params {params.slice:q} --out-dir {params.out_dir:q} --no-progress"
        " > {log:q} 2>&1"


rule ae_finetune:
    input:
        data=PREPARED,
        pretrained=rules.ae_pretrain.output.pretrained,
    output:
        history=f"{AE_DIR}/finetune/history.csv",
        model=f"{AE_DIR}/finetune/model.pt",
        activations=f"{AE_DIR}/finetune/activations.json",
        summary=f"{AE_DIR}/finetune/summary.json",
    log:
        f"{LOGS}/ae_finetune/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/ae_finetune/seed{{seed}}.tsv"
    conda:
        "../../envs/training.yaml"
    threads: JOB_THREADS
    resources:
        gpu_slots=1,
        mem_mb=8000,
        runtime=240,
    params:
        slice=canonical(SECTION5_SLICES["ae_finetune"]),
        code=CODE["autoencoder"],
        out_dir=lambda wc, output: os.path.dirname(output.history),
    shell:
        "exec python -m trainact ae-finetune --data {input.data:q}"
        " --pretrained {input.pretrained:q} --seed {wildcards.seed}"
        " --params {params.slice:q} --out-dir {params.out_dir:q} --no-progress"
        " > {log:q} 2>&1"
