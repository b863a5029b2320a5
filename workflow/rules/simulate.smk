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
    # measured on 2 threads: the tests' and default worlds (0.26 and 1.64 Mpx, 3 dates) and
    # config/bench.yaml's (16 Mpx, 32 dates: 2692 s, 15.1 GB); the world grows with the AOI, each
    # date's scenes with the AOI too, run side by side on the threads; memory not with the dates
    resources:
        mem_mb=mem_mb(1552, 847),
        runtime=runtime_min(94.2, 5.55 + 9.8 * len(config["simulation"]["dates"]) / 2),
    params:
        simulation=as_json(
            {k: v for k, v in config["simulation"].items() if k != "directory"}
        ),
        geoid=config["geoid_grid"] or "",
        out=lambda wildcards, output: parent_dir(output.catalog),
    shell:
        "python -m pipeline.simulate world --simulation '{params.simulation}' "
        "--geoid-grid '{params.geoid}' --threads {threads} --out {params.out} > {log} 2>&1"
