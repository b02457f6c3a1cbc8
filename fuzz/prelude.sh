# Sourced first by asan_tests.sh and valgrind.sh, whose command line is
# `[DIR] [-- PYTEST ARGS...]`: sets `here` (fuzz/) and `root` (the source tree) and defines
# dir_option.

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"

# dir_option NAME DEFAULT "$@": sets the variable NAME to the script's DIR argument (DEFAULT
# when the command line is empty or starts with "--") and `skip` to how many arguments (DIR
# and "--") the script must shift to be left with the pytest arguments.
dir_option() {
    local name="$1" value="$2"
    shift 2
    skip=0
    if [ "$#" -gt 0 ] && [ "$1" != "--" ]; then
        value="$1"
        skip=1
        shift
    fi
    if [ "${1:-}" = "--" ]; then
        skip=$((skip + 1))
    fi
    printf -v "$name" '%s' "$value"
}
