#!/usr/bin/env bash
# Start a throw-away single-node SLURM cluster on this machine (for tests/workflow/test_slurm.py).
#
# Usage: tests/slurm/start-cluster.sh STATE_DIR [PARTITION]
#
# Needs root and Debian (apt). Installs slurmctld, slurmd, slurm-client and munge when
# missing (about 7 s with --no-install-recommends), creates a munge key when there is none,
# writes /etc/slurm/slurm.conf from slurm.conf.in with this machine's hostname, core count and
# memory (the config must sit there: the slurm-jobstep plugin drops SLURM_CONF before it calls
# srun inside a job), and starts munged, slurmctld and slurmd in the foreground as background
# children. Each daemon's PID goes to STATE_DIR/pids/<name>.pid; stop-cluster.sh stops exactly
# those. No systemd and no cgroups are needed. Exits non-zero, naming the cause, when the node
# does not come up idle within 60 s.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 STATE_DIR [PARTITION]" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
state=$(realpath -m "$1")
partition=${2:-trainact}
conf=/etc/slurm/slurm.conf
marker=trainact-ci-cluster

if [[ $(id -u) -ne 0 ]]; then
    echo "start-cluster.sh: needs root (it writes $conf and runs the daemons as root)" >&2
    exit 2
fi

mkdir -p "$state"/{pids,run,slurmctld,slurmd}

# --- packages -------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    echo "start-cluster.sh: installing slurmctld slurmd slurm-client munge" >&2
    export DEBIAN_FRONTEND=noninteractive
    packages=(slurmctld slurmd slurm-client munge)
    if ! apt-get install -y -q --no-install-recommends "${packages[@]}" >"$state/apt.log" 2>&1; then
        apt-get update -q >>"$state/apt.log" 2>&1
        apt-get install -y -q --no-install-recommends "${packages[@]}" >>"$state/apt.log" 2>&1 || {
            echo "start-cluster.sh: apt-get install ${packages[*]} failed; see $state/apt.log" >&2
            exit 1
        }
    fi
fi

# --- config ---------------------------------------------------------------------------------
if [[ -e $conf ]] && ! grep -q "$marker" "$conf"; then
    echo "start-cluster.sh: $conf exists and was not written by this script; refusing to replace it" >&2
    exit 3
fi
if [[ -e $conf ]] && scontrol ping >/dev/null 2>&1; then
    echo "start-cluster.sh: a cluster started by this script is still running; stop it first" \
        "(stop-cluster.sh with the STATE_DIR it was started with)" >&2
    exit 1
fi
mkdir -p /etc/slurm
host=$(hostname -s)
cpus=$(nproc --all)
total_mb=$(free -m | awk '/^Mem:/ {print $2}')
mem_mb=$(( total_mb * 95 / 100 ))   # below the kernel's count, or slurmd marks the node invalid
sed -e "s|@HOST@|$host|g" -e "s|@CPUS@|$cpus|g" -e "s|@MEM_MB@|$mem_mb|g" \
    -e "s|@STATE@|$state|g" -e "s|@PARTITION@|$partition|g" \
    "$here/slurm.conf.in" >"$conf.tmp"
mv "$conf.tmp" "$conf"

# --- daemons --------------------------------------------------------------------------------
# start NAME CMD...: run CMD in the background, logging to STATE/NAME.out, PID to pids/NAME.pid.
start() {
    local name=$1
    shift
    "$@" >"$state/$name.out" 2>&1 </dev/null &
    echo $! >"$state/pids/$name.pid"
}

# wait_for WHAT SECONDS CMD...: poll CMD every 0.2 s until it succeeds.
wait_for() {
    local what=$1 seconds=$2
    shift 2
    local tries=$(( seconds * 5 ))
    until "$@" >/dev/null 2>&1; do
        tries=$(( tries - 1 ))
        if (( tries <= 0 )); then
            echo "start-cluster.sh: $what did not come up within ${seconds} s; logs in $state" >&2
            exit 1
        fi
        sleep 0.2
    done
}

munge_works() { munge -n | unmunge; }

if munge_works >/dev/null 2>&1; then
    echo "start-cluster.sh: using the munged that is already running" >&2
else
    if [[ ! -s /etc/munge/munge.key ]]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge
    chown munge:munge /run/munge
    start munged setpriv --reuid=munge --regid=munge --init-groups munged --foreground
    wait_for munged 10 munge_works
fi

# -c: start from an empty job state, so jobs of an earlier run do not reappear.
start slurmctld slurmctld -D -c
wait_for slurmctld 20 scontrol ping
start slurmd slurmd -D
node_idle() { [[ $(sinfo -h -n "$host" -o %T) == idle ]]; }
wait_for "node $host (idle in sinfo)" 60 node_idle
echo "start-cluster.sh: cluster up: node $host, $cpus CPUs, $mem_mb MB, partition $partition, state in $state" >&2
