#!/usr/bin/env bash
# Stop the cluster that start-cluster.sh started with the same STATE_DIR.
#
# Usage: tests/slurm/stop-cluster.sh STATE_DIR
#
# Cancels the jobs still queued or running, then stops slurmd, slurmctld and munged, each by
# the PID in STATE_DIR/pids/<name>.pid (TERM, then KILL after 10 s), and removes
# /etc/slurm/slurm.conf when start-cluster.sh wrote it. A daemon that start-cluster.sh did not
# start (e.g. a munged that was already running) is left alone. Safe to run twice.
set -uo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 STATE_DIR" >&2
    exit 2
fi
state=$(realpath -m "$1")
conf=/etc/slurm/slurm.conf

# Cancel leftover jobs while slurmctld and slurmd are still up, so their slurmstepd and job
# processes end too (slurmd does not take them down with it).
if [[ -s $state/pids/slurmctld.pid ]] && kill -0 "$(cat "$state/pids/slurmctld.pid")" 2>/dev/null; then
    scancel --user="$(id -un)" 2>/dev/null
    for _ in $(seq 50); do
        [[ -z $(squeue -h -t PENDING,RUNNING,COMPLETING -o %i 2>/dev/null) ]] && break
        sleep 0.2
    done
fi

for name in slurmd slurmctld munged; do
    pidfile=$state/pids/$name.pid
    [[ -s $pidfile ]] || continue
    pid=$(cat "$pidfile")
    if kill -TERM "$pid" 2>/dev/null; then
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "stop-cluster.sh: $name (PID $pid) ignored TERM; sending KILL" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    rm -f "$pidfile"
done

if [[ -e $conf ]] && grep -q trainact-ci-cluster "$conf"; then
    rm -f "$conf"
fi
exit 0
