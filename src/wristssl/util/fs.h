#pragma once
// File helpers: atomic writes (temp file, fsync, rename) so that a crash never leaves half a file.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wristssl::util {

/// Writes `bytes` to `path` atomically: a temp file beside it, fsync, rename, fsync of the folder.
/// Creates missing parent folders. Throws std::runtime_error naming the path on failure.
void atomic_write(const std::string& path, std::string_view bytes);

/// Deletes the temp files that atomic_write leaves in `folder` when the process is killed mid-write
/// (".NAME.tmpXXXXXX"); returns how many. A process that writes there calls it at start, alone.
int remove_atomic_write_leftovers(const std::string& folder);

/// fsyncs a folder, so that a rename or a new file in it survives a power cut (best effort: errors
/// are ignored). An empty path means the current folder.
void sync_folder(const std::string& folder);

/// Reads a whole file as text; throws std::runtime_error naming the path.
std::string read_text(const std::string& path);

/// True when stdout or stderr is a terminal (progress bars vs plain lines).
bool is_terminal(int fd);

}  // namespace wristssl::util
