# Data: the CIFAR-10 archive (downloaded, or for tests a synthetic one the workflow builds) and
# the prepared .npz every training job reads.
#
# What makes each output (src/trainact/):
#   download           resources/archives/<md5>/<name>   download.download
#   synthetic_archive  data/synthetic/...tar.gz          synthetic.build_synthetic_archive
#   prepare            data/cifar10.npz                  prepare.prepare


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
    # No code digest: the command verifies the archive's md5, so no change of the download
    # code can change what it writes (and editing it reruns nothing).
    params:
        slice=canonical(DOWNLOAD_SLICE),
    shell:
        "python -m trainact download --params {params.slice:q}"
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
            code=CODE["synthetic"],
        shell:
            "python -m trainact synthetic-archive --params {params.slice:q}"
            " --out {output:q} > {log:q} 2>&1"


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
        code=CODE["prepare"],
    shell:
        "python -m trainact prepare --archive {input.archive:q}"
        " --params {params.slice:q} --out {output:q} > {log:q} 2>&1"
