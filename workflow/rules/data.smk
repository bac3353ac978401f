# Data: the CIFAR-10 archive (downloaded, or for tests a synthetic one the workflow builds) and
# the prepared .npz every training job reads.
#
# What makes each output (src/trainact/):
#   download           resources/archives/<md5>/<name>   data.download
#   synthetic_archive  data/synthetic/...tar.gz          data.build_synthetic_archive
#   prepare            data/cifar10.npz                  data.prepare


localrules:
    download,


rule download:
    output:
        DOWNLOADED_ARCHIVE,
    log:
        f"{LOGS}/download.log",
    benchmark:
        f"{BENCHMARKS}/download/download.tsv"
    conda:
        "../../envs/training.yaml"
    params:
        url=DATASET["url"],
        md5=DATASET["md5"],
        code=CODE["data"],
    shell:
        "python -m trainact download --url {params.url:q} --md5 {params.md5:q}"
        " --out {output:q} --no-progress > {log:q} 2>&1"


if SYNTHETIC is not None:

    # Only in configs that ask for it (the smoke preset): a small, byte-for-byte reproducible
    # archive in the official layout, so the workflow runs with no network.
    rule synthetic_archive:
        output:
            SYNTHETIC_ARCHIVE,
        log:
            f"{LOGS}/synthetic_archive.log",
        benchmark:
            f"{BENCHMARKS}/synthetic_archive/synthetic_archive.tsv"
        conda:
            "../../envs/training.yaml"
        params:
            slice=canonical(SYNTHETIC),
            args=SYNTHETIC_ARGS,
            code=CODE["data"],
        shell:
            "python -m trainact synthetic-archive --out {output:q} {params.args} > {log:q} 2>&1"


rule prepare:
    input:
        archive=ARCHIVE,
    output:
        PREPARED,
    log:
        f"{LOGS}/prepare.log",
    benchmark:
        f"{BENCHMARKS}/prepare/prepare.tsv"
    conda:
        "../../envs/training.yaml"
    params:
        slice=canonical(PREPARE_SLICE),
        args=PREPARE_ARGS,
        code=CODE["data"],
    shell:
        "python -m trainact prepare --archive {input.archive:q} --out {output:q}"
        " {params.args} > {log:q} 2>&1"
