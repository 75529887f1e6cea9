# tools/bench/lib.sh — helpers shared by the benchmark scripts (sourced, not run).
#
# Gives: REPO_ROOT, TARGET_DIR, BENCH_CACHE, CT (release binary, built on demand), a throwaway
# signing key, the cached 1 GiB-layer image, and best-of-N wall-clock timing.
# shellcheck shell=bash

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT" || exit 1

bench_say() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
bench_die() {
    printf '%s: error: %s\n' "${0##*/}" "$*" >&2
    exit 1
}

if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi
for tool in cargo jq sha256sum tar /usr/bin/time; do
    command -v "$tool" >/dev/null || bench_die "$tool not found (run tools/setup)"
done

# Where cargo puts binaries (honours CARGO_TARGET_DIR and .cargo/config).
TARGET_DIR=$(cargo metadata --no-deps --format-version 1 | jq -r .target_directory)
BENCH_CACHE=$TARGET_DIR/bench-cache
CT=${CT_BIN:-$TARGET_DIR/release/ct}
mkdir -p "$BENCH_CACHE"

# Builds the release `ct` (incremental: quick when nothing changed), unless CT_BIN names a
# binary to measure instead (say so when quoting its numbers: the dev profile is opt-level 1).
bench_build_ct() {
    if [ -n "${CT_BIN:-}" ]; then
        bench_say "measuring CT_BIN=$CT_BIN (not building)"
        [ -x "$CT" ] || bench_die "CT_BIN=$CT_BIN is not an executable"
        return
    fi
    bench_say "building ct (cargo build --release -p cerro-cli)"
    cargo build --release -p cerro-cli --quiet
    [ -x "$CT" ] || bench_die "no binary at $CT after the build"
}

# bench_key CONFIG_DIR: a throwaway trusted key `bench` in CONFIG_DIR; exports CT_CONFIG_DIR and
# sets BENCH_PASSFILE.
bench_key() {
    export CT_CONFIG_DIR=$1
    BENCH_PASSFILE=$1.passphrase
    mkdir -p "$CT_CONFIG_DIR"
    printf 'throwaway benchmark passphrase' >"$BENCH_PASSFILE"
    "$CT" -q keygen --id bench --passphrase-file "$BENCH_PASSFILE" >/dev/null
}

# bench_big_image SIZE_MIB: prints the path of a cached OCI layout (tag `big`) whose one layer
# is an uncompressed tar holding SIZE_MIB MiB from /dev/urandom. Built by hand (sha256sum + jq):
# umoci would spend most of a minute gzipping incompressible data.
bench_big_image() {
    local mib=$1 layout tmp layer layer_size config config_size manifest manifest_size
    layout=$BENCH_CACHE/random-${mib}m
    if [ -f "$layout/index.json" ]; then
        printf '%s\n' "$layout"
        return
    fi
    bench_say "building $layout (one layer of $mib MiB random data; cached for later runs)"
    rm -rf "$layout" "$layout.tmp"
    tmp=$layout.tmp
    mkdir -p "$tmp/data" "$tmp/layout/blobs/sha256"
    head -c "$((mib * 1024 * 1024))" /dev/urandom >"$tmp/data/random.bin"
    touch -d @0 "$tmp/data/random.bin"
    tar --format=ustar --numeric-owner --owner=0 --group=0 --mode=0644 \
        -cf "$tmp/layer.tar" -C "$tmp/data" random.bin
    rm -rf "$tmp/data"
    layer=sha256:$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)
    layer_size=$(stat -c %s "$tmp/layer.tar")
    mv "$tmp/layer.tar" "$tmp/layout/blobs/sha256/${layer#sha256:}"

    # put_json JSON: writes a blob; sets blob_digest and blob_size.
    put_json() {
        printf '%s' "$1" >"$tmp/blob"
        blob_digest=sha256:$(sha256sum "$tmp/blob" | cut -d' ' -f1)
        blob_size=$(stat -c %s "$tmp/blob")
        mv "$tmp/blob" "$tmp/layout/blobs/sha256/${blob_digest#sha256:}"
    }
    put_json "$(jq -cn --arg diff "$layer" '{
        created: "2024-01-01T00:00:00Z", architecture: "amd64", os: "linux",
        config: {Cmd: ["/random.bin"]},
        rootfs: {type: "layers", diff_ids: [$diff]},
        history: [{created: "2024-01-01T00:00:00Z", created_by: "tools/bench: random data"}]}')"
    config=$blob_digest config_size=$blob_size
    put_json "$(jq -cn --arg c "$config" --argjson cs "$config_size" \
        --arg l "$layer" --argjson ls "$layer_size" '{
        schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
        layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $l, size: $ls}]}')"
    manifest=$blob_digest manifest_size=$blob_size
    jq -cnj --arg m "$manifest" --argjson ms "$manifest_size" '{
        schemaVersion: 2,
        manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m,
                     size: $ms, annotations: {"org.opencontainers.image.ref.name": "big"}}]}' \
        >"$tmp/layout/index.json"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$tmp/layout/oci-layout"
    mv "$tmp/layout" "$layout"
    rm -rf "$tmp"
    printf '%s\n' "$layout"
}

# bench_best RUNS PREPARE CMD...: runs CMD (stdout discarded) RUNS times, each after `eval
# PREPARE` (may be empty), and prints the fastest wall time in seconds. Fails if CMD fails.
bench_best() {
    local runs=$1 prepare=$2 best="" i t0 t1 ns
    shift 2
    for ((i = 0; i < runs; i++)); do
        [ -z "$prepare" ] || eval "$prepare"
        t0=$(date +%s%N)
        "$@" >/dev/null || bench_die "command failed: $*"
        t1=$(date +%s%N)
        ns=$((t1 - t0))
        if [ -z "$best" ] || [ "$ns" -lt "$best" ]; then best=$ns; fi
    done
    awk -v ns="$best" 'BEGIN { printf "%.3f\n", ns / 1e9 }'
}

# bench_rss_mib CMD...: peak resident set size of CMD in MiB, from /usr/bin/time -v.
bench_rss_mib() {
    local out
    out=$(mktemp)
    /usr/bin/time -v -o "$out" "$@" >/dev/null || {
        rm -f "$out"
        bench_die "command failed: $*"
    }
    awk -F: '/Maximum resident set size/ { printf "%.1f\n", $2 / 1024 }' "$out"
    rm -f "$out"
}

# bench_debian_layout [ARGS…]: the cached layout tools/make-debian-image builds with ARGS, at the path
# the tests use (tests/src/fixtures.rs: NAME-<12 hex of sha256(script bytes, args joined by NUL)>).
bench_debian_layout() {
    local name=debian-minbase script=$REPO_ROOT/tools/make-debian-image key first=1 dir
    [ $# -eq 0 ] || name=debian-minbase-plus
    key=$({
        cat "$script"
        for a in "$@"; do
            [ "$first" = 1 ] || printf '\0'
            printf '%s' "$a"
            first=0
        done
    } | sha256sum | cut -c1-12)
    dir=$TARGET_DIR/cerro-fixtures/$name-$key
    mkdir -p "$TARGET_DIR/cerro-fixtures"
    # The same lock file the tests take, so a test and a bench never build it twice at once.
    (
        flock 9
        if [ ! -d "$dir" ]; then
            bench_say "building $dir (debootstrap; cached for the tests and later runs)"
            rm -rf "$dir.tmp-bench"
            "$script" "$@" "$dir.tmp-bench" >&2
            mv "$dir.tmp-bench" "$dir"
        fi
    ) 9>"$dir.lock"
    printf '%s\n' "$dir"
}
