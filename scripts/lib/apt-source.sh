# Shared by scripts/install-qemu.sh and scripts/install-qemu11.sh (sourced).
#
# copy_debian_entry RELEASE NEW_SUITES... prints the machine's own Debian
# archive entry (the one that carries RELEASE's main suite: not -security,
# not a third-party repository) with only its suite changed to NEW_SUITES,
# so the mirror the machine already uses is reused, whatever it is. Prints
# "deb822" or "list" on the first line (the format), then the entry. Fails
# when the machine has no such entry.
copy_debian_entry() {
    local rel="$1"
    shift
    local suites="$*"
    local f out
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822: paragraphs separated by blank lines. Keep the first
        # paragraph whose Suites field lists "$rel" itself, and rewrite only
        # its Suites field.
        out="$(awk -v rel="$rel" -v bp="$suites" '
            BEGIN { RS = ""; FS = "\n" }
            {
                ok = 0
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^Suites:/) {
                        n = split(substr($i, 8), s, /[ \t]+/)
                        for (j = 1; j <= n; j++) if (s[j] == rel) ok = 1
                    }
                    if ($i ~ /^Enabled:[ \t]*no/) { ok = 0; break }
                }
                if (ok) {
                    for (i = 1; i <= NF; i++) {
                        if ($i ~ /^Suites:/) print "Suites: " bp
                        else print $i
                    }
                    exit
                }
            }' "$f")"
        if [ -n "$out" ]; then
            echo "copy_debian_entry: copied from $f" >&2
            printf 'deb822\n%s\n' "$out"
            return 0
        fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        # One-line format: "deb [opts] URI SUITE COMPONENTS..." with SUITE
        # exactly the release codename; one line per new suite.
        out="$(awk -v rel="$rel" -v bp="$suites" '
            $1 == "deb" {
                i = 2
                if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == rel) {
                    n = split(bp, s, / /)
                    for (j = 1; j <= n; j++) { $(i + 1) = s[j]; print }
                    exit
                }
            }' "$f")"
        if [ -n "$out" ]; then
            echo "copy_debian_entry: copied from $f" >&2
            printf 'list\n%s\n' "$out"
            return 0
        fi
    done
    echo "copy_debian_entry: no Debian apt source entry for '$rel' found to copy" >&2
    return 1
}
