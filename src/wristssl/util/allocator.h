#pragma once
// The allocator behind every tensor on the CPU, set up for training.
//
// glibc serves every allocation above its mmap threshold (128 KiB, raised up to 32 MiB) with a
// fresh mmap and returns it with munmap when freed. A ResNet-18 training step at 224 px and batch
// 64 makes dozens of activation and gradient buffers of 25-100 MB, every step: each is mapped anew
// and its pages are faulted in (and zeroed by the kernel) on first touch. On an Intel Xeon with AMX
// (2026-12-02) that made ReLU, add and batch norm run at a fraction of memory speed.
//
// The programs are therefore linked with tcmalloc (gperftools; CMake option WRISTSSL_TCMALLOC, on
// by default where it is found), which keeps freed spans by size and reuses them: bf16 training on
// 2 threads at 512 px ran 1.5x faster than glibc with freed memory kept, in half its memory, and at
// 224 px as fast in 58% of it (bench/bench_simclr.cpp, docs/performance.md). Where tcmalloc is not
// linked, glibc is told to keep freed memory for reuse (no mmap for large blocks, no trimming): as
// fast at 224 px, but at 512 px it needs up to twice the memory, since freed blocks do not always
// fit the next requests.

#include <string>

namespace wristssl::util {

/// Which allocator serves this process's malloc: "tcmalloc" when tcmalloc owns a fresh block, else "glibc".
std::string active_allocator();

/// With tcmalloc active: nothing to set. With glibc: keep freed memory for reuse (M_MMAP_MAX 0, no trimming
/// below 2 GiB free), unless WRISTSSL_MALLOC=system. Call once, early, before large tensors exist.
/// Returns a short description for logs ("tcmalloc", "glibc, freed memory kept for reuse", or why not).
std::string configure_allocator();

}  // namespace wristssl::util
