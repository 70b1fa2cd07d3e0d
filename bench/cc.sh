# Sourced by the bench scripts that build a C helper: build_c NAME OUTPUT
# SOURCE [FLAGS...] compiles SOURCE with the first C compiler found (CC,
# else cc, clang or gcc: the Swift toolchain brings clang), or exits 69
# (none) or 70 (the build failed) with a message prefixed by NAME.
build_c() {
    local name=$1 output=$2 source=$3 compiler= c
    shift 3
    for c in "${CC:-}" cc clang gcc; do
        if [ -n "$c" ] && command -v "$c" >/dev/null; then compiler=$c; break; fi
    done
    [ -n "$compiler" ] || { echo "$name: no C compiler for $source (set CC)" >&2; exit 69; }
    "$compiler" -O2 "$@" -o "$output" "$source" || { echo "$name: cannot build $source" >&2; exit 70; }
}
