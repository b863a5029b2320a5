# The first stages for every source: search (frozen into a file) and fetching into the shared cache.


checkpoint search:
    input:
        [SIM_CATALOG] if SIMULATED else [],
    output:
        result=f"{RESULTS}/search/result.json",
    log:
        f"{LOGS}/search.log",
    benchmark:
        f"{RESULTS}/benchmarks/search.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(70, 9),
        runtime=runtime_min(1.0, 0.1),
        http=1,
    params:
        query=as_json(search_query()),
        endpoints=as_json(search_endpoints()),
        collections=as_json(search_collections()),
        source=config["source"],
    shell:
        "python -m pipeline search --query '{params.query}' --endpoints '{params.endpoints}' "
        "--collections '{params.collections}' --source {params.source} --out {output.result} > {log} 2>&1"


rule fetch_dem:
    input:
        [SIM_CATALOG] if SIMULATED else [],
        changed=lambda wildcards: changed(f"{wildcards.tile}{DEM_SUFFIX}"),
    output:
        f"{CACHE}/dem/{{tile}}{DEM_SUFFIX}",
    log:
        f"{LOGS}/fetch_dem/{{tile}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fetch_dem/{{tile}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(81, 1),
        runtime=runtime_min(0.7, 0),
        http=1,
    params:
        url=dem_url_template(),
    shell:
        "python -m pipeline fetch-dem --url-template '{params.url}' --tile {wildcards.tile} "
        "--out {output} > {log} 2>&1"


rule fetch_sentinel1:
    input:
        search=SEARCH_RESULT,
        dem=f"{RESULTS}/dem/dem_wgs84.tif",
        changed=lambda wildcards: changed(wildcards.scene),
    output:
        f"{PRODUCTS}/sentinel-1-grd/{{scene}}.json",
    log:
        f"{LOGS}/fetch_sentinel1/{{scene}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fetch_sentinel1/{{scene}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(107, 8),
        runtime=runtime_min(1.1, 0.1),
        http=1,
    params:
        grid=as_json(aoi_grid()),
        cache=CACHE,
        settings=as_json(
            {
                "sentinel1": config["download"]["sentinel1"],
                "window_margin_px": config["download"]["window_margin_px"],
                "odata": config["download"]["odata"],
                "precise_orbits": config["download"]["precise_orbits"],
                "orbits_url": config["download"]["orbits_url"],
                "polarisations": config["sar"]["polarisations"],
                "sign": None if SIMULATED else config["search"]["sentinel1"]["sign"],
            }
        ),
    shell:
        "python -m pipeline fetch-sentinel1 --search {input.search} --scene {wildcards.scene} "
        "--cache {params.cache} --grid '{params.grid}' --dem {input.dem} "
        "--settings '{params.settings}' --out {output} > {log} 2>&1"


rule fetch_sentinel2:
    input:
        search=SEARCH_RESULT,
        changed=lambda wildcards: changed(wildcards.s2),
    output:
        f"{PRODUCTS}/sentinel-2-l2a/{{s2}}.json",
    log:
        f"{LOGS}/fetch_sentinel2/{{s2}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fetch_sentinel2/{{s2}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(100, 7),
        runtime=runtime_min(1.1, 0.1),
        http=1,
    params:
        grid=as_json(aoi_grid()),
        cache=CACHE,
        settings=as_json(
            {
                "assets": (
                    "planetary_computer"
                    if SIMULATED
                    else config["search"]["sentinel2"]["assets"]
                ),
                "sign": None if SIMULATED else config["search"]["sentinel2"]["sign"],
            }
        ),
    shell:
        "python -m pipeline fetch-sentinel2 --search {input.search} --scene {wildcards.s2} "
        "--cache {params.cache} --grid '{params.grid}' --settings '{params.settings}' "
        "--out {output} > {log} 2>&1"


rule download:
    input:
        lambda wildcards: expand(
            f"{PRODUCTS}/sentinel-1-grd/{{scene}}.json",
            scene=sentinel1_scenes(wildcards),
        ),
        lambda wildcards: expand(
            f"{PRODUCTS}/sentinel-2-l2a/{{s2}}.json", s2=s2_items(wildcards)
        ),
