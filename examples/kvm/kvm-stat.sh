#!/usr/bin/env bash
# Runs the kernel's kvm_stat, unmodified, on a statsfs tree in KVM's debugfs layout, on a
# machine where debugfs' stat files are refused (kernel lockdown) or absent:
#
#   examples/kvm/kvm-stat.sh [--tree kvm|vmm] MOUNT [kvm_stat arguments...]
#
#   examples/kvm/kvm-stat.sh /run/statsfs-kvm -1          # one line per field, then exit
#   examples/kvm/kvm-stat.sh /run/statsfs-kvm -l          # log mode, a line per second
#   examples/kvm/kvm-stat.sh /run/statsfs-kvm -p 1234     # one VMM's VMs only
#   examples/kvm/kvm-stat.sh --tree vmm /run/statsfs-kvm  # the VMM's own counters
#
# In a private mount namespace (nothing is visible outside it, and it is gone when
# kvm_stat exits) it mounts a debugfs at /sys/kernel/debug (mounting works under
# lockdown; only the stat files are refused), binds the statsfs tree MOUNT/kvm (or
# MOUNT/vmm) over its kvm/ directory, and runs `kvm_stat -d`, which reads debugfs only.
#
# kvm_stat picks its architecture from the `vmx` or `svm` CPU flag; a software-virtualized
# KVM shows neither. Then (and only then) the namespace also binds a copy of
# /proc/cpuinfo with `vmx` added to its flags, and says so. kvm_stat's debugfs mode uses
# the flag for nothing else.
#
# Needs root (mount namespaces), util-linux's unshare, python3, and kvm_stat: found on
# PATH, or given as KVM_STAT=/path/to/kvm_stat (tools/kvm/kvm_stat/kvm_stat in Linux).
set -euo pipefail

tree=kvm
if [ "${1:-}" = "--tree" ]; then
  tree=${2:?--tree takes kvm or vmm}
  shift 2
fi
mount=${1:?usage: $0 [--tree kvm|vmm] MOUNT [kvm_stat arguments...]}
shift
src="$mount/$tree"
[ -d "$src" ] || { echo "$0: $src is not a directory: is the KVM example running with its tree mounted at $mount?" >&2; exit 2; }
kvm_stat=${KVM_STAT:-$(command -v kvm_stat || true)}
[ -n "$kvm_stat" ] || { echo "$0: no kvm_stat on PATH; set KVM_STAT to Linux's tools/kvm/kvm_stat/kvm_stat" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: needs root for a private mount namespace" >&2; exit 2; }

exec unshare --mount --propagation private -- /bin/sh -euc '
  src=$1; kvm_stat=$2; shift 2
  mount -t debugfs debugfs /sys/kernel/debug
  mkdir -p /sys/kernel/debug/kvm 2>/dev/null || true
  mount --bind "$src" /sys/kernel/debug/kvm
  if ! grep -qwE "vmx|svm" /proc/cpuinfo; then
    cpuinfo=$(mktemp)
    sed -E "s/^(flags[[:space:]]*:)/\1 vmx/" /proc/cpuinfo > "$cpuinfo"
    mount --bind "$cpuinfo" /proc/cpuinfo
    echo "note: no vmx/svm CPU flag (software-virtualized KVM): kvm_stat sees a copy of /proc/cpuinfo with vmx added, in this namespace only" >&2
  fi
  exec python3 "$kvm_stat" -d "$@"
' kvm-stat "$src" "$kvm_stat" "$@"
