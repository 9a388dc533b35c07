#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for tests and trials (Debian 12: Slurm 22.05 + munge).
#   tools/slurm_local.sh install      apt-get install slurm-wlm munge when missing (prints the seconds taken)
#   tools/slurm_local.sh start DIR    config in DIR (loopback, no cgroups), start munged, slurmctld, slurmd
#                                     as this user's processes (pids in DIR/*.pid); prints "export SLURM_CONF=..."
#   tools/slurm_local.sh stop DIR     stop exactly the daemons started for DIR (by their recorded pids)
# Logs: DIR/munged.log, DIR/slurmctld.log, DIR/slurmd.log.
set -euo pipefail
cmd=${1:-}
case "$cmd" in
install)
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null && command -v munged >/dev/null; then
    echo "slurm: already installed ($(slurmctld -V))"; exit 0
  fi
  s=$(date +%s.%N)
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null
  echo "slurm: installed slurm-wlm munge in $(echo "$(date +%s.%N) - $s" | bc) s ($(slurmctld -V))"
  ;;
start)
  dir=$(realpath -m "${2:?DIR}")
  mkdir -p "$dir"/{state,spool}
  node=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  # two free ports
  read -r p1 p2 < <(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
  dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge.key"
  user=$(id -un)
  cat > "$dir/slurm.conf" <<CONF
ClusterName=noiselab-local
SlurmctldHost=$node(127.0.0.1)
SlurmUser=$user
SlurmdUser=$user
SlurmctldPort=$p1
SlurmdPort=$p2
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pidfile
SlurmdPidFile=$dir/slurmd.pidfile
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldTimeout=30
SlurmdTimeout=60
MinJobAge=300
KillWait=5
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
  munged --force --key-file="$dir/munge.key" --socket="$dir/munge.sock" --pid-file="$dir/munged.pidfile" \
    --log-file="$dir/munged.log" --seed-file="$dir/munged.seed" --foreground >/dev/null 2>&1 &
  echo $! > "$dir/munged.pid"
  for _ in $(seq 50); do [ -S "$dir/munge.sock" ] && break; sleep 0.1; done
  [ -S "$dir/munge.sock" ] || { echo "munged did not start:"; cat "$dir/munged.log" 2>/dev/null; exit 1; }
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -D -i -f "$dir/slurm.conf" >>"$dir/slurmctld.log" 2>&1 &
  echo $! > "$dir/slurmctld.pid"
  slurmd -D -N "$node" -f "$dir/slurm.conf" >>"$dir/slurmd.log" 2>&1 &
  echo $! > "$dir/slurmd.pid"
  for _ in $(seq 150); do
    state=$(sinfo -h -N -o %t 2>/dev/null | head -1 || true)
    [ "$state" = idle ] && break
    sleep 0.2
  done
  if [ "${state:-}" != idle ]; then
    echo "slurm did not come up (node state '${state:-none}'); logs:"
    tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" "$dir/munged.log" || true
    exit 1
  fi
  echo "export SLURM_CONF=$dir/slurm.conf"
  ;;
stop)
  dir=$(realpath -m "${2:?DIR}")
  for d in slurmd slurmctld munged; do
    f="$dir/$d.pid"
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
  ;;
*)
  echo "usage: tools/slurm_local.sh install | start DIR | stop DIR" >&2
  exit 2
  ;;
esac
