#!/usr/bin/env bash
# The layer table (layers.conf) as the build and the linter use it.
#
#   scripts/layers.sh names [ROOT]            every layer folder, one a line
#   scripts/layers.sh closure LAYER [ROOT]    the folders LAYER may include, transitively, itself first
#   scripts/layers.sh layer-of PATH [ROOT]    the layer a file belongs to (longest matching folder)
#   scripts/layers.sh farm BUILD_DIR [ROOT]   BUILD_DIR/inc/<layer, / as __>/: symlinks to exactly
#                                             the closure of each layer; the build compiles a folder
#                                             with -I of its farm and nothing else, so an include of
#                                             a folder outside the closure fails to compile
#   scripts/layers.sh check [ROOT]            every C/C++ source under ROOT (git's list) belongs to a
#                                             layer and includes only its own folder and the folders
#                                             its line names; exit 1 naming each violation
#
# ROOT defaults to the checkout. A folder below ROOT with a layers.conf of its own is another tree
# (the linter's own test fixtures) and is left out of ROOT's check.
set -euo pipefail
export LC_ALL=C

usage()
{
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[[ $# -ge 1 ]] || usage
command=$1
shift
default_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

table()  # table ROOT: "folder dep dep ..." lines, comments and blanks removed
{
    local conf=$1/layers.conf
    [[ -r $conf ]] || {
        echo "layers: no readable $conf" >&2
        exit 1
    }
    sed -e 's/#.*//' -e 's/[[:space:]]\+/ /g' -e 's/^ //' -e 's/ $//' "$conf" | grep -v '^$'
}

layer_of()  # layer_of PATH ROOT: the longest layer folder that is a prefix of PATH, or nothing
{
    local path=$1 root=$2 best="" folder
    while read -r folder _; do
        if [[ $path == "$folder"/* && ${#folder} -gt ${#best} ]]; then
            best=$folder
        fi
    done < <(table "$root")
    printf '%s' "$best"
}

direct()  # direct LAYER ROOT: the folders LAYER's line names
{
    table "$2" | awk -v layer="$1" '$1 == layer { for (i = 2; i <= NF; i++) print $i; found = 1 }
        END { if (!found) exit 1 }' || {
        echo "layers: '$1' is not a layer in $2/layers.conf" >&2
        exit 1
    }
}

closure()  # closure LAYER ROOT
{
    local root=$2
    local -a queue=("$1")
    local -A seen=(["$1"]=1)
    local out=("$1") current dep
    while ((${#queue[@]})); do
        current=${queue[0]}
        queue=("${queue[@]:1}")
        while read -r dep; do
            [[ -n $dep && -z ${seen[$dep]:-} ]] || continue
            seen[$dep]=1
            out+=("$dep")
            # A named folder that is not a layer of its own (a subfolder) inherits its layer's rule.
            if table "$root" | awk -v d="$dep" '$1 == d { found = 1 } END { exit !found }'; then
                queue+=("$dep")
            else
                local owner
                owner=$(layer_of "$dep/x" "$root")
                [[ -n $owner && -z ${seen[$owner]:-} ]] && queue+=("$owner")
            fi
        done < <(direct "$current" "$root")
    done
    printf '%s\n' "${out[@]}"
}

farm()  # farm BUILD_DIR ROOT
{
    local build=$1 root=$2 layer dir folder
    rm -rf "$build/inc.new"
    while read -r layer _; do
        dir=$build/inc.new/${layer//\//__}
        mkdir -p "$dir"
        while read -r folder; do
            mkdir -p "$dir/$(dirname "$folder")"
            ln -s "$root/$folder" "$dir/$folder"
        done < <(closure "$layer" "$root")
    done < <(table "$root")
    rm -rf "$build/inc"
    mv "$build/inc.new" "$build/inc"
}

check()  # check ROOT
{
    local root
    root=$(cd "$1" && pwd)
    local failed=0 file layer allowed include ok folder nested
    cd "$root"
    local -a nested_trees=()
    while IFS= read -r nested; do
        nested_trees+=("$(dirname "$nested")")
    done < <(find . -mindepth 2 -name layers.conf -printf '%P\n' | sort)
    local -a files=()
    if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1 &&
        [[ $(git -C "$root" rev-parse --show-toplevel) == "$(pwd -P)" ]]; then
        mapfile -t files < <({
            git ls-files -- '*.cpp' '*.hpp' '*.c' '*.h'
            git ls-files --others --exclude-standard -- '*.cpp' '*.hpp' '*.c' '*.h'
        } | sort -u)
    else
        mapfile -t files < <(find . -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.c' -o -name '*.h' \) -printf '%P\n' | sort)
    fi
    local count=0
    for file in "${files[@]}"; do
        [[ -f $file ]] || continue
        for nested in "${nested_trees[@]}"; do
            [[ $file == "$nested"/* ]] && continue 2
        done
        count=$((count + 1))
        layer=$(layer_of "$file" "$root")
        if [[ -z $layer ]]; then
            echo "$file: belongs to no layer (add its folder to layers.conf)"
            failed=1
            continue
        fi
        mapfile -t allowed < <(
            echo "$layer"
            direct "$layer" "$root"
        )
        while IFS= read -r include; do
            [[ $include == */* ]] || continue  # same folder
            ok=0
            for folder in "${allowed[@]}"; do
                if [[ $include == "$folder"/* ]]; then
                    ok=1
                    break
                fi
            done
            if ((!ok)); then
                echo "$file: includes \"$include\": layer $layer may include only: ${allowed[*]}"
                failed=1
            fi
        done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$file")
    done
    if ((failed)); then
        return 1
    fi
    echo "layers: $count files, every include within its layer"
    return 0
}

case $command in
names)
    table "${1:-$default_root}" | awk '{ print $1 }'
    ;;
closure)
    [[ $# -ge 1 ]] || usage
    closure "$1" "${2:-$default_root}"
    ;;
layer-of)
    [[ $# -ge 1 ]] || usage
    layer=$(layer_of "$1" "${2:-$default_root}")
    [[ -n $layer ]] || {
        echo "layers: $1 belongs to no layer" >&2
        exit 1
    }
    echo "$layer"
    ;;
farm)
    [[ $# -ge 1 ]] || usage
    farm "$1" "${2:-$default_root}"
    ;;
check)
    check "${1:-$default_root}"
    ;;
*) usage ;;
esac
