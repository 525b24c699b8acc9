#!/usr/bin/env bash
# Distributed training with torchrun (python -m torch.distributed.run).
#
#   tools/dist_train.sh CONFIG GPUS [tools/train.py options]
#
# Several machines: run it on each with the same NNODES, MASTER_ADDR and PORT
# and NODE_RANK=0..NNODES-1. Without CUDA, tools/train.py switches to gloo.
#   NNODES (1)  NODE_RANK (0)  MASTER_ADDR (127.0.0.1)  PORT (29500)
#   PYTHON (python): the interpreter with mvig2_mm and torch installed
set -eo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [tools/train.py options]" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PORT=${PORT:-29500}
PYTHON=${PYTHON:-python}
TOOLS=$(dirname "$0")

PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$GPUS" \
    "$TOOLS/train.py" "$CONFIG" --launcher pytorch "${@:3}"
