# The dataset: optical scenes on the AOI grid, normalised DEM, triplets, shards of patches, the store.


rule optical:
    input:
        tiles=s2_acquisition_items,
        changed=changed_s2_of_acquisition,
    output:
        image=f"{RESULTS}/optical/{{s2}}.tif",
        info=f"{RESULTS}/optical/{{s2}}.json",
    log:
        f"{LOGS}/optical/{{s2}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/optical/{{s2}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(107, 97),
        runtime=runtime_min(1.5, 1.0),
    params:
        grid=as_json(aoi_grid()),
        optical=as_json(
            {
                k: config["dataset"][k]
                for k in (
                    "scl_mask_classes",
                    "stretch_percentiles",
                    "max_scene_masked_fraction",
                    "earth_search_offset",
                    "mask_dilation_px",
                    "min_valid_island_px",
                )
            }
        ),
    shell:
        "python -m pipeline optical --item {input.tiles} --grid '{params.grid}' "
        "--params '{params.optical}' --out {output.image} --out-json {output.info} > {log} 2>&1"


rule dem_normalise:
    input:
        dem=rules.dem.output.orthometric,
    output:
        f"{RESULTS}/dem/dem_normalised.tif",
    log:
        f"{LOGS}/dem_normalise.log",
    benchmark:
        f"{RESULTS}/benchmarks/dem_normalise.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(107, 30),
        runtime=runtime_min(1.2, 0.2),
    params:
        dem_max=config["dataset"]["dem_max_m"] or "",
    shell:
        "python -m pipeline dem-normalise --dem {input.dem} --out {output} "
        "--dem-max-m '{params.dem_max}' > {log} 2>&1"


rule triplets:
    input:
        search=SEARCH_RESULT,
    output:
        triplets=f"{DATASET}/triplets.json",
    log:
        f"{LOGS}/triplets.log",
    benchmark:
        f"{RESULTS}/benchmarks/triplets.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(70, 4),
        runtime=runtime_min(0.8, 0),
    params:
        max_days=config["dataset"]["max_days"],
    shell:
        "python -m pipeline triplets --search {input.search} --max-days {params.max_days} "
        "--out {output.triplets} > {log} 2>&1"


rule tiles:
    input:
        triplets=f"{DATASET}/triplets.json",
        sar=lambda wildcards: sar_of(triplet_of(wildcards))[0],
        flags=lambda wildcards: sar_of(triplet_of(wildcards))[1],
        optical=lambda wildcards: f"{RESULTS}/optical/{triplet_of(wildcards)['s2']}.tif",
        info=lambda wildcards: f"{RESULTS}/optical/{triplet_of(wildcards)['s2']}.json",
        dem=rules.dem_normalise.output,
    output:
        f"{DATASET}/shards/{{triplet}}.npz",
    log:
        f"{LOGS}/tiles/{{triplet}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tiles/{{triplet}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(193, 58),
        runtime=runtime_min(0.9, 8.3),
    params:
        tiling=as_json(
            {
                k: config["dataset"][k]
                for k in (
                    "patch_size",
                    "stride",
                    "max_masked_fraction",
                    "registration_max_shift_px",
                    "registration_min_quality",
                    "registration_flag_sigmas",
                    "drop_misregistered",
                )
            }
        ),
    shell:
        "python -m pipeline tiles --triplets {input.triplets} --triplet {wildcards.triplet} "
        "--sar {input.sar} --flags {input.flags} --optical {input.optical} --optical-json {input.info} "
        "--dem {input.dem} --params '{params.tiling}' --out {output} > {log} 2>&1"


rule store:
    input:
        shards=lambda wildcards: expand(
            f"{DATASET}/shards/{{triplet}}.npz", triplet=triplet_ids(wildcards)
        ),
        infos=lambda wildcards: expand(
            f"{RESULTS}/optical/{{s2}}.json", s2=s2_scenes(wildcards)
        ),
        triplets=f"{DATASET}/triplets.json",
        dem=rules.dem_normalise.output,
        sar=lambda wildcards: [sar_of(t)[0] for t in triplet_list()],
        flags=lambda wildcards: [sar_of(t)[1] for t in triplet_list()],
        optical=lambda wildcards: [
            f"{RESULTS}/optical/{t['s2']}.tif" for t in triplet_list()
        ],
    output:
        # the store's root metadata stands for the store (a directory() output would put Snakemake's
        # timestamp file inside it, which zarr warns about)
        patches=f"{DATASET}/patches.zarr/zarr.json",
        index=f"{DATASET}/index.parquet",
        card=f"{DATASET}/README.md",
        quicklooks=directory(f"{DATASET}/quicklooks"),
    log:
        f"{LOGS}/store.log",
    benchmark:
        f"{RESULTS}/benchmarks/store.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(296, 58),
        runtime=runtime_min(3.2, 2.3),
    params:
        store=as_json(
            {
                k: config["dataset"][k]
                for k in (
                    "split",
                    "split_fractions",
                    "seed",
                    "split_block_patches",
                    "patch_size",
                )
            }
        ),
        configuration=as_json(dataset_configuration()),
        out=lambda wildcards, output: parent_dir(output.index),
    shell:
        "python -m pipeline store --shards {input.shards} --optical-json {input.infos} "
        "--triplets {input.triplets} --dem {input.dem} --sar {input.sar} --flags {input.flags} "
        "--optical {input.optical} --params '{params.store}' --configuration '{params.configuration}' "
        "--out-dir {params.out} > {log} 2>&1"


rule dataset:
    input:
        rules.store.output,
