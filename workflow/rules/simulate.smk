# The offline world: simulated Sentinel-1 GRD, Sentinel-2 L2A and SRTM products with known truth.


rule simulate:
    output:
        catalog=f"{SIM_DIR}/catalog.json",
    log:
        f"{LOGS}/simulate.log",
    benchmark:
        f"{RESULTS}/benchmarks/simulate.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb(876, 1163),
        runtime=runtime_min(57.3, 32.7),
    params:
        simulation=as_json(
            {k: v for k, v in config["simulation"].items() if k != "directory"}
        ),
        geoid=config["geoid_grid"] or "",
        out=lambda wildcards, output: parent_dir(output.catalog),
    shell:
        "python -m pipeline.simulate world --simulation '{params.simulation}' "
        "--geoid-grid '{params.geoid}' --threads {threads} --out {params.out} > {log} 2>&1"
