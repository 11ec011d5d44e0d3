#!/usr/bin/env bash
# Install Debian's MBROLA Persian voice (mbrola + mbrola-ir1), the clearest offline Persian voice
# the prompts can be rendered with. Run as root; idempotent; never fails the build.
#
# Both packages live in Debian's `contrib` and `non-free` components, which many machines'
# sources do not list. This script reads the mirror and suite the machine already uses (deb822
# `*.sources` files or one-line `sources.list` entries), writes an entry for `contrib non-free` on
# that same mirror into a file of its own, and installs the packages. No host name is written here:
# whatever mirror the machine trusts is the one used.
#
# If anything is missing (no mirror found, the mirror lacks the components, no network), it says
# so in one line and exits 0: `ivr prompts build` then falls back to the espeak-fa voice.
# `--print-entry` only prints the sources entry it would write (MBROLA_APT_DIR=dir reads another
# apt configuration folder than /etc/apt): that is how the tests check the reading of sources.
# Licence: the ir1 database may be used freely but not sold without its author's permission
# (see /usr/share/doc/mbrola-ir1/copyright once installed); set IVR_VOICE=espeak-fa to not use it.
set -uo pipefail
export DEBIAN_FRONTEND=noninteractive

APT_DIR=${MBROLA_APT_DIR:-/etc/apt}
OURS=$APT_DIR/sources.list.d/ivr124-contrib-non-free.sources
say() { printf 'mbrola.sh: %s\n' "$*" >&2; }
fallback() { say "$* — the prompts use the espeak-fa voice instead"; exit 0; }

has_candidate() {
  local candidate
  candidate=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
  [ -n "$candidate" ] && [ "$candidate" != "(none)" ]
}

# The first Debian archive entry with `main` (not the security archive): "URI<TAB>SUITES<TAB>KEY".
find_mirror() {
  local file
  for file in "$APT_DIR"/sources.list.d/*.sources; do
    [ -f "$file" ] && [ "$file" != "$OURS" ] || continue
    awk -v RS= -F '\n' '
      {
        types = uris = suites = comps = key = ""; enabled = 1
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^[ \t]*#/) continue
          split(line, kv, ":")
          name = tolower(kv[1]); value = substr(line, length(kv[1]) + 2)
          gsub(/^[ \t]+|[ \t]+$/, "", value)
          if (name == "types") types = value
          else if (name == "uris") uris = value
          else if (name == "suites") suites = value
          else if (name == "components") comps = value
          else if (name == "signed-by" && value ~ /^\//) key = value  # a path, not an inline key
          else if (name == "enabled" && tolower(value) == "no") enabled = 0
        }
        if (enabled && types ~ /(^| )deb( |$)/ && (" " comps " ") ~ / main / && suites !~ /-security/) {
          split(uris, u, " "); printf "%s\t%s\t%s\n", u[1], suites, key; exit
        }
      }' "$file"
  done
  for file in "$APT_DIR"/sources.list "$APT_DIR"/sources.list.d/*.list; do
    [ -f "$file" ] || continue
    awk '
      $1 == "deb" {
        opts = ""; i = 2
        if ($2 ~ /^\[/) { while ($i !~ /\]$/) { opts = opts " " $i; i++ } opts = opts " " $i; i++ }
        uri = $i; suite = $(i + 1); main = 0
        for (j = i + 2; j <= NF; j++) if ($j == "main") main = 1
        if (main && suite !~ /-security/) {
          key = ""
          if (match(opts, /signed-by=[^] ]+/)) key = substr(opts, RSTART + 10, RLENGTH - 10)
          printf "%s\t%s\t%s\n", uri, suite, key; exit
        }
      }' "$file"
  done
}

# The deb822 entry for contrib and non-free on the first mirror found; fails if there is none.
entry() {
  local mirror uri suites key
  mirror=$(find_mirror | head -n 1)
  [ -n "$mirror" ] || return 1
  IFS=$'\t' read -r uri suites key <<<"$mirror"
  echo "# Written by ivr124's .ci/mbrola.sh: contrib and non-free on the mirror already in use,"
  echo "# for the packages mbrola and mbrola-ir1 (the MBROLA Persian voice)."
  echo "Types: deb"
  echo "URIs: $uri"
  echo "Suites: $suites"
  echo "Components: contrib non-free"
  [ -z "$key" ] || echo "Signed-By: $key"
}

if [ "${1:-}" = "--print-entry" ]; then
  entry || { say "no Debian mirror with 'main' found in $APT_DIR"; exit 1; }
  exit 0
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

if installed mbrola && installed mbrola-ir1; then
  exit 0
fi
[ "$(id -u)" = 0 ] || fallback "not root: cannot install mbrola-ir1"
command -v apt-get >/dev/null || fallback "no apt-get: cannot install mbrola-ir1"

if ! has_candidate mbrola-ir1; then
  entry >"$OURS.tmp" || { rm -f "$OURS.tmp"; fallback "no Debian mirror with 'main' found"; }
  mv "$OURS.tmp" "$OURS"
  suites=$(awk '/^Suites:/ {sub(/^Suites: /, ""); print}' "$OURS")
  say "added contrib non-free for $suites from the mirror in use"
  if ! apt-get update -qq >/dev/null 2>&1 || ! has_candidate mbrola-ir1; then
    rm -f "$OURS"  # a source that does not work must not break everyone else's apt-get update
    apt-get update -qq >/dev/null 2>&1
    fallback "the mirror offers no mbrola-ir1"
  fi
fi

if ! apt-get install -y -qq mbrola mbrola-ir1 >/dev/null 2>&1; then
  fallback "apt-get install mbrola mbrola-ir1 failed"
fi
say "installed mbrola and mbrola-ir1"
