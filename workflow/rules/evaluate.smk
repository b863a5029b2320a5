# Evaluation: each trained model and seed on the test split, then Table 1, the figures and the report.


rule evaluate_model:
    input:
        model=f"{MODELS}/{{model}}/seed{{seed}}/model.pt",
        index=f"{DATASET}/index.parquet",
    output:
        predictions=directory(f"{EVALUATION}/{{model}}/seed{{seed}}/predictions.zarr"),
        metrics=f"{EVALUATION}/{{model}}/seed{{seed}}/metrics.parquet",
        fid=f"{EVALUATION}/{{model}}/seed{{seed}}/fid.json",
    log:
        f"{LOGS}/evaluate/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_model/{{model}}_seed{{seed}}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        # not measured yet: an estimate
        mem_mb=mem_mb(8000, headroom=1),
        gpu=1,
        eval_device=config["evaluation"]["device"],
    params:
        evaluation=as_json(evaluation_params()),
        dataset=lambda wildcards, input: parent_dir(input.index),
        out=lambda wildcards, output: parent_dir(output.metrics),
    shell:
        "python -m pipeline evaluate-model --dataset {params.dataset} --model {input.model} "
        "--out {params.out} --params '{params.evaluation}' --device {resources.eval_device} > {log} 2>&1"


rule evaluation_table:
    input:
        metrics=evaluation_outputs("metrics.parquet"),
        fid=evaluation_outputs("fid.json"),
    output:
        csv=report(
            f"{EVALUATION}/table1.csv",
            caption="../report/table1.rst",
            category="Table 1",
        ),
        md=report(
            f"{EVALUATION}/table1.md",
            caption="../report/table1.rst",
            category="Table 1",
        ),
        paired=report(
            f"{EVALUATION}/paired.csv",
            caption="../report/paired.rst",
            category="Table 1",
        ),
    log:
        f"{LOGS}/evaluation_table.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluation_table.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        # not measured yet: an estimate
        mem_mb=mem_mb(2000, headroom=1),
    params:
        evaluation=as_json(evaluation_params()),
        db_range=as_json(config["training"]["sar_db_range"]),
    shell:
        "python -m pipeline evaluation-table --metrics {input.metrics} --fid {input.fid} "
        "--params '{params.evaluation}' --sar-db-range '{params.db_range}' --out-csv {output.csv} "
        "--out-md {output.md} --out-paired {output.paired} > {log} 2>&1"


rule evaluation_figures:
    input:
        predictions=evaluation_outputs("predictions.zarr"),
        training=[
            f"{MODELS}/{m}/seed{s}/metrics.csv"
            for m in EVAL_MODELS
            for s in config["training"]["seeds"]
        ],
        index=f"{DATASET}/index.parquet",
    output:
        translations=report(
            f"{EVALUATION}/figures/translations.png",
            caption="../report/translations.rst",
            category="Figures",
        ),
        enhancement=report(
            f"{EVALUATION}/figures/enhancement.png",
            caption="../report/enhancement.rst",
            category="Figures",
        ),
        curves=report(
            f"{EVALUATION}/figures/training_curves.png",
            caption="../report/curves.rst",
            category="Figures",
        ),
    log:
        f"{LOGS}/evaluation_figures.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluation_figures.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        # not measured yet: an estimate
        mem_mb=mem_mb(4000, headroom=1),
    params:
        evaluation=as_json(evaluation_params()),
        db_range=as_json(config["training"]["sar_db_range"]),
        patches=config["evaluation"]["figure_patches"],
        dataset=lambda wildcards, input: parent_dir(input.index),
    shell:
        "python -m pipeline evaluation-figures --dataset {params.dataset} --predictions {input.predictions} "
        "--training-metrics {input.training} --params '{params.evaluation}' "
        "--sar-db-range '{params.db_range}' --patches {params.patches} "
        "--out-translations {output.translations} --out-enhancement {output.enhancement} "
        "--out-curves {output.curves} > {log} 2>&1"


rule report_inputs:
    input:
        card=f"{DATASET}/README.md",
    output:
        card=report(
            f"{EVALUATION}/report/dataset_card.md",
            caption="../report/card.rst",
            category="Dataset",
        ),
        config=report(
            f"{EVALUATION}/report/config.yaml",
            caption="../report/config.rst",
            category="Configuration",
        ),
    log:
        f"{LOGS}/report_inputs.log",
    benchmark:
        f"{RESULTS}/benchmarks/report_inputs.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        # not measured yet: an estimate
        mem_mb=mem_mb(500, headroom=1),
    params:
        config=as_json(config),
    shell:
        "python -m pipeline report-inputs --card {input.card} --config-json '{params.config}' "
        "--out-card {output.card} --out-config {output.config} > {log} 2>&1"


rule evaluate:
    input:
        rules.evaluation_table.output,
        rules.evaluation_figures.output,
        rules.report_inputs.output,
