#include "wristssl/util/allocator.h"

#include <climits>
#include <cstdlib>
#include <mutex>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(WRISTSSL_HAVE_TCMALLOC)
#include <gperftools/malloc_extension_c.h>
#endif

namespace wristssl::util {

std::string active_allocator() {
#if defined(WRISTSSL_HAVE_TCMALLOC)
  // Linked is not enough: tcmalloc serves malloc only if its symbols come first (a sanitizer or another
  // preloaded allocator would win). Ask it whether it owns a block that malloc just returned.
  void* block = std::calloc(1, 4096);  // calloc: GCC warns of passing unset memory to a const pointer
  const bool owned = block != nullptr && MallocExtension_GetOwnership(block) == MallocExtension_kOwned;
  std::free(block);
  if (owned) return "tcmalloc";
#endif
  return "glibc";
}

std::string configure_allocator() {
  static std::once_flag once;
  static std::string description;
  std::call_once(once, [] {
    if (active_allocator() == "tcmalloc") {
      description = "tcmalloc";
      return;
    }
    const char* env = std::getenv("WRISTSSL_MALLOC");
    if (env != nullptr && std::string(env) == "system") {
      description = "system allocator as configured (WRISTSSL_MALLOC=system)";
      return;
    }
#if defined(__GLIBC__)
    // M_MMAP_MAX 0: large blocks come from the heap (thread arenas still map their own heaps); M_TRIM_THRESHOLD
    // (an int): give memory back only when 2 GiB lie free at the heap's top.
    const bool ok = mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1;
    description = ok ? "glibc, freed memory kept for reuse" : "glibc, mallopt refused: allocator left as it is";
#else
    description = "not glibc: allocator left as it is";
#endif
  });
  return description;
}

}  // namespace wristssl::util
