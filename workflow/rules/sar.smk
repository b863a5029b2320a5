# DEM on the AOI grid, and per scene: calibration, noise removal, terrain correction, log compression.


rule dem:
    input:
        tiles=expand(f"{CACHE}/dem/{{tile}}{DEM_SUFFIX}", tile=dem_tiles()),
        changed=changed_dem_tiles,
    output:
        orthometric=f"{RESULTS}/dem/dem_egm96.tif",
        ellipsoidal=f"{RESULTS}/dem/dem_wgs84.tif",
    log:
        f"{LOGS}/dem.log",
    benchmark:
        f"{RESULTS}/benchmarks/dem.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(239, 23),
        runtime=runtime_min(1.6, 1.0),
    params:
        grid=as_json(aoi_grid()),
        tiles=lambda wildcards, input: parent_dir(input.tiles[0]),
        geoid=config["geoid_grid"] or "",
    shell:
        "python -m pipeline dem --tiles-dir {params.tiles} --grid '{params.grid}' "
        "--out-orthometric {output.orthometric} --out-ellipsoidal {output.ellipsoidal} "
        "--geoid-grid '{params.geoid}' > {log} 2>&1"


use rule dem as dem_extended with:
    output:
        orthometric=f"{RESULTS}/dem/dem_egm96_extended.tif",
        ellipsoidal=f"{RESULTS}/dem/dem_wgs84_extended.tif",
    log:
        f"{LOGS}/dem_extended.log",
    benchmark:
        f"{RESULTS}/benchmarks/dem_extended.tsv"
    resources:
        mem_mb=mem_mb(249, 83),
        runtime=runtime_min(3.1, 0.6),
    params:
        grid=as_json(aoi_grid(config["distortion"]["margin_m"])),
        tiles=lambda wildcards, input: parent_dir(input.tiles[0]),
        geoid=config["geoid_grid"] or "",


rule terrain_correct:
    input:
        item=f"{PRODUCTS}/sentinel-1-grd/{{scene}}.json",
        dem=rules.dem.output.ellipsoidal,
        changed=lambda wildcards: changed(wildcards.scene),
    output:
        backscatter=f"{RESULTS}/sar/{{scene}}_backscatter.tif",
    log:
        f"{LOGS}/terrain_correct/{{scene}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/terrain_correct/{{scene}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(281, 30),
        runtime=runtime_min(2.5, 4.1),
        # a performance knob: it changes no byte of the result, so it is no parameter (no rerun)
        tile_size=config["sar"]["tile_size"],
    params:
        sar=as_json({k: v for k, v in config["sar"].items() if k != "tile_size"}),
    shell:
        "python -m pipeline terrain-correct --safe {input.item} --dem {input.dem} "
        "--out {output.backscatter} --params '{params.sar}' "
        "--tile-size {resources.tile_size} > {log} 2>&1"


# on demand (no later stage reads it): snakemake results/sar/<scene>_geometry.tif
rule sar_geometry:
    input:
        item=f"{PRODUCTS}/sentinel-1-grd/{{scene}}.json",
        dem=rules.dem.output.ellipsoidal,
        changed=lambda wildcards: changed(wildcards.scene),
    output:
        geometry=f"{RESULTS}/sar/{{scene}}_geometry.tif",
    log:
        f"{LOGS}/sar_geometry/{{scene}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/sar_geometry/{{scene}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(281, 30),
        runtime=runtime_min(2.5, 4.1),
        tile_size=config["sar"]["tile_size"],
    shell:
        "python -m pipeline terrain-correct --safe {input.item} --dem {input.dem} "
        "--geometry {output.geometry} --tile-size {resources.tile_size} > {log} 2>&1"


rule sar:
    input:
        lambda wildcards: expand(
            [
                f"{RESULTS}/sar/{{scene}}_backscatter.tif",
                f"{RESULTS}/distortion/{{scene}}_flags.tif",
            ],
            scene=sentinel1_scenes(wildcards),
        ),


rule distortion:
    input:
        item=f"{PRODUCTS}/sentinel-1-grd/{{scene}}.json",
        ellipsoidal=rules.dem_extended.output.ellipsoidal,
        changed=lambda wildcards: changed(wildcards.scene),
    output:
        flags=f"{RESULTS}/distortion/{{scene}}_flags.tif",
    log:
        f"{LOGS}/distortion/{{scene}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/distortion/{{scene}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(313, 116),
        runtime=runtime_min(4.6, 5.7),
    params:
        grid=as_json(aoi_grid()),
    shell:
        "python -m pipeline distortion --safe {input.item} --dem-ellipsoidal {input.ellipsoidal} "
        "--grid '{params.grid}' --out-flags {output.flags} --threads {threads} > {log} 2>&1"


# on demand (no later stage reads it; `python -m pipeline.simulate sar-stats` does):
# snakemake results/distortion/<scene>_geometry.tif, or distortion_geometry_all
rule distortion_geometry:
    input:
        item=f"{PRODUCTS}/sentinel-1-grd/{{scene}}.json",
        orthometric=rules.dem_extended.output.orthometric,
        ellipsoidal=rules.dem_extended.output.ellipsoidal,
        changed=lambda wildcards: changed(wildcards.scene),
    output:
        geometry=f"{RESULTS}/distortion/{{scene}}_geometry.tif",
    log:
        f"{LOGS}/distortion_geometry/{{scene}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/distortion_geometry/{{scene}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(313, 116),
        runtime=runtime_min(4.6, 5.7),
    params:
        grid=as_json(aoi_grid()),
    shell:
        "python -m pipeline distortion --safe {input.item} --dem-orthometric {input.orthometric} "
        "--dem-ellipsoidal {input.ellipsoidal} --grid '{params.grid}' --out-geometry {output.geometry} "
        "--threads {threads} > {log} 2>&1"


rule distortion_all:
    input:
        lambda wildcards: expand(
            f"{RESULTS}/distortion/{{scene}}_flags.tif",
            scene=sentinel1_scenes(wildcards),
        ),


rule distortion_geometry_all:
    input:
        lambda wildcards: expand(
            f"{RESULTS}/distortion/{{scene}}_geometry.tif",
            scene=sentinel1_scenes(wildcards),
        ),


rule mosaic_slices:
    input:
        backscatter=lambda wildcards: expand(
            f"{RESULTS}/sar/{{scene}}_backscatter.tif",
            scene=s1_acquisition(wildcards.s1),
        ),
        flags=lambda wildcards: expand(
            f"{RESULTS}/distortion/{{scene}}_flags.tif",
            scene=s1_acquisition(wildcards.s1),
        ),
    output:
        backscatter=f"{RESULTS}/sar/mosaic/{{s1}}_backscatter.tif",
        flags=f"{RESULTS}/sar/mosaic/{{s1}}_flags.tif",
    log:
        f"{LOGS}/mosaic_slices/{{s1}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/mosaic_slices/{{s1}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        # not measured yet: an estimate
        mem_mb=mem_mb(4000, headroom=1),
    shell:
        "python -m pipeline mosaic-slices --backscatter {input.backscatter} --flags {input.flags} "
        "--out-backscatter {output.backscatter} --out-flags {output.flags} > {log} 2>&1"
