"""Peer of `troupe bench allreduce`: torch.distributed all_reduce (NCCL on GPUs, gloo on the CPU) over the same
ranks, sizes and repeats, timed the same way (a barrier, then `repeats` all-reduces, waited for, per size).

Started by each rank of the Troupe benchmark with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set.
usage: allreduce_peer.py DEVICE SIZE_BYTES[,SIZE_BYTES...] REPEATS
prints (rank 0) one JSON line: {"<bytes>": median seconds per all-reduce, ...}
"""
import json
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist


def main():
    device = torch.device(sys.argv[1])
    sizes = [int(s) for s in sys.argv[2].split(",")]
    repeats = int(sys.argv[3])
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    out = {}
    for size in sizes:
        x = torch.ones(size // 4, dtype=torch.float32, device=device)
        dist.all_reduce(x)  # warm-up (and NCCL's connection set-up)
        times = []
        for _ in range(repeats):
            dist.barrier()
            sync()
            t0 = time.perf_counter()
            dist.all_reduce(x)
            sync()
            times.append(time.perf_counter() - t0)
        out[str(size)] = statistics.median(times)
    dist.destroy_process_group()
    if int(os.environ["RANK"]) == 0:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
