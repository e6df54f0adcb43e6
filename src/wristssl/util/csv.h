#pragma once
// A small RFC 4180 CSV reader: quoted fields, CRLF or LF, a UTF-8 byte-order mark on the header.

#include <string>
#include <vector>

namespace wristssl::util {

struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // each row has header.size() fields (padded / checked)

  /// Index of `name` in the header, or -1.
  int column(const std::string& name) const;
  /// Index of `name`; throws std::runtime_error naming `source` when absent.
  int require_column(const std::string& name, const std::string& source) const;
};

/// Parses CSV text. Throws std::runtime_error naming `source` and the line on a malformed row.
CsvTable parse_csv(const std::string& text, const std::string& source);

/// Reads and parses a CSV file.
CsvTable read_csv(const std::string& path);

/// Quotes a field when it holds a comma, quote or newline.
std::string csv_field(const std::string& value);

}  // namespace wristssl::util
