#pragma once
// The C library's allocator, set up for training on a CPU.
//
// glibc serves every allocation above its mmap threshold (128 KiB, raised up to 32 MiB) with a fresh mmap
// and returns it with munmap when freed. A ResNet-18 training step at 224 px and batch 64 makes dozens of
// activation and gradient buffers of 25-100 MB, every step: each is mapped anew and its pages are faulted in
// (and zeroed by the kernel) on first touch. On an Intel Xeon with AMX (2026-12-02) that made ReLU, add and
// batch norm run at a fraction of memory speed: with freed memory kept for reuse, the bf16 training step went
// from 32 to 39 views/s on 1 thread and from 59 to 70 on 2 (bench/bench_simclr.cpp). The price is memory,
// since freed blocks do not always fit the next requests: at 512 px a pretraining run peaked at 7.2 GiB
// instead of 4.6 (and trained 1.5x faster); at 224 px the peak stayed within its run-to-run range. PyTorch's
// own advice for CPUs is a caching allocator (jemalloc, tcmalloc) loaded with LD_PRELOAD; this does the same
// with the allocator already there, from inside the program.

#include <string>

namespace wristssl::util {

/// Makes glibc keep freed memory for reuse: no mmap for large blocks, no trimming of the heap below 2 GiB free.
/// Call once, early, before large tensors exist. Set WRISTSSL_MALLOC=system to leave the allocator as it is.
/// Returns a short description for logs ("glibc, freed memory kept for reuse" or why not).
std::string configure_allocator();

}  // namespace wristssl::util
