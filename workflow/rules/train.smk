# Training of the bundled translators: one job per model and seed (rule train_model), targets per model.
#
# Result-changing settings reach the job through params (a change retrains); runtime settings
# (device, precision, compile, TensorBoard) through resources (a change reruns nothing). An
# interrupted job continues from results/models/<model>/seed<k>/train_state/last.pt when rerun.


rule train_model:
    input:
        index=f"{DATASET}/index.parquet",
        card=f"{DATASET}/README.md",
    output:
        model=f"{MODELS}/{{model}}/seed{{seed}}/model.pt",
        metrics=f"{MODELS}/{{model}}/seed{{seed}}/metrics.csv",
    log:
        f"{LOGS}/train/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_model/{{model}}_seed{{seed}}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["training"]["runtime"]["threads"]
    resources:
        # not measured yet: an estimate
        mem_mb=mem_mb(8000, headroom=1),
        gpu=1,
        train_flags=training_runtime_flags(),
    params:
        training=lambda wildcards: as_json(training_params(wildcards.model)),
        dataset=lambda wildcards, input: parent_dir(input.index),
        out=lambda wildcards, output: parent_dir(output.model),
    shell:
        "python -m pipeline train --model {wildcards.model} --seed {wildcards.seed} "
        "--dataset {params.dataset} --out {params.out} --params '{params.training}' "
        "--threads {threads} {resources.train_flags} >> {log} 2>&1"


rule train_sardinet:
    input:
        trained_models("sardinet"),


rule train_late:
    input:
        trained_models("sardinet_late"),


rule train_early:
    input:
        trained_models("sardinet_early"),


rule train_intermediate:
    input:
        trained_models("sardinet_intermediate"),


rule train_pix2pix:
    input:
        trained_models("pix2pix"),


rule train_cyclegan:
    input:
        trained_models("cyclegan"),


rule train:
    input:
        [trained_models(m) for m in MODEL_NAMES],
